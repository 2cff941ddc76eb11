"""Presets: the single source of a run's hyper-parameters.

``get_preset(dataset, name="paper"|"tiny", *, method, arch="matched"|"paper", glance_arch=None,
epochs_option=None, **overrides)``. A ``Preset`` holds what every method shares (clips, glance f_G, focus f_L,
policy trunk, classifier f_C, the SGD settings both papers use) and, in ``train``, the method's own
hyper-parameters (a dataclass its registry entry supplies). Paper values come from adafocus-facts.md (§1,
§2.2, §2.3, §3.2); ``tiny`` presets are derived from the paper preset of their variant by one rule
(``bench.scale``).

``arch="matched"`` (for comparisons): every method gets the same glance, focus, policy trunk and
classifier; only the method's parts differ (policy head, crop operator, value head, training). With
``arch="paper"`` the method's entry also applies its paper's own architecture. Dataset facts (class count,
frame/video variant) come from the dataset registry.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import yaml

from bench.errors import UsageError
from bench.scale import derive_fields

PRESET_NAMES = ("paper", "tiny")
ARCH_NAMES = ("matched", "paper")
GLANCE_ARCHS = ("mbv2", "res50")
FLOAT32_MAX = 3.4028234663852886e38


@dataclass(frozen=True, kw_only=True)
class Preset:
    # ---- identity
    dataset: str  # registered dataset name
    name: str  # "paper" | "tiny"
    method: str  # registered method name: whose parts and training
    arch: str  # "matched" | "paper"
    num_classes: int  # the dataset's known class count
    # ---- clips (read by the data layer's ClipSpec)
    variant: str  # "frame" (ActivityNet-like) | "video" (Sth-Sth/Jester-like)
    frames: int  # focus frames T (also the glance frames in the frame variant)
    glance_frames: Optional[int]  # separate glance frames Tg (video variant), None = the focus frames
    input_size: int  # side of the (square) frames given to the model
    resize: int  # eval: short side resized to this, then centre crop input_size
    frame_order: str  # "time" | "coarse2fine" (every prefix spans the video)
    # ---- glance f_G and focus f_L
    glance_arch: str  # user-facing glance choice: "mbv2" | "res50" | "tiny"
    glance_backbone: str  # backbone registry name for f_G
    glance_size: Optional[int]  # f_G input is the frame resized to this (None: the full frame)
    glance_antialias: bool = False  # antialiased resize (tiny: the synthetic patterns must blur away);
    # the papers' plain bilinear is what fvcore counts
    glance_align_corners: bool = True  # bilinear resize convention (the V2 code: True)
    glance_pretrained: Optional[str] = None  # None | "imagenet" | "textures" (tiny) | path to a state dict
    glance_width: float = 1.0  # f_G's channel multiplier (tiny: solved to keep the paper's FLOPs ratio)
    focus_backbone: str  # backbone registry name for f_L
    focus_pretrained: Optional[str] = None  # None | "imagenet" | "textures" (tiny) | path
    patch_size: int  # P: side of the patch f_L sees
    shift_div: int = 8  # TSM: 1/shift_div of the channels shift each way
    crop: str  # "interp" (bilinear, differentiable) | "hard" (integer offsets)
    # ---- policy pi
    policy_type: str  # "recurrent" (per frame, GRU over T) | "video" (one decision per video)
    policy_head: str  # "categorical" | "gaussian" | "sigmoid"
    policy_hidden: Tuple[int, ...]  # recurrent: (GRU hidden,); video: MLP widths
    policy_conv_channels: int  # 1x1 conv channels on the glance map
    policy_norm: bool  # BatchNorm after the conv and each linear
    policy_act: str  # "tanh" | "relu"
    policy_gru: bool = False  # video policy: a one-step GRU after the MLP
    policy_value_head: bool = False  # a critic head (actor-critic RL)
    grid_n: int  # categorical head: n x n candidate locations (n*n actions)
    action_std: float = 0.25  # gaussian head: fixed std of each coordinate
    # ---- classifier f_C and auxiliary heads
    classifier: str  # "pooling" | "gru" | "tsn" (video variant)
    classifier_hidden: int  # pooling MLP width or GRU hidden (unused by "tsn")
    classifier_shared_head: bool = False  # GRU classifier: one fc for all steps vs one per step
    tsn_detach: bool = False  # TSN: fused heads on detached features
    dropout: float  # before the classifier heads
    fc_dropout: float  # before the auxiliary per-frame heads on f_G and f_L
    focus_fc_dropout: Optional[float] = None  # f_L's auxiliary head only (None: fc_dropout)
    feature_dropout: float = 0.0  # on f_G's and f_L's pooled features, one mask for every head reading them
    # (TSN: the fused and the auxiliary head share it)
    head_init_std: Optional[float] = (
        None  # auxiliary and fused heads: weight ~ N(0, std), bias 0 (TSN's init;
    )
    # None: nn.Linear's default)
    # ---- SGD settings every method's SGD stages use
    momentum: float = 0.9
    weight_decay: float
    grad_clip: Optional[float]  # max grad norm, None = no clipping
    # ---- the method's own hyper-parameters (its registry entry's dataclass)
    train: Any

    def to_dict(self) -> Dict[str, Any]:
        d = dataclasses.asdict(self)
        d["policy_hidden"] = list(self.policy_hidden)
        return d

    @property
    def steps(self) -> int:
        """Classifier steps: T in the frame variant (early exit), 1 in the video variant."""
        return self.frames if self.variant == "frame" else 1

    @property
    def batch_size(self) -> int:
        """Training batch per process (the method's)."""
        return int(self.train.batch_size)


# ----------------------------------------------------------------------------- shared values
# Both papers start glance and focus from ImageNet weights (torchvision's IMAGENET1K_V1, downloaded once into
# torchvision's cache; offline the run stops with one line saying how to give a local file or none).
IMAGENET = dict(glance_pretrained="imagenet", focus_pretrained="imagenet")


def _frame_paper() -> Dict[str, Any]:
    """ActivityNet / FCVID / Mini-Kinetics (facts §1.2, §1.4)."""
    return dict(
        variant="frame",
        frames=16,
        glance_frames=None,
        input_size=224,
        resize=256,
        frame_order="coarse2fine",
        glance_arch="mbv2",
        glance_backbone="mbv2",
        glance_size=None,
        focus_backbone="res50",
        patch_size=128,
        **IMAGENET,
        policy_type="recurrent",
        policy_hidden=(2048,),
        policy_conv_channels=64,
        policy_norm=True,
        policy_act="tanh",
        grid_n=7,
        classifier="pooling",
        classifier_hidden=4096,
        dropout=0.2,
        fc_dropout=0.2,
        weight_decay=1e-4,
        grad_clip=None,
    )


def _video_paper() -> Dict[str, Any]:
    """Something-Something V1/V2 and Jester (facts §1.3, §1.5)."""
    return dict(
        variant="video",
        frames=12,
        glance_frames=8,
        input_size=224,
        resize=256,
        frame_order="time",
        glance_arch="mbv2",
        glance_backbone="tsm_mbv2",
        glance_size=None,
        focus_backbone="tsm_res50",
        patch_size=128,
        **IMAGENET,
        policy_type="video",
        policy_hidden=(1024, 512),
        policy_conv_channels=64,
        policy_norm=True,
        policy_act="tanh",
        grid_n=7,
        classifier="tsn",
        classifier_hidden=0,
        tsn_detach=True,
        # TSN: dropout 0.5 replaces the backbone's classifier, so the fused (new_fc) and auxiliary
        # (new_new_fc) heads read one dropped feature; both heads start at N(0, 0.001) (facts §1.5)
        dropout=0.0,
        fc_dropout=0.0,
        feature_dropout=0.5,
        head_init_std=0.001,
        weight_decay=5e-4,
        grad_clip=20.0,
    )


def paper_fields(variant: str, method: str, arch: str, glance_arch: Optional[str] = None) -> Dict[str, Any]:
    """The shared fields of the paper preset of ``variant`` as ``method`` uses them (its ``arch`` hook
    applied)."""
    from bench.methods import get_method

    d = _frame_paper() if variant == "frame" else _video_paper()
    if glance_arch is not None:
        _choice("glance arch", glance_arch, GLANCE_ARCHS)
        _glance(d, glance_arch)
    d.update(get_method(method).arch(dict(d), "paper", variant, arch))
    return d


def _glance(d: Dict[str, Any], glance_arch: str) -> None:
    """Switch the paper glance to the 96x96 ResNet-50 ("res50 glance")."""
    if glance_arch == "res50":
        d.update(
            glance_arch="res50",
            glance_size=96,
            glance_backbone="res50" if d["variant"] == "frame" else "tsm_res50",
        )


# ----------------------------------------------------------------------------- overrides
def _coerce(name: str, value: Any, current: Any) -> Any:
    """Overrides given as strings on the command line (``key=value``) take the field's type."""
    if isinstance(value, str) and not isinstance(current, str):
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError:
            raise UsageError(f"--set {name}={value!r}: cannot parse the value") from None
    if isinstance(current, tuple) and isinstance(value, (list, tuple, int)):
        value = tuple(value) if isinstance(value, (list, tuple)) else (value,)
    if isinstance(current, float) and isinstance(value, str):  # YAML 1.1 reads "3e-3" as a string
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if value is None and current is not None and not isinstance(current, str):
        raise UsageError(f"--set {name}=: expected a {type(current).__name__} value")
    if current is not None and value is not None and type(value) is not type(current):
        raise UsageError(f"--set {name}={value!r}: expected {type(current).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise UsageError(f"--set {name}={value}: expected a finite number")
    if isinstance(value, float) and abs(value) > FLOAT32_MAX:  # tensors and optimisers compute in float32
        raise UsageError(f"--set {name}={value}: out of range (at most {FLOAT32_MAX:.3g} in magnitude)")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**31:
        raise UsageError(f"--set {name}={value}: out of range (at most {2**31 - 1})")
    return value


def _choice(what: str, value: str, allowed: Tuple[str, ...]) -> None:
    if value not in allowed:
        raise UsageError(f"unknown {what} {value!r}; expected one of: {', '.join(allowed)}")


def field_names(dataclass_obj: Any) -> Tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(dataclass_obj))


def preset_keys(dataset: str, name: str, method: str, arch: str = "matched") -> Tuple[str, ...]:
    """Every key ``--set`` accepts for this method (shared fields and the method's own)."""
    p = get_preset(dataset, name, method=method, arch=arch)
    return tuple(k for k in field_names(Preset) if k != "train") + field_names(p.train)


def get_preset(
    dataset: str,
    name: str = "paper",
    *,
    method: str,
    arch: str = "matched",
    glance_arch: Optional[str] = None,
    epochs_option: Optional[int] = None,
    **overrides: Any,
) -> Preset:
    """Resolve a preset. ``glance_arch`` ("mbv2" | "res50") applies to paper presets; ``epochs_option`` is
    ``--epochs``'s value (the method decides how it applies); ``overrides`` replace any shared or method field
    by
    name (strings are parsed as YAML values, e.g. ``patch_size="96"``)."""
    from bench.data import dataset_info
    from bench.methods import get_method

    info = dataset_info(dataset)
    m = get_method(method)
    _choice("preset", name, PRESET_NAMES)
    _choice("arch", arch, ARCH_NAMES)
    if name == "tiny":
        if glance_arch not in (None, "tiny"):
            raise UsageError(
                f"--glance-arch {glance_arch} applies to paper presets; the tiny preset uses the tiny CNN"
            )
        d = derive_fields(paper_fields(info.variant, method, arch))
    else:
        d = paper_fields(info.variant, method, arch, glance_arch)
    train = m.params(name, info.variant, dataset)
    if epochs_option is not None:
        train = m.with_epochs(train, int(epochs_option))
    preset = Preset(
        dataset=dataset, name=name, method=method, arch=arch, num_classes=info.num_classes, train=train, **d
    )
    return apply_overrides(preset, overrides)


def apply_overrides(preset: Preset, overrides: Dict[str, Any]) -> Preset:
    """``preset`` with shared or method fields replaced (``--set``); unknown keys are a one-line error."""
    shared = set(field_names(Preset)) - {"train", "dataset", "name", "method", "arch"}
    own = set(field_names(preset.train))
    unknown = sorted(set(overrides) - shared - own)
    if unknown:
        raise UsageError(f"unknown preset field(s) for method {preset.method}: {', '.join(unknown)}")
    sets = {k: v for k, v in overrides.items()}
    train_changes = {k: _coerce(k, v, getattr(preset.train, k)) for k, v in sets.items() if k in own}
    changes = {k: _coerce(k, v, getattr(preset, k)) for k, v in sets.items() if k in shared and k not in own}
    try:
        train = dataclasses.replace(preset.train, **train_changes)
    except (TypeError, ValueError) as e:
        raise UsageError(f"--set: {e}") from None
    preset = dataclasses.replace(preset, train=train, **changes)
    _validate(preset)
    return preset


def _validate(p: Preset) -> None:
    bad = [f"{k}={getattr(p, k)}" for k in ("frames", "input_size", "resize") if getattr(p, k) < 1]
    if p.glance_frames is not None and p.glance_frames < 1:
        bad.append(f"glance_frames={p.glance_frames}")
    if bad:
        raise UsageError(f"preset field(s) {', '.join(bad)}: expected a positive integer")
    for k in ("dropout", "fc_dropout", "focus_fc_dropout", "feature_dropout"):
        if getattr(p, k) is not None and not 0.0 <= getattr(p, k) < 1.0:
            raise UsageError(f"preset field {k}={getattr(p, k)}: expected a probability in [0, 1)")
    if p.weight_decay < 0 or p.momentum < 0 or (p.grad_clip is not None and p.grad_clip <= 0):
        raise UsageError("preset fields weight_decay and momentum must be >= 0 and grad_clip > 0 (or null)")
    if not 0 < p.patch_size <= p.input_size:
        raise UsageError(f"patch size {p.patch_size} must be in 1..{p.input_size} (the frame size)")
    if p.head_init_std is not None and not p.head_init_std > 0:
        raise UsageError(f"preset field head_init_std={p.head_init_std}: expected a positive std (or null)")
    if p.policy_head == "categorical" and p.grid_n < 2:
        raise UsageError(f"grid_n must be >= 2, got {p.grid_n}")


def check_params(params: Any) -> None:
    """Shared checks for a method's hyper-parameter dataclass (call from its ``__post_init__``):
    epoch and batch counts >= 1, learning rates and ratios >= 0; one-line UsageError otherwise."""
    for f in dataclasses.fields(params):
        v = getattr(params, f.name)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        if (f.name.endswith("epochs") or f.name.endswith("batch_size")) and v < 1:
            raise UsageError(f"preset field {f.name}={v}: expected a positive integer")
        if ("lr" in f.name.split("_") or f.name.endswith("ratio")) and v < 0:
            raise UsageError(f"preset field {f.name}={v}: expected a learning rate >= 0")
