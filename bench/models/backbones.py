"""Backbones behind ``BACKBONES = Registry("backbone")``.

Every backbone maps frames ``x [N, 3, H, W]`` to ``(fmap [N, C, h, w], pooled [N, C])`` and has an
``out_channels`` attribute (C). Parameter names follow torchvision (minus the classifier), so
torchvision / ImageNet state dicts load directly. TSM variants expect ``N = videos * num_segments``
with each video's frames consecutive.
"""
from __future__ import annotations

import os
from typing import Any, Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import models as tvm

from bench.errors import UsageError
from bench.models.temporal_shift import add_shift
from bench.registry import Registry

BACKBONES = Registry("backbone")

# Keys of the torchvision classifiers, dropped when loading a full-model state dict.
_HEAD_PREFIXES = ("fc.", "classifier.", "head.", "new_fc.")


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

    def __init__(self, net: tvm.ResNet) -> None:
        super().__init__()
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
            setattr(self, name, getattr(net, name))
        self.out_channels = net.fc.in_features

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class TinyBackbone(Backbone):
    """A small conv-BN-ReLU stack for CPU presets.

    Stages of 3x3 convolutions (default channels 16/32/64/128, strides 2/2/2/1, so a 32x32 input
    gives a 4x4 map and a 24x24 patch a 3x3 map; ~1.7 and ~1.0 MFLOPs). Narrow early stages keep
    the CPU backward pass cheap (convolution backward dominates a tiny training step). With ``num_segments`` set, the input of every
    stage after the first is temporally shifted (TSM's in-place variant: the tiny net has no
    residual branch to put the shift in).
    """

    def __init__(self, channels: Sequence[int] = (16, 32, 64, 128), strides: Sequence[int] = (2, 2, 2, 1),
                 num_segments: Optional[int] = None, shift_div: int = 8) -> None:
        super().__init__()
        layers = []
        c_in = 3
        for c, s in zip(channels, strides):
            layers.append(nn.Sequential(nn.Conv2d(c_in, c, 3, s, 1, bias=False), nn.BatchNorm2d(c),
                                        nn.ReLU(inplace=True)))
            c_in = c
        self.stages = nn.Sequential(*layers)
        self.out_channels = c_in
        self.halvings = sum(1 for s in strides if s == 2)
        if num_segments:
            for stage in self.stages[1:]:
                add_shift(stage, num_segments, shift_div)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(x)


# ----------------------------------------------------------------------------- weights
def _torchvision_weights(arch: str) -> Any:
    return {"mbv2": tvm.MobileNet_V2_Weights.IMAGENET1K_V1, "res50": tvm.ResNet50_Weights.IMAGENET1K_V1}[arch]


