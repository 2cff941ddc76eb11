"""``adabench selfcheck``: speed at the papers' shapes (random weights, nothing downloaded).

- ``matmul``: the device's measured matmul peak at fp32 and at the automatic precision (the ceiling the
  training steps' achieved GFLOP/s are compared with);
- ``train_steps``: ``adabench bench --train-step`` for every method and stage at fp32 and auto;
- ``inference``: ``adabench bench`` (videos/s of every method and of the full-frame baseline) at auto;
- ``official``: for every method whose registry entry has an ``OfficialStep`` and whose snapshot variable is
  set, the official code's step and ours (fp32 and auto) timed round-robin in this process, each call
  bracketed by a device synchronisation.

``paper`` shapes are the papers' (ActivityNet variant for training steps and the official code, the
Sth-Sth variant for inference, patch 128); ``tiny`` shapes run the same code in seconds (the CPU dry run).
Every part asks the budget first and is skipped, with the reason, when its estimate does not fit.
"""

from __future__ import annotations

import contextlib
import io
import statistics
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional

import torch

from bench.training.precision import resolve_precision
from bench.training.timing import synchronize

NO_WEIGHTS = {
    "glance_pretrained": None,
    "focus_pretrained": None,
}  # random weights: speed does not depend on them


@dataclass(frozen=True)
class Shapes:
    name: str
    train_dataset: str
    infer_dataset: str
    preset: str
    patch_size: Optional[int]
    train_batch: int
    infer_batch: int
    warmup: int
    repeats: int
    overrides: Mapping[str, Any]


def shapes_for(name: str, device: torch.device) -> Shapes:
    """``paper``: batch 16 per training step and 128 for inference on a GPU (V2's throughput table's batch), 2
    and 8 on a CPU; ``tiny``: the micro networks of the checks, one timed call each (the code path, not a
    measurement)."""
    if name == "paper":
        gpu = device.type == "cuda"
        return Shapes(
            "paper",
            "actnet",
            "sthv2",
            "paper",
            128,
            16 if gpu else 2,
            128 if gpu else 8,
            3 if gpu else 1,
            10 if gpu else 3,
            NO_WEIGHTS,
        )
    from bench.tools.selfcheck_runs import RUN_SETS

    return Shapes("tiny", "synthetic", "synthetic", "tiny", None, 4, 4, 0, 1, dict(RUN_SETS))


class Skip(Exception):
    """A part that does not run here (no snapshot, or it does not fit in the budget): the reason."""


def _fits(budget: Any, estimate: float, what: str) -> None:
    if not budget.fits(estimate):
        raise Skip(f"{what}: needs about {estimate:.0f} s, {budget.left():.0f} s of the budget left")


def matmul(device: torch.device) -> List[Dict[str, Any]]:
    from bench.tools.trainstep import matmul_peak_gflops

    precisions = list(dict.fromkeys(["fp32", resolve_precision("auto", device)]))
    return [{"precision": p, "gflops": matmul_peak_gflops(device, p)} for p in precisions]


def train_steps(
    device: torch.device, shapes: Shapes, budget: Any, estimate: float, skipped: List[str]
) -> List[Dict[str, Any]]:
    """Every method's stages at fp32 and auto, one method at a time (round-robin inside a method), while the
    budget lasts; each later method is estimated from the slowest so far."""
    from bench.methods import method_names
    from bench.tools.trainstep import benchmark_train_steps

    rows: List[Dict[str, Any]] = []
    for name in method_names():
        try:
            _fits(budget, estimate, f"train steps of {name}")
        except Skip as e:
            skipped.append(str(e))
            continue
        t0 = time.perf_counter()
        rows += benchmark_train_steps(
            shapes.train_dataset,
            shapes.preset,
            patch_size=shapes.patch_size,
            batch=shapes.train_batch,
            warmup=shapes.warmup,
            repeats=shapes.repeats,
            device=device,
            precisions=("fp32", "auto"),
            methods=[name],
            overrides=dict(shapes.overrides),
        )
        estimate = max(estimate, time.perf_counter() - t0)
    return rows


