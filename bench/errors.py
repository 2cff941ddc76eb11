"""User-facing errors. The CLI prints ``error: <message>`` on one line and exits with ``exit_code``."""
from __future__ import annotations


class AdabenchError(Exception):
    """An expected failure with a one-line message for the user (no traceback)."""

    exit_code = 1


class UsageError(AdabenchError):
    """Bad option, config or input location: exit code 2."""

    exit_code = 2


class DatasetNotFoundError(UsageError):
    """The dataset root does not hold the expected layout."""


class DataError(AdabenchError):
    """A broken item (corrupt video, missing frames) met while reading data."""


class TrainingDivergedError(AdabenchError):
    """The loss became NaN or inf; the last good checkpoint is kept."""
