"""Claims verdicts from the paired procedure: every verdict is reachable, pairing is by seed, and the
effect column carries the interval and n."""

from __future__ import annotations

import numpy as np
import pytest

from reports.claims import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    claims_for_group,
    claims_markdown,
    exit_saving,
    method_text,
    time_to_accuracy,
)
from reports.frame import runs_frame
from tests.fixtures_results import make_curve, make_summary, matched_summaries

# per-seed spread shared by both methods of a seed (what pairing removes), and an independent part
SHARED = {0: -0.06, 1: 0.04, 2: 0.01, 3: -0.02, 4: 0.05}
OWN = {0: 0.004, 1: -0.006, 2: 0.002, 3: 0.005, 4: -0.003}


def _by(claims, prefix, setting=None):
    out = [c for c in claims if c.claim.startswith(prefix) and (setting is None or c.setting == setting)]
    assert out, f"no claim starting with {prefix!r}"
    return out


def _pairs(gain: float, seeds=(0, 1, 2, 3, 4), v1_seconds=200.0, v2_seconds=100.0, **kw):
    """V1 and V2 runs per seed: V2 = V1 + gain (accuracy fraction) up to small independent noise."""
    out = []
    for s in seeds:
        v1 = 0.5 + SHARED[s]
        v2 = v1 + gain + OWN[s]
        out.append(make_summary("v1", seed=s, top1=v1, train_seconds=v1_seconds * (1 + SHARED[s]), **kw))
        out.append(
            make_summary("v2", seed=s, top1=v2, train_seconds=v2_seconds * (1 + SHARED[s] + OWN[s]), **kw)
        )
    return out


def test_time_to_accuracy():
    curve = [
        {"train_seconds": 10, "top1": 0.3},
        {"train_seconds": 20, "top1": 0.5},
        {"train_seconds": 30, "top1": 0.45},
        {"train_seconds": 40, "top1": 0.6},
    ]
    assert time_to_accuracy(curve, 0.5) == 20
    assert time_to_accuracy(curve, 0.55) == 40
    assert time_to_accuracy(curve, 0.61) is None
    assert time_to_accuracy(list(reversed(curve)), 0.4) == 20  # order of the list does not matter
    assert time_to_accuracy([], 0.1) is None
    ml = [{"train_seconds": 5, "top1": 0.9, "map": 0.2}, {"train_seconds": 9, "top1": 0.1, "map": 0.7}]
    assert time_to_accuracy(ml, 0.5, multilabel=True) == 9


def test_clear_effects_hold_with_interval_and_n():
    claims = claims_for_group(runs_frame(matched_summaries()))
    for prefix in ("(a)", "(b)", "AdaFocusV2 reaches", "(d)"):
        for c in _by(claims, prefix):
            assert c.verdict == HOLDS and c.n == 3, c
    a = _by(claims, "(a)", "32²")[0]
    assert a.effect == "+10.0 pts [+10.0, +10.0]"  # the same gain in every seed: a zero-width interval
    assert _by(claims, "(b)", "32²")[0].effect.startswith("2.00× [2.00×")
    # no ablation runs: shown, inconclusive, n = 0
    assert all(c.verdict == INCONCLUSIVE and c.n == 0 for c in _by(claims, "(c)"))
    assert "not published" in _by(claims, "(c)")[0].paper


def test_pairing_removes_the_shared_seed_spread():
    """A 3-point gain under a larger seed spread shared by both methods of a seed: pairing removes the
    shared part, so the gain holds."""
    runs = _pairs(0.03)
    v2 = [r["top1"] for r in runs if r["method"] == "v2"]
    assert 100 * np.std(v2, ddof=1) > 3.0  # the seed spread is larger than the effect
    claims = claims_for_group(runs_frame(runs))
    a = _by(claims, "(a)")[0]
    assert a.verdict == HOLDS and a.n == 5
    lo = float(a.effect.split("[")[1].split(",")[0])
    assert 0 < lo < 3.0


