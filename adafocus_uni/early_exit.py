"""Sample-wise early exit of Uni-AdaFocus (the official ``ops/early_exit_uni_adafocus.py``), with no extra
training.

A video may stop after k = 0..Tf focus frames (17 exits in the paper: exit 0 is the glance alone). For a
budget ``q`` the target share of videos leaving at exit k is proportional to ``q**k``, k = 0..Tf (the official
sweep: q = p/20 for p = 1..19, all favouring early exits). Thresholds are fitted on training-set logits so
these shares are met there, then applied unchanged to the validation logits; the cost of a video is that of
its exit (``adafocus_uni.flops.exit_gflops``: not linear, the glance always runs on every glance frame).

Confidence: the largest softmax probability (default, the papers' wording) or the largest raw logit (the
official code). Pure tensor functions; the only loop is over the exits (each threshold depends on who already
left)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence

import torch
from torch import Tensor

CRITERIA = ("softmax", "logit")
DEFAULT_CRITERION = "softmax"
DEFAULT_BUDGETS = tuple(p / 20 for p in range(1, 20))


def exit_shares(q: float, exits: int) -> Tensor:
    """Target share of videos per exit k = 0..exits-1, proportional to q**k (log space: no overflow). ->
    [exits]."""
    if q <= 0:
        raise ValueError(f"budget q must be > 0, got {q}")
    k = torch.arange(exits, dtype=torch.float64)
    return torch.softmax(k * torch.log(torch.tensor(q, dtype=torch.float64)), dim=0)


def confidence(logits: Tensor, criterion: str = DEFAULT_CRITERION) -> Tensor:
    """logits [N,E,K] -> [N,E]."""
    if criterion == "softmax":
        return logits.float().softmax(-1).amax(-1)
    if criterion == "logit":
        return logits.float().amax(-1)
    raise ValueError(f"unknown confidence criterion '{criterion}'; expected one of {CRITERIA}")


def thresholds(train_conf: Tensor, shares: Tensor) -> Tensor:
    """Per-exit thresholds that let floor(N * shares[k]) of the training videos still present leave at exit k;
    the last is -inf (everybody left exits there), +inf where nobody leaves. train_conf [N,E] -> [E]."""
    n, exits = train_conf.shape
    out = train_conf.new_full((exits,), float("inf"))
    out[-1] = float("-inf")
    present = torch.ones(n, dtype=torch.bool, device=train_conf.device)
    counts = torch.floor(n * shares.double() + 1e-9).long().tolist()
    for k in range(exits - 1):
        m = min(counts[k], int(present.sum()))
        if m == 0:
            continue
        out[k] = train_conf[:, k].masked_fill(~present, float("-inf")).sort(descending=True).values[m - 1]
        present &= train_conf[:, k] < out[k]
    return out


def first_exit(conf: Tensor, thr: Tensor) -> Tensor:
    """Index of each video's first exit whose confidence reaches its threshold. conf [N,E] -> [N] int64."""
    hit = conf >= thr.to(conf.device)[None]
    hit[:, -1] = True
    return hit.to(torch.uint8).argmax(dim=1)


@dataclass
class ExitPoint:
    budget: float
    gflops: float
    top1: float
    map: Optional[float]
    exit_shares: List[float]

    def to_dict(self) -> Dict[str, object]:
        return asdict(self)


def exit_curve(
    train_logits: Tensor,
    val_logits: Tensor,
    val_labels: Tensor,
    exit_gflops: Sequence[float],
    *,
    budgets: Sequence[float] = DEFAULT_BUDGETS,
    criterion: str = DEFAULT_CRITERION,
    val_labels_multi: Optional[Tensor] = None,
    num_classes: Optional[int] = None,
) -> List[ExitPoint]:
    """Accuracy against expected GFLOPs over ``budgets``. *_logits [N,E,K] (E exits), exit_gflops [E]."""
    exits = val_logits.shape[1]
    if len(exit_gflops) != exits:
        raise ValueError(f"exit_gflops has {len(exit_gflops)} exits, the logits {exits}")
    cost = torch.as_tensor(list(exit_gflops), dtype=torch.float64)
    train_conf, val_conf = confidence(train_logits, criterion), confidence(val_logits, criterion)
    points = []
    for q in budgets:
        where = first_exit(val_conf, thresholds(train_conf, exit_shares(q, exits))).cpu()
        logits = val_logits[torch.arange(len(where)), where]
        top1 = float((logits.argmax(1) == val_labels.cpu()).float().mean())
        map_ = None
        if val_labels_multi is not None:
            from bench.training.metrics import mean_average_precision

            map_ = float(mean_average_precision(logits, val_labels_multi, num_classes or logits.shape[1]))
        shares = torch.bincount(where, minlength=exits).double() / max(len(where), 1)
        points.append(ExitPoint(q, float(cost[where].mean()), top1, map_, shares.tolist()))
    return points
