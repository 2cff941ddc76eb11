"""One synthetic video from its parameters: when its pattern switches, which frames show the object, and the
frames themselves (drawn from the pieces of ``bench.data.synthetic``); the videos of a split."""

from __future__ import annotations

from typing import Dict, Tuple

import numpy as np

from bench.data.synthetic import (
    PATTERNS,
    SynthParams,
    background,
    background_rng,
    class_pairs,
    coarse_level,
    drift_trajectory,
    object_sprite,
    trajectory,
    video_rng,
    visible_frames,
)


def switch_range(p: SynthParams) -> Tuple[int, int]:
    """[lo, hi) of the first frame showing the second pattern when every frame shows the object: the middle
    third of the video."""
    lo, hi = p.frames // 3, max(p.frames // 3, (2 * p.frames) // 3)
    return max(1, lo), max(2, hi + 1)


def switch_frame(p: SynthParams, rng: np.random.Generator) -> int:
    """First frame showing the second pattern: uniform over the middle third of the video."""
    return int(rng.integers(*switch_range(p)))


def visible_window(p: SynthParams, rng: np.random.Generator) -> Tuple[int, int, int]:
    """(start, stop, switch): frames start..stop-1 show the object, the second pattern from ``switch`` on.

    The window's start is uniform over the video, the switch uniform inside it (each pattern is shown at
    least once). With every frame visible nothing else is drawn: the switch is ``switch_frame``'s, so such
    sets render exactly what they did before ``visible`` existed.
    """
    n = visible_frames(p)
    if n >= p.frames:
        return 0, p.frames, switch_frame(p, rng)
    start = int(rng.integers(0, p.frames - n + 1))
    return start, start + n, int(rng.integers(start + 1, start + n))


def render_video(p: SynthParams, split: str, label: int, k: int) -> Tuple[np.ndarray, np.ndarray]:
    """Video ``k`` of class ``label``: (uint8 ``[F, S, S, 3]``, boxes float32 ``[F, 4]`` (x0, y0, x1, y1) px).

    Pure and seeded: the same arguments give the same arrays. The box is the object's exact pixel extent
    (x1, y1 exclusive); the object is drawn last, so the box is never occluded. Frames outside the visible
    window (``visible_window``) show no object and have a NaN box.
    """
    rng = video_rng(p, split, label, k)
    frames = background(p, background_rng(p, k) if p.backgrounds else rng)
    if p.noise > 0:  # uniform noise with standard deviation p.noise (cheaper to draw than Gaussian)
        frames += (rng.random(size=frames.shape, dtype=np.float32) - 0.5) * np.float32(p.noise * 12**0.5)
    first, second = class_pairs(p)[label]
    if not p.ordered and rng.random() < 0.5:
        first, second = second, first
    sign = 1.0 if rng.random() < 0.5 else -1.0
    sprites = [object_sprite(p, PATTERNS[i], sign, coarse_level(p, label)) for i in (first, second)]
    start, stop, switch = visible_window(p, rng)
    xy = trajectory(p, rng) if p.motion == "arc" else drift_trajectory(p, rng)
    s = p.object_size
    for f in range(start, stop):
        x, y = xy[f]
        frames[f, y : y + s, x : x + s] = sprites[int(f >= switch)]
    boxes = np.concatenate([xy, xy + s], axis=1).astype(np.float32)
    boxes[:start], boxes[stop:] = np.nan, np.nan
    return np.clip(np.round(frames), 0, 255).astype(np.uint8), boxes


def split_counts(p: SynthParams) -> Dict[str, int]:
    return {"train": p.videos_per_class[0], "val": p.videos_per_class[1]}


def videos(p: SynthParams, split: str):
    """(video id, label, k) of every video of ``split``, in list order (ids unique across splits)."""
    per = split_counts(p)[split]
    offset = 0 if split == "train" else p.classes * p.videos_per_class[0]
    for k in range(per):
        for label in range(p.classes):
            yield f"{offset + k * p.classes + label + 1:06d}", label, k
