"""The ``synthetic`` dataset: the generator's files read through the ordinary 20BN-CSV layout, plus boxes.

Decoded frames of a split are cached once as uint8 ``[N, F, H, W, 3]`` in ``<root>/cache/<split>-<key>.npy``
(memory-mapped afterwards), so epochs never re-decode JPEGs or videos. Boxes come from ``boxes.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

from bench.data.dataset import VideoDataset
from bench.data.layouts import twentybn_csv
from bench.data.readers import count_frames, read_frame_folder, read_video
from bench.data.sources import DatasetSource, register_source
from bench.data.synthetic import HARD_FRAME, HARD_VIDEO, PAPER_FRAME, PAPER_VIDEO, TEMPORAL_FRAME, SynthParams
from bench.data.types import DatasetInfo, VideoRecord
from bench.errors import DataError


class SyntheticDataset(VideoDataset):
    """``VideoDataset`` over an in-memory/memory-mapped frame cache, with ground-truth object ``boxes``."""

    needs_preflight = False  # every video was decoded (or dropped as unreadable) when the cache was built

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._cache_file: Optional[Path] = None
        self._frames = self._load_cache()
        self._boxes = self._load_boxes()

    def __getstate__(self):
        # Spawned workers re-open the memory map instead of receiving a pickled copy of every frame.
        state = self.__dict__.copy()
        if self._cache_file is not None:
            state["_frames"] = None
        return state

    @property
    def frames_cache(self) -> np.ndarray:
        """uint8 ``[N, F, H, W, 3]``: every decoded frame of the split (memory-mapped when cached on disk)."""
        if self._frames is None:
            self._frames = np.load(self._cache_file, mmap_mode="r")
        return self._frames

    # ------------------------------------------------------------------------------------------ cache
    def _cache_path(self) -> Path:
        h = hashlib.sha1()
        for r in self.records:
            h.update(f"{r.path}|{r.labels}\n".encode())
        return self.root / "cache" / f"{self.split}-{self.layout}-{h.hexdigest()[:10]}.npy"

    def _decode_all(self, rec: VideoRecord) -> np.ndarray:
        if rec.is_video:
            return read_video(Path(rec.path), lambda n: np.arange(n), self.backend)[0]
        assert rec.template is not None  # not a video file: a frame folder, which has a template
        n = rec.num_frames or count_frames(Path(rec.path), rec.template)
        if n < 1:
            raise DataError(f"{rec.path}: no frames matching {rec.template}")
        return read_frame_folder(Path(rec.path), rec.template, np.arange(n))

    def _decode_readable(self) -> list:
        """Every record's frames; with ``skip_bad`` an unreadable video is dropped from ``records`` and
        listed in ``bad_items`` (the dataset gets shorter), else its one-line ``DataError`` propagates."""
        clips, keep = [], []
        for rec in self.records:
            try:
                clips.append(self._decode_all(rec))
            except DataError as e:
                if not self.skip_bad:
                    raise
                path, _, reason = str(e).partition(": ")
                self._record_bad(path, reason or str(e))
                continue
            keep.append(rec)
        if not keep:
            raise DataError(f"{self.root}: no readable videos in split '{self.split}'")
        self.records = keep
        return clips

    def _load_cache(self) -> np.ndarray:
        path = self._cache_path()
        if path.is_file():
            try:
                arr = np.load(path, mmap_mode="r")
                self._cache_file = path
                return arr
            except (OSError, ValueError):
                pass  # a damaged cache is rebuilt below
        clips = self._decode_readable()
        path = self._cache_path()  # fewer records when unreadable ones were skipped
        shapes = {c.shape for c in clips}
        if len(shapes) != 1:
            raise DataError(
                f"{self.root}: synthetic videos differ in shape {sorted(shapes)[:3]}; regenerate the set"
            )
        arr = np.stack(clips)
        try:
            path.parent.mkdir(exist_ok=True)
            tmp = path.parent / f".tmp-{uuid.uuid4().hex}.npy"  # not mkstemp: its mode 600 ignores the umask
            with open(tmp, "xb") as f:
                np.save(f, arr)
            os.replace(tmp, path)
        except OSError:
            return arr  # read-only root: keep the cache in memory only
        self._cache_file = path
        return np.load(path, mmap_mode="r")

    def _load_boxes(self) -> Optional[np.ndarray]:
        path = self.root / "boxes.json"
        if not path.is_file():
            return None
        try:
            table = json.loads(path.read_text())["boxes"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise DataError(f"{path}: not a valid boxes file ({e})") from None
        nf = self._frames.shape[1]
        out = np.full((len(self.records), nf, 4), np.nan, dtype=np.float32)
        for j, r in enumerate(self.records):
            b = table.get(r.key)
            if b is not None:
                b = _box_rows(b)
                if b.shape != (nf, 4):
                    raise DataError(f"{path}: boxes of '{r.key}' have shape {b.shape}, expected ({nf}, 4)")
                out[j] = b
        return out

    # ------------------------------------------------------------------------------------------ items
    def read_clip(self, rec: VideoRecord, j: int, rng: np.random.Generator):
        frames = self.frames_cache
        focus, glance = self.sample_indices(frames.shape[1], rng)
        idx = focus if glance is None else np.concatenate([focus, glance])
        return np.asarray(frames[j][idx]), focus, glance

    def source_boxes(self, j: int, focus: np.ndarray) -> Optional[np.ndarray]:
        return None if self._boxes is None else self._boxes[j][focus]


def _box_rows(rows: Any) -> np.ndarray:
    """float32 ``[F, 4]`` from one video's box list; a null row (no object in that frame) becomes NaN.
    Anything malformed gives shape ``(0,)``, which the caller reports."""
    try:
        return np.asarray([[np.nan] * 4 if f is None else f for f in rows], dtype=np.float32)
    except (TypeError, ValueError):
        return np.zeros(0, dtype=np.float32)


class _SyntheticSource(DatasetSource):
    """A synthetic benchmark: the generator's files, and its default set generated on first use."""

    dataset_class = SyntheticDataset
    generated = True

    def __init__(self, info: DatasetInfo, params: Dict[str, Any]) -> None:
        super().__init__(
            info,
            [
                twentybn_csv("synthetic", "frames", "{:05d}.jpg", strict=True),
                twentybn_csv("synthetic", "frames", "{:05d}.jpg", videos=("videos", ".mp4"), strict=True),
            ],
        )
        self.params = dict(params)  # SynthParams fields of the default set (the rest: SynthParams defaults)

    def default_root(self) -> Path:
        from bench.data.synthetic_files import default_cache_dir, ensure_synthetic

        return ensure_synthetic(default_cache_dir(), **self.params)


