"""Reading frames: JPEG frame folders (PIL) and video files (decord, PyAV fallback).

Video readers are opened per item inside ``Dataset.__getitem__`` and closed right after: a decord reader
created in the parent process hangs forked DataLoader workers and cannot be pickled for spawned ones.
Every failure becomes a one-line ``DataError`` naming the file.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
from PIL import Image

from bench.errors import DataError, UsageError

BACKENDS = ("auto", "decord", "pyav")
VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v", ".flv", ".mpg", ".mpeg")


def is_video_path(path: str) -> bool:
    return path.lower().endswith(VIDEO_EXTENSIONS)


def _first_line(e: Exception) -> str:
    """A decoder exception as one line (decord and PyAV messages can span several)."""
    return str(e).splitlines()[0] if str(e) else type(e).__name__


# ---------------------------------------------------------------------------------------------- frames
@lru_cache(maxsize=64)
def _template_regex(template: str) -> "re.Pattern[str]":
    prefix, _, rest = template.partition("{")
    suffix = rest.partition("}")[2]
    return re.compile(re.escape(prefix) + r"(\d+)" + re.escape(suffix) + "$")


def frame_numbers(folder: Path, template: str) -> List[int]:
    """Sorted 1-based frame numbers present in ``folder`` for a template like ``image_{:05d}.jpg``."""
    rx = _template_regex(template)
    with os.scandir(folder) as it:
        nums = [int(m.group(1)) for e in it if (m := rx.match(e.name))]
    return sorted(nums)


def count_frames(folder: Path, template: str) -> int:
    """Number of frames in a folder (files matching the template), as the TSM list generators count."""
    if not folder.is_dir():
        raise DataError(f"{folder}: frame folder not found")
    return len(frame_numbers(folder, template))


def read_image(path: Path) -> np.ndarray:
    """One RGB image as uint8 ``[H, W, 3]``."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise DataError(f"{path}: missing frame") from None
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: cannot decode image ({e})") from None


def read_frame_folder(folder: Path, template: str, indices: np.ndarray) -> np.ndarray:
    """Frames ``indices`` (0-based; file numbers start at 1) of a folder -> uint8 ``[N, H, W, 3]``."""
    uniq, inverse = np.unique(indices, return_inverse=True)
    imgs = [read_image(folder / template.format(int(i) + 1)) for i in uniq]
    shapes = {im.shape for im in imgs}
    if len(shapes) > 1:
        raise DataError(f"{folder}: frames have different sizes {sorted(shapes)}")
    return np.stack(imgs)[inverse.reshape(-1)]


# ---------------------------------------------------------------------------------------------- video
class ShortVideo(Exception):
    """The stream ended before a wanted frame: only ``decoded`` frames exist (header count was wrong)."""

    def __init__(self, decoded: int) -> None:
        super().__init__(f"only {decoded} decodable frames")
        self.decoded = decoded


@lru_cache(maxsize=None)
def _decord():
    """decord, imported lazily (only processes that read videos load it) with FFmpeg's logging silenced.

    Runs once per process, so also inside every DataLoader worker.
    """
    import decord

    decord.logging.set_level(decord.logging.QUIET)
    return decord


_STDERR_LOCK = threading.Lock()


@contextmanager
def _quiet_stderr():
    """Send file descriptor 2 to /dev/null for the duration.

    decord's own C++ messages ("ERROR opening: <file>, ...") bypass its log level and write to fd 2
    directly; our one-line ``DataError`` says the same, and must be the last line the user sees.
    """
    with _STDERR_LOCK:
        sys.stderr.flush()
        saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)


class _DecordVideo:
    def __init__(self, path: Path) -> None:
        decord = _decord()
        with _quiet_stderr():
            self._vr = decord.VideoReader(str(path), num_threads=1)
        self.num_frames = len(self._vr)

    def get(self, indices: np.ndarray) -> np.ndarray:
        with _quiet_stderr():
            return self._vr.get_batch([int(i) for i in indices]).asnumpy()

    def close(self) -> None:
        del self._vr