def inference(device: torch.device, shapes: Shapes) -> List[Dict[str, Any]]:
    from bench.tools.throughput import benchmark_preset

    return benchmark_preset(
        shapes.infer_dataset,
        shapes.preset,
        patch_size=shapes.patch_size,
        batch=shapes.infer_batch,
        warmup=shapes.warmup,
        repeats=shapes.repeats,
        device=device,
        precision="auto",
        channels_last="auto",
    )


def _timed(call: Callable[[], Any], device: torch.device) -> float:
    synchronize(device)
    t0 = time.perf_counter()
    call()
    synchronize(device)
    return time.perf_counter() - t0


def official_side_by_side(
    method: Any, device: torch.device, shapes: Shapes, budget: Any, estimate: float
) -> Dict[str, Any]:
    """The official step and ours at fp32 and auto, round-robin; raises ``Skip`` without a snapshot."""
    from bench.presets import get_preset
    from bench.tools.official_code import official_modules, scratch_dir, snapshot_folder
    from bench.tools.selfcheck_steps import build_stages, random_batch

    spec = method.official_step
    folder = snapshot_folder(spec.env, spec.folder, scratch_dir())
    if folder is None:
        raise Skip(f"{spec.label}: set {spec.env} to a checkout of the official code to time it beside ours")
    _fits(budget, estimate, spec.label)
    # the official code builds the paper's networks (224² frames); tiny shapes: 4 frames, one video
    paper = shapes.name == "paper"
    small: Dict[str, Any] = {} if paper else {"frames": 4}
    preset = get_preset(
        spec.dataset,
        "paper",
        method=method.name,
        arch=spec.arch,
        **NO_WEIGHTS,
        **small,
    )
    batch = shapes.train_batch if paper else 1
    dev_batch = {k: v.to(device) for k, v in random_batch(preset, batch).items()}
    calls: Dict[str, Callable[[], Any]] = {}
    for precision in dict.fromkeys(["fp32", resolve_precision("auto", device)]):
        _, stages = build_stages(method.name, preset, device, precision)
        stage, update, _ = next(s for s in stages if s[0].name == spec.stage)

        def ours(stage: Any = stage, update: Any = update, precision: str = precision) -> Any:
            from bench.training.driver import train_step

            stage.prepare()
            return train_step(stage, dev_batch, update, device, precision)

        calls[f"ours {precision}"] = ours
    with official_modules(folder, device), quiet():
        calls = {"official": spec.build(preset, device, batch), **calls}
        times: Dict[str, List[float]] = {k: [] for k in calls}
        for k in range(shapes.warmup + shapes.repeats):
            for name, call in calls.items():
                t = _timed(call, device)
                if k >= shapes.warmup:
                    times[name].append(t)
    med = {name: statistics.median(t) for name, t in times.items()}
    return {
        "method": method.name,
        "step": spec.stage,
        "label": spec.label,
        "dataset": spec.dataset,
        "arch": spec.arch,
        "batch": batch,
        "frames": preset.frames,
        "patch_size": preset.patch_size,
        "repeats": shapes.repeats,
        "official_s": med["official"],
        **{f"{k.split()[1]}_s": v for k, v in med.items() if k != "official"},
        **{f"{k.split()[1]}_ratio": v / med["official"] for k, v in med.items() if k != "official"},
    }


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """The official code's prints and deprecation warnings kept off the console."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def official(
    device: torch.device, shapes: Shapes, budget: Any, estimate: float, skipped: List[str]
) -> List[Dict[str, Any]]:
    from bench.methods import all_methods

    rows = []
    for method in all_methods():
        if method.official_step is None:
            continue
        try:
            rows.append(official_side_by_side(method, device, shapes, budget, estimate))
        except Skip as e:
            skipped.append(str(e))
    return rows
