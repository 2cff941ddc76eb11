"""Inference throughput (videos/s) of each method's network and of a full-frame baseline.

Measuring discipline (timm's ``benchmark.py``): eval mode, ``torch.no_grad``, a few warm-up calls
(cuDNN autotuning, allocator growth, lazy init), then ``repeats`` timed calls, each bracketed by
``torch.cuda.synchronize`` on CUDA (kernels are asynchronous); the median is reported because
shared machines produce outliers in one direction only.

The full-frame baseline is the focus backbone f_L applied to every whole frame at the input size,
followed by a linear head and averaged logits (TSN-style). Its GFLOPs over a method's GFLOPs is
the speed-up that FLOPs alone promise; the measured speed-up is usually smaller (memory traffic,
small kernels, the policy's sequential steps).
"""

from __future__ import annotations

import statistics
import time
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from bench.models.backbones import Backbone, create_backbone
from bench.training.precision import autocast, prepare_network, resolve_channels_last, resolve_precision
from bench.training.timing import synchronize

Inputs = Union[torch.Tensor, Sequence[torch.Tensor]]


def _as_batch(inputs: Inputs, batch: int, device: torch.device) -> Tuple[torch.Tensor, ...]:
    """Move inputs to ``device``; a leading dim of 1 is repeated to ``batch``."""
    xs = (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)
    out = []
    for x in xs:
        if x.shape[0] == 1 and batch > 1:
            x = x.expand(batch, *x.shape[1:])
        elif x.shape[0] != batch:
            raise ValueError(f"inputs have batch {x.shape[0]}, expected {batch} (or 1)")
        out.append(x.to(device).contiguous())
    return tuple(out)


def _stats(times: List[float], batch: int) -> Dict[str, float]:
    med = statistics.median(times)
    q = statistics.quantiles(times, n=4) if len(times) >= 2 else [times[0]] * 3
    return {
        "videos_per_s": batch / med,
        "ms_per_batch": 1e3 * med,
        "ms_per_video": 1e3 * med / batch,
        "ms_per_batch_min": 1e3 * min(times),
        "ms_per_batch_max": 1e3 * max(times),
        "ms_per_batch_iqr": 1e3 * (q[2] - q[0]),
    }


def measure_interleaved(
    models: Dict[str, Tuple[Callable[..., Any], Inputs]],
    *,
    batch: int,
    warmup: int = 3,
    repeats: int = 10,
    device: Union[str, torch.device] = "cpu",
    precision: str = "fp32",
) -> Dict[str, Dict[str, Any]]:
    """``measure_throughput`` for several models at once, timed round-robin (one call of each per
    repeat) so that background load on a shared machine hits them all alike.

    models: name -> (model_fn, inputs). Returns name -> the ``measure_throughput`` dict.
    ``precision`` (resolved, ``bench.training.precision``): the autocast every call runs under.
    """
    if batch < 1 or repeats < 1 or warmup < 0:
        raise ValueError("need batch >= 1, repeats >= 1, warmup >= 0")
    dev = torch.device(device)
    calls = {name: (fn, _as_batch(x, batch, dev)) for name, (fn, x) in models.items()}
    modules = [fn for fn, _ in calls.values() if isinstance(fn, nn.Module)]
    modes = {m: m.training for mod in modules for m in mod.modules()}
    for mod in modules:
        mod.eval()
    times: Dict[str, List[float]] = {name: [] for name in calls}
    try:
        with torch.no_grad(), autocast(dev, precision):
            for fn, xs in calls.values():
                for _ in range(warmup):
                    fn(*xs)
            for _ in range(repeats):
                for name, (fn, xs) in calls.items():
                    synchronize(dev)
                    t0 = time.perf_counter()
                    fn(*xs)
                    synchronize(dev)
                    times[name].append(time.perf_counter() - t0)
    finally:
        for m, training in modes.items():
            m.train(training)
    meta = {"batch": batch, "warmup": warmup, "repeats": repeats, "device": str(dev), "precision": precision}
    return {name: {**_stats(t, batch), **meta} for name, t in times.items()}


