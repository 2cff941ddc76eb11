"""The four V1 stages: what each trains, what it freezes, and its hyper-parameters.

Every stage sets *each* module of the ``AdaFocusNet`` explicitly: trainable modules get
``requires_grad=True`` and train mode, all others ``requires_grad=False`` and eval mode (their
BatchNorm statistics and dropout stay fixed). Modules are named as in ``AdaFocusNet``:
``glance`` (f_G backbone + its head), ``focus`` (f_L backbone + its head), ``policy`` (pi),
``classifier`` (f_C).

| stage | trains | frozen (eval) | optimiser |
|---|---|---|---|
| 0 pretrain | glance, focus (each with its own head, whole frames) | policy, classifier | SGD + cosine |
| 1 random patches | focus backbone, classifier | glance, focus head, policy | SGD + cosine |
| 2 policy | policy (RL) | glance, focus, classifier | Adam |
| 3 fine-tune, ``paper`` | focus backbone (BatchNorm statistics frozen), classifier | glance, focus head, policy | SGD + cosine |
| 3 fine-tune, ``official`` | classifier | glance, focus, policy | SGD + cosine |

Stage 0 trains f_G and f_L in the same epochs (their losses do not interact: each backbone has
its own head and its own gradient), which costs the same as the original's two separate runs.

Stage 3 tunes f_L's weights but keeps its BatchNorm layers in eval mode, as the original keeps
f_L in eval mode in stage 3: pi was trained in stage 2 on f_L's features under the statistics of
stage 1, and re-estimating them on the policy's patches shifts those features under f_C and pi
(with the paper Sth-Sth preset's f_L lr of 0 it would be the only change stage 3 makes to f_L).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Tuple

from torch import nn

from bench.errors import UsageError

STAGE_NAMES = ("stage0", "stage1", "stage2", "stage3")
STAGE3_MODES = ("paper", "official")
_TOP = ("glance", "focus", "policy", "classifier")


@dataclass(frozen=True)
class StageSpec:
    """One stage: trainable module paths, epochs, lr per module path, batch size, AMP."""

    index: int
    name: str
    trainable: Tuple[str, ...]          # dotted module paths inside AdaFocusNet
    epochs: int
    lrs: Dict[str, float]               # module path -> lr (SGD stages); {"policy": lr} for stage 2
    batch_size: int
    amp: bool
    frozen_bn: Tuple[str, ...] = ()     # trainable paths whose BatchNorm layers stay in eval mode


def _scaled(epochs: int, scale: float) -> int:
    return max(1, int(round(epochs * scale)))


def stage_specs(preset: Any, stage3: str = "paper", epochs: int | None = None) -> Dict[int, StageSpec]:
    """The four stages from a V1 preset.

    ``epochs`` (``--epochs``) replaces the stage-1 epoch count and scales the other stages by the
    same factor (at least one epoch each). ``stage3``: ``paper`` (f_L + f_C, the paper's Table 1)
    or ``official`` (f_C only, what the released code does).
    """
    if stage3 not in STAGE3_MODES:
        raise UsageError(f"--stage3 {stage3!r}: expected one of {', '.join(STAGE3_MODES)}")
    p = preset
    scale = 1.0 if epochs is None else epochs / p.v1_stage1_epochs
    bs = p.v1_batch_size
    focus_body = "focus.backbone"
    s3_trainable = (focus_body, "classifier") if stage3 == "paper" else ("classifier",)
    s3_lrs = {"classifier": p.v1_stage3_fc_lr}
    if stage3 == "paper":
        s3_lrs[focus_body] = p.v1_stage3_backbone_lr
    return {
        0: StageSpec(0, "stage0", ("glance", "focus"), _scaled(p.v1_pretrain_epochs, scale),
                     {"glance": p.v1_pretrain_lr, "focus": p.v1_pretrain_lr}, bs, p.v1_amp),
        1: StageSpec(1, "stage1", (focus_body, "classifier"), _scaled(p.v1_stage1_epochs, scale),
                     {focus_body: p.v1_stage1_backbone_lr, "classifier": p.v1_stage1_fc_lr}, bs, p.v1_amp),
        2: StageSpec(2, "stage2", ("policy",), _scaled(p.v1_stage2_epochs, scale),
                     {"policy": p.policy_lr}, bs, False),
        3: StageSpec(3, "stage3", s3_trainable, _scaled(p.v1_stage3_epochs, scale), s3_lrs, bs, p.v1_amp,
                     frozen_bn=(focus_body,) if stage3 == "paper" else ()),
    }


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
            raise RuntimeError(f"{spec.name}: module '{name}' is in {'train' if module.training else 'eval'} "
                               f"mode, expected {'train' if want else 'eval'}")


def frozen_paths(spec: StageSpec) -> Tuple[str, ...]:
    """The top-level modules a stage leaves entirely untouched (for fingerprint checks)."""
    return tuple(m for m in _TOP if not any(t == m or t.startswith(m + ".") for t in spec.trainable))
