"""AdaFocusV2's own hyper-parameters (the ``train`` part of a preset) and architecture parts.

Paper values: adafocus-facts.md §3.2 (the V2 scripts); ``tiny``: derived from the paper values of its variant
by the scale rule (``bench.scale``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, Mapping

from bench.presets import check_params
from bench.scale import REFERENCE_DATASET, TINY, ScaleRule


@dataclass(frozen=True)
class V2Params:
    """One-stage SGD + per-epoch cosine; every module's lr is ``lr`` times its ratio."""

    epochs: int
    batch_size: int  # per process
    lr: float  # base lr (f_L); the others scale it by their ratio
    glance_lr_ratio: float  # f_G and its head
    policy_lr_ratio: float  # pi
    classifier_lr_ratio: float  # f_C (frame variant; the video variant's fused heads take their network's)
    focus_lr_ratio: float = 1.0  # f_L and its head
    aux_supervision: bool = True  # frame-wise CE on the glance and focus heads (--no-aux)
    diversity: bool = True  # a second pass on uniformly random patches (--no-diversity)
    stop_gradient: bool = True  # the policy's gradient stops at the glance maps (--no-stop-gradient)

    def __post_init__(self) -> None:
        check_params(self)


# `adabench tune` winners for the tiny preset, as factors of the paper's value
# (docs/tuning/<dataset>/tuning.md;
# the same factor grid for every method); a variant without a sweep keeps the paper's value
TUNED = {"frame": {"policy_lr_ratio": 4.0}, "video": {}}


def params(preset_name: str, variant: str, dataset: str) -> V2Params:
    if preset_name == "tiny":
        p = scaled(params("paper", variant, REFERENCE_DATASET[variant]), TINY)
        return dataclasses.replace(p, **{k: getattr(p, k) * f for k, f in TUNED[variant].items()})
    if variant == "frame":  # ActivityNet / FCVID / Mini-Kinetics scripts
        minik = dataset == "minik"
        return V2Params(
            epochs=50,
            batch_size=48 if minik else 32,
            lr=0.003 if minik else 0.002,
            glance_lr_ratio=0.5,
            policy_lr_ratio=0.1,
            classifier_lr_ratio=5.0,
        )
    return V2Params(
        epochs=50, batch_size=32, lr=0.01, glance_lr_ratio=0.5, policy_lr_ratio=0.01, classifier_lr_ratio=1.0
    )  # Sth-Sth / Jester scripts (no classifier group there)


def scaled(p: V2Params, rule: ScaleRule) -> V2Params:
    """The small preset's parameters by ``rule`` (bench.scale): epochs, batch and the base SGD lr by its
    factors;
    every module's ratio (the policy's included) as it is."""
    return dataclasses.replace(
        p, epochs=rule.epochs_of(p.epochs), batch_size=rule.batch_of(p.batch_size), lr=rule.sgd_lr(p.lr)
    )


def regime(p: Any) -> Dict[str, Dict[str, float]]:
    """V2's part of the scale model's table (bench.regime): its epochs and per-module SGD lrs."""
    hp = p.train
    ratios = {"f_L": hp.focus_lr_ratio, "f_G": hp.glance_lr_ratio, "f_C": hp.classifier_lr_ratio}
    return {
        "epochs": {"training": hp.epochs},
        "sgd_lr": {n: hp.lr * r / hp.batch_size for n, r in ratios.items()},
        "tuned": {"policy lr ratio": hp.policy_lr_ratio},
    }


def with_epochs(p: V2Params, epochs: int) -> V2Params:
    return dataclasses.replace(p, epochs=epochs)


def arch(d: Mapping[str, Any], preset_name: str, variant: str, arch_name: str) -> Dict[str, Any]:
    """V2's parts: a deterministic sigmoid location head trained through a bilinear (differentiable) crop.

    Its own architecture is the shared default (``arch="paper"`` changes nothing)."""
    return dict(policy_head="sigmoid", crop="interp", policy_value_head=False)
