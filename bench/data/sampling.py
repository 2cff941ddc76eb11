"""Which frames of a video a clip uses: TSN segment sampling and V2's coarse-to-fine order.

All indices are 0-based (the file templates add 1 where the on-disk names start at 1).
"""

from __future__ import annotations

from functools import lru_cache
from typing import List, Optional

import numpy as np
import torch


def item_rng(seed: int, epoch_key: int, index: int) -> np.random.Generator:
    """The random stream of one item in one epoch: a function of (seed, epoch key, item index) only.

    Every random choice an item makes (TSN offsets, crop, flip) draws from it, so an item's content does
    not depend on which DataLoader worker reads it, on how many workers there are, or on what ran before.
    """
    return np.random.default_rng([int(seed) % 2**64, int(epoch_key) % 2**64, int(index) % 2**64])


def global_rng() -> np.random.Generator:
    """A fresh stream drawn from torch's global RNG (items read without a loader; ``torch.manual_seed``
    fixes it)."""
    return np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))


def tsn_indices(
    num_frames: int, segments: int, *, train: bool, rng: Optional[np.random.Generator] = None
) -> np.ndarray:
    """TSN sampling: split ``[0, num_frames)`` into ``segments`` equal parts and take one frame from each.

    Training takes a uniformly random frame inside each segment; evaluation takes the segment centre
    (``floor(tick * (k + 0.5))``, the TSN/TSM test rule). Videos shorter than ``segments`` repeat frames.
    Training draws from ``rng`` (default: ``global_rng()``).
    Returns int64 ``[segments]``, non-decreasing, each in ``[0, num_frames)``.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    k = np.arange(segments, dtype=np.float64)
    tick = num_frames / segments
    if not train:
        return np.minimum(np.floor(tick * (k + 0.5)).astype(np.int64), num_frames - 1)
    start = np.floor(tick * k).astype(np.int64)
    stop = np.maximum(np.floor(tick * (k + 1)).astype(np.int64), start + 1)  # exclusive, disjoint segments
    u = (rng if rng is not None else global_rng()).random(segments)
    return np.minimum(start + np.floor(u * (stop - start)).astype(np.int64), stop - 1)


@lru_cache(maxsize=None)
def _coarse2fine(n: int) -> tuple:
    if n <= 2:
        return tuple(range(n))
    order: List[int] = [(n - 1) // 2, 0, n - 1]
    chosen = sorted(set(order))
    while len(order) < n:
        # Bisect every gap between consecutive chosen positions, left to right.
        mids = [(a + b) // 2 for a, b in zip(chosen, chosen[1:]) if b - a >= 2]
        order += mids
        chosen = sorted(chosen + mids)
    return tuple(order)


def coarse2fine_order(n: int) -> List[int]:
    """V2's input order: the middle frame, both ends, then midpoints of the gaps, level by level.

    Any prefix of the order spreads over the whole video, which is what the early exit relies on.
    n=8 -> [3, 0, 7, 1, 5, 2, 4, 6]; n=16 -> [7, 0, 15, 3, 11, 1, 5, 9, 13, 2, 4, 6, 8, 10, 12, 14].
    """
    return list(_coarse2fine(n))


def order_frames(indices: np.ndarray, frame_order: str) -> np.ndarray:
    """Reorder sampled indices ``[T]`` for the model: ``time`` keeps them, ``coarse2fine`` permutes."""
    if frame_order == "time":
        return indices
    return indices[np.asarray(coarse2fine_order(len(indices)), dtype=np.int64)]
