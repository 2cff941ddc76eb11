"""``adabench selfcheck --device cuda|cpu --out DIR``: every device code path, proven in one command.

Each check is named, has a stated tolerance and ends ``pass``, ``fail`` or ``skipped`` with the reason (an
exception in a check is a failure with its first line). The checks (``CHECKS``) run in order, each only when
its estimated cost fits in what is left of the time budget; then the timings
(``bench.tools.selfcheck_timings``), then the long optional checks (``--compile``) with what is left
(the order: ``bench.tools.selfcheck_command``).
``DIR/gpu-check.json`` holds everything; ``DIR/gpu-check.md`` (``reports.selfcheck``) the two tables. On
``cuda`` with no visible CUDA device the command stops with one line (exit 2) before anything runs, so a CPU
machine's CI stays green. Method knowledge comes from the registry only: every registered method is checked,
by the stages its ``plan`` returns.
"""

from __future__ import annotations

import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, cast

import torch

from bench.errors import UsageError

DEFAULT_BUDGET_S = {"cuda": 480.0, "cpu": 120.0}
COMPILE_PER_METHOD_S = {"cuda": 75.0, "cpu": 150.0}  # --compile check: compiling a method's backbones (guess)
PASS, FAIL, SKIPPED = "pass", "fail", "skipped"


@dataclass
class CheckResult:
    name: str
    status: str  # pass | fail | skipped
    tolerance: str  # what "pass" means
    detail: str  # what was measured, or why it failed or was skipped
    seconds: float = 0.0


class Budget:
    """The wall-clock budget of the whole command (checks and timings)."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.t0 = float(seconds), time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def left(self) -> float:
        return self.seconds - self.elapsed()

    def fits(self, estimate: float) -> bool:
        return estimate <= self.left()


@dataclass
class Context:
    device: torch.device
    work: Path  # scratch: the micro data set and runs
    budget: Budget
    sets: Dict[str, str] = field(
        default_factory=dict
    )  # the micro preset fields (bench.tools.selfcheck_runs.RUN_SETS)


@dataclass(frozen=True)
class Check:
    name: str
    tolerance: str
    estimate: Dict[str, float]  # seconds on "cuda" / "cpu" (how much budget it needs to start)
    run: Callable[[Context], Tuple[bool, str]]
    after_timings: bool = False  # long and optional: runs with what the timings leave of the budget


def check_device(device: torch.device) -> None:
    """One line and exit 2 when ``device`` cannot be used here (no CUDA device: the CPU machines' case)."""
    if device.type == "cuda" and not torch.cuda.is_available():
        built = f"built for CUDA {torch.version.cuda}" if torch.version.cuda else "built without CUDA"
        raise UsageError(
            f"selfcheck --device cuda: no CUDA device is visible (torch {torch.__version__}, {built}); "
            "run it on a GPU machine, or --device cpu for the dry run"
        )
    if device.type not in ("cuda", "cpu"):
        raise UsageError(f"selfcheck --device {device}: expected cuda or cpu")


def environment(device: torch.device) -> Dict[str, Any]:
    """Versions and the device: what a GPU report must start with."""
    from bench.training.precision import cpu_has_native_bf16, resolve_precision

    env: Dict[str, Any] = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "python": platform.python_version(),
        "device": str(device),
        "auto_precision": resolve_precision("auto", device),
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_native_bf16": cpu_has_native_bf16(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(
            gpu=props.name,
            gpu_memory_gb=round(props.total_memory / 2**30, 1),
            capability=f"{props.major}.{props.minor}",
            gpus=torch.cuda.device_count(),
            bf16=torch.cuda.is_bf16_supported(),
            nccl=_nccl_version(),
        )
    return env


def _nccl_version() -> Optional[str]:
    try:
        v = torch.cuda.nccl.version()
        return ".".join(map(str, v)) if isinstance(v, tuple) else str(v)
    except Exception:  # noqa: BLE001 - a torch without NCCL
        return None


def _environment_check(ctx: Context) -> Tuple[bool, str]:
    env = environment(ctx.device)
    x = torch.randn(64, 64, device=ctx.device)
    ok = bool(torch.isfinite(x @ x).all())
    keys = ("torch", "cuda", "cudnn", "gpu", "gpu_memory_gb", "capability", "bf16", "nccl", "auto_precision")
    return ok, ", ".join(f"{k} {env[k]}" for k in keys if k in env)


def _every_method(
    fn: Callable[[str], Tuple[bool, str]], budget: Optional[Budget] = None, each: float = 0.0
) -> Tuple[bool, str]:
    """``fn`` for every registered method; passes when all pass. With ``budget``: a method is started only
    while
    ``each`` seconds are left (the others are listed as skipped; none started: the check is skipped)."""
    from bench.methods import method_names

    results, left_out = [], []
    for name in method_names():
        if budget is not None and not budget.fits(each):
            left_out.append(name)
            continue
        results.append((name, *fn(name)))
    if not results:
        raise SkipCheck(
            f"does not fit in the budget: about {each:.0f} s per method, "
            f"{cast(Budget, budget).left():.0f} s left"
        )
    text = " | ".join(f"{n}: {'ok' if ok else 'FAILED'}: {d}" for n, ok, d in results)
    return all(ok for _, ok, _ in results), text + (
        f" | not run (budget): {', '.join(left_out)}" if left_out else ""
    )


def _auto_precision(ctx: Context) -> Tuple[bool, str]:
    from bench.tools.selfcheck_steps import precision_trains
    from bench.training.precision import resolve_precision

    auto = resolve_precision("auto", ctx.device)
    return _every_method(lambda m: precision_trains(m, ctx.device, auto, ctx.sets))


