"""``adabench bench --train-step``: the time of one training step of every method's every stage.

The steps are what training runs: each registered method's ``plan(ctx)`` gives its stages, and each stage's
step is timed through ``bench.training.driver.train_step`` with the driver's own ``make_update`` (backward,
gradient averaging, clipping, optimiser step) at the run's precision and memory layout
(``bench.training.precision``). Inputs are random clips of the preset's shape; weights are the preset's when
they are already on this machine, else random (``bench.models.weights.timing_weights``: speed does not depend
on them, and nothing is downloaded; each row's ``weights`` says which).

Measuring discipline (as ``bench.tools.throughput``): warm-up steps, then ``repeats`` timed steps of every
(method, stage, precision) round-robin, so that background load on a shared machine hits them alike,
each bracketed by a device synchronisation; the median is reported, plus the process CPU time per
step (on a loaded machine with one thread per process it tracks the work done better than the wall
clock). Achieved GFLOP/s = the step's FLOPs (``torch.utils.flop_counter``: forward and backward, 2 per
multiply-add, unlike ``adabench flops``' multiply-adds; convolution gradients counted as their forward,
``conv_backward_flops``) / the median time, next to the device's measured matmul peak at the same precision.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch

from bench.errors import UsageError
from bench.methods import PlanContext
from bench.training.driver import make_update, train_step
from bench.training.precision import (
    DTYPES,
    grad_scaler,
    prepare_network,
    resolve_channels_last,
    resolve_precision,
)
from bench.training.timing import synchronize

CPU = torch.device("cpu")


def matmul_peak_gflops(device: torch.device, precision: str, n: int = 2048, repeats: int = 5) -> float:
    """The device's achieved matmul GFLOP/s (2 per multiply-add) at ``precision``: the fastest of
    ``repeats`` ``n x n`` products in that dtype (the ceiling a training step can approach)."""
    dtype = DTYPES.get(precision, torch.float32)
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.randn(n, n, generator=gen).to(device=device, dtype=dtype) for _ in range(2))
    a @ b  # warm-up (library initialisation, allocator)
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        t0 = time.perf_counter()
        a @ b
        synchronize(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def conv_backward_flops(
    grad_out_shape: Sequence[int],
    x_shape: Sequence[int],
    w_shape: Sequence[int],
    _bias: Any,
    _stride: Any,
    _padding: Any,
    _dilation: Any,
    transposed: bool,
    _output_padding: Any,
    _groups: Any,
    output_mask: Sequence[bool],
    out_shape: Any = None,
    **_: Any,
) -> int:
    """FLOPs of ``aten::convolution_backward``: each requested gradient (input, weight) costs what the forward
    costs. (torch's own formula counts a grouped convolution's input gradient as if it were dense: 19x the
    forward for MobileNetV2's backward.)"""
    forward = 2 * math.prod(x_shape if transposed else grad_out_shape) * math.prod(w_shape[1:])
    return forward * (int(output_mask[0]) + int(output_mask[1]))


def step_flops(call: Callable[[], Any]) -> float:
    """FLOPs of one ``call()`` (forward and backward ops, 2 per multiply-add)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(
        display=False, custom_mapping={torch.ops.aten.convolution_backward: conv_backward_flops}
    )
    with counter:
        call()
    return float(counter.get_total_flops())


@dataclass
class _Entry:
    method: str
    step: str
    precision: str
    channels_last: bool
    call: Callable[[], Any]
    prepare: Callable[[], None]
    wall: List[float]
    cpu: List[float]
    flops: float = 0.0
    epochs: int = 0
    info: Dict[str, Any] = field(default_factory=dict)  # the setting: dataset, preset, patch size, ...


def _entries(
    method_name: str,
    preset: Any,
    batch: Dict[str, torch.Tensor],
    device: torch.device,
    precision: str,
    layout: str,
    seed: int,
    compile: bool = False,
) -> List[_Entry]:
    """One entry per stage of ``method_name`` on its own network at ``precision``."""
    from bench.methods import get_method
    from bench.models import build_network

    method = get_method(method_name)
    torch.manual_seed(seed)
    channels_last = resolve_channels_last(layout, device)
    net = prepare_network(build_network(preset).to(device), channels_last=channels_last, compile=compile)
    ctx = PlanContext.for_step(net, preset, device, precision)
    out = []
    for stage in method.plan(ctx):
        stage.prepare()
        update = make_update(stage.optimizer(), grad_scaler(device, precision), stage.grad_clip, ctx.env)

        def call(stage: Any = stage, update: Any = update) -> Any:
            return train_step(stage, batch, update, device, precision)

        out.append(
            _Entry(
                method_name,
                stage.name,
                precision,
                channels_last,
                call,
                stage.prepare,
                [],
                [],
                epochs=stage.epochs,
            )
        )
    return out


def _batch(preset: Any, batch: int, device: torch.device) -> Dict[str, torch.Tensor]:
    from bench.tools.throughput import clip_inputs

    clips = clip_inputs(preset, batch, device)
    out = {
        "frames": clips[0],
        "label": torch.randint(
            0, preset.num_classes, (batch,), generator=torch.Generator().manual_seed(1)
        ).to(device),
    }
    if len(clips) > 1:
        out["glance"] = clips[1]
    return out


def _time(entry: _Entry, device: torch.device) -> None:
    entry.prepare()  # modes of its stage (stages of one method share a network)
    synchronize(device)
    w0, c0 = time.perf_counter(), time.process_time()
    entry.call()
    synchronize(device)
    entry.wall.append(time.perf_counter() - w0)
    entry.cpu.append(time.process_time() - c0)


def _collect(
    dataset: str,
    preset_name: str,
    arch: str,
    patch_sizes: Sequence[Optional[int]],
    names: Sequence[str],
    resolved: Sequence[str],
    batch: int,
    device: torch.device,
    channels_last: str,
    seed: int,
    compile: bool,
    steps: Optional[Sequence[str]],
    once: Sequence[str],
    overrides: Dict[str, Any],
) -> List[_Entry]:
    """Entries of every (patch size, method, precision, stage); a stage named in ``once`` only at the first
    size."""
    from bench.models.weights import timing_weights
    from bench.presets import get_preset

    entries: List[_Entry] = []
    for i, size in enumerate(patch_sizes):
        for name in names:
            sizes = {} if size is None else {"patch_size": size}
            preset, note = timing_weights(
                get_preset(dataset, preset_name, method=name, arch=arch, **{**overrides, **sizes})
            )
            data = _batch(preset, batch, device)
            info = dict(
                dataset=dataset,
                preset=preset_name,
                arch=arch,
                patch_size=preset.patch_size,
                frames=preset.frames,
                input_size=preset.input_size,
                preset_batch=preset.train.batch_size,
                weights=note,
            )
            for precision in resolved:
                for e in _entries(name, preset, data, device, precision, channels_last, seed, compile):
                    if (steps is None or e.step in steps) and not (i > 0 and e.step in once):
                        e.info = info
                        entries.append(e)
    return entries


def _warm_up(entries: Sequence[_Entry], warmup: int, count_flops: bool) -> None:
    for e in entries:
        for k in range(max(warmup, int(count_flops))):
            e.prepare()
            if k == 0 and count_flops:
                e.flops = step_flops(e.call)  # also a warm-up call
            else:
                e.call()


def benchmark_train_steps(
    dataset: str,
    preset_name: str = "tiny",
    *,
    arch: str = "matched",
    patch_size: Optional[int] = None,
    batch: int = 2,
    warmup: int = 2,
    repeats: int = 5,
    device: torch.device = CPU,
    precisions: Sequence[str] = ("auto",),
    channels_last: str = "auto",
    methods: Optional[Sequence[str]] = None,
    steps: Optional[Sequence[str]] = None,
    seed: int = 0,
    compile: bool = False,
    patch_sizes: Optional[Sequence[int]] = None,
    once: Sequence[str] = (),
    count_flops: bool = True,
    overrides: Optional[Dict[str, Any]] = None,
) -> List[Dict[str, Any]]:
    """One row per (method, stage, precision): ``method``, ``step`` (the stage's name), ``precision``,
    ``channels_last``, ``median_s``, ``min_s``, ``max_s``, ``cpu_median_s``, ``videos_per_s``,
    ``gflop_per_step``, ``achieved_gflops``, ``peak_gflops`` (matmul at that precision), ``utilisation``,
    ``epochs`` (the stage's, in the preset's schedule), ``preset_batch`` (the preset's batch size),
    ``weights`` (None, or the line saying which backbones started random), and the setting (dataset, preset,
    arch, patch_size, batch, warmup, repeats, device, threads). ``steps``: only the stages with these names
    (default: all). ``compile``: backbones compiled (the warm-up steps then include the compilation).
    ``patch_sizes``: one row set per size, all timed round-robin in one pool; stages named in ``once`` (whose
    step does not depend on the patch size) are timed at the first size only and their rows repeated for the
    others (``timed_at_patch``). ``count_flops=False``: no FLOP count and no matmul peak (those columns are
    None), e.g. when only the time matters. ``overrides``: preset fields
    (``--set``), e.g. no weight files."""
    from bench.methods import get_method, method_names

    names = list(methods) if methods is not None else method_names()
    resolved = list(dict.fromkeys(resolve_precision(p, device) for p in precisions))
    sizes: List[Optional[int]] = list(patch_sizes) if patch_sizes else [patch_size]
    entries = _collect(
        dataset,
        preset_name,
        arch,
        sizes,
        names,
        resolved,
        batch,
        device,
        channels_last,
        seed,
        compile,
        steps,
        once,
        overrides or {},
    )
    if not entries:
        known = sorted({s for n in names for s in get_method(n).stage_names})
        raise UsageError(f"--step {', '.join(steps or [])}: no such stage; the stages are {', '.join(known)}")
    _warm_up(entries, warmup, count_flops)
    for _ in range(repeats):
        for e in entries:
            _time(e, device)
    peaks = {p: matmul_peak_gflops(device, p) if count_flops else None for p in resolved}
    rows = [_row(e, peaks[e.precision], compile, batch, warmup, repeats, device) for e in entries]
    for size in sizes[1:]:  # the stages timed once, repeated for the other patch sizes
        for r in [r for r in rows if r["step"] in once and r["patch_size"] == rows[0]["patch_size"]]:
            rows.append({**r, "patch_size": size, "timed_at_patch": r["patch_size"]})
    return rows


def _row(
    e: _Entry,
    peak: Optional[float],
    compile: bool,
    batch: int,
    warmup: int,
    repeats: int,
    device: torch.device,
) -> Dict[str, Any]:
    med = statistics.median(e.wall)
    flops = e.flops / 1e9 if e.flops else None
    return {
        "method": e.method,
        "step": e.step,
        "precision": e.precision,
        "channels_last": e.channels_last,
        "compile": compile,
        "median_s": med,
        "min_s": min(e.wall),
        "max_s": max(e.wall),
        "cpu_median_s": statistics.median(e.cpu),
        "videos_per_s": batch / med,
        "gflop_per_step": flops,
        "achieved_gflops": flops / med if flops else None,
        "peak_gflops": peak,
        "utilisation": flops / med / peak if flops and peak else None,
        "epochs": e.epochs,
        **e.info,
        "batch": batch,
        "warmup": warmup,
        "repeats": repeats,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "timed_at_patch": None,
    }
