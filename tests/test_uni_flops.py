"""Uni-AdaFocus FLOPs, counted by fvcore on the network the preset builds (never typed in): the published 27.2
GFLOPs (ActivityNet, MN2 + R50, 128², official README) within 0.5 %, each component against the official
per-component constants of ``ops/early_exit_uni_adafocus.py`` (adafocus-facts.md §4.1), and the 17 exits'
costs."""

from __future__ import annotations

import pytest

from adafocus_uni import flops as uni_flops
from adafocus_uni.params import segments
from bench.models import build_network, without_weight_files
from bench.models.flops import count_flops
from bench.presets import get_preset

PUBLISHED = 27.2
# official constants (GFLOPs): f_G per frame "without fc", f_L per 128² patch, the spatial policy on all 16
# maps, the temporal policy on all 16 vectors; the classifier per exit k: (5.246976 + 0.8192) * 16 + (8.392704
# + 1.6384) * k M
MBV2, RES50_128, SPATIAL, TEMPORAL = 0.299511328, 1.334601664, 0.822485376, 0.00412992


@pytest.fixture(scope="module")
def paper():
    preset = get_preset("actnet", "paper", method="uni", arch="paper")
    return preset, count_flops(build_network(without_weight_files(preset)), preset)


def test_paper_preset_reproduces_published_gflops(paper):
    preset, report = paper
    assert segments(preset) == (48, 16, 16)
    assert abs(report.gflops_per_video / PUBLISHED - 1) < 0.005, report.gflops_per_video
    assert abs(sum(report.by_component.values()) - report.gflops_per_video) < 1e-6
    assert report.by_component["aux_heads"] == 0  # training-only heads are not run at inference


def test_components_match_the_official_constants(paper):
    preset, _ = paper
    comp = uni_flops.report(preset)["by_component"]
    # fvcore also counts the global average pool of each map (1280 x 49 adds per frame): < 0.05 %
    assert comp["glance"] == pytest.approx(16 * MBV2, rel=5e-4)
    assert comp["focus"] == pytest.approx(16 * RES50_128, rel=5e-4)
    assert comp["spatial_policy"] == pytest.approx(SPATIAL, rel=1e-5)
    assert comp["temporal_policy"] == pytest.approx(TEMPORAL, rel=1e-3)
    # the official MLP constants also count the 4096 bias adds of each linear layer; fvcore counts
    # multiply-adds
    bias = 4096e-6
    assert comp["classifier_glance"] == pytest.approx((5.246976 - bias + 0.8192) * 16e-3, rel=1e-6)
    assert comp["classifier_focus"] == pytest.approx((8.392704 - bias + 1.6384) * 16e-3, rel=1e-6)


def test_exit_costs_follow_the_official_cost_model(paper):
    preset, report = paper
    exits = report.per_step
    assert len(exits) == 17  # 0..16 focus frames
    official = [
        MBV2 * 16
        + RES50_128 * k
        + (5.246976 * 16 + 8.392704 * k + 0.8192 * 16 + 1.6384 * k) * 1e-3
        + ((TEMPORAL + SPATIAL) if k else 0.0)
        for k in range(17)
    ]
    for ours, theirs in zip(exits, official):
        assert ours == pytest.approx(theirs, rel=2e-3)
    assert exits[-1] == pytest.approx(report.gflops_per_video, rel=1e-9)
    steps = [b - a for a, b in zip(exits[1:], exits[2:])]
    assert max(steps) - min(steps) < 1e-9 and exits[1] - exits[0] > steps[0]  # the policies join at exit 1


def test_tiny_preset_exits_are_counted_too():
    preset = get_preset("synthetic", "tiny", method="uni")
    report = count_flops(build_network(without_weight_files(preset)), preset)
    assert len(report.per_step) == segments(preset)[2] + 1
    assert report.per_step == sorted(report.per_step) and report.per_step[-1] == pytest.approx(
        report.gflops_per_video
    )
