"""Checkpoints of the official AdaFocusV2 code (github LeapLabTHU/AdaFocusV2) -> our ``--arch paper`` net.

Facts read from the official code (nothing of it is copied here):

- ActivityNet/FCVID/Mini-Kinetics (``main_v2.py``; our "frame" variant) saves
  ``{"state_dict": DataParallel(AdaFocus).state_dict()}``. Its parts: ``global_CNN`` (a tonylins-layout
  MobileNetV2 with its 1000-way ImageNet ``classifier``, or a torchvision-layout ResNet-50 with its
  ``fc`` for the 96x96 res50 glance), ``global_CNN_fc`` (dropout + linear), ``local_CNN`` (ResNet-50
  with its ``fc``), ``local_CNN_fc``, ``policy_stn`` (``encoder`` = conv, BN, tanh, flatten, linear,
  BN, tanh; ``gru``; ``fc`` = linear + sigmoid) and ``classifier`` (``mlp.layers`` = linear, BN,
  ReLU; ``classifiers.t`` = dropout + linear, one per step).
- Sth-Sth V1/V2 and Jester (``main.py``; our "video" variant) saves
  ``{"epoch", "arch", "state_dict", "optimizer", "best_prec1"}``. ``global_CNN`` and ``local_CNN``
  are TSNs: ``base_model`` (TSM MobileNetV2 in tonylins layout / TSM torchvision ResNet-50; their
  classifiers replaced by dropout, so no head tensors), ``new_fc`` (the fused head, on detached
  features) and ``new_new_fc`` (the auxiliary head); ``policy_stn`` is one Sequential (conv, BN, tanh,
  flatten, linear, BN, tanh, linear, BN, tanh, linear, sigmoid).
"""

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

METHOD = "v2"
_IMAGENET_HEAD = "the backbone's 1000-way ImageNet classifier (never used by AdaFocusV2)"


def _frame_layout(glance_arch: str) -> OfficialLayout:
    if glance_arch == "res50":
        glance = resnet_rules("global_CNN.", "glance.backbone.") + [
            head_rule("global_CNN.", "fc", _IMAGENET_HEAD)
        ]
    else:
        glance = mbv2_rules("global_CNN.", "glance.backbone.", tonylins=True)
        glance += [head_rule("global_CNN.", "classifier", _IMAGENET_HEAD)]
    rules = glance + [
        Rule(r"global_CNN_fc\.1\.(weight|bias)", r"glance.head.fc.\1"),
        *resnet_rules("local_CNN.", "focus.backbone."),
        head_rule("local_CNN.", "fc", _IMAGENET_HEAD),
        Rule(r"local_CNN_fc\.1\.(weight|bias)", r"focus.head.fc.\1"),
        Rule(r"policy_stn\.encoder\.([01])\.(.*)", r"policy.map_encoder.\1.\2"),  # conv, BN2d
        Rule(r"policy_stn\.encoder\.4\.(.*)", r"policy.encoder.0.\1"),  # linear
        Rule(r"policy_stn\.encoder\.5\.(.*)", r"policy.encoder.1.\1"),  # BN1d
        Rule(r"policy_stn\.gru\.(.*)", r"policy.gru.\1"),
        Rule(r"policy_stn\.fc\.0\.(weight|bias)", r"policy.action.\1"),
        Rule(r"classifier\.mlp\.layers\.([01])\.(.*)", r"classifier.mlp.\1.\2"),  # linear, BN1d
        Rule(r"classifier\.classifiers\.(\d+)\.1\.weight", r"classifier.heads.weight[\1]", transform=torch.t),
        Rule(r"classifier\.classifiers\.(\d+)\.1\.bias", r"classifier.heads.bias[\1]"),
    ]
    return OfficialLayout(
        f"official AdaFocusV2 ActivityNet/FCVID/Mini-Kinetics ({glance_arch} glance)", rules
    )


def _video_layout() -> OfficialLayout:
    rules = [
        *mbv2_rules("global_CNN.base_model.", "glance.backbone.", tonylins=True),
        Rule(r"global_CNN\.new_fc\.(weight|bias)", r"classifier.glance_fc.fc.\1"),
        Rule(r"global_CNN\.new_new_fc\.(weight|bias)", r"glance.head.fc.\1"),
        *resnet_rules("local_CNN.base_model.", "focus.backbone."),
        Rule(r"local_CNN\.new_fc\.(weight|bias)", r"classifier.focus_fc.fc.\1"),
        Rule(r"local_CNN\.new_new_fc\.(weight|bias)", r"focus.head.fc.\1"),
        Rule(r"policy_stn\.([01])\.(.*)", r"policy.map_encoder.\1.\2"),  # conv, BN2d
        Rule(r"policy_stn\.4\.(.*)", r"policy.encoder.0.\1"),  # linear, BN1d,
        Rule(r"policy_stn\.5\.(.*)", r"policy.encoder.1.\1"),
        Rule(r"policy_stn\.7\.(.*)", r"policy.encoder.3.\1"),  # linear, BN1d
        Rule(r"policy_stn\.8\.(.*)", r"policy.encoder.4.\1"),
        Rule(r"policy_stn\.10\.(weight|bias)", r"policy.action.\1"),
    ]
    return OfficialLayout("official AdaFocusV2 Sth-Sth/Jester (TSM)", rules)


def official_layout(preset: Any) -> OfficialLayout:
    """The official variant whose checkpoints fit ``preset`` (a V2 ``--arch paper`` preset)."""
    if preset.arch != "paper" or preset.method != METHOD:
        raise UsageError("official AdaFocusV2 checkpoints import into the V2 '--arch paper' network only")
    if preset.variant == "frame":
        if preset.glance_arch not in ("mbv2", "res50"):
            raise UsageError(f"no official AdaFocusV2 variant has a {preset.glance_arch} glance")
        return _frame_layout(preset.glance_arch)
    if preset.glance_arch != "mbv2":
        raise UsageError("the official AdaFocusV2 Sth-Sth/Jester code has a MobileNetV2 glance only")
    return _video_layout()


def paper_preset(
    dataset: str,
    *,
    patch_size: Optional[int] = None,
    glance_arch: Optional[str] = None,
    overrides: Optional[Mapping[str, Any]] = None,
) -> Any:
    """The V2 ``paper`` preset with ``--arch paper`` that official checkpoints of ``dataset`` fit."""
    return official_paper_preset(
        METHOD, dataset, patch_size=patch_size, glance_arch=glance_arch, overrides=overrides
    )


def import_checkpoint(
    src: PathLike,
    dataset: str,
    out: PathLike,
    *,
    patch_size: Optional[int] = None,
    glance_arch: Optional[str] = None,
    overrides: Optional[Mapping[str, Any]] = None,
) -> ImportReport:
    """Convert an official AdaFocusV2 checkpoint into ``out`` (read back with ``bench.models.load_model``).

    The checkpoint does not record the patch size: give the one it was trained with (the
    released ones say it in their file names, e.g. ``actnet_p128``).
    """
    preset = paper_preset(dataset, patch_size=patch_size, glance_arch=glance_arch, overrides=overrides)
    return import_official(src, preset, official_layout(preset), out)
