"""The scale model: a small preset is *derived* from the paper preset of its variant by one rule.

``derive_fields(paper, rule)`` turns the shared fields of a paper preset (frame variant: ActivityNet;
video variant: Something-Something) into the small preset's; each method scales its own hyper-parameters
with ``rule`` in its params module. What the rule keeps and what it changes:

Kept (dimensionless; ``bench.regime`` computes them and the tests hold them within 2 %):
- P/S for every patch size, and the glance input side / S (the paper glances at the full frame);
- glance FLOPs / focus FLOPs per video (the glance net's width is *solved* for it, see ``glance_width``);
- glance frames / focus frames (video variant);
- V1's action-grid step / P and its Gaussian action std / P (normalised coordinates: kept as they are);
- every stage's epochs ÷ every other stage's, across methods (all epochs scale by one factor);
- every ratio between SGD learning rates, between modules and between methods (one multiplier for all, and
  the linear batch-size rule with one batch factor for all);
- what each stage trains and freezes, dropout, head initialisation, momentum, weight decay, clipping;
- the discount over a whole video: gamma ** T is kept when frames change (each method applies it).

Changed, each by the factor named here:
- frame side (and so every patch size, resize and glance size) by ``side``;
- frames per clip by ``frames``;
- networks: the tiny CNN (16/32/64/128 channels) for f_L, the same CNN ``glance_width`` times as wide for f_G;
  hidden widths of the policy and the classifier by ``head_width``;
- classes and videos: the benchmark's own;
- absolute epochs of every stage of every method by ``epochs``;
- batch sizes by ``batch``, every SGD learning rate by ``lr * batch`` (one global multiplier, then the linear
  batch-size rule). Adam's learning rate (V1's policy) does not follow SGD's multiplier; the policies'
  learning rates move only through ``adabench tune``;
- ImageNet weights: f_G and f_L start from the texture stand-in (``bench.models.pretrain``), each at its
width.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Dict, Mapping

import torch
from torch import nn

# the paper preset each variant's small presets derive from (its dataset names the published numbers)
REFERENCE_DATASET = {"frame": "actnet", "video": "sthv1"}


@dataclass(frozen=True)
class ScaleRule:
    side: float = 0.25  # frame side 224 -> 56 (patches 96/128/160 -> 24/32/40; the 7x7 glance map stays)
    frames: float = 0.5  # 16 -> 8 frames (Sth-Sth 8 + 12 -> 4 + 6)
    head_width: float = 0.125  # policy GRU 2048 -> 256, classifier MLP 4096 -> 512
    epochs: float = 0.2  # ActivityNet: V1 15/50/50/10 -> 3/10/10/2, V2 50 -> 10
    batch: float = 0.5  # V1 64 -> 32, V2 32 -> 16
    # One global SGD lr multiplier: the tiny networks train mostly from scratch in a few hundred steps where
    # the paper fine-tunes ImageNet networks for thousands; x10 is the factor the tiny V2 preset used before
    # this rule.
    lr: float = 10.0

    def epochs_of(self, n: int) -> int:
        return _scaled(n, self.epochs)

    def batch_of(self, n: int) -> int:
        return _scaled(n, self.batch)

    def sgd_lr(self, lr: float) -> float:
        return lr * self.lr * self.batch

    def discount(self, gamma: float) -> float:
        """gamma per step with fewer steps per video: gamma ** T over a video is kept."""
        return gamma ** (1.0 / self.frames)


TINY = ScaleRule()
# the papers' three patch sizes of each variant (V2 Fig. 5 for ActivityNet; V1 Table 3 for Sth-Sth)
DEMO_PATCHES = {"frame": (96, 128, 160), "video": (144, 160, 176)}


def demo_patch_sizes(variant: str, rule: ScaleRule = TINY) -> tuple:
    """The papers' three patch sizes of ``variant``, scaled to the small frame."""
    return tuple(_scaled(p, rule.side) for p in DEMO_PATCHES[variant])


