"""run_gru (time-major input, batched recurrent-weight gradient) computes exactly what nn.GRU computes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.models.gru import GRURecurrence, run_gru


@pytest.mark.parametrize("steps,batch,with_h0", [(16, 2, False), (5, 3, True), (1, 4, True)])
def test_run_gru_matches_nn_gru_values_and_gradients(steps, batch, with_h0):
    torch.manual_seed(0)
    ours = nn.GRU(6, 8).double()  # time-major, as the models build it
    ref = nn.GRU(6, 8, batch_first=True).double()
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(batch, steps, 6, dtype=torch.double, requires_grad=True)
    h0 = torch.randn(1, batch, 8, dtype=torch.double, requires_grad=True) if with_h0 else None
    out, h_n = run_gru(ours, x, h0)
    ref_out, ref_h = ref(x, h0)
    assert torch.allclose(out, ref_out, atol=1e-12) and torch.allclose(h_n, ref_h, atol=1e-12)
    w = torch.randn_like(out)
    grads = torch.autograd.grad(
        (out * w).sum() + h_n.sum(), [x, *ours.parameters()] + ([h0] if with_h0 else [])
    )
    ref_grads = torch.autograd.grad(
        (ref_out * w).sum() + ref_h.sum(), [x, *ref.parameters()] + ([h0] if with_h0 else [])
    )
    for g, r in zip(grads, ref_grads):
        assert torch.allclose(g, r, atol=1e-10)


def test_recurrence_passes_gradcheck():
    torch.manual_seed(1)
    t, b, h = 3, 2, 4
    args = [
        torch.randn(t, b, 3 * h, dtype=torch.double, requires_grad=True),
        torch.randn(b, h, dtype=torch.double, requires_grad=True),
        torch.randn(3 * h, h, dtype=torch.double, requires_grad=True),
        torch.randn(3 * h, dtype=torch.double, requires_grad=True),
    ]
    assert torch.autograd.gradcheck(GRURecurrence.apply, args)


def test_frozen_or_batch_first_grus_take_the_plain_path():
    gru = nn.GRU(4, 5).requires_grad_(False)
    x = torch.randn(2, 3, 4)
    out, _ = run_gru(gru, x)
    assert out.grad_fn is None and out.shape == (2, 3, 5)
    with pytest.raises(ValueError, match="time-major"):
        run_gru(nn.GRU(4, 5, batch_first=True), x)
