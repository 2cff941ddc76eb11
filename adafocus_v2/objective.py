"""One V2 training step's forward: the network and its loss, as one module.

Wrapping both passes in a single ``forward`` lets DistributedDataParallel see the whole step
(it wraps this module, not the bare network), and makes the three techniques visible in one
place:

- stop-gradient: ``detach_glance`` on the policy pass (the glance maps enter pi detached);
- auxiliary supervision: ``aux`` heads on and their CE terms in the loss (frame-wise; on the
  segment average in the video variant, as the official Sth-Sth/Jester code);
- diversity augmentation: a second pass with uniformly random patch locations (one per frame
  in the frame variant, one per video in the video variant); the loss is the mean of the
  two passes. The random pass reuses the policy pass's glance features (the glance sees the
  same frames either way), so diversity adds exactly one focus-network pass per step.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import torch
from torch import nn

from adafocus_v2.losses import combine_passes, pass_loss
from bench.models import AdaFocusNet, random_locations


class V2Objective(nn.Module):
    """forward(frames [B,T,3,H,W], glance [B,Tg,3,H,W] | None, labels [B]) -> loss parts.

    The parts are 0-dim tensors: ``total`` (what to back-propagate), ``classifier`` and, with
    auxiliary supervision, ``glance`` and ``focus``; with diversity also ``random_total``.
    """

    def __init__(
        self,
        net: AdaFocusNet,
        *,
        aux_supervision: bool = True,
        diversity: bool = True,
        stop_gradient: bool = True,
    ) -> None:
        super().__init__()
        self.net = net
        self.aux_supervision, self.diversity, self.stop_gradient = aux_supervision, diversity, stop_gradient

    def forward(
        self, frames: torch.Tensor, glance: Optional[torch.Tensor], labels: torch.Tensor
    ) -> Dict[str, torch.Tensor]:
        out = self.net(
            frames, glance, patch_mode="policy", detach_glance=self.stop_gradient, aux=self.aux_supervision
        )
        video = self.net.variant == "video"
        policy = pass_loss(out, labels, aux_supervision=self.aux_supervision, segment_average=video)
        random = None
        if self.diversity:
            random = pass_loss(
                self.random_pass(frames, out),
                labels,
                aux_supervision=self.aux_supervision,
                segment_average=video,
            )
        return combine_passes(policy, random)

    def random_pass(self, frames: torch.Tensor, policy_out: Dict[str, torch.Tensor]) -> Dict[str, Any]:
        """Focus + classifier on uniformly random patches, glance features from the policy pass (a dict like
        the network's output: ``focus_logits`` None without auxiliary supervision)."""
        b, t = frames.shape[:2]
        shape = self.net.decision_shape(frames, None)
        locations = random_locations(shape, frames.device).expand(b, t, 2)
        focus_feats = self.net.focus_forward(frames, locations)
        return {
            "logits": self.net.classify(policy_out["glance_feats"], focus_feats),
            "glance_logits": policy_out["glance_logits"],
            "focus_logits": self.net.focus.head(focus_feats) if self.aux_supervision else None,
            "locations": locations,
        }