_EXACT = "no flip and no crop jitter, so the fine patterns and the boxes stay exact"


def _register(name: str, params: Dict[str, Any], text: str) -> _SyntheticSource:
    p = SynthParams(**params)
    variant = "video" if p.ordered else "frame"
    return register_source(
        _SyntheticSource(
            DatasetInfo(
                name,
                [],
                flip=False,
                scales=(1.0,),
                num_classes=p.classes,
                variant=variant,
                description=f"{text}; boxes known; {_EXACT}",
            ),
            params,
        )
    )


SYNTHETIC = _register(
    "synthetic",
    PAPER_FRAME,
    "the synthetic focus benchmark in the papers' regime (docs/benchmarks.md): "
    "an object drifting anywhere, a coarse cue the glance sees, fine patterns only a patch resolves",
)
SYNTHETIC_HARD = _register(
    "synthetic_hard",
    HARD_FRAME,
    "the hard regime: a small object far off-centre on an arc, "
    "no coarse cue; random and centre patches rarely hold it",
)
SYNTHETIC_VIDEO = _register(
    "synthetic_video",
    PAPER_VIDEO,
    "the Sth-Sth/Jester variant's benchmark in the papers' "
    "regime (one patch location per video): the order of two fine patterns decides",
)
SYNTHETIC_VIDEO_HARD = _register(
    "synthetic_video_hard",
    HARD_VIDEO,
    "the video variant's hard regime: the object "
    "near one spot far off-centre, passing the centre only briefly",
)
SYNTHETIC_TEMPORAL = _register(
    "synthetic_temporal",
    TEMPORAL_FRAME,
    "the temporal benchmark: `synthetic` with the object in a random window of 4 of the 16 frames only, "
    "so frame selection matters",
)