def measure_throughput(
    model_fn: Callable[..., Any],
    inputs: Inputs,
    *,
    batch: int,
    warmup: int = 3,
    repeats: int = 10,
    device: Optional[Union[str, torch.device]] = None,
) -> Dict[str, Any]:
    """Time ``model_fn(*inputs)`` on a batch of ``batch`` videos.

    inputs: a tensor [B, ...] or a tuple of them (B = ``batch``, or 1 to be repeated).
    Returns videos_per_s (from the median), ms_per_batch (median), ms_per_video, ms_per_batch_min/max,
    ms_per_batch_iqr, batch, warmup, repeats, device. An ``nn.Module`` is put in eval mode (and its
    modes restored afterwards). ``device`` defaults to the inputs' device.
    """
    first = inputs if isinstance(inputs, torch.Tensor) else inputs[0]
    dev = torch.device(device) if device is not None else first.device
    return measure_interleaved(
        {"model": (model_fn, inputs)}, batch=batch, warmup=warmup, repeats=repeats, device=dev
    )["model"]


class FullFrameNet(nn.Module):
    """The full-frame baseline: f_L on whole frames, a linear head, logits averaged over time.

    forward(frames [B,T,3,H,W]) -> logits [B,K].
    """

    def __init__(self, backbone: Backbone, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.out_channels, num_classes)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        b, t = frames.shape[:2]
        _, pooled = self.backbone(frames.flatten(0, 1))  # [B*T, C]
        return self.head(pooled).view(b, t, -1).mean(1)


def build_full_frame(preset: Any, num_classes: Optional[int] = None) -> FullFrameNet:
    """The full-frame baseline of a preset: its focus backbone (TSM over ``preset.frames`` if TSM)."""
    bb = create_backbone(
        preset.focus_backbone, pretrained=None, num_segments=preset.frames, shift_div=preset.shift_div
    )
    return FullFrameNet(bb, num_classes or preset.num_classes)


def full_frame_gflops(net: FullFrameNet, preset: Any) -> float:
    """GFLOPs of one video through the baseline, with ``bench.models.flops``' conventions (multiply-adds,
    BatchNorm excluded)."""
    from fvcore.nn import FlopCountAnalysis

    device = next(net.parameters()).device
    frames = torch.zeros(1, preset.frames, 3, preset.input_size, preset.input_size, device=device)
    modes = {m: m.training for m in net.modules()}
    try:
        net.eval()
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # fvcore's tracer warnings
            fca = FlopCountAnalysis(net, (frames,))
            fca.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
            # a zero handle: set_op_handle(op, None) only marks the op ignored, fvcore's default handle still
            # counts it
            fca.set_op_handle("aten::batch_norm", lambda inputs, outputs: 0)
            return fca.total() * 1e-9
    finally:
        for m, training in modes.items():
            m.train(training)


def clip_inputs(preset: Any, batch: int, device: torch.device) -> Tuple[torch.Tensor, ...]:
    """Random (frames [B,T,3,S,S], and glance [B,Tg,3,S,S] in the video variant) for timing."""
    gen = torch.Generator().manual_seed(0)
    s = preset.input_size
    frames = torch.randn(batch, preset.frames, 3, s, s, generator=gen).to(device)
    if preset.variant == "video" and preset.glance_frames:
        return frames, torch.randn(batch, preset.glance_frames, 3, s, s, generator=gen).to(device)
    return (frames,)


class MethodInference(nn.Module):
    """What a method runs at test time: greedy policy patches -> final logits [B,K]."""

    def __init__(self, net: nn.Module, aux: bool) -> None:
        super().__init__()
        self.net, self.aux = net, aux

    def forward(self, frames: torch.Tensor, glance: Optional[torch.Tensor] = None) -> torch.Tensor:
        out = self.net(frames, glance, patch_mode="policy", policy_mode="greedy", aux=self.aux)
        return out["logits"][:, -1]


