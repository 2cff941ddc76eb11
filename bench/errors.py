"""User-facing errors. The CLI prints ``error: <message>`` on one line and exits with ``exit_code``."""
from __future__ import annotations

import re

# A DataLoader worker re-raises an item's exception in the main process as
# ``type(e)("Caught X in DataLoader worker process N.\nOriginal Traceback ...\npkg.X: <message>")``.
_WORKER_TRACEBACK = re.compile(r"^Caught \w+ in DataLoader worker process \d+\.\s*\nOriginal Traceback", re.M)
_LAST_LINE = re.compile(r"^[\w.]+: (.*)$")


def _from_worker(message: str) -> str:
    """The original one-line message of an error re-raised from a DataLoader worker, else ``message``."""
    if not _WORKER_TRACEBACK.match(message):
        return message
    lines = [ln for ln in message.strip().splitlines() if ln.strip()]
    m = _LAST_LINE.match(lines[-1].strip()) if lines else None
    return m.group(1) if m else message


class AdabenchError(Exception):
    """An expected failure with a one-line message for the user (no traceback)."""

    exit_code = 1

    def __init__(self, *args: object) -> None:
        if len(args) == 1 and isinstance(args[0], str):  # keep user errors one line across workers
            args = (_from_worker(args[0]),)
        super().__init__(*args)


class UsageError(AdabenchError):
    """Bad option, config or input location: exit code 2."""

    exit_code = 2


class DatasetNotFoundError(UsageError):
    """The dataset root does not hold the expected layout."""


class DataError(AdabenchError):
    """A broken item (corrupt video, missing frames) met while reading data."""


class TrainingDivergedError(AdabenchError):
    """The loss became NaN or inf; the last good checkpoint is kept."""
