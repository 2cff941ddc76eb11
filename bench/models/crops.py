"""Patch locations and the two crop operators.

A location is a float tensor ``[..., 2]`` = (row, col) in [0, 1]; the patch's top-left corner is
``loc * (H - P)`` per axis, so a patch never leaves the frame. V1 crops at integer offsets on a
discrete grid (not differentiable in the location); V2 samples the patch bilinearly with
``grid_sample`` (differentiable in the location). Both are batched: no loop over samples.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F

# floor(loc * (H - P)) with a little slack, so grid positions like 1/6 * 96 = 15.9999... land on 16.
_FLOOR_EPS = 1e-4


def grid_positions(
    n: int, device: Optional[torch.device] = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """The n*n candidate locations {0, 1/(n-1), ..., 1}^2, row-major: ``[n*n, 2]`` (row, col)."""
    if n < 2:
        raise ValueError(f"grid_positions: n must be >= 2, got {n}")
    axis = torch.linspace(0.0, 1.0, n, device=device, dtype=dtype)
    rows, cols = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([rows.reshape(-1), cols.reshape(-1)], dim=1)


def _check(frames: torch.Tensor, loc: torch.Tensor, size: int) -> None:
    if frames.dim() != 4 or loc.shape != (frames.shape[0], 2):
        raise ValueError(
            f"crop: expected frames [N,C,H,W] and loc [N,2], got {tuple(frames.shape)} and {tuple(loc.shape)}"
        )
    if size > min(frames.shape[-2:]):
        raise ValueError(f"crop: patch size {size} exceeds frame size {tuple(frames.shape[-2:])}")


def crop_offsets(loc: torch.Tensor, height: int, width: int, size: int) -> torch.Tensor:
    """Integer top-left corners ``[N, 2]`` (row, col) = floor(loc * (H - P, W - P)), clamped."""
    span = loc.new_tensor([height - size, width - size])
    off = torch.floor(loc.detach() * span + _FLOOR_EPS)
    return torch.minimum(off.clamp_min(0), span).long()


def hard_crop(frames: torch.Tensor, loc: torch.Tensor, size: int) -> torch.Tensor:
    """Integer-offset crop. frames [N,C,H,W], loc [N,2] -> patches [N,C,P,P] (no gradient to loc)."""
    _check(frames, loc, size)
    n, _, h, w = frames.shape
    off = crop_offsets(loc, h, w, size)
    steps = torch.arange(size, device=frames.device)
    rows = off[:, 0:1] + steps  # [N,P]
    cols = off[:, 1:2] + steps  # [N,P]
    batch = torch.arange(n, device=frames.device)[:, None, None]
    # advanced indices around a slice: result is [N, P, P, C]
    patches = frames.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
    return patches.permute(0, 3, 1, 2).contiguous()


def interp_crop(frames: torch.Tensor, loc: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear crop. frames [N,C,H,W], loc [N,2] -> patches [N,C,P,P], differentiable in loc.

    The affine map sends the output's pixel centres to input pixel centres ``corner + j``
    (``align_corners=False``), so for integer corners the result equals ``hard_crop``.
    """
    _check(frames, loc, size)
    n, c, h, w = frames.shape
    y0 = loc[:, 0] * (h - size)
    x0 = loc[:, 1] * (w - size)
    zeros = torch.zeros_like(x0)
    # normalised coords: x_in = (P/W) * x_out + (x0 + (x0 + P))/W - 1  (same for rows with H); the
    # translation is rounded exactly as the V2 code rounds it, so patches equal its patches bit for bit
    # (a 1-ulp difference in the grid moves bilinear samples enough to show in train-mode gradients)
    theta = torch.stack(
        [
            torch.stack([zeros + size / w, zeros, -1 + (x0 + (x0 + size)) / w], dim=1),
            torch.stack([zeros, zeros + size / h, -1 + (y0 + (y0 + size)) / h], dim=1),
        ],
        dim=1,
    )  # [N,2,3]
    grid = F.affine_grid(theta.to(frames.dtype), [n, c, size, size], align_corners=False)
    return F.grid_sample(frames, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def random_locations(
    shape: Sequence[int], device: Optional[torch.device] = None, generator: Optional[torch.Generator] = None
) -> torch.Tensor:
    """Uniform locations ``[*shape, 2]`` in [0, 1): for the interpolated crop, which takes any real position
    (V2's diversity pass and random-patch evaluation, as the official code's ``torch.rand_like``)."""
    return torch.rand(*shape, 2, device=device, generator=generator)


def random_pixel_locations(
    shape: Sequence[int],
    frame_size: int,
    patch_size: int,
    device: torch.device,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """Uniformly random locations ``[*shape, 2]`` on the integer offsets 0..S-P (inclusive): for the hard
    crop, which cuts at whole pixels (V1's random patches). ``random_locations`` would round there, giving the
    first and last offsets half the weight of the others; here every valid top-left corner is equally likely,
    the last
    one included (the original's ``randint(0, S - P)`` never picks it)."""
    span = frame_size - patch_size
    if span <= 0:
        return torch.zeros(*shape, 2, device=device)
    off = torch.randint(0, span + 1, (*shape, 2), device=device, generator=generator)
    return off.float() / span


def centre_locations(shape: Sequence[int], device: Optional[torch.device] = None) -> torch.Tensor:
    """Centre locations ``[*shape, 2]`` (all 0.5)."""
    return torch.full((*shape, 2), 0.5, device=device)
