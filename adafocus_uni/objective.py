"""The Uni-AdaFocus training loss (the official frame-variant trainer's, term by term).

Per step (``UniNet.training_outputs``), with every CE frame-wise where the logits are per frame:
- ``classifier``: CE of every classifier head (Tg glance + Tf focus steps), mean of the policy-patch pass and
  the random-patch (diversity) pass;
- ``glance``: CE of f_G's own head on the glance frames;
- ``focus``: CE of f_L's own head on the focus frames, mean of the two passes;
- ``temporal``: CE of the Monte-Carlo temporal logits (trains the temporal policy and the glance);
- ``spatial``: CE of the spatial logits from the glance maps' patches (trains the spatial policy);
- ``norm``: mean squared distance of the scale actions from 1, times ``norm_ratio``;
- ``kl``: KL(weights || uniform) times ``kl_ratio`` (0 in the official scripts).
The official trainer sums each CE over its two passes and halves the sum; the glance, temporal and spatial
terms are the same tensor in both passes, so each counts once. ``total`` is the sum of the terms.
"""

from __future__ import annotations

from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn

from adafocus_uni.model import Draws, UniNet


def framewise_ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean CE over all (video, step) pairs. logits [B,T,K], labels [B]."""
    b, t, k = logits.shape
    return F.cross_entropy(logits.reshape(b * t, k).float(), labels.repeat_interleave(t))


class UniObjective(nn.Module):
    """forward(frames [B,S,3,H,W], labels [B], draws=None) -> loss parts (0-dim tensors, ``total`` among
    them).

    One module for the whole step, so DistributedDataParallel can wrap it."""

    def __init__(
        self, net: UniNet, *, norm_ratio: float = 1.0, kl_ratio: float = 0.0, diversity: bool = True
    ) -> None:
        super().__init__()
        self.net, self.norm_ratio, self.kl_ratio, self.diversity = net, norm_ratio, kl_ratio, diversity

    def forward(
        self, frames: torch.Tensor, labels: torch.Tensor, draws: Optional[Draws] = None
    ) -> Dict[str, torch.Tensor]:
        out = self.net.training_outputs(frames, draws, diversity=self.diversity)
        return loss_parts(
            out,
            labels,
            norm_ratio=self.norm_ratio if self.net.learned_scale else 0.0,
            kl_ratio=self.kl_ratio,
            focus_segments=self.net.focus_segments,
        )


def loss_parts(
    out: Dict[str, torch.Tensor],
    labels: torch.Tensor,
    *,
    norm_ratio: float,
    kl_ratio: float,
    focus_segments: int,
) -> Dict[str, torch.Tensor]:
    def both(key: str) -> torch.Tensor:
        one = framewise_ce(out[key], labels)
        return (one + framewise_ce(out["random_" + key], labels)) / 2 if "random_" + key in out else one

    parts = {
        "classifier": both("all_logits"),
        "glance": framewise_ce(out["glance_logits"], labels),
        "focus": both("focus_logits"),
        "spatial": F.cross_entropy(out["spatial_logits"].float(), labels),
    }
    if out.get("temporal_logits") is not None:
        parts["temporal"] = F.cross_entropy(out["temporal_logits"].float(), labels)
    if norm_ratio:
        parts["norm"] = norm_ratio * ((out["actions"][..., 2:4].float() - 1) ** 2).mean()
    if kl_ratio:
        w = out["weights"].float()
        uniform = torch.full_like(w, 1.0 / focus_segments)  # as the official trainer writes it
        parts["kl"] = kl_ratio * F.kl_div(uniform.log(), w, reduction="batchmean")
    parts["total"] = torch.stack(list(parts.values())).sum()
    if "random_all_logits" in out:
        parts["random_classifier"] = framewise_ce(out["random_all_logits"], labels).detach()
    return parts
