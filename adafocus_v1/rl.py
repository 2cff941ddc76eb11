"""Policy-gradient algorithms for V1's patch policy, as pure functions.

Two algorithms, chosen with ``--rl``:

- ``reinforce``: REINFORCE with a learned value baseline (advantage = R - V, V detached),
  an MSE value loss and an entropy bonus;
- ``ppo``: the clipped surrogate of the original V1 code (clip 0.2, value weight 0.5,
  entropy 0.01, gamma 0.7, Adam 3e-4, K epochs over each batch, default 1).

Both use the same returns: discounted over the episode's steps, then normalised over
all steps and samples of the batch, as the original does.

Action distributions:

- ``categorical`` over an n x n grid of patch positions (the per-frame policy);
- ``gaussian``: a 2-D Gaussian with a fixed std around a sigmoid mean (the one-location
  per-video policy of the Sth-Sth/Jester variant). The raw sample is the action and its
  log-prob is evaluated at that raw sample; only the *location handed to the crop* is
  clamped to [0, 1] (the environment clamps). The official code instead stores the log-prob
  of the clamped action, which is not the density the sample came from and biases the
  gradient near the frame border; we do not reproduce that.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, Tuple, cast

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Categorical, Distribution, Independent, Normal

ALGORITHMS = ("reinforce", "ppo")


@dataclass(frozen=True)
class RLConfig:
    """Hyper-parameters of the policy update (defaults: the original V1 PPO)."""

    algo: str = "ppo"
    gamma: float = 0.7
    clip: float = 0.2
    value_coef: float = 0.5
    entropy_coef: float = 0.01
    lr: float = 3e-4
    epochs: int = 1  # K: passes over each batch (PPO only; REINFORCE is strictly on-policy)
    normalise_returns: bool = True

    def __post_init__(self) -> None:
        if self.algo not in ALGORITHMS:
            raise ValueError(f"rl algorithm must be one of {ALGORITHMS}, got {self.algo!r}")
        if self.epochs < 1:
            raise ValueError("rl epochs must be >= 1")


# ----------------------------------------------------------------------------- returns
def discounted_returns(rewards: Tensor, gamma: float) -> Tensor:
    """R_t = sum_{j >= t} gamma^(j-t) r_j over the last dim.  rewards [..., T] -> [..., T].

    One matrix product instead of a backward loop: M[j, t] = gamma^(j-t) for j >= t.
    """
    T = rewards.shape[-1]
    idx = torch.arange(T, device=rewards.device)
    power = (idx.view(T, 1) - idx.view(1, T)).to(rewards.dtype)  # [j, t] = j - t
    discount = torch.where(
        power >= 0, torch.full_like(power, gamma) ** power.clamp(min=0), torch.zeros_like(power)
    )
    return rewards @ discount


def normalise(x: Tensor, eps: float = 1e-5) -> Tensor:
    """(x - mean) / (std + eps) over all elements (one element: centred only)."""
    if x.numel() < 2:
        return x - x.mean()
    return (x - x.mean()) / (x.std() + eps)


def episode_returns(rewards: Tensor, cfg: RLConfig) -> Tensor:
    """rewards [B, T] -> the regression/advantage targets [B, T] (detached)."""
    R = discounted_returns(rewards.detach(), cfg.gamma)
    return normalise(R) if cfg.normalise_returns else R


# ----------------------------------------------------------------------------- distributions
def categorical(logits: Tensor) -> Distribution:
    """logits [..., A] -> a distribution over A grid cells, batch shape [...]."""
    return Categorical(logits=logits)


def gaussian(mean: Tensor, std: float | Tensor) -> Distribution:
    """mean [..., 2] in [0, 1] -> an isotropic 2-D Gaussian, batch shape [...], event shape [2]."""
    std_t = torch.as_tensor(std, dtype=mean.dtype, device=mean.device).expand_as(mean)
    return Independent(Normal(mean, std_t), 1)


def gaussian_location(raw_action: Tensor) -> Tensor:
    """A raw Gaussian action [..., 2] -> the patch location the crop uses (clamped to [0, 1])."""
    return raw_action.clamp(0.0, 1.0)


# ----------------------------------------------------------------------------- losses
def _value_and_entropy_terms(
    returns: Tensor, value: Tensor, entropy: Tensor, cfg: RLConfig
) -> Tuple[Tensor, Tensor]:
    return F.mse_loss(value, returns), entropy.mean()


def reinforce_loss(
    log_prob: Tensor, returns: Tensor, value: Tensor, entropy: Tensor, cfg: RLConfig
) -> Tuple[Tensor, Dict[str, Tensor]]:
    """REINFORCE with a value baseline.  All inputs [B, T] (returns detached)."""
    advantage = returns - value.detach()
    pg = -(log_prob * advantage).mean()
    v_loss, ent = _value_and_entropy_terms(returns, value, entropy, cfg)
    loss = pg + cfg.value_coef * v_loss - cfg.entropy_coef * ent
    return loss, {"pg_loss": pg.detach(), "value_loss": v_loss.detach(), "entropy": ent.detach()}


def ppo_loss(
    log_prob: Tensor, old_log_prob: Tensor, returns: Tensor, value: Tensor, entropy: Tensor, cfg: RLConfig
) -> Tuple[Tensor, Dict[str, Tensor]]:
    """PPO clipped surrogate + value MSE - entropy bonus.  All inputs [B, T]."""
    ratio = torch.exp(log_prob - old_log_prob.detach())
    advantage = returns - value.detach()
    surrogate = torch.min(ratio * advantage, ratio.clamp(1.0 - cfg.clip, 1.0 + cfg.clip) * advantage)
    pg = -surrogate.mean()
    v_loss, ent = _value_and_entropy_terms(returns, value, entropy, cfg)
    loss = pg + cfg.value_coef * v_loss - cfg.entropy_coef * ent
    clipped = ((ratio - 1.0).abs() > cfg.clip).float().mean()
    return loss, {
        "pg_loss": pg.detach(),
        "value_loss": v_loss.detach(),
        "entropy": ent.detach(),
        "clip_frac": clipped.detach(),
    }


# ----------------------------------------------------------------------------- BN handling
@contextmanager
def frozen_bn_stats(module: nn.Module) -> Iterator[None]:
    """Batch statistics still normalise, but running stats are not updated (momentum 0).

    PPO's extra epochs re-run the policy on the *same* batch; without this each re-run
    would pull the running statistics towards that batch K times.
    """
    saved = []
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
            assert m.num_batches_tracked is not None  # tracked running statistics come with their counter
            saved.append((m, m.momentum, m.num_batches_tracked.clone()))
            m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum, count in saved:
            m.momentum = momentum
            cast(Tensor, m.num_batches_tracked).copy_(count)


# ----------------------------------------------------------------------------- one update
Evaluate = Callable[[], Tuple[Any, Tensor]]


def policy_update(
    first: Tuple[Any, Tensor],
    evaluate: Evaluate,
    actions: Tensor,
    returns: Tensor,
    update: Callable[[Tensor], None],
    cfg: RLConfig,
    policy: nn.Module | None = None,
) -> Dict[str, Tensor]:
    """One RL update on a batch of episodes.

    first: (distribution, value [B, T]) from the forward that sampled ``actions`` (its graph is reused for the
    first pass, so the rollout forward is not repeated).  evaluate(): re-runs the policy on the same inputs
    (PPO epochs 2..K; the running BN statistics of ``policy`` are frozen meanwhile, so each batch moves them
    once).  update(loss): one optimiser step (the training driver's: backward, gradient averaging, step).
    actions: [B, T] (categorical) or [B, T, 2] (gaussian, raw samples).  returns: [B, T]. Returns the last
    pass's loss terms as detached tensors (``loss`` the total).
    """
    dist, value = first
    old_log_prob = dist.log_prob(actions).detach()
    epochs = cfg.epochs if cfg.algo == "ppo" else 1
    stats: Dict[str, Tensor] = {}
    for k in range(epochs):
        if k > 0:
            if policy is not None:
                with frozen_bn_stats(policy):
                    dist, value = evaluate()
            else:
                dist, value = evaluate()
        log_prob, entropy = dist.log_prob(actions), dist.entropy()
        if cfg.algo == "ppo":
            loss, stats = ppo_loss(log_prob, old_log_prob, returns, value, entropy, cfg)
        else:
            loss, stats = reinforce_loss(log_prob, returns, value, entropy, cfg)
        update(loss)
        stats["loss"] = loss.detach()
    return stats
