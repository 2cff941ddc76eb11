"""The temporal benchmark (``synthetic_temporal``): the object is absent from a stated share of the frames,
the data is seeded, the frame geometry (bench/data/geometry.py) matches a Monte-Carlo count and
docs/benchmarks.md; and the other benchmarks render exactly what they did before ``visible`` existed."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench.data import ClipSpec, create_dataset, generate_synthetic, tsn_indices
from bench.data.geometry import absent_share, frame_probabilities, windows
from bench.data.synthetic import (
    HARD_FRAME,
    HARD_VIDEO,
    PAPER_FRAME,
    PAPER_VIDEO,
    TEMPORAL_FRAME,
    SynthParams,
)
from bench.data.synthetic_files import params_key
from bench.data.synthetic_render import render_video, visible_window
from bench.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(TEMPORAL_FRAME, classes=2, videos_per_class=(2, 1))
OLD_SETS = {
    "synthetic": PAPER_FRAME,
    "synthetic_hard": HARD_FRAME,
    "synthetic_video": PAPER_VIDEO,
    "synthetic_video_hard": HARD_VIDEO,
}
# main's last commit before ``visible`` was added to the generator (bench/data/synthetic.py)
BEFORE = "7d6ec05201513f34eed08a870d627fe25cd40930"


def _marker_pixels(img: np.ndarray) -> int:
    """Pixels close to the magenta marker (JPEG moves colours a little; clutter hues keep away from it)."""
    r, g, b = (img[..., c].astype(int) for c in range(3))
    return int(((r > 200) & (g < 60) & (b > 200)).sum())


@pytest.fixture(scope="module")
def temporal_set(tmp_path_factory):
    return generate_synthetic(tmp_path_factory.mktemp("temporal") / "set", workers=1, **SMALL)


def test_the_stated_share_of_frames_lacks_the_object(temporal_set):
    """Measured on the written JPEGs: 75 % of every video's frames show no marker; boxes.json says which."""
    p = SynthParams(**SMALL)
    assert absent_share(p) == 0.75
    boxes = json.loads((temporal_set / "boxes.json").read_text())["boxes"]
    assert len(boxes) == p.classes * sum(p.videos_per_class)
    for vid, rows in boxes.items():
        files = sorted((temporal_set / "frames" / vid).glob("*.jpg"))
        shown = np.array([_marker_pixels(np.asarray(Image.open(f))) > 20 for f in files])
        assert len(shown) == p.frames and 1 - shown.mean() == absent_share(p), vid
        assert [r is not None for r in rows] == shown.tolist(), vid
        at = np.flatnonzero(shown)
        assert at[-1] - at[0] + 1 == len(at), vid  # one contiguous window


def test_the_window_shows_both_patterns():
    """The pattern inside the object differs between the window's first and last frames (the switch is
    inside the window)."""
    p = SynthParams(**TEMPORAL_FRAME)
    for k in range(12):
        frames, boxes = render_video(p, "train", k % p.classes, k)
        at = np.flatnonzero(np.isfinite(boxes[:, 0]))
        inner = []
        for f in (at[0], at[-1]):
            x0, y0, x1, y1 = boxes[f].astype(int)
            patch = frames[f, y0 + 4 : y1 - 4, x0 + 4 : x1 - 4].astype(float).mean(-1)
            inner.append(np.sign(patch - np.median(patch)))
        assert (inner[0] != inner[1]).mean() >= 0.25, k


def test_batches_carry_nan_boxes_where_the_object_is_absent(temporal_set):
    spec = ClipSpec(frames=16, input_size=56, resize=56)
    ds = create_dataset("synthetic_temporal", temporal_set, "val", spec, train=False)
    for i in range(len(ds)):
        shown = torch.isfinite(ds[i]["boxes"]).all(-1)
        assert shown.float().mean().item() == 0.25 and not torch.isfinite(ds[i]["boxes"][~shown]).any()


