"""Checkpoints of the official AdaFocus (V1) code (github blackfeather-wang/AdaFocus) -> our ``--arch paper``
net.

Facts read from the official code (nothing of it is copied here). Both variants' trainers save
``{"epoch", "model_state_dict", "glancer", "focuser", "fc", "policy", "acc", "best_acc", "optimizer", ...}``:
the whole ``GFV`` state dict plus the same tensors again per part (the ``policy`` entry is the PPO
learner ``focuser.policy.policy``). ``focuser.policy.policy_old`` is PPO's acting copy, equal to the
learner after every update (the trainers reload both from ``policy``).

- ActivityNet/FCVID/Mini-Kinetics (``main_dist.py``; our "frame" variant): ``glancer.net`` is a
  torchvision-layout MobileNetV2 whose ``classifier`` (dropout + linear to the classes) is the glance
  head trained in stage 0; ``focuser.net`` a torchvision ResNet-50 whose ``fc`` is the focus head;
  the actor-critic has ``state_encoder`` (conv, ReLU, flatten, linear, ReLU), ``gru``, ``actor``
  (linear + softmax over the grid), ``critic``; ``classifier`` is a GRU and one ``fc`` for every step.
- Something-Something V1/V2 (``stage*.py``; our "video" variant): ``glancer.net`` is a TSM MobileNetV2
  in tonylins layout whose ``classifier`` (linear) gives the glance logits that are averaged into the
  prediction; ``focuser.net.base_model`` a TSM ResNet-50 whose children up to the pooling form a
  Sequential (the stage scripts cut the fc off); the actor-critic's ``state_encoder`` adds BatchNorm
  (conv, BN, ReLU, flatten, linear, BN, ReLU) and its actor outputs a 2-d Gaussian mean (sigmoid);
  ``classifier`` is one linear on the focus features, averaged over frames. The official focus
  network has no head of its own: ours keeps its initialisation.
"""

from __future__ import annotations

from typing import Any, List, Mapping, Optional

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

METHOD = "v1"
_SPLIT = {
    "glancer": "glancer.",
    "focuser": "focuser.",
    "fc": "classifier.",
    "policy": "focuser.policy.policy.",
}
_OLD = "PPO's acting copy of the policy (equal to focuser.policy.policy after every update)"
_AC = r"focuser\.policy\.policy\."


def _actor_critic(encoder: Mapping[str, str]) -> List[Rule]:
    """Rules for the learner's ``state_encoder`` indices -> ours, then GRU, actor and critic."""
    rules = [Rule(_AC + rf"state_encoder\.{i}\.(.*)", rf"policy.{ours}.\1") for i, ours in encoder.items()]
    return rules + [
        Rule(_AC + r"gru\.(.*)", r"policy.gru.\1"),
        Rule(_AC + r"actor\.0\.(weight|bias)", r"policy.action.\1"),
        Rule(_AC + r"critic\.0\.(weight|bias)", r"policy.value.\1"),
        Rule(r"focuser\.policy\.policy_old\..*", None, _OLD),
    ]


def _frame_layout() -> OfficialLayout:
    rules = [
        *mbv2_rules("glancer.net.", "glance.backbone.", tonylins=False),
        Rule(r"glancer\.net\.classifier\.1\.(weight|bias)", r"glance.head.fc.\1"),
        *resnet_rules("focuser.net.", "focus.backbone."),
        Rule(r"focuser\.net\.fc\.(weight|bias)", r"focus.head.fc.\1"),
        *_actor_critic({"0": "map_encoder.0", "3": "encoder.0"}),
        Rule(r"classifier\.gru\.(.*)", r"classifier.gru.\1"),
        Rule(r"classifier\.fc\.weight", "classifier.heads.weight[0]", transform=torch.t),
        Rule(r"classifier\.fc\.bias", "classifier.heads.bias[0]"),
    ]
    return OfficialLayout("official AdaFocus ActivityNet/FCVID/Mini-Kinetics", rules, split=_SPLIT)


def _video_layout() -> OfficialLayout:
    rules = [
        *mbv2_rules("glancer.net.", "glance.backbone.", tonylins=True),
        # the glancer's own classifier is both its head and the glance half of the fused prediction
        Rule(
            r"glancer\.net\.classifier\.(weight|bias)", (r"glance.head.fc.\1", r"classifier.glance_fc.fc.\1")
        ),
        *resnet_rules("focuser.net.base_model.", "focus.backbone."),
        head_rule(
            "focuser.net.base_model.",
            "fc",
            "ResNet-50's 1000-way ImageNet classifier (the stage scripts cut it off)",
        ),
        *_actor_critic({"0": "map_encoder.0", "1": "map_encoder.1", "4": "encoder.0", "5": "encoder.1"}),
        Rule(r"classifier\.(weight|bias)", r"classifier.focus_fc.fc.\1"),
    ]
    absent = {"focus.head.": "the official Sth-Sth focus network has no head of its own"}
    return OfficialLayout("official AdaFocus Something-Something (TSM)", rules, split=_SPLIT, absent=absent)


def official_layout(preset: Any) -> OfficialLayout:
    """The official variant whose checkpoints fit ``preset`` (a V1 ``--arch paper`` preset)."""
    if preset.arch != "paper" or preset.method != METHOD:
        raise UsageError("official AdaFocus (V1) checkpoints import into the V1 '--arch paper' network only")
    if preset.glance_arch != "mbv2":
        raise UsageError("the official AdaFocus (V1) code has a MobileNetV2 glance only")
    return _frame_layout() if preset.variant == "frame" else _video_layout()


def paper_preset(
    dataset: str,
    *,
    patch_size: Optional[int] = None,
    glance_arch: Optional[str] = None,
    overrides: Optional[Mapping[str, Any]] = None,
) -> Any:
    """The V1 ``paper`` preset with ``--arch paper`` that official checkpoints of ``dataset`` fit."""
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
    """Convert an official AdaFocus (V1) checkpoint into ``out`` (read back with ``bench.models.load_model``).

    The checkpoint does not record the patch size: give the one it was trained with
    (e.g. ``128s3_checkpoint.pth.tar`` is patch 128).
    """
    preset = paper_preset(dataset, patch_size=patch_size, glance_arch=glance_arch, overrides=overrides)
    return import_official(src, preset, official_layout(preset), out)
