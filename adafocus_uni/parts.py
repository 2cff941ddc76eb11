"""Uni-AdaFocus's own network parts (frame variant): the scaled patch crop, the spatial and temporal policies,
the inverse-CDF frame sampler, the Monte-Carlo temporal logits and the two-branch pooling classifier.

Everything is batched over videos (no per-sample Python loop); the only loops are over a handful of layers.
Conventions: an action is ``(row, col, scale_row, scale_col)`` in [0, 1]; scale 0 is the smallest patch side
(``MIN_SIDE`` of the frame: 96 px of 224 in the official code) and 1 the whole frame; the patch's top-left
corner is ``action[:2] * (frame - side)``, so a patch never leaves the frame (as ``bench.models.crops``)."""

from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from bench.models.classifiers import PerStepHeads

MIN_SIDE = 96 / 224  # the official crop's smallest side (96 px) as a fraction of its 224-px frame


def side_bounds(frame: int) -> Tuple[float, float]:
    """(smallest side, span to the largest) of a patch in pixels of a ``frame``-px frame: 96 and 128 at
    224."""
    low = 96 * frame / 224
    return low, frame - low


def scale_for_side(side: float, frame: int) -> float:
    """The scale action whose patch side is ``side`` px of a ``frame``-px frame (the fixed-size patch)."""
    low, span = side_bounds(frame)
    return (side - low) / span


