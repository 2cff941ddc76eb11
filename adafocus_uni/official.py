"""Checkpoints of the official Uni-AdaFocus code (github LeapLabTHU/Uni-AdaFocus, frame variant) -> our
``--arch paper`` ``UniNet`` (``adabench import-checkpoint --method uni``).

Facts read from the official code (nothing of it is copied here): ``main.py`` saves ``{"epoch", "state_dict":
DistributedDataParallel(AdaFocus).state_dict(), "optimizer", "best_acc1"}``. Its parts: ``global_CNN`` (a
tonylins-layout MobileNetV2 with its unused 1000-way ``classifier``), ``global_CNN_fc`` (dropout + linear),
``aux_fc`` (the spatial-logits head), ``local_CNN`` (torchvision-layout ResNet-50 with its unused ``fc``),
``local_CNN_fc``, ``spatial_policy.encoder`` (conv3d/BN3d/ReLU x3, conv3d, sigmoid: our indices),
``temporal_policy.Tconv`` (conv/BN/ReLU x2, conv: our indices) and ``classifier`` (``global_mlp.layers`` /
``local_mlp.layers`` = linear, BN1d, ReLU; ``global_classifiers.t`` / ``local_classifiers.t`` = dropout +
linear)."""

from __future__ import annotations

from typing import Any, Mapping, Optional

import torch

from bench.errors import UsageError
from bench.io import PathLike
from bench.models.importing import (
    ImportReport,
    OfficialLayout,
    Rule,
    head_rule,
    import_official,
    mbv2_rules,
    official_paper_preset,
    resnet_rules,
)

METHOD = "uni"
_IMAGENET_HEAD = "the backbone's 1000-way ImageNet classifier (never used by Uni-AdaFocus)"


def _heads(src: str, dst: str) -> list:
    return [
        Rule(rf"classifier\.{src}\.(\d+)\.1\.weight", rf"classifier.{dst}.weight[\1]", transform=torch.t),
        Rule(rf"classifier\.{src}\.(\d+)\.1\.bias", rf"classifier.{dst}.bias[\1]"),
    ]


def frame_layout() -> OfficialLayout:
    rules = [
        *mbv2_rules("global_CNN.", "glance.backbone.", tonylins=True),
        head_rule("global_CNN.", "classifier", _IMAGENET_HEAD),
        Rule(r"global_CNN_fc\.1\.(weight|bias)", r"glance.head.fc.\1"),
        Rule(r"aux_fc\.(weight|bias)", r"spatial_head.\1"),
        *resnet_rules("local_CNN.", "focus.backbone."),
        head_rule("local_CNN.", "fc", _IMAGENET_HEAD),
        Rule(r"local_CNN_fc\.1\.(weight|bias)", r"focus.head.fc.\1"),
        Rule(
            r"spatial_policy\.encoder\.(\d+)\.weight",
            r"policy.spatial.encoder.\1.weight",  # conv3d: a matrix
            transform=lambda t: t.flatten(1) if t.dim() == 5 else t,
        ),
        Rule(r"spatial_policy\.encoder\.(.*)", r"policy.spatial.encoder.\1"),  # BN3d
        Rule(r"temporal_policy\.Tconv\.(.*)", r"policy.temporal.encoder.\1"),
        Rule(r"classifier\.global_mlp\.layers\.(.*)", r"classifier.glance_mlp.\1"),
        Rule(r"classifier\.local_mlp\.layers\.(.*)", r"classifier.focus_mlp.\1"),
        *_heads("global_classifiers", "glance_heads"),
        *_heads("local_classifiers", "focus_heads"),
    ]
    return OfficialLayout("official Uni-AdaFocus ActivityNet/FCVID/Mini-Kinetics (mbv2 glance)", rules)


def official_layout(preset: Any) -> OfficialLayout:
    if preset.arch != "paper" or preset.method != METHOD:
        raise UsageError("official Uni-AdaFocus checkpoints import into the Uni '--arch paper' network only")
    if preset.variant != "frame" or preset.glance_arch != "mbv2":
        raise UsageError("only the official Uni-AdaFocus frame variant (MobileNetV2 glance) is supported")
    return frame_layout()


def import_checkpoint(
    src: PathLike,
    dataset: str,
    out: PathLike,
    *,
    patch_size: Optional[int] = None,
    glance_arch: Optional[str] = None,
    overrides: Optional[Mapping[str, Any]] = None,
) -> ImportReport:
    """Convert an official Uni-AdaFocus checkpoint into ``out`` (read back with ``bench.models.load_model``).

    The checkpoint does not record the patch size: give the one it was trained with (the released files say it
    in their names, e.g. ``actnet_p128``)."""
    preset = official_paper_preset(
        METHOD, dataset, patch_size=patch_size, glance_arch=glance_arch, overrides=overrides
    )
    return import_official(src, preset, official_layout(preset), out)
