"""Evaluation metrics as batched tensor functions: top-1, mean average precision over a
fixed class count, patch coverage of a known object box and how a per-video location tracks it.
"""

from __future__ import annotations

from typing import Dict, Tuple

import torch


def top1(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of rows whose arg-max equals the label. logits ``[N, K]``, labels ``[N]``."""
    if logits.shape[0] == 0:
        raise ValueError("top1 of an empty set")
    return (logits.argmax(dim=1) == labels.to(logits.device)).float().mean().item()


def multi_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``[N, L]`` class ids padded with -1 -> ``[N, K]`` bool targets (ids are used as given;
    never re-indexed by the labels present)."""
    if labels.dim() == 1:
        labels = labels.unsqueeze(1)
    if labels.numel() and int(labels.max()) >= num_classes:
        raise ValueError(f"label {int(labels.max())} out of range for {num_classes} classes")
    valid = labels >= 0
    target = torch.zeros(labels.shape[0], num_classes + 1, dtype=torch.bool, device=labels.device)
    target.scatter_(1, torch.where(valid, labels, num_classes).long(), True)  # padding -> spare column
    return target[:, :num_classes]


def average_precision_per_class(scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """AP of every column. scores ``[N, K]`` (any monotone score: logits or probabilities),
    target ``[N, K]`` bool -> ``[K]`` float64, NaN for classes without positives.

    AP = sum over positives of the precision at that positive's score threshold, divided by
    the number of positives. Tied scores form one threshold (all tied items count at once),
    which equals scikit-learn's ``average_precision_score``.
    """
    n = scores.shape[0]
    order = scores.argsort(dim=0, descending=True)
    s = scores.gather(0, order).double()
    pos = target.gather(0, order).double()
    tp = pos.cumsum(0)
    # the last position of each run of tied scores: precision is evaluated there
    ranks = torch.arange(n, device=scores.device).unsqueeze(1).expand_as(s)
    is_last = torch.ones_like(pos, dtype=torch.bool)
    is_last[:-1] = s[:-1] != s[1:]
    end = torch.where(is_last, ranks, torch.full_like(ranks, n)).flip(0).cummin(0).values.flip(0)
    precision = tp.gather(0, end) / (end + 1).double()
    npos = pos.sum(0)
    return torch.where(
        npos > 0, (precision * pos).sum(0) / npos.clamp(min=1), torch.full_like(npos, float("nan"))
    )


def mean_average_precision(scores: torch.Tensor, labels: torch.Tensor, num_classes: int) -> float:
    """mAP over the full class count. scores ``[N, K]``, labels ``[N, L]`` class ids padded
    with -1 (or ``[N]``), K = ``num_classes``.

    Classes with no positive in the evaluated set are *skipped* (their AP is undefined), not
    counted as 0 as in the official code, so a partial evaluation is not biased downward.
    Returns NaN if no class has a positive.
    """
    if scores.shape[1] != num_classes:
        raise ValueError(f"scores have {scores.shape[1]} columns, expected num_classes={num_classes}")
    ap = average_precision_per_class(scores, multi_hot(labels.to(scores.device), num_classes))
    ap = ap[~ap.isnan()]
    return float(ap.mean()) if ap.numel() else float("nan")


def patch_boxes(locations: torch.Tensor, patch: int, frame_hw: Tuple[int, int]) -> torch.Tensor:
    """Patch locations ``[..., 2]`` (row, col) in [0, 1] -> pixel boxes ``[..., 4]``
    (x0, y0, x1, y1), top-left = loc * (H - P, W - P) as in design.md (not floored: the
    hard crop's flooring moves a patch by less than one pixel)."""
    h, w = frame_hw
    y0 = locations[..., 0] * (h - patch)
    x0 = locations[..., 1] * (w - patch)
    return torch.stack([x0, y0, x0 + patch, y0 + patch], dim=-1)


def box_fraction_inside(boxes: torch.Tensor, windows: torch.Tensor) -> torch.Tensor:
    """Share of each box's area inside the matching window; both ``[..., 4]`` (x0, y0, x1, y1).
    NaN where the box is unknown (NaN) or has no area."""
    ix = (
        torch.minimum(boxes[..., 2], windows[..., 2]) - torch.maximum(boxes[..., 0], windows[..., 0])
    ).clamp(min=0)
    iy = (
        torch.minimum(boxes[..., 3], windows[..., 3]) - torch.maximum(boxes[..., 1], windows[..., 1])
    ).clamp(min=0)
    area = (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
    frac = ix * iy / area
    return torch.where(area > 0, frac, torch.full_like(frac, float("nan")))


def patch_coverage(
    locations: torch.Tensor,
    boxes: torch.Tensor,
    patch: int,
    frame_hw: Tuple[int, int],
    min_fraction: float = 0.5,
) -> float:
    """Fraction of frames whose patch covers the object.

    locations ``[N, T, 2]`` (row, col) in [0, 1]; boxes ``[N, T, 4]`` (x0, y0, x1, y1) in
    pixels of frames of size ``frame_hw``; ``patch`` the patch side P.

    A frame counts as covered when at least ``min_fraction`` of the object's box area lies
    inside the patch. The default 0.5 ("the patch sees most of the object") stays meaningful
    when the object is larger than the patch or sits at the frame border, where full
    containment (``min_fraction=1.0``) can be impossible. Frames with an unknown (NaN) or
    empty box are skipped; NaN if no frame has a box.
    """
    if locations.shape[:-1] != boxes.shape[:-1]:
        raise ValueError(f"locations {tuple(locations.shape)} and boxes {tuple(boxes.shape)} disagree")
    frac = box_fraction_inside(
        boxes.float(), patch_boxes(locations.float().to(boxes.device), patch, frame_hw)
    )
    known = ~frac.isnan()
    if not bool(known.any()):
        return float("nan")
    return float((frac[known] >= min_fraction - 1e-6).float().mean())


def location_tracking(
    locations: torch.Tensor, boxes: torch.Tensor, patch: int, frame_hw: Tuple[int, int]
) -> Dict[str, float]:
    """Does the patch follow the object from video to video? (Video variant: one location per video.)

    locations ``[N, T, 2]`` (row, col) in [0, 1], boxes ``[N, T, 4]`` as in ``patch_coverage``. Per
    video, the mean patch centre and the mean object centre (frames with a known box) are compared:

    - ``corr``: Pearson correlation of patch and object centres over videos, mean of x and y
      (0 when either does not vary, e.g. a constant location);
    - ``distance``: mean distance between the two centres, as a fraction of the frame side;
    - ``constant_distance``: the same for the best constant location (the mean object centre), the
      baseline a policy that does not look at the video cannot beat;
    - ``spread``: standard deviation of the patch centre over videos (fraction of the side), mean of x and y.
    NaN values when no video has a box.
    """
    h, w = frame_hw
    win = patch_boxes(locations.float(), patch, frame_hw)
    scale = boxes.new_tensor([w, h]).float()
    pc = (win[..., :2] + win[..., 2:]) / 2 / scale  # [N, T, 2] (x, y) fractions
    oc = (boxes[..., :2] + boxes[..., 2:]).float() / 2 / scale
    known = ~oc.isnan().any(-1)  # [N, T]
    per_video = known.sum(1)
    keep = per_video > 0
    nan = float("nan")
    if not bool(keep.any()):
        return {"corr": nan, "distance": nan, "constant_distance": nan, "spread": nan}
    weight = known[keep].unsqueeze(-1).float()
    pv = (pc[keep] * weight).sum(1) / per_video[keep, None]  # [V, 2]
    ov = (torch.nan_to_num(oc[keep]) * weight).sum(1) / per_video[keep, None]
    pd, od = pv - pv.mean(0), ov - ov.mean(0)
    denom = pd.norm(dim=0) * od.norm(dim=0)
    corr = torch.where(denom > 0, (pd * od).sum(0) / denom.clamp(min=1e-12), torch.zeros_like(denom))
    return {
        "corr": float(corr.mean()),
        "distance": float((pv - ov).norm(dim=-1).mean()),
        "constant_distance": float(od.norm(dim=-1).mean()),
        "spread": float(pv.std(0, unbiased=False).mean()),
    }
