"""The regression gate's comparison logic and baseline round trip."""
from __future__ import annotations

import copy
import json

import pandas as pd
import pytest

from bench.errors import UsageError
from bench.regression import compare_to_baseline, load_baseline, make_baseline, run_key
from tests.fixtures_results import make_summary, matched_summaries


@pytest.fixture()
def runs():
    out = matched_summaries(seeds=(0, 1), patch_sizes=(32,))
    out.append({**make_summary("v2", seed=0, top1=0.4), "variant": "no-div"})
    return out


def test_make_baseline_keys_and_json(runs):
    b = make_baseline(runs)
    assert set(b["runs"]) == {"synthetic/tiny/matched/v1/p32", "synthetic/tiny/matched/v2/p32",
                              "synthetic/tiny/matched/v2-no-div/p32"}
    assert b["runs"]["synthetic/tiny/matched/v2/p32"]["top1"] == pytest.approx(0.60)
    assert b["runs"]["synthetic/tiny/matched/v2/p32"]["seeds"] == [0, 1]
    assert b["time_ratios"] == {"synthetic/tiny/matched/p32/v1:v2": pytest.approx(2.0)}
    json.dumps(b)  # JSON-able
    assert run_key({**runs[0], "variant": "no-sg"}).endswith("/v1-no-sg/p32")


def test_same_results_pass(runs):
    ok, lines = compare_to_baseline(runs, make_baseline(runs))
    assert ok, lines
    assert lines[-1].startswith("7/7 checks")  # 3 x (top1, GFLOPs) + 1 ratio
    # a DataFrame works the same as a list of summaries
    assert compare_to_baseline(pd.DataFrame(runs), make_baseline(runs))[0]


def test_accuracy_beyond_tolerance_fails(runs):
    b = make_baseline(runs)
    key = "synthetic/tiny/matched/v2/p32"
    b["runs"][key]["top1"] += 0.049
    assert compare_to_baseline(runs, b)[0]
    b["runs"][key]["top1"] += 0.002
    ok, lines = compare_to_baseline(runs, b)
    assert not ok
    fails = [ln for ln in lines if ln.startswith("FAIL")]
    assert len(fails) == 1 and key in fails[0] and "top1" in fails[0]
    # an explicit tolerance overrides the baseline's
    assert compare_to_baseline(runs, b, {"accuracy_abs": 0.1})[0]


def test_gflops_and_time_ratio_tolerances(runs):
    b = make_baseline(runs)
    g = copy.deepcopy(b)
    g["runs"]["synthetic/tiny/matched/v1/p32"]["gflops_per_video"] *= 1.0005
    assert compare_to_baseline(runs, g)[0]
    g["runs"]["synthetic/tiny/matched/v1/p32"]["gflops_per_video"] *= 1.002
    assert not compare_to_baseline(runs, g)[0]
    t = copy.deepcopy(b)
    t["time_ratios"]["synthetic/tiny/matched/p32/v1:v2"] = 3.9  # measured 2.0: within x/÷2
    assert compare_to_baseline(runs, t)[0]
    t["time_ratios"]["synthetic/tiny/matched/p32/v1:v2"] = 4.1
    ok, lines = compare_to_baseline(runs, t)
    assert not ok and any("training-time ratio" in ln and ln.startswith("FAIL") for ln in lines)


def test_missing_and_extra_runs(runs):
    b = make_baseline(runs)
    only_v2 = [r for r in runs if r["method"] == "v2"]
    ok, lines = compare_to_baseline(only_v2, b)
    assert not ok
    assert any("v1/p32: no complete run" in ln for ln in lines)
    assert any("missing (needs runs of both methods)" in ln for ln in lines)
    extra = runs + [make_summary("v2", patch_size=48)]
    ok, lines = compare_to_baseline(extra, b)
    assert ok and any(ln.startswith("note") and "p48" in ln for ln in lines)


def test_load_baseline_errors(tmp_path, runs):
    with pytest.raises(UsageError, match="no such file"):
        load_baseline(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UsageError, match="bad.json"):
        load_baseline(bad)
    bad.write_text('{"runs": {}}')
    with pytest.raises(UsageError, match="expected an adabench baseline"):
        load_baseline(bad)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(make_baseline(runs)))
    assert load_baseline(good)["format"] == "adabench-baseline/1"