def scaled_crop(
    frames: torch.Tensor, actions: torch.Tensor, size: int, *, patch: int, frame: int
) -> torch.Tensor:
    """Bilinear crop with a per-patch side, resampled to ``size``². frames [N,C,H,H], actions [N,4] ->
    [N,C,size,size].

    The side is ``size * s`` pixels of ``frames`` with s = (low + a * span) / ``patch`` (a: the scale action;
    low, span: ``side_bounds(frame)``): P x P at a = scale_for_side(P) on the frames themselves (size = P),
    and the same share of a feature map when ``frames`` are maps and ``size`` the map patch. The arithmetic
    follows the official code's order, so the sampling grid is the same to the last bit. Differentiable in the
    actions (``grid_sample``, ``align_corners=False``)."""
    low, span = side_bounds(frame)
    img = frames.shape[-1]
    side = size * (actions[:, 2:4] * span / patch + low / patch)  # [N, 2] (rows, cols), pixels of ``frames``
    corner = actions[:, :2] * (img - side)
    zeros = torch.zeros_like(side[:, 0])
    theta = torch.stack(
        [
            torch.stack(
                [side[:, 1] / img, zeros, -1 + (corner[:, 1] + (corner[:, 1] + side[:, 1])) / img], dim=1
            ),
            torch.stack(
                [zeros, side[:, 0] / img, -1 + (corner[:, 0] + (corner[:, 0] + side[:, 0])) / img], dim=1
            ),
        ],
        dim=1,
    )
    n, c = frames.shape[:2]
    with torch.autocast(frames.device.type, enabled=False):  # the grid in fp32 (no bf16 affine_grid on CPU)
        grid = F.affine_grid(theta.float(), [n, c, size, size], align_corners=False)
        return F.grid_sample(frames.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _conv_bn_relu(conv: nn.Module, bn: nn.Module) -> list:
    return [conv, bn, nn.ReLU()]


class FlatConv3d(nn.Module):
    """A bias-free Conv3d whose weight is stored as a matrix [out, in*kt*kh*kw]: ``module.to(memory_format=
    torch.channels_last)`` (the run's layout, 4-d only) fails on 5-d parameters and leaves 2-d ones alone."""

    def __init__(
        self, c_in: int, c_out: int, kernel: Tuple[int, int, int], padding: Tuple[int, int, int]
    ) -> None:
        super().__init__()
        self.shape, self.padding = (c_out, c_in, *kernel), padding
        fan_in = c_in * kernel[0] * kernel[1] * kernel[2]
        bound = 1.0 / fan_in**0.5  # nn.Conv3d's default init (kaiming_uniform with a = sqrt(5))
        self.weight = nn.Parameter(torch.empty(c_out, fan_in).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv3d(x, self.weight.view(self.shape), padding=self.padding)


class SpatialPolicy(nn.Module):
    """3D convolutions over the glance maps of all glance frames -> one action per frame.

    maps [B,Tg,C,h,w] -> actions [B,Tg,4] in (0, 1) (sigmoid): 1x1x1 conv to ``hidden``, two 3x3x3 convs
    (BatchNorm3d + ReLU each), then a (1, h, w) conv to 4 numbers.
    """

    def __init__(self, in_channels: int, hidden: int, map_hw: int) -> None:
        super().__init__()
        layers = _conv_bn_relu(FlatConv3d(in_channels, hidden, (1, 1, 1), (0, 0, 0)), nn.BatchNorm3d(hidden))
        for _ in range(2):
            layers += _conv_bn_relu(FlatConv3d(hidden, hidden, (3, 3, 3), (1, 1, 1)), nn.BatchNorm3d(hidden))
        layers += [FlatConv3d(hidden, 4, (1, map_hw, map_hw), (0, 0, 0)), nn.Sigmoid()]
        self.encoder = nn.Sequential(*layers)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        x = self.encoder(maps.transpose(1, 2))  # [B,4,Tg,1,1]
        return x.flatten(2).transpose(1, 2)


class TemporalPolicy(nn.Module):
    """Temporal convolutions over the glance features -> weights over the glance frames.

    feats [B,Tg,C] -> (weights [B,Tg], tempered weights [B,Tg]): softmax of the scores and of scores /
    temperature."""

    def __init__(self, in_channels: int, hidden: int, temperature: float = 1.0) -> None:
        super().__init__()
        self.temperature = temperature
        conv = lambda i, o, k: nn.Conv2d(i, o, (k, 1), padding=(k // 2, 0), bias=False)  # noqa: E731
        self.encoder = nn.Sequential(
            *_conv_bn_relu(conv(in_channels, hidden, 3), nn.BatchNorm2d(hidden)),
            *_conv_bn_relu(conv(hidden, hidden, 3), nn.BatchNorm2d(hidden)),
            conv(hidden, 1, 1),
        )

    def forward(self, feats: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        scores = self.encoder(feats.transpose(1, 2).unsqueeze(-1)).flatten(1)
        return scores.softmax(dim=1), (scores / self.temperature).softmax(dim=1)


def inverse_cdf_indices(
    weights: torch.Tensor, segments: int, count: int, offsets: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """``count`` distinct segment indices in 0..segments-1 by inverse-CDF sampling of the glance weights.

    weights [B,Tg] (each glance frame stands for segments/Tg segments; the CDF is linear in between); offsets
    [B,count] in [0, 1): one draw per stratum (training), None: the strata's centres (evaluation). Colliding
    indices are pushed forward and the last ones kept inside the video. -> [B,count] int64, increasing."""
    b, tg = weights.shape
    weights = weights.float()
    cdf = torch.cat([weights.new_zeros(b, 1), weights.cumsum(dim=1)], dim=1)
    cdf[:, -1] = 1.0  # no rounding gap at the end
    strata = torch.arange(count, device=weights.device, dtype=weights.dtype).expand(b, count)
    u = (strata + (0.5 if offsets is None else offsets.to(weights))) / count
    first = (cdf.unsqueeze(2) >= u.unsqueeze(1)).to(torch.uint8).argmax(dim=1).clamp(1, tg) - 1  # [B,count]
    y1, y2 = cdf.gather(1, first), cdf.gather(1, first + 1)
    x1, x2 = first / tg, (first + 1) / tg
    quantile = (x2 * (u - y1) - x1 * (u - y2)) / (y2 - y1)  # linear interpolation of the CDF's inverse
    raw = torch.floor(quantile * segments).long()
    # idx[i] = max(raw[i], idx[i-1] + 1) for all i at once: idx[i] - i is the running max of raw[j] - j
    steps = torch.arange(count, device=weights.device)
    idx = torch.cummax(raw - steps, dim=1).values + steps
    return torch.minimum(idx, segments - count + steps)


def gumbel_drop_masks(
    weights: torch.Tensor, draws: int, levels: int, generator: Optional[torch.Generator] = None
) -> torch.Tensor:
    """Which glance frames each Monte-Carlo draw removes: draw d at level i removes i frames sampled without
    replacement by ``weights`` (Gumbel top-i, the same law as ``torch.multinomial`` without replacement).

    weights [B,Tg] -> bool [B, draws, levels, Tg]; level 0 removes nothing; the levels are independent draws.
    """
    b, tg = weights.shape
    u = torch.rand(b, draws, levels, tg, device=weights.device, generator=generator)
    keys = weights.detach().float().clamp_min(1e-30).log()[:, None, None] - torch.log(
        -torch.log(u.clamp(1e-20, 1.0))
    )
    rank = keys.argsort(dim=-1, descending=True).argsort(dim=-1)  # position of each frame in the draw order
    level = torch.arange(levels, device=weights.device).view(1, 1, levels, 1)
    return rank < level


def mc_temporal_logits(logits: torch.Tensor, weights: torch.Tensor, drop: torch.Tensor) -> torch.Tensor:
    """Monte-Carlo temporal logits: the weight-averaged glance logits after removing some frames, averaged
    over the draws and levels of ``drop`` (``gumbel_drop_masks``). The weight sum is detached (the official
    estimator).

    logits [B,Tg,K], weights [B,Tg], drop bool [B,D,L,Tg] -> [B,K].
    """
    w = weights[:, None, None, :] * (~drop).to(weights)  # [B,D,L,Tg]
    avg = torch.einsum("bdlt,btk->bdlk", w, logits.to(w.dtype)) / w.sum(-1, keepdim=True).detach()
    return avg.mean(dim=(1, 2))


class _MLP(nn.Sequential):
    """Linear -> BatchNorm1d -> ReLU (the pooling classifier's embedding, as V2's)."""

    def __init__(self, in_dim: int, hidden: int) -> None:
        super().__init__(nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU())


class UniClassifier(nn.Module):
    """Two-branch pooling classifier (the frame variant's f_C).

    Glance branch: MLP per glance frame, running max over the glance frames, one head per glance step.
    Focus branch: MLP per focus frame, running max over the focus frames, one head per focus step on
    [focus max, glance max over all glance frames]. forward(glance [B,Tg,Dg], focus [B,Tf,Df]) -> [B,Tg+Tf,K].
    """

    def __init__(
        self,
        glance_dim: int,
        focus_dim: int,
        hidden: int,
        num_classes: int,
        glance_steps: int,
        focus_steps: int,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.glance_mlp, self.focus_mlp = _MLP(glance_dim, hidden), _MLP(focus_dim, hidden)
        self.glance_heads = PerStepHeads(glance_steps, hidden, num_classes, dropout)
        self.focus_heads = PerStepHeads(focus_steps, 2 * hidden, num_classes, dropout)

    def embed(self, mlp: nn.Module, feats: torch.Tensor) -> torch.Tensor:
        b, t = feats.shape[:2]
        with torch.autocast(feats.device.type, enabled=False):  # BatchNorm1d statistics in fp32
            return mlp(feats.flatten(0, 1).float()).view(b, t, -1)

    def forward(self, glance: torch.Tensor, focus: torch.Tensor) -> torch.Tensor:
        zg = torch.cummax(self.embed(self.glance_mlp, glance), dim=1).values
        zf = torch.cummax(self.embed(self.focus_mlp, focus), dim=1).values
        both = torch.cat([zf, zg[:, -1:].expand(-1, zf.shape[1], -1)], dim=2)
        return torch.cat([self.glance_heads(zg), self.focus_heads(both)], dim=1)


class UniPolicy(nn.Module):
    """The two policies under one name (``policy``: FLOPs component and lr-ratio prefix of both)."""

    def __init__(self, spatial: SpatialPolicy, temporal: TemporalPolicy) -> None:
        super().__init__()
        self.spatial, self.temporal = spatial, temporal
