"""A part of the training split held out for tuning (``RunConfig.holdout``): hyper-parameters are chosen on
it, never on the validation split.

The split is a function of the items' class labels and the fraction only (by item index, stratified by
class, shuffled with a fixed seed), so every method, candidate and training seed of a sweep sees the same
train' and holdout items and candidates are compared on identical videos.
"""

from __future__ import annotations

from typing import Any, List, Sequence, Tuple, Union

import numpy as np
import torch

from bench.errors import UsageError

HOLDOUT_SEED = 0  # fixed: the split must not change with the training seed (candidates are paired by item)


def check_fraction(fraction: float) -> float:
    if not 0.0 <= float(fraction) < 1.0:
        raise UsageError(f"--holdout {fraction}: expected a fraction of the training split in [0, 1)")
    return float(fraction)


def item_labels(dataset: Any) -> List[int]:
    """The training label of every item, from the dataset's list records (no decoding)."""
    records = getattr(dataset, "records", None)
    if records is None:  # a dataset without list records: one stratum
        return [0] * len(dataset)
    return [int(r.labels[0]) for r in records]


def holdout_split(
    labels: Union[Sequence[int], np.ndarray], fraction: float, seed: int = HOLDOUT_SEED
) -> Tuple[List[int], List[int]]:
    """(train' indices, holdout indices), both sorted: per class, ``round(fraction * n)`` of its items (at
    least
    one, and at least one left for training when it has two or more) drawn by a permutation seeded with
    ``(seed, class)``. A one-line UsageError when the holdout would be empty or take a class's only item."""
    fraction = check_fraction(fraction)
    labels = np.asarray(labels, dtype=np.int64)
    held: List[int] = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if len(idx) < 2:
            raise UsageError(
                f"--holdout {fraction:g}: class {int(c)} has {len(idx)} training item(s); "
                "holding one out would leave none to train on"
            )
        k = min(len(idx) - 1, max(1, int(round(fraction * len(idx)))))
        order = np.random.default_rng([int(seed), int(c)]).permutation(len(idx))
        held += idx[order[:k]].tolist()
    held_set = set(held)
    keep = [i for i in range(len(labels)) if i not in held_set]
    return keep, sorted(held)


def subset(dataset: Any, indices: Sequence[int]) -> Any:
    """``dataset`` restricted to ``indices``, keeping the class attributes the runner reads."""
    sub = torch.utils.data.Subset(dataset, list(indices))
    for attr in ("num_classes", "multilabel"):
        setattr(sub, attr, getattr(dataset, attr))
    return sub