def benchmark_preset(
    dataset: str,
    preset_name: str = "tiny",
    *,
    arch: str = "matched",
    patch_size: Optional[int] = None,
    batch: int = 8,
    warmup: int = 3,
    repeats: int = 10,
    device: Union[str, torch.device] = "cpu",
    methods: Optional[Sequence[str]] = None,
    seed: int = 0,
    precision: str = "fp32",
    channels_last: str = "off",
) -> List[Dict[str, Any]]:
    """One row per network (each method's inference network, then the full-frame baseline):
    network, gflops_per_video, params_m, the ``measure_throughput`` fields, and against the baseline:
    ``gflops_ratio`` (baseline GFLOPs / this network's: the speed-up FLOPs promise) and ``measured_speedup``
    (this network's median videos/s / the baseline's) and ``measured_speedup_best`` (from the fastest call of
    each). Weights: the preset's when already on this machine, else random (``timing_weights``; speed does not
    depend on them, nothing is downloaded; ``weights`` says which started random; the full-frame baseline is
    always random). ``precision`` /
    ``channels_last``: as ``adabench run``'s (``bench.training.precision``)."""
    from bench.methods import get_method, method_names
    from bench.models import build_network
    from bench.models.flops import count_flops
    from bench.models.weights import timing_weights
    from bench.presets import get_preset

    dev = torch.device(device)
    precision = resolve_precision(precision, dev)
    layout = resolve_channels_last(channels_last, dev)
    methods = list(methods) if methods is not None else method_names()
    sizes: Dict[str, Any] = {} if patch_size is None else {"patch_size": patch_size}
    rows: List[Dict[str, Any]] = []
    models: Dict[str, Tuple[Callable[..., Any], Inputs]] = {}
    preset = None
    notes: Dict[str, Optional[str]] = {}
    for method in methods:
        torch.manual_seed(seed)
        preset, notes[method] = timing_weights(
            get_preset(dataset, preset_name, method=method, arch=arch, **sizes)
        )
        net = build_network(preset).to(dev)
        aux = get_method(method).flops_aux_heads  # the method's FLOPs rule (bench.models.flops)
        report = count_flops(net, preset, aux=aux)
        name = f"{get_method(method).title} {preset.patch_size}²"
        models[name] = (
            MethodInference(prepare_network(net, channels_last=layout), aux),
            clip_inputs(preset, 1, dev),
        )
        rows.append(
            {
                "network": name,
                "method": method,
                "patch_size": preset.patch_size,
                "gflops_per_video": report.gflops_per_video,
                "params_m": report.params_m,
            }
        )
    if preset is None:
        raise ValueError("no methods given")
    torch.manual_seed(seed)
    full = build_full_frame(preset).to(dev)
    name = f"full-frame {preset.focus_backbone} {preset.input_size}²"
    models[name] = (prepare_network(full, channels_last=layout), clip_inputs(preset, 1, dev)[:1])
    rows.append(
        {
            "network": name,
            "method": "full_frame",
            "patch_size": preset.input_size,
            "gflops_per_video": full_frame_gflops(full, preset),
            "params_m": sum(p.numel() for p in full.parameters()) / 1e6,
        }
    )
    speeds = measure_interleaved(
        models, batch=batch, warmup=warmup, repeats=repeats, device=dev, precision=precision
    )
    g_full = rows[-1]["gflops_per_video"]
    for r in rows:
        r.update(speeds[r["network"]])
    for r in rows:
        r["gflops_ratio"] = g_full / r["gflops_per_video"]
        r["measured_speedup"] = r["videos_per_s"] / rows[-1]["videos_per_s"]
        # best-of-N: on a shared machine the fastest call is the least disturbed one
        r["measured_speedup_best"] = rows[-1]["ms_per_batch_min"] / r["ms_per_batch_min"]
        r.update(
            dataset=dataset,
            preset=preset_name,
            arch=arch,
            channels_last=layout,
            weights=notes.get(r["method"]),
        )
    return rows
