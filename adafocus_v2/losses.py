"""The V2 training objective, assembled from the three switchable techniques.

Per forward pass (V2 code, §3.1 of the facts): cross-entropy of the classifier at
every step (label repeated over steps) plus, with auxiliary supervision, a
frame-wise cross-entropy on the glance and the focus networks' own heads, all with
equal weight. With diversity augmentation the step also runs a pass with uniformly
random patch locations and the loss is the mean of both passes. Stop-gradient is
applied inside the network (``detach_glance``); it does not change the loss terms.
"""
from __future__ import annotations

from typing import Dict, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor


def _framewise_ce(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean CE over all (video, step) pairs. logits [B, T, K], labels [B] (repeated over T)."""
    b, t, k = logits.shape
    return F.cross_entropy(logits.reshape(b * t, k).float(), labels.repeat_interleave(t))


def pass_loss(out: Mapping[str, Tensor], labels: Tensor, *, aux_supervision: bool) -> Dict[str, Tensor]:
    """Loss terms of one forward pass of ``AdaFocusNet``.

    out: the network's output dict (``logits`` [B, T, K]; ``glance_logits`` [B, Tg, K] and
    ``focus_logits`` [B, T, K] are used only with auxiliary supervision). labels [B] int64.
    Returns {"classifier", ["glance", "focus"], "total"} as 0-dim tensors.
    """
    parts = {"classifier": _framewise_ce(out["logits"], labels)}
    if aux_supervision:
        parts["glance"] = _framewise_ce(out["glance_logits"], labels)
        parts["focus"] = _framewise_ce(out["focus_logits"], labels)
    parts["total"] = torch.stack(list(parts.values())).sum()
    return parts


def combine_passes(policy: Dict[str, Tensor], random: Dict[str, Tensor] | None) -> Dict[str, Tensor]:
    """Diversity augmentation: the mean of the policy-patch and random-patch passes (each term too).

    Without a random pass the policy pass is returned unchanged. The random pass's total is also
    reported as ``random_total`` so the log shows how much worse random patches do.
    """
    if random is None:
        return dict(policy)
    out = {k: (policy[k] + random[k]) / 2 for k in policy}
    out["random_total"] = random["total"].detach()
    return out
