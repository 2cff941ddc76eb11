"""Loop pieces every method's stages share: parameter groups by name with lr ratios, SGD + per-epoch
cosine, gradient clipping, the NaN guard, freezing, and a fingerprint to prove frozen
modules stay untouched. Autocast and loss scaling live in ``bench.training.precision``.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Iterable, List, Mapping, Optional, Union

import torch
from torch import nn

from bench.errors import TrainingDivergedError
from bench.training.checkpoint import unwrap


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def param_groups_by_name(
    model: nn.Module, ratios: Mapping[str, float], base_lr: float, weight_decay: float
) -> List[Dict[str, Any]]:
    """SGD parameter groups with ``lr = base_lr * ratio`` chosen by parameter-name prefix.

    A prefix matches a module path (``"policy"`` matches ``policy.gru.weight_ih_l0``, not
    ``policy_head.w``); the longest matching prefix wins, and unmatched parameters get ratio
    1.0 in a group named ``"rest"``. Only trainable parameters are grouped, each exactly once.
    A prefix that matches no parameter at all (trainable or not) is a typo and raises
    ``ValueError``. Each group carries ``name`` and ``lr_ratio`` for logging.
    """
    named = list(unwrap(model).named_parameters())
    unknown = [p for p in ratios if not any(_matches(n, p) for n, _ in named)]
    if unknown:
        raise ValueError(f"lr ratio prefixes match no parameter: {', '.join(unknown)}")
    by_length = sorted(ratios, key=len, reverse=True)
    groups: Dict[str, List[nn.Parameter]] = {}
    for name, param in named:
        if param.requires_grad:
            key = next((p for p in by_length if _matches(name, p)), "rest")
            groups.setdefault(key, []).append(param)
    return [
        {
            "params": params,
            "name": key,
            "lr_ratio": float(ratios.get(key, 1.0)),
            "lr": base_lr * float(ratios.get(key, 1.0)),
            "weight_decay": weight_decay,
        }
        for key, params in groups.items()
    ]


def make_sgd(
    model: nn.Module,
    *,
    base_lr: float,
    weight_decay: float,
    ratios: Optional[Mapping[str, float]] = None,
    momentum: float = 0.9,
    nesterov: bool = False,
) -> torch.optim.SGD:
    """SGD over ``param_groups_by_name(model, ratios, ...)`` (both papers: momentum 0.9)."""
    groups = param_groups_by_name(model, ratios or {}, base_lr, weight_decay)
    if not groups:
        raise ValueError("no trainable parameters to optimise")
    return torch.optim.SGD(
        groups, lr=base_lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov
    )


class CosineFactor:
    """lr factor of epoch ``e`` in [0, epochs): 0.5 * (1 + cos(pi * e / epochs)).

    A class, not a lambda, so ``LambdaLR.state_dict`` stores it as plain data.
    """

    def __init__(self, epochs: int) -> None:
        self.epochs = int(epochs)

    def __call__(self, epoch: int) -> float:
        return 0.5 * (1.0 + math.cos(math.pi * min(epoch, self.epochs) / self.epochs))


def cosine_schedule(optimizer: torch.optim.Optimizer, epochs: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-epoch cosine over exactly ``epochs`` epochs: call ``.step()`` once after each epoch.

    Epoch 0 trains at the full lr and epoch ``epochs - 1`` at a small positive lr; there is
    no extra epoch at lr 0 (the official V1/V2a loops run ``epochs + 1`` times). Every group
    keeps its own ratio because the factor multiplies each group's initial lr.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    return torch.optim.lr_scheduler.LambdaLR(optimizer, CosineFactor(epochs))


def clip_gradients(params: Iterable[torch.nn.Parameter], max_norm: Optional[float]) -> Optional[torch.Tensor]:
    """Clip the global gradient norm to ``max_norm`` (``None``: no clipping, returns None).

    With AMP call ``scaler.unscale_(optimizer)`` first so the norm is in real units.
    Returns the norm before clipping as a tensor (not read here: reading it would synchronise).
    """
    if max_norm is None:
        return None
    grads = [p for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.nn.utils.clip_grad_norm_(grads, max_norm)


def check_finite(loss: Union[torch.Tensor, float], where: str) -> None:
    """Raise ``TrainingDivergedError`` if ``loss`` is NaN or inf. ``where`` says when, e.g.
    ``"stage 2, epoch 3, step 17"``. Reads the value, so on CUDA it synchronises: call it
    where the loop already reads the loss for logging."""
    value = float(loss.detach().float().sum()) if isinstance(loss, torch.Tensor) else float(loss)
    if not math.isfinite(value):
        raise TrainingDivergedError(
            f"training diverged: loss is {value} at {where}; the last good checkpoint is kept. "
            "Try a lower learning rate or --precision fp32"
        )


def check_finite_params(module: nn.Module, where: str) -> None:
    """Raise ``TrainingDivergedError`` if a parameter of ``module`` holds NaN or inf: call it before
    writing a checkpoint, so the last checkpoint on disk is always a good one (the loss can still
    be finite in the step whose update overflows). One reduction per tensor, once per epoch."""
    for name, p in unwrap(module).named_parameters():
        if not bool(torch.isfinite(p.detach()).all()):
            raise TrainingDivergedError(
                f"training diverged: parameter {name} is not finite after {where}; the last good checkpoint "
                "is kept. Try a lower learning rate or --precision fp32"
            )


def set_trainable(module: nn.Module, flag: bool) -> nn.Module:
    """``requires_grad`` on every parameter of ``module``."""
    for p in module.parameters():
        p.requires_grad_(flag)
    return module


def set_mode(module: nn.Module, train: bool) -> nn.Module:
    """``module.train(train)``: call it *after* the parent's ``.train()``, which would
    otherwise switch a frozen part's BatchNorm and dropout back to training behaviour."""
    return module.train(train)
