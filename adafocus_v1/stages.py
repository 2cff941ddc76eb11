"""The four V1 stages: what each trains, what it freezes, and its hyper-parameters.

Every stage sets *each* module of the ``AdaFocusNet`` explicitly: trainable modules get
``requires_grad=True`` and train mode, all others ``requires_grad=False`` and eval mode (their
BatchNorm statistics and dropout stay fixed). Modules are named as in ``AdaFocusNet``:
``glance`` (f_G backbone + its head), ``focus`` (f_L backbone + its head), ``policy`` (pi),
``classifier`` (f_C).

| stage | trains | frozen (eval) | optimiser |
|---|---|---|---|
| 0 pretrain | glance, focus (each with its own head, whole frames) | policy, classifier | SGD |
| 1 random patches | focus backbone, classifier | glance, focus head, policy | SGD |
| 2 policy | policy (RL) | glance, focus, classifier | Adam |
| 3 fine-tune, ``paper`` | focus backbone (BatchNorm frozen), classifier | glance, focus head, policy | SGD |
| 3 fine-tune, ``official`` | classifier | glance, focus, policy | SGD |

(SGD stages use the cosine schedule.)

Stage 0 trains f_G and f_L in the same epochs (their losses do not interact: each backbone has
its own head and its own gradient), which costs the same as the original's two separate runs.

As in the official code: in stage 3 f_L stays frozen (eval mode, so its BatchNorm statistics do not
drift) when its learning rate is 0, whatever the mode (the Sth-Sth scripts' ``backbone_lr=0``). In the
video variant (Sth-Sth/Jester) the glance half of the fused prediction is f_G's own head from stage 0,
frozen (the official fusion adds the frozen glancer's classifier logits): stages 1-3 train only the
focus half (``classifier.focus_fc``), and ``tie_fused_glance`` copies f_G's head into the glance half.
When f_L does train in stage 3 (``--stage3 paper`` with a learning rate above 0), its BatchNorm layers
stay in eval mode, as the original keeps f_L in eval mode in stage 3: pi was trained in stage 2 on f_L's
features under the statistics of stage 1, and re-estimating them on the policy's patches shifts those
features under f_C and pi.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, Tuple, cast

import torch
from torch import nn

if TYPE_CHECKING:
    from bench.models.classifiers import TSNAverage
    from bench.models.network import GlanceNet

STAGE_NAMES = ("stage0", "stage1", "stage2", "stage3")
_TOP = ("glance", "focus", "policy", "classifier")


@dataclass(frozen=True)
class StageSpec:
    """One stage as data: what it trains, with what and on which loss, and how the driver scores it
    (``adafocus_v1.method`` turns each into a ``bench.training.driver.Stage`` without looking at its
    index)."""

    index: int
    name: str
    trainable: Tuple[str, ...]  # dotted module paths inside AdaFocusNet
    epochs: int
    lrs: Dict[str, float]  # module path -> lr (SGD stages); {"policy": lr} for stage 2
    frozen_bn: Tuple[str, ...] = ()  # trainable paths whose BatchNorm layers stay in eval mode
    loss: str = "supervised"  # a key of adafocus_v1.method.STEPS: "pretrain", "patches", "finetune", "rl"
    optimizer: str = "sgd"  # "sgd": with the preset's momentum, weight decay, cosine and gradient
    # clipping; "adam": the RL policy's (constant lr, no clipping)
    curve_modes: Tuple[str, ...] = ("policy",)  # patch modes of its learning-curve points; (): no curve
    end_eval: bool = False  # the full learned/random/centre evaluation when it ends
    glance_frozen: bool = True  # f_G is frozen: its head is copied into the fused classifier (video)


def stage_specs(hp: Any, variant: str = "frame") -> Dict[int, StageSpec]:
    """The four stages from V1's hyper-parameters (``adafocus_v1.params.V1Params``).

    ``hp.stage3``: ``paper`` (f_L + f_C, the paper's Table 1) or ``official`` (f_C only, what the released
    code does); f_L stays frozen when ``hp.stage3_backbone_lr`` is 0. ``variant`` "video": f_C is the focus
    half of the fused classifier only (the glance half is f_G's frozen head).
    """
    focus_body = "focus.backbone"
    fc = "classifier.focus_fc" if variant == "video" else "classifier"
    tune_focus = hp.stage3 == "paper" and hp.stage3_backbone_lr > 0
    s3_trainable = (focus_body, fc) if tune_focus else (fc,)
    s3_lrs = {fc: hp.stage3_fc_lr, **({focus_body: hp.stage3_backbone_lr} if tune_focus else {})}
    # focus.feature_dropout (no parameters): the dropout on f_L's features before f_C trains with f_L in stage
    # 1 stages 1 and 2 also score random patches on the learning curve: what stage 2's policy must beat
    return {
        0: StageSpec(
            0,
            "stage0",
            ("glance", "focus"),
            hp.pretrain_epochs,
            {"glance": hp.pretrain_lr, "focus": hp.pretrain_lr},
            loss="pretrain",
            curve_modes=(),
            glance_frozen=False,
        ),  # no classifier yet: no curve
        1: StageSpec(
            1,
            "stage1",
            (focus_body, "focus.feature_dropout", fc),
            hp.stage1_epochs,
            {focus_body: hp.stage1_backbone_lr, fc: hp.stage1_fc_lr},
            loss="patches",
            curve_modes=("policy", "random"),
        ),
        2: StageSpec(
            2,
            "stage2",
            ("policy",),
            hp.stage2_epochs,
            {"policy": hp.policy_lr},
            loss="rl",
            optimizer="adam",
            curve_modes=("policy", "random"),
            end_eval=True,
        ),
        3: StageSpec(
            3,
            "stage3",
            s3_trainable,
            hp.stage3_epochs,
            s3_lrs,
            frozen_bn=(focus_body,) if tune_focus else (),
            loss="finetune",
        ),
    }


def tie_fused_glance(net: nn.Module) -> None:
    """Video variant: the fused classifier's glance half := f_G's own head (frozen after stage 0)."""
    if getattr(net, "variant", None) == "video":
        classifier, glance = cast("TSNAverage", net.classifier), cast("GlanceNet", net.glance)
        with torch.no_grad():
            classifier.glance_fc.load_state_dict(glance.head.state_dict())


def _is_under(name: str, paths: Tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in paths)


def _wants_train(name: str, module: nn.Module, spec: StageSpec) -> bool:
    if not name or not _is_under(name, spec.trainable):
        return False
    return not (isinstance(module, nn.modules.batchnorm._BatchNorm) and _is_under(name, spec.frozen_bn))


def apply_stage_modes(net: nn.Module, spec: StageSpec) -> None:
    """Set every parameter's ``requires_grad`` and every module's train/eval mode for ``spec``.

    A module is in train mode iff it lies inside a trainable path (BatchNorm layers under a
    ``frozen_bn`` path excepted: their weights train, their statistics stay); containers above a
    trainable path (e.g. ``focus`` when only ``focus.backbone`` trains) are in eval mode, which only
    affects their own frozen children.
    """
    for name, param in net.named_parameters():
        param.requires_grad_(_is_under(name, spec.trainable))
    for name, module in net.named_modules():
        module.train(_wants_train(name, module, spec))


def check_stage_modes(net: nn.Module, spec: StageSpec) -> None:
    """Assert ``apply_stage_modes`` still holds (a stray ``net.train()`` would break frozen BN)."""
    for name, module in net.named_modules():
        want = _wants_train(name, module, spec)
        if module.training != want:
            raise RuntimeError(
                f"{spec.name}: module '{name}' is in {'train' if module.training else 'eval'} "
                f"mode, expected {'train' if want else 'eval'}"
            )
