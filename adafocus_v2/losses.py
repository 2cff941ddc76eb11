"""The V2 training objective, assembled from the three switchable techniques.

Per forward pass (V2 code, §3.1 of the facts): cross-entropy of the classifier at every step (label repeated
over steps) plus, with auxiliary supervision, a cross-entropy on the glance and the focus networks' own heads,
all with equal weight: frame-wise in the ActivityNet-style variant, on the segment-averaged logits in the
Sth-Sth/Jester variant (each TSN's consensus output). With diversity augmentation the step also runs a pass
with uniformly random patch locations and the loss is the mean of both passes. Stop-gradient is applied inside
the network (``detach_glance``); it does not change the loss terms.
"""

from __future__ import annotations

from typing import Dict, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from bench.training.losses import framewise_ce


def _segment_ce(logits: Tensor, labels: Tensor) -> Tensor:
    """CE of the segment-averaged logits (TSN consensus). logits [B, T, K], labels [B]."""
    return F.cross_entropy(logits.float().mean(1), labels)


def pass_loss(
    out: Mapping[str, Tensor], labels: Tensor, *, aux_supervision: bool, segment_average: bool = False
) -> Dict[str, Tensor]:
    """Loss terms of one forward pass of ``AdaFocusNet``.

    out: the network's output dict (``logits`` [B, T, K]; ``glance_logits`` [B, Tg, K] and
    ``focus_logits`` [B, T, K] are used only with auxiliary supervision). labels [B] int64.
    ``segment_average`` (the video variant): the auxiliary heads' logits are averaged over their frames
    before the CE, as the official Sth-Sth/Jester code scores its TSNs' auxiliary outputs; otherwise
    (ActivityNet-style) every frame is scored. Returns {"classifier", ["glance", "focus"], "total"}.
    """
    parts = {"classifier": framewise_ce(out["logits"], labels)}
    if aux_supervision:
        aux_ce = _segment_ce if segment_average else framewise_ce
        parts["glance"] = aux_ce(out["glance_logits"], labels)
        parts["focus"] = aux_ce(out["focus_logits"], labels)
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
