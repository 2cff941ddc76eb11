"""Presets: the single source of a run's hyper-parameters.

``get_preset(dataset, name="paper"|"tiny", *, method="v1"|"v2", arch="matched"|"paper", glance_arch=None,
**overrides)``. Paper values come from adafocus-facts.md (§1, §2.2, §2.3, §3.2); ``tiny`` presets are
small CPU-sized versions of the same structure.

``arch="matched"`` (for comparisons): V1 and V2 share glance, focus, policy trunk and classifier (V2's
own choices); only the method's parts differ (policy head, crop operator, training schedule).
``arch="paper"``: each paper's own architecture. Dataset facts (flip, layouts) live in ``bench.data``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import yaml

from bench.errors import UsageError

# Known class counts (used for FLOPs without data; at run time the dataset's own count wins).
# "synthetic" is the synthetic generator's default (bench.data.synthetic.SynthParams.classes; tested).
NUM_CLASSES: Dict[str, int] = {"actnet": 200, "fcvid": 239, "minik": 200, "sthv1": 174, "sthv2": 174,
                               "jester": 27, "synthetic": 6, "synthetic_video": 6}
# "frame": ActivityNet-like (same frames for glance and focus, per-frame locations, early exit);
# "video": Sth-Sth/Jester-like (8 glance + 12 focus frames, TSM, one location per video, TSN fusion).
VARIANT: Dict[str, str] = {"actnet": "frame", "fcvid": "frame", "minik": "frame", "synthetic": "frame",
                           "sthv1": "video", "sthv2": "video", "jester": "video", "synthetic_video": "video"}
PRESET_NAMES = ("paper", "tiny")
METHOD_NAMES = ("v1", "v2")
ARCH_NAMES = ("matched", "paper")
GLANCE_ARCHS = ("mbv2", "res50")


@dataclass(frozen=True, kw_only=True)
class Preset:
    # ---- identity
    dataset: str                       # dataset name (a key of NUM_CLASSES)
    name: str                          # "paper" | "tiny"
    method: str                        # "v1" | "v2": which method's parts (policy head, crop) are used
    arch: str                          # "matched" | "paper"
    num_classes: int                   # the dataset's known class count
    # ---- clips (read by the data layer's ClipSpec)
    variant: str                       # "frame" | "video" (see VARIANT)
    frames: int                        # focus frames T (also the glance frames in the frame variant)
    glance_frames: Optional[int]       # separate glance frames Tg (video variant), None = the focus frames
    input_size: int                    # side of the (square) frames given to the model
    resize: int                        # eval: short side resized to this, then centre crop input_size
    frame_order: str                   # "time" | "coarse2fine" (V2's order: every prefix spans the video)
    # ---- glance f_G and focus f_L
    glance_arch: str                   # user-facing glance choice: "mbv2" | "res50" | "tiny"
    glance_backbone: str               # backbone registry name for f_G
    glance_size: Optional[int]         # f_G input is the frame resized to this (None: the full frame)
    glance_antialias: bool = False     # antialiased resize (tiny: the synthetic patterns must blur away);
                                       # the papers' plain bilinear is what fvcore counts
    glance_align_corners: bool = True  # bilinear resize convention (the V2 code: True)
    glance_pretrained: Optional[str] = None   # None | "imagenet" | "textures" (tiny) | path to a state dict
    focus_backbone: str                # backbone registry name for f_L
    focus_pretrained: Optional[str] = None    # None | "imagenet" | "textures" (tiny) | path
    patch_size: int                    # P: side of the patch f_L sees
    shift_div: int = 8                 # TSM: 1/shift_div of the channels shift each way
    crop: str                          # "interp" (bilinear, differentiable) | "hard" (integer offsets)
    # ---- policy pi
    policy_type: str                   # "recurrent" (per frame, GRU over T) | "video" (one decision per video)
    policy_head: str                   # "categorical" | "gaussian" | "sigmoid"
    policy_hidden: Tuple[int, ...]     # recurrent: (GRU hidden,); video: MLP widths
    policy_conv_channels: int          # 1x1 conv channels on the glance map
    policy_norm: bool                  # BatchNorm after the conv and each linear
    policy_act: str                    # "tanh" | "relu"
    policy_gru: bool = False           # video policy: a one-step GRU after the MLP (V1 Sth-Sth actor-critic)
    grid_n: int                        # categorical head: n x n candidate locations (n*n actions)
    action_std: float = 0.25           # gaussian head: fixed std of each coordinate
    # ---- classifier f_C and auxiliary heads
    classifier: str                    # "pooling" (V2) | "gru" (V1) | "tsn" (video variant)
    classifier_hidden: int             # pooling MLP width or GRU hidden (unused by "tsn")
    classifier_shared_head: bool = False  # GRU classifier: one fc for all steps (V1 code) vs one per step
    tsn_detach: bool = False           # TSN: fused heads on detached features (V2 Sth-Sth)
    dropout: float                     # before the classifier heads
    fc_dropout: float                  # before the auxiliary per-frame heads on f_G and f_L
    # ---- V2 training (one stage, SGD + cosine)
    epochs: int                        # V2 epochs
    batch_size: int                    # V2 batch
    lr: float                          # base lr (f_L); the others scale it by their ratio
    momentum: float = 0.9
    weight_decay: float                # SGD weight decay (both methods' SGD stages)
    glance_lr_ratio: float             # f_G and its head
    policy_lr_ratio: float             # pi
    classifier_lr_ratio: float         # f_C
    focus_lr_ratio: float = 1.0        # f_L and its head
    grad_clip: Optional[float]         # max grad norm, None = no clipping
    amp: bool = False                  # mixed precision on CUDA (V2 code: off)
    # ---- V1 training (stage 0 pre-training of f_G and f_L, then stages 1-3)
    v1_batch_size: int
    v1_pretrain_epochs: int            # stage 0, each of f_G and f_L (on full frames)
    v1_pretrain_lr: float
    v1_stage1_epochs: int              # f_L + f_C on random patches
    v1_stage1_backbone_lr: float
    v1_stage1_fc_lr: float
    v1_stage2_epochs: int              # pi with RL, everything else frozen
    v1_stage3_epochs: int              # fine-tune (f_L +) f_C with the learned policy
    v1_stage3_backbone_lr: float       # used when stage 3 also tunes f_L (the paper's description)
    v1_stage3_fc_lr: float
    v1_amp: bool = True                # V1 code: AMP on in stages 0-1
    # ---- V1 reinforcement learning (stage 2)
    rl_algorithm: str = "ppo"          # "ppo" | "reinforce"
    policy_lr: float = 3e-4            # Adam lr of pi
    gamma: float = 0.7                 # discount over steps
    ppo_clip: float = 0.2              # clipped surrogate epsilon
    ppo_epochs: int = 1                # PPO updates per batch
    value_weight: float = 0.5          # critic MSE weight
    entropy_weight: float = 0.01       # entropy bonus weight
    reward: str = "random"             # "random" | "prev" | "conf"

    def to_dict(self) -> Dict[str, Any]:
        d = dataclasses.asdict(self)
        d["policy_hidden"] = list(self.policy_hidden)
        return d

    @property
    def steps(self) -> int:
        """Classifier steps: T in the frame variant (early exit), 1 in the video variant."""
        return self.frames if self.variant == "frame" else 1


# ----------------------------------------------------------------------------- paper values
def _frame_paper(dataset: str, method: str, arch: str) -> Dict[str, Any]:
    """ActivityNet / FCVID / Mini-Kinetics (facts §1.2, §1.4, §2.2, §3.2)."""
    minik = dataset == "minik"
    d = dict(variant="frame", frames=16, glance_frames=None, input_size=224, resize=256,
             frame_order="coarse2fine", glance_arch="mbv2", glance_backbone="mbv2", glance_size=None,
             focus_backbone="res50", patch_size=128,
             policy_type="recurrent", policy_hidden=(2048,), policy_conv_channels=64, policy_norm=True,
             policy_act="tanh", grid_n=7, classifier="pooling", classifier_hidden=4096,
             dropout=0.2, fc_dropout=0.2,
             epochs=50, batch_size=48 if minik else 32, lr=0.003 if minik else 0.002, weight_decay=1e-4,
             glance_lr_ratio=0.5, policy_lr_ratio=0.1, classifier_lr_ratio=5.0, grad_clip=None,
             v1_batch_size=64, v1_pretrain_epochs=15, v1_pretrain_lr=0.01, v1_stage1_epochs=50,
             v1_stage1_backbone_lr=0.0005, v1_stage1_fc_lr=0.05, v1_stage2_epochs=50, v1_stage3_epochs=10,
             v1_stage3_backbone_lr=0.00005,  # not published (the code tunes f_C only); stage-1 ratio 1:100
             v1_stage3_fc_lr=0.005)
    if arch == "paper" and method == "v1":
        d.update(frame_order="time", policy_hidden=(1024,), policy_conv_channels=32, policy_norm=False,
                 policy_act="relu", classifier="gru", classifier_hidden=1024, classifier_shared_head=True,
                 dropout=0.8)
    return d


def _video_paper(dataset: str, method: str, arch: str) -> Dict[str, Any]:
    """Something-Something V1/V2 and Jester (facts §1.3, §1.5, §2.3, §3.2)."""
    d = dict(variant="video", frames=12, glance_frames=8, input_size=224, resize=256, frame_order="time",
             glance_arch="mbv2", glance_backbone="tsm_mbv2", glance_size=None, focus_backbone="tsm_res50",
             patch_size=128,
             policy_type="video", policy_hidden=(1024, 512), policy_conv_channels=64, policy_norm=True,
             policy_act="tanh", grid_n=7, classifier="tsn", classifier_hidden=0, tsn_detach=True,
             dropout=0.5, fc_dropout=0.5,
             epochs=50, batch_size=32, lr=0.01, weight_decay=5e-4, glance_lr_ratio=0.5, policy_lr_ratio=0.01,
             classifier_lr_ratio=1.0, grad_clip=20.0,
             v1_batch_size=64, v1_pretrain_epochs=50, v1_pretrain_lr=0.01, v1_stage1_epochs=10,
             v1_stage1_backbone_lr=0.00001, v1_stage1_fc_lr=0.01, v1_stage2_epochs=50, v1_stage3_epochs=10,
             v1_stage3_backbone_lr=0.0, v1_stage3_fc_lr=0.0005)
    if method == "v1":
        d.update(tsn_detach=False)
    if arch == "paper" and method == "v1":
        d.update(policy_hidden=(1024,), policy_act="relu", policy_gru=True)
    return d


# ----------------------------------------------------------------------------- tiny values
def _tiny(dataset: str, method: str, arch: str) -> Dict[str, Any]:
    """CPU-sized: 64x64 frames, tiny CNNs (glance on 16x16, focus on a 24x24 patch), hidden 128."""
    frame = VARIANT[dataset] == "frame"
    d = dict(variant=VARIANT[dataset], frames=8 if frame else 6, glance_frames=None if frame else 4,
             input_size=64, resize=64, frame_order="coarse2fine" if frame else "time",
             glance_arch="tiny", glance_backbone="tiny" if frame else "tiny_tsm", glance_size=16,
             glance_antialias=True, glance_align_corners=False,
             # stand-in for the papers' ImageNet start of f_L (bench.models.pretrain), the same for V1 and V2;
             # f_G stays random: texture weights on the 16x16 glance made V2's policy worse (learned < random)
             focus_pretrained="textures",
             focus_backbone="tiny" if frame else "tiny_tsm", patch_size=24,
             policy_type="recurrent" if frame else "video", policy_hidden=(128,) if frame else (128, 64),
             policy_conv_channels=32, policy_norm=True, policy_act="tanh", grid_n=5,
             classifier="pooling" if frame else "tsn", classifier_hidden=128, tsn_detach=not frame,
             dropout=0.2, fc_dropout=0.2,
             epochs=20, batch_size=32, lr=0.02, weight_decay=1e-4 if frame else 5e-4,
             glance_lr_ratio=0.5, policy_lr_ratio=0.1 if frame else 0.01,
             classifier_lr_ratio=5.0 if frame else 1.0, grad_clip=None if frame else 20.0,
             # V1 tiny (tuned on the synthetic benchmark v3 with the texture start): stage-1 val accuracy on
             # random patches plateaus by epoch ~5; with Adam 3e-4 the policy barely moves in 240 updates.
             # Video variant: stage 0 gets V2's epochs, as in the paper preset (TSM pre-training 50 = V2's 50):
             # f_G is never trained after it, and the TSM backbones sit on a plateau for ~6-10 epochs (issue 15)
             v1_batch_size=32, v1_pretrain_epochs=6 if frame else 20, v1_pretrain_lr=0.05, v1_stage1_epochs=8,
             v1_stage1_backbone_lr=0.01, v1_stage1_fc_lr=0.05, v1_stage2_epochs=10, v1_stage3_epochs=3,
             v1_stage3_backbone_lr=0.001, v1_stage3_fc_lr=0.005, policy_lr=2e-3)
    if method == "v1" and not frame:
        d.update(tsn_detach=False)
    if arch == "paper" and method == "v1":
        d.update(frame_order="time" if frame else "time", policy_act="relu")
        if frame:
            d.update(policy_conv_channels=16, policy_norm=False, classifier="gru", classifier_shared_head=True,
                     dropout=0.5)
        else:
            d.update(policy_hidden=(128,), policy_gru=True)
    return d


def _method_parts(variant: str, method: str) -> Dict[str, Any]:
    """What belongs to the method, not the architecture: policy head and crop operator."""
    if method == "v2":
        return dict(policy_head="sigmoid", crop="interp")
    # V1: a discrete grid per frame (ActivityNet code); continuous Gaussian PPO per video (Sth-Sth scripts)
    return dict(policy_head="categorical" if variant == "frame" else "gaussian", crop="hard")


def _glance(d: Dict[str, Any], glance_arch: str) -> None:
    """Switch the paper glance to the 96x96 ResNet-50 ("res50 glance")."""
    if glance_arch == "res50":
        d.update(glance_arch="res50", glance_size=96,
                 glance_backbone="res50" if d["variant"] == "frame" else "tsm_res50")


def _coerce(name: str, value: Any, current: Any) -> Any:
    """Overrides given as strings on the command line (``key=value``) take the field's type."""
    if isinstance(value, str) and not isinstance(current, str):
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError:
            raise UsageError(f"preset override {name}={value!r}: cannot parse the value") from None
    if isinstance(current, tuple) and isinstance(value, (list, tuple, int)):
        value = tuple(value) if isinstance(value, (list, tuple)) else (value,)
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(current, float) and isinstance(value, str):  # YAML 1.1 reads "3e-3" as a string
        try:
            value = float(value)
        except ValueError:
            pass
    if current is not None and value is not None and type(value) is not type(current):
        raise UsageError(f"preset override {name}={value!r}: expected {type(current).__name__}")
    return value


