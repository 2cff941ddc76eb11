"""``run_v2(cfg, run)``: one complete AdaFocusV2 run into its run directory.

Data -> network -> one-stage training (resumable) -> evaluation with learned / random / centre
patches -> FLOPs -> conditional early-exit curve -> ``summary.json`` (written last).
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

from adafocus_v2 import early_exit
from adafocus_v2.trainer import V2Trainer
from bench.checkpoint import unwrap
from bench.config import RunConfig
from bench.evaluation import EvalResult, collect, evaluate, patch_eval_results
from bench.experiment import share_initial_state
from bench.flops import count_flops
from bench.methods import METHODS
from bench.models import build_network
from bench.presets import Preset, get_preset
from bench.rundir import RunDir, collect_manifest
from bench.summary import common_summary
from bench import runtime
from bench.runtime import (DistEnv, barrier, broadcast_object, default_num_workers, gather_objects,
                           start_process)
from bench.timing import reset_peak_memory

# Early-exit thresholds need training-set logits; like the official code on Mini-Kinetics,
# a large training set is subsampled (deterministically) to this many videos.
EXIT_TRAIN_VIDEOS = 20000


def resolve_preset(cfg: RunConfig, method: str = "v2") -> Preset:
    """The run's preset: the named one with the command line's patch size, epochs and overrides."""
    overrides: Dict[str, Any] = dict(cfg.overrides)
    if cfg.patch_size is not None:
        overrides["patch_size"] = cfg.patch_size
    if cfg.epochs is not None:
        overrides["epochs"] = cfg.epochs
    return get_preset(cfg.dataset, cfg.preset, method=method, arch=cfg.arch, **overrides)


def eval_epochs(preset: Preset) -> List[int]:
    """0-based epochs after which the curve gets a point (the last epoch is evaluated by the run).

    Tiny presets: every epoch (cheap). Paper presets: every 5th epoch and each of the last 10,
    the V2 code's cadence.
    """
    n = preset.epochs
    if preset.name == "tiny":
        return list(range(n - 1))
    return [e for e in range(n - 1) if (e + 1) % 5 == 0 or e >= n - 10]


def _scores(r: EvalResult) -> Dict[str, Optional[float]]:
    return {"top1": r.top1, "map": r.map}


def _exit_subset(dataset: Any, seed: int) -> Any:
    if len(dataset) <= EXIT_TRAIN_VIDEOS:
        return dataset
    g = torch.Generator().manual_seed(seed)
    keep = torch.randperm(len(dataset), generator=g)[:EXIT_TRAIN_VIDEOS].sort().values.tolist()
    subset = torch.utils.data.Subset(dataset, keep)
    for attr in ("num_classes", "multilabel"):
        setattr(subset, attr, getattr(dataset, attr))
    return subset


def early_exit_curve(net: torch.nn.Module, data: "RunData", val: EvalResult, per_step_gflops: List[float],
                     device: torch.device, env: DistEnv, amp: bool) -> List[Dict[str, Any]]:
    """The V2+ curve. Thresholds come from training-set logits computed with the *evaluation*
    transform (the official script used the training augmentation, pitfall 17), so train and val
    confidences are measured the same way."""
    if val.step_logits.shape[1] < 2:
        return []  # one classifier step (video variant): nothing to exit early from
    train = collect(net, data.train_eval_loader, device, patch_mode="policy", env=env, amp=amp)
    points = early_exit.exit_curve(
        train["step_logits"], val.step_logits, val.labels, per_step_gflops,
        val_labels_multi=val.labels_multi if data.multilabel else None, num_classes=data.num_classes)
    return [p.to_dict() for p in points]


@dataclasses.dataclass
class RunData:
    train_loader: Any
    val_loader: Any
    train_eval_loader: Any
    num_classes: int
    multilabel: bool
    datasets: List[Any]
    root: Path
    num_workers: int


def build_data(cfg: RunConfig, preset: Preset, env: DistEnv) -> RunData:
    """Train (augmented), val and train-with-eval-transform loaders from the data layer."""
    from bench.data import ClipSpec, create_dataset, make_loader, resolve_data_root

    root = resolve_data_root(cfg.dataset, cfg.data_root)
    spec = ClipSpec(frames=preset.frames, glance_frames=preset.glance_frames, input_size=preset.input_size,
                    resize=preset.resize, frame_order=preset.frame_order)
    make = lambda split, train: create_dataset(cfg.dataset, root, split, spec, train=train,  # noqa: E731
                                               skip_bad=cfg.skip_bad)
    train_ds, val_ds, train_eval_ds = make("train", True), make("val", False), make("train", False)
    workers = default_num_workers(local_world_size()) if cfg.num_workers is None else cfg.num_workers
    kw = dict(num_workers=workers, seed=cfg.seed, distributed=env.distributed)
    return RunData(
        train_loader=make_loader(train_ds, preset.batch_size, train=True, **kw),
        val_loader=make_loader(val_ds, preset.batch_size, train=False, **kw),
        train_eval_loader=make_loader(_exit_subset(train_eval_ds, cfg.seed), preset.batch_size, train=False, **kw),
        num_classes=train_ds.num_classes, multilabel=bool(train_ds.multilabel),
        datasets=[train_ds, val_ds, train_eval_ds], root=Path(root), num_workers=workers)


def local_world_size() -> int:
    """Ranks on this machine (torchrun's LOCAL_WORLD_SIZE; 1 without torchrun)."""
    return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def cpu_threads(num_workers: int) -> int:
    """Intra-op threads for CPU training (``bench.runtime.cpu_threads``: OMP_NUM_THREADS if set, else
    this rank's share of the cores left after the DataLoader workers).

    Oversubscribing cores makes OpenMP threads spin against each other; on a busy 2-core machine a
    tiny-preset step measured ~100x slower with 2 threads than with 1 while another job ran."""
    return runtime.cpu_threads(num_workers, local_world_size())


def _bad_items(datasets: List[Any], env: DistEnv) -> List[Any]:
    """Skipped items of every rank (each rank reads its own shard)."""
    mine = [tuple(item) for ds in datasets for item in getattr(ds, "bad_items", [])]
    return list(dict.fromkeys(item for items in gather_objects(mine, env) for item in items))


@METHODS.register("v2")
def run_v2(cfg: RunConfig, run: RunDir) -> Dict[str, Any]:
    """Train and evaluate AdaFocusV2 as ``cfg`` says, in ``run``; returns the summary.

    A complete run (``summary.json`` present) is returned as it is; an interrupted one resumes
    from ``checkpoints/last.pt``.
    """
    if run.is_complete():
        return run.read_summary()
    env = start_process(cfg.device, cfg.seed, cfg.deterministic)
    device = env.device
    preset = resolve_preset(cfg)
    data = build_data(cfg, preset, env)
    if device.type == "cpu":
        torch.set_num_threads(cpu_threads(data.num_workers))
    net = build_network(preset, num_classes=data.num_classes, method="v2")
    shared = share_initial_state(net, cfg.init_state) if env.is_main else None
    shared = broadcast_object(shared, env)
    if env.is_main:
        run.create()
        run.acquire_lock()
    try:
        if env.is_main:
            run.write_config(cfg, preset)
            run.write_manifest(collect_manifest(cfg, device, env.world_size, extra={
                "dataset_root": str(data.root), "num_classes": data.num_classes,
                "torch_threads": torch.get_num_threads(), "initial_state": shared,
                "ablation": {"aux_supervision": cfg.aux_supervision, "diversity": cfg.diversity,
                             "stop_gradient": cfg.stop_gradient}}))
        summary = _train_and_evaluate(cfg, preset, run, data, net, env)
        bad = _bad_items(data.datasets, env)
        if env.is_main:
            run.add_bad_items(bad)
            run.write_summary(summary)
        barrier(env)
        return summary
    finally:
        if env.is_main:
            run.release_lock()


def _train_and_evaluate(cfg: RunConfig, preset: Preset, run: RunDir, data: RunData, net: torch.nn.Module,
                        env: DistEnv) -> Dict[str, Any]:
    device = env.device
    reset_peak_memory(device)
    trainer = V2Trainer(net, preset, device, aux_supervision=cfg.aux_supervision, diversity=cfg.diversity,
                        stop_gradient=cfg.stop_gradient, env=env, progress=cfg.progress, seed=cfg.seed)
    evaluate_kw = dict(seed=cfg.seed, env=env, amp=trainer.amp, num_classes=data.num_classes,
                       multilabel=data.multilabel)
    state = trainer.fit(run, data.train_loader, eval_epochs=eval_epochs(preset),
                        evaluate_fn=lambda epoch: _scores(evaluate(trainer.net, data.val_loader, device,
                                                                   **evaluate_kw)))
    results = patch_eval_results(trainer.net, data.val_loader, device, **evaluate_kw)
    learned = results["learned"]
    if not state.curve or state.curve[-1]["epoch"] != preset.epochs:  # the last epoch's point
        state.curve.append({"epoch": preset.epochs, "train_seconds": state.clock.total, **_scores(learned)})
        if state.history:
            state.history[-1].update({"val_top1": learned.top1, "val_map": learned.map})
        trainer.save(run)
    flops = count_flops(unwrap(trainer.net), preset)
    exit_points = early_exit_curve(trainer.net, data, learned, flops.per_step, device, env, trainer.amp)
    summary = common_summary(cfg, preset, results, flops, state.clock, list(state.clock.seconds), state.curve,
                             state.epoch_seconds, device, multilabel=data.multilabel,
                             num_classes=data.num_classes, world_size=env.world_size, run_dir=str(run.path))
    summary.update({
        "aux_supervision": cfg.aux_supervision, "diversity": cfg.diversity, "stop_gradient": cfg.stop_gradient,
        "early_exit": exit_points, "exit_criterion": early_exit.DEFAULT_CRITERION, "epochs": preset.epochs,
    })
    return summary
