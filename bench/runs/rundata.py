"""The data side of a run: ``build_data(cfg, preset, env)`` -> ``RunData``, the loaders every method trains
and is evaluated with (train, val, learning curve; training videos in evaluation order on demand). With
``RunConfig.holdout`` a held-out part of the training split takes the validation split's place
(``bench.data.holdout``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import torch

from bench.presets import Preset
from bench.runs.config import RunConfig
from bench.training.runtime import DistEnv, default_num_workers, local_world_size

CURVE_VIDEOS = 1024  # the learning curve is scored on at most this many validation videos (evenly spaced)


def even_subset(dataset: Any, n: int) -> Any:
    """At most ``n`` items of ``dataset``, evenly spaced (deterministic), keeping its class attributes."""
    if len(dataset) <= n:
        return dataset
    keep = torch.linspace(0, len(dataset) - 1, n).round().long().unique().tolist()
    sub = torch.utils.data.Subset(dataset, keep)
    for attr in ("num_classes", "multilabel"):
        setattr(sub, attr, getattr(dataset, attr))
    return sub


@dataclass
class RunData:
    """The loaders of one run. ``train_eval_loader`` (training videos in evaluation order) is built on
    demand, for methods that need training-set predictions (e.g. early-exit thresholds). ``train_loader``
    is None when the data was built for evaluation only."""

    train_loader: Any
    val_loader: Any
    curve_loader: Any
    num_classes: int
    multilabel: bool
    datasets: List[Any]
    root: Path
    num_workers: int
    make: Callable[[str, bool], Any]
    loader: Callable[[Any, bool], Any]
    # the held-out split that replaces val (RunConfig.holdout), if any
    holdout: Optional[Dict[str, Any]] = None

    @property
    def eval_split(self) -> str:
        return "val" if self.holdout is None else "holdout"

    def train_eval_loader(
        self, max_videos: Optional[int], *, augmented: bool = False, seed: Optional[int] = None
    ) -> Any:
        """Training videos, unshuffled: with the evaluation transform (default) or the training augmentation
        (``augmented``); at most ``max_videos`` of them (None: all), evenly spaced, or drawn at random with
        ``seed``."""
        ds = self.make("train", augmented)
        self.datasets.append(ds)
        if self.holdout is not None:  # the videos trained on, never the held-out ones
            from bench.data.holdout import subset

            ds = subset(ds, self.holdout["train_indices"])
        if max_videos is not None and seed is not None and len(ds) > max_videos:
            from bench.data.holdout import subset

            g = torch.Generator().manual_seed(int(seed))
            return self.loader(
                subset(ds, sorted(torch.randperm(len(ds), generator=g)[:max_videos].tolist())), False
            )
        return self.loader(ds if max_videos is None else even_subset(ds, max_videos), False)


def build_data(
    cfg: RunConfig,
    preset: Preset,
    env: DistEnv,
    *,
    train: bool = True,
    independent_views: bool = False,
    curve_on_full_split: bool = False,
) -> RunData:
    """Train (augmented), val, and learning-curve loaders with the method's batch size (per rank).

    ``train=False``: evaluation only (no training loader; the training split is opened when a method asks
    for ``train_eval_loader``). ``curve_on_full_split``: the learning curve scores the whole validation split
    (the official codes select their checkpoint there); ``independent_views``: the glance view is augmented on
    its
    own (both from the run's ``bench.runs.resolved.Protocol``)."""
    from bench.data import ClipSpec, create_dataset, make_loader, preflight, resolve_data_root

    root = resolve_data_root(cfg.dataset, cfg.data_root)
    spec = ClipSpec(
        frames=preset.frames,
        glance_frames=preset.glance_frames,
        input_size=preset.input_size,
        resize=preset.resize,
        frame_order=preset.frame_order,
        independent_views=independent_views,
    )
    workers = default_num_workers(local_world_size()) if cfg.num_workers is None else cfg.num_workers

    def make(split: str, train: bool) -> Any:
        ds = create_dataset(cfg.dataset, root, split, spec, train=train, skip_bad=cfg.skip_bad)
        if cfg.preflight:  # every item's header, so a broken file stops the run before its first epoch
            preflight(ds, cfg.skip_bad)
        return ds

    def loader(ds: Any, train: bool) -> Any:
        return make_loader(
            ds,
            preset.batch_size,
            train=train,
            num_workers=workers,
            seed=cfg.seed,
            distributed=env.distributed,
        )

    train_ds = make("train", True) if train else None
    holdout = None
    if cfg.holdout and train_ds is not None:
        train_ds, val_ds, holdout = _hold_out(make, train_ds, cfg.holdout)
        datasets = [train_ds.dataset, val_ds.dataset]
    else:
        val_ds = make("val", False)
        datasets = [d for d in (train_ds, val_ds) if d is not None]
    classes = train_ds if train_ds is not None else val_ds
    val_loader = loader(val_ds, False)
    curve_loader = val_loader if curve_on_full_split else loader(even_subset(val_ds, CURVE_VIDEOS), False)
    return RunData(
        loader(train_ds, True) if train_ds is not None else None,
        val_loader,
        curve_loader,
        classes.num_classes,
        bool(classes.multilabel),
        datasets,
        Path(root),
        workers,
        make,
        loader,
        holdout,
    )


def _hold_out(make: Callable[[str, bool], Any], train_ds: Any, fraction: float) -> tuple:
    """(train', the holdout read with the evaluation transform, its record): the holdout replaces val."""
    from bench.data.holdout import HOLDOUT_SEED, holdout_split, item_labels, subset

    keep, held = holdout_split(item_labels(train_ds), fraction)
    eval_ds = make("train", False)
    if len(eval_ds) != len(train_ds):
        raise RuntimeError("the train split read twice has different lengths; the holdout would not line up")
    info = {
        "fraction": fraction,
        "seed": HOLDOUT_SEED,
        "train_videos": len(keep),
        "holdout_videos": len(held),
        "train_indices": keep,
    }
    return subset(train_ds, keep), subset(eval_ds, held), info
