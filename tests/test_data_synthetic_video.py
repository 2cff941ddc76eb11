"""``synthetic_video``: the synthetic benchmark of the Sth-Sth/Jester variant, registered like
``synthetic``."""

from __future__ import annotations

import numpy as np
import torch

from bench.data import (
    ClipSpec,
    check_dataset,
    create_dataset,
    dataset_info,
    dataset_source,
    resolve_data_root,
)
from bench.data.synthetic import HARD_VIDEO, PAPER_VIDEO, class_pairs, trajectory, video_rng
from bench.data.synthetic_dataset import SYNTHETIC_VIDEO
from bench.data.synthetic_files import make_params
from bench.data.synthetic_render import render_video
from bench.presets import get_preset


def test_registered_as_a_generated_video_variant_dataset_without_flip_or_jitter():
    info = dataset_info("synthetic_video")
    assert not info.flip and info.scales == (1.0,)
    assert dataset_source("synthetic_video").generated and not dataset_source("jester").generated
    p = make_params(**PAPER_VIDEO)
    assert p.ordered and dataset_info("synthetic_video").num_classes == len(class_pairs(p)) == p.classes
    preset = get_preset("synthetic_video", "tiny", method="v1")
    assert preset.variant == "video" and preset.policy_head == "gaussian" and preset.glance_frames


def test_default_set_is_generated_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ADABENCH_CACHE", str(tmp_path))
    small = dict(PAPER_VIDEO, videos_per_class=(2, 1), size=32, object_size=8, frames=8)
    monkeypatch.setattr(SYNTHETIC_VIDEO, "params", small)
    root = resolve_data_root("synthetic_video")
    stamp = (root / "meta.json").stat().st_mtime_ns
    assert resolve_data_root("synthetic_video") == root and (root / "meta.json").stat().st_mtime_ns == stamp
    report = check_dataset("synthetic_video", root)
    assert report.ok and report.num_classes == small["classes"]
    ds = create_dataset(
        "synthetic_video",
        root,
        "val",
        ClipSpec(frames=6, glance_frames=4, input_size=32, resize=32),
        train=False,
    )
    item = ds[0]
    assert (
        item["glance"].shape[0] == 4 and item["frames"].shape[0] == 6 and torch.isfinite(item["boxes"]).all()
    )


def test_one_location_serves_a_video_and_the_centre_misses_the_object():
    """The hard regime at the patch ratio it was built for (P/S = 24/64, so 21 of 56): outside the short trip
    to
    or from the centre, the object stays inside one patch and mostly away from the centre patch."""
    p = make_params(**HARD_VIDEO)
    patch = round(p.size * 24 / 64)
    t = np.linspace(0.0, 1.0, p.frames)
    rest = (t >= p.launch) & (t <= 1 - p.launch)  # frames away from the trip, whichever end it is at
    spans, overlaps = [], []
    for k in range(64):
        xy = trajectory(p, video_rng(p, "train", k % p.classes, k))[rest]  # top-left corners
        spans.append((xy.max(0) - xy.min(0)).max())
        lo, hi = (p.size - patch) / 2, (p.size + patch) / 2  # the centre patch
        inside = np.clip(np.minimum(xy + p.object_size, hi) - np.maximum(xy, lo), 0, None).prod(1)
        overlaps.append(inside.max() / p.object_size**2)
    assert np.mean(np.array(spans) <= patch - p.object_size) >= 0.9
    assert np.median(overlaps) < 0.25


def test_shared_backgrounds_say_nothing_about_the_class():
    p = make_params(**dict(HARD_VIDEO, noise=0.0))
    a, box_a = render_video(p, "train", 0, 5)
    b, box_b = render_video(p, "val", 3, 5 + p.backgrounds)  # another class, split and video: same background
    c, _ = render_video(p, "train", 0, 6)
    yy, xx = np.mgrid[0 : p.size, 0 : p.size]
    off = np.ones(a.shape[:3], dtype=bool)
    for boxes in (box_a, box_b):
        for f, (x0, y0, x1, y1) in enumerate(boxes):
            off[f] &= ~((xx >= x0) & (xx < x1) & (yy >= y0) & (yy < y1))
    assert off.mean() > 0.8 and np.array_equal(a[off], b[off]) and not np.array_equal(a[off], c[off])
    assert "backgrounds" not in make_params().to_dict()  # older sets keep their cache key
