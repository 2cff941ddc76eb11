"""The synthetic focus benchmark: determinism, boxes vs pixels, what the glance can and cannot see,
caching."""

from __future__ import annotations

import filecmp
import json
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fixtures_data import make_synthetic

from bench.data import ClipSpec, SynthParams, create_dataset, ensure_synthetic, render_video
from bench.data.synthetic import (
    MARKER_RGB,
    PATTERNS,
    class_names,
    marker_border,
    object_sprite,
    pattern,
    trajectory,
    video_rng,
)
from bench.data.transforms import denormalize
from bench.errors import UsageError

SMALL = dict(classes=2, videos_per_class=(3, 1), frames=8, size=32, object_size=8, clutter=2)


def _same_tree(a, b) -> bool:
    cmp = filecmp.dircmp(a, b)
    if cmp.left_only or cmp.right_only or cmp.funny_files:
        return False
    _, mismatch, errors = filecmp.cmpfiles(a, b, cmp.common_files, shallow=False)
    return not mismatch and not errors and all(_same_tree(a / d, b / d) for d in cmp.common_dirs)


def test_render_is_pure_and_seeded():
    p = SynthParams(**SMALL)
    a, b = render_video(p, "train", 1, 2), render_video(p, "train", 1, 2)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    other = render_video(SynthParams(**SMALL, seed=1), "train", 1, 2)
    assert not np.array_equal(a[0], other[0])


def test_same_seed_gives_identical_files_whatever_the_worker_count(tmp_path):
    one = make_synthetic(tmp_path / "a", workers=1, videos_per_class=(40, 2), classes=2)
    two = make_synthetic(
        tmp_path / "b", workers=2, videos_per_class=(40, 2), classes=2
    )  # 84 videos: parallel
    assert _same_tree(one, two)
    other = make_synthetic(tmp_path / "c", seed=1)
    assert (one / "boxes.json").read_text() != (other / "boxes.json").read_text()


@pytest.mark.parametrize("params", [dict(), SMALL, dict(size=48, object_size=10, frames=5)])
def test_boxes_match_the_marker_pixels(params):
    """Exactly the pixels of the box's border ring have the marker colour; the box stays inside the frame."""
    p = SynthParams(**params)
    for label in range(p.classes):
        frames, boxes = render_video(p, "val", label, 0)
        for img, (x0, y0, x1, y1) in zip(frames, boxes.astype(int)):
            assert 0 <= x0 < x1 <= p.size and 0 <= y0 < y1 <= p.size
            assert x1 - x0 == p.object_size and y1 - y0 == p.object_size
            marker = np.all(img == MARKER_RGB, axis=-1)
            ring = np.zeros_like(marker)
            b = marker_border(p)
            ring[y0:y1, x0:x1] = True
            ring[y0 + b : y1 - b, x0 + b : x1 - b] = False
            assert np.array_equal(marker, ring)


@pytest.mark.parametrize("launch", [0.0, SynthParams().launch])
def test_object_avoids_the_frame_centre_and_moves_smoothly(launch):
    """Off the centre except while it launches from / lands at the centre (the first or last ``launch``
    share of the video: there a centre-ish patch, like an untrained policy's, meets it)."""
    p = SynthParams(launch=launch)
    centre = np.array([p.size / 2, p.size / 2])
    for k in range(20):
        xy = trajectory(p, video_rng(p, "train", 0, k)) + p.object_size / 2
        far = np.linalg.norm(xy - centre, axis=1) > 0.6 * (p.size / 2 - p.object_size / 2)
        assert far.sum() >= int(np.ceil((1 - launch) * p.frames)) - 1  # a centre patch mostly misses it
        if launch == 0:
            assert far.all()
        else:
            assert not far.all()  # it does pass the centre
        step = np.linalg.norm(np.diff(xy, axis=0), axis=1)
        assert step.max() <= p.object_size / 2 and step.sum() > 8  # moves, without jumps (launch is faster)


def test_patterns_vanish_at_glance_resolution_but_not_at_full_resolution():
    """4x antialiased downsampling (the tiny glance: 64 px -> 16 px) leaves the classes' sprites almost
    identical."""
    p = SynthParams()
    down = {}
    for name in PATTERNS:
        for sign in (1.0, -1.0):
            for shift in range(2 * p.cell):  # every phase of the object position against the period
                canvas = np.full((2 * p.object_size + 4, 2 * p.object_size + 4, 3), 128.0)
                canvas[shift : shift + p.object_size, shift : shift + p.object_size] = object_sprite(
                    p, name, sign
                )
                t = torch.tensor(canvas).permute(2, 0, 1)[None]
                down[name, sign, shift] = F.interpolate(t, scale_factor=0.25, mode="bilinear", antialias=True)
    diffs = [(down[a] - down[b]).abs() for a in down for b in down if a[2] == b[2]]
    glance_gap = max(d.mean().item() for d in diffs)  # over the object's ~16 glance pixels
    edge_gap = max(d.max().item() for d in diffs)  # worst pixel: the tapered pattern edge
    full_gap = min(
        np.abs(pattern(a, 8, p.cell) - pattern(b, 8, p.cell)).mean()
        for a in PATTERNS
        for b in PATTERNS
        if a != b
    )
    assert glance_gap < 2.0  # out of 255: below the background noise (std 4)
    assert edge_gap < 20.0  # (measured 19 with 2-px cells: a faint edge residue, no pattern texture)
    assert full_gap >= 0.5  # at full resolution any two patterns differ on half the pixels or more


