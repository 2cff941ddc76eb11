"""Patch locations and crops: hard (integer offsets) vs interpolation (grid_sample)."""

import pytest
import torch

from bench.models import (
    centre_locations,
    crop_offsets,
    grid_positions,
    hard_crop,
    interp_crop,
    random_locations,
)


def test_grid_positions_are_row_major_and_span_the_unit_square():
    g = grid_positions(7)
    assert g.shape == (49, 2)
    assert torch.allclose(g[0], torch.tensor([0.0, 0.0])) and torch.allclose(g[-1], torch.tensor([1.0, 1.0]))
    assert torch.allclose(g[1], torch.tensor([0.0, 1 / 6]))  # column moves first
    assert torch.allclose(g[7], torch.tensor([1 / 6, 0.0]))
    for n in (5, 6, 8):
        assert grid_positions(n).shape == (n * n, 2)


def test_grid_offsets_are_exact_integers_despite_float_rounding():
    # 1/6 * 96 is 15.99999 in float32 for some positions: the offset must still be 16*k
    off = crop_offsets(grid_positions(7), 224, 224, 128)
    assert set(off[:, 0].tolist()) == {16 * k for k in range(7)}


def test_hard_crop_matches_slicing():
    torch.manual_seed(0)
    frames = torch.randn(5, 3, 40, 56)
    loc = torch.rand(5, 2)
    out = hard_crop(frames, loc, 16)
    assert out.shape == (5, 3, 16, 16)
    for i in range(5):  # reference loop (test only)
        y = int(torch.floor(loc[i, 0] * 24 + 1e-4))
        x = int(torch.floor(loc[i, 1] * 40 + 1e-4))
        assert torch.equal(out[i], frames[i, :, y : y + 16, x : x + 16])


@pytest.mark.parametrize("dtype,atol", [(torch.float64, 1e-9), (torch.float32, 1e-3)])
def test_interp_crop_equals_hard_crop_on_integer_offsets(dtype, atol):
    torch.manual_seed(1)
    frames = torch.randn(49, 3, 224, 224, dtype=dtype)
    loc = grid_positions(7, dtype=dtype)  # (224-128) * k/6 = 16k: integer corners
    assert torch.allclose(interp_crop(frames, loc, 128), hard_crop(frames, loc, 128), atol=atol, rtol=0)
    # non-square frames, arbitrary integer corners
    frames = torch.randn(6, 2, 30, 50, dtype=dtype)
    corners = torch.tensor([[0, 0], [3, 7], [10, 40], [5, 1], [10, 0], [0, 40]], dtype=dtype)
    loc = corners / torch.tensor([20.0, 40.0], dtype=dtype)
    assert torch.allclose(interp_crop(frames, loc, 10), hard_crop(frames, loc, 10), atol=atol, rtol=0)


def test_interp_crop_interpolates_between_pixels():
    frames = torch.arange(10.0, dtype=torch.float64).view(1, 1, 1, 10).expand(1, 1, 10, 10).contiguous()
    loc = torch.tensor([[0.0, 2.5 / 6]], dtype=torch.float64)  # column corner 2.5
    out = interp_crop(frames, loc, 4)
    assert torch.allclose(out[0, 0, 0], torch.tensor([2.5, 3.5, 4.5, 5.5], dtype=torch.float64))


def test_interp_crop_passes_gradients_to_the_location():
    torch.manual_seed(2)
    frames = torch.randn(3, 3, 32, 32, dtype=torch.float64)
    loc = torch.tensor([[0.31, 0.62], [0.5, 0.5], [0.13, 0.87]], dtype=torch.float64, requires_grad=True)
    weights = torch.randn(3, 3, 12, 12, dtype=torch.float64)
    (interp_crop(frames, loc, 12) * weights).sum().backward()
    assert loc.grad is not None and loc.grad.abs().min() > 0
    # the gradient is the derivative of the crop: check against a central difference
    eps = 1e-6
    for i, j in ((0, 0), (2, 1)):
        d = torch.zeros_like(loc)
        d[i, j] = eps

        def f(loc):
            return (interp_crop(frames, loc, 12) * weights).sum()

        numeric = (f(loc.detach() + d) - f(loc.detach() - d)) / (2 * eps)
        assert torch.isclose(loc.grad[i, j], numeric, rtol=1e-4)


def test_hard_crop_has_no_gradient_path_to_the_location():
    loc = torch.rand(2, 2, requires_grad=True)
    out = hard_crop(torch.randn(2, 3, 16, 16, requires_grad=True), loc, 8)
    out.sum().backward()
    assert loc.grad is None


def test_crop_rejects_bad_shapes():
    with pytest.raises(ValueError):
        hard_crop(torch.randn(2, 3, 16, 16), torch.rand(3, 2), 8)
    with pytest.raises(ValueError):
        interp_crop(torch.randn(2, 3, 16, 16), torch.rand(2, 2), 17)


def test_random_and_centre_locations():
    g = torch.Generator().manual_seed(0)
    r = random_locations((4, 8), generator=g)
    assert r.shape == (4, 8, 2) and 0 <= r.min() and r.max() < 1
    assert torch.equal(random_locations((4, 8), generator=torch.Generator().manual_seed(0)), r)
    c = centre_locations((3, 1))
    assert c.shape == (3, 1, 2) and torch.all(c == 0.5)
