"""Metrics against hand-computed values and a brute-force average precision."""

from __future__ import annotations

import math

import pytest
import torch

from bench.training.metrics import (
    average_precision_per_class,
    location_tracking,
    mean_average_precision,
    multi_hot,
    patch_boxes,
    patch_coverage,
    top1,
)


def test_top1() -> None:
    logits = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    assert top1(logits, torch.tensor([1, 0, 0, 1])) == 0.5
    with pytest.raises(ValueError):
        top1(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))


def test_ap_hand_computed() -> None:
    # ranking: pos, neg, pos, neg -> precisions at the positives 1/1 and 2/3
    scores = torch.tensor([[0.9], [0.8], [0.7], [0.1]])
    target = torch.tensor([[True], [False], [True], [False]])
    assert average_precision_per_class(scores, target).item() == pytest.approx((1 + 2 / 3) / 2)
    # all four tied: one threshold, precision 2/4 for both positives
    assert average_precision_per_class(torch.ones(4, 1), target).item() == pytest.approx(0.5)


def _brute_force_ap(scores: list, positives: list) -> float:
    """scikit-learn's definition: sum over distinct thresholds of (R_i - R_{i-1}) * P_i."""
    npos = sum(positives)
    ap, last_recall = 0.0, 0.0
    for t in sorted(set(scores), reverse=True):
        chosen = [p for s, p in zip(scores, positives) if s >= t]
        tp = sum(chosen)
        recall = tp / npos
        ap += (recall - last_recall) * tp / len(chosen)
        last_recall = recall
    return ap


def test_map_matches_brute_force_with_ties_padding_and_missing_classes() -> None:
    g = torch.Generator().manual_seed(0)
    n, k = 40, 7
    scores = torch.randint(0, 6, (n, k), generator=g).float() / 5  # many ties
    labels = torch.full((n, 3), -1)
    labels[:, 0] = torch.randint(0, 5, (n,), generator=g)  # classes 5 and 6 never appear
    labels[::3, 1] = torch.randint(0, 5, (len(range(0, n, 3)),), generator=g)
    target = multi_hot(labels, k)
    assert not target[:, 5:].any()
    per_class = []
    for c in range(k):
        pos = target[:, c].tolist()
        if any(pos):
            per_class.append(_brute_force_ap(scores[:, c].tolist(), pos))
    assert mean_average_precision(scores, labels, k) == pytest.approx(
        sum(per_class) / len(per_class), abs=1e-12
    )


def test_map_does_not_reindex_labels() -> None:
    # only classes 2 and 4 of 5 present: perfect scores in their own columns give mAP 1
    labels = torch.tensor([[2, -1], [4, -1], [2, 4]])
    scores = torch.zeros(3, 5)
    scores[[0, 2], 2] = 1.0
    scores[[1, 2], 4] = 1.0
    assert mean_average_precision(scores, labels, 5) == 1.0
    # the official re-indexing would read columns 0 and 1 instead: here they are uninformative
    assert mean_average_precision(scores[:, [2, 4, 0, 1, 3]], labels, 5) < 1.0
    assert math.isnan(mean_average_precision(scores, torch.full((3, 2), -1), 5))
    with pytest.raises(ValueError, match="out of range"):
        mean_average_precision(scores, torch.tensor([[5], [0], [1]]), 5)


def test_patch_boxes_follow_design_convention() -> None:
    # loc (row 1, col 0) in a 100x60 (H x W) frame, P = 20: top-left y = 80, x = 0
    box = patch_boxes(torch.tensor([1.0, 0.0]), 20, (100, 60))
    assert box.tolist() == [0.0, 80.0, 20.0, 100.0]


def test_patch_coverage_hand_cases() -> None:
    hw, p = (100, 100), 40  # patch top-left = loc * 60
    locations = torch.tensor([[[0.0, 0.0], [0.0, 0.0], [0.5, 0.5], [1.0, 1.0], [0.0, 0.0]]])
    nan = float("nan")
    boxes = torch.tensor(
        [
            [
                [10.0, 10.0, 30.0, 30.0],  # fully inside patch [0,40]^2
                [30.0, 10.0, 50.0, 30.0],  # half of the box inside (x 30..40 of 30..50)
                [0.0, 0.0, 20.0, 20.0],  # patch [30,70]^2: outside
                [nan, nan, nan, nan],  # unknown: skipped
                [30.0, 30.0, 50.0, 50.0],  # a quarter inside (10 x 10 of 20 x 20)
            ]
        ]
    )
    assert patch_coverage(locations, boxes, p, hw) == pytest.approx(2 / 4)
    assert patch_coverage(locations, boxes, p, hw, min_fraction=1.0) == pytest.approx(1 / 4)
    assert patch_coverage(locations, boxes, p, hw, min_fraction=0.25) == pytest.approx(3 / 4)
    assert math.isnan(patch_coverage(locations[:, 3:4], boxes[:, 3:4], p, hw))
    with pytest.raises(ValueError):
        patch_coverage(locations, boxes[:, :2], p, hw)


def test_location_tracking_tells_a_following_policy_from_a_constant_one() -> None:
    g = torch.Generator().manual_seed(0)
    n, t, side, patch, obj = 50, 3, 64, 24, 16
    top_left = torch.randint(0, side - obj + 1, (n, 1, 2), generator=g).float().expand(n, t, 2)  # (x, y)
    boxes = torch.cat([top_left, top_left + obj], -1)
    boxes[0, 1] = float("nan")  # an unknown frame is skipped
    centre = top_left + obj / 2  # the patch centred on the object: loc = (c - P/2)/(S - P)
    follow = ((centre - patch / 2) / (side - patch)).flip(-1)  # -> (row, col)
    tr = location_tracking(follow, boxes, patch, (side, side))
    assert tr["corr"] == pytest.approx(1.0, abs=1e-5) and tr["distance"] == pytest.approx(0.0, abs=1e-5)
    const = location_tracking(torch.full((n, t, 2), 0.5), boxes, patch, (side, side))
    assert const["corr"] == 0.0 and const["spread"] == 0.0
    assert const["distance"] >= const["constant_distance"] > 0.05
    # the constant baseline is the distance of each object centre to their mean
    ov = centre[:, 0] / side
    assert const["constant_distance"] == pytest.approx(float((ov - ov.mean(0)).norm(dim=-1).mean()), abs=1e-5)
    assert math.isnan(
        location_tracking(follow, torch.full_like(boxes, float("nan")), patch, (side, side))["corr"]
    )