def test_null_effect_is_inconclusive_and_reversed_does_not_hold():
    null = _by(claims_for_group(runs_frame(_pairs(0.0))), "(a)")[0]
    assert null.verdict == INCONCLUSIVE
    worse = claims_for_group(runs_frame(_pairs(-0.05, v1_seconds=100, v2_seconds=200)))
    for prefix in ("(a)", "(b)"):
        assert _by(worse, prefix)[0].verdict == FAILS


def test_one_seed_is_inconclusive_but_is_measured():
    claims = claims_for_group(runs_frame(matched_summaries(seeds=(0,))))
    for prefix in ("(a)", "(b)", "AdaFocusV2 reaches", "(d)"):
        c = _by(claims, prefix)[0]
        assert c.verdict == INCONCLUSIVE and c.n == 1
        assert "no interval" in c.effect and c.measurement
    assert _by(claims, "(a)", "32²")[0].effect.startswith("+10.0 pts")


def test_speedup_needs_the_minimum_effect():
    # 1.2x in every seed: significantly faster, but the whole interval is below 1.5x
    c = _by(claims_for_group(runs_frame(_pairs(0.05, v1_seconds=120, v2_seconds=100))), "(b)")[0]
    assert c.verdict == FAILS and c.effect.startswith("1.2")
    # 1.5x on average with seed noise around it: inconclusive
    ratios = {0: 1.2, 1: 1.9, 2: 1.4, 3: 1.7, 4: 1.35}
    runs = _pairs(0.05)
    for r in runs:
        if r["method"] == "v2":
            r["train_seconds"] = 200.0 * (1 + SHARED[r["seed"]]) / ratios[r["seed"]]
    c = _by(claims_for_group(runs_frame(runs)), "(b)")[0]
    assert c.verdict == INCONCLUSIVE and c.effect.startswith("1.49×")


def test_unpaired_seeds_are_excluded_and_named():
    runs = [r for r in _pairs(0.05) if not (r["method"] == "v2" and r["seed"] == 4)]
    runs += [make_summary("v2", seed=9, top1=0.99)]  # would lift V2's mean if it were used
    a = _by(claims_for_group(runs_frame(runs)), "(a)")[0]
    assert a.n == 4
    assert (
        "unpaired AdaFocusV1 seed 4 excluded" in a.measurement
        and "unpaired AdaFocusV2 seed 9 excluded" in a.measurement
    )
    assert "seeds 0, 1, 2, 3" in a.measurement


def test_time_to_accuracy_claim_when_the_target_is_not_reached():
    runs = matched_summaries(patch_sizes=(32,), v1_top1=0.6, v2_top1=0.5)  # V2 ends below V1's accuracy
    c = _by(claims_for_group(runs_frame(runs)), "AdaFocusV2 reaches")[0]
    assert c.verdict == FAILS and c.effect == "never reached" and "0/3 seeds" in c.measurement
    # one seed reaches it, two do not: cannot hold, cannot be ruled out either
    runs = matched_summaries(patch_sizes=(32,), v1_top1=0.6, v2_top1=0.5)
    for r in runs:
        if r["method"] == "v2" and r["seed"] == 0:
            r["curve"] = make_curve(0.7, r["train_seconds"])
    c = _by(claims_for_group(runs_frame(runs)), "AdaFocusV2 reaches")[0]
    assert c.verdict == INCONCLUSIVE and "1/3 seeds" in c.measurement