def test_temporal_data_is_deterministic_per_seed(tmp_path, temporal_set):
    again = generate_synthetic(tmp_path / "again", workers=1, **SMALL)
    for name in ("boxes.json", "synthetic-train.csv"):
        assert (again / name).read_bytes() == (temporal_set / name).read_bytes()
    first = sorted((temporal_set / "frames").rglob("*.jpg"))
    assert all(f.read_bytes() == (again / f.relative_to(temporal_set)).read_bytes() for f in first)
    other = generate_synthetic(tmp_path / "other", workers=1, **{**SMALL, "seed": 1})

    def shown(root):
        return [
            [r is not None for r in rows]
            for rows in json.loads((root / "boxes.json").read_text())["boxes"].values()
        ]

    assert shown(other) != shown(temporal_set)  # the windows move with the seed


def test_visible_is_checked():
    with pytest.raises(UsageError, match="--visible"):
        SynthParams(frames=16, visible=0.05)  # one frame: one pattern only
    with pytest.raises(UsageError, match="--visible"):
        SynthParams(visible=1.5)


def test_cli_presets_and_synth_know_the_temporal_benchmark(tmp_path):
    from click.testing import CliRunner

    from cli import cli

    out = CliRunner().invoke(cli, ["presets", "--dataset", "synthetic_temporal"])
    assert out.exit_code == 0, out.output
    t = 8  # the tiny frame preset's focus frames
    share, both = frame_probabilities(SynthParams(**TEMPORAL_FRAME), [t])[t]["eval"]
    assert f"absent from 75% of the frames; of T = {t} frames" in out.output
    assert f"| uniform (TSN, evaluation) | {share:.2f} | {both:.2f} |" in out.output
    args = [
        "data",
        "synth",
        "--out",
        str(tmp_path / "set"),
        "--classes",
        "2",
        "--videos-per-class",
        "1,1",
        "--frames",
        "8",
        "--size",
        "32",
        "--object-size",
        "8",
        "--visible",
        "0.5",
        "--workers",
        "1",
    ]
    made = CliRunner().invoke(cli, args)
    assert made.exit_code == 0, made.output
    rows = json.loads((tmp_path / "set" / "boxes.json").read_text())["boxes"].values()
    assert all(sum(r is None for r in video) == 4 for video in rows)
    bad = CliRunner().invoke(cli, args[:3] + [str(tmp_path / "bad")] + args[4:-4] + ["--visible", "0.1"])
    assert isinstance(bad.exception, UsageError) and "--visible" in str(bad.exception)


# ------------------------------------------------------------------------------------------ geometry
@pytest.mark.parametrize("params", [TEMPORAL_FRAME, PAPER_FRAME])
def test_frame_geometry_matches_a_monte_carlo_count(params):
    """Windows drawn by the generator's own ``visible_window``, frames by ``tsn_indices``: the counted shares
    and both-pattern chances agree with the exact ones."""
    p = SynthParams(**params)
    rng = np.random.default_rng(7)
    draws = [visible_window(p, rng) for _ in range(6000)]
    assert set(draws) == set(windows(p))  # the enumeration is the generator's support
    for t in (4, 8):
        want = frame_probabilities(p, [t])[t]
        for mode in ("eval", "train"):
            share, both = [], []
            for first, stop, switch in draws:
                idx = tsn_indices(p.frames, t, train=mode == "train", rng=rng)
                inside = (idx >= first) & (idx < stop)
                share.append(inside.mean())
                both.append((inside & (idx < switch)).any() and (inside & (idx >= switch)).any())
            assert np.mean(share) == pytest.approx(want[mode][0], abs=0.015), (t, mode)
            assert np.mean(both) == pytest.approx(want[mode][1], abs=0.025), (t, mode)


def _documented() -> dict:
    """{(T, row): (share, both)} from the temporal table of docs/benchmarks.md."""
    doc = (ROOT / "docs" / "benchmarks.md").read_text()
    row = r"^\| `synthetic_temporal` \| (\d+) \| ([\w ,]+) \| ([\d.]+) \| ([\d.]+) \|$"
    rows = re.findall(row, doc, re.M)
    return {(int(t), row): (float(a), float(b)) for t, row, a, b in rows}


