"""``make_loader``: a seeded, optionally distributed DataLoader over a ``VideoDataset``.

Batches are the item dict with a leading B: ``frames`` float32 ``[B, T, 3, S, S]``, ``label`` ``[B]``,
``labels`` ``[B, 3]``, ``boxes`` ``[B, T, 4]``, ``index`` ``[B]`` (and ``glance`` ``[B, Tg, 3, S, S]``).
"""
from __future__ import annotations

import random
from typing import Optional

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

WORKER_TIMEOUT_S = 600  # watchdog: a decoder stuck in native code (decord #373) ends the run, not hangs it


def seed_worker(worker_id: int) -> None:
    """Seed numpy and ``random`` in a worker from torch's per-worker seed (itself from the loader's generator)."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_loader(dataset: Dataset, batch_size: int, *, train: bool, num_workers: int, seed: int,
                distributed: bool = False, drop_last: Optional[bool] = None) -> DataLoader:
    """DataLoader with reproducible shuffling and augmentation for a given ``seed``.

    Training shuffles and drops the last partial batch (``drop_last=None`` -> ``train``). With
    ``distributed`` a ``DistributedSampler`` splits the data over ranks; call ``loader.sampler.set_epoch(e)``
    each epoch. Workers persist across epochs when ``num_workers > 0``.
    """
    drop_last = train if drop_last is None else drop_last
    generator = torch.Generator()
    generator.manual_seed(seed)
    sampler = None
    if distributed:
        sampler = DistributedSampler(dataset, shuffle=train, seed=seed, drop_last=drop_last)
    workers = max(0, int(num_workers))
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=train if sampler is None else False,
        sampler=sampler,
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        drop_last=drop_last,
        generator=generator,
        worker_init_fn=seed_worker,
        persistent_workers=workers > 0,
        timeout=WORKER_TIMEOUT_S if workers > 0 else 0,
    )
