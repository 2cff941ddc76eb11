"""What a method hands the driver (``Stage``) and what the driver keeps across a restart (``TrainState``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import torch

from bench.training.timing import StageClock

Batch = Dict[str, torch.Tensor]
Update = Callable[[torch.Tensor], None]


@dataclass
class Stage:
    """One stage of a method's training, as the method describes it.

    prepare(): set every parameter's ``requires_grad`` and every module's train/eval mode (called at the
        start of the stage and before every epoch, since evaluation leaves the network in eval mode).
    optimizer(): built after ``prepare`` (only trainable parameters).
    step(batch, update) -> parts: one training step; calls ``update(loss)`` for each optimiser step and
        returns detached 0-dim tensors, ``loss`` (the total) among them. No ``.item()``/``float()`` here.
    """

    name: str
    epochs: int
    prepare: Callable[[], None]
    optimizer: Callable[[], torch.optim.Optimizer]
    step: Callable[[Batch, Update], Dict[str, torch.Tensor]]
    cosine: bool = True  # per-epoch cosine schedule; False: constant lr
    grad_clip: Optional[float] = None  # max global gradient norm
    curve: bool = True  # learning-curve points after this stage's epochs
    curve_modes: Tuple[str, ...] = ("policy",)  # patch modes evaluated for those points
    end_eval: bool = False  # full learned/random/centre evaluation when the stage ends
    check: Callable[[], None] = lambda: None  # after each epoch, e.g. modes still as prepared


@dataclass
class TrainState:
    """What survives a restart (stored in every checkpoint's ``extra``)."""

    clock: StageClock = field(default_factory=StageClock)
    curve: List[Dict[str, Any]] = field(default_factory=list)  # {stage, epoch, train_seconds, top1, map}
    history: List[Dict[str, Any]] = field(default_factory=list)  # metrics.csv rows
    epoch_seconds: List[float] = field(default_factory=list)
    results: Dict[str, Any] = field(default_factory=dict)  # e.g. "after_stage2": the end-of-stage eval
    best: Dict[str, Any] = field(default_factory=dict)  # stage -> {epoch (0-based), score, top1, map}

    def extra(self) -> Dict[str, Any]:
        return {
            "clock": self.clock.as_dict(),
            "curve": self.curve,
            "history": self.history,
            "epoch_seconds": self.epoch_seconds,
            "results": self.results,
            "best": self.best,
        }

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any]) -> "TrainState":
        return cls(
            StageClock.from_dict(extra.get("clock")),
            list(extra.get("curve", [])),
            list(extra.get("history", [])),
            list(extra.get("epoch_seconds", [])),
            dict(extra.get("results", {})),
            dict(extra.get("best", {})),
        )


def selection_score(scores: Mapping[str, Any]) -> float:
    """What model selection compares: mAP when the dataset has it, else top-1 (the official codes' choice)."""
    value = scores.get("map")
    return float(scores["top1"] if value is None else value)