def test_frame_geometry_is_the_documented_one():
    doc = _documented()
    names = {"eval": "uniform, evaluation", "train": "uniform, training", "best": "best selection"}
    assert {t for t, _ in doc} == {4, 8}
    for t, chances in frame_probabilities(SynthParams(**TEMPORAL_FRAME), [4, 8]).items():
        for mode, (share, both) in chances.items():
            assert doc[(t, names[mode])] == pytest.approx((share, both), abs=0.005), (t, mode)
    frames = frame_probabilities(SynthParams(**TEMPORAL_FRAME), [8])[8]
    assert frames["best"][0] > frames["eval"][0] and frames["best"][1] > frames["eval"][1]  # choosing helps


# ------------------------------------------------------------------------------ the others unchanged
def _digest(render, p) -> str:
    """sha256 of frames and boxes (``render(p, split, label, k)``) of the first two videos of every class
    in both splits."""
    h = hashlib.sha256()
    for split in ("train", "val"):
        for label in range(p.classes):
            for k in range(2):
                frames, boxes = render(p, split, label, k)
                h.update(frames.tobytes())
                h.update(boxes.tobytes())
    return h.hexdigest()


# Computed by running ``_digest`` with the generator of commit BEFORE (``git show
# BEFORE:bench/data/synthetic.py`` loaded as a module, as ``_main_generator`` does), not typed in.
BEFORE_DIGESTS = {
    "synthetic": "b00a9a52afca61158d59866dcf66ef397e822cb80113edc612bbb01879fd22cc",
    "synthetic_hard": "24fdc5f069b4921cfdc3a81fddd3007b74bd67e9e9b73778960ae83505133cba",
    "synthetic_video": "96418e0f295279dc446561de80cc4722735845ccc2cd616cdb15f7ce7e6b3f6d",
    "synthetic_video_hard": "987257cf946edd33f61552966607fd939bc10b9a65643a26f68abe144ae84804",
}


@pytest.mark.parametrize("name", sorted(OLD_SETS))
def test_the_other_benchmarks_render_what_they_did_before(name):
    params = OLD_SETS[name]
    p = SynthParams(**params)
    assert _digest(render_video, p) == BEFORE_DIGESTS[name]


def _main_generator():
    """bench/data/synthetic.py as it was at commit BEFORE, as a module (skip without git history)."""
    try:
        src = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{BEFORE}:bench/data/synthetic.py"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        pytest.skip(f"no git history with commit {BEFORE[:7]} (the stored digests still hold the data)")
    name = "synthetic_before_visible"
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve the module's annotations through sys.modules
    exec(compile(src, f"{BEFORE[:7]}:bench/data/synthetic.py", "exec"), module.__dict__)
    return module


def test_the_other_benchmarks_are_byte_identical_to_mains_generator():
    """Rendered frames and boxes, the cache key and the boxes.json rows against the generator at BEFORE."""
    old = _main_generator()
    for name, params in OLD_SETS.items():
        p, q = SynthParams(**params), old.SynthParams(**params)
        assert p.to_dict() == q.to_dict(), name  # so params_key (the cache directory) is unchanged
        assert _digest(render_video, p) == _digest(old.render_video, q), name
    old_dict = old.SynthParams(**PAPER_FRAME).to_dict()
    blob = json.dumps({"v": old.GENERATOR_VERSION, "layout": "frames", **old_dict}, sort_keys=True)
    assert params_key("frames", SynthParams(**PAPER_FRAME)) == hashlib.sha1(blob.encode()).hexdigest()[:10]


def test_boxes_file_of_a_full_visibility_set_is_unchanged(tmp_path):
    """boxes.json of a set without absent frames is the one the old writer made (integer rows, no nulls)."""
    old = _main_generator()
    params = dict(PAPER_FRAME, classes=2, videos_per_class=(2, 1))
    root = generate_synthetic(tmp_path / "set", workers=1, **params)
    q = old.SynthParams(**params)
    want = {
        vid: old.render_video(q, split, label, k)[1].astype(int).tolist()
        for split in ("train", "val")
        for vid, label, k in old.videos(q, split)
    }
    text = json.dumps({"format": "x0,y0,x1,y1 pixels per frame", "boxes": want})  # the old writer's line
    assert (root / "boxes.json").read_text() == text