def _fp16_scaler(ctx: Context) -> Tuple[bool, str]:
    from bench.tools.selfcheck_steps import precision_trains

    if ctx.device.type != "cuda":
        raise SkipCheck(
            "fp16 autocast with a GradScaler is the CUDA path (the scaler's overflow skip is checked "
            "on its own below)"
        )
    return _every_method(lambda m: precision_trains(m, ctx.device, "fp16", ctx.sets))


def _scaler(ctx: Context) -> Tuple[bool, str]:
    from bench.tools.selfcheck_steps import scaler_skips_overflow

    return _every_method(lambda m: scaler_skips_overflow(m, ctx.device, ctx.sets))


def _fp32(ctx: Context) -> Tuple[bool, str]:
    from bench.tools.selfcheck_steps import fp32_matches_cpu

    return _every_method(lambda m: fp32_matches_cpu(m, ctx.device, ctx.sets))


def _compile(ctx: Context) -> Tuple[bool, str]:
    from bench.tools.selfcheck_steps import compile_matches_eager
    from bench.training.precision import check_compile

    try:
        check_compile(ctx.device)
    except UsageError as e:
        return False, str(e)
    return _every_method(
        lambda m: compile_matches_eager(m, ctx.device, ctx.sets),
        ctx.budget,
        COMPILE_PER_METHOD_S[ctx.device.type],
    )


def _run_check(name: str) -> Callable[[Context], Tuple[bool, str]]:
    def run(ctx: Context) -> Tuple[bool, str]:
        import bench.tools.selfcheck_runs as runs

        return getattr(runs, name)(ctx.device, ctx.work / name)

    return run


class SkipCheck(Exception):
    """Raised by a check that does not apply on this device (the message says why)."""


CHECKS = (
    Check("environment", "a matmul on the device is finite", {"cuda": 5, "cpu": 1}, _environment_check),
    Check(
        "fp32 step = CPU step",
        "every method and stage, 2 driver steps each from the same weights and random "
        "draws: |loss - CPU loss| / |CPU loss| <= 1e-3 (TF32 off)",
        {"cuda": 20, "cpu": 15},
        _fp32,
    ),
    Check(
        "auto precision trains",
        "every method and stage at --precision auto, 3 steps: losses and parameters finite",
        {"cuda": 15, "cpu": 10},
        _auto_precision,
    ),
    Check(
        "fp16 + GradScaler trains",
        "every method and stage at fp16 with loss scaling, 3 steps: finite",
        {"cuda": 15, "cpu": 1},
        _fp16_scaler,
    ),
    Check(
        "GradScaler skips an overflow",
        "an inf gradient: no parameter changes and the scale drops; the next step updates",
        {"cuda": 10, "cpu": 5},
        _scaler,
    ),
    Check(
        "tiny matched run",
        "every method, 1 epoch: config, manifest, metrics, log, last.pt and summary "
        "written; a time > 0 for every stage; a peak-memory figure; the device recorded",
        {"cuda": 40, "cpu": 20},
        _run_check("matched_run"),
    ),
    Check(
        "DDP averages gradients",
        "torchrun ranks (NCCL on CUDA, gloo on CPU): averaged gradients exact to 1e-6; "
        "parameters identical on every rank after a driver step of every method and stage",
        {"cuda": 40, "cpu": 20},
        _run_check("ddp_averages"),
    ),
    Check(
        "exact resume",
        "--deterministic, interrupted after the first checkpoint and re-run: per-epoch losses, "
        "weights and top-1 identical to an uninterrupted run",
        {"cuda": 60, "cpu": 30},
        _run_check("resume_is_exact"),
    ),
    Check(
        "--compile matches eager",
        "every method and stage, 2 fp32 steps: |compiled - eager| / |eager| <= 1e-3",
        {"cuda": 75, "cpu": 150},
        _compile,
        after_timings=True,
    ),
)


def run_checks(
    ctx: Context,
    only: Optional[List[str]] = None,
    echo: Callable[[str], None] = print,
    *,
    after_timings: bool = False,
    done: Callable[[List[CheckResult]], object] = lambda r: None,  # its return value is not used
) -> List[CheckResult]:
    """The checks of one phase in order (``only``: those names), each skipped when its estimate exceeds the
    budget left."""
    out = []
    for check in CHECKS:
        if (only is not None and check.name not in only) or check.after_timings != after_timings:
            continue
        need = check.estimate.get(ctx.device.type, 60.0)
        if not ctx.budget.fits(need):
            result = CheckResult(
                check.name,
                SKIPPED,
                check.tolerance,
                f"does not fit in the budget: needs about "
                f"{need:.0f} s, {max(0.0, ctx.budget.left()):.0f} s left",
            )
        else:
            result = _one(check, ctx)
        echo(f"  {result.status:7s} {result.name} ({result.seconds:.1f} s): {result.detail[:300]}")
        out.append(result)
        done(out)
    return out


def _one(check: Check, ctx: Context) -> CheckResult:
    t0 = time.perf_counter()
    try:
        ok, detail = check.run(ctx)
        status = PASS if ok else FAIL
    except SkipCheck as e:
        status, detail = SKIPPED, str(e)
    except Exception as e:  # noqa: BLE001 - a crashing check is a failed check, reported in one line
        first = (str(e).strip().splitlines() or [""])[0]
        status, detail = FAIL, f"{type(e).__name__}: {first[:300]}"
    return CheckResult(check.name, status, check.tolerance, detail, time.perf_counter() - t0)


def results_dict(results: List[CheckResult]) -> List[Dict[str, Any]]:
    return [asdict(r) for r in results]
