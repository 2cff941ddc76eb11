"""``build_network(preset, num_classes)``: the one place a Preset becomes an AdaFocusNet."""

from __future__ import annotations

import dataclasses
from typing import Any, Optional, cast

import torch
from torch import nn

from bench.models.backbones import create_backbone
from bench.models.classifiers import AuxHead, GRUClassifier, PoolingClassifier, TSNAverage
from bench.models.network import AdaFocusNet, FocusNet, GlanceNet
from bench.models.policies import RecurrentPolicy, VideoPolicy


def _policy(p: Any, glance: GlanceNet) -> nn.Module:
    map_hw = glance.map_size(p.input_size)
    common = dict(
        head=p.policy_head,
        grid_n=p.grid_n,
        std=p.action_std,
        conv_channels=p.policy_conv_channels,
        norm=p.policy_norm,
        act=p.policy_act,
        value_head=p.policy_value_head,
    )
    if p.policy_type == "recurrent":
        if len(p.policy_hidden) != 1:
            raise ValueError(f"the recurrent policy takes one hidden size, got {p.policy_hidden}")
        return RecurrentPolicy(glance.out_channels, map_hw, p.policy_hidden[0], **common)
    if p.policy_type == "video":
        tg = p.glance_frames or p.frames
        return VideoPolicy(
            glance.out_channels * tg, map_hw, tuple(p.policy_hidden), gru=p.policy_gru, **common
        )
    raise ValueError(f"unknown policy_type {p.policy_type!r}")


def _classifier(p: Any, glance_dim: int, focus_dim: int, num_classes: int) -> nn.Module:
    if p.classifier == "pooling":
        return PoolingClassifier(
            glance_dim + focus_dim, p.classifier_hidden, num_classes, p.frames, p.dropout
        )
    if p.classifier == "gru":
        return GRUClassifier(
            glance_dim + focus_dim,
            p.classifier_hidden,
            num_classes,
            p.frames,
            p.dropout,
            shared_head=p.classifier_shared_head,
        )
    if p.classifier == "tsn":
        return TSNAverage(glance_dim, focus_dim, num_classes, p.dropout, detach=p.tsn_detach)
    raise ValueError(f"unknown classifier {p.classifier!r}")


def build_network(preset: Any, num_classes: Optional[int] = None) -> AdaFocusNet:
    """Build the network a preset describes (random init unless the preset names weights).

    num_classes: defaults to ``preset.num_classes``. The policy gets a value head when the preset asks
    for one (``policy_value_head``: actor-critic RL methods).
    """
    p = preset
    # a method with a network of its own builds it (registry ``network``)
    from bench.methods import get_method

    own = get_method(p.method).network if getattr(p, "method", None) else None
    if own is not None:
        return cast(AdaFocusNet, own(p, num_classes))  # a network of the same interface
    num_classes = num_classes or p.num_classes
    tg = p.glance_frames or p.frames
    glance = GlanceNet(
        create_backbone(
            p.glance_backbone,
            pretrained=p.glance_pretrained,
            num_segments=tg,
            shift_div=p.shift_div,
            option="glance_pretrained",
            width=p.glance_width,
        ),
        num_classes,
        p.glance_size,
        p.fc_dropout,
        align_corners=p.glance_align_corners,
        antialias=p.glance_antialias,
        feature_dropout=p.feature_dropout,
    )
    focus = FocusNet(
        create_backbone(
            p.focus_backbone,
            pretrained=p.focus_pretrained,
            num_segments=p.frames,
            shift_div=p.shift_div,
            option="focus_pretrained",
        ),
        num_classes,
        p.fc_dropout if p.focus_fc_dropout is None else p.focus_fc_dropout,
        feature_dropout=p.feature_dropout,
    )
    policy = _policy(p, glance)
    classifier = _classifier(p, glance.out_channels, focus.out_channels, num_classes)
    net = AdaFocusNet(
        glance, focus, policy, classifier, patch_size=p.patch_size, variant=p.variant, crop=p.crop
    )
    if p.head_init_std is not None:
        init_heads(net, p.head_init_std)
    return net


def init_heads(net: nn.Module, std: float) -> None:
    """Every linear head (auxiliary and TSN fused): weight ~ N(0, std), bias 0, as TSN initialises new_fc."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, AuxHead):
                m.fc.weight.normal_(0.0, std)
                m.fc.bias.zero_()


def without_weight_files(preset: Any) -> Any:
    """The preset with no backbone weights to read or download: for networks whose weights come from
    elsewhere (an imported checkpoint) or do not matter (FLOPs, throughput)."""
    return dataclasses.replace(preset, glance_pretrained=None, focus_pretrained=None)
