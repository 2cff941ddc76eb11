"""``run_method(resolved, run)``: one complete run of any registered method into its run directory.

The same for every method: data (``bench.runs.rundata``) -> network (the matched experiment's shared initial
weights) -> the method's stages under ``bench.training.driver.Driver`` (resumable) -> evaluation with learned
/ random / centre patches on the whole validation split -> FLOPs -> the method's own summary keys ->
``summary.json`` (written last, and only once the method's last stage has run). With ``RunConfig.holdout`` the
held-out part of the training split takes the validation split's place (``bench.data.holdout``; summary
``eval_split``).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

import torch

from bench.methods import PlanContext, RunOutcome
from bench.models import build_network, weight_sources
from bench.models.flops import count_flops
from bench.runs.config import RunConfig
from bench.runs.experiment import share_initial_state
from bench.runs.manifest import collect_manifest
from bench.runs.resolved import ResolvedRun
from bench.runs.rundata import RunData, build_data
from bench.runs.rundir import RunDir
from bench.runs.summary import build_summary, skipped_counts
from bench.training.checkpoint import load_checkpoint, unwrap
from bench.training.driver import Driver
from bench.training.evaluation import EvalResult, evaluate, patch_eval_results
from bench.training.precision import prepare_network, resolve_channels_last
from bench.training.resume import parse_stages
from bench.training.runtime import (
    DistEnv,
    barrier,
    broadcast_module_state,
    broadcast_object,
    cpu_threads,
    gather_objects,
    local_world_size,
    start_process,
)
from bench.training.stage import TrainState, selection_score
from bench.training.timing import reset_peak_memory


@dataclass
class RunContext:
    """One run in progress: its resolved configuration and what was built for it. Methods see only
    ``plan_context()``."""

    run: ResolvedRun
    net: torch.nn.Module
    data: RunData
    env: DistEnv
    dir: RunDir

    @property
    def device(self) -> torch.device:
        return self.env.device

    def plan_context(self) -> PlanContext:
        cfg = self.run.cfg
        return PlanContext(
            self.net,
            self.run.preset,
            self.data.num_classes,
            self.data.multilabel,
            self.env,
            cfg.precision,
            cfg.seed,
            cfg.dataset,
            cfg.protocol,
            self.data.train_eval_loader,
        )

    def eval_kwargs(self) -> Dict[str, Any]:
        return dict(
            seed=self.run.cfg.seed,
            env=self.env,
            precision=self.run.cfg.precision,
            num_classes=self.data.num_classes,
            multilabel=self.data.multilabel,
        )

    def evaluate(self, loader: Any, patch_mode: str = "policy") -> EvalResult:
        return evaluate(self.net, loader, self.device, patch_mode=patch_mode, **self.eval_kwargs())

    def final_results(self) -> Dict[str, EvalResult]:
        """The evaluation every trained run and every evaluated checkpoint ends with: learned / random /
        centre
        patches on the whole validation split (the holdout when tuning)."""
        return patch_eval_results(self.net, self.data.val_loader, self.device, **self.eval_kwargs())


def _scores(r: EvalResult) -> Dict[str, Optional[float]]:
    return {"top1": r.top1, "map": r.map}


class _Evaluations:
    """The driver's evaluation hooks for one run; the final evaluation is kept for the summary."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.final: Optional[Dict[str, EvalResult]] = None

    def curve(self, modes: tuple) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        for mode in modes:
            r = self.ctx.evaluate(self.ctx.data.curve_loader, mode)
            out.update(_scores(r) if mode == "policy" else {f"{mode}_top1": r.top1})
        return out

    def end_of_stage(self) -> Dict[str, Any]:
        res = self.ctx.final_results()
        return {
            "patch_eval": {n: r.top1 for n, r in res.items()},
            "map": res["learned"].map,
            "coverage": res["learned"].coverage,
        }

    def last_epoch(self) -> Dict[str, Any]:
        self.final = self.ctx.final_results()
        return _scores(self.final["learned"])


