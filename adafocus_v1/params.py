"""AdaFocusV1's own hyper-parameters (the ``train`` part of a preset) and architecture parts.

Paper values: adafocus-facts.md §2.2 (ActivityNet-style scripts) and §2.3 (Sth-Sth scripts); ``tiny``: derived
from the paper values of its variant by the scale rule (``bench.scale``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, Mapping

from adafocus_v1.rewards import REWARDS
from adafocus_v1.rl import ALGORITHMS
from bench.errors import UsageError
from bench.presets import check_params
from bench.scale import REFERENCE_DATASET, TINY, ScaleRule

STAGE3_MODES = ("paper", "official")
STAGE_EPOCHS = ("pretrain_epochs", "stage1_epochs", "stage2_epochs", "stage3_epochs")
SGD_LRS = ("pretrain_lr", "stage1_backbone_lr", "stage1_fc_lr", "stage3_backbone_lr", "stage3_fc_lr")


@dataclass(frozen=True)
class V1Params:
    """Stage 0 pre-trains f_G and f_L, stage 1 trains f_L + f_C on random patches, stage 2 the policy by
    RL, stage 3 fine-tunes with the policy fixed (SGD + cosine except stage 2: Adam)."""

    batch_size: int  # per process, every stage
    pretrain_epochs: int  # stage 0 (f_G and f_L on whole frames)
    pretrain_lr: float
    stage1_epochs: int
    stage1_backbone_lr: float
    stage1_fc_lr: float
    stage2_epochs: int
    stage3_epochs: int
    stage3_backbone_lr: float  # used when stage 3 also tunes f_L (the paper's description)
    stage3_fc_lr: float
    stage3: str = "paper"  # "paper": f_L + f_C; "official": f_C only (the released code)
    rl_algorithm: str = "ppo"  # "ppo" | "reinforce"
    policy_lr: float = 3e-4  # Adam lr of pi
    gamma: float = 0.7  # discount over steps
    ppo_clip: float = 0.2  # clipped surrogate epsilon
    ppo_epochs: int = 1  # PPO updates per batch
    value_weight: float = 0.5  # critic MSE weight
    entropy_weight: float = 0.01  # entropy bonus weight
    reward: str = "random"  # "random" | "prev" | "conf"

    def __post_init__(self) -> None:
        check_params(self)
        for name, value, allowed in (
            ("stage3", self.stage3, STAGE3_MODES),
            ("rl_algorithm", self.rl_algorithm, ALGORITHMS),
            ("reward", self.reward, REWARDS),
        ):
            if value not in allowed:
                raise UsageError(f"{name} {value!r}: expected one of {', '.join(allowed)}")


# `adabench tune` winners for the tiny preset, as factors of the paper's value
# (docs/tuning/<dataset>/tuning.md;
# the same factor grid for every method); a variant without a sweep keeps the paper's value
TUNED = {"frame": {"policy_lr": 4.0}, "video": {}}


def params(preset_name: str, variant: str, dataset: str) -> V1Params:
    if preset_name == "tiny":
        p = scaled(params("paper", variant, REFERENCE_DATASET[variant]), TINY)
        return dataclasses.replace(p, **{k: getattr(p, k) * f for k, f in TUNED[variant].items()})
    if variant == "frame":
        return V1Params(
            batch_size=64,
            pretrain_epochs=15,
            pretrain_lr=0.01,
            stage1_epochs=50,
            stage1_backbone_lr=0.0005,
            stage1_fc_lr=0.05,
            stage2_epochs=50,
            stage3_epochs=10,
            # not published (the code tunes f_C only); the stage-1 ratio of 1:100
            stage3_backbone_lr=0.00005,
            stage3_fc_lr=0.005,
        )
    return V1Params(
        batch_size=64,
        pretrain_epochs=50,
        pretrain_lr=0.01,
        stage1_epochs=10,
        stage1_backbone_lr=0.00001,
        stage1_fc_lr=0.01,
        stage2_epochs=50,
        stage3_epochs=10,
        stage3_backbone_lr=0.0,
        stage3_fc_lr=0.0005,
    )


def scaled(p: V1Params, rule: ScaleRule) -> V1Params:
    """The small preset's parameters by ``rule`` (bench.scale): epochs, batch and SGD learning rates by its
    factors, the discount per step so that it is kept over a video; Adam's policy lr as it is."""
    sgd: Dict[str, Any] = {f: rule.sgd_lr(getattr(p, f)) for f in SGD_LRS}
    epochs: Dict[str, Any] = {f: rule.epochs_of(getattr(p, f)) for f in STAGE_EPOCHS}
    return dataclasses.replace(
        p, batch_size=rule.batch_of(p.batch_size), gamma=rule.discount(p.gamma), **sgd, **epochs
    )


