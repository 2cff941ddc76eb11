"""Conditional early exit: pure functions on per-step logits."""

import math

import pytest
import torch

from adafocus_v2 import early_exit as ee


def _logits(n=400, steps=6, k=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, k, (n,), generator=g)
    # later steps are more confident and more often right, like a real per-step classifier
    noise = torch.randn(n, steps, k, generator=g)
    signal = (
        torch.nn.functional.one_hot(labels, k).float()[:, None, :]
        * torch.linspace(0.2, 2.5, steps)[None, :, None]
    )
    return noise + signal, labels


def test_exit_distribution_shapes_and_limits():
    p = ee.exit_distribution(0.5, 16)
    assert p.shape == (16,) and math.isclose(float(p.sum()), 1.0, rel_tol=1e-9)
    assert bool((p[1:] < p[:-1]).all())  # q < 1: early exits favoured
    assert torch.allclose(ee.exit_distribution(1.0, 4), torch.full((4,), 0.25, dtype=torch.float64))
    late = ee.exit_distribution(1e9, 16)
    assert float(late[-1]) > 1 - 1e-6
    with pytest.raises(ValueError):
        ee.exit_distribution(0.0, 4)


@pytest.mark.parametrize("criterion", ee.CRITERIA)
@pytest.mark.parametrize("q", [0.5, 1.0, 2.0])
def test_thresholds_reproduce_target_shares_on_training_logits(q, criterion):
    logits, _ = _logits()
    conf = ee.confidence(logits, criterion)
    shares = ee.exit_distribution(q, logits.shape[1])
    where = ee.exit_steps(conf, ee.find_thresholds(conf, shares))
    counts = torch.bincount(where, minlength=logits.shape[1])
    want = torch.floor(len(conf) * shares).long()
    assert torch.equal(counts[:-1], want[:-1])  # continuous confidences: no ties, exact counts
    assert int(counts.sum()) == len(conf)


def test_confidence_criteria_differ():
    logits = torch.tensor([[[10.0, 9.9, 0.0]], [[1.0, -5.0, -5.0]]])
    by_logit = ee.confidence(logits, "logit")[:, 0]
    by_prob = ee.confidence(logits, "softmax")[:, 0]
    assert by_logit[0] > by_logit[1] and by_prob[0] < by_prob[1]
    with pytest.raises(ValueError):
        ee.confidence(logits, "entropy")


def test_exit_steps_and_gathered_logits():
    conf = torch.tensor([[0.9, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.1]])
    thr = torch.tensor([0.5, 0.5, float("-inf")])
    where = ee.exit_steps(conf, thr)
    assert where.tolist() == [0, 1, 2]
    logits = torch.arange(3 * 3 * 2, dtype=torch.float32).view(3, 3, 2)
    assert torch.equal(ee.exit_logits(logits, where), torch.stack([logits[0, 0], logits[1, 1], logits[2, 2]]))
    assert ee.expected_gflops(where, [1.0, 2.0, 4.0]) == pytest.approx((1 + 2 + 4) / 3)


def test_full_budget_is_the_full_model_and_small_budget_is_cheaper():
    train, _ = _logits(seed=1)
    val, labels = _logits(seed=2)
    cost = torch.cumsum(torch.full((val.shape[1],), 1.5), 0)
    full_top1 = float((val[:, -1].argmax(1) == labels).float().mean())
    full = ee.evaluate_budget(1e9, train, val, labels, cost)
    assert full.exit_shares[-1] == 1.0
    assert full.top1 == pytest.approx(full_top1) and full.gflops == pytest.approx(float(cost[-1]))
    curve = ee.exit_curve(train, val, labels, cost)
    assert len(curve) == len(ee.DEFAULT_BUDGETS)
    assert curve[0].gflops < float(cost[-1])
    assert curve[0].gflops < curve[-1].gflops  # the sweep spans cheap to expensive


def test_curve_rejects_cost_of_wrong_length():
    train, _ = _logits()
    with pytest.raises(ValueError):
        ee.exit_curve(train, train, torch.zeros(len(train), dtype=torch.long), [1.0, 2.0])
