"""``VideoDataset``: one split of a dataset as a map-style torch Dataset of clip dicts.

An item (the batch is the same dict with a leading B, from the default collate):

- ``frames``  float32 ``[T, 3, S, S]`` focus frames, ImageNet-normalised (also the glance frames
  when ``spec.glance_frames`` is None)
- ``glance``  float32 ``[Tg, 3, S, S]``, only when ``spec.glance_frames`` is set
- ``label``   int64 scalar (the first label)
- ``labels``  int64 ``[3]`` all labels padded with -1 (mAP)
- ``boxes``   float32 ``[T, 4]`` object box (x0, y0, x1, y1) in pixels of ``frames``; NaN where unknown
- ``index``   int64 scalar, the item's index

Randomness: ``load_item(i, rng)`` draws every random choice of item ``i`` (TSN offsets, crop, flip) from
``rng``; the loader passes ``item_rng(seed, epoch_key, i)`` so items do not depend on worker RNGs.
``dataset[i]`` draws a fresh stream from torch's global RNG.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path
from typing import Dict, List, Optional, Tuple, cast

import numpy as np
import torch
from torch.utils.data import Dataset

from bench.data.lists import MAX_LABELS
from bench.data.readers import count_frames, read_frame_folder, read_video
from bench.data.sampling import global_rng, order_frames, tsn_indices
from bench.data.transforms import apply_geometry, eval_geometry, map_boxes, train_geometry
from bench.data.types import ClipSpec, DatasetInfo, Index, VideoRecord
from bench.errors import DataError


class VideoDataset(Dataset):
    """Clips of one split. Attributes: ``num_classes``, ``classes``, ``multilabel``, ``flip``,
    ``bad_items``."""

    #: ``preflight`` opens every item's header; False for datasets that decoded every item when built.
    needs_preflight = True

    def __init__(
        self,
        info: DatasetInfo,
        index: Index,
        root: Path,
        split: str,
        spec: ClipSpec,
        *,
        train: bool,
        backend: str = "auto",
        skip_bad: bool = False,
    ) -> None:
        self.info = info
        self.name = info.name
        self.root = Path(root)
        self.split = split
        self.spec = spec
        self.train = train
        self.backend = backend
        self.skip_bad = skip_bad
        self.layout = index.layout
        self.classes: List[str] = list(index.classes)
        self.records: List[VideoRecord] = list(index.records)
        self.num_classes = len(self.classes)
        self.multilabel = info.multilabel
        self.flip = info.flip
        self._bad_local: List[Tuple[str, str]] = []
        # Workers are copies of this object: they append bad items to a shared file the parent reads.
        self._bad_log = Path(tempfile.gettempdir()) / f"adabench-bad-{os.getpid()}-{uuid.uuid4().hex[:8]}.tsv"
        self._owner = os.getpid()
        for problem in index.problems:  # only reached with skip_bad (create_dataset raises otherwise)
            self._record_bad(problem.split(": ", 1)[0], problem.split(": ", 1)[-1])

    def __len__(self) -> int:
        return len(self.records)

    # ---------------------------------------------------------------------------------- bad items
    def _record_bad(self, path: str, reason: str) -> None:
        self._bad_local.append((path, reason))
        with open(self._bad_log, "a", encoding="utf-8") as f:
            f.write(f"{path}\t{reason}\n".replace("\r", " "))

    @property
    def bad_items(self) -> List[Tuple[str, str]]:
        """(path, reason) of every item skipped so far, from this process and its DataLoader workers: one
        entry per item (its first reason)."""
        items = list(self._bad_local)
        if self._bad_log.is_file():
            for ln in self._bad_log.read_text(encoding="utf-8").splitlines():
                path, _, reason = ln.partition("\t")
                items.append((path, reason))
        first: Dict[str, str] = {}
        for path, reason in items:
            first.setdefault(path, reason)
        return list(first.items())

    def __del__(self) -> None:
        if getattr(self, "_owner", None) == os.getpid():
            try:
                self._bad_log.unlink(missing_ok=True)
            except Exception:
                pass

    def drop_records(self, bad: Dict[int, Tuple[str, str]]) -> None:
        """Remove the records ``bad`` maps to their (path, reason), listing them in ``bad_items``
        (a preflight found them unreadable; call before any loader exists)."""
        self.records = [r for k, r in enumerate(self.records) if k not in bad]
        for path, reason in bad.values():
            self._record_bad(path, reason)

    # ---------------------------------------------------------------------------------- items
    def __getitem__(self, i: int) -> Optional[Dict[str, torch.Tensor]]:
        return self.load_item(int(i), global_rng())

    def load_item(self, i: int, rng: np.random.Generator) -> Optional[Dict[str, torch.Tensor]]:
        """Item ``i`` with every random choice drawn from ``rng`` (see ``bench.data.sampling.item_rng``).

        With ``skip_bad`` an unreadable item is dropped, never replaced by another: it is listed once in
        ``bad_items`` (by its video or frame folder, with the first reason) and None is returned, which the
        loader's collate leaves out of the batch (``bench.data.loader.collate_items``); an item once found
        bad stays dropped in every later epoch, whatever frames it would sample."""
        rec = self.records[i]
        if self.skip_bad and str(rec.path) in self._known_bad():
            return None
        try:
            return self._load(i, rng)
        except DataError as e:
            if not self.skip_bad:
                raise
            self._record_bad(str(rec.path), str(e))
            return None

    def _known_bad(self) -> set:
        """Paths of the items found bad so far by this process or its workers (the shared log, re-read
        only when it has grown)."""
        size = self._bad_log.stat().st_size if self._bad_log.is_file() else 0
        if size != getattr(self, "_bad_size", -1):
            self._bad_size, self._bad_paths = size, {p for p, _ in self.bad_items}
        return self._bad_paths

    def sample_indices(
        self, num_frames: int, rng: np.random.Generator
    ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """(focus ``[T]``, glance ``[Tg]`` or None) 0-based frame indices, in model order."""
        spec = self.spec
        focus = order_frames(
            tsn_indices(num_frames, spec.frames, train=self.train, rng=rng), spec.frame_order
        )
        glance = None
        if spec.glance_frames is not None:  # sampled independently of the focus frames, as TSM does
            glance = order_frames(
                tsn_indices(num_frames, spec.glance_frames, train=self.train, rng=rng), spec.frame_order
            )
        return focus, glance

    def read_clip(
        self, rec: VideoRecord, j: int, rng: np.random.Generator
    ) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
        """uint8 frames ``[T (+ Tg), H, W, 3]`` plus the focus and glance indices used."""
        chosen: Dict[str, Optional[np.ndarray]] = {}

        def pick(num_frames: int) -> np.ndarray:
            focus, glance = self.sample_indices(num_frames, rng)
            chosen["focus"], chosen["glance"] = focus, glance
            return focus if glance is None else np.concatenate([focus, glance])

        if rec.is_video:
            frames, _ = read_video(Path(rec.path), pick, self.backend)
        else:
            assert rec.template is not None  # not a video file: a frame folder, which has a template
            folder = Path(rec.path)
            num = rec.num_frames if rec.num_frames is not None else count_frames(folder, rec.template)
            if num < 1:
                raise DataError(f"{folder}: no frames matching {rec.template}")
            if not folder.is_dir():
                raise DataError(f"{folder}: frame folder not found (listed at {rec.source})")
            try:
                frames = read_frame_folder(folder, rec.template, pick(num))
            except DataError as e:  # say how far the list and the folder disagree
                have = count_frames(folder, rec.template)
                if rec.num_frames is None or have >= rec.num_frames:
                    raise
                raise DataError(
                    f"{e}; {rec.source} lists {rec.num_frames} frames, the folder has {have}"
                ) from None
        return frames, cast(np.ndarray, chosen["focus"]), chosen["glance"]  # pick() set both

    def source_boxes(self, j: int, focus: np.ndarray) -> Optional[np.ndarray]:
        """Object boxes ``[T, 4]`` in source pixels for the focus indices, or None (unknown)."""
        return None

    def _load(self, j: int, rng: np.random.Generator) -> Dict[str, torch.Tensor]:
        rec = self.records[j]
        raw, focus, glance = self.read_clip(rec, j, rng)
        h, w = raw.shape[1:3]
        spec = self.spec
        if self.train:
            geo = train_geometry(h, w, spec.input_size, self.info.scales, self.flip, rng)
        else:
            geo = eval_geometry(h, w, spec.input_size, spec.resize)
        t = len(focus)
        # --protocol official: the glance clip gets its own crop and flip, as the official Sth-Sth/Jester code
        separate = self.train and spec.independent_views and glance is not None
        clip = apply_geometry(raw[:t] if separate else raw, geo)
        labels = torch.full((MAX_LABELS,), -1, dtype=torch.int64)
        labels[: len(rec.labels)] = torch.tensor(rec.labels, dtype=torch.int64)
        src = self.source_boxes(j, focus)
        boxes = (
            torch.full((t, 4), float("nan"))
            if src is None
            else map_boxes(torch.as_tensor(src, dtype=torch.float32), geo, (h, w))
        )
        item = {
            "frames": clip[:t],
            "label": labels[0].clone(),
            "labels": labels,
            "boxes": boxes,
            "index": torch.tensor(j, dtype=torch.int64),
        }
        if separate:
            item["glance"] = apply_geometry(
                raw[t:], train_geometry(h, w, spec.input_size, self.info.scales, self.flip, rng)
            )
        elif glance is not None:
            item["glance"] = clip[t:]
        return item

    def __repr__(self) -> str:
        return (
            f"VideoDataset({self.name}, split={self.split}, layout={self.layout}, videos={len(self)}, "
            f"classes={self.num_classes}, train={self.train})"
        )
