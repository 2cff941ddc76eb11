"""``run_method(cfg, run)``: one complete run of any registered method into its run directory.

The same for every method: data (``bench.rundata``) -> network (the matched experiment's shared initial
weights) -> the method's stages under ``bench.driver.Driver`` (resumable) -> evaluation with learned / random /
centre patches on the whole validation split -> FLOPs -> the method's own summary keys -> ``summary.json``
(written last, and only once the method's last stage has run). With ``RunConfig.holdout`` the held-out part
of the training split takes the validation split's place (``bench.data.holdout``; summary ``eval_split``).
"""
from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Set

import torch

from bench.checkpoint import load_checkpoint, unwrap
from bench.config import RunConfig
from bench.driver import Driver, TrainState, selection_score
from bench.evaluation import EvalResult, evaluate, patch_eval_results
from bench.experiment import share_initial_state
from bench.flops import count_flops
from bench.methods import Method, get_method
from bench.models import build_network, weight_sources
from bench.precision import prepare_network, resolve_channels_last
from bench.presets import Preset
from bench.resume import parse_stages
from bench.rundata import RunData, build_data
from bench.rundir import RunDir, collect_manifest
from bench.runtime import (DistEnv, barrier, broadcast_module_state, broadcast_object, cpu_threads, gather_objects,
                           local_world_size, start_process)
from bench.regime import regime_record
from bench.summary import common_summary
from bench.timing import reset_peak_memory


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


def curve_epochs(preset_name: str, every: bool = False) -> Callable[[int], Set[int]]:
    """Epochs of an n-epoch stage that get a learning-curve point: every epoch on tiny presets (cheap) or with
    ``every``; on paper presets every 5th and each of the last 10 (the V2 ActivityNet code's cadence)."""
    if preset_name == "tiny" or every:
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
    """Skipped items of every rank (each rank reads its own shard): (split, path, reason), one per path
    and split."""
    mine = [(getattr(ds, "split", "train"), *item) for ds in datasets for item in getattr(ds, "bad_items", [])]
    first: Dict[tuple, Any] = {}
    for split, path, reason in (item for items in gather_objects(mine, env) for item in items):
        first.setdefault((split, path), (split, path, reason))
    return list(first.values())


def skipped_counts(summary: Dict[str, Any]) -> Dict[str, int]:
    """{split: number of items --skip-bad dropped} of a summary (empty when none were)."""
    return {split: len(paths) for split, paths in (summary.get("skipped_items") or {}).items() if paths}


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
    if env.device.type == "cpu":  # --deterministic: float reductions must not depend on --workers (issue 21)
        torch.set_num_threads(cpu_threads(0 if cfg.deterministic else data.num_workers, local_world_size()))
    if env.is_main:  # resolve (download) the backbone weights once, before the ranks build their networks
        weights = {role: ws.as_dict() for role, ws in weight_sources(preset).items()}
    barrier(env)
    if not env.is_main:
        weights = {role: ws.as_dict() for role, ws in weight_sources(preset).items()}
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
                "torch_threads": torch.get_num_threads(), "initial_state": shared, "weights": weights,
                "stages": [s.name for s in stages[first:last + 1]], "variant": method.variant(preset.train),
                **_holdout_manifest(data)}))
        reset_peak_memory(env.device)
        driver = Driver(net, stages, run, data.train_loader, env, seed=cfg.seed, label=method.title,
                        evaluate_curve=_curve_fn(ctx), evaluate_end=_end_fn(ctx),
                        # --protocol official: the Sth-Sth/Jester scripts validate (and may select) every epoch
                        curve_epochs=curve_epochs(preset.name, every=cfg.protocol == "official"
                                                  and preset.variant == "video"),
                        progress=cfg.progress, quiet=cfg.quiet,
                        select_best=cfg.protocol == "official", precision=cfg.precision)
        trained = driver.fit(first, last)
        if trained is not None and env.is_main and run.is_complete():  # the directory's model changed
            run.summary_path.unlink()
        summary = _summary(ctx, driver, stages)
        bad = _bad_items(data.datasets, env)
        summary["skipped_items"] = {split: sorted({p for s, p, _ in bad if s == split}) for split in ("train", "val")}
        if env.is_main:
            run.add_bad_items([(path, reason) for _, path, reason in bad])
            if last == count - 1:
                run.write_summary(summary)
        barrier(env)
        return summary


def _holdout_manifest(data: RunData) -> Dict[str, Any]:
    """The held-out split for manifest.json: fraction, seed, sizes (the indices are implied by them)."""
    if data.holdout is None:
        return {}
    return {"holdout": {k: v for k, v in data.holdout.items() if k != "train_indices"}}


def final_results(ctx: RunContext) -> Dict[str, EvalResult]:
    """The evaluation every trained run and every evaluated checkpoint ends with: learned / random / centre
    patches on the whole validation split (the holdout when tuning)."""
    return patch_eval_results(ctx.net, ctx.data.val_loader, ctx.device, **ctx.eval_kwargs())


