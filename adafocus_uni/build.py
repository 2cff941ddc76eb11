"""``build_uni(preset, num_classes)``: a Uni preset becomes a ``UniNet`` (the registry entry's ``network``
hook).

f_G and f_L are the shared backbones of the preset (``bench.models``), built as ``build_network`` builds them,
so ``--arch matched`` gives Uni the same glance and focus networks (and classifier width) as V1 and V2.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

from torch import nn

from adafocus_uni.model import UniNet
from adafocus_uni.params import segments
from adafocus_uni.parts import SpatialPolicy, TemporalPolicy, UniClassifier, UniPolicy
from bench.errors import UsageError
from bench.models.backbones import create_backbone
from bench.models.network import FocusNet, GlanceNet


def check_segments(p: Any) -> Tuple[int, int, int]:
    """(S, Tg, Tf) of preset ``p``, or a one-line error."""
    if p.variant != "frame":
        raise UsageError(
            f"method uni: only the frame variant (ActivityNet / FCVID / Mini-Kinetics style) is "
            f"implemented; {p.dataset} needs the TSM variant (Sth-Sth / Jester), which is not"
        )
    s, tg, tf = segments(p)
    if s % tg or tf > s:
        raise UsageError(
            f"method uni: frames={s} (segments) must be a multiple of glance_segments={tg} and at "
            f"least focus_segments={tf}"
        )
    return s, tg, tf


def build_uni(preset: Any, num_classes: Optional[int] = None) -> UniNet:
    p, hp = preset, preset.train
    s, tg, tf = check_segments(p)
    k = num_classes or p.num_classes
    glance = GlanceNet(
        create_backbone(
            p.glance_backbone,
            pretrained=p.glance_pretrained,
            num_segments=None,
            option="glance_pretrained",
            width=p.glance_width,
        ),
        k,
        p.glance_size,
        p.fc_dropout,
        align_corners=p.glance_align_corners,
        antialias=p.glance_antialias,
    )
    focus = FocusNet(
        create_backbone(
            p.focus_backbone, pretrained=p.focus_pretrained, num_segments=None, option="focus_pretrained"
        ),
        k,
        p.fc_dropout if p.focus_fc_dropout is None else p.focus_fc_dropout,
    )
    map_hw = glance.map_size(p.input_size)
    policy = UniPolicy(
        SpatialPolicy(glance.out_channels, hp.spatial_hidden, map_hw),
        TemporalPolicy(glance.out_channels, hp.temporal_hidden, hp.temperature),
    )
    classifier = UniClassifier(
        glance.out_channels, focus.out_channels, p.classifier_hidden, k, tg, tf, p.dropout
    )
    # the official map patch is P // 32 cells of the 7x7 map of a 224 frame: P * map / frame in general
    map_patch = max(1, p.patch_size * map_hw // p.input_size)
    return UniNet(
        glance,
        focus,
        policy,
        classifier,
        nn.Linear(glance.out_channels, k),
        segments=s,
        glance_segments=tg,
        focus_segments=tf,
        patch_size=p.patch_size,
        input_size=p.input_size,
        map_patch=map_patch,
        learned_scale=hp.learned_scale,
        temporal_policy=hp.temporal_policy,
        mc_draws=hp.mc_draws,
    )