def load_state(module: nn.Module, path: str, what: str) -> None:
    """Load a local state dict into ``module`` strictly; a one-line UsageError on any mismatch.

    Accepts a bare state dict or a checkpoint holding one under ``state_dict``/``model``; strips
    ``module.`` (DataParallel) and ``backbone.`` prefixes and drops classifier keys.
    """
    if not os.path.isfile(path):
        raise UsageError(f"{what}: pretrained weights file '{path}' does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt file, not a torch file
        raise UsageError(f"{what}: cannot read '{path}' as a torch state dict ({type(e).__name__})") from None
    if isinstance(state, dict):
        for key in ("state_dict", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
    if not isinstance(state, dict):
        raise UsageError(f"{what}: '{path}' does not hold a state dict")
    clean: Dict[str, torch.Tensor] = {}
    for k, v in state.items():
        for prefix in ("module.", "backbone.", "base_model."):
            if k.startswith(prefix):
                k = k[len(prefix):]
        if not k.startswith(_HEAD_PREFIXES):
            clean[k] = v
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


def _torchvision_net(arch: str, pretrained: Optional[str]) -> nn.Module:
    builder = {"mbv2": tvm.mobilenet_v2, "res50": tvm.resnet50}[arch]
    if pretrained != "imagenet":
        return builder(weights=None)
    try:
        return builder(weights=_torchvision_weights(arch))
    except Exception as e:  # offline machine, proxy, corrupt cache
        raise UsageError(f"backbone {arch}: cannot download torchvision ImageNet weights ({type(e).__name__}); "
                         f"pass pretrained=PATH to a local state dict instead") from None


def _finish(backbone: Backbone, name: str, pretrained: Optional[str]) -> Backbone:
    if pretrained and pretrained != "imagenet":
        load_state(backbone, pretrained, f"backbone {name}")
    return backbone


def _mbv2(pretrained: Optional[str], num_segments: Optional[int], shift_div: int) -> Backbone:
    net = MobileNetV2Backbone(_torchvision_net("mbv2", pretrained))
    if num_segments:
        # shift at the start of every inverted-residual block that has an identity path
        for block in net.features:
            if getattr(block, "use_res_connect", False):
                add_shift(block.conv[0], num_segments, shift_div)
    return net


def _res50(pretrained: Optional[str], num_segments: Optional[int], shift_div: int) -> Backbone:
    net = ResNetBackbone(_torchvision_net("res50", pretrained))
    if num_segments:
        for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
            for block in layer:  # shift the residual branch's input (TSM "blockres")
                add_shift(block.conv1, num_segments, shift_div)
    return net


def _need_segments(name: str, num_segments: Optional[int]) -> int:
    if not num_segments or num_segments < 1:
        raise UsageError(f"backbone {name} needs num_segments (frames per video)")
    return num_segments


@BACKBONES.register("mbv2")
def mbv2(pretrained: Optional[str] = None, num_segments: Optional[int] = None, shift_div: int = 8) -> Backbone:
    return _finish(_mbv2(pretrained, None, shift_div), "mbv2", pretrained)


@BACKBONES.register("res50")
def res50(pretrained: Optional[str] = None, num_segments: Optional[int] = None, shift_div: int = 8) -> Backbone:
    return _finish(_res50(pretrained, None, shift_div), "res50", pretrained)


@BACKBONES.register("tsm_mbv2")
def tsm_mbv2(pretrained: Optional[str] = None, num_segments: Optional[int] = None, shift_div: int = 8) -> Backbone:
    seg = _need_segments("tsm_mbv2", num_segments)
    return _finish(_mbv2(pretrained, seg, shift_div), "tsm_mbv2", pretrained)


@BACKBONES.register("tsm_res50")
def tsm_res50(pretrained: Optional[str] = None, num_segments: Optional[int] = None, shift_div: int = 8) -> Backbone:
    seg = _need_segments("tsm_res50", num_segments)
    return _finish(_res50(pretrained, seg, shift_div), "tsm_res50", pretrained)


def _textures(pretrained: Optional[str]) -> Optional[str]:
    """"textures" -> the cached texture pre-training of the tiny backbone (TSM adds no parameters)."""
    if pretrained != "textures":
        return pretrained
    from bench.models.pretrain import texture_weights
    return str(texture_weights("tiny", TinyBackbone))


def _no_imagenet(name: str, pretrained: Optional[str]) -> None:
    if pretrained == "imagenet":
        raise UsageError(f"backbone {name} has no ImageNet weights; pass pretrained=PATH or nothing")


@BACKBONES.register("tiny")
def tiny(pretrained: Optional[str] = None, num_segments: Optional[int] = None, shift_div: int = 8) -> Backbone:
    _no_imagenet("tiny", pretrained)
    return _finish(TinyBackbone(), "tiny", _textures(pretrained))


@BACKBONES.register("tiny_tsm")
def tiny_tsm(pretrained: Optional[str] = None, num_segments: Optional[int] = None, shift_div: int = 8) -> Backbone:
    _no_imagenet("tiny_tsm", pretrained)
    pretrained = _textures(pretrained)
    seg = _need_segments("tiny_tsm", num_segments)
    return _finish(TinyBackbone(num_segments=seg, shift_div=shift_div), "tiny_tsm", pretrained)


def create_backbone(name: str, *, pretrained: Optional[str] = None, num_segments: Optional[int] = None,
                    shift_div: int = 8) -> Backbone:
    """Build a registered backbone. ``pretrained``: None (random init), "imagenet" or a local path."""
    return BACKBONES.create(name, pretrained=pretrained, num_segments=num_segments, shift_div=shift_div)
