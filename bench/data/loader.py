"""``make_loader`` and ``set_epoch``: seeded, optionally distributed loading whose every random choice is
a function of (seed, epoch key, item index).

The sampler yields ``(epoch_key, index)`` pairs, so the epoch travels with each index to whichever
worker reads it: persistent workers hold no RNG state of their own, an item is the same whatever worker
(or how many) reads it, and a run resumed at epoch k sees exactly the batches of an uninterrupted one.
The shuffling order is a function of (seed, epoch key) too.

Batches are the item dict with a leading B: ``frames`` float32 ``[B, T, 3, S, S]``, ``label`` ``[B]``,
``labels`` ``[B, 3]``, ``boxes`` ``[B, T, 4]``, ``index`` ``[B]`` (and ``glance`` ``[B, Tg, 3, S, S]``).
"""

from __future__ import annotations

import random
from typing import Any, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler, Subset, default_collate

from bench.data.sampling import item_rng

WORKER_TIMEOUT_S = 600  # watchdog: a decoder stuck in native code (decord #373) ends the run, not hangs it


def seed_worker(worker_id: int) -> None:
    """Seed numpy and ``random`` in a worker (items do not use them; third-party code might)."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def shuffle_order(n: int, seed: int, epoch_key: int) -> List[int]:
    """The training order of ``n`` items in epoch ``epoch_key``: a permutation fixed by (seed, epoch_key)."""
    return np.random.default_rng([int(seed) % 2**64, int(epoch_key) % 2**64]).permutation(n).tolist()


class EpochSampler(Sampler):
    """Yields ``(epoch_key, index)``: shuffled by (seed, key) in training, in order otherwise; with
    ``distributed`` the indices are this rank's shard from a ``DistributedSampler`` (seeded with ``seed``,
    its epoch set to the key, so it pads and splits exactly as torch does; ``num_replicas`` and ``rank``
    default to the process group's).

    ``set_epoch(key)`` fixes the key of the next pass; a pass without it uses the previous key + 1.
    """

    def __init__(
        self,
        dataset: Dataset,
        *,
        shuffle: bool,
        seed: int,
        distributed: bool = False,
        drop_last: bool = False,
        num_replicas: Optional[int] = None,
        rank: Optional[int] = None,
    ) -> None:
        self.n = len(dataset)  # type: ignore[arg-type]  # torch's Dataset stub declares no __len__
        self.shuffle = shuffle
        self.seed = int(seed)
        self.next_key = 0
        self.shard: Optional[DistributedSampler[Any]] = (
            DistributedSampler(dataset, num_replicas, rank, shuffle=shuffle, seed=seed, drop_last=drop_last)
            if distributed
            else None
        )

    def set_epoch(self, epoch_key: int) -> None:
        self.next_key = int(epoch_key)

    def indices(self, epoch_key: int) -> List[int]:
        """The item indices of pass ``epoch_key``, in the order they are read (this rank's only)."""
        if self.shard is not None:
            self.shard.set_epoch(epoch_key)
            return list(self.shard)
        return shuffle_order(self.n, self.seed, epoch_key) if self.shuffle else list(range(self.n))

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        key = self.next_key
        self.next_key = key + 1
        return iter([(key, i) for i in self.indices(key)])

    def __len__(self) -> int:
        return len(self.shard) if self.shard is not None else self.n


def _flatten(dataset: Dataset) -> Tuple[Dataset, Optional[List[int]]]:
    """(base dataset, positions in it) through any chain of ``Subset``s (None: the identity)."""
    positions: Optional[List[int]] = None
    while isinstance(dataset, Subset):
        inner = [int(i) for i in dataset.indices]
        positions = inner if positions is None else [inner[p] for p in positions]
        dataset = dataset.dataset
    return dataset, positions


class KeyedItems(Dataset):
    """Reads ``(epoch_key, i)`` as item ``i`` of ``dataset`` with ``item_rng(seed, epoch_key, j)``, where
    ``j``
    is the item's index in the underlying dataset (``Subset``s are looked through). Datasets without
    ``load_item`` are indexed plainly."""

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset = dataset
        self.seed = int(seed)
        self._base, self._positions = _flatten(dataset)

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]  # torch's Dataset stub declares no __len__

    def __getitem__(self, key_index: Sequence[int]):
        key, i = key_index
        j = int(i) if self._positions is None else self._positions[int(i)]
        load = getattr(self._base, "load_item", None)
        return self._base[j] if load is None else load(j, item_rng(self.seed, key, j))


def collate_items(items: List[Any]) -> Any:
    """The default collate without the items a ``skip_bad`` dataset dropped (None); None when every item
    of the batch was dropped (the loops skip it: ``EpochTimer.iterate``,
    ``bench.training.evaluation.collect``)."""
    kept = [item for item in items if item is not None]
    return default_collate(kept) if kept else None


def make_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    train: bool,
    num_workers: int,
    seed: int,
    distributed: bool = False,
    drop_last: Optional[bool] = None,
) -> DataLoader:
    """DataLoader whose order and items are functions of (``seed``, epoch key) only.

    Training shuffles and drops the last partial batch (``drop_last=None`` -> ``train``). With
    ``distributed`` a ``DistributedSampler`` splits the data over ranks. Call ``set_epoch(loader, key)``
    before each pass. Workers persist across epochs when ``num_workers > 0``; the result does not
    depend on their number. ``loader.dataset`` is a ``KeyedItems`` view; ``.dataset.dataset`` the one given.
    """
    drop_last = train if drop_last is None else drop_last
    generator = torch.Generator()  # only feeds the workers' base seeds (seed_worker); items do not use it
    generator.manual_seed(int(seed) % 2**63)
    workers = max(0, int(num_workers))
    return DataLoader(
        KeyedItems(dataset, seed),
        batch_size=batch_size,
        sampler=EpochSampler(dataset, shuffle=train, seed=seed, distributed=distributed, drop_last=drop_last),
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        drop_last=drop_last,
        generator=generator,
        worker_init_fn=seed_worker,
        collate_fn=collate_items,
        persistent_workers=workers > 0,
        timeout=WORKER_TIMEOUT_S if workers > 0 else 0,
    )


def set_epoch(loader: Iterable[Any], epoch_key: int) -> None:
    """Make the next pass over ``loader`` the pass of ``epoch_key`` (any int, e.g. ``1000 * stage + epoch``):
    its order, its shard under DDP and every item's randomness. Call it before each epoch; a resumed
    run that calls it with the same key gets the same batches.

    For a loader not made by ``make_loader``: sets the epoch of its sampler if it has ``set_epoch`` (a
    ``DistributedSampler``) and reseeds its shuffling generator from the key.
    """
    sampler = getattr(loader, "sampler", None)
    if isinstance(sampler, EpochSampler):
        sampler.set_epoch(epoch_key)
        return
    if sampler is not None and hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch_key)
    generator = getattr(loader, "generator", None)
    if isinstance(generator, torch.Generator):
        generator.manual_seed(int(np.random.SeedSequence(int(epoch_key) % 2**64).generate_state(1)[0]))
