"""``summary.json``, assembled in one place: the keys every run has, then the method's own
(``Method.summary_extras``), for a trained run and an evaluated checkpoint alike (its keys:
docs/results-schema.md)."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from bench.methods import PlanContext, RunOutcome
from bench.regime import regime_record
from bench.training.timing import peak_memory_mb


def build_summary(
    run: Any,
    ctx: PlanContext,
    outcome: RunOutcome,
    state: Any,
    curve: Sequence[Mapping[str, Any]],
    stage_epochs: Mapping[str, int],
    *,
    eval_split: str,
    run_dir: str,
    kind: str = "trained",
    skipped: Optional[Callable[[], Mapping[str, List[str]]]] = None,
    extra: Optional[Mapping[str, Any]] = None,
) -> Dict[str, Any]:
    """run: the ``bench.runs.resolved.ResolvedRun``; state: the driver's ``TrainState`` (clock, epoch times);
    curve: the evaluated epochs; stage_epochs: {stage: epochs} of the stages the run trained."""
    cfg, preset, method = run.cfg, run.preset, run.method
    results, flops, clock = outcome.results, outcome.flops, state.clock
    learned, names = results["learned"], list(outcome.stages_run)
    world_size = ctx.env.world_size
    summary: Dict[str, Any] = {
        "method": cfg.method,
        "dataset": cfg.dataset,
        "preset": cfg.preset,
        "arch": cfg.arch,
        "patch_size": preset.patch_size,
        "seed": cfg.seed,
        "top1": learned.top1,
        "top1_best": max((p["top1"] for p in curve), default=None),
        "map": learned.map,
        "gflops_per_video": flops.gflops_per_video,
        "gflops_by_component": flops.by_component,
        "gflops_per_step": flops.per_step,
        "train_seconds": clock.total,
        "stage_seconds": {n: clock.seconds[n] for n in names},
        # wall-clock x devices used (the world size): a multi-device run's time read as device time
        "train_device_seconds": clock.total * world_size,
        "stage_device_seconds": {n: clock.seconds[n] * world_size for n in names},
        "epoch_seconds": (clock.total / len(state.epoch_seconds)) if state.epoch_seconds else None,
        "data_wait_share": clock.data_wait_share,
        "peak_memory_mb": peak_memory_mb(ctx.device),
        "patch_eval": {name: r.top1 for name, r in results.items()},
        "patch_eval_map": {name: r.map for name, r in results.items()} if ctx.multilabel else None,
        "coverage": learned.coverage,
        "tracking": learned.tracking,
        "coverage_by_mode": {name: r.coverage for name, r in results.items()},
        "curve": list(curve),
        "num_val_videos": learned.num_videos,
        "num_classes": ctx.num_classes,
        "device": str(ctx.device),
        "world_size": world_size,
        "run_dir": run_dir,
        "kind": kind,
        "protocol": cfg.protocol,
        "method_title": method.title,
        "variant": run.variant,
        "params": dataclasses.asdict(preset.train),
        "stages_run": names,
        "stage_epochs": dict(stage_epochs),
        "epochs": sum(stage_epochs.values()),
        "stage_results": outcome.stage_results,
        "eval_split": eval_split,
        "train_seconds_no_pretrain": clock.total
        - sum(clock.seconds.get(n, 0.0) for n in method.pretraining_stages),
        "regime": regime_record(preset),
        **(extra or {}),
    }
    summary.update(method.summary_extras(ctx, outcome))
    if skipped is not None:  # after the method's keys, whose evaluation may read more of the training split
        summary["skipped_items"] = dict(skipped())
    return summary


def skipped_counts(summary: Mapping[str, Any]) -> Dict[str, int]:
    """{split: number of items --skip-bad dropped} of a summary (empty when none were)."""
    return {split: len(paths) for split, paths in (summary.get("skipped_items") or {}).items() if paths}
