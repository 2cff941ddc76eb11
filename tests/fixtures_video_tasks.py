"""Small separable tasks for the video variant (TSM backbones, Tg glance + T focus frames), as batches.

Frames are ``S`` px, already normalised (mean 0, unit-ish scale), drawn in torch from a generator:

- ``motion_batch``: a bright square moves down, up, right or left (the class) over noise. Every single
  frame is ambiguous; only the *order* of the frames tells the class, so a backbone learns it only
  when its temporal shift sees each video's frames in time order, with that video's label.
- ``texture_batch``: the whole frame is one fine pattern (the class; 2-px cells, random phase and
  sign). Any patch shows it; the glance (4x downsampled) cannot resolve it.
- ``object_batch``: a small object with a marker border (visible to the glance) and a fine class
  pattern inside (not visible to it) sits in one of the four corners; only a patch on it tells the
  class. ``centre`` holds the object's centre (row, col) as a fraction of the frame side.
"""

from __future__ import annotations

import dataclasses
from typing import Dict

import torch

from bench.data.synthetic import PATTERNS, pattern, taper

S, T, TG, GLANCE, PATCH = 32, 4, 2, 8, 16
CLASSES = 4


def video_preset(method: str, **overrides):
    """The tiny video-variant preset shrunk to the tasks' size (random init: no cached weights)."""
    from bench.presets import get_preset

    p = get_preset(
        "jester",
        "tiny",
        method=method,
        input_size=S,
        resize=S,
        glance_size=GLANCE,
        patch_size=PATCH,
        frames=T,
        glance_frames=TG,
        **overrides,
    )
    return dataclasses.replace(p, focus_pretrained=None, glance_pretrained=None)


def _bank(n: int) -> torch.Tensor:
    """The first CLASSES patterns, ``[CLASSES, n, n]`` in {-1, +1}, 2-px cells."""
    return torch.stack([torch.from_numpy(pattern(name, n, 2)).float() for name in PATTERNS[:CLASSES]])


def _item(frames: torch.Tensor, labels: torch.Tensor, **extra) -> Dict[str, torch.Tensor]:
    idx = torch.linspace(0, T - 1, TG).round().long()  # glance frames span the video, in order
    return {"frames": frames, "glance": frames[:, idx].contiguous(), "label": labels, **extra}


def motion_batch(b: int, g: torch.Generator, blob: int = 10) -> Dict[str, torch.Tensor]:
    y = torch.randint(0, CLASSES, (b,), generator=g)
    frames = torch.randn(b, T, 3, S, S, generator=g) * 0.3
    along = (2 + (S - blob - 4) * torch.arange(T) / (T - 1)).round().long()  # [T] increasing
    forward = (y % 2 == 0)[:, None]  # down / right
    pos = torch.where(forward, along[None], S - blob - along[None])  # [B, T]
    across = torch.randint(4, S - blob - 4, (b, 1), generator=g).expand(b, T)
    vertical = (y < 2)[:, None]
    row0, col0 = torch.where(vertical, pos, across), torch.where(vertical, across, pos)  # [B, T]
    r = torch.arange(S)
    inside_r = (r >= row0[..., None]) & (r < row0[..., None] + blob)  # [B, T, S]
    inside_c = (r >= col0[..., None]) & (r < col0[..., None] + blob)
    mask = (inside_r[..., :, None] & inside_c[..., None, :])[:, :, None]  # [B, T, 1, S, S]
    return _item(torch.where(mask, torch.tensor(2.0), frames), y)


def texture_batch(b: int, g: torch.Generator) -> Dict[str, torch.Tensor]:
    y = torch.randint(0, CLASSES, (b,), generator=g)
    bank = _bank(S + 4)
    oy, ox = torch.randint(0, 4, (2, b), generator=g)
    r = torch.arange(S)
    tex = bank[y[:, None, None], (oy[:, None] + r)[:, :, None], (ox[:, None] + r)[:, None, :]]  # [B, S, S]
    sign = torch.randint(0, 2, (b, 1, 1), generator=g) * 2.0 - 1.0
    frames = (tex * sign)[:, None, None] + torch.randn(b, T, 3, S, S, generator=g) * 0.3
    return _item(frames, y)


def object_batch(b: int, g: torch.Generator, size: int = 12, border: int = 2) -> Dict[str, torch.Tensor]:
    y = torch.randint(0, CLASSES, (b,), generator=g)
    corner = torch.randint(0, 4, (b,), generator=g)
    n = size - 2 * border
    inner = _bank(n) * torch.from_numpy(taper(n)).float() * 1.5  # [K, n, n]
    sprite = torch.tensor([2.0, -2.0, 2.0]).view(1, 3, 1, 1).repeat(b, 1, size, size)  # magenta marker
    sprite[:, :, border : border + n, border : border + n] = inner[y][:, None]
    frames = torch.randn(b, 3, S, S, generator=g) * 0.3
    top, left = (corner // 2) * (S - size), (corner % 2) * (S - size)
    r = torch.arange(S)
    rows = (r[None] - top[:, None]).clamp(0, size - 1)  # [B, S]
    cols = (r[None] - left[:, None]).clamp(0, size - 1)
    placed = sprite[
        torch.arange(b)[:, None, None, None],
        torch.arange(3)[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]  # [B, 3, S, S]
    inside = (
        ((r[None] >= top[:, None]) & (r[None] < top[:, None] + size))[:, :, None]
        & ((r[None] >= left[:, None]) & (r[None] < left[:, None] + size))[:, None, :]
    )[:, None]
    frames = torch.where(inside, placed, frames)[:, None].expand(b, T, 3, S, S).contiguous()
    centre = torch.stack([top + size / 2, left + size / 2], 1).float() / S
    return _item(frames, y, centre=centre)
