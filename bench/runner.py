"""``run_method(cfg, run)``: one complete run of any registered method into its run directory.

The same for every method: data -> network (the matched experiment's shared initial weights) -> the
method's stages under ``bench.driver.Driver`` (resumable) -> evaluation with learned / random / centre
patches on the whole validation split -> FLOPs -> the method's own summary keys -> ``summary.json``
(written last, and only once the method's last stage has run).
"""
from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Set

import torch

from bench.checkpoint import unwrap
from bench.config import RunConfig
from bench.driver import Driver
from bench.evaluation import EvalResult, evaluate, patch_eval_results
from bench.experiment import share_initial_state
from bench.flops import count_flops
from bench.methods import Method, get_method
from bench.models import build_network
from bench.precision import prepare_network, resolve_channels_last
from bench.presets import Preset
from bench.resume import parse_stages
from bench.rundir import RunDir, collect_manifest
from bench.runtime import (DistEnv, barrier, broadcast_module_state, broadcast_object, cpu_threads,
                           default_num_workers, gather_objects, local_world_size, start_process)
from bench.summary import common_summary
from bench.timing import reset_peak_memory

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
    """The loaders of one run. ``train_eval_loader`` (training videos, evaluation transform) is built on
    demand, for methods that need training-set predictions (e.g. early-exit thresholds)."""

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

    def train_eval_loader(self, max_videos: int) -> Any:
        ds = self.make("train", False)
        self.datasets.append(ds)
        return self.loader(even_subset(ds, max_videos), False)


def build_data(cfg: RunConfig, preset: Preset, env: DistEnv) -> RunData:
    """Train (augmented), val, and learning-curve loaders with the method's batch size (per rank)."""
    from bench.data import ClipSpec, create_dataset, make_loader, preflight, resolve_data_root

    root = resolve_data_root(cfg.dataset, cfg.data_root)
    spec = ClipSpec(frames=preset.frames, glance_frames=preset.glance_frames, input_size=preset.input_size,
                    resize=preset.resize, frame_order=preset.frame_order)
    workers = default_num_workers(local_world_size()) if cfg.num_workers is None else cfg.num_workers

    def make(split: str, train: bool) -> Any:
        ds = create_dataset(cfg.dataset, root, split, spec, train=train, skip_bad=cfg.skip_bad)
        if cfg.preflight:  # every item's header, so a broken file stops the run before its first epoch
            preflight(ds, cfg.skip_bad)
        return ds

    def loader(ds: Any, train: bool) -> Any:
        return make_loader(ds, preset.batch_size, train=train, num_workers=workers, seed=cfg.seed,
                           distributed=env.distributed)

    train_ds, val_ds = make("train", True), make("val", False)
    return RunData(loader(train_ds, True), loader(val_ds, False), loader(even_subset(val_ds, CURVE_VIDEOS), False),
                   train_ds.num_classes, bool(train_ds.multilabel), [train_ds, val_ds], Path(root), workers,
                   make, loader)


@dataclass
class RunContext:
    """What a method's ``plan`` and ``summary_extras`` get."""

    cfg: RunConfig
    preset: Preset
    method: Method
    net: torch.nn.Module
    data: RunData
    env: DistEnv
    run: RunDir
    state: Any = None   # the driver's TrainState, once training has run

    @property
    def device(self) -> torch.device:
        return self.env.device

    @property
    def precision(self) -> str:
        """The run's resolved precision: training and evaluation of every method run in it."""
        return self.cfg.resolved_precision()

    def eval_kwargs(self) -> Dict[str, Any]:
        return dict(seed=self.cfg.seed, env=self.env, precision=self.precision, num_classes=self.data.num_classes,
                    multilabel=self.data.multilabel)

    def evaluate(self, loader: Any, patch_mode: str = "policy") -> EvalResult:
        return evaluate(self.net, loader, self.device, patch_mode=patch_mode, **self.eval_kwargs())


def curve_epochs(preset_name: str) -> Callable[[int], Set[int]]:
    """Epochs of an n-epoch stage that get a learning-curve point: every epoch on tiny presets (cheap);
    on paper presets every 5th and each of the last 10 (the V2 code's cadence)."""
    if preset_name == "tiny":
        return lambda n: set(range(n))
    return lambda n: {e for e in range(n) if (e + 1) % 5 == 0 or e >= n - 10}


