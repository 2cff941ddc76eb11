"""The synthetic benchmarks' geometry, computed from their generator: how often a patch holds the evidence.

The discriminative region is the object's patterned inside (the marker border is the same for every class).
A patch *holds* it when the region lies wholly inside the patch. For a patch side P these give:
- ``random``: the chance that a uniformly random P x P patch (top-left uniform over the frame) holds it, per
  frame, averaged over frames and videos (the per-axis chance is exact given the region; videos are drawn);
- ``centre``: the same for the centre patch.
Both are expectations over the generator's trajectories (``trajectory`` / ``drift_trajectory``), drawn with
their own seed: the same distribution as the benchmark's videos, not the same draws. They hold per frame that
shows the object: where it is does not depend on when it is shown.

When (``frame_probabilities``): with ``visible < 1`` the object is shown in a window of the video only, with
both of its patterns inside. For T frames taken by TSN sampling (``bench.data.sampling.tsn_indices``: one
per segment, the centre in evaluation, uniform in training) or by the best selection (T distinct frames, as
many inside the window as fit), the expected share of the T frames that show the object, and the chance that
they show both patterns (which the class needs). Exact: every window and switch the generator can draw is
enumerated with its probability, and the training offsets' chances are multiplied segment by segment.
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np

from bench.data.sampling import tsn_indices
from bench.data.synthetic import (
    SynthParams,
    drift_trajectory,
    marker_border,
    trajectory,
    visible_frames,
)
from bench.data.synthetic_render import switch_range


def regions(p: SynthParams, videos: int = 4000, seed: int = 12345) -> np.ndarray:
    """Top-left corners ``[videos * frames, 2]`` of the discriminative region, and its side (returned
    apart)."""
    rng = np.random.default_rng(seed)
    move = trajectory if p.motion == "arc" else drift_trajectory
    xy = np.concatenate([move(p, rng) for _ in range(videos)])
    return xy + marker_border(p)


def region_side(p: SynthParams) -> int:
    return p.object_size - 2 * marker_border(p)


def _axis_random(u: np.ndarray, r: int, size: int, patch: int) -> np.ndarray:
    """Chance, per region start ``u``, that a patch start uniform on [0, size - patch] has u..u+r inside."""
    span = size - patch
    if span <= 0:
        return np.ones_like(u, dtype=float)
    lo, hi = np.maximum(0, u + r - patch), np.minimum(span, u)
    return np.clip(hi - lo, 0, None) / span


def hit_probabilities(
    p: SynthParams, patch_sizes: Sequence[int], videos: int = 4000
) -> Dict[int, Dict[str, float]]:
    """{P: {"random": chance, "centre": chance}} for each patch side P (see the module docstring)."""
    xy = regions(p, videos).astype(float)
    r = region_side(p)
    out = {}
    for patch in patch_sizes:
        rand = _axis_random(xy[:, 0], r, p.size, patch) * _axis_random(xy[:, 1], r, p.size, patch)
        c = (p.size - patch) / 2
        inside = (xy >= c) & (xy + r <= c + patch)
        out[int(patch)] = {"random": float(rand.mean()), "centre": float(inside.all(axis=1).mean())}
    return out


# ------------------------------------------------------------------------------------------- frames
def windows(p: SynthParams) -> List[Tuple[int, int, int]]:
    """Every (first, stop, switch) ``visible_window`` can draw, all equally likely (it draws the start, then
    the switch, each uniform, and every start allows as many switches)."""
    n = visible_frames(p)
    if n >= p.frames:
        return [(0, p.frames, s) for s in range(*switch_range(p))]
    return [(a, a + n, s) for a in range(p.frames - n + 1) for s in range(a + 1, a + n)]


def _segments(frames: int, t: int) -> List[np.ndarray]:
    """The frames each of ``t`` TSN segments draws from uniformly in training (``tsn_indices``'s bounds)."""
    tick = frames / t
    start = [int(np.floor(tick * k)) for k in range(t)]
    stop = [max(int(np.floor(tick * (k + 1))), a + 1) for k, a in enumerate(start)]
    return [np.arange(a, min(b, frames)) for a, b in zip(start, stop)]


def _eval_chances(frames: np.ndarray, first: int, stop: int, switch: int) -> Tuple[float, float]:
    shown = (frames >= first) & (frames < stop)
    both = bool((shown & (frames < switch)).any() and (shown & (frames >= switch)).any())
    return float(shown.mean()), float(both)


def _train_chances(segments: List[np.ndarray], first: int, stop: int, switch: int) -> Tuple[float, float]:
    """Expected share showing the object, and P(both patterns), segments drawing independently."""

    def p_in(seg: np.ndarray, lo: int, hi: int) -> float:
        return float(((seg >= lo) & (seg < hi)).mean())

    share = float(np.mean([p_in(seg, first, stop) for seg in segments]))
    none = lambda lo, hi: float(np.prod([1 - p_in(seg, lo, hi) for seg in segments]))  # noqa: E731
    both = 1 - none(first, switch) - none(switch, stop) + none(first, stop)
    return share, both


Chances = Dict[str, Tuple[float, float]]


def frame_probabilities(p: SynthParams, frame_counts: Sequence[int]) -> Dict[int, Chances]:
    """{T: {"eval" | "train" | "best": (share of the T frames showing the object, P(they show both
    patterns))}} for T frames per clip (see the module docstring)."""
    wins = windows(p)
    out: Dict = {}
    for t in frame_counts:
        centres, segments = tsn_indices(p.frames, t, train=False), _segments(p.frames, t)
        ev = np.mean([_eval_chances(centres, *w) for w in wins], axis=0)
        tr = np.mean([_train_chances(segments, *w) for w in wins], axis=0)
        n = visible_frames(p)
        best = (min(n, t) / t, 1.0 if t >= 2 else 0.0)
        out[int(t)] = {
            "eval": (float(ev[0]), float(ev[1])),
            "train": (float(tr[0]), float(tr[1])),
            "best": best,
        }
    return out


def absent_share(p: SynthParams) -> float:
    """The share of a video's frames that do not show the object."""
    return 1 - visible_frames(p) / p.frames
