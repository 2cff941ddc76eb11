"""Inference FLOPs with fvcore, following the AdaFocus papers' conventions.

- One multiply-add = one FLOP (fvcore's convention); reported in GFLOPs.
- BatchNorm excluded: a handle returning 0 (``set_op_handle(name, None)`` would keep fvcore's default).
- ``aten::gru`` (which fvcore counts as 0) gets a closed-form handle: per sample and step,
  3*H*(I + H) multiply-adds per layer and direction (gate matmuls; element-wise gate ops not counted).
- Only the inference path: eval mode, one video, greedy policy patches (never the random-patch
  training branch). Whether the auxiliary heads count is the method's FLOPs rule (its registry entry's
  ``flops_aux_heads``: V2's published figures include them, V1's inference does not evaluate them).
- Ops fvcore cannot count are listed in ``unsupported`` (they contribute 0), never silently dropped.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Sequence

import torch
from torch import nn

_NO_FLOPS_OPS = ("aten::batch_norm",)


@dataclass
class FlopsReport:
    """FLOPs of one video's inference.

    gflops_per_video: total GFLOPs. by_component: GFLOPs of glance, policy, crop, focus, classifier,
    aux_heads (they sum to the total). per_step: cumulative GFLOPs after k classifier steps (k = 1..T in
    the frame variant, where step k adds one frame's glance + policy + focus + classifier; one entry,
    the full cost, in the video variant). unsupported: op name -> number of calls counted as zero.
    """

    gflops_per_video: float
    by_component: Dict[str, float]
    per_step: List[float]
    unsupported: Dict[str, int] = field(default_factory=dict)
    params_m: float = 0.0  # parameters (millions), whole network

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    def text(self, info: Dict[str, Any]) -> str:
        """What ``adabench flops`` prints: ``info`` (what was counted), the total and each component."""
        lines = [
            " ".join(f"{k}={v}" for k, v in info.items()),
            f"GFLOPs per video: {self.gflops_per_video:.3f}   params: {self.params_m:.2f} M",
        ]
        lines += [f"  {name:<11} {value:9.4f}" for name, value in self.by_component.items()]
        if len(self.per_step) > 1:
            lines.append("cumulative GFLOPs per step: " + ", ".join(f"{v:.4g}" for v in self.per_step))
        if self.unsupported:
            lines.append(
                "counted as zero (unsupported by fvcore): "
                + ", ".join(f"{op} x{n}" for op, n in self.unsupported.items())
            )
        return "\n".join(lines)


def gru_flop_jit(inputs: Sequence[Any], outputs: Sequence[Any]) -> int:
    """fvcore handle for ``aten::gru``: multiply-adds of the gate matmuls.

    Schema (input overload): input, hx, params, has_biases, num_layers, dropout, train, bidirectional,
    batch_first. Per sample and step: sum over layers and directions of 3*H*(I_l + H), with I_0 = the
    input size and I_l = D*H above the first layer.
    """
    from fvcore.nn.jit_handles import get_shape

    x_shape = get_shape(inputs[0])
    h_shape = get_shape(inputs[1])
    layers = int(inputs[4].toIValue())
    dirs = 2 if bool(inputs[7].toIValue()) else 1
    hidden, in_dim = h_shape[-1], x_shape[-1]
    samples_steps = 1
    for s in x_shape[:-1]:
        samples_steps *= s
    per_step = 0
    for layer in range(layers):
        i = in_dim if layer == 0 else dirs * hidden
        per_step += dirs * 3 * hidden * (i + hidden)
    return samples_steps * per_step


def gru_closed_form(
    batch: int, steps: int, in_dim: int, hidden: int, layers: int = 1, bidirectional: bool = False
) -> int:
    """Reference count for tests: B * T * sum_l D * 3H(I_l + H)."""
    d = 2 if bidirectional else 1
    total = 0
    for layer in range(layers):
        total += d * 3 * hidden * ((in_dim if layer == 0 else d * hidden) + hidden)
    return batch * steps * total


def _zero_flop_jit(inputs: Sequence[Any], outputs: Sequence[Any]) -> int:
    return 0


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence fvcore's import-time TorchScript warnings, tracer warnings and per-op log lines."""
    logger = logging.getLogger("fvcore")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


class _Inference(nn.Module):
    """What inference runs: greedy policy patches, logits (+ V2's auxiliary logits)."""

    def __init__(self, net: nn.Module, aux: bool) -> None:
        super().__init__()
        self.net, self.aux = net, aux

    def forward(self, frames: torch.Tensor, glance: Optional[torch.Tensor] = None) -> Any:
        out = self.net(frames, glance, patch_mode="policy", policy_mode="greedy", aux=self.aux)
        if self.aux:
            return out["logits"], out["glance_logits"], out["focus_logits"]
        return out["logits"]


def _inputs(preset: Any, device: torch.device) -> tuple:
    gen = torch.Generator().manual_seed(0)
    s = preset.input_size
    frames = torch.randn(1, preset.frames, 3, s, s, generator=gen).to(device)
    if preset.variant == "video" and preset.glance_frames:
        return frames, torch.randn(1, preset.glance_frames, 3, s, s, generator=gen).to(device)
    return (frames,)


def _components(by_module: Dict[str, int]) -> Dict[str, int]:
    m = lambda name: int(by_module.get("net." + name, 0))  # noqa: E731
    comp = {
        "glance": m("glance") - m("glance.head"),
        "policy": m("policy"),
        "focus": m("focus") - m("focus.head"),
        "classifier": m("classifier"),
        "aux_heads": m("glance.head") + m("focus.head"),
    }
    comp["crop"] = int(by_module.get("", 0)) - sum(comp.values())  # top-level ops: the patch crop
    return comp


def count_flops(net: nn.Module, preset: Any, *, aux: Optional[bool] = None) -> FlopsReport:
    """Count one video's inference FLOPs of ``net`` (an AdaFocusNet built from ``preset``).

    ``aux``: count the auxiliary heads (default: the FLOPs rule of ``preset.method``'s registry entry).
    The network's train/eval modes are restored afterwards.
    """
    modes = {m: m.training for m in net.modules()}
    device = next(net.parameters()).device
    if aux is None:
        from bench.methods import get_method

        aux = get_method(preset.method).flops_aux_heads
    try:
        net.eval()
        with _quiet(), torch.no_grad():
            from fvcore.nn import FlopCountAnalysis

            fca = FlopCountAnalysis(_Inference(net, aux), _inputs(preset, device))
            fca.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
            for op in _NO_FLOPS_OPS:
                fca.set_op_handle(op, _zero_flop_jit)
            fca.set_op_handle("aten::gru", gru_flop_jit)
            by_module = fca.by_module()
            total = int(fca.total())
            unsupported = Counter(fca.unsupported_ops())
    finally:
        for m, training in modes.items():
            m.train(training)
    g = 1e-9
    steps = preset.frames if preset.variant == "frame" else 1
    # frame variant: every part runs once per frame (glance, GRU policy step, crop, focus, classifier
    # MLP/GRU step and that step's head), so the cost after k steps is k/T of the whole (tested)
    per_step = [total * g * k / steps for k in range(1, steps + 1)]
    step_flops = getattr(net, "step_flops", None)
    if callable(step_flops):  # a network whose exits do not cost k/T of the whole says what they cost
        per_step = [f * g for f in step_flops(by_module)]
    return FlopsReport(
        gflops_per_video=total * g,
        by_component={k: v * g for k, v in _components(by_module).items()},
        per_step=per_step,
        unsupported=dict(sorted(unsupported.items())),
        params_m=sum(p.numel() for p in net.parameters()) / 1e6,
    )
