"""The backbone base class and the tiny CPU backbone (kept apart from the registry in ``backbones.py`` so that
the weight resolver can build the tiny net for its texture pre-training without importing the registry)."""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from bench.models.temporal_shift import add_shift


class Backbone(nn.Module):
    """Base class: subclasses implement ``feature_map(x) -> fmap``; pooling is a global average."""

    out_channels: int
    halvings: int = 5  # stride-2 stages (each maps n -> ceil(n / 2)); stride 32 for the torchvision nets

    def map_size(self, size: int) -> int:
        """Side of the feature map for a ``size``x``size`` input."""
        for _ in range(self.halvings):
            size = -(-size // 2)
        return size

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """x [N,3,H,W] -> (fmap [N,C,h,w], pooled [N,C])."""
        fmap = self.feature_map(x)
        return fmap, F.adaptive_avg_pool2d(fmap, 1).flatten(1)


class TinyBackbone(Backbone):
    """A small conv-BN-ReLU stack for CPU presets.

    Stages of 3x3 convolutions (default channels 16/32/64/128, strides 2/2/2/1, so a 32x32 input gives a 4x4
    map and a 24x24 patch a 3x3 map; ~1.7 and ~1.0 MFLOPs). Narrow early stages keep the CPU backward pass
    cheap (convolution backward dominates a tiny training step). With ``num_segments`` set, the input of every
    stage after the first is temporally shifted (TSM's in-place variant: the tiny net has no residual branch
    to put the shift in).
    """

    def __init__(
        self,
        channels: Sequence[int] = (16, 32, 64, 128),
        strides: Sequence[int] = (2, 2, 2, 1),
        num_segments: Optional[int] = None,
        shift_div: int = 8,
        width: float = 1.0,
    ) -> None:
        super().__init__()
        channels = [max(1, int(round(c * width))) for c in channels]  # width: the small glance (bench.scale)
        layers = []
        c_in = 3
        for c, s in zip(channels, strides):
            layers.append(
                nn.Sequential(
                    nn.Conv2d(c_in, c, 3, s, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)
                )
            )
            c_in = c
        self.stages = nn.Sequential(*layers)
        self.out_channels = c_in
        self.halvings = sum(1 for s in strides if s == 2)
        if num_segments:
            for stage in self.stages[1:]:
                add_shift(stage, num_segments, shift_div)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(x)
