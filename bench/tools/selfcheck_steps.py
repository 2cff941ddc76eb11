"""``adabench selfcheck``: the checks on single training steps (every registered method, every stage).

- ``fp32_matches_cpu``: a method's steps at fp32 on the device give the CPU's losses for the same inputs and
  initial weights. Random draws (dropout masks, random patches, sampled actions) come from the CPU generator
  on both sides (``cpu_random``), so the only difference left is the device's arithmetic; TF32 is off for it.
- ``precision_trains``: a few steps at a low precision stay finite (losses and parameters).
- ``scaler_skips_overflow``: with loss scaling on, a step whose gradient is infinite changes no parameter and
  lowers the scale; the next finite step updates again.
- ``compile_matches_eager``: backbones compiled with ``torch.compile`` give the eager losses.

Steps are the driver's (``bench.training.driver.train_step`` with ``make_update``), built from each method's
``plan`` exactly as ``adabench bench --train-step`` builds them.
"""

from __future__ import annotations

import contextlib
import copy
import math
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from bench.methods import PlanContext
from bench.training.driver import make_update, train_step
from bench.training.precision import grad_scaler, prepare_network, resolve_channels_last

FP32_RTOL = 1e-3  # |loss_device - loss_cpu| / |loss_cpu|, per step (fp32 on both; cuDNN vs oneDNN sums)
COMPILE_RTOL = 1e-3  # compiled vs eager loss, per step (inductor may fuse and reorder sums)
STEPS = 2  # steps per stage compared: the second shows the first update went the same way

_RANDOM = {
    torch.rand,
    torch.randn,
    torch.randint,
    torch.normal,
    torch.multinomial,
    torch.bernoulli,
    torch.rand_like,
    torch.randn_like,
    torch.randint_like,
    F.dropout,
}


class cpu_random(TorchFunctionMode):
    """Every random draw made on the CPU with the CPU generator, then moved to where it was asked for: the
    same seed gives the same dropout masks, patches and actions on any device (a device's own generator
    would draw other numbers)."""

    def __torch_function__(
        self, func: Callable, types: Any, args: tuple = (), kwargs: Optional[dict] = None
    ) -> Any:
        kwargs = dict(kwargs or {})
        if func not in _RANDOM or kwargs.get("generator") is not None:
            return func(*args, **kwargs)
        tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
        device = (
            torch.device(kwargs["device"])
            if kwargs.get("device") is not None
            else (tensors[0].device if tensors else torch.device("cpu"))
        )
        if device.type == "cpu":
            return func(*args, **kwargs)
        on_cpu = lambda a: a.cpu() if isinstance(a, torch.Tensor) else a  # noqa: E731
        if "device" in kwargs:
            kwargs["device"] = "cpu"
        if func is F.dropout:
            kwargs.pop("inplace", None)
            args = args[:3]
        out = func(*map(on_cpu, args), **{k: on_cpu(v) for k, v in kwargs.items()})
        return out.to(device) if isinstance(out, torch.Tensor) else out


@contextlib.contextmanager
def exact_fp32() -> Iterator[None]:
    """No TF32 (matmuls and convolutions in full fp32 on CUDA) for the duration; the settings are put back."""
    saved = (
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
        torch.backends.cudnn.benchmark,
    )
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        (
            torch.backends.cuda.matmul.allow_tf32,
            torch.backends.cudnn.allow_tf32,
            torch.backends.cudnn.benchmark,
        ) = saved


def tiny_preset(method: str, overrides: Mapping[str, Any]) -> Any:
    from bench.presets import get_preset

    return get_preset("synthetic", "tiny", method=method, **overrides)


def random_batch(preset: Any, batch: int, seed: int = 0) -> Dict[str, torch.Tensor]:
    """Random clips of the preset's shape and labels, on the CPU (moved by the caller)."""
    g = torch.Generator().manual_seed(seed)
    s = preset.input_size
    out = {
        "frames": torch.randn(batch, preset.frames, 3, s, s, generator=g),
        "label": torch.randint(0, preset.num_classes, (batch,), generator=g),
    }
    if preset.variant == "video" and preset.glance_frames:
        out["glance"] = torch.randn(batch, preset.glance_frames, 3, s, s, generator=g)
    return out


def build_stages(
    method_name: str,
    preset: Any,
    device: torch.device,
    precision: str,
    *,
    layout: str = "auto",
    compile: bool = False,
    state: Optional[Mapping[str, torch.Tensor]] = None,
    scaler_precision: Optional[str] = None,
) -> Tuple[torch.nn.Module, List[Tuple[Any, Any, Any]]]:
    """The method's network on ``device`` (from ``state`` when given, else seeded 0) and its stages, each with
    the driver's update: ``[(stage, update, scaler)]``."""
    from bench.methods import get_method
    from bench.models import build_network, without_weight_files

    method = get_method(method_name)
    torch.manual_seed(0)
    net = build_network(without_weight_files(preset))
    if state is not None:
        net.load_state_dict(state)
    net = prepare_network(
        net.to(device), channels_last=resolve_channels_last(layout, device), compile=compile
    )
    ctx = PlanContext.for_step(net, preset, device, precision)
    out = []
    for stage in method.plan(ctx):
        stage.prepare()
        scaler = grad_scaler(device, scaler_precision or precision)
        out.append((stage, make_update(stage.optimizer(), scaler, stage.grad_clip, ctx.env), scaler))
    return net, out


