"""``run_v1(cfg, run)``: the AdaFocusV1 pipeline into one run directory, resumable at any epoch.

Data -> network -> stages ``cfg.stages`` (0 pre-train f_G and f_L, 1 f_L + f_C on random patches,
2 pi by RL, 3 fine-tune with pi fixed) -> evaluation with learned / random / centre patches ->
FLOPs -> ``summary.json`` (written last, and only once stage 3 has finished).
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

from adafocus_v1 import rl
from adafocus_v1.resume import StartPoint, find_start, parse_stages
from adafocus_v1.stages import STAGE_NAMES, StageSpec, stage_specs
from adafocus_v1.trainer import StageRunner, V1State
from bench.checkpoint import load_checkpoint
from bench.config import RunConfig
from bench.errors import UsageError
from bench.evaluation import EvalResult, evaluate, patch_eval_results
from bench.experiment import share_initial_state
from bench.flops import count_flops
from bench.methods import METHODS
from bench.models import build_network
from bench.presets import Preset, get_preset
from bench.rundir import RunDir, collect_manifest
from bench.summary import common_summary
from bench.runtime import (DistEnv, barrier, broadcast_module_state, cpu_threads, default_num_workers,
                           gather_objects, start_process)
from bench.timing import reset_peak_memory

# Per-epoch validation (the curve, stage-2 metrics) uses at most this many videos, evenly spaced;
# the final evaluation after stages 2 and 3 uses the whole split.
EPOCH_EVAL_VIDEOS = 1024


def resolve_preset(cfg: RunConfig) -> Preset:
    """The named V1 preset with the command line's patch size, RL algorithm, reward and overrides."""
    overrides: Dict[str, Any] = dict(cfg.overrides)
    if cfg.patch_size is not None:
        overrides["patch_size"] = cfg.patch_size
    overrides["rl_algorithm"], overrides["reward"] = cfg.rl, cfg.reward
    if cfg.rl not in rl.ALGORITHMS:
        raise UsageError(f"--rl {cfg.rl!r}: expected one of {', '.join(rl.ALGORITHMS)}")
    return get_preset(cfg.dataset, cfg.preset, method="v1", arch=cfg.arch, **overrides)


def rl_config(preset: Preset) -> rl.RLConfig:
    return rl.RLConfig(algo=preset.rl_algorithm, gamma=preset.gamma, clip=preset.ppo_clip,
                       value_coef=preset.value_weight, entropy_coef=preset.entropy_weight, lr=preset.policy_lr,
                       epochs=preset.ppo_epochs)


@dataclasses.dataclass
class RunData:
    train_loader: Any
    val_loader: Any
    epoch_val_loader: Any
    num_classes: int
    multilabel: bool
    datasets: List[Any]
    root: Path
    num_workers: int


def _subset(dataset: Any, n: int) -> Any:
    if len(dataset) <= n:
        return dataset
    keep = torch.linspace(0, len(dataset) - 1, n).round().long().unique().tolist()
    sub = torch.utils.data.Subset(dataset, keep)
    for attr in ("num_classes", "multilabel"):
        setattr(sub, attr, getattr(dataset, attr))
    return sub


def _local_world_size() -> int:
    return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def build_data(cfg: RunConfig, preset: Preset, env: Optional[DistEnv] = None) -> RunData:
    """Train (augmented) and val loaders with V1's batch size (per rank when distributed: each rank
    reads its shard through a ``DistributedSampler``); a val subset for per-epoch checks."""
    from bench.data import ClipSpec, create_dataset, make_loader, resolve_data_root

    root = resolve_data_root(cfg.dataset, cfg.data_root)
    spec = ClipSpec(frames=preset.frames, glance_frames=preset.glance_frames, input_size=preset.input_size,
                    resize=preset.resize, frame_order=preset.frame_order)
    train_ds = create_dataset(cfg.dataset, root, "train", spec, train=True, skip_bad=cfg.skip_bad)
    val_ds = create_dataset(cfg.dataset, root, "val", spec, train=False, skip_bad=cfg.skip_bad)
    workers = default_num_workers(_local_world_size()) if cfg.num_workers is None else cfg.num_workers
    kw = dict(num_workers=workers, seed=cfg.seed, distributed=env is not None and env.distributed)
    bs = preset.v1_batch_size
    return RunData(make_loader(train_ds, bs, train=True, **kw), make_loader(val_ds, bs, train=False, **kw),
                   make_loader(_subset(val_ds, EPOCH_EVAL_VIDEOS), bs, train=False, **kw),
                   train_ds.num_classes, bool(train_ds.multilabel), [train_ds, val_ds], Path(root), workers)


def _scores(r: EvalResult) -> Dict[str, Optional[float]]:
    return {"top1": r.top1, "map": r.map}


