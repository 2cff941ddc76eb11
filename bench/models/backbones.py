"""Backbones behind ``BACKBONES = Registry("backbone")``.

Every backbone maps frames ``x [N, 3, H, W]`` to ``(fmap [N, C, h, w], pooled [N, C])`` and has an
``out_channels`` attribute (C). Parameter names follow torchvision (minus the classifier), so
torchvision / ImageNet state dicts load directly. TSM variants expect ``N = videos * num_segments``
with each video's frames consecutive.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable, Dict, List, Optional, cast

import torch
from torch import nn
from torchvision import models as tvm

from bench.errors import UsageError
from bench.models.base import Backbone, TinyBackbone
from bench.models.layouts import HEAD_PREFIXES, to_torchvision
from bench.models.temporal_shift import add_shift
from bench.models.weights import resolve_pretrained, safe_load
from bench.registry import Registry

BACKBONES: Registry[Callable[..., Backbone]] = Registry("backbone")


class MobileNetV2Backbone(Backbone):
    """torchvision MobileNetV2 ``features`` (1280 channels, stride 32)."""

    def __init__(self, net: tvm.MobileNetV2) -> None:
        super().__init__()
        self.features = net.features  # torchvision's parameter names ("features.0.0.weight", ...)
        self.out_channels = 1280

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class ResNetBackbone(Backbone):
    """torchvision ResNet body up to layer4 (2048 channels for ResNet-50, stride 32)."""

    # set from the torchvision net in __init__ (declared for the type checker)
    conv1: nn.Module
    bn1: nn.Module
    relu: nn.Module
    maxpool: nn.Module
    layer1: nn.Sequential
    layer2: nn.Sequential
    layer3: nn.Sequential
    layer4: nn.Sequential

    def __init__(self, net: tvm.ResNet) -> None:
        super().__init__()
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
            setattr(self, name, getattr(net, name))
        self.out_channels = net.fc.in_features

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


# ----------------------------------------------------------------------------- weights
def _read_state(path: str, what: str) -> Dict[str, Any]:
    state = safe_load(path, f"{what}: weights file")
    if isinstance(state, dict):
        for key in ("state_dict", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
    if not isinstance(state, dict):
        raise UsageError(f"{what}: '{path}' does not hold a state dict")
    return state


def load_state(module: nn.Module, path: str, what: str) -> List[str]:
    """Load a local state dict into ``module`` strictly; a one-line UsageError on any mismatch.

    Accepts a bare state dict or a checkpoint holding one under ``state_dict``/``model``; strips
    ``module.`` (DataParallel), ``backbone.`` and ``base_model.`` (TSN) prefixes, reads the layouts of
    ``bench.models.layouts`` (tonylins MobileNetV2, TSM wrappers) and drops classifier keys.
    Returns the dropped classifier keys.
    """
    if not os.path.isfile(path):
        raise UsageError(f"{what}: pretrained weights file '{path}' does not exist")
    stripped: Dict[str, Any] = {}
    for k, v in _read_state(path, what).items():
        for prefix in ("module.", "backbone.", "base_model."):
            if k.startswith(prefix):
                k = k[len(prefix) :]
        stripped[k] = v
    try:
        converted = to_torchvision(stripped)
    except KeyError as e:
        raise UsageError(f"{what}: '{path}': {e.args[0]}") from None
    clean = {k: v for k, v in converted.items() if not k.startswith(HEAD_PREFIXES)}
    own = module.state_dict()
    missing = sorted(set(own) - set(clean))
    unexpected = sorted(set(clean) - set(own))
    bad_shape = sorted(k for k in set(own) & set(clean) if own[k].shape != clean[k].shape)
    if missing or unexpected or bad_shape:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", bad_shape)):
            if keys:
                parts.append(f"{len(keys)} {label} (e.g. {', '.join(keys[:3])})")
        raise UsageError(f"{what}: '{path}' does not match the architecture: {'; '.join(parts)}")
    module.load_state_dict(clean, strict=True)
    return sorted(set(converted) - set(clean))


def _torchvision_net(arch: str, width: float = 1.0) -> nn.Module:
    """A randomly initialised torchvision net; weights are always loaded from a local file after."""
    if arch == "mbv2":
        return tvm.mobilenet_v2(weights=None, width_mult=width)
    if width != 1.0:
        raise UsageError(f"backbone {arch} has one width; got width {width}")
    return tvm.resnet50(weights=None)


def _finish(backbone: Backbone, name: str, pretrained: Optional[str]) -> Backbone:
    """``pretrained``: a local file (``create_backbone`` resolved the spec) or None."""
    if pretrained:
        load_state(backbone, pretrained, f"backbone {name}")
    return backbone


def _mbv2(
    pretrained: Optional[str], num_segments: Optional[int], shift_div: int, width: float = 1.0
) -> Backbone:
    net = MobileNetV2Backbone(_torchvision_net("mbv2", width))
    if num_segments:
        # shift at the start of every inverted-residual block that has an identity path
        for block in net.features:
            if getattr(block, "use_res_connect", False):
                add_shift(block.conv[0], num_segments, shift_div)
    return net


def _res50(
    pretrained: Optional[str], num_segments: Optional[int], shift_div: int, width: float = 1.0
) -> Backbone:
    net = ResNetBackbone(_torchvision_net("res50", width))
    if num_segments:
        for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
            for block in layer:  # shift the residual branch's input (TSM "blockres")
                add_shift(cast(nn.Module, block.conv1), num_segments, shift_div)
    return net


def _need_segments(name: str, num_segments: Optional[int]) -> int:
    if not num_segments or num_segments < 1:
        raise UsageError(f"backbone {name} needs num_segments (frames per video)")
    return num_segments


@BACKBONES.register("mbv2")
def mbv2(
    pretrained: Optional[str] = None,
    num_segments: Optional[int] = None,
    shift_div: int = 8,
    width: float = 1.0,
) -> Backbone:
    return _finish(_mbv2(pretrained, None, shift_div, width), "mbv2", pretrained)


@BACKBONES.register("res50")
def res50(
    pretrained: Optional[str] = None,
    num_segments: Optional[int] = None,
    shift_div: int = 8,
    width: float = 1.0,
) -> Backbone:
    return _finish(_res50(pretrained, None, shift_div, width), "res50", pretrained)


@BACKBONES.register("tsm_mbv2")
def tsm_mbv2(
    pretrained: Optional[str] = None,
    num_segments: Optional[int] = None,
    shift_div: int = 8,
    width: float = 1.0,
) -> Backbone:
    seg = _need_segments("tsm_mbv2", num_segments)
    return _finish(_mbv2(pretrained, seg, shift_div, width), "tsm_mbv2", pretrained)


@BACKBONES.register("tsm_res50")
def tsm_res50(
    pretrained: Optional[str] = None,
    num_segments: Optional[int] = None,
    shift_div: int = 8,
    width: float = 1.0,
) -> Backbone:
    seg = _need_segments("tsm_res50", num_segments)
    return _finish(_res50(pretrained, seg, shift_div, width), "tsm_res50", pretrained)


@BACKBONES.register("tiny")
def tiny(
    pretrained: Optional[str] = None,
    num_segments: Optional[int] = None,
    shift_div: int = 8,
    width: float = 1.0,
) -> Backbone:
    return _finish(TinyBackbone(width=width), "tiny", pretrained)


@BACKBONES.register("tiny_tsm")
def tiny_tsm(
    pretrained: Optional[str] = None,
    num_segments: Optional[int] = None,
    shift_div: int = 8,
    width: float = 1.0,
) -> Backbone:
    seg = _need_segments("tiny_tsm", num_segments)
    return _finish(TinyBackbone(num_segments=seg, shift_div=shift_div, width=width), "tiny_tsm", pretrained)


def create_backbone(
    name: str,
    *,
    pretrained: Optional[str] = None,
    num_segments: Optional[int] = None,
    shift_div: int = 8,
    option: Optional[str] = None,
    width: float = 1.0,
) -> Backbone:
    """Build a registered backbone. ``pretrained``: a spec of ``bench.models.weights.resolve_pretrained``
    (None/"none", "imagenet", "textures" or a local path); ``option`` names it in error messages."""
    BACKBONES.get(name)  # an unknown name is reported before any weights are fetched
    file = resolve_pretrained(pretrained, name, option or "pretrained", width)
    extra = {} if width == 1.0 else {"width": width}  # a backbone with one width needs no width argument
    return BACKBONES.create(name, pretrained=file, num_segments=num_segments, shift_div=shift_div, **extra)


@functools.lru_cache(maxsize=None)
def min_input_size(name: str) -> int:
    """The smallest input side backbone ``name`` accepts: its stride (2 ** stride-2 stages; smaller inputs
    collapse to a 1x1 map before its last downsampling, and a 1-pixel bilinear crop has no bf16 backward)."""
    segments = 2 if "tsm" in name else None
    return 2 ** BACKBONES.create(name, pretrained=None, num_segments=segments).halvings


def check_patch_size(preset: Any) -> None:
    """A one-line ``UsageError`` when the preset's patch is smaller than its focus backbone accepts."""
    least = min_input_size(preset.focus_backbone)
    if preset.patch_size < least:
        raise UsageError(
            f"--patch-size {preset.patch_size}: the focus backbone {preset.focus_backbone} accepts "
            f"patches of at least {least} pixels (its stride); expected {least}..{preset.input_size}"
        )
