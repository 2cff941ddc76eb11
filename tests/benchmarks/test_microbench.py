"""Micro-benchmarks (pytest-benchmark), excluded from the default run.

Run them with ``make bench`` (JSON in .benchmarks/latest.json). They time the hot paths
that the method comparison depends on, on the tiny synthetic preset at batch 32:
the patch crops, one training step per method, and the early-exit threshold search.
"""

import pytest
import torch

from adafocus_v1.method import rl_config
from adafocus_v1.stage2 import rl_step
from adafocus_v1.steps import stage1_loss
from adafocus_v2.early_exit import exit_curve
from adafocus_v2.objective import V2Objective
from bench.models import build_network, hard_crop, interp_crop, random_locations
from bench.presets import get_preset
from bench.training.optim import make_sgd

pytestmark = pytest.mark.bench
BATCH = 32


def _batch(preset, generator):
    t, s = preset.frames, preset.input_size
    return {
        "frames": torch.randn(BATCH, t, 3, s, s, generator=generator),
        "label": torch.randint(0, preset.num_classes, (BATCH,), generator=generator),
    }


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


@pytest.mark.parametrize("crop", [hard_crop, interp_crop], ids=["hard", "interp"])
def test_patch_crop(benchmark, crop, gen):
    frames = torch.randn(BATCH * 16, 3, 224, 224, generator=gen)
    loc = random_locations((BATCH * 16,), frames.device)
    out = benchmark(crop, frames, loc, 128)
    assert out.shape == (BATCH * 16, 3, 128, 128)


def test_v2_training_step(benchmark, gen):
    preset = get_preset("synthetic", "tiny", method="v2")
    objective = V2Objective(build_network(preset)).train()
    opt = make_sgd(objective, base_lr=0.01, weight_decay=1e-4)
    batch = _batch(preset, gen)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = objective(batch["frames"], None, batch["label"])["total"]
        loss.backward()
        opt.step()
        return loss

    assert torch.isfinite(benchmark(step))


def test_v1_stage1_step(benchmark, gen):
    preset = get_preset("synthetic", "tiny", method="v1")
    net = build_network(preset).train()
    opt = make_sgd(net, base_lr=0.01, weight_decay=1e-4)
    batch = _batch(preset, gen)

    def step():
        opt.zero_grad(set_to_none=True)
        loss, _ = stage1_loss(net, batch)
        loss.backward()
        opt.step()
        return loss

    assert torch.isfinite(benchmark(step))


def test_v1_stage2_rl_step(benchmark, gen):
    preset = get_preset("synthetic", "tiny", method="v1")
    net = build_network(preset).eval()
    net.policy.train()
    cfg = rl_config(preset.train)
    opt = torch.optim.Adam(net.policy.parameters(), lr=cfg.lr)
    batch = _batch(preset, gen)

    def update(loss):
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    stats = benchmark(rl_step, net, batch, update, cfg, "random", preset.num_classes)
    assert "reward" in stats


def test_early_exit_threshold_search(benchmark, gen):
    train = torch.randn(20000, 16, 200, generator=gen)
    val = torch.randn(5000, 16, 200, generator=gen)
    labels = torch.randint(0, 200, (5000,), generator=gen)
    curve = benchmark(exit_curve, train, val, labels, [float(k) for k in range(1, 17)])
    assert len(curve) > 1