@METHODS.register("v1")
def run_v1(cfg: RunConfig, run: RunDir) -> Dict[str, Any]:
    """Run the requested V1 stages in ``run``; returns the summary (written once stage 3 is done).

    A complete run is returned as it is; an interrupted one resumes at its stage and epoch.
    """
    stages = parse_stages(cfg.stages)
    if run.is_complete() and stages[-1] == 3:
        return run.read_summary()
    env = start_process(cfg.device, cfg.seed, cfg.deterministic)
    device = env.device
    preset = resolve_preset(cfg)
    specs = stage_specs(preset, cfg.stage3, cfg.epochs)
    data = build_data(cfg, preset, env)
    if device.type == "cpu":
        torch.set_num_threads(cpu_threads(data.num_workers, _local_world_size()))
    net = build_network(preset, num_classes=data.num_classes, method="v1")
    shared = share_initial_state(net, cfg.init_state) if env.is_main else None
    net.to(device)
    broadcast_module_state(net, env)  # every rank starts from rank 0's weights
    if env.is_main:  # only rank 0 takes the lock and writes into the run directory
        run.create()
    with run.locked() if env.is_main else contextlib.nullcontext():
        start = find_start(run, stages, {k: s.epochs for k, s in specs.items()})
        if env.is_main:
            run.write_config(cfg, preset)
            run.write_manifest(collect_manifest(cfg, device, env.world_size, extra={
            "dataset_root": str(data.root), "num_classes": data.num_classes, "initial_state": shared,
            "torch_threads": torch.get_num_threads(), "stages": list(stages), "stage3_mode": cfg.stage3,
            "rl": cfg.rl, "reward": cfg.reward, "resumed_from": str(start.weights) if start.weights else None}))
        summary = _train_and_evaluate(cfg, preset, specs, stages, start, run, data, net, device, env)
        mine = [tuple(item) for ds in data.datasets for item in getattr(ds, "bad_items", [])]
        bad = list(dict.fromkeys(item for items in gather_objects(mine, env) for item in items))
        if env.is_main:
            run.add_bad_items(bad)
            if stages[-1] == 3:
                run.write_summary(summary)
        barrier(env)
        return summary


def _train_and_evaluate(cfg: RunConfig, preset: Preset, specs: Dict[int, StageSpec], stages: tuple,
                        start: StartPoint, run: RunDir, data: RunData, net: torch.nn.Module,
                        device: torch.device, env: Optional[DistEnv] = None) -> Dict[str, Any]:
    reset_peak_memory(device)
    env = env or DistEnv(device=device)
    ev = dict(seed=cfg.seed, num_classes=data.num_classes, multilabel=data.multilabel, env=env)

    def epoch_eval(spec: StageSpec, epoch: int) -> Dict[str, Any]:
        if spec.index == 0:
            return {}
        out = _scores(evaluate(net, data.epoch_val_loader, device, patch_mode="policy", **ev))
        if spec.index in (1, 2):   # what stage 1 trains on / what stage 2 must beat
            out["random_top1"] = evaluate(net, data.epoch_val_loader, device, patch_mode="random", **ev).top1
        return out

    def stage_end(spec: StageSpec) -> Optional[Dict[str, Any]]:
        return _patch_eval(net, data, device, ev) if spec.index == 2 else None

    runner = StageRunner(net, preset, device, run, data.train_loader, rl_cfg=rl_config(preset),
                         reward=preset.reward, num_classes=data.num_classes, seed=cfg.seed,
                         evaluate_fn=epoch_eval, stage_end_fn=stage_end,
                         log=run.log if env.is_main else (lambda msg: None), env=env)
    if start.weights is not None:   # network, RNG and the carried state (clock, curve, history)
        info = load_checkpoint(start.weights, {"net": net}, env=env)
        runner.state = V1State.from_extra(info["extra"])
    if start.stage is not None:
        if env.is_main and run.is_complete():       # the directory's model is about to change
            run.summary_path.unlink()
        for k in range(start.stage, stages[-1] + 1):
            mid = start.mid_stage and k == start.stage
            runner.run_stage(specs[k], start.epoch if k == start.stage else 0,
                             resume_from=str(start.weights) if mid else None)
    return _summary(cfg, preset, specs, stages, runner.state, run, data, net, device, ev)


def _patch_eval(net, data: RunData, device, ev) -> Dict[str, Any]:
    res = patch_eval_results(net, data.val_loader, device, **ev)
    return {"patch_eval": {n: r.top1 for n, r in res.items()}, "map": res["learned"].map,
            "coverage": res["learned"].coverage}


def _summary(cfg: RunConfig, preset: Preset, specs: Dict[int, StageSpec], stages: tuple, state: V1State,
             run: RunDir, data: RunData, net: torch.nn.Module, device: torch.device, ev) -> Dict[str, Any]:
    results = patch_eval_results(net, data.val_loader, device, **ev)
    ran = [n for n in STAGE_NAMES if n in state.clock.seconds]
    summary = common_summary(cfg, preset, results, count_flops(net, preset), state.clock, ran, state.curve,
                             state.epoch_seconds, device, multilabel=data.multilabel,
                             num_classes=data.num_classes, world_size=getattr(ev.get("env"), "world_size", 1),
                             run_dir=str(run.path))
    summary.update({
        "rl": preset.rl_algorithm, "reward": preset.reward,
        "stage3_mode": cfg.stage3 if "stage3" in ran else None, "stages_run": ran,
        "after_stage2": state.results.get("after_stage2"), "early_exit": None,
        "epochs": sum(specs[k].epochs for k in range(4) if STAGE_NAMES[k] in ran),
        "stage_epochs": {specs[k].name: specs[k].epochs for k in range(4) if STAGE_NAMES[k] in ran},
    })
    return summary
