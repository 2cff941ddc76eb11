"""Temporal shift (TSM): move a fraction of the channels one frame forward/backward in time.

Applied at the start of a residual branch ("blockres"), so the identity path keeps every frame's own
features. Implemented as a forward pre-hook so the wrapped module keeps its parameter names and
torchvision/ImageNet state dicts load unchanged.
"""

from __future__ import annotations

from typing import Any, Tuple

import torch
from torch import nn


def temporal_shift(x: torch.Tensor, num_segments: int, shift_div: int = 8) -> torch.Tensor:
    """Shift channels along time.

    x: [N*T, C, H, W] with T = ``num_segments`` consecutive frames per video.
    Channels [0, C/div) take the *next* frame's values, [C/div, 2C/div) the *previous* frame's,
    the rest are unchanged; frames shifted in from outside the clip are zero.
    """
    nt, c, h, w = x.shape
    if nt % num_segments:
        raise ValueError(f"temporal shift: batch {nt} is not a multiple of num_segments={num_segments}")
    x = x.view(nt // num_segments, num_segments, c, h, w)
    fold = c // shift_div
    zeros = x.new_zeros(x.shape[0], 1, fold, h, w)
    left = torch.cat([x[:, 1:, :fold], zeros], dim=1)  # t takes t+1
    right = torch.cat([zeros, x[:, :-1, fold : 2 * fold]], dim=1)  # t takes t-1
    out = torch.cat([left, right, x[:, :, 2 * fold :]], dim=2)
    return out.view(nt, c, h, w)


class ShiftHook:
    """Forward pre-hook that temporally shifts the first input of the module it is attached to."""

    def __init__(self, num_segments: int, shift_div: int = 8) -> None:
        self.num_segments = num_segments
        self.shift_div = shift_div

    def __call__(self, module: nn.Module, args: Tuple[Any, ...]) -> Tuple[Any, ...]:
        return (temporal_shift(args[0], self.num_segments, self.shift_div),) + tuple(args[1:])


def add_shift(module: nn.Module, num_segments: int, shift_div: int = 8) -> None:
    """Shift the input of ``module`` along time on every call (parameter names are unchanged)."""
    module.register_forward_pre_hook(ShiftHook(num_segments, shift_div))