class _PyAVVideo:
    """Sequential decoding up to the last wanted frame (the slow but dependable fallback)."""

    def __init__(self, path: Path) -> None:
        import av

        self._container = av.open(str(path))
        if not self._container.streams.video:
            self._container.close()
            raise ValueError("no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        self.num_frames = self._stream.frames or self._estimate_frames()

    def _estimate_frames(self) -> int:
        """From duration x frame rate (webm headers carry no frame count); count by decoding if unknown."""
        return _duration_frames(self._stream, self._container) or sum(1 for _ in self._decode_all())

    def _decode_all(self):
        self._container.seek(0)
        return self._container.decode(self._stream)

    def get(self, indices: np.ndarray) -> np.ndarray:
        wanted = set(int(i) for i in indices)
        last = max(wanted)
        got = {}
        n = -1
        for n, frame in enumerate(self._decode_all()):
            if n in wanted:
                got[n] = frame.to_ndarray(format="rgb24")
            if n >= last:
                break
        if n < last:  # the header promised more frames than the stream holds
            if n < 0:
                raise ValueError("no decodable frames")
            raise ShortVideo(n + 1)
        return np.stack([got[int(i)] for i in indices])

    def close(self) -> None:
        self._container.close()


def have_decord() -> bool:
    try:
        _decord()
    except Exception:
        return False
    return True


def open_video(path: Path, backend: str = "auto"):
    """Open a video with ``backend`` (``auto`` = decord, falling back to PyAV when decord fails)."""
    if backend not in BACKENDS:
        raise UsageError(f"unknown video backend '{backend}'; expected one of: {', '.join(BACKENDS)}")
    if not Path(path).is_file():
        raise DataError(f"{path}: video file not found")
    order = {
        "auto": ["decord", "pyav"] if have_decord() else ["pyav"],
        "decord": ["decord"],
        "pyav": ["pyav"],
    }[backend]
    errors = []
    for name in order:
        try:
            reader = _DecordVideo(path) if name == "decord" else _PyAVVideo(path)
            if reader.num_frames < 1:
                reader.close()
                raise ValueError("0 frames")
            return reader
        except ImportError as e:
            errors.append(f"{name} not installed ({e})")
        except Exception as e:  # decord raises its own DECORDError, av raises av.error.*
            errors.append(f"{name}: {_first_line(e)}")
    raise DataError(f"{path}: cannot decode video ({'; '.join(errors)})")


def read_video(path: Path, indices_for, backend: str = "auto") -> Tuple[np.ndarray, int]:
    """Open ``path``, pick indices with ``indices_for(num_frames)``, return (uint8 ``[N, H, W, 3]``,
    num_frames).

    Indices are clamped to the decodable frame count the reader reports. A header that promises more
    frames than the stream holds (a truncated file whose index survived): PyAV samples again over the
    frames that really decode; with ``auto``, decord's failure on such a file falls back to PyAV.
    """
    reader = open_video(path, backend)
    if backend == "auto" and isinstance(reader, _DecordVideo):
        try:
            return _read_frames(path, reader, indices_for)
        except DataError:
            reader = open_video(path, "pyav")
    return _read_frames(path, reader, indices_for)


def _read_frames(path: Path, reader, indices_for) -> Tuple[np.ndarray, int]:
    try:
        n = reader.num_frames
        idx = np.clip(np.asarray(indices_for(n), dtype=np.int64), 0, n - 1)
        try:
            try:
                frames = reader.get(idx)
            except ShortVideo as short:  # sample again over the frames that really decode
                n = short.decoded
                idx = np.clip(np.asarray(indices_for(n), dtype=np.int64), 0, n - 1)
                frames = reader.get(idx)
        except Exception as e:
            raise DataError(f"{path}: cannot decode video frames ({_first_line(e)})") from None
        return frames, n
    finally:
        reader.close()


def _duration_frames(stream, container) -> int:
    rate = stream.average_rate or stream.guessed_rate
    if not rate:
        return 0
    if stream.duration and stream.time_base:
        return int(round(float(stream.duration * stream.time_base) * float(rate)))
    if container.duration:
        return int(round(container.duration / 1e6 * float(rate)))
    return 0


def probe_video(
    path: Path, full: bool = False, header_only: bool = False
) -> Tuple[int, Optional[str], Optional[str]]:
    """Check a video with PyAV: (frame count, problem or None, warning or None).

    ``header_only``: open the container and read the frame count from its header (decode the first
    frame only when the header has no count or duration). Default: also decode the first frame.
    ``full``: decode every frame; a header promising more frames than decode is a *warning* (the
    loaders sample again over the frames that decode), no frame at all a problem.
    """
    import av

    if not path.is_file():
        return 0, f"{path}: video file not found", None
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                return 0, f"{path}: no video stream", None
            stream = c.streams.video[0]
            promised = stream.frames or _duration_frames(stream, c)
            if header_only and promised > 0:
                return promised, None, None
            n = 0
            for n, _ in enumerate(c.decode(stream), start=1):  # noqa: B007 (n: frames decoded, read below)
                if not full:
                    break
            if n == 0:
                return 0, f"{path}: no decodable frames", None
            if not full:
                return promised or n, None, None
            if promised and n < 0.9 * promised:
                return (
                    n,
                    None,
                    (
                        f"{path}: truncated video ({n} decodable frames, the header says {promised}; "
                        f"training samples over the {n})"
                    ),
                )
            return n, None, None
    except Exception as e:
        return 0, f"{path}: cannot decode video ({_first_line(e)})", None
