"""``adabench selfcheck`` as a whole: the checks of ``bench.tools.selfcheck``, then the timings
(``bench.tools.selfcheck_timings``), then the long optional checks, each part while the time budget lasts."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import torch

from bench.tools.selfcheck import (
    DEFAULT_BUDGET_S,
    FAIL,
    Budget,
    CheckResult,
    Context,
    check_device,
    environment,
    results_dict,
    run_checks,
)

TIMING_ESTIMATES = {  # seconds to start a part: (device type, shapes) -> part -> estimate
    ("cuda", "paper"): {"matmul": 5, "train_steps": 60, "inference": 40, "official": 60},
    ("cuda", "tiny"): {"matmul": 5, "train_steps": 10, "inference": 10, "official": 60},
    ("cpu", "paper"): {"matmul": 5, "train_steps": 240, "inference": 120, "official": 300},
    ("cpu", "tiny"): {"matmul": 3, "train_steps": 8, "inference": 8, "official": 40},
}


def run_timings(
    ctx: Context,
    shapes_name: str,
    echo: Callable[[str], None] = print,
    out: Optional[Dict[str, Any]] = None,
    done: Callable[[], object] = lambda: None,  # its return value is not used
) -> Dict[str, Any]:
    """The speed parts in order, each while the budget lasts, into ``out`` (``done()`` after each part); a
    part
    that raises is recorded under ``errors``."""
    import bench.tools.selfcheck_timings as timings

    shapes = timings.shapes_for(shapes_name, ctx.device)
    est = TIMING_ESTIMATES[(ctx.device.type, shapes.name)]
    out = {} if out is None else out
    out.update({"shapes": asdict(shapes), "skipped": [], "errors": []})
    parts = {
        "matmul": lambda: timings.matmul(ctx.device),
        "train_steps": lambda: timings.train_steps(
            ctx.device, shapes, ctx.budget, est["train_steps"], out["skipped"]
        ),
        "inference": lambda: timings.inference(ctx.device, shapes),
        "official": lambda: timings.official(ctx.device, shapes, ctx.budget, est["official"], out["skipped"]),
    }
    for name, part in parts.items():
        t0 = time.perf_counter()
        out[name] = []
        if name in ("matmul", "inference") and not ctx.budget.fits(est[name]):
            out["skipped"].append(
                f"{name}: needs about {est[name]:.0f} s, {max(0.0, ctx.budget.left()):.0f} s of "
                "the budget left"
            )
        else:
            try:
                out[name] = part()
            except Exception as e:  # noqa: BLE001 - recorded, the other parts still run
                first = (str(e).strip().splitlines() or [""])[0]
                out["errors"].append(f"{name}: {type(e).__name__}: {first[:300]}")
        echo(f"  timing  {name} ({time.perf_counter() - t0:.1f} s): {len(out[name])} row(s)")
        done()
    return out


@contextlib.contextmanager
def dry_run_threads(device: torch.device, shapes: str) -> Iterator[None]:
    """A CPU dry run at tiny shapes on one intra-op thread (``OMP_NUM_THREADS`` unset): micro networks gain
    nothing from more, and on a busy machine OpenMP threads spinning against each other made the checks 10x
    slower (``bench.training.runtime.cpu_threads``); the runs and the DDP ranks read the same variable."""
    if device.type != "cpu" or shapes != "tiny" or os.environ.get("OMP_NUM_THREADS"):
        yield
        return
    threads = torch.get_num_threads()
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    try:
        yield
    finally:
        os.environ.pop("OMP_NUM_THREADS", None)
        torch.set_num_threads(threads)


Save = Callable[[Dict[str, Any]], None]


def run_selfcheck(
    device: torch.device,
    work: Path,
    *,
    budget_s: Optional[float] = None,
    shapes: Optional[str] = None,
    only: Optional[List[str]] = None,
    timings: bool = True,
    echo: Callable[[str], None] = print,
    save: Save = lambda record: None,
) -> Dict[str, Any]:
    """The checks, then the timings, then the long optional checks, within the budget (default
    ``DEFAULT_BUDGET_S``); the whole record, also handed to ``save`` after every check and part (a GPU
    session cut short still leaves what was measured). ``shapes``: the timings' shapes (default: paper on
    CUDA,
    tiny on a CPU)."""
    check_device(device)
    shapes = shapes or ("paper" if device.type == "cuda" else "tiny")
    with dry_run_threads(device, shapes):
        return _run_selfcheck(device, work, budget_s, shapes, only, timings, echo, save)


def _run_selfcheck(
    device: torch.device,
    work: Path,
    budget_s: Optional[float],
    shapes: str,
    only: Optional[List[str]],
    timings: bool,
    echo: Callable[[str], None],
    save: Save,
) -> Dict[str, Any]:
    from bench.tools.selfcheck_runs import RUN_SETS

    # deterministic cuBLAS for the resume check: read when cuBLAS starts, so before the first CUDA matmul
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    budget = Budget(DEFAULT_BUDGET_S[device.type] if budget_s is None else budget_s)
    ctx = Context(device, work, budget, dict(RUN_SETS))
    echo(f"selfcheck on {device}: budget {budget.seconds:.0f} s, {torch.get_num_threads()} CPU thread(s)")
    record: Dict[str, Any] = {
        "environment": environment(device),
        "budget_s": budget.seconds,
        "complete": False,
    }

    def update(results: List[CheckResult]) -> Dict[str, Any]:
        record.update(
            checks=results_dict(results),
            elapsed_s=budget.elapsed(),
            passed=not any(r.status == FAIL for r in results) and not record.get("timings", {}).get("errors"),
        )
        save(record)
        return record

    results = run_checks(ctx, only, echo, done=update)
    if timings:
        record["timings"] = {}
        run_timings(ctx, shapes, echo, out=record["timings"], done=lambda: update(results))
    results += run_checks(ctx, only, echo, after_timings=True, done=lambda late: update(results + late))
    record["complete"] = True
    return update(results)
