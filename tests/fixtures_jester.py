"""A small Jester-layout set: 4 "swipe" gestures in the official 20BN CSV layout, written by the tests.

The layout is what the Jester download unpacks to (README "Datasets")::

    jester-v1-labels.csv                 one class name per line
    jester-v1-train.csv                  'id;label' lines, likewise jester-v1-validation.csv
    20bn-jester-v1/<id>/00001.jpg ...    the frames of video <id>

Each video shows a skin-coloured hand-like blob (an ellipse with a darker rim) swiping left, right, up
or down across a cluttered, slowly moving background (colour waves, a few drifting rectangles, noise).
Start and stop times, speed, the off-axis position and the blob's size vary per video, so the class
is the *direction of motion* only: any single frame is ambiguous, the order of frames decides.

Deterministic by seed (each video has its own seeded generator); ~10k JPEGs of 100 px in a few seconds.
Run as ``python -m tests.fixtures_jester OUT`` to write the default set.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Tuple, Union

import numpy as np
from PIL import Image

CLASSES = ("Swiping Down", "Swiping Left", "Swiping Right", "Swiping Up")  # alphabetical = class index
# Unit motion direction (dx, dy) on screen of each class (y grows downwards).
DIRECTION = {"Swiping Down": (0, 1), "Swiping Left": (-1, 0), "Swiping Right": (1, 0), "Swiping Up": (0, -1)}


def _background(rng: np.random.Generator, frames: int, size: int, drift: float) -> np.ndarray:
    """Float ``[F, S, S, 3]``: drifting colour waves + a few drifting rectangles."""
    t = np.linspace(0, 1, frames, dtype=np.float32)[:, None, None, None]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    base = rng.uniform(60, 170, size=3).astype(np.float32)
    fx, fy, ph = rng.uniform(1, 4, size=(3, 3)).astype(np.float32) * np.float32(np.pi)
    wave = np.sin(fx * xx[..., None] + fy * yy[..., None] + ph + 0.5 * t)  # [F, S, S, 3]
    bg = base + 30 * wave
    for _ in range(rng.integers(2, 5)):
        w, h = rng.integers(6, size // 4, size=2)
        x0, y0 = rng.uniform(0, size - w), rng.uniform(0, size - h)
        vx, vy = rng.uniform(-drift, drift, size=2) * size
        colour = rng.uniform(20, 235, size=3).astype(np.float32)
        for f in range(frames):
            x = int(round(x0 + vx * t[f, 0, 0, 0])) % size
            y = int(round(y0 + vy * t[f, 0, 0, 0])) % size
            bg[f, y : y + h, x : x + w] = colour
    return bg


def _hand(
    bg: np.ndarray, rng: np.random.Generator, direction: Tuple[int, int], scale: float, spread: float
) -> np.ndarray:
    """Draw the swiping blob into ``bg`` (in place) and return it."""
    frames, size = bg.shape[0], bg.shape[1]
    rx, ry = rng.uniform(0.12, 0.15) * size * scale, rng.uniform(0.17, 0.21) * size * scale
    if rng.random() < 0.5:
        rx, ry = ry, rx  # upright or sideways, whatever the direction
    start, stop = rng.uniform(0.05, 0.3), rng.uniform(0.65, 0.95)
    along = np.clip((np.linspace(0, 1, frames) - start) / (stop - start), 0, 1)  # 0 -> 1 during the swipe
    a0, a1 = rng.uniform(0.1, 0.2), rng.uniform(0.8, 0.9)
    pos = a0 + (a1 - a0) * along  # along the axis, increasing
    off = 0.5 + rng.uniform(-spread, spread) + rng.normal(0, 0.01, size=frames)  # across the axis
    dx, dy = direction
    if dx:
        cx, cy = (pos if dx > 0 else 1 - pos), off
    else:
        cx, cy = off, (pos if dy > 0 else 1 - pos)
    skin = np.array([rng.uniform(190, 240), rng.uniform(140, 180), rng.uniform(110, 150)], dtype=np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    cx, cy = np.broadcast_to(cx * size, frames), np.broadcast_to(cy * size, frames)
    d = ((xx[None] - cx[:, None, None]) / rx) ** 2 + ((yy[None] - cy[:, None, None]) / ry) ** 2  # [F, S, S]
    bg[d <= 1.0] = skin
    bg[(d > 0.75) & (d <= 1.0)] = skin * 0.7  # darker rim
    return bg


def render(
    seed: int,
    split: str,
    label: int,
    k: int,
    frames: int = 32,
    size: int = 100,
    *,
    hand_scale: float = 1.0,
    drift: float = 0.05,
    spread: float = 0.15,
) -> np.ndarray:
    """uint8 ``[F, S, S, 3]``: video ``k`` of class ``label`` in ``split`` (pure and seeded).

    ``hand_scale`` scales the blob (1: about a third of the frame high); ``drift``: how far the clutter
    rectangles move over the video, as a fraction of the frame (harder when larger); ``spread``: the swipe's
    off-axis position is 0.5 +- spread of the frame.
    """
    rng = np.random.default_rng([seed, 0 if split == "train" else 1, label, k])
    bg = _background(rng, frames, size, drift)
    _hand(bg, rng, DIRECTION[CLASSES[label]], hand_scale, spread)
    bg += (rng.random(size=bg.shape, dtype=np.float32) - 0.5) * np.float32(14)  # noise, std 4
    return np.clip(np.round(bg), 0, 255).astype(np.uint8)


def make_jester_like(
    root: Union[str, Path],
    *,
    videos_per_class: Tuple[int, int] = (60, 20),
    frames: int = 32,
    size: int = 100,
    seed: int = 0,
    **render_kw,
) -> Path:
    """Write the set under ``root`` (created); returns ``root``. Same arguments -> same files."""
    root = Path(root)
    media = root / "20bn-jester-v1"
    media.mkdir(parents=True, exist_ok=True)
    (root / "jester-v1-labels.csv").write_text("".join(f"{c}\n" for c in CLASSES))
    vid = 0
    for split, fname, per in (
        ("train", "train", videos_per_class[0]),
        ("val", "validation", videos_per_class[1]),
    ):
        rows = []
        for k in range(per):
            for label, name in enumerate(CLASSES):
                vid += 1
                d = media / str(vid)
                d.mkdir(exist_ok=True)
                for f, img in enumerate(render(seed, split, label, k, frames, size, **render_kw), start=1):
                    Image.fromarray(img).save(d / f"{f:05d}.jpg", quality=90)
                rows.append(f"{vid};{name}\n")
        (root / f"jester-v1-{fname}.csv").write_text("".join(rows))
    return root


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tests.fixtures_jester OUT")
    print(make_jester_like(sys.argv[1]))
