"""Uni-AdaFocus inference FLOPs with fvcore, by the project's conventions (``bench.models.flops``): one
multiply-add
is one FLOP, BatchNorm excluded, eval mode, one video, the policy's patches; the auxiliary heads (f_G's and
f_L's own heads, the spatial-logits head) and the Monte-Carlo temporal logits are training-only and not run.

The cost is not linear in the exits (official ``ops/early_exit_uni_adafocus.py``): f_G, its MLP and heads run
on all Tg glance frames before the first exit; exit k (k = 0..Tf focus frames) adds k/Tf of f_L, the crop and
the focus branch of the classifier, and both policies once k > 0. Every number here is measured by fvcore on
the network the preset builds; the split per frame is the measured component divided by its frame count."""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from typing import Any, Dict, Tuple

import torch
from torch import nn

from adafocus_uni.build import build_uni
from adafocus_uni.costs import components, exit_costs
from adafocus_uni.params import segments

_ZERO = ("aten::batch_norm",)  # BatchNorm excluded (the papers' convention)


def _zero(inputs: Any, outputs: Any) -> int:
    return 0


class _Inference(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.net(frames, patch_mode="policy", aux=False)["logits"]


def measure(net: nn.Module, preset: Any) -> Tuple[Dict[str, int], Dict[str, int]]:
    """fvcore counts of one video's inference: (by module path, unsupported ops). Modes are restored."""
    from fvcore.nn import FlopCountAnalysis

    modes = {m: m.training for m in net.modules()}
    device = next(net.parameters()).device
    s = preset.input_size
    frames = torch.randn(1, preset.frames, 3, s, s, generator=torch.Generator().manual_seed(0)).to(device)
    logger = logging.getLogger("fvcore")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        net.eval()
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            fca = FlopCountAnalysis(_Inference(net), (frames,))
            fca.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
            for op in _ZERO:
                fca.set_op_handle(op, _zero)
            by_module = {k: int(v) for k, v in fca.by_module().items()}
            unsupported = dict(Counter(fca.unsupported_ops()))
    finally:
        logger.setLevel(level)
        for m, training in modes.items():
            m.train(training)
    return by_module, unsupported


def report(preset: Any) -> Dict[str, Any]:
    """The FLOPs of ``preset``'s network (random weights: FLOPs do not depend on them): total, components, the
    cost of every exit, unsupported ops (counted as zero)."""
    import dataclasses

    net = build_uni(dataclasses.replace(preset, glance_pretrained=None, focus_pretrained=None))
    by_module, unsupported = measure(net, preset)
    comp = components(by_module)
    exits = exit_costs(comp, segments(preset)[2])
    return {
        "gflops_per_video": by_module.get("", 0) * 1e-9,
        "by_component": {k: v * 1e-9 for k, v in comp.items()},
        "exits": exits,
        "unsupported": unsupported,
    }
