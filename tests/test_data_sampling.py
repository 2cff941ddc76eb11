"""Frame sampling, V2's coarse-to-fine order, and the spatial transforms (pure functions)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.data import ClipSpec, dataset_info, list_datasets
from bench.data.sampling import coarse2fine_order, order_frames, tsn_indices
from bench.data.transforms import apply_geometry, eval_geometry, map_boxes, train_geometry
from bench.errors import UsageError


def test_coarse2fine_reproduces_v2_orders():
    assert coarse2fine_order(16) == [7, 0, 15, 3, 11, 1, 5, 9, 13, 2, 4, 6, 8, 10, 12, 14]
    assert coarse2fine_order(8) == [3, 0, 7, 1, 5, 2, 4, 6]


@pytest.mark.parametrize("n", list(range(1, 34)))
def test_coarse2fine_is_a_permutation_whose_prefixes_spread(n):
    order = coarse2fine_order(n)
    assert sorted(order) == list(range(n))
    if n >= 3:  # the first three steps already span the whole video
        assert set(order[:3]) >= {0, n - 1}


def test_order_frames_permutes_sampled_indices():
    idx = np.arange(8) * 2 + 1
    assert order_frames(idx, "time").tolist() == idx.tolist()
    assert order_frames(idx, "coarse2fine").tolist() == [7, 1, 15, 3, 11, 5, 9, 13]


def test_tsn_eval_takes_segment_centres():
    assert tsn_indices(16, 8, train=False).tolist() == [1, 3, 5, 7, 9, 11, 13, 15]
    assert tsn_indices(12, 4, train=False).tolist() == [1, 4, 7, 10]
    short = tsn_indices(5, 8, train=False)
    assert short.min() >= 0 and short.max() <= 4 and np.all(np.diff(short) >= 0)


@pytest.mark.parametrize("n,t", [(37, 8), (16, 8), (8, 8), (100, 3)])
def test_tsn_train_draws_one_frame_per_segment_and_covers_it(n, t):
    rng = np.random.default_rng(0)
    draws = np.stack([tsn_indices(n, t, train=True, rng=rng) for _ in range(400)])
    bounds = [int(np.floor(n * k / t)) for k in range(t + 1)]
    for k in range(t):
        seen = set(draws[:, k].tolist())
        assert seen == set(range(bounds[k], bounds[k + 1])), (k, seen)


def test_tsn_train_is_reproducible_with_a_seeded_generator():
    a = tsn_indices(50, 8, train=True, rng=np.random.default_rng(3))
    b = tsn_indices(50, 8, train=True, rng=np.random.default_rng(3))
    assert a.tolist() == b.tolist()
    draws = {tuple(tsn_indices(50, 8, train=True, rng=np.random.default_rng(s))) for s in range(5)}
    assert len(draws) > 1  # the seed matters


def test_tsn_train_without_a_generator_follows_torch_manual_seed():
    torch.manual_seed(4)
    a = tsn_indices(50, 8, train=True)
    torch.manual_seed(4)
    assert tsn_indices(50, 8, train=True).tolist() == a.tolist()


def test_clip_spec_rejects_bad_values():
    with pytest.raises(UsageError):
        ClipSpec(frames=0)
    with pytest.raises(UsageError):
        ClipSpec(frames=8, input_size=64, resize=32)
    with pytest.raises(UsageError):
        ClipSpec(frames=8, frame_order="random")


def test_eval_geometry_resizes_short_side_then_centre_crops():
    geo = eval_geometry(32, 40, input_size=24, resize=28)
    assert geo.pre == (28, 35) and geo.box == (2, 5, 24, 24) and not geo.flip
    out = apply_geometry(np.zeros((3, 32, 40, 3), np.uint8), geo)
    assert out.shape == (3, 3, 24, 24) and out.dtype == torch.float32
    assert eval_geometry(64, 64, 64, 64).pre is None  # identity when sizes already match


def test_train_geometry_uses_multiscale_crops_and_never_flips_when_not_allowed():
    g = np.random.default_rng(0)
    sizes = [int(32 * s) for s in (1.0, 0.875, 0.75, 0.66)]
    flips = []
    for _ in range(300):
        geo = train_geometry(32, 40, 24, (1.0, 0.875, 0.75, 0.66), allow_flip=True, rng=g)
        y0, x0, ch, cw = geo.box
        assert ch in sizes and cw in sizes and abs(sizes.index(ch) - sizes.index(cw)) <= 1
        assert 0 <= y0 <= 32 - ch and 0 <= x0 <= 40 - cw
        flips.append(geo.flip)
        assert not train_geometry(32, 40, 24, (1.0, 0.875), allow_flip=False, rng=g).flip
    assert 0.3 < np.mean(flips) < 0.7


@pytest.mark.parametrize("train", [False, True])
def test_boxes_follow_the_pixels(train):
    """A white square drawn in the source must sit inside its mapped box in the output."""
    frames = np.zeros((1, 48, 60, 3), np.uint8)
    frames[0, 20:30, 36:46] = 255
    box = torch.tensor([[36.0, 20.0, 46.0, 30.0]])
    g = np.random.default_rng(1)
    for _ in range(20):
        geo = (
            train_geometry(48, 60, 32, (1.0, 0.875, 0.75, 0.66), allow_flip=True, rng=g)
            if train
            else eval_geometry(48, 60, 32, 40)
        )
        img = apply_geometry(frames, geo, normalize=False)[0, 0]
        mapped = map_boxes(box, geo, (48, 60))[0]
        if torch.isnan(mapped).any():
            continue
        ys, xs = torch.nonzero(img > 200, as_tuple=True)
        assert len(ys) > 0
        x0, y0, x1, y1 = mapped.tolist()
        # bright pixel centres lie inside the mapped box (up to the interpolation's half pixel)
        assert xs.min() + 0.5 >= x0 - 1 and xs.max() + 0.5 <= x1 + 1
        assert ys.min() + 0.5 >= y0 - 1 and ys.max() + 0.5 <= y1 + 1


def test_a_box_cropped_away_becomes_nan():
    geo = eval_geometry(64, 64, 32, 64)  # centre 32x32 of a 64x64 frame
    out = map_boxes(torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 40.0, 40.0]]), geo, (64, 64))
    assert torch.isnan(out[0]).all() and out[1].tolist() == [4.0, 4.0, 24.0, 24.0]


def test_flip_rule():
    """Direction-labelled datasets (and the synthetic ones) never flip; the others do."""
    flips = {name: dataset_info(name).flip for name in list_datasets()}
    assert flips == {
        "actnet": True,
        "fcvid": True,
        "minik": True,
        "jester": False,
        "sthv1": False,
        "sthv2": False,
        "synthetic": False,
        "synthetic_hard": False,
        "synthetic_video": False,
        "synthetic_video_hard": False,
        "synthetic_temporal": False,
    }
    assert dataset_info("actnet").multilabel and dataset_info("fcvid").multilabel
    assert not dataset_info("minik").multilabel


def test_dataset_entries_carry_class_count_and_variant():
    facts = {name: (dataset_info(name).num_classes, dataset_info(name).variant) for name in list_datasets()}
    assert facts == {
        "actnet": (200, "frame"),
        "fcvid": (239, "frame"),
        "minik": (200, "frame"),
        "sthv1": (174, "video"),
        "sthv2": (174, "video"),
        "jester": (27, "video"),
        "synthetic": (6, "frame"),
        "synthetic_hard": (6, "frame"),
        "synthetic_video": (6, "video"),
        "synthetic_video_hard": (6, "video"),
        "synthetic_temporal": (6, "frame"),
    }
    assert all(dataset_info(name).layouts for name in list_datasets())