def test_class_names_sort_in_generator_order():
    for ordered in (False, True):
        names = class_names(SynthParams(classes=6, ordered=ordered))
        assert names == sorted(names) and len(set(names)) == 6
    with pytest.raises(UsageError, match="--classes"):
        SynthParams(classes=11)
    with pytest.raises(UsageError, match="--object-size"):
        SynthParams(size=32, object_size=12)


@pytest.fixture(scope="module")
def frames_set(tmp_path_factory):
    return make_synthetic(tmp_path_factory.mktemp("synth") / "set")


def test_dataset_returns_jpeg_frames_close_to_the_render_and_exact_boxes(frames_set):
    p = SynthParams(**json.loads((frames_set / "meta.json").read_text())["params"])
    ds = create_dataset(
        "synthetic", frames_set, "val", ClipSpec(frames=8, input_size=32, resize=32), train=False
    )
    assert ds.num_classes == 2 and len(ds) == 2 and not ds.flip
    for i in range(len(ds)):
        item = ds[i]
        rec = ds.records[i]
        label = item["label"].item()
        frames, boxes = render_video(
            p, "val", label, int(rec.key) - 1 - p.classes * p.videos_per_class[0] - label
        )
        assert torch.equal(item["boxes"], torch.from_numpy(boxes))  # 8 of 8 frames, identity eval transform
        got = denormalize(item["frames"]).permute(0, 2, 3, 1).numpy()
        assert np.abs(got - frames).mean() < 4.0  # JPEG quality 95, no chroma subsampling
        x0, y0, x1, y1 = boxes[0].astype(int)
        inner = slice(y0 + 3, y1 - 3), slice(x0 + 3, x1 - 3)
        src = frames[0][inner].astype(float) - 128
        dec = got[0][inner] - 128
        assert np.sign(src).tolist() == np.sign(np.round(dec)).tolist()  # the fine pattern survives JPEG


def test_training_items_keep_boxes_and_are_never_flipped(frames_set):
    ds = create_dataset(
        "synthetic", frames_set, "train", ClipSpec(frames=4, input_size=32, resize=32), train=True
    )
    ev = create_dataset(
        "synthetic", frames_set, "train", ClipSpec(frames=8, input_size=32, resize=32), train=False
    )
    for _ in range(5):
        item = ds[0]
        assert torch.isfinite(item["boxes"]).all()
        full = ev[0]["boxes"]  # 8 of 8 frames: all of them
        assert all(any(torch.equal(b, f) for f in full) for b in item["boxes"])


def test_frames_are_cached_once(frames_set):
    cache = list((frames_set / "cache").glob("train-*.npy"))
    assert len(cache) == 1
    before = cache[0].stat().st_mtime_ns
    create_dataset("synthetic", frames_set, "train", ClipSpec(frames=4, input_size=32, resize=32), train=True)
    assert cache[0].stat().st_mtime_ns == before


def test_video_layout_decodes_losslessly(tmp_path):
    root = make_synthetic(tmp_path / "v", layout="video")
    assert (root / "videos").is_dir() and not (root / "frames").exists()
    p = SynthParams(**SMALL)
    ds = create_dataset("synthetic", root, "train", ClipSpec(frames=8, input_size=32, resize=32), train=False)
    assert ds.layout == "20bn-csv-video"
    item = ds[0]
    frames, boxes = render_video(p, "train", 0, 0)
    got = denormalize(item["frames"]).permute(0, 2, 3, 1).round().numpy()
    assert np.array_equal(got, frames.astype(np.float32)) and torch.equal(
        item["boxes"], torch.from_numpy(boxes)
    )


def test_ensure_synthetic_generates_once_per_parameter_set(tmp_path):
    a = ensure_synthetic(tmp_path, **SMALL)
    stamp = (a / "meta.json").stat().st_mtime_ns
    t0 = time.perf_counter()
    assert ensure_synthetic(tmp_path, **SMALL) == a
    assert time.perf_counter() - t0 < 0.5 and (a / "meta.json").stat().st_mtime_ns == stamp
    b = ensure_synthetic(tmp_path, **dict(SMALL, seed=1))
    assert b != a and (b / "meta.json").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary directories left
