"""Spatial transforms applied to a whole clip at once (one geometry for all its frames).

Training: TSN multi-scale crop (crop side = short side x one of ``scales``, aspect distortion at most one
step, one of 13 fixed offsets) resized to ``input_size``, then a horizontal flip with p = 0.5 when the
dataset allows it. Evaluation: resize the short side to ``resize``, centre crop ``input_size``.
The geometry is drawn once per item and applied to the focus frames, the glance frames and the boxes,
so a location chosen on the glance view points at the same content in the focus view.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from bench.data.sampling import global_rng

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Offsets of the multi-scale crop in quarters of the free space (x, y): corners, centre, edge
# midpoints and the four inner quarter points (TSN's "more fixed crops").
_FIX_OFFSETS = (
    (0, 0),
    (4, 0),
    (0, 4),
    (4, 4),
    (2, 2),
    (0, 2),
    (4, 2),
    (2, 4),
    (2, 0),
    (1, 1),
    (3, 1),
    (1, 3),
    (3, 3),
)


@dataclass(frozen=True)
class Geometry:
    """resize the frame to ``pre`` (h, w) if set -> crop ``box`` (y0, x0, h, w) -> resize to ``out`` ->
    flip."""

    pre: Optional[Tuple[int, int]]
    box: Tuple[int, int, int, int]
    out: int
    flip: bool = False


def eval_geometry(h: int, w: int, input_size: int, resize: int) -> Geometry:
    """Resize the short side to ``resize`` (aspect kept), then the centre ``input_size`` square."""
    scale = resize / min(h, w)
    rh, rw = (h, w) if min(h, w) == resize else (max(resize, round(h * scale)), max(resize, round(w * scale)))
    y0, x0 = (rh - input_size) // 2, (rw - input_size) // 2
    return Geometry(
        pre=None if (rh, rw) == (h, w) else (rh, rw), box=(y0, x0, input_size, input_size), out=input_size
    )


def train_geometry(
    h: int,
    w: int,
    input_size: int,
    scales: Sequence[float],
    allow_flip: bool,
    rng: Optional[np.random.Generator] = None,
) -> Geometry:
    """Random TSN multi-scale crop (+ flip when ``allow_flip``), drawn from ``rng`` (default:
    ``global_rng()``)."""
    base = min(h, w)
    sizes = [max(1, int(base * s)) for s in scales]
    pairs = [(ch, cw) for i, ch in enumerate(sizes) for j, cw in enumerate(sizes) if abs(i - j) <= 1]
    r = (rng if rng is not None else global_rng()).integers(0, 1 << 30, size=3).tolist()
    ch, cw = pairs[r[0] % len(pairs)]
    ox, oy = _FIX_OFFSETS[r[1] % len(_FIX_OFFSETS)]
    y0, x0 = (h - ch) * oy // 4, (w - cw) * ox // 4
    flip = allow_flip and bool(r[2] & 1)
    return Geometry(pre=None, box=(y0, x0, ch, cw), out=input_size, flip=flip)


def _resize(x: np.ndarray, hw: Tuple[int, int]) -> np.ndarray:
    """Antialiased bilinear resize of float ``[N, H, W, 3]`` (channels-last in, channels-last out)."""
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).permute(0, 3, 1, 2)
    t = F.interpolate(t, size=hw, mode="bilinear", align_corners=False, antialias=True)
    return t.permute(0, 2, 3, 1).numpy()


_MEAN255 = np.asarray(IMAGENET_MEAN, dtype=np.float32) * 255.0
_INV_STD255 = 1.0 / (np.asarray(IMAGENET_STD, dtype=np.float32) * 255.0)


def apply_geometry(frames: np.ndarray, geo: Geometry, normalize: bool = True) -> torch.Tensor:
    """uint8 ``[N, H, W, 3]`` -> float32 ``[N, 3, S, S]``, ImageNet-normalised when ``normalize``.

    Crop, flip and normalisation run in numpy: on clip-sized arrays torch's intra-op threads cost more
    than the arithmetic when the main process also trains (measured 7x slower with 2 busy cores).
    """
    x = np.asarray(frames)
    if geo.pre is not None:
        x = _resize(x, geo.pre)
    y0, x0, ch, cw = geo.box
    x = x[:, y0 : y0 + ch, x0 : x0 + cw]
    if (ch, cw) != (geo.out, geo.out):
        x = _resize(x, (geo.out, geo.out))
    if geo.flip:
        x = x[:, :, ::-1]
    x = x.astype(np.float32)
    if normalize:
        x = (x - _MEAN255) * _INV_STD255
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def map_boxes(boxes: torch.Tensor, geo: Geometry, src_hw: Tuple[int, int]) -> torch.Tensor:
    """Map float ``[N, 4]`` (x0, y0, x1, y1) boxes in source pixels through ``geo`` to output pixels.

    Boxes are clipped to the output frame; a box with no area left becomes NaN.
    """
    b = boxes.clone().float()
    if geo.pre is not None:
        sy, sx = geo.pre[0] / src_hw[0], geo.pre[1] / src_hw[1]
        b = b * b.new_tensor([sx, sy, sx, sy])
    y0, x0, ch, cw = geo.box
    b = (b - b.new_tensor([x0, y0, x0, y0])) * b.new_tensor(
        [geo.out / cw, geo.out / ch, geo.out / cw, geo.out / ch]
    )
    if geo.flip:
        b = torch.stack([geo.out - b[:, 2], b[:, 1], geo.out - b[:, 0], b[:, 3]], dim=1)
    b = b.clamp(0, geo.out)
    empty = (b[:, 2] <= b[:, 0]) | (b[:, 3] <= b[:, 1])
    b[empty] = float("nan")
    return b


def denormalize(frames: torch.Tensor) -> torch.Tensor:
    """Inverse of the ImageNet normalisation: float ``[..., 3, H, W]`` -> values in [0, 255]."""
    mean = frames.new_tensor(IMAGENET_MEAN).view(3, 1, 1) * 255.0
    std = frames.new_tensor(IMAGENET_STD).view(3, 1, 1) * 255.0
    return frames * std + mean
