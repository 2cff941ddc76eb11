"""The regression gate's baseline (>= 3 seeds, tolerances derived from their spread), comparison, the old
format, and the plan that re-trains a baseline's runs."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.errors import AdabenchError, UsageError
from bench.tools.baseline_file import load_baseline
from bench.tools.gate import baseline_seeds, gate_configs
from bench.tools.regression import ACCURACY_FLOOR, compare_to_baseline, make_baseline, run_key
from tests.fixtures_results import make_summary, matched_summaries

REPO = Path(__file__).resolve().parent.parent
T_995_DF2 = 9.9248  # two-sided 99 % Student t quantile, 2 degrees of freedom (tables)
V2 = "synthetic/tiny/matched/v2/p32"
RATIO = "synthetic/tiny/matched/p32/v1:v2"


@pytest.fixture()
def runs():
    out = matched_summaries(seeds=(0, 1, 2), patch_sizes=(32,))
    out += [{**make_summary("v2", seed=s, top1=0.4 + 0.02 * s), "variant": "no-div"} for s in (0, 1, 2)]
    return out


def test_make_baseline_keys_per_seed_values_and_json(runs):
    b = make_baseline(runs)
    assert b["format"] == "adabench-baseline/2" and b["seeds"] == [0, 1, 2]
    assert set(b["runs"]) == {"synthetic/tiny/matched/v1/p32", V2, "synthetic/tiny/matched/v2-no-div/p32"}
    e = b["runs"][V2]
    assert e["top1"] == pytest.approx(0.60) and e["seeds"] == [0, 1, 2]
    assert e["per_seed"]["top1"] == pytest.approx([0.59, 0.60, 0.61]) and e["per_seed"]["map"] is None
    assert e["recipe"]["method"] == "v2" and e["recipe"]["patch_size"] == 32
    assert b["time_ratios"][RATIO]["ratio"] == pytest.approx(2.0)
    assert b["time_ratios"][RATIO]["per_seed"] == pytest.approx([2.0, 2.0, 2.0])
    assert "sqrt(2 / n)" in b["derivation"]["accuracy"] and b["derivation"]["alpha"] == 0.01
    json.dumps(b)  # JSON-able
    assert run_key({**runs[0], "variant": "no-sg"}).endswith("/v1-no-sg/p32")


def test_accuracy_tolerance_is_derived_from_the_seed_spread(runs):
    b = make_baseline(runs)
    no_div = b["runs"]["synthetic/tiny/matched/v2-no-div/p32"]["tolerance"]["top1"]
    sd = float(np.std([0.40, 0.42, 0.44], ddof=1))
    assert (
        no_div["sd"] == pytest.approx(sd)
        and no_div["n"] == 3
        and no_div["k"] == pytest.approx(T_995_DF2, abs=1e-3)
    )
    assert no_div["value"] == pytest.approx(T_995_DF2 * sd * math.sqrt(2 / 3), rel=1e-4)
    # seeds that agree: the floor, not zero
    same = [make_summary("v2", seed=s, top1=0.7) for s in (0, 1, 2)]
    assert make_baseline(same)["runs"][V2]["tolerance"]["top1"]["value"] == ACCURACY_FLOOR
    # a wider alpha gives a tighter tolerance; 5 seeds a much tighter one than 3
    assert (
        make_baseline(runs, alpha=0.05)["runs"][V2]["tolerance"]["top1"]["value"]
        < b["runs"][V2]["tolerance"]["top1"]["value"]
    )
    five = [make_summary("v2", seed=s, top1=0.6 + 0.01 * (s % 3 - 1)) for s in range(5)]
    assert make_baseline(five)["runs"][V2]["tolerance"]["top1"]["k"] == pytest.approx(4.6041, abs=1e-3)


def test_fewer_than_three_seeds_are_refused():
    with pytest.raises(AdabenchError, match="2 seed.*needs >= 3"):
        make_baseline(matched_summaries(seeds=(0, 1), patch_sizes=(32,)))


def test_same_results_pass(runs):
    ok, lines = compare_to_baseline(runs, make_baseline(runs))
    assert ok, lines
    assert lines[-1].startswith("7/7 checks")  # 3 x (top1, GFLOPs) + 1 ratio
    assert compare_to_baseline(pd.DataFrame(runs), make_baseline(runs))[0]  # a DataFrame works the same


def test_accuracy_beyond_the_derived_tolerance_fails(runs):
    b = make_baseline(runs)
    tol = b["runs"][V2]["tolerance"]["top1"]["value"]
    assert tol > ACCURACY_FLOOR  # the spread, not the floor, sets it here
    b["runs"][V2]["top1"] += tol - 0.001
    ok, lines = compare_to_baseline(runs, b)
    assert ok and any(f"{V2} top1" in ln and "max(0.02, 9.92" in ln for ln in lines)
    b["runs"][V2]["top1"] += 0.002
    ok, lines = compare_to_baseline(runs, b)
    fails = [ln for ln in lines if ln.startswith("FAIL")]
    assert not ok and len(fails) == 1 and V2 in fails[0] and "top1" in fails[0]
    assert compare_to_baseline(runs, b, {"accuracy_abs": 0.2})[0]  # an explicit tolerance replaces it


def test_gflops_and_time_ratio_tolerances(runs):
    b = make_baseline(runs)
    assert b["time_ratios"][RATIO]["factor"]["value"] == 2.0  # equal per-seed ratios: the floor
    g = copy.deepcopy(b)
    g["runs"]["synthetic/tiny/matched/v1/p32"]["gflops_per_video"] *= 1.0005
    assert compare_to_baseline(runs, g)[0]
    g["runs"]["synthetic/tiny/matched/v1/p32"]["gflops_per_video"] *= 1.002
    assert not compare_to_baseline(runs, g)[0]
    t = copy.deepcopy(b)
    t["time_ratios"][RATIO]["ratio"] = 3.9  # measured 2.0: within x/÷2
    assert compare_to_baseline(runs, t)[0]
    t["time_ratios"][RATIO]["ratio"] = 4.1
    ok, lines = compare_to_baseline(runs, t)
    assert not ok and any("training-time ratio" in ln and ln.startswith("FAIL") for ln in lines)


def test_time_factor_grows_with_the_spread_of_per_seed_ratios():
    rows = []
    for s, v1_secs in enumerate((150.0, 200.0, 300.0)):
        rows += [
            make_summary("v1", seed=s, train_seconds=v1_secs),
            make_summary("v2", seed=s, train_seconds=100.0),
        ]
    f = make_baseline(rows)["time_ratios"][RATIO]["factor"]
    sd = float(np.std(np.log([1.5, 2.0, 3.0]), ddof=1))
    assert f["log_sd"] == pytest.approx(sd)
    assert (
        f["value"] == pytest.approx(math.exp(T_995_DF2 * sd * math.sqrt(2 / 3)), rel=1e-3) and f["value"] > 2
    )


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
    assert load_baseline(good)["format"] == "adabench-baseline/2"


# baselines/tiny.json as format 1 wrote it (one seed, fixed tolerances)
FORMAT_1 = {
    "format": "adabench-baseline/1",
    "tolerances": {"accuracy_abs": 0.05, "gflops_rel": 0.001, "time_ratio_factor": 2.0},
    "runs": {
        "synthetic/tiny/matched/v1/p24": {
            "top1": 0.9322916865348816,
            "map": None,
            "gflops_per_video": 0.013576192,
            "train_seconds": 58.920287464990906,
            "seeds": [0],
        },
        "synthetic/tiny/matched/v2/p24": {
            "top1": 0.828125,
            "map": None,
            "gflops_per_video": 0.013620224,
            "train_seconds": 55.07395091500257,
            "seeds": [0],
        },
    },
    "time_ratios": {"synthetic/tiny/matched/p24": 1.0698394882895639},
}


@pytest.fixture()
def format_1(tmp_path):
    path = tmp_path / "tiny-format-1.json"
    path.write_text(json.dumps(FORMAT_1))
    return load_baseline(path)


def test_the_committed_baseline_loads():
    b = load_baseline(REPO / "baselines" / "tiny.json")
    assert b["runs"] and b["format"] == "adabench-baseline/2" and len(baseline_seeds(b)) >= 3  # issue 12
    for entry in b["runs"].values():  # tolerances from the measured spread, re-run in the recorded precision
        assert entry["tolerance"]["top1"]["n"] == len(baseline_seeds(b)) and entry["recipe"]["precision"]


def test_a_format_1_baseline_still_loads_and_compares_with_its_fixed_tolerances(format_1):
    old = format_1
    assert old["format"] == "adabench-baseline/1" and baseline_seeds(old) == [0]
    want = {k.split("/")[3]: v for k, v in old["runs"].items()}
    runs = [
        make_summary(
            m,
            patch_size=24,
            top1=want[m]["top1"] + 0.04,
            gflops_per_video=want[m]["gflops_per_video"],
            train_seconds=want[m]["train_seconds"],
        )
        for m in ("v1", "v2")
    ]
    ok, lines = compare_to_baseline(runs, old)
    assert ok, lines
    assert any("(tolerance ±0.05)" in ln for ln in lines)
    runs[1]["top1"] -= 0.1
    assert not compare_to_baseline(runs, old)[0]


def test_gate_plans_every_baseline_seed_and_the_recipe(tmp_path, format_1):
    from tests.fixtures_runs import micro_set

    root = str(micro_set(tmp_path / "set", train=2, val=1, easy=True))
    rows = [
        {
            **make_summary("v2", seed=s, patch_size=16),
            "epochs": 2,
            "overrides": json.dumps({"frames": "4", "patch_size": "16"}),
        }
        for s in (3, 5, 7)
    ]
    configs = gate_configs(make_baseline(rows), str(tmp_path / "check"), data_root=root, workers=0)
    assert [(c.method, c.seed, c.epochs, c.patch_size) for c in configs] == [
        ("v2", s, 2, 16) for s in (3, 5, 7)
    ]
    assert configs[0].overrides == {"frames": "4", "patch_size": "16"} and configs[0].init_state is None
    assert configs[0].data_root == root and configs[0].num_workers == 0
    # the format 1 tiny baseline: both methods, its one seed, sharing their initial state, V1 first
    configs = gate_configs(format_1, str(tmp_path / "check"), data_root=root)
    assert [(c.method, c.seed) for c in configs] == [("v1", 0), ("v2", 0)]
    assert configs[0].init_state == configs[1].init_state is not None
