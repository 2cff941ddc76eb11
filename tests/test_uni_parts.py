"""Uni-AdaFocus's parts, each against a plain reference written here (loops over samples are fine in a
test)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from adafocus_uni import early_exit as ee
from adafocus_uni.params import segments
from adafocus_uni.parts import (
    UniClassifier,
    gumbel_drop_masks,
    inverse_cdf_indices,
    mc_temporal_logits,
    scale_for_side,
    scaled_crop,
)
from bench.models import build_network, hard_crop
from bench.presets import get_preset


def _reference_indices(w, segments, count, offsets):
    """The inverse-CDF sampler for one video, step by step."""
    tg = len(w)
    cdf = [0.0] + torch.cumsum(w, 0).tolist()
    cdf[-1] = 1.0
    out = []
    for i in range(count):
        u = (i + (0.5 if offsets is None else float(offsets[i]))) / count
        j = min(max(next(k for k, c in enumerate(cdf) if c >= u - 1e-7), 1), tg) - 1
        q = j / tg + (u - cdf[j]) / (cdf[j + 1] - cdf[j]) / tg
        idx = int(q * segments + 1e-6)
        if out and idx <= out[-1]:
            idx = out[-1] + 1
        out.append(idx)
    return [min(v, segments - count + i) for i, v in enumerate(out)]


@pytest.mark.parametrize("train", [False, True])
def test_inverse_cdf_matches_the_reference_and_gives_distinct_increasing_frames(train):
    g = torch.Generator().manual_seed(0)
    w = torch.softmax(torch.randn(64, 8, generator=g) * 2, dim=1).double()
    offsets = torch.rand(64, 6, generator=g).double() if train else None
    got = inverse_cdf_indices(w, 24, 6, offsets)
    for b in range(64):
        assert got[b].tolist() == _reference_indices(w[b], 24, 6, None if offsets is None else offsets[b])
    assert bool((got[:, 1:] > got[:, :-1]).all()) and int(got.min()) >= 0 and int(got.max()) < 24


def test_inverse_cdf_follows_the_weights():
    uniform = inverse_cdf_indices(torch.full((1, 8), 1 / 8), 48, 16)
    assert uniform[0].tolist() == [1 + 3 * i for i in range(16)]  # evenly spread, the strata's centres
    peaked = torch.tensor([[0.02] * 4 + [0.86] + [0.02] * 3])  # glance frame 4 covers segments 24..29
    idx = inverse_cdf_indices(peaked, 48, 8)[0]
    assert sum(24 <= int(i) < 30 for i in idx) >= 6


def test_monte_carlo_masks_remove_the_right_number_of_frames_by_weight():
    w = torch.tensor([[0.7, 0.1, 0.1, 0.05, 0.05]])
    drop = gumbel_drop_masks(w, 4000, 3, torch.Generator().manual_seed(0))
    assert drop.shape == (1, 4000, 3, 5)
    assert torch.equal(drop.sum(-1), torch.tensor([0, 1, 2]).expand(1, 4000, 3))
    first = drop[0, :, 1].float().mean(0)  # one frame removed: P(frame) = weight
    assert torch.allclose(first, w[0], atol=0.03)


def test_monte_carlo_logits_are_weighted_averages_and_train_the_weights():
    logits = torch.randn(2, 4, 3)
    w = torch.softmax(torch.randn(2, 4), 1).requires_grad_()
    none = torch.zeros(2, 1, 1, 4, dtype=torch.bool)
    assert torch.allclose(
        mc_temporal_logits(logits, w, none), (w[..., None] * logits).sum(1) / w.sum(1, True)
    )
    drop = gumbel_drop_masks(w, 16, 2)
    mc_temporal_logits(logits, w, drop).sum().backward()
    assert w.grad is not None and float(w.grad.abs().sum()) > 0


def test_fixed_scale_crop_equals_the_integer_crop():
    frames = torch.randn(3, 3, 56, 56)
    p = 32
    loc = torch.tensor([[0.0, 1.0], [12 / 24, 5 / 24], [1.0, 0.0]])
    actions = torch.cat([loc, torch.full((3, 2), scale_for_side(p, 56))], 1)
    got = scaled_crop(frames, actions, p, patch=p, frame=56)
    assert torch.allclose(got, hard_crop(frames, loc, p), atol=1e-4)  # float rounding of the grid only
    whole = scaled_crop(frames, torch.tensor([[0.3, 0.7, 1.0, 1.0]]).expand(3, 4), 56, patch=56, frame=56)
    assert torch.allclose(whole, frames, atol=1e-4)  # scale 1: the whole frame


def test_classifier_steps_are_running_maxima():
    c = UniClassifier(5, 7, 6, 4, glance_steps=3, focus_steps=2).eval()
    g, f = torch.randn(2, 3, 5), torch.randn(2, 2, 7)
    out = c(g, f)
    zg, zf = c.embed(c.glance_mlp, g), c.embed(c.focus_mlp, f)
    want = [c.glance_heads.one(zg[:, : t + 1].amax(1), t) for t in range(3)]
    want += [c.focus_heads.one(torch.cat([zf[:, : t + 1].amax(1), zg.amax(1)], 1), t) for t in range(2)]
    assert torch.allclose(out, torch.stack(want, 1), atol=1e-6)


def test_tiny_preset_is_derived_by_the_scale_rule():
    paper, tiny = (get_preset("actnet", "paper", method="uni"), get_preset("synthetic", "tiny", method="uni"))
    assert (paper.frames, tiny.frames) == (48, 24) and tiny.frame_order == "time"
    assert segments(tiny) == (24, 8, 8) and segments(paper) == (48, 16, 16)
    assert tiny.train.epochs == 10 and tiny.train.batch_size == 16
    assert tiny.train.lr == pytest.approx(paper.train.lr * 10 * 0.5)
    assert tiny.train.classifier_lr_ratio == paper.train.classifier_lr_ratio == 20.0
    v2 = get_preset("synthetic", "tiny", method="v2")
    shared = (
        "glance_backbone",
        "glance_width",
        "focus_backbone",
        "patch_size",
        "input_size",
        "classifier_hidden",
    )
    assert all(getattr(tiny, k) == getattr(v2, k) for k in shared)  # --arch matched: same f_G, f_L, f_C width


@pytest.fixture
def tiny_net():
    torch.manual_seed(0)
    preset = get_preset("synthetic", "tiny", method="uni")
    return preset, build_network(preset)


def test_eval_forward_is_deterministic_and_has_one_exit_per_focus_frame(tiny_net):
    preset, net = tiny_net
    x = torch.randn(2, preset.frames, 3, 56, 56)
    net.eval()
    a, b = net(x), net(x)
    assert torch.equal(a["logits"], b["logits"]) and a["logits"].shape == (2, 9, preset.num_classes)
    assert torch.equal(a["logits"][:, 0], a["all_logits"][:, 7])  # exit 0: the glance alone
    assert bool((a["focus_indices"][:, 1:] > a["focus_indices"][:, :-1]).all())


def test_ablations_replace_the_policies(tiny_net):
    preset, _ = tiny_net
    off = dataclasses.replace(
        preset, train=dataclasses.replace(preset.train, temporal_policy=False, learned_scale=False)
    )
    net = build_network(off).train()
    out = net.training_outputs(torch.randn(2, off.frames, 3, 56, 56))
    assert out["temporal_logits"] is None
    assert torch.allclose(out["actions"][..., 2:], torch.tensor(net.fixed_scale))
    net.eval()
    idx = net(torch.randn(2, off.frames, 3, 56, 56))["focus_indices"]
    assert idx[0].tolist() == [1 + 3 * i for i in range(8)]  # uniformly spread frames


def test_early_exit_thresholds_meet_the_shares_and_cost_what_they_say():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 5, (300,), generator=g)
    signal = (
        torch.nn.functional.one_hot(labels, 5).float()[:, None] * torch.linspace(0.2, 3, 9)[None, :, None]
    )
    logits = torch.randn(300, 9, 5, generator=g) + signal
    shares = ee.exit_shares(0.5, 9)
    where = ee.first_exit(ee.confidence(logits), ee.thresholds(ee.confidence(logits), shares))
    counts = torch.bincount(where, minlength=9)
    assert torch.equal(counts[:-1], torch.floor(300 * shares).long()[:-1])
    costs = [1.0 + k for k in range(9)]
    curve = ee.exit_curve(logits, logits, labels, costs)
    assert len(curve) == 19 and all(1.0 <= p.gflops <= 9.0 for p in curve)
    assert curve[0].gflops < curve[-1].gflops and curve[0].top1 <= curve[-1].top1 + 0.05


@pytest.mark.parametrize(
    "dataset,lr,batch,wd,norm",
    [("actnet", 0.002, 32, 2e-4, 1.0), ("fcvid", 0.004, 64, 1e-4, 1.0), ("minik", 0.003, 48, 1e-4, 0.75)],
)
def test_paper_presets_follow_the_official_scripts(dataset, lr, batch, wd, norm):
    """The official README's three training commands (adafocus-facts.md §4.5)."""
    p = get_preset(dataset, "paper", method="uni", arch="paper")
    hp = p.train
    assert (hp.lr, hp.batch_size, hp.weight_decay, hp.norm_ratio, hp.epochs) == (lr, batch, wd, norm, 50)
    assert (hp.glance_lr_ratio, hp.spatial_lr_ratio, hp.temporal_lr_ratio, hp.classifier_lr_ratio) == (
        0.5,
        0.2,
        0.2,
        20,
    )
    assert (hp.spatial_hidden, hp.temporal_hidden, hp.kl_ratio, hp.temperature) == (128, 64, 0.0, 1.0)
    assert hp.mc_draws == 128
    assert (*segments(p), p.patch_size, p.input_size) == (48, 16, 16, 128, 224)
    assert (p.glance_backbone, p.focus_backbone, p.classifier_hidden, p.dropout) == (
        "mbv2",
        "res50",
        4096,
        0.2,
    )


def test_video_variant_is_a_one_line_error():
    from bench.errors import UsageError

    with pytest.raises(UsageError, match="TSM variant"):
        build_network(get_preset("synthetic_video", "tiny", method="uni"))
