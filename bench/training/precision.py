"""Numeric precision and memory layout of a run: one setting for every stage of every method.

``--precision`` (``RunConfig.precision``) is resolved once per run (``resolve_precision``) and is part of
the run's identity (config hash, ``manifest.json``'s ``precision``, the results table), so runs of
different precision are never pooled. The training driver wraps every step of every stage in
``autocast(device, precision)`` and evaluation does the same, so the methods of a matched experiment
always compute alike:

- ``fp32``: no autocast;
- ``bf16``: ``torch.autocast(device, torch.bfloat16)`` (no loss scaling: bf16 has fp32's range);
- ``fp16``: ``torch.autocast(device, torch.float16)`` with a ``GradScaler``;
- ``auto``: bf16 on a CPU with native bf16 arithmetic (AVX512-BF16 or AMX), on CUDA
  bf16 where the GPU supports it, else fp16; fp32 on any other CPU.

Autocast runs the backbones (f_G and f_L: nearly all of a step's FLOPs) in the low precision. Everything
after their pooled features runs in fp32 (``full_precision`` on the modules' methods, ``fp32`` for single
calls): the policy (its locations, log-probabilities, entropies and values), the classifier with its GRU
(a recurrence accumulates rounding over the steps) and every head (logits: the losses, the early-exit
softmax and V1's rewards read them). Losses, softmax confidences, returns and advantages are computed
from those fp32 tensors. At the paper's shapes these parts are under 2 % of a step.

``channels_last`` (NHWC) speeds up convolutions on CUDA and, measured, on AVX-512 CPUs with native bf16
at either precision (docs/speed.md); ``resolve_channels_last`` decides ``auto``.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any, Callable, ContextManager, Dict, Optional, TypeVar

import torch

from bench.errors import UsageError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
RESOLVED = ("fp32", "bf16", "fp16")
LAYOUTS = ("auto", "on", "off")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def cpu_has_native_bf16() -> bool:
    """True when the CPU does bf16 arithmetic in hardware (AVX512-BF16 or AMX) and oneDNN is there to use it.
    (oneDNN's own ``_is_mkldnn_bf16_supported`` also says yes on AVX-512 CPUs that only emulate bf16.)"""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # a torch without these probes
        caps: Dict[str, Any] = getattr(torch.cpu, "get_capabilities", dict)()
        return bool(caps.get("avx512_bf16") or caps.get("amx_bf16"))


def cuda_has_bf16(device: torch.device) -> bool:
    return device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def resolve_precision(pref: Optional[str], device: torch.device) -> str:
    """``auto``/``fp32``/``bf16``/``fp16`` -> the precision a run on ``device`` uses (never ``auto``)."""
    pref = (pref or "auto").strip().lower()
    if pref not in PRECISIONS:
        raise UsageError(f"--precision {pref}: expected one of {', '.join(PRECISIONS)}")
    if pref != "auto":
        return pref
    if device.type == "cuda":
        return "bf16" if cuda_has_bf16(device) else "fp16"
    if device.type == "cpu" and cpu_has_native_bf16():
        return "bf16"
    return "fp32"


def autocast(device: torch.device, precision: str) -> ContextManager[Any]:
    """The autocast region of a training or evaluation step at ``precision`` (resolved)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision not in DTYPES:
        raise ValueError(f"precision must be one of {RESOLVED} (resolved), got {precision!r}")
    return torch.autocast(device.type, dtype=DTYPES[precision])


def grad_scaler(device: torch.device, precision: str) -> Any:
    """A GradScaler, active only for fp16 (bf16 and fp32 need no loss scaling); a disabled one
    passes the loss through and just steps, so the update reads the same for every precision."""
    on = precision == "fp16"
    if hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler("cuda" if device.type == "cuda" else "cpu", enabled=on)
    return torch.cuda.amp.GradScaler(enabled=on and device.type == "cuda")  # torch < 2.3: CUDA only


def autocast_enabled(device_type: str) -> bool:
    try:
        return bool(torch.is_autocast_enabled(device_type))
    except TypeError:  # torch < 2.4
        return torch.is_autocast_cpu_enabled() if device_type == "cpu" else torch.is_autocast_enabled()


def fp32(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, inside an autocast region with autocast off and floating-point tensor arguments cast
    to fp32: a part that must stay exact (see the module docstring). Outside autocast: just ``fn(*args)``."""
    device = next((a.device.type for a in args if isinstance(a, torch.Tensor)), "cpu")
    if not autocast_enabled(device):
        return fn(*args)
    args = tuple(a.float() if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args)
    with torch.autocast(device, enabled=False):
        return fn(*args)


def full_precision(method: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator for a module method that must run in fp32 inside an autocast region (``fp32``)."""

    @functools.wraps(method)
    def wrapped(self: Any, *args: Any, **kwargs: Any) -> Any:
        return fp32(lambda *a: method(self, *a, **kwargs), *args)

    return wrapped


def resolve_channels_last(pref: Optional[str], device: torch.device) -> bool:
    """``on``/``off``/``auto`` -> whether the network runs in channels_last.

    ``auto``: on CUDA; on a CPU of the class where it was measured faster, at fp32 and at bf16, for the tiny
    and
    the paper backbones (an AVX-512 CPU with native bf16, docs/speed.md); off on other CPUs (not measured)."""
    pref = (pref or "auto").strip().lower()
    if pref not in LAYOUTS:
        raise UsageError(f"--channels-last {pref}: expected one of {', '.join(LAYOUTS)}")
    if pref != "auto":
        return pref == "on"
    return device.type == "cuda" or (device.type == "cpu" and cpu_has_native_bf16())


M = TypeVar("M", bound=torch.nn.Module)


def to_layout(module: M, channels_last: bool) -> M:
    """``module`` with its 4-d weights in channels_last (or back to contiguous)."""
    return module.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def check_compile(device: torch.device) -> None:
    """Fail with one line when ``torch.compile`` cannot build code on ``device`` (inductor needs a C++
    compiler on CPU, Triton on CUDA); compiling is lazy, so without this the error would surface as a long
    traceback inside the first training step."""
    try:
        fn = torch.compile(lambda x: torch.relu(x) * 2)
        fn(torch.ones(8, device=device))
    except Exception as e:  # noqa: BLE001 - any backend failure gets the same one-line error
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UsageError(
            f"--compile: torch.compile does not work on {device.type} here ({first[:200]}); "
            "run without --compile"
        ) from None


def prepare_network(net: M, *, channels_last: bool, compile: bool = False) -> M:
    """The run's network on its device in its memory layout; with ``compile`` every backbone (f_G, f_L:
    nearly all of a step's time) is compiled in place (``Module.compile``: parameter names unchanged, so
    checkpoints and shared initial states load as before)."""
    net = to_layout(net, channels_last)
    if compile:
        from bench.models.backbones import Backbone

        check_compile(next(net.parameters()).device)
        for module in net.modules():
            if isinstance(module, Backbone):
                module.compile()
    return net
