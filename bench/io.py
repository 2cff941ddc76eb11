"""Atomic file writes: a reader never sees a half-written file.

Every writer goes to a temporary file in the *same directory* (so ``os.replace`` is a
rename on one file system), named with the pid and a random token so concurrent writers
never share a temp file, is fsynced, and then replaces the target in one step. A crash or
SIGKILL leaves either the old file or the new one, plus at worst a stray ``.*.tmp``.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import math
import os
import secrets
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple, Union

from bench.errors import UsageError, os_error_message

try:  # POSIX; on other systems appends are atomic per write but not serialised
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]  # the module or None, checked before use

PathLike = Union[str, os.PathLike]


def _temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (best effort: not every OS lets us open a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def writing(path: PathLike) -> Iterator[None]:
    """File-system errors in the block become a one-line ``UsageError`` naming ``path`` (what the user asked
    for, not a temporary sibling) and what was expected there (``bench.errors.os_error_message``)."""
    try:
        yield
    except OSError as e:
        raise UsageError(os_error_message(e, path)) from None


def make_dirs(path: PathLike) -> Path:
    """``mkdir -p path``; a one-line ``UsageError`` if a file is in the way or it is not writable."""
    p = Path(path)
    with writing(p):
        p.mkdir(parents=True, exist_ok=True)
    return p


def check_writable_dir(path: PathLike, for_file: Optional[PathLike] = None) -> None:
    """Fail early, creating nothing: ``path`` must be a directory this process can write, or creatable as
    one (its nearest existing ancestor is a writable directory). Probed with a temporary file, since
    permission bits do not tell (root, ACLs, read-only mounts). ``for_file``: the file the directory is
    for (named in the error)."""
    p = Path(path)
    with writing(for_file if for_file is not None else p):
        found = next((q for q in (p, *p.parents) if os.path.lexists(q)), Path("."))
        if not found.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "Not a directory", str(found))
        probe = _temp_path(found / ".adabench-probe")  # spelt as the user spelt the path (errors name it)
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.unlink(probe)


@contextlib.contextmanager
def _atomic_open(path: PathLike) -> Iterator[io.BufferedWriter]:
    """Yield a binary file handle; on success the content replaces ``path`` atomically."""
    target = Path(path)
    with writing(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = _temp_path(target)
        try:
            with open(tmp, "wb") as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        _fsync_dir(target.parent)


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    with _atomic_open(path) as f:
        f.write(data)
    return Path(path)


def atomic_write_text(path: PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def to_jsonable(obj: Any) -> Any:
    """Plain-JSON version of ``obj``: NaN/inf -> None (strict JSON has neither), numpy and
    0-d torch scalars -> Python numbers, tuples -> lists, paths -> str."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "tolist"):  # numpy arrays/scalars, torch tensors
        return to_jsonable(obj.tolist())
    return str(obj)


def atomic_write_json(path: PathLike, obj: Any) -> Path:
    text = json.dumps(to_jsonable(obj), indent=2, allow_nan=False)
    return atomic_write_text(path, text + "\n")


def atomic_write_yaml(path: PathLike, obj: Any) -> Path:
    import yaml

    return atomic_write_text(path, yaml.safe_dump(to_jsonable(obj), sort_keys=False))


def atomic_torch_save(obj: Any, path: PathLike) -> Path:
    """``torch.save(obj, path)``, atomically (argument order as in ``torch.save``)."""
    import torch

    with _atomic_open(path) as f:
        torch.save(obj, f)
    return Path(path)


def read_json(path: PathLike) -> Any:
    """Parse a JSON file; a missing or malformed file is a one-line ``UsageError`` naming it."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{p}: file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"{p}: cannot read ({e.__class__.__name__})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(f"{p}: malformed JSON at line {e.lineno} column {e.colno}: {e.msg}") from None


def read_yaml(path: PathLike) -> Any:
    """Parse a YAML file; a missing or malformed file is a one-line ``UsageError`` naming it."""
    import yaml

    p = Path(path)
    try:
        return yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{p}: file not found") from None
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise UsageError(f"{p}: malformed YAML{at}") from None


@contextlib.contextmanager
def file_lock(path: PathLike) -> Iterator[None]:
    """Exclusive advisory lock on ``path`` (created if needed); blocks until it is free."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    p = Path(path)
    with writing(p):
        p.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def read_csv_rows(path: PathLike) -> List[Dict[str, str]]:
    """All rows of a CSV written by ``atomic_write_csv`` as dicts of strings ([] if absent)."""
    return _read_csv(Path(path))[1]


def _read_csv(path: Path) -> Tuple[List[str], List[Dict[str, str]]]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            return list(reader.fieldnames or []), rows
    except FileNotFoundError:
        return [], []