def _choice(what: str, value: str, allowed: Tuple[str, ...]) -> None:
    if value not in allowed:
        raise UsageError(f"unknown {what} {value!r}; expected one of: {', '.join(allowed)}")


def get_preset(dataset: str, name: str = "paper", *, method: str = "v2", arch: str = "matched",
               glance_arch: Optional[str] = None, **overrides: Any) -> Preset:
    """Resolve a preset. ``glance_arch`` ("mbv2" | "res50") applies to paper presets; ``overrides``
    replace any Preset field (strings are parsed as YAML values, e.g. ``patch_size="96"``)."""
    _choice("dataset", dataset, tuple(NUM_CLASSES))
    _choice("preset", name, PRESET_NAMES)
    _choice("method", method, METHOD_NAMES)
    _choice("arch", arch, ARCH_NAMES)
    if name == "tiny":
        if glance_arch not in (None, "tiny"):
            raise UsageError(f"--glance-arch {glance_arch} applies to paper presets; the tiny preset uses the tiny CNN")
        d = _tiny(dataset, method, arch)
    else:
        d = (_frame_paper if VARIANT[dataset] == "frame" else _video_paper)(dataset, method, arch)
        if glance_arch is not None:
            _choice("glance arch", glance_arch, GLANCE_ARCHS)
            _glance(d, glance_arch)
    d.update(_method_parts(d["variant"], method))
    preset = Preset(dataset=dataset, name=name, method=method, arch=arch, num_classes=NUM_CLASSES[dataset], **d)
    fields = {f.name for f in dataclasses.fields(Preset)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise UsageError(f"unknown preset field(s): {', '.join(unknown)}")
    changes = {k: _coerce(k, v, getattr(preset, k)) for k, v in overrides.items() if v is not None}
    preset = dataclasses.replace(preset, **changes)
    _validate(preset)
    return preset


# counts a --set override must keep >= 1 (0 or less would fail deep inside training with a traceback)
POSITIVE_FIELDS = ("frames", "input_size", "resize", "epochs", "batch_size", "v1_batch_size", "v1_pretrain_epochs",
                   "v1_stage1_epochs", "v1_stage2_epochs", "v1_stage3_epochs", "ppo_epochs")


def _validate(p: Preset) -> None:
    bad = [f"{k}={getattr(p, k)}" for k in POSITIVE_FIELDS if getattr(p, k) < 1]
    if p.glance_frames is not None and p.glance_frames < 1:
        bad.append(f"glance_frames={p.glance_frames}")
    if bad:
        raise UsageError(f"preset field(s) {', '.join(bad)}: expected a positive integer")
    for k in ("dropout", "fc_dropout"):
        if not 0.0 <= getattr(p, k) < 1.0:
            raise UsageError(f"preset field {k}={getattr(p, k)}: expected a probability in [0, 1)")
    if not 0 < p.patch_size <= p.input_size:
        raise UsageError(f"patch size {p.patch_size} must be in 1..{p.input_size} (the frame size)")
    if p.policy_head == "categorical" and p.grid_n < 2:
        raise UsageError(f"grid_n must be >= 2, got {p.grid_n}")
