"""Losses of the supervised V1 stages (0, 1 and 3) on one batch, batched over samples.

A batch is the data layer's dict: ``frames`` [B,T,3,S,S] (focus frames), optional ``glance``
[B,Tg,3,S,S] (video variant; else the glance sees ``frames``), ``label`` [B].
Frozen parts run under ``torch.no_grad`` so no graph is kept for them.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from bench.models import AdaFocusNet, random_pixel_locations
from bench.training.losses import framewise_ce


def glance_input(batch: Dict[str, Tensor]) -> Tensor:
    """The glance frames of a batch: ``glance`` when present, else ``frames``."""
    return batch["glance"] if "glance" in batch else batch["frames"]


def stage0_loss(net: AdaFocusNet, batch: Dict[str, Tensor]) -> Tuple[Tensor, Dict[str, Tensor]]:
    """Pre-train f_G and f_L on whole frames, each with its own head.

    Each loss is the cross-entropy of the average of the per-frame logits (the original's recipe).
    """
    labels = batch["label"]
    _, g_feats = net.glance_forward(glance_input(batch))  # [B,Tg,Dg]
    frames = batch["frames"]
    b, t = frames.shape[:2]
    _, f_pooled = net.focus(frames.flatten(0, 1))  # whole frames
    g_logits = net.glance.head(g_feats).mean(1)
    f_logits = net.focus.head(f_pooled.view(b, t, -1)).mean(1)
    g_loss = F.cross_entropy(g_logits.float(), labels)
    f_loss = F.cross_entropy(f_logits.float(), labels)
    return g_loss + f_loss, {"glance_loss": g_loss.detach(), "focus_loss": f_loss.detach()}


def _frozen_glance(net: AdaFocusNet, batch: Dict[str, Tensor]) -> Tuple[Tensor, Tensor]:
    with torch.no_grad():
        return net.glance_forward(glance_input(batch))


def stage1_loss(
    net: AdaFocusNet, batch: Dict[str, Tensor], generator: Optional[torch.Generator] = None
) -> Tuple[Tensor, Dict[str, Tensor]]:
    """f_L + f_C on uniformly random patches (one per frame, or one per video in the video variant)."""
    frames = batch["frames"]
    _, g_feats = _frozen_glance(net, batch)
    b, t_dec = net.decision_shape(frames, glance_input(batch))
    loc = random_pixel_locations((b, t_dec), frames.shape[-1], net.patch_size, frames.device, generator)
    f_feats = net.focus_forward(frames, loc)
    loss = framewise_ce(net.classify(g_feats, f_feats), batch["label"])
    return loss, {}


def stage3_loss(
    net: AdaFocusNet, batch: Dict[str, Tensor], tune_focus: bool
) -> Tuple[Tensor, Dict[str, Tensor]]:
    """Fine-tune with the learned policy fixed (greedy locations, as at test time).

    ``tune_focus``: f_L trains too (the paper); else only f_C (the released code: f_L features
    under ``no_grad``).
    """
    frames = batch["frames"]
    maps, g_feats = _frozen_glance(net, batch)
    with torch.no_grad():
        loc = net.policy_forward(maps).locations("greedy")
    if tune_focus:
        f_feats = net.focus_forward(frames, loc)
    else:
        with torch.no_grad():
            f_feats = net.focus_forward(frames, loc)
    loss = framewise_ce(net.classify(g_feats, f_feats), batch["label"])
    return loss, {}