def _scores(r: EvalResult) -> Dict[str, Optional[float]]:
    return {"top1": r.top1, "map": r.map}


def _curve_fn(ctx: RunContext) -> Callable:
    def evaluate_curve(modes: tuple) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        for mode in modes:
            r = ctx.evaluate(ctx.data.curve_loader, mode)
            out.update(_scores(r) if mode == "policy" else {f"{mode}_top1": r.top1})
        return out
    return evaluate_curve


def _end_fn(ctx: RunContext) -> Callable:
    def evaluate_end() -> Dict[str, Any]:
        res = patch_eval_results(ctx.net, ctx.data.val_loader, ctx.device, **ctx.eval_kwargs())
        return {"patch_eval": {n: r.top1 for n, r in res.items()}, "map": res["learned"].map,
                "coverage": res["learned"].coverage}
    return evaluate_end


def _bad_items(datasets: List[Any], env: DistEnv) -> List[Any]:
    """Skipped items of every rank (each rank reads its own shard)."""
    mine = [tuple(item) for ds in datasets for item in getattr(ds, "bad_items", [])]
    return list(dict.fromkeys(item for items in gather_objects(mine, env) for item in items))


def run_method(cfg: RunConfig, run: RunDir) -> Dict[str, Any]:
    """Train and evaluate ``cfg.method`` as ``cfg`` says, in ``run``; returns the summary.

    A complete run is returned as it is; an interrupted one resumes after its last completed epoch.
    """
    method = get_method(cfg.method)
    count = len(method.stage_names)
    first, last = (0, count - 1) if cfg.stages is None else parse_stages(cfg.stages, count)
    if run.is_complete() and last == count - 1:
        return run.read_summary()
    env = start_process(cfg.device, cfg.seed, cfg.deterministic)
    cfg = dataclasses.replace(cfg, precision=cfg.resolved_precision())  # config.yaml records what runs
    preset = cfg.resolve_preset()
    data = build_data(cfg, preset, env)
    if env.device.type == "cpu":
        torch.set_num_threads(cpu_threads(data.num_workers, local_world_size()))
    net = build_network(preset, num_classes=data.num_classes)
    shared = broadcast_object(share_initial_state(net, cfg.init_state) if env.is_main else None, env)
    channels_last = resolve_channels_last(cfg.channels_last, env.device)
    net = prepare_network(net.to(env.device), channels_last=channels_last, compile=cfg.compile)
    broadcast_module_state(net, env)  # every rank starts from rank 0's weights
    ctx = RunContext(cfg, preset, method, net, data, env, run)
    stages = method.plan(ctx)
    assert tuple(s.name for s in stages) == method.stage_names, "plan() must return the declared stages"
    if env.is_main:
        run.create()
    with run.locked() if env.is_main else contextlib.nullcontext():
        if env.is_main:
            run.write_config(cfg, preset)
            run.write_manifest(collect_manifest(cfg, env.device, env.world_size, extra={
                "dataset_root": str(data.root.resolve()), "num_classes": data.num_classes,
                "precision": cfg.precision, "channels_last": channels_last, "compile": cfg.compile,
                "torch_threads": torch.get_num_threads(), "initial_state": shared,
                "stages": [s.name for s in stages[first:last + 1]], "variant": method.variant(preset.train)}))
        reset_peak_memory(env.device)
        driver = Driver(net, stages, run, data.train_loader, env, seed=cfg.seed, label=method.title,
                        evaluate_curve=_curve_fn(ctx), evaluate_end=_end_fn(ctx),
                        curve_epochs=curve_epochs(preset.name), progress=cfg.progress, quiet=cfg.quiet,
                        precision=cfg.precision)
        trained = driver.fit(first, last)
        if trained is not None and env.is_main and run.is_complete():  # the directory's model changed
            run.summary_path.unlink()
        summary = _summary(ctx, driver, stages)
        bad = _bad_items(data.datasets, env)
        if env.is_main:
            run.add_bad_items(bad)
            if last == count - 1:
                run.write_summary(summary)
        barrier(env)
        return summary


