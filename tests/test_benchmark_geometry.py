"""The synthetic benchmarks' geometry: how often a random or the centre patch holds the discriminative region,
computed from the generator (bench/data/geometry.py) and held to the values docs/benchmarks.md states."""

import re
from pathlib import Path

import numpy as np
import pytest

from bench.data.geometry import hit_probabilities, region_side, regions
from bench.data.synthetic import (
    HARD_FRAME,
    HARD_VIDEO,
    PAPER_FRAME,
    PAPER_VIDEO,
    TEMPORAL_FRAME,
    SynthParams,
)
from bench.data.synthetic_render import render_video
from bench.scale import demo_patch_sizes

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
SETS = {
    "synthetic": (PAPER_FRAME, "frame"),
    "synthetic_hard": (HARD_FRAME, "frame"),
    "synthetic_video": (PAPER_VIDEO, "video"),
    "synthetic_video_hard": (HARD_VIDEO, "video"),
    "synthetic_temporal": (TEMPORAL_FRAME, "frame"),
}


def documented() -> dict:
    """{(benchmark, P): (random, centre)} from the tables of docs/benchmarks.md."""
    rows = re.findall(
        r"^ *\| `(\w+)` \| (\d+)(?: \(\d+\))? \| ([\d.]+) \| ([\d.]+) \|$", DOC.read_text(), re.M
    )
    return {(name, int(p)): (float(r), float(c)) for name, p, r, c in rows}


@pytest.mark.parametrize("name", sorted(SETS))
def test_hit_chances_are_the_documented_ones(name):
    params, variant = SETS[name]
    sizes = demo_patch_sizes(variant)
    doc = documented()
    for p, got in hit_probabilities(SynthParams(**params), sizes).items():
        want = doc[(name, p)]
        assert got["random"] == pytest.approx(want[0], abs=0.01), (name, p)
        assert got["centre"] == pytest.approx(want[1], abs=0.01), (name, p)


def test_paper_regime_random_patch_holds_the_region_often_but_not_always():
    probs = hit_probabilities(SynthParams(**PAPER_FRAME), demo_patch_sizes("frame"))
    middle = probs[sorted(probs)[1]]["random"]
    assert 0.3 <= middle <= 0.7
    assert all(0.1 < v["random"] < 0.9 for v in probs.values())


def test_paper_regime_object_goes_anywhere_centre_included():
    p = SynthParams(**PAPER_FRAME)
    xy = regions(p, videos=2000)
    r = region_side(p)
    centre = (p.size - r) / 2
    near_centre = (np.abs(xy - centre) <= 2).all(axis=1).mean()
    assert near_centre > 0.01  # the centre is visited
    assert xy.min() == 0 + 2 and xy.max() == p.size - p.object_size + 2  # and every border


def test_the_geometry_is_the_rendered_one():
    """The regions the geometry module reasons about are the rendered videos' boxes (same trajectory code)."""
    p = SynthParams(**{**PAPER_FRAME, "videos_per_class": (2, 1)})
    frames, boxes = render_video(p, "train", 1, 0)
    x0, y0, x1, y1 = boxes[0].astype(int)
    assert (x1 - x0, y1 - y0) == (p.object_size, p.object_size)
    assert (frames[0, y0, x0] == (255, 0, 255)).all()  # the marker border is where the box says


def test_coarse_cue_separates_the_groups_only():
    """The inside's mean brightness tells the class group (visible to a glance), not the class in it."""
    from bench.data.synthetic import coarse_level

    p = SynthParams(**PAPER_FRAME)
    levels = [coarse_level(p, c) for c in range(p.classes)]
    assert len(set(levels)) == p.coarse_groups == 2
    assert levels.count(levels[0]) == p.classes // 2
