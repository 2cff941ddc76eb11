"""Patch-selection policies (pi) over glance feature maps, with three heads.

- ``categorical``: logits over an n*n grid of locations (V1, discrete PPO/REINFORCE);
- ``gaussian``: mean = sigmoid(linear), fixed std, samples clamped to [0, 1] (V1 continuous PPO);
- ``sigmoid``: a deterministic location = sigmoid(linear) (V2, trained through the crop).

Both trunks also carry a value head (critic) for V1's actor-critic RL. The policy's input never
depends on its own actions (it sees glance maps only), so all steps are computed at once and
``evaluate(maps, actions)`` re-scores stored actions under the current parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union, cast

import torch
import torch.nn.functional as F
from torch import nn

from bench.models.crops import grid_positions
from bench.models.gru import run_gru
from bench.training.precision import full_precision

HEADS = ("categorical", "gaussian", "sigmoid")
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


@dataclass
class PolicyOutput:
    """What a policy says for a batch: ``T'`` decisions per video (T for recurrent, 1 for video).

    params: categorical logits ``[B,T',A]``; gaussian mean ``[B,T',2]``; sigmoid location ``[B,T',2]``.
    value: critic ``[B,T']`` (None without a value head). hidden: trunk features ``[B,T',H]``.
    grid: ``[A,2]`` candidate locations (categorical only).
    """

    head: str
    params: torch.Tensor
    hidden: torch.Tensor
    value: Optional[torch.Tensor] = None
    grid: Optional[torch.Tensor] = None
    std: float = 0.25

    def act(
        self, mode: str = "greedy", generator: Optional[torch.Generator] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """-> (actions, locations [B,T',2]). Actions: long ``[B,T']`` (categorical) or ``[B,T',2]``.

        ``greedy`` takes the argmax / the mean; ``sample`` draws from the distribution (the sigmoid
        head is deterministic: both modes give its location).
        """
        if mode not in ("greedy", "sample"):
            raise ValueError(f"policy mode must be 'greedy' or 'sample', got {mode!r}")
        p = self.params.detach()
        if self.head == "categorical":
            if mode == "greedy":
                actions = p.argmax(-1)
            else:
                probs = F.softmax(p.float(), -1).reshape(-1, p.shape[-1])
                actions = torch.multinomial(probs, 1, generator=generator).view(p.shape[:-1])
            return actions, self.to_locations(actions)
        if self.head == "gaussian" and mode == "sample":
            noise = torch.randn(p.shape, device=p.device, dtype=p.dtype, generator=generator)
            actions = (p + self.std * noise).clamp(0.0, 1.0)
            return actions, actions
        if self.head == "gaussian":
            return p, p
        return self.params, self.params  # sigmoid: keep the graph (V2 trains through the crop)

    def locations(self, mode: str = "greedy", generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Locations ``[B,T',2]`` (see ``act``)."""
        return self.act(mode, generator)[1]

    def to_locations(self, actions: torch.Tensor) -> torch.Tensor:
        """Actions -> locations ``[B,T',2]`` (grid lookup for categorical, identity otherwise)."""
        if self.head == "categorical":
            assert self.grid is not None  # a categorical head's output carries its grid
            return self.grid.to(actions.device)[actions]
        return actions

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        """Log-probability ``[B,T']`` of given actions (clamped gaussian actions scored as they are)."""
        if self.head == "categorical":
            return F.log_softmax(self.params, -1).gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
        if self.head == "gaussian":
            z = (actions - self.params) / self.std
            return (-0.5 * z * z - math.log(self.std) - _LOG_SQRT_2PI).sum(-1)
        raise ValueError("the sigmoid policy head is deterministic: it has no log-probability")

    def entropy(self) -> torch.Tensor:
        """Entropy ``[B,T']`` of the action distribution."""
        if self.head == "categorical":
            logp = F.log_softmax(self.params, -1)
            return -(logp.exp() * logp).sum(-1)
        if self.head == "gaussian":
            per_dim = 0.5 + _LOG_SQRT_2PI + math.log(self.std)
            return self.params.new_full(self.params.shape[:-1], 2 * per_dim)
        raise ValueError("the sigmoid policy head is deterministic: it has no entropy")


class _BatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d that also trains on a batch of one: statistics cannot be estimated from one
    sample, so such a batch is normalised with the running statistics (left unchanged). The video
    policy sees one row per video, so a batch-1 training step would otherwise fail."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] == 1:
            return F.batch_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
            )
        return super().forward(x)


def _act(name: str) -> nn.Module:
    if name not in ("tanh", "relu"):
        raise ValueError(f"policy activation must be 'tanh' or 'relu', got {name!r}")
    return nn.Tanh() if name == "tanh" else nn.ReLU(inplace=True)


def _hw(map_hw: Union[int, Sequence[int]]) -> Tuple[int, int]:
    return (map_hw, map_hw) if isinstance(map_hw, int) else (int(map_hw[0]), int(map_hw[1]))


class _Policy(nn.Module):
    """Shared pieces: a conv1x1 map encoder, the action head and the value head."""

    # the heads are built by each subclass, the grid buffer in __init__ (declared for the type checker)
    action: nn.Linear
    value: Optional[nn.Linear]
    grid: Optional[torch.Tensor]

    def __init__(
        self,
        in_channels: int,
        map_hw: Union[int, Sequence[int]],
        head: str,
        grid_n: Optional[int],
        std: float,
        conv_channels: int,
        norm: bool,
        act: str,
    ) -> None:
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"policy head must be one of {HEADS}, got {head!r}")
        if head == "categorical" and not grid_n:
            raise ValueError("the categorical policy head needs grid_n")
        h, w = _hw(map_hw)
        self.head_type, self.std = head, float(std)
        layers: List[nn.Module] = [nn.Conv2d(in_channels, conv_channels, 1, bias=False)]
        layers += [nn.BatchNorm2d(conv_channels)] if norm else []
        self.map_encoder = nn.Sequential(*layers, _act(act), nn.Flatten())
        self.flat_dim = conv_channels * h * w
        self.register_buffer(
            "grid", grid_positions(cast(int, grid_n)) if head == "categorical" else None, persistent=False
        )
        self.out_dim = cast(int, grid_n) * cast(int, grid_n) if head == "categorical" else 2  # checked above

    @staticmethod
    def _mlp(dims: Sequence[int], norm: bool, act: str) -> nn.Sequential:
        layers = []
        for d_in, d_out in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(d_in, d_out)] + ([_BatchNorm1d(d_out)] if norm else []) + [_act(act)]
        return nn.Sequential(*layers)

    def _output(self, hidden: torch.Tensor) -> PolicyOutput:
        """hidden [B,T',H] -> PolicyOutput."""
        raw = self.action(hidden)
        params = raw if self.head_type == "categorical" else torch.sigmoid(raw)
        value = self.value(hidden).squeeze(-1) if self.value is not None else None
        return PolicyOutput(self.head_type, params, hidden, value, self.grid, self.std)

    def evaluate(
        self, maps: torch.Tensor, actions: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        """Re-score stored actions: -> (log_prob [B,T'], entropy [B,T'], value [B,T'] or None)."""
        out = self(maps)
        return out.log_prob(actions), out.entropy(), out.value


class RecurrentPolicy(_Policy):
    """Per-frame policy: conv1x1 -> norm -> act -> flatten -> linear -> norm -> act -> GRU over T.

    forward(maps [B,T,C,h,w]) -> PolicyOutput with T' = T (one location per frame).
    """

    def __init__(
        self,
        in_channels: int,
        map_hw: Union[int, Sequence[int]],
        hidden: int,
        head: str,
        grid_n: Optional[int] = None,
        std: float = 0.25,
        *,
        conv_channels: int = 64,
        norm: bool = True,
        act: str = "tanh",
        value_head: bool = True,
    ) -> None:
        super().__init__(in_channels, map_hw, head, grid_n, std, conv_channels, norm, act)
        self.encoder = self._mlp([self.flat_dim, hidden], norm, act)
        self.gru = nn.GRU(hidden, hidden)  # time-major (bench.models.gru.run_gru)
        self.action = nn.Linear(hidden, self.out_dim)
        self.value = nn.Linear(hidden, 1) if value_head else None
        self.hidden_dim = hidden

    @full_precision  # fp32 under autocast: locations, log-probabilities, values
    def forward(self, maps: torch.Tensor) -> PolicyOutput:
        b, t = maps.shape[:2]
        x = self.encoder(self.map_encoder(maps.flatten(0, 1))).view(b, t, -1)
        hidden, _ = run_gru(self.gru, x)
        return self._output(hidden)


class VideoPolicy(_Policy):
    """One decision per video from the glance maps stacked on channels (Sth-Sth/Jester variant).

    ``in_channels`` = C * Tg. Trunk: conv1x1 -> norm -> act -> flatten -> MLP (``hidden`` widths,
    each linear -> norm -> act), optionally followed by a one-step GRU (V1's Sth-Sth actor-critic).
    forward(maps [B,Tg,C,h,w]) -> PolicyOutput with T' = 1.
    """

    def __init__(
        self,
        in_channels: int,
        map_hw: Union[int, Sequence[int]],
        hidden: Union[int, Sequence[int]] = (1024, 512),
        head: str = "sigmoid",
        grid_n: Optional[int] = None,
        std: float = 0.25,
        *,
        conv_channels: int = 64,
        norm: bool = True,
        act: str = "tanh",
        gru: bool = False,
        value_head: bool = True,
    ) -> None:
        super().__init__(in_channels, map_hw, head, grid_n, std, conv_channels, norm, act)
        widths = [hidden] if isinstance(hidden, int) else list(hidden)
        self.encoder = self._mlp([self.flat_dim, *widths], norm, act)
        self.gru = nn.GRU(widths[-1], widths[-1]) if gru else None
        self.action = nn.Linear(widths[-1], self.out_dim)
        self.value = nn.Linear(widths[-1], 1) if value_head else None
        self.in_channels = in_channels
        self.hidden_dim = widths[-1]

    @full_precision  # fp32 under autocast: locations, log-probabilities, values
    def forward(self, maps: torch.Tensor) -> PolicyOutput:
        b = maps.shape[0]
        stacked = maps.reshape(b, -1, *maps.shape[-2:])  # [B, Tg*C, h, w]
        if stacked.shape[1] != self.in_channels:
            raise ValueError(
                f"VideoPolicy expects {self.in_channels} stacked channels, got {stacked.shape[1]}"
            )
        hidden = self.encoder(self.map_encoder(stacked)).unsqueeze(1)  # [B,1,H]
        if self.gru is not None:
            hidden, _ = run_gru(self.gru, hidden)
        return self._output(hidden)
