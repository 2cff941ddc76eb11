"""The synthetic benchmarks' geometry, computed from their generator: how often a patch holds the evidence.

The discriminative region is the object's patterned inside (the marker border is the same for every class).
A patch *holds* it when the region lies wholly inside the patch. For a patch side P these give:
- ``random``: the chance that a uniformly random P x P patch (top-left uniform over the frame) holds it, per
  frame, averaged over frames and videos (the per-axis chance is exact given the region; videos are drawn);
- ``centre``: the same for the centre patch.
Both are expectations over the generator's trajectories (``trajectory`` / ``drift_trajectory``), drawn with
their own seed: the same distribution as the benchmark's videos, not the same draws.
"""

from __future__ import annotations

from typing import Dict, Sequence

import numpy as np

from bench.data.synthetic import SynthParams, drift_trajectory, marker_border, trajectory


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
