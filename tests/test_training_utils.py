"""Parameter groups by name, the cosine schedule, clipping, the NaN guard and freezing."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from bench.errors import TrainingDivergedError
from bench.training.optim import (
    check_finite,
    clip_gradients,
    cosine_schedule,
    make_sgd,
    param_groups_by_name,
    set_trainable,
)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.glance = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        self.policy = nn.Linear(4, 2)
        self.policy_head = nn.Linear(2, 2)  # shares a string prefix with "policy", not a module path
        self.classifier = nn.Linear(4, 5)
        self.focus = nn.Linear(4, 4)


def _names(model: nn.Module, group) -> set:
    ids = {id(p) for p in group["params"]}
    return {n for n, p in model.named_parameters() if id(p) in ids}


def test_param_groups_cover_every_parameter_once() -> None:
    net = Net()
    groups = param_groups_by_name(
        net,
        {"glance": 0.5, "policy": 0.1, "classifier": 5.0, "glance.1": 2.0},
        base_lr=0.01,
        weight_decay=1e-4,
    )
    by_name = {g["name"]: g for g in groups}
    assert set(by_name) == {"glance", "glance.1", "policy", "classifier", "rest"}
    assert _names(net, by_name["policy"]) == {"policy.weight", "policy.bias"}
    assert _names(net, by_name["glance.1"]) == {"glance.1.weight", "glance.1.bias"}  # longest prefix wins
    assert "policy_head.weight" in _names(net, by_name["rest"])
    assert by_name["classifier"]["lr"] == pytest.approx(0.05) and by_name["rest"]["lr_ratio"] == 1.0
    all_ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(all_ids) == sorted(id(p) for p in net.parameters()) and len(set(all_ids)) == len(all_ids)
    with pytest.raises(ValueError, match="classifer"):
        param_groups_by_name(net, {"classifer": 5.0}, 0.01, 0.0)


def test_frozen_parameters_are_left_out_and_ddp_names_unwrapped() -> None:
    net = Net()
    set_trainable(net.glance, False)
    groups = param_groups_by_name(net, {"glance": 0.5}, 0.01, 0.0)
    assert "glance" not in {g["name"] for g in groups}
    opt = make_sgd(net, base_lr=0.1, weight_decay=1e-4, ratios={"classifier": 5.0})
    assert opt.defaults["momentum"] == 0.9
    assert {g["name"]: g["lr"] for g in opt.param_groups} == {"classifier": pytest.approx(0.5), "rest": 0.1}
    with pytest.raises(ValueError, match="no trainable"):
        make_sgd(set_trainable(Net(), False), base_lr=0.1, weight_decay=0.0)


def test_cosine_runs_exactly_the_given_epochs() -> None:
    net = nn.Linear(2, 2)
    opt = make_sgd(net, base_lr=1.0, weight_decay=0.0, ratios={"bias": 0.1})
    sched = cosine_schedule(opt, epochs=4)
    lrs = []
    for _ in range(4):
        lrs.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    expected = [0.5 * (1 + math.cos(math.pi * e / 4)) for e in range(4)]
    assert [lr[0] for lr in lrs] == pytest.approx(expected)  # 1, .854, .5, .146: no epoch at lr 0
    assert [lr[1] for lr in lrs] == pytest.approx([0.1 * e for e in expected])  # ratio kept per group
    assert min(lr[0] for lr in lrs) > 0
    with pytest.raises(ValueError):
        cosine_schedule(opt, 0)


def test_clip_gradients() -> None:
    p = nn.Parameter(torch.zeros(2))
    p.grad = torch.tensor([3.0, 4.0])
    assert clip_gradients([p], None) is None and p.grad.tolist() == [3.0, 4.0]
    assert clip_gradients([p], 1.0) == pytest.approx(5.0)
    assert p.grad.norm().item() == pytest.approx(1.0, rel=1e-5)
    assert clip_gradients([nn.Parameter(torch.zeros(1))], 1.0) == 0.0


def test_check_finite() -> None:
    check_finite(torch.tensor(1.5), "epoch 0")
    check_finite(2.0, "epoch 0")
    for bad in (torch.tensor(float("nan")), float("inf"), torch.tensor([1.0, float("-inf")])):
        with pytest.raises(TrainingDivergedError, match="stage 2, epoch 3, step 17") as e:
            check_finite(bad, "stage 2, epoch 3, step 17")
        assert "\n" not in str(e.value)