def _bad_items(datasets: List[Any], env: DistEnv) -> List[Any]:
    """Skipped items of every rank (each rank reads its own shard): (split, path, reason), one per path
    and split."""
    mine = [
        (getattr(ds, "split", "train"), *item) for ds in datasets for item in getattr(ds, "bad_items", [])
    ]
    first: Dict[tuple, Any] = {}
    for split, path, reason in (item for items in gather_objects(mine, env) for item in items):
        first.setdefault((split, path), (split, path, reason))
    return list(first.values())


def run_method(resolved: ResolvedRun, run: RunDir) -> Dict[str, Any]:
    """Train and evaluate ``resolved`` in ``run``; returns the summary.

    A complete run is returned as it is; an interrupted one resumes after its last completed epoch.
    """
    cfg, preset, method = resolved.cfg, resolved.preset, resolved.method
    count = len(method.stage_names)
    first, last = (0, count - 1) if cfg.stages is None else parse_stages(cfg.stages, count)
    if run.is_complete() and last == count - 1:
        return run.read_summary()
    env = start_process(cfg.device, cfg.seed, cfg.deterministic)
    data = build_data(
        cfg,
        preset,
        env,
        independent_views=resolved.protocol.independent_views,
        curve_on_full_split=resolved.protocol.curve_on_full_split,
    )
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
    ctx = RunContext(resolved, net, data, env, run)
    stages = method.plan(ctx.plan_context())
    assert tuple(s.name for s in stages) == method.stage_names, "plan() must return the declared stages"
    if env.is_main:
        run.create()
    with run.locked() if env.is_main else contextlib.nullcontext():
        if env.is_main:
            run.write_config(cfg, preset, resolved.config_hash)
            run.write_manifest(
                collect_manifest(
                    cfg,
                    env.device,
                    env.world_size,
                    resolved.config_hash,
                    extra={
                        "dataset_root": str(data.root.resolve()),
                        "num_classes": data.num_classes,
                        "precision": cfg.precision,
                        "channels_last": channels_last,
                        "compile": cfg.compile,
                        "torch_threads": torch.get_num_threads(),
                        "initial_state": shared,
                        "weights": weights,
                        "stages": [s.name for s in stages[first : last + 1]],
                        "variant": resolved.variant,
                        **_holdout_manifest(data),
                    },
                )
            )
        reset_peak_memory(env.device)
        evals = _Evaluations(ctx)
        driver = Driver(
            net,
            stages,
            run,
            data.train_loader,
            env,
            seed=cfg.seed,
            label=method.title,
            evaluate_curve=evals.curve,
            evaluate_end=evals.end_of_stage,
            evaluate_final=evals.last_epoch,
            curve_epochs=resolved.curve_epochs,
            progress=cfg.progress,
            quiet=cfg.quiet,
            select_best=resolved.protocol.select_best,
            precision=cfg.precision,
        )
        trained = driver.fit(first, last)
        if trained is not None and env.is_main and run.is_complete():  # the directory's model changed
            run.summary_path.unlink()
        bad: List[Any] = []
        summary = _summary(ctx, driver.state, stages, evals.final, bad)
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


def _summary(
    ctx: RunContext,
    state: TrainState,
    stages: List[Any],
    final: Optional[Dict[str, EvalResult]],
    bad: List[Any],
) -> Dict[str, Any]:
    """The run's model (its last epoch, or its best validation point with ``select_best``) evaluated on the
    whole validation split (``final``: already done by the driver's last epoch), FLOPs, and the summary.
    ``bad`` receives the items --skip-bad dropped on every rank (gathered after the method's summary keys,
    which may
    read more of the training split)."""
    ran = [s for s in stages if s.name in state.clock.seconds]
    results = final if final is not None else ctx.final_results()
    extra: Dict[str, Any] = {}
    if ran and ran[-1] is stages[-1] and ctx.run.protocol.select_best:
        results, extra = _select_best(ctx, state, stages[-1], results)

    def skipped() -> Dict[str, List[str]]:
        bad.extend(_bad_items(ctx.data.datasets, ctx.env))
        return {split: sorted({p for s, p, _ in bad if s == split}) for split in ("train", "val")}

    return _assemble(ctx, state, results, ran, kind="trained", skipped=skipped, extra=extra)


