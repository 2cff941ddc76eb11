"""User-facing errors. The CLI prints ``error: <message>`` on one line and exits with ``exit_code``."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path
from typing import Optional, Union

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


def _existing(path: Path) -> Optional[Path]:
    """``path`` or its nearest ancestor that exists (None if none does)."""
    return next((p for p in (path, *path.parents) if os.path.lexists(p)), None)


def _readable(path: Path) -> bool:
    """Whether this process can list the directory or open the file (so a failure was a write)."""
    try:
        if path.is_dir():
            os.listdir(path)
        else:
            with open(path, "rb"):
                pass
    except OSError:
        return False
    return True


def os_error_message(e: OSError, path: Union[str, os.PathLike, None] = None) -> str:
    """One line for a file-system failure: the path at fault and what was expected there.

    ``path`` (default: the error's own filename) is what the caller was making, so a failure on a
    temporary sibling is reported under the name the user gave."""
    shown = path if path is not None else e.filename
    if shown is None:
        return (e.strerror or type(e).__name__).lower()
    p = Path(os.fsdecode(shown))
    failing = Path(os.fsdecode(e.filename)) if e.filename is not None else p
    found, code = _existing(p), e.errno
    if found is not None and not found.is_dir() and (found != p or code in (errno.EEXIST, errno.ENOTDIR)):
        return f"{found} is a file, expected a directory" + (f" (to hold {p})" if found != p else "")
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        why = "read-only file system" if code == errno.EROFS else "permission denied"
        if not os.path.lexists(failing):  # creating it failed: its directory is at fault
            parent = _existing(failing) or Path(".")
            return f"{parent}: {why}; expected a writable directory" + (
                f" (to create {p})" if parent != p else ""
            )
        kind = "directory" if failing.is_dir() else "file"
        return f"{failing}: {why}; expected a {'writable' if _readable(failing) else 'readable'} {kind}"
    if code in (errno.ENOSPC, errno.EDQUOT):
        return (
            f"{p}: no space left on the device (or over quota); free some space or choose another directory"
        )
    if code == errno.EISDIR:
        return f"{p} is a directory, expected a file"
    return f"{p}: {(e.strerror or type(e).__name__).lower()}"
