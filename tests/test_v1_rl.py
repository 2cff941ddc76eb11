"""V1's RL algorithms as pure functions: returns, losses, and two bandits with known answers."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from adafocus_v1 import rl


def test_discounted_returns_matches_backward_loop():
    g = torch.Generator().manual_seed(0)
    r = torch.randn(3, 6, generator=g)
    expected = torch.zeros_like(r)
    running = torch.zeros(3)
    for t in reversed(range(6)):
        running = r[:, t] + 0.7 * running
        expected[:, t] = running
    assert torch.allclose(rl.discounted_returns(r, 0.7), expected, atol=1e-6)
    assert torch.allclose(rl.discounted_returns(r, 0.0), r)


def test_normalise_and_single_step():
    x = torch.tensor([[1.0, 2.0, 3.0, 6.0]])
    n = rl.normalise(x)
    assert abs(n.mean().item()) < 1e-6 and abs(n.std().item() - 1) < 1e-4
    assert rl.normalise(torch.tensor([[4.0]])).item() == 0.0


def test_ppo_ratio_one_equals_reinforce_gradient():
    """With K=1 the ratio is 1 and PPO's gradient equals REINFORCE's (a known identity)."""
    logits = torch.randn(4, 3, 5, requires_grad=True)
    value = torch.randn(4, 3, requires_grad=True)
    a = rl.categorical(logits).sample()
    R = torch.randn(4, 3)
    cfg = rl.RLConfig()
    dist = rl.categorical(logits)
    lp, ent = dist.log_prob(a), dist.entropy()
    l_ppo, _ = rl.ppo_loss(lp, lp.detach(), R, value, ent, cfg)
    g_ppo = torch.autograd.grad(l_ppo, [logits, value])
    dist = rl.categorical(logits)
    l_re, _ = rl.reinforce_loss(dist.log_prob(a), R, value, dist.entropy(), cfg)
    g_re = torch.autograd.grad(l_re, [logits, value])
    for a_, b_ in zip(g_ppo, g_re):
        assert torch.allclose(a_, b_, atol=1e-6)


def test_ppo_clips_large_ratio():
    cfg = rl.RLConfig()
    lp_old = torch.zeros(1, 1)
    lp_new = torch.full((1, 1), 1.0, requires_grad=True)  # ratio e > 1.2
    adv_pos = torch.ones(1, 1)
    loss, stats = rl.ppo_loss(lp_new, lp_old, adv_pos, torch.zeros(1, 1), torch.zeros(1, 1), cfg)
    (g,) = torch.autograd.grad(loss, lp_new)
    assert g.abs().item() == 0.0 and stats["clip_frac"] == 1.0


def test_frozen_bn_stats_keeps_running_stats():
    bn = nn.BatchNorm1d(3).train()
    bn(torch.randn(8, 3))
    before = (bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone())
    with rl.frozen_bn_stats(bn):
        bn(torch.randn(8, 3) + 5)
    assert torch.equal(before[0], bn.running_mean) and torch.equal(before[1], bn.running_var)
    assert torch.equal(before[2], bn.num_batches_tracked) and bn.momentum == 0.1


# ----------------------------------------------------------------------------- bandits
ARM_MEANS = torch.tensor([0.1, 0.3, 0.2, 0.9, 0.5, 0.0])  # best arm: 3


class _CategoricalAgent(nn.Module):
    def __init__(self, arms: int) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(arms))
        self.v = nn.Parameter(torch.zeros(()))

    def forward(self, batch: int):
        return rl.categorical(self.logits.expand(batch, 1, -1)), self.v.expand(batch, 1)


class _GaussianAgent(nn.Module):
    def __init__(self, std: float) -> None:
        super().__init__()
        self.std = std
        self.mu = nn.Parameter(torch.zeros(2))  # sigmoid(0) = centre
        self.v = nn.Parameter(torch.zeros(()))

    def forward(self, batch: int):
        mean = torch.sigmoid(self.mu).expand(batch, 1, 2)
        return rl.gaussian(mean, self.std), self.v.expand(batch, 1)


def _train(agent: nn.Module, reward_fn, algo: str, steps: int, lr: float, epochs: int = 1):
    torch.manual_seed(0)
    cfg = rl.RLConfig(algo=algo, lr=lr, epochs=epochs)
    opt = torch.optim.Adam(agent.parameters(), lr=cfg.lr)

    def update(loss):  # what the training driver does, single process
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(steps):
        dist, value = agent(64)
        actions = dist.sample()
        R = rl.episode_returns(reward_fn(actions), cfg)
        rl.policy_update((dist, value), lambda: agent(64), actions, R, update, cfg, policy=agent)
    return agent


@pytest.mark.parametrize("algo,epochs", [("reinforce", 1), ("ppo", 1), ("ppo", 3)])
def test_categorical_bandit_finds_best_arm(algo, epochs):
    g = torch.Generator().manual_seed(1)

    def reward(a):  # noisy reward, [B, 1]
        return ARM_MEANS[a] + 0.3 * torch.randn(a.shape, generator=g)

    agent = _train(_CategoricalAgent(len(ARM_MEANS)), reward, algo, steps=300, lr=0.05, epochs=epochs)
    probs = torch.softmax(agent.logits.detach(), 0)
    assert probs.argmax().item() == 3
    assert probs[3].item() > 0.8


@pytest.mark.parametrize("algo", ["reinforce", "ppo"])
def test_gaussian_bandit_finds_target(algo):
    """Reward peaks at a known location; the mean must get there.

    The std is small enough that clamping at the border almost never happens: with a wide
    Gaussian near the border the clamp makes the border itself the expected-reward optimum,
    so the target would no longer be the known answer.
    """
    target = torch.tensor([0.2, 0.75])

    def reward(raw):  # [B, 1, 2] raw sample -> [B, 1]; the environment clamps
        loc = rl.gaussian_location(raw)
        return -((loc - target) ** 2).sum(-1)

    agent = _train(_GaussianAgent(std=0.08), reward, algo, steps=300, lr=0.05)
    mean = torch.sigmoid(agent.mu.detach())
    assert (mean - target).abs().max().item() < 0.08, mean


def test_gaussian_log_prob_is_at_the_raw_sample():
    mean = torch.tensor([[0.95, 0.5]])
    d = rl.gaussian(mean, 0.25)
    raw = torch.tensor([[1.3, 0.5]])
    expected = torch.distributions.Normal(mean, 0.25).log_prob(raw).sum(-1)
    assert torch.allclose(d.log_prob(raw), expected)
    assert torch.equal(rl.gaussian_location(raw), torch.tensor([[1.0, 0.5]]))