def _summary(ctx: RunContext, driver: Any, stages: List[Any]) -> Dict[str, Any]:
    """Final evaluation on the whole validation split, FLOPs, and the summary (common + the method's)."""
    state, preset, method = driver.state, ctx.preset, ctx.method
    ctx.state = state
    results = patch_eval_results(ctx.net, ctx.data.val_loader, ctx.device, **ctx.eval_kwargs())
    ran = [s for s in stages if s.name in state.clock.seconds]
    curve = list(state.curve)
    if ran and ran[-1] is stages[-1]:  # the last epoch's point is the full-split score
        curve.append({"stage": ran[-1].name, "epoch": ran[-1].epochs, "train_seconds": state.clock.total,
                      **_scores(results["learned"])})
        if state.history and ctx.env.is_main:
            state.history[-1].update({"val_top1": results["learned"].top1, "val_map": results["learned"].map})
            ctx.run.write_metrics(state.history)
    flops = count_flops(unwrap(ctx.net), preset, aux=method.flops_aux_heads)
    summary = common_summary(ctx.cfg, preset, results, flops, state.clock, [s.name for s in ran], curve,
                             state.epoch_seconds, ctx.device, multilabel=ctx.data.multilabel,
                             num_classes=ctx.data.num_classes, world_size=ctx.env.world_size,
                             run_dir=str(ctx.run.path))
    summary.update({
        "method_title": method.title, "variant": method.variant(preset.train),
        "params": dataclasses.asdict(preset.train), "stages_run": [s.name for s in ran],
        "stage_epochs": {s.name: s.epochs for s in ran}, "epochs": sum(s.epochs for s in ran),
        "stage_results": state.results,
    })
    summary.update(method.summary_extras(ctx, results, flops))
    return summary


def summary_line(summary: Dict[str, Any]) -> str:
    """One line per finished run: accuracy, cost, time and the patch evaluation."""
    exits = summary.get("early_exit") or []
    variant = summary.get("variant") or "full"
    return (
        f"{summary['method']}{'' if variant == 'full' else '-' + variant} p{summary.get('patch_size')} "
        f"s{summary.get('seed')}: top-1 {100 * summary['top1']:.1f}%"
        + (f"  mAP {100 * summary['map']:.1f}%" if summary.get("map") is not None else "")
        + f"  {summary['gflops_per_video']:.3g} GFLOPs/video  train {summary['train_seconds']:.0f}s"
        + "  patches learned/random/centre "
        + "/".join(f"{100 * summary['patch_eval'][k]:.1f}" for k in ("learned", "random", "centre"))
        + (f"  coverage {100 * summary['coverage']:.0f}%" if summary.get("coverage") is not None else "")
        + (f"  early exit {min(p['gflops'] for p in exits):.3g}-{max(p['gflops'] for p in exits):.3g} GFLOPs"
           if exits else ""))


def run_all(configs: List[RunConfig], echo: Callable[[str], None] = print) -> List[Dict[str, Any]]:
    """Run (or resume, or return when complete) every planned run; ``echo`` one summary line each."""
    from bench.errors import DataError
    from bench.launch import main_rank

    summaries = []
    for cfg in configs:
        run = RunDir.for_config(cfg)
        if run.is_complete() and main_rank():
            echo(f"{cfg.method}: already complete, not re-trained: {run.path}")
        try:
            summary = run_method(cfg, run)
        except DataError as e:  # a broken video or frame: say how to go on without it
            if cfg.skip_bad:
                raise
            raise DataError(f"{e}; --skip-bad skips unreadable items and lists them in the run's manifest.json") \
                from None
        summaries.append(summary)
        if main_rank():
            echo(summary_line(summary) + f"\n  {run.path}")
    return summaries


GATE_RUNS_DIR = "runs-check"


def run_gate_experiment(methods: List[str], echo: Callable[[str], None] = print) -> str:
    """Train the small matched experiment the regression gate compares (``methods`` on the synthetic
    benchmark, tiny preset) afresh into ``runs-check/<UTC time>/`` (a gate must not reuse runs made by older
    code); returns that directory."""
    import datetime

    from bench.data import resolve_data_root
    from bench.experiment import plan_runs

    root = str(resolve_data_root("synthetic"))
    runs_dir = f"{GATE_RUNS_DIR}/{datetime.datetime.now(datetime.timezone.utc):%Y%m%dT%H%M%SZ}"
    echo(f"check: training the matched tiny experiment into {runs_dir}")
    base = RunConfig(method=methods[0], dataset="synthetic", data_root=root, preset="tiny", arch="matched", seed=0,
                     runs_dir=runs_dir, progress=False, quiet=True)
    run_all(plan_runs(base, methods), echo)
    return runs_dir
