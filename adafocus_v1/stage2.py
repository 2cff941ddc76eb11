"""Stage 2: one reinforcement-learning update of the patch policy on a batch.

Only the policy trains; f_G, f_L and f_C are frozen in eval mode and run under ``no_grad``.

Batched over samples *and* time: the policy sees glance maps only, which do not depend on its
actions, so
1. the policy's GRU runs over all T steps in one sequence pass;
2. the T policy patches and the T random-baseline patches of every video are cropped and
   encoded by f_L in one call ([2*B*T] patches);
3. the rewards of all steps come at once from the classifier's ``logits_and_replaced``: the
   step-t logits with frame t's feature swapped for the random patch's, from the same state
   after steps < t (pooling: max(running max_{t-1}, alt_t); GRU: one step from h_{t-1}).

The policy is in train mode: BatchNorm inside it normalises with batch statistics and updates
its running statistics once per batch (the rollout forward is reused for the first update; the
extra PPO epochs re-run it with the running statistics frozen, ``rl.frozen_bn_stats``). At
evaluation and in stage 3 it is in eval mode and uses those running statistics.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Dict, Optional, Tuple, Union, cast

import torch
from torch import Tensor

from adafocus_v1 import rl
from adafocus_v1.rewards import step_rewards, true_class_prob
from adafocus_v1.steps import glance_input
from bench.models import AdaFocusNet, PolicyOutput, random_pixel_locations

if TYPE_CHECKING:
    from bench.models.classifiers import GRUClassifier, PoolingClassifier


def sample_actions(out: PolicyOutput, generator: Optional[torch.Generator] = None) -> Tuple[Tensor, Tensor]:
    """-> (actions, locations [B,T',2]) drawn from the policy.

    Categorical: grid indices [B,T']. Gaussian: the *raw* sample [B,T',2] (log-prob evaluated
    there); only the location is clamped to [0, 1].
    """
    if out.head == "gaussian":
        mean = out.params.detach()
        noise = torch.randn(mean.shape, device=mean.device, dtype=mean.dtype, generator=generator)
        raw = mean + out.std * noise
        return raw, rl.gaussian_location(raw)
    if out.head == "categorical":
        return out.act("sample", generator)
    raise ValueError(f"V1's RL needs a stochastic policy head (categorical or gaussian), got {out.head!r}")


@torch.no_grad()
def step_confidences(
    net: AdaFocusNet, batch: Dict[str, Tensor], g_feats: Tensor, policy_loc: Tensor, random_loc: Tensor
) -> Tuple[Tensor, Tensor]:
    """True-class probabilities [B,T'] with the policy's patches and with the random baseline.

    conf_random[:, t] keeps the classifier state of the policy's steps < t and swaps in a random
    patch at step t. Video variant (T' = 1): the fused logits with the random location instead.
    """
    frames, labels = batch["frames"], batch["label"]
    b, t = frames.shape[:2]
    patches = torch.cat([net.crop_patches(frames, policy_loc), net.crop_patches(frames, random_loc)])
    _, pooled = net.focus(patches.flatten(0, 1))  # one f_L call on 2*B*T patches
    f_pol, f_rand = pooled.view(2, b, t, -1).unbind(0)
    if net.variant == "video":
        logits, alt_logits = net.classify(g_feats, f_pol), net.classify(g_feats, f_rand)
    else:  # one pass over the policy features serves both (classify(g, f_pol) is the first output)
        sequence = cast(Union["PoolingClassifier", "GRUClassifier"], net.classifier)  # the frame variant's
        logits, alt_logits = sequence.logits_and_replaced(
            torch.cat([g_feats, f_pol], -1), torch.cat([g_feats, f_rand], -1)
        )
    return true_class_prob(logits, labels), true_class_prob(alt_logits, labels)


def rl_step(
    net: AdaFocusNet,
    batch: Dict[str, Tensor],
    update: Callable[[Tensor], None],
    cfg: rl.RLConfig,
    reward: str,
    num_classes: int,
    generator: Optional[torch.Generator] = None,
) -> Dict[str, Tensor]:
    """Sample patches, score them, update the policy (``update(loss)``: one optimiser step).

    Returns the mean reward, the gain over random patches and the loss terms (detached tensors)."""
    frames = batch["frames"]
    with torch.no_grad():
        maps, g_feats = net.glance_forward(glance_input(batch))
    out = net.policy_forward(maps)  # train mode, with graph
    if out.value is None:
        raise ValueError("V1's policy needs a value head (build the network with method='v1')")
    actions, loc = sample_actions(out, generator)
    rand = random_pixel_locations(loc.shape[:-1], frames.shape[-1], net.patch_size, frames.device, generator)
    conf_pol, conf_rand = step_confidences(net, batch, g_feats, loc, rand)
    rewards = step_rewards(conf_pol, conf_rand, reward, num_classes)  # [B,T']
    returns = rl.episode_returns(rewards, cfg)
    stats = rl.policy_update(
        (out, out.value), lambda: _rescore(net, maps), actions, returns, update, cfg, policy=net.policy
    )
    stats.update(reward=rewards.mean(), gain_vs_random=(conf_pol - conf_rand).mean())
    return stats


def _rescore(net: AdaFocusNet, maps: Tensor) -> Tuple[PolicyOutput, Tensor]:
    out = net.policy_forward(maps)
    return out, cast(Tensor, out.value)  # V1's policy has a value head