def test_ablation_verdicts_pair_full_and_ablated_by_seed():
    runs = _pairs(0.05, seeds=(0, 1, 2, 3))
    for s in (0, 1, 2, 3):
        full = 0.55 + SHARED[s] + OWN[s]
        runs.append({**make_summary("v2", seed=s, top1=full - 0.10 + OWN[s]), "aux_supervision": False})
        runs.append({**make_summary("v2", seed=s, top1=full + 2 * OWN[s]), "diversity": False})
        runs.append({**make_summary("v2", seed=s, top1=full + 0.08 - OWN[s]), "stop_gradient": False})
    claims = claims_for_group(runs_frame(runs))
    assert _by(claims, "(c) auxiliary supervision")[0].verdict == HOLDS
    assert _by(claims, "(c) diversity")[0].verdict == INCONCLUSIVE
    assert _by(claims, "(c) stop-gradient")[0].verdict == FAILS
    assert all(c.n == 4 for c in _by(claims, "(c)"))
    # ablation runs do not leak into the V1-vs-V2 comparison
    assert _by(claims, "(a)")[0].n == 4 and "seeds 0, 1, 2, 3)" in _by(claims, "(a)")[0].measurement


def test_early_exit_saving_and_verdict():
    run = runs_frame([make_summary("v2", top1=0.6, gflops_per_video=1.0)]).iloc[0]
    assert exit_saving(run, 1.0) == pytest.approx(0.4)  # 0.6 G point is 0.4 pt below
    assert exit_saving(run, 0.1) == pytest.approx(0.2)  # only the 0.8 G point matches exactly
    flat = [{"budget": 1.0, "gflops": 1.0, "top1": 0.6}]
    runs = [make_summary("v2", seed=s, early_exit=flat, gflops_per_video=1.0) for s in (0, 1)]
    c = _by(claims_for_group(runs_frame(runs)), "(d)")[0]
    assert c.verdict == FAILS and "0% fewer" in c.measurement and c.effect == "0% [0%, 0%]" and c.n == 2
    # savings of 2 % to 30 % over three seeds: the interval straddles the 5 % minimum
    runs = []
    for s, g in enumerate((0.98, 0.7, 0.85)):
        pts = [{"budget": g, "gflops": g, "top1": 0.6}, {"budget": 1.0, "gflops": 1.0, "top1": 0.6}]
        runs.append(make_summary("v2", seed=s, early_exit=pts, gflops_per_video=1.0))
    c = _by(claims_for_group(runs_frame(runs)), "(d)")[0]
    assert c.verdict == INCONCLUSIVE and c.n == 3


def test_markdown_has_every_claim_and_the_procedure():
    claims = claims_for_group(
        runs_frame(matched_summaries(dataset="activitynet", patch_sizes=(128,), map=0.7))
    )
    md = claims_markdown(claims, exit_tol=2.0, pairs=[("v1", "v2")])
    assert md.count("\n| ") == len(claims)  # header first, then one row per claim
    assert "| Effect [95% CI] | n | Verdict |" in md
    assert "75.0% → V2 79.0%" in md and "7.2 h / 3.7 h" in md
    assert "mAP" in md
    assert method_text(2.0, "v1", "v2") in md and "within 2 pt" in md and "t(0.975, n−1)" in md


def test_claims_are_deterministic():
    runs = _pairs(0.03)
    assert claims_for_group(runs_frame(runs)) == claims_for_group(runs_frame(list(reversed(runs))))


def test_no_speed_claim_for_a_method_whose_paper_makes_none():
    """Uni-AdaFocus claims accuracy at equal cost against V2, not a faster training: no claim (b) for it,
    while V2 against V1 keeps its (b)."""
    runs = [
        make_summary(m, seed=s, top1=0.5 + 0.05 * k + OWN[s], train_seconds=100.0 * (1 + SHARED[s]))
        for s in (0, 1, 2)
        for k, m in enumerate(("v1", "v2", "uni"))
    ]
    claims = claims_for_group(runs_frame(runs))
    speed = [c.claim for c in claims if c.claim.startswith("(b)")]
    assert speed and all("Uni-AdaFocus" not in c for c in speed)
    assert any(c.claim.startswith("(a) Uni-AdaFocus") for c in claims)
