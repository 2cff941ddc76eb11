"""Losses every method may train with (a method's own objective stays in its package)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def framewise_ce(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy over all (video, step) pairs: logits [B, T, K], labels [B] (repeated over T), in
    fp32."""
    b, t, k = logits.shape
    return F.cross_entropy(logits.reshape(b * t, k).float(), labels.repeat_interleave(t))