def run_steps(
    stages: List[Tuple[Any, Any, Any]],
    batch: Dict[str, torch.Tensor],
    device: torch.device,
    precision: str,
    steps: int,
) -> Dict[str, List[float]]:
    """``steps`` driver steps of every stage in order, seeded alike; the loss of each."""
    batch = {k: v.to(device) for k, v in batch.items()}
    losses: Dict[str, List[float]] = {}
    with cpu_random():
        for k, (stage, update, _) in enumerate(stages):
            stage.prepare()
            torch.manual_seed(100 + k)
            losses[stage.name] = [
                float(train_step(stage, batch, update, device, precision)["loss"]) for _ in range(steps)
            ]
    return losses


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-12)


def compare_losses(got: Dict[str, List[float]], ref: Dict[str, List[float]], rtol: float) -> Tuple[bool, str]:
    """Whether every step's loss is within ``rtol`` of the reference, and a one-line account."""
    worst = max((_rel(g, r), name) for name in ref for g, r in zip(got[name], ref[name]))
    finite = all(math.isfinite(x) for v in got.values() for x in v)
    ok = finite and worst[0] <= rtol
    losses = "; ".join(f"{n} {' '.join(f'{x:.5g}' for x in got[n])}" for n in got)
    return ok, f"largest relative difference {worst[0]:.2e} ({worst[1]}); losses {losses}"


def fp32_matches_cpu(
    method: str, device: torch.device, overrides: Mapping[str, Any], batch: int = 4
) -> Tuple[bool, str]:
    """fp32 steps of every stage on ``device`` (its default layout; channels_last forced on a CPU, so the dry
    run compares two different code paths) against the same steps on the CPU in the contiguous layout."""
    preset = tiny_preset(method, overrides)
    data = random_batch(preset, batch)
    with exact_fp32():
        ref_net, ref = build_stages(method, preset, torch.device("cpu"), "fp32", layout="off")
        state = copy.deepcopy(ref_net.state_dict())
        want = run_steps(ref, data, torch.device("cpu"), "fp32", STEPS)
        _, dev = build_stages(
            method, preset, device, "fp32", layout="on" if device.type == "cpu" else "auto", state=state
        )
        got = run_steps(dev, data, device, "fp32", STEPS)
    return compare_losses(got, want, FP32_RTOL)


def params_finite(net: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in net.parameters())


def precision_trains(
    method: str,
    device: torch.device,
    precision: str,
    overrides: Mapping[str, Any],
    steps: int = 3,
    batch: int = 4,
) -> Tuple[bool, str]:
    """``steps`` steps of every stage at ``precision`` (its loss scaling included) stay finite."""
    preset = tiny_preset(method, overrides)
    net, stages = build_stages(method, preset, device, precision)
    losses = run_steps(stages, random_batch(preset, batch), device, precision, steps)
    finite = all(math.isfinite(x) for v in losses.values() for x in v) and params_finite(net)
    scales = [f"{s.name} scale {sc.get_scale():g}" for s, _, sc in stages if sc.is_enabled()]
    text = "; ".join(f"{n} {' '.join(f'{x:.4g}' for x in v)}" for n, v in losses.items())
    return finite, (
        f"losses {text}"
        + (f" ({', '.join(scales)})" if scales else "")
        + ("" if finite else "; a loss or a parameter is not finite")
    )


def scaler_skips_overflow(
    method: str, device: torch.device, overrides: Mapping[str, Any], batch: int = 4
) -> Tuple[bool, str]:
    """Loss scaling on (fp16 autocast on CUDA; on a CPU the same scaler with fp32 arithmetic, since fp16
    autocast is the CUDA path): an infinite gradient in one parameter makes the driver's update skip the whole
    step and halve the scale; the following finite steps update the parameters again."""
    preset = tiny_preset(method, overrides)
    precision = "fp16" if device.type == "cuda" else "fp32"
    net, stages = build_stages(method, preset, device, precision, scaler_precision="fp16")
    stage, update, scaler = stages[0]
    stage.prepare()
    data = {k: v.to(device) for k, v in random_batch(preset, batch).items()}
    trainable = [p for p in net.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in trainable]
    scale0 = scaler.get_scale()
    hook = trainable[0].register_hook(lambda g: torch.full_like(g, float("inf")))
    try:
        train_step(stage, data, update, device, precision)
    finally:
        hook.remove()
    unchanged = all(torch.equal(p.detach(), b) for p, b in zip(trainable, before))
    scale1 = scaler.get_scale()
    # fp16 may overflow by itself at a high scale: each such step halves it again
    for tries in range(1, 9):  # noqa: B007 (read after the loop)
        train_step(stage, data, update, device, precision)
        moved = any(not torch.equal(p.detach(), b) for p, b in zip(trainable, before))
        if moved:
            break
    ok = unchanged and scale1 < scale0 and moved and params_finite(net)
    return ok, (
        f"{stage.name}: overflowing step {'skipped' if unchanged else 'APPLIED'} (scale {scale0:g} -> "
        f"{scale1:g}); {'an update after ' + str(tries) if moved else 'NO update in 8'} finite step(s)"
        + ("" if device.type == "cuda" else "; CPU: fp32 arithmetic with the fp16 scaler")
    )


def compile_matches_eager(
    method: str, device: torch.device, overrides: Mapping[str, Any], batch: int = 4
) -> Tuple[bool, str]:
    """fp32 steps of every stage with compiled backbones against the same steps eager (same weights,
    draws)."""
    # each method compiles afresh (the shared backbones' graphs would hit the recompile limit)
    torch._dynamo.reset()
    preset = tiny_preset(method, overrides)
    data = random_batch(preset, batch)
    with exact_fp32():
        eager_net, eager = build_stages(method, preset, device, "fp32")
        state = copy.deepcopy(eager_net.state_dict())
        want = run_steps(eager, data, device, "fp32", STEPS)
        _, compiled = build_stages(method, preset, device, "fp32", compile=True, state=state)
        got = run_steps(compiled, data, device, "fp32", STEPS)
    return compare_losses(got, want, COMPILE_RTOL)
