"""Stage-2 rewards: how much the policy's patch raises the classifier's true-class probability.

Let conf_t be the softmax probability of the true class at step t, from the classifier
state after steps 1..t-1 (all with the policy's patches) plus frame t's feature.

- ``random`` (default, the original's): conf_t(policy patch) - conf_t(random patch), both
  from the same state after t-1, so the reward isolates the choice made at step t;
- ``prev``: conf_t - conf_{t-1}, the improvement over the previous step; before the first
  step the classifier has seen nothing, so conf_{-1} is the chance level 1/K;
- ``conf``: conf_t itself.

The original's ``padding`` option crashes there (no branch for it) and is not offered.
"""

from __future__ import annotations

import torch
from torch import Tensor

REWARDS = ("random", "prev", "conf")


def true_class_prob(logits: Tensor, labels: Tensor) -> Tensor:
    """logits [B, T, K], labels [B] (int64) -> softmax probability of the label, [B, T]."""
    probs = logits.float().softmax(dim=-1)
    idx = labels.view(-1, 1, 1).expand(-1, probs.shape[1], 1)
    return probs.gather(-1, idx).squeeze(-1)


def step_rewards(conf_policy: Tensor, conf_random: Tensor | None, kind: str, num_classes: int) -> Tensor:
    """Per-step rewards [B, T] from the true-class probabilities [B, T].

    conf_random is only needed for ``random``.
    """
    if kind == "random":
        if conf_random is None:
            raise ValueError("the 'random' reward needs the random-patch confidences")
        return conf_policy - conf_random
    if kind == "prev":
        chance = conf_policy.new_full(conf_policy[:, :1].shape, 1.0 / num_classes)
        return conf_policy - torch.cat([chance, conf_policy[:, :-1]], dim=1)
    if kind == "conf":
        return conf_policy
    raise ValueError(f"reward must be one of {REWARDS}, got {kind!r}")
