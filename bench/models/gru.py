"""``run_gru``: every GRU of the models (policy, GRU classifier) runs through here.

Two costs of ``nn.GRU`` on CPU that a training step does not need to pay:

- a batch-first GRU with frozen weights (V1's stage 2) computes its input projection as a batched matmul
  over an expanded weight, about 7x slower than the plain product: inputs go in time-major and contiguous;
- with trainable weights, autograd accumulates the recurrent weight's gradient one step at a time: T outer
  products ``[3H, B] x [B, H]``, each writing a full ``[3H, H]`` matrix (50 MB for H = 2048: 0.64 s of the
  paper V2 step). ``GRURecurrence`` computes the same gradient as one ``[3H, T*B] x [T*B, H]`` product.

Same parameters (``nn.GRU``'s, so state dicts are unchanged), same gates (r, z, n as in ``nn.GRU``), same
values; the gradients equal ``nn.GRU``'s up to summation order (``tests/test_gru.py``).
"""

from __future__ import annotations

from typing import Any, Optional, Tuple, cast

import torch
from torch import Tensor, nn

from bench.training.precision import fp32


class GRURecurrence(torch.autograd.Function):
    """The recurrent part of a one-layer GRU: gi [T,B,3H] (input projection with its bias), h0 [B,H],
    w_hh [3H,H], b_hh [3H] -> hidden states [T,B,H]."""

    @staticmethod
    def forward(ctx: Any, gi: Tensor, h0: Tensor, w_hh: Tensor, b_hh: Tensor) -> Tensor:
        h, saved = h0, []
        outs = []
        for t in range(gi.shape[0]):
            gh = torch.addmm(b_hh, h, w_hh.t())
            i_r, i_z, i_n = gi[t].chunk(3, 1)
            h_r, h_z, h_n = gh.chunk(3, 1)
            r = torch.sigmoid(i_r + h_r)
            z = torch.sigmoid(i_z + h_z)
            n = torch.tanh(i_n + r * h_n)
            saved.append((h, r, z, n, h_n))
            h = n + z * (h - n)
            outs.append(h)
        ctx.steps = saved
        ctx.save_for_backward(w_hh)
        return torch.stack(outs)

    @staticmethod
    def backward(ctx: Any, d_out: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        (w_hh,) = ctx.saved_tensors
        steps = ctx.steps
        d_gi = d_out.new_empty(d_out.shape[0], d_out.shape[1], w_hh.shape[0])
        d_gh = torch.empty_like(d_gi)
        dh = torch.zeros_like(d_out[0])
        for t in range(len(steps) - 1, -1, -1):
            h_prev, r, z, n, h_n = steps[t]
            dh = dh + d_out[t]
            d_pre_n = dh * (1 - z) * (1 - n * n)
            d_pre_r = d_pre_n * h_n * r * (1 - r)
            d_pre_z = dh * (h_prev - n) * z * (1 - z)
            torch.cat([d_pre_r, d_pre_z, d_pre_n], 1, out=d_gi[t])
            torch.cat([d_pre_r, d_pre_z, d_pre_n * r], 1, out=d_gh[t])
            dh = dh * z + d_gh[t] @ w_hh
        h_prevs = torch.stack([s[0] for s in steps])
        d_w = d_gh.flatten(0, 1).t() @ h_prevs.flatten(0, 1)  # one product for every step
        return d_gi, dh, d_w, d_gh.sum((0, 1))


def _sequence(gru: nn.GRU, x: Tensor, h: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
    """x [T,B,D] time-major -> (out [T,B,H], h_n [1,B,H]) with the batched recurrent weight gradient."""
    # nn.GRU registers its per-layer parameters by name at run time
    w_ih, b_ih = cast(Tensor, gru.weight_ih_l0), cast(Tensor, gru.bias_ih_l0)
    gi = torch.nn.functional.linear(x, w_ih, b_ih)
    h0 = x.new_zeros(x.shape[1], gru.hidden_size) if h is None else h[0]
    out = GRURecurrence.apply(gi, h0, gru.weight_hh_l0, gru.bias_hh_l0)
    return out, out[-1:]


def _plain(gru: nn.GRU) -> bool:
    """One layer, one direction, with biases, time-major: what ``GRURecurrence`` implements."""
    return gru.num_layers == 1 and not gru.bidirectional and gru.bias and not gru.batch_first


def run_gru(gru: nn.GRU, x: Tensor, h: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """A time-major ``gru`` (``batch_first=False``) over batch-first ``x`` [B,T,D] -> (out [B,T,H],
    h_n [1,B,H]), in fp32 under autocast. Training a plain GRU's recurrent weight uses ``GRURecurrence``;
    everything else ``nn.GRU`` itself."""
    if gru.batch_first:
        raise ValueError("run_gru expects a time-major GRU (batch_first=False)")
    seq = x.transpose(0, 1).contiguous()
    if _plain(gru) and torch.is_grad_enabled() and gru.weight_hh_l0.requires_grad:
        out, h = fp32(lambda a, b: _sequence(gru, a, b), seq, h)
    else:
        out, h = fp32(gru, seq, h)
    return out.transpose(0, 1).contiguous(), h