def _scaled(n: int, factor: float) -> int:
    """``n`` times ``factor``, a whole number of at least 1."""
    return max(1, int(round(n * factor)))


def derive_fields(paper: Mapping[str, Any], rule: ScaleRule = TINY) -> Dict[str, Any]:
    """The small preset's shared fields from the paper preset's (after the method's ``arch`` hook)."""
    d = dict(paper)
    video = d["variant"] == "video"
    d.update(
        frames=_scaled(d["frames"], rule.frames),
        glance_frames=None if d["glance_frames"] is None else _scaled(d["glance_frames"], rule.frames),
        input_size=_scaled(d["input_size"], rule.side),
        resize=_scaled(d["resize"], rule.side),
        glance_size=None if d["glance_size"] is None else _scaled(d["glance_size"], rule.side),
        patch_size=_scaled(d["patch_size"], rule.side),
        glance_arch="tiny",
        glance_backbone="tiny_tsm" if video else "tiny",
        focus_backbone="tiny_tsm" if video else "tiny",
        glance_pretrained="textures",
        focus_pretrained="textures",
        policy_hidden=tuple(_scaled(h, rule.head_width) for h in d["policy_hidden"]),
        policy_conv_channels=_scaled(d["policy_conv_channels"], rule.head_width),
        classifier_hidden=_scaled(d["classifier_hidden"], rule.head_width) if d["classifier_hidden"] else 0,
    )
    d["glance_width"] = glance_width(paper, d)
    return d


# ----------------------------------------------------------------------------------------- FLOPs ratio
WIDTHS = tuple(k / 16 for k in range(1, 33))  # the glance widths tried: 1/16 .. 2 (whole channel counts)


def glance_width(paper: Mapping[str, Any], small: Mapping[str, Any]) -> float:
    """The width of the small f_G whose FLOPs / f_L's FLOPs (per video) is nearest the paper's."""
    target = flops_ratio(paper)
    return min(WIDTHS, key=lambda w: abs(math.log(flops_ratio({**small, "glance_width": w}) / target)))


def flops_ratio(p: Mapping[str, Any]) -> float:
    """Convolution MACs of f_G over the glance frames ÷ those of f_L over the focus frames, per video."""
    tg = p.get("glance_frames") or p["frames"]
    glance = conv_macs(
        p["glance_backbone"], p.get("glance_size") or p["input_size"], p.get("glance_width", 1.0)
    )
    focus = conv_macs(p["focus_backbone"], p["patch_size"], p.get("focus_width", 1.0))
    return tg * glance / (p["frames"] * focus)


@functools.lru_cache(maxsize=256)
def conv_macs(backbone: str, side: int, width: float = 1.0) -> int:
    """Multiply-accumulates of every convolution of ``backbone`` on one ``side``² frame (fvcore's convention),
    counted from the output shapes of one forward pass (the weights' values do not matter)."""
    from bench.models.backbones import BACKBONES

    total = 0

    def count(m: nn.Conv2d, inputs: Any, out: torch.Tensor) -> None:  # hooked on convolutions only
        nonlocal total
        k = m.kernel_size[0] * m.kernel_size[1] * m.in_channels // m.groups
        total += out.numel() * k

    with torch.device("meta"):  # built without initialising weights, then given uninitialised memory
        net = BACKBONES.create(
            backbone, pretrained=None, num_segments=1, **({"width": width} if width != 1 else {})
        )
    net = net.to_empty(device="cpu").eval()
    for t in net.state_dict().values():  # zeros: uninitialised memory may hold NaNs or denormals (slow)
        t.zero_()
    hooks = [m.register_forward_hook(count) for m in net.modules() if isinstance(m, nn.Conv2d)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a few ms of work: not worth waking (or contending for) other threads
    try:
        with torch.no_grad():  # only the output shapes are read
            net.feature_map(torch.zeros(1, 3, side, side))
    finally:
        torch.set_num_threads(threads)
    for h in hooks:
        h.remove()
    return total
