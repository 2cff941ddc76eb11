"""Each on-disk format, read through ``create_dataset``: labels, shapes, sampled frames, flips, loaders."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fixtures_data import (
    frame_numbers_of,
    is_flipped,
    keys_in_order,
    labels_of,
    make_20bn_csv,
    make_arnet,
    make_sthv2_webm,
    make_tsm_lists,
)

from bench.data import ClipSpec, check_dataset, create_dataset, make_loader

SPEC = ClipSpec(frames=4, input_size=24, resize=28)

BUILDERS = {
    "jester-20bn": ("jester", lambda r: make_20bn_csv(r)),
    "jester-tsm": ("jester", lambda r: make_tsm_lists(r)),
    "sthv1-20bn": (
        "sthv1",
        lambda r: make_20bn_csv(r, "something-something-v1", "20bn-something-something-v1"),
    ),
    "sthv1-tsm": ("sthv1", lambda r: make_tsm_lists(r, "20bn-something-something-v1")),
    "sthv2-webm": ("sthv2", lambda r: make_sthv2_webm(r)),
    "sthv2-frames": (
        "sthv2",
        lambda r: make_tsm_lists(r, "20bn-something-something-v2-frames", "{:06d}.jpg"),
    ),
    "actnet": ("actnet", lambda r: make_arnet(r, "actnet")),
    "actnet-video": ("actnet", lambda r: make_arnet(r, "actnet", videos=True)),
    "fcvid": ("fcvid", lambda r: make_arnet(r, "fcvid")),
    "minik": ("minik", lambda r: make_arnet(r, "minik")),
    "minik-video": ("minik", lambda r: make_arnet(r, "minik", videos=True)),
}
LAYOUTS = {
    "jester-20bn": "20bn-csv",
    "jester-tsm": "tsm-lists",
    "sthv1-20bn": "20bn-csv",
    "sthv1-tsm": "tsm-lists",
    "sthv2-webm": "20bn-json-webm",
    "sthv2-frames": "tsm-lists",
}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = {}
    for key, (name, make) in BUILDERS.items():
        root = tmp_path_factory.mktemp(key)
        out[key] = (name, make(root))
    return out


@pytest.mark.parametrize("key", list(BUILDERS))
def test_eval_items_have_the_right_labels_shapes_and_centre_frames(built, key):
    name, fx = built[key]
    for split in ("train", "val"):
        ds = create_dataset(name, fx.root, split, SPEC, train=False)
        assert ds.classes == fx.classes and ds.num_classes == len(fx.classes)
        assert [r.key for r in ds.records] == keys_in_order(fx, split)
        assert ds.layout == LAYOUTS.get(key, "arnet-lists")
        for i, labels in enumerate(labels_of(fx, split)):
            item = ds[i]
            assert item["frames"].shape == (4, 3, 24, 24) and item["frames"].dtype == torch.float32
            assert "glance" not in item
            assert item["label"].item() == labels[0] and item["label"].dtype == torch.int64
            assert item["labels"].tolist() == list(labels) + [-1] * (3 - len(labels))
            assert item["boxes"].shape == (4, 4) and torch.isnan(item["boxes"]).all()
            assert item["index"].item() == i
            n = fx.frames[ds.records[i].key]
            centres = [int(np.floor(n / 4 * (k + 0.5))) + 1 for k in range(4)]
            assert frame_numbers_of(item["frames"]).tolist() == centres


def test_jester_class_index_is_the_alphabetical_rank_of_the_label(built):
    _, fx = built["jester-20bn"]
    ds = create_dataset("jester", fx.root, "train", SPEC, train=False)
    assert ds.classes == ["Doing other things", "Swiping Left", "Swiping Right"]
    assert ds[0]["label"].item() == 1  # first row: "Swiping Left"


def test_multilabel_lists_keep_up_to_three_labels_and_drop_short_videos(built):
    _, fx = built["actnet"]
    ds = create_dataset("actnet", fx.root, "train", SPEC, train=False)
    assert ds.multilabel and len(ds) == 3  # the 2-frame row is dropped, as the official loader does
    assert ds[2]["labels"].tolist() == [0, 3, 4] and ds[2]["label"].item() == 0
    assert ds[0]["labels"].tolist() == [2, 4, -1]


def test_train_items_pick_one_random_frame_per_segment(built):
    _, fx = built["actnet"]
    torch.manual_seed(0)
    ds = create_dataset("actnet", fx.root, "train", ClipSpec(frames=4, input_size=24, resize=28), train=True)
    n = fx.frames["v_ccc"]  # 18 frames, 4 segments
    bounds = [int(np.floor(n * k / 4)) for k in range(5)]
    seen = [set() for _ in range(4)]
    for _ in range(40):
        nums = frame_numbers_of(ds[2]["frames"]) - 1
        for k, v in enumerate(nums):
            assert bounds[k] <= v < bounds[k + 1]
            seen[k].add(int(v))
    assert all(len(s) > 1 for s in seen)  # offsets are random, not fixed


@pytest.mark.parametrize(
    "key,flips",
    [("jester-20bn", False), ("sthv1-tsm", False), ("sthv2-webm", False), ("actnet", True), ("minik", True)],
)
def test_training_flips_only_where_direction_does_not_matter(built, key, flips):
    name, fx = built[key]
    torch.manual_seed(0)
    ds = create_dataset(name, fx.root, "train", SPEC, train=True)
    flipped = [is_flipped(ds[i % len(ds)]["frames"]) for i in range(24)]
    assert any(flipped) == flips and (all(flipped) is False)


def test_separate_glance_frames_and_coarse2fine_order(built):
    _, fx = built["jester-tsm"]
    spec = ClipSpec(frames=8, glance_frames=4, input_size=24, resize=28, frame_order="coarse2fine")
    item = create_dataset("jester", fx.root, "train", spec, train=False)[2]  # 20 frames
    assert item["frames"].shape == (8, 3, 24, 24) and item["glance"].shape == (4, 3, 24, 24)
    centres = [int(np.floor(20 / 8 * (k + 0.5))) + 1 for k in range(8)]
    assert frame_numbers_of(item["frames"]).tolist() == [centres[i] for i in [3, 0, 7, 1, 5, 2, 4, 6]]
    g_centres = [int(np.floor(20 / 4 * (k + 0.5))) + 1 for k in range(4)]
    assert frame_numbers_of(item["glance"]).tolist() == [g_centres[i] for i in [1, 0, 3, 2]]


def test_decord_and_pyav_backends_return_the_same_clip(built):
    _, fx = built["sthv2-webm"]
    a = create_dataset("sthv2", fx.root, "train", SPEC, train=False, backend="decord")[0]["frames"]
    b = create_dataset("sthv2", fx.root, "train", SPEC, train=False, backend="pyav")[0]["frames"]
    assert torch.equal(a, b)


def test_official_jester_download_passes_check_with_correct_counts(built):
    _, fx = built["jester-20bn"]
    report = check_dataset("jester", fx.root)
    assert report.ok and report.layout == "20bn-csv"
    assert report.splits == {"train": 4, "val": 2} and report.num_classes == 3


@pytest.mark.parametrize("key", ["sthv2-webm", "actnet-video", "minik", "fcvid"])
def test_check_accepts_every_fixture(built, key):
    name, fx = built[key]
    report = check_dataset(name, fx.root, full_decode=True)
    assert report.ok, report.problems
    assert report.splits == {"train": len(fx.train), "val": len(fx.val)}


def test_loader_batches_are_seeded_and_shaped(built):
    _, fx = built["actnet"]
    spec = ClipSpec(frames=4, input_size=24, resize=28)
    ds = create_dataset("actnet", fx.root, "train", spec, train=True)

    def epoch(seed):
        torch.manual_seed(123)  # the model's seeding must not change the data order
        return [b for b in make_loader(ds, 2, train=True, num_workers=0, seed=seed)]

    a, b = epoch(5), epoch(5)
    assert len(a) == 1  # 3 videos, batch 2, drop_last in training
    batch = a[0]
    assert batch["frames"].shape == (2, 4, 3, 24, 24) and batch["labels"].shape == (2, 3)
    assert batch["boxes"].shape == (2, 4, 4) and batch["index"].shape == (2,)
    assert torch.equal(a[0]["index"], b[0]["index"])
    orders = {tuple(epoch(s)[0]["index"].tolist()) for s in range(8)}
    assert len(orders) > 1
    val = make_loader(
        create_dataset("actnet", fx.root, "train", spec, train=False), 2, train=False, num_workers=0, seed=0
    )
    assert [b["index"].tolist() for b in val] == [[0, 1], [2]]


def test_loader_with_a_worker_reads_videos_opened_in_the_worker(built):
    _, fx = built["sthv2-webm"]
    ds = create_dataset("sthv2", fx.root, "train", SPEC, train=False)
    loader = make_loader(ds, 2, train=False, num_workers=1, seed=0)
    batch = next(iter(loader))
    assert batch["frames"].shape == (2, 4, 3, 24, 24)
    assert torch.equal(batch["frames"][0], ds[0]["frames"])
