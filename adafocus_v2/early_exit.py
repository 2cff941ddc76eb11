"""Conditional early exit (AdaFocusV2+), with no extra training.

Every step t of the classifier has its own head, so a video can stop after any
prefix of its (coarse-to-fine ordered) frames. For a budget ``q`` the target share
of videos leaving at step k is proportional to ``q**k`` (q < 1 favours early exits,
q > 1 late ones). Thresholds are chosen on training-set logits so those shares are
met there, then applied unchanged to the validation logits (V2 paper §3.5).

Confidence criterion (decided here, see ``CRITERIA``):
- ``"softmax"`` (default): the largest softmax probability, as the paper describes
  the criterion;
- ``"logit"``: the largest raw logit, which is what the official code computes.

Everything is a pure function on tensors; the only Python loop is over the T steps
(each threshold depends on which videos already left), never over samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import torch
from torch import Tensor

CRITERIA = ("softmax", "logit")
DEFAULT_CRITERION = "softmax"
# The official sweep: q = p / 10 for p = 5..39.
DEFAULT_BUDGETS: tuple = tuple(p / 10 for p in range(5, 40))


def exit_distribution(q: float, steps: int) -> Tensor:
    """Target share of videos exiting at step k = 1..steps, proportional to q**k. -> [steps], sums to 1.

    Computed in log space so huge budgets (q -> inf puts everything at the last step) do not overflow.
    """
    if q <= 0:
        raise ValueError(f"budget q must be > 0, got {q}")
    k = torch.arange(1, steps + 1, dtype=torch.float64)
    return torch.softmax(k * torch.log(torch.tensor(q, dtype=torch.float64)), dim=0)


def confidence(step_logits: Tensor, criterion: str = DEFAULT_CRITERION) -> Tensor:
    """Per-step confidence. step_logits [N, T, K] -> [N, T]."""
    if criterion == "softmax":
        return step_logits.float().softmax(dim=-1).amax(dim=-1)
    if criterion == "logit":
        return step_logits.float().amax(dim=-1)
    raise ValueError(f"unknown confidence criterion '{criterion}'; expected one of {CRITERIA}")


def find_thresholds(train_conf: Tensor, shares: Tensor) -> Tensor:
    """Thresholds that make floor(N * shares[k]) training videos exit at step k.

    train_conf [N, T], shares [T] -> thresholds [T] (the last is -inf: everybody left exits there).
    At step k the videos still present are ranked by confidence and the threshold is the confidence of
    the floor(N * shares[k])-th; no video exits at k (threshold +inf) when that count is 0.
    """
    n, steps = train_conf.shape
    conf = train_conf.float()
    thresholds = conf.new_full((steps,), float("inf"))
    thresholds[-1] = float("-inf")
    left = torch.ones(n, dtype=torch.bool, device=conf.device)
    counts = torch.floor(n * shares.double().to(conf.device) + 1e-9).long()
    for k in range(steps - 1):
        remaining = int(left.sum())
        out_n = min(int(counts[k]), remaining)
        if out_n == 0:
            continue
        ranked = conf[:, k].masked_fill(~left, float("-inf")).sort(descending=True).values
        thresholds[k] = ranked[out_n - 1]
        left &= conf[:, k] < thresholds[k]
    return thresholds


def exit_steps(conf: Tensor, thresholds: Tensor) -> Tensor:
    """Index (0-based) of the first step whose confidence reaches its threshold. conf [N, T] -> [N] int64."""
    hit = conf >= thresholds.to(conf.device)[None, :]
    hit[:, -1] = True
    return hit.to(torch.uint8).argmax(dim=1)  # argmax returns the first maximal index


def exit_logits(step_logits: Tensor, steps: Tensor) -> Tensor:
    """Logits at each video's exit step. step_logits [N, T, K], steps [N] -> [N, K]."""
    idx = steps.view(-1, 1, 1).expand(-1, 1, step_logits.shape[-1])
    return step_logits.gather(1, idx).squeeze(1)


