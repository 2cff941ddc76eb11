"""The ``summary.json`` keys both methods share (design.md §Runs), built in one place.

Each runner adds its method's own keys (V1: stages, RL; V2: ablation switches, early exit) on top.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Sequence

import torch

from bench.config import RunConfig
from bench.timing import StageClock, peak_memory_mb


def common_summary(cfg: RunConfig, preset: Any, results: Mapping[str, Any], flops: Any, clock: StageClock,
                   stage_names: Sequence[str], curve: list, epoch_seconds: Sequence[float], device: torch.device,
                   *, multilabel: bool, num_classes: int, world_size: int, run_dir: str) -> Dict[str, Any]:
    """results: {"learned", "random", "centre"} -> EvalResult; flops: FlopsReport; curve: evaluated epochs."""
    learned = results["learned"]
    return {
        "method": cfg.method, "dataset": cfg.dataset, "preset": cfg.preset, "arch": cfg.arch,
        "patch_size": preset.patch_size, "seed": cfg.seed,
        "top1": learned.top1, "top1_best": max((p["top1"] for p in curve), default=None), "map": learned.map,
        "gflops_per_video": flops.gflops_per_video, "gflops_by_component": flops.by_component,
        "gflops_per_step": flops.per_step,
        "train_seconds": clock.total, "stage_seconds": {n: clock.seconds[n] for n in stage_names},
        # wall-clock x devices used (the world size): a multi-device run's time read as device time
        "train_device_seconds": clock.total * world_size,
        "stage_device_seconds": {n: clock.seconds[n] * world_size for n in stage_names},
        "epoch_seconds": (clock.total / len(epoch_seconds)) if epoch_seconds else None,
        "data_wait_share": clock.data_wait_share, "peak_memory_mb": peak_memory_mb(device),
        "patch_eval": {name: r.top1 for name, r in results.items()},
        "patch_eval_map": {name: r.map for name, r in results.items()} if multilabel else None,
        "coverage": learned.coverage, "tracking": learned.tracking,
        "coverage_by_mode": {name: r.coverage for name, r in results.items()},
        "curve": curve, "num_val_videos": learned.num_videos, "num_classes": num_classes,
        "device": str(device), "world_size": world_size, "run_dir": run_dir,
    }