def _assemble(
    ctx: RunContext,
    state: TrainState,
    results: Dict[str, EvalResult],
    ran: List[Any],
    *,
    kind: str,
    skipped: Optional[Callable[[], Dict[str, List[str]]]] = None,
    extra: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    flops = count_flops(unwrap(ctx.net), ctx.run.preset, aux=ctx.run.method.flops_aux_heads)
    outcome = RunOutcome(results, flops, tuple(s.name for s in ran), dict(state.results))
    return build_summary(
        ctx.run,
        ctx.plan_context(),
        outcome,
        state,
        state.curve,
        {s.name: s.epochs for s in ran},
        eval_split=ctx.data.eval_split,
        run_dir=str(ctx.dir.path),
        kind=kind,
        skipped=skipped,
        extra=extra,
    )


def _select_best(ctx: RunContext, state: Any, stage: Any, results: Dict[str, EvalResult]) -> tuple:
    """--protocol official: the run's model is the last stage's best validation point (its final epoch, or
    ``best.pt`` when an earlier curve point scored higher), as the official trainers keep ``is_best``.
    This selects on the validation split that is also reported (the official behaviour, pitfall 16)."""
    last = _scores(results["learned"])
    chosen = {"stage": stage.name, "epoch": stage.epochs, **last}
    best = state.best.get(stage.name)
    if best is not None and best["score"] > selection_score(last):
        load_checkpoint(ctx.dir.best_checkpoint, {"net": ctx.net}, restore_rng=False, env=ctx.env)
        results = ctx.final_results()
        chosen = {"stage": stage.name, "epoch": best["epoch"] + 1, "top1": best["top1"], "map": best["map"]}
    criterion = "mAP" if last.get("map") is not None else "top-1"
    return results, {
        "selected_checkpoint": {
            **chosen,
            "split": ctx.data.eval_split,
            "criterion": criterion,
            "last_epoch": last,
        }
    }


def evaluation_summary(ctx: RunContext, extra: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The final evaluation and summary of a network that was not trained here (``adabench evaluate``):
    the same code path as a trained run's, with no stages and no clock."""
    return _assemble(ctx, TrainState(), ctx.final_results(), [], kind="evaluated", extra=extra)


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
        + (
            f"  early exit {min(p['gflops'] for p in exits):.3g}-{max(p['gflops'] for p in exits):.3g} GFLOPs"
            if exits
            else ""
        )
        + "".join(
            f"\n  --skip-bad: {n} {split} item{'s' if n != 1 else ''} skipped (listed in manifest.json)"
            for split, n in skipped_counts(summary).items()
        )
    )


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
    from bench.training.launch import main_rank

    if main_rank():  # an unwritable runs directory fails now, not after the data preflight
        for runs_dir in dict.fromkeys(cfg.runs_dir for cfg in configs):
            check_writable_dir(runs_dir)
    summaries: List[Dict[str, Any]] = []
    spent: Dict[str, List[float]] = {}
    for i, cfg in enumerate(configs):
        resolved = ResolvedRun.of(cfg)
        run = RunDir.for_run(resolved)
        complete = run.is_complete()
        if main_rank():
            eta = _eta(spent, [c.method for c in configs[i:]])
            echo(
                f"run {i + 1}/{len(configs)}: {resolved.label}"
                + (" (already complete, not re-trained)" if complete else "")
                + (f"; about {_duration(eta)} left" if eta is not None and not complete else "")
            )
        t0 = time.perf_counter()
        try:
            summary = run_method(resolved, run)
        except DataError as e:  # a broken video or frame: say how to go on without it
            if cfg.skip_bad:
                raise
            raise DataError(
                f"{e}; --skip-bad skips unreadable items and lists them in the run's manifest.json"
            ) from None
        if not complete:
            spent.setdefault(cfg.method, []).append(time.perf_counter() - t0)
        summaries.append(summary)
        if main_rank():
            echo(summary_line(summary) + f"\n  {run.path}")
    return summaries