def summarise(ctx: RunContext, results: Dict[str, EvalResult], ran: List[Any], curve: List[Dict[str, Any]], *,
              kind: str = "trained", extra: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """FLOPs, the summary keys every run has and the method's own (``summary_extras``: e.g. the early-exit
    curve), for a trained run (``ran``: the stages it trained) or an evaluated checkpoint (``kind``)."""
    state, preset, method = ctx.state, ctx.preset, ctx.method
    flops = count_flops(unwrap(ctx.net), preset, aux=method.flops_aux_heads)
    summary = common_summary(ctx.cfg, preset, results, flops, state.clock, [s.name for s in ran], curve,
                             state.epoch_seconds, ctx.device, multilabel=ctx.data.multilabel,
                             num_classes=ctx.data.num_classes, world_size=ctx.env.world_size,
                             run_dir=str(ctx.run.path))
    summary.update({
        "kind": kind, "protocol": ctx.cfg.protocol,
        "method_title": method.title, "variant": method.variant(preset.train),
        "params": dataclasses.asdict(preset.train), "stages_run": [s.name for s in ran],
        "stage_epochs": {s.name: s.epochs for s in ran}, "epochs": sum(s.epochs for s in ran),
        "stage_results": state.results, "eval_split": ctx.data.eval_split,
        "train_seconds_no_pretrain": state.clock.total - sum(state.clock.seconds.get(n, 0.0)
                                                             for n in method.pretraining_stages),
        "regime": regime_record(preset), **(extra or {}),
    })
    summary.update(method.summary_extras(ctx, results, flops))
    return summary


def _summary(ctx: RunContext, driver: Any, stages: List[Any]) -> Dict[str, Any]:
    """Final evaluation on the whole validation split (of the best validation point with --protocol
    official), FLOPs, and the summary (common + the method's)."""
    state = driver.state
    ctx.state = state
    results = final_results(ctx)
    ran = [s for s in stages if s.name in state.clock.seconds]
    curve = list(state.curve)
    extra: Dict[str, Any] = {}
    if ran and ran[-1] is stages[-1]:  # the last epoch's point is the full-split score
        curve.append({"stage": ran[-1].name, "epoch": ran[-1].epochs, "train_seconds": state.clock.total,
                      **_scores(results["learned"])})
        if state.history and ctx.env.is_main:
            state.history[-1].update({"val_top1": results["learned"].top1, "val_map": results["learned"].map})
            ctx.run.write_metrics(state.history)
        if ctx.cfg.protocol == "official":
            results, extra = _select_best(ctx, state, stages[-1], results)
    return summarise(ctx, results, ran, curve, extra=extra)


def _select_best(ctx: RunContext, state: Any, stage: Any, results: Dict[str, EvalResult]) -> tuple:
    """--protocol official: the run's model is the last stage's best validation point (its final epoch, or
    ``best.pt`` when an earlier curve point scored higher), as the official trainers keep ``is_best``.
    This selects on the validation split that is also reported (the official behaviour, pitfall 16)."""
    last = _scores(results["learned"])
    chosen = {"stage": stage.name, "epoch": stage.epochs, **last}
    best = state.best.get(stage.name)
    if best is not None and best["score"] > selection_score(last):
        load_checkpoint(ctx.run.best_checkpoint, {"net": ctx.net}, restore_rng=False, env=ctx.env)
        results = final_results(ctx)
        chosen = {"stage": stage.name, "epoch": best["epoch"] + 1, "top1": best["top1"], "map": best["map"]}
    criterion = "mAP" if last.get("map") is not None else "top-1"
    return results, {"selected_checkpoint": {**chosen, "split": ctx.data.eval_split, "criterion": criterion,
                                             "last_epoch": last}}


def evaluation_summary(ctx: RunContext, extra: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The final evaluation and summary of a network that was not trained here (``adabench evaluate``):
    the same code path as a trained run's, with no stages and no clock."""
    ctx.state = TrainState()
    return summarise(ctx, final_results(ctx), [], [], kind="evaluated", extra=extra)


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
           if exits else "")
        + "".join(f"\n  --skip-bad: {n} {split} item{'s' if n != 1 else ''} skipped (listed in manifest.json)"
                  for split, n in skipped_counts(summary).items()))


def _eta(seconds: Dict[str, List[float]], remaining: List[str]) -> Optional[float]:
    """Seconds left: each remaining run costs its method's mean so far (or the mean of all runs so far)."""
    times = [t for ts in seconds.values() for t in ts]
    if not times:
        return None
    overall = sum(times) / len(times)
    return sum(sum(seconds[m]) / len(seconds[m]) if seconds.get(m) else overall for m in remaining)


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s"


def run_all(configs: List[RunConfig], echo: Callable[[str], None] = print) -> List[Dict[str, Any]]:
    """Run (or resume, or return when complete) every planned run. ``echo`` one line before each run (which
    run of how many, and the estimated time left) and one summary line after it."""
    import time

    from bench.errors import DataError
    from bench.io import check_writable_dir
    from bench.launch import main_rank

    if main_rank():  # an unwritable runs directory fails now, not after the data preflight
        for runs_dir in dict.fromkeys(cfg.runs_dir for cfg in configs):
            check_writable_dir(runs_dir)
    summaries: List[Dict[str, Any]] = []
    spent: Dict[str, List[float]] = {}
    for i, cfg in enumerate(configs):
        run = RunDir.for_config(cfg)
        complete = run.is_complete()
        if main_rank():
            variant = get_method(cfg.method).variant(cfg.resolve_preset().train)
            eta = _eta(spent, [c.method for c in configs[i:]])
            echo(f"run {i + 1}/{len(configs)}: {cfg.method}{'' if variant == 'full' else '-' + variant} "
                 f"p{cfg.patch_size} s{cfg.seed}" + (" (already complete, not re-trained)" if complete else "")
                 + (f"; about {_duration(eta)} left" if eta is not None and not complete else ""))
        t0 = time.perf_counter()
        try:
            summary = run_method(cfg, run)
        except DataError as e:  # a broken video or frame: say how to go on without it
            if cfg.skip_bad:
                raise
            raise DataError(f"{e}; --skip-bad skips unreadable items and lists them in the run's manifest.json") \
                from None
        if not complete:
            spent.setdefault(cfg.method, []).append(time.perf_counter() - t0)
        summaries.append(summary)
        if main_rank():
            echo(summary_line(summary) + f"\n  {run.path}")
    return summaries