def expected_gflops(steps: Tensor, cumulative_gflops: Sequence[float] | Tensor) -> float:
    """Mean cost per video when each video pays the cumulative cost up to its exit step.

    steps [N] (0-based), cumulative_gflops [T]: cost of running the model up to and including step t.
    """
    cost = torch.as_tensor(cumulative_gflops, dtype=torch.float64)
    return float(cost[steps.cpu()].mean())


@dataclass
class ExitPoint:
    budget: float
    gflops: float
    top1: float
    map: Optional[float]
    exit_shares: List[float]  # share of val videos leaving at each step

    def to_dict(self) -> Dict[str, object]:
        return {
            "budget": self.budget,
            "gflops": self.gflops,
            "top1": self.top1,
            "map": self.map,
            "exit_shares": self.exit_shares,
        }


def evaluate_budget(
    q: float,
    train_logits: Tensor,
    val_logits: Tensor,
    val_labels: Tensor,
    cumulative_gflops: Sequence[float] | Tensor,
    *,
    criterion: str = DEFAULT_CRITERION,
    val_labels_multi: Optional[Tensor] = None,
    num_classes: Optional[int] = None,
) -> ExitPoint:
    """One point of the curve. train_logits [Ntr, T, K], val_logits [N, T, K], val_labels [N].

    ``val_labels_multi`` [N, L] (padded with -1) switches on mAP over ``num_classes`` classes.
    """
    return _budget_point(
        q,
        confidence(train_logits, criterion),
        confidence(val_logits, criterion),
        val_logits,
        val_labels,
        cumulative_gflops,
        val_labels_multi,
        num_classes,
    )


def _budget_point(
    q: float,
    train_conf: Tensor,
    val_conf: Tensor,
    val_logits: Tensor,
    val_labels: Tensor,
    cumulative_gflops: Sequence[float] | Tensor,
    val_labels_multi: Optional[Tensor],
    num_classes: Optional[int],
) -> ExitPoint:
    steps = val_logits.shape[1]
    thresholds = find_thresholds(train_conf, exit_distribution(q, steps))
    where = exit_steps(val_conf, thresholds)
    logits = exit_logits(val_logits, where)
    top1 = float((logits.argmax(dim=1) == val_labels.to(logits.device)).float().mean())
    map_ = None
    if val_labels_multi is not None:
        from bench.training.metrics import mean_average_precision

        map_ = float(mean_average_precision(logits, val_labels_multi, num_classes or logits.shape[1]))
    shares = torch.bincount(where.cpu(), minlength=steps).double() / max(len(where), 1)
    return ExitPoint(q, expected_gflops(where, cumulative_gflops), top1, map_, shares.tolist())


def exit_curve(
    train_logits: Tensor,
    val_logits: Tensor,
    val_labels: Tensor,
    cumulative_gflops: Sequence[float] | Tensor,
    *,
    budgets: Sequence[float] = DEFAULT_BUDGETS,
    criterion: str = DEFAULT_CRITERION,
    val_labels_multi: Optional[Tensor] = None,
    num_classes: Optional[int] = None,
) -> List[ExitPoint]:
    """The accuracy-vs-cost curve over a sweep of budgets (shapes as in ``evaluate_budget``)."""
    if len(cumulative_gflops) != val_logits.shape[1]:
        raise ValueError(
            f"cumulative_gflops has {len(cumulative_gflops)} steps, logits have {val_logits.shape[1]}"
        )
    # Confidences once for the whole sweep: the softmax over [N, T, K] dominates otherwise.
    train_conf, val_conf = confidence(train_logits, criterion), confidence(val_logits, criterion)
    return [
        _budget_point(
            q, train_conf, val_conf, val_logits, val_labels, cumulative_gflops, val_labels_multi, num_classes
        )
        for q in budgets
    ]