def regime(p: Any) -> Dict[str, Dict[str, float]]:
    """V1's part of the scale model's table (bench.regime): action geometry, discount, epochs, SGD lrs."""
    hp, free = p.train, p.input_size - p.patch_size
    kept: Dict[str, float] = {}
    if p.policy_head == "categorical":
        kept[f"action-grid step / P (P={p.patch_size})"] = free / (p.grid_n - 1) / p.patch_size
    if p.policy_head == "gaussian":
        kept[f"action std / P (P={p.patch_size})"] = p.action_std * free / p.patch_size
    if p.steps > 1:
        kept["discount over a video (gamma^T)"] = hp.gamma**p.steps
    epochs = {f"stage {i}": getattr(hp, f) for i, f in enumerate(STAGE_EPOCHS)}
    names = ("stage 0", "stage 1 f_L", "stage 1 f_C", "stage 3 f_L", "stage 3 f_C")
    sgd = {n: getattr(hp, f) / hp.batch_size for n, f in zip(names, SGD_LRS)}
    return {"kept": kept, "epochs": epochs, "sgd_lr": sgd, "tuned": {"policy Adam lr": hp.policy_lr}}


def _scaled(epochs: int, scale: float) -> int:
    return max(1, int(round(epochs * scale)))


def with_epochs(p: V1Params, epochs: int) -> V1Params:
    """``--epochs N`` sets stage 1's epochs to N and scales the other stages by the same factor (>= 1
    each)."""
    scale = epochs / p.stage1_epochs
    return dataclasses.replace(
        p,
        pretrain_epochs=_scaled(p.pretrain_epochs, scale),
        stage1_epochs=int(epochs),
        stage2_epochs=_scaled(p.stage2_epochs, scale),
        stage3_epochs=_scaled(p.stage3_epochs, scale),
    )


def arch(d: Mapping[str, Any], preset_name: str, variant: str, arch_name: str) -> Dict[str, Any]:
    """V1's parts: an actor-critic policy (a grid of locations per frame; a Gaussian location per video, as
    in the V1 Sth-Sth scripts) and an integer-offset crop; fused heads train on undetached features. With
    ``arch="paper"`` also V1's own trunk and classifier (facts §1.2, §1.3)."""
    frame = variant == "frame"
    out: Dict[str, Any] = dict(
        policy_head="categorical" if frame else "gaussian",
        crop="hard",
        policy_value_head=True,
        tsn_detach=False,
    )
    if arch_name != "paper":
        return out
    if frame:
        # f_L's stage-0 head is ResNet-50's own fc, with no dropout before it (V1a models/resnet.py)
        out.update(
            frame_order="time",
            policy_act="relu",
            policy_norm=False,
            classifier="gru",
            classifier_shared_head=True,
            focus_fc_dropout=0.0,
        )
        out.update(policy_hidden=(1024,), policy_conv_channels=32, classifier_hidden=1024, dropout=0.8)
    else:
        out.update(policy_act="relu", policy_gru=True, policy_hidden=(1024,))
    return out
