"""Uni-AdaFocus's own hyper-parameters (the ``train`` part of a preset) and its architecture hook.

Paper values: the official frame-variant README's three training commands (ActivityNet, FCVID, Mini-Kinetics;
adafocus-facts.md §4.5) and ``opts.py`` defaults; ``tiny``: derived from the ActivityNet values by the scale
rule (``bench.scale``), as every method's small preset.

Notes on what the paper preset does not reproduce exactly:
- the official scripts give ``--batch_size`` as the total over 4 DDP processes (8 each, so BatchNorm sees 8
  videos); ``batch_size`` here is per process, the paper total on one process (V2's paper preset does the
  same);
- Mini-Kinetics uses ``--fc_dropout 0.1``: the shared ``fc_dropout`` field (0.2) is not dataset-dependent,
  give ``--set fc_dropout=0.1``; FCVID and Mini-Kinetics train with the official "semi-AMP" script (run
  ``--precision``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Tuple

from bench.presets import check_params
from bench.scale import REFERENCE_DATASET, TINY, ScaleRule

# the clip: 48 segments in time order (the glance takes one per group of 3; the temporal policy interpolates)
SEGMENTS_PER_GLANCE = 3


@dataclass(frozen=True)
class UniParams:
    """One-stage SGD + per-epoch cosine; every module's lr is ``lr`` times its ratio."""

    epochs: int
    batch_size: int  # per process (see the module docstring)
    lr: float  # base lr (f_L and its head)
    weight_decay: float  # the official scripts' (ActivityNet 2e-4, FCVID / Mini-K 1e-4)
    glance_lr_ratio: float = 0.5  # f_G, its head and the spatial-logits head (official global_lr_ratio)
    spatial_lr_ratio: float = 0.2  # spatial policy (official stn_lr_ratio)
    temporal_lr_ratio: float = 0.2  # temporal policy
    classifier_lr_ratio: float = 20.0
    focus_lr_ratio: float = 1.0
    glance_segments: int = 0  # Tg; 0: the preset's ``frames`` (the clip's S segments) // 3 (>= 2), 48 -> 16
    focus_segments: int = 0  # Tf; 0: frames // 3 as well (every official script: 16 of 48)
    spatial_hidden: int = 128  # spatial policy width (official stn_hidden_dim)
    temporal_hidden: int = 64  # temporal policy width (official temporal_hidden_dim)
    temperature: float = 1.0  # of the tempered weights the focus frames are drawn from
    mc_draws: int = 128  # Monte-Carlo draws of the temporal logits
    norm_ratio: float = 1.0  # weight of the loss pulling the scale actions to 1 (Mini-K: 0.75)
    kl_ratio: float = 0.0  # weight of KL(weights || uniform) (0 in every official script)
    temporal_policy: bool = True  # learned frame selection (--uniform-frames: uniformly spread frames)
    learned_scale: bool = True  # learned patch scale (--fixed-scale: every patch P x P)

    def __post_init__(self) -> None:
        check_params(self)


# `adabench tune` winner for the tiny preset, as a factor of the paper's value, on the grid V1 and V2
# were tuned on (docs/tuning/synthetic/uni/tuning.md: x4 by 0.5 pt of held-out top-1, within the seed spread)
TUNED = {"spatial_lr_ratio": 4.0}


def params(preset_name: str, variant: str, dataset: str) -> UniParams:
    # the video variant (TSM, Sth-Sth / Jester) is not implemented: its presets resolve (for the regime table)
    # with the frame variant's values, and building its network is a one-line error (``adafocus_uni.build``)
    if preset_name == "tiny":
        p = scaled(params("paper", "frame", REFERENCE_DATASET["frame"]), TINY)
        return dataclasses.replace(p, **{k: getattr(p, k) * f for k, f in TUNED.items()})
    if dataset == "fcvid":
        return UniParams(epochs=50, batch_size=64, lr=0.004, weight_decay=1e-4)
    if dataset == "minik":
        return UniParams(epochs=50, batch_size=48, lr=0.003, weight_decay=1e-4, norm_ratio=0.75)
    return UniParams(epochs=50, batch_size=32, lr=0.002, weight_decay=2e-4)  # ActivityNet (and the rest)


def scaled(p: UniParams, rule: ScaleRule) -> UniParams:
    """The small preset's parameters by ``rule``: epochs, batch and the base SGD lr by its factors; the
    policies' widths by its head-width factor; every ratio, the temperature, the draws and the loss weights as
    they are. The glance and focus frames follow the preset's frames (scaled by the shared rule)."""
    return dataclasses.replace(
        p,
        epochs=rule.epochs_of(p.epochs),
        batch_size=rule.batch_of(p.batch_size),
        lr=rule.sgd_lr(p.lr),
        spatial_hidden=_scaled(p.spatial_hidden, rule.head_width),
        temporal_hidden=_scaled(p.temporal_hidden, rule.head_width),
    )


def _scaled(n: int, factor: float) -> int:
    return max(1, int(round(n * factor)))


def segments(preset: Any) -> Tuple[int, int, int]:
    """(S, Tg, Tf): the clip's segments (the preset's ``frames``), the glance and the focus frames."""
    hp, s = preset.train, preset.frames
    default = max(2, s // SEGMENTS_PER_GLANCE)  # at least 2: the classifier's BatchNorm needs two frames
    return s, hp.glance_segments or default, hp.focus_segments or default


def with_epochs(p: UniParams, epochs: int) -> UniParams:
    return dataclasses.replace(p, epochs=epochs)


def arch(d: Mapping[str, Any], preset_name: str, variant: str, arch_name: str) -> Dict[str, Any]:
    """Uni's parts: its own policies, scaled crop and two-branch classifier (built by ``adafocus_uni.build``);
    f_G, f_L, the classifier's width and dropout are the shared ones with either arch. The clip has 3 segments
    per glance frame (48 for the paper's 16), in time order."""
    frames = d.get("frames", 16) * SEGMENTS_PER_GLANCE
    return dict(
        policy_head="sigmoid", crop="interp", policy_value_head=False, frames=frames, frame_order="time"
    )


def regime(p: Any) -> Dict[str, Dict[str, float]]:
    """Uni's part of the scale model's table (bench.regime): its epochs and per-module SGD lrs."""
    hp = p.train
    ratios = {"f_L": hp.focus_lr_ratio, "f_G": hp.glance_lr_ratio, "f_C": hp.classifier_lr_ratio}
    return {
        "epochs": {"training": hp.epochs},
        "sgd_lr": {n: hp.lr * r / hp.batch_size for n, r in ratios.items()},
        "tuned": {"spatial lr ratio": hp.spatial_lr_ratio},
    }
