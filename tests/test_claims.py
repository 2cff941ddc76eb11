"""Claims verdicts: every verdict is reachable, and the rule behaves at its edges."""
from __future__ import annotations

import math

import pytest

from reports.claims import (FAILS, FEW, HOLDS, claims_for_group, claims_markdown, compare, exit_saving,
                            time_to_accuracy)
from reports.frame import runs_frame
from tests.fixtures_results import make_summary, matched_summaries


def _by(claims, prefix, setting=None):
    out = [c for c in claims if c.claim.startswith(prefix) and (setting is None or c.setting == setting)]
    assert out, f"no claim starting with {prefix!r}"
    return out


def test_compare_rule():
    assert compare([0.6, 0.62], [0.5, 0.52])[0] == HOLDS
    assert compare([0.6], [0.5, 0.52])[0] == FEW
    # the right direction but inside the noise
    assert compare([0.50, 0.60], [0.49, 0.59])[0] == FAILS
    # the wrong direction
    assert compare([0.5, 0.52], [0.6, 0.62])[0] == FAILS
    verdict, diff, pooled = compare([2.0, 4.0], [1.0, 1.0])
    assert diff == pytest.approx(2.0) and pooled == pytest.approx(math.sqrt(1.0))
    assert verdict == HOLDS


def test_time_to_accuracy():
    curve = [{"train_seconds": 10, "top1": 0.3}, {"train_seconds": 20, "top1": 0.5},
             {"train_seconds": 30, "top1": 0.45}, {"train_seconds": 40, "top1": 0.6}]
    assert time_to_accuracy(curve, 0.5) == 20
    assert time_to_accuracy(curve, 0.55) == 40
    assert time_to_accuracy(curve, 0.61) is None
    assert time_to_accuracy(list(reversed(curve)), 0.4) == 20  # order of the list does not matter
    assert time_to_accuracy([], 0.1) is None
    ml = [{"train_seconds": 5, "top1": 0.9, "map": 0.2}, {"train_seconds": 9, "top1": 0.1, "map": 0.7}]
    assert time_to_accuracy(ml, 0.5, multilabel=True) == 9


def test_v2_better_and_faster_holds():
    claims = claims_for_group(runs_frame(matched_summaries()))
    for prefix in ("(a)", "(b)", "V2 reaches", "(d)"):
        for c in _by(claims, prefix):
            assert c.verdict == HOLDS, c
    a = _by(claims, "(a)", "32²")[0]
    assert "Δ +10.0" in a.measurement
    assert "2.00×" in _by(claims, "(b)", "32²")[0].measurement
    # no ablation runs: shown, but not enough seeds
    assert all(c.verdict == FEW for c in _by(claims, "(c)"))
    assert "not published" in _by(claims, "(c)")[0].paper


def test_one_seed_is_not_enough_but_is_measured():
    claims = claims_for_group(runs_frame(matched_summaries(seeds=(0,))))
    for prefix in ("(a)", "(b)", "V2 reaches", "(d)"):
        c = _by(claims, prefix)[0]
        assert c.verdict == FEW
        assert c.measurement
    assert "Δ +10.0" in _by(claims, "(a)", "32²")[0].measurement


def test_claims_do_not_hold():
    # V2 worse and slower than V1: every V1/V2 claim fails
    claims = claims_for_group(runs_frame(matched_summaries(v1_top1=0.6, v2_top1=0.5,
                                                           v1_seconds=100, v2_seconds=200)))
    for prefix in ("(a)", "(b)", "V2 reaches"):
        assert all(c.verdict == FAILS for c in _by(claims, prefix))
    # faster, but only 1.2x: not "about 2x"
    claims = claims_for_group(runs_frame(matched_summaries(v1_seconds=120, v2_seconds=100, jitter=0.001)))
    assert all(c.verdict == FAILS for c in _by(claims, "(b)"))


def test_ablation_verdicts():
    runs = matched_summaries(patch_sizes=(32,))
    # aux supervision off -> clearly worse; diversity off -> no change
    for s in (0, 1, 2):
        runs.append({**make_summary("v2", seed=s, top1=0.45 + 0.01 * s), "aux_supervision": False})
        runs.append({**make_summary("v2", seed=s, top1=0.59 + 0.01 * s), "diversity": False})
    claims = claims_for_group(runs_frame(runs))
    assert _by(claims, "(c) aux supervision")[0].verdict == HOLDS
    assert _by(claims, "(c) diversity")[0].verdict == FAILS
    assert _by(claims, "(c) stop gradient")[0].verdict == FEW
    # ablation runs do not leak into the V1-vs-V2 comparison
    assert "n=3) vs V2" in _by(claims, "(a)")[0].measurement


def test_early_exit_saving():
    run = runs_frame([make_summary("v2", top1=0.6, gflops_per_video=1.0)]).iloc[0]
    assert exit_saving(run, 1.0) == pytest.approx(0.4)   # 0.6 G point is 0.4 pt below
    assert exit_saving(run, 0.1) == pytest.approx(0.2)   # only the 0.8 G point matches exactly
    flat = [{"budget": 1.0, "gflops": 1.0, "top1": 0.6}]
    runs = [make_summary("v2", seed=s, early_exit=flat, gflops_per_video=1.0) for s in (0, 1)]
    c = _by(claims_for_group(runs_frame(runs)), "(d)")[0]
    assert c.verdict == FAILS and "0% fewer" in c.measurement


def test_markdown_has_every_claim():
    claims = claims_for_group(runs_frame(matched_summaries(dataset="activitynet", patch_sizes=(128,),
                                                           map=0.7)))
    md = claims_markdown(claims)
    assert md.count("\n| ") == len(claims)  # header first, then one row per claim
    assert "75.0% → V2 79.0%" in md and "7.2 h / 3.7 h" in md
    assert "mAP" in md
