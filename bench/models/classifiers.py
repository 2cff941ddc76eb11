"""Classifiers (f_C) and auxiliary heads.

- ``PoolingClassifier`` (V2, from FrameExit): per-frame MLP, running max over frames 1..t (``cummax``),
  one head per step t.
- ``GRUClassifier`` (V1): GRU over frames, one head per step (or one shared head).
- ``TSNAverage`` (Sth-Sth/Jester): average of per-frame glance logits + average of per-frame focus logits.
- ``AuxHead``: dropout + linear on a backbone's pooled feature (per-frame auxiliary logits).

Classifiers and heads run in fp32 under autocast (``bench.training.precision``): logits feed the losses, the
early-exit softmax and V1's rewards. Both sequence classifiers return logits for every step ``[B,T,K]`` (the
last step is the prediction), offer ``step(feat_t, state, t)`` for step-by-step use, and
``replaced_step_logits(feats, alt)``: for every t at once, the step-t logits when frame t's feature is
replaced by ``alt[:, t]`` while the state from frames < t is kept (V1's "random patch from the same state"
reward baseline).
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
from torch import nn

from bench.models.gru import run_gru
from bench.training.precision import fp32, full_precision


class AuxHead(nn.Module):
    """Dropout + linear: ``[..., D] -> [..., K]``."""

    def __init__(self, in_dim: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fp32(self.fc, self.dropout(x))


class PerStepHeads(nn.Module):
    """One linear head per step (weights ``[steps, D, K]``), or one shared head if ``shared``.

    forward(x [B,T,D]) -> [B,T,K] with head t applied to step t (T <= steps), batched with bmm.
    """

    def __init__(
        self, steps: int, in_dim: int, num_classes: int, dropout: float = 0.0, shared: bool = False
    ) -> None:
        super().__init__()
        self.steps, self.shared = steps, shared
        n = 1 if shared else steps
        bound = 1.0 / math.sqrt(in_dim)  # nn.Linear's default init range
        self.weight = nn.Parameter(torch.empty(n, in_dim, num_classes).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n, num_classes).uniform_(-bound, bound))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fp32(self._forward, x)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        if t > self.steps:
            raise ValueError(f"{t} steps given but the classifier has {self.steps} heads")
        x = self.dropout(x)
        if self.shared:
            return torch.matmul(x, self.weight[0]) + self.bias[0]
        out = torch.bmm(x.transpose(0, 1), self.weight[:t]) + self.bias[:t, None]  # [T,B,K]
        return out.transpose(0, 1)

    def one(self, x: torch.Tensor, t: int) -> torch.Tensor:
        """Head for step t: x [B,D] -> [B,K]."""
        i = 0 if self.shared else t
        return fp32(torch.addmm, self.bias[i], self.dropout(x), self.weight[i])


class PoolingClassifier(nn.Module):
    """MLP (linear -> BN -> ReLU) per frame, running max over frames, one head per step.

    forward(feats [B,T,D]) -> logits [B,T,K]; step t sees frames 1..t only.
    """

    def __init__(self, in_dim: int, hidden: int, num_classes: int, steps: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True))
        self.heads = PerStepHeads(steps, hidden, num_classes, dropout)
        self.hidden_dim = hidden

    def embed(self, feats: torch.Tensor) -> torch.Tensor:
        """feats [B,T,D] -> [B,T,hidden]."""
        b, t = feats.shape[:2]
        return self.mlp(feats.reshape(b * t, -1)).view(b, t, -1)

    @full_precision
    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.heads(torch.cummax(self.embed(feats), dim=1).values)

    @full_precision
    def step(
        self, feat_t: torch.Tensor, state: Optional[torch.Tensor], t: int
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """feat_t [B,D], state = running max [B,hidden] or None -> (logits [B,K], new state)."""
        h = self.embed(feat_t[:, None])[:, 0]
        state = h if state is None else torch.maximum(state, h)
        return self.heads.one(state, t), state

    def replaced_step_logits(self, feats: torch.Tensor, alt: torch.Tensor) -> torch.Tensor:
        """feats, alt [B,T,D] -> [B,T,K]: step t on max(running max of frames < t, embed(alt_t))."""
        return self.logits_and_replaced(feats, alt)[1]

    @full_precision
    def logits_and_replaced(
        self, feats: torch.Tensor, alt: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """(``forward(feats)``, ``replaced_step_logits(feats, alt)``) sharing the embedding of ``feats``."""
        running = torch.cummax(self.embed(feats), dim=1).values
        h_alt = self.embed(alt)
        prev = torch.cat([torch.full_like(h_alt[:, :1], float("-inf")), running[:, :-1]], dim=1)
        return self.heads(running), self.heads(torch.maximum(prev, h_alt))


class GRUClassifier(nn.Module):
    """GRU over frames, dropout, then one head per step (``shared_head``: one fc for all steps).

    forward(feats [B,T,D]) -> logits [B,T,K].
    """

    def __init__(
        self,
        in_dim: int,
        hidden: int,
        num_classes: int,
        steps: int,
        dropout: float = 0.0,
        shared_head: bool = False,
    ) -> None:
        super().__init__()
        self.gru = nn.GRU(in_dim, hidden)  # time-major: bench.models.gru.run_gru
        self.heads = PerStepHeads(steps, hidden, num_classes, dropout, shared=shared_head)
        self.hidden_dim = hidden

    @full_precision
    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        out, _ = run_gru(self.gru, feats)
        return self.heads(out)

    @full_precision
    def step(
        self, feat_t: torch.Tensor, state: Optional[torch.Tensor], t: int
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """feat_t [B,D], state = GRU hidden [1,B,H] or None -> (logits [B,K], new state)."""
        out, state = run_gru(self.gru, feat_t[:, None], state)
        return self.heads.one(out[:, 0], t), state

    def replaced_step_logits(self, feats: torch.Tensor, alt: torch.Tensor) -> torch.Tensor:
        """feats, alt [B,T,D] -> [B,T,K]: one GRU step on alt_t from the hidden state after frames < t."""
        return self.logits_and_replaced(feats, alt)[1]

    @full_precision
    def logits_and_replaced(
        self, feats: torch.Tensor, alt: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """(``forward(feats)``, ``replaced_step_logits(feats, alt)``) sharing the GRU pass over ``feats``."""
        b, t, d = feats.shape
        out, _ = run_gru(self.gru, feats)
        prev = torch.cat([out.new_zeros(b, 1, out.shape[-1]), out[:, :-1]], dim=1)  # h_{t-1}
        y, _ = run_gru(self.gru, alt.reshape(b * t, 1, d), prev.reshape(1, b * t, -1).contiguous())
        return self.heads(out), self.heads(y.view(b, t, -1))


class TSNAverage(nn.Module):
    """TSN fusion: mean_t glance_fc(glance feats) + mean_t focus_fc(focus feats) -> ``[B,1,K]``.

    ``detach``: the fused heads see stopped features (V2 Sth-Sth: the backbones then learn only
    through their auxiliary heads).
    """

    def __init__(
        self, glance_dim: int, focus_dim: int, num_classes: int, dropout: float = 0.0, detach: bool = False
    ) -> None:
        super().__init__()
        self.glance_fc = AuxHead(glance_dim, num_classes, dropout)
        self.focus_fc = AuxHead(focus_dim, num_classes, dropout)
        self.detach = detach

    @full_precision
    def forward(self, glance_feats: torch.Tensor, focus_feats: torch.Tensor) -> torch.Tensor:
        """glance_feats [B,Tg,Dg], focus_feats [B,T,Df] -> [B,1,K]."""
        if self.detach:
            glance_feats, focus_feats = glance_feats.detach(), focus_feats.detach()
        fused = self.glance_fc(glance_feats).mean(1) + self.focus_fc(focus_feats).mean(1)
        return fused[:, None]
