"""`adabench tune`: the held-out split, the symmetric grid, the winners, and the whole path end to end on a
micro synthetic set (2 candidates per method, 1 epoch), including the report's tuning paragraph."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest
from fixtures_runs import V1_ARGS, micro_set, one_thread, run_in_process  # noqa: F401 (fixture)

from bench.data.holdout import holdout_split
from bench.errors import UsageError
from bench.runs.config import RunConfig
from bench.tools.tune import FACTORS, TuneSpec, grid, pick_winners, plan_tuning


def test_holdout_split_is_stratified_disjoint_and_fixed():
    labels = [0] * 10 + [1] * 5 + [2] * 3
    keep, held = holdout_split(labels, 0.2)
    assert sorted(keep + held) == list(range(len(labels))) and not set(keep) & set(held)
    assert [sum(labels[i] == c for i in held) for c in (0, 1, 2)] == [2, 1, 1]  # round(0.2 n), at least 1
    assert holdout_split(labels, 0.2) == (keep, held)  # the same every time (fixed seed)
    assert holdout_split(labels, 0.2, seed=1) != (keep, held)
    with pytest.raises(UsageError, match="class 1 has 1 training item"):
        holdout_split([0, 0, 1], 0.5)
    with pytest.raises(UsageError, match="--holdout"):
        RunConfig(method="v2", holdout=1.0)


def test_holdout_changes_the_identity_only_when_set():
    plain, held = RunConfig(method="v2", patch_size=24), RunConfig(method="v2", patch_size=24, holdout=0.2)
    assert "holdout" not in plain.identity() and held.identity()["holdout"] == 0.2
    assert plain.config_hash() != held.config_hash()


def _spec(tmp_path, **kw):
    base = RunConfig(method="v1", runs_dir=str(tmp_path / "runs-tune"))
    return TuneSpec(base, ("v1", "v2"), **kw)


def test_each_method_gets_the_same_grid_around_its_preset_value(tmp_path):
    plans = plan_tuning(_spec(tmp_path, seeds=(0, 1)))
    assert len(plans) == 2 * len(FACTORS) * 2
    for m, field in (("v1", "policy_lr"), ("v2", "policy_lr_ratio")):
        cands = [c for c, _ in plans if c.method == m][: len(FACTORS)]
        default = getattr(RunConfig(method=m).resolve_preset().train, field)
        assert [dict(c.values)[field] for c in cands] == pytest.approx([default * f for f in FACTORS])
    assert [cfg.method for _, cfg in plans[:4]] == ["v1", "v2", "v1", "v2"]  # methods interleaved
    for _, cfg in plans:  # every run: its candidate's value, the holdout, one initial state per seed
        assert cfg.holdout == 0.2 and cfg.init_state.endswith(f"-s{cfg.seed}.pt")
    assert len({cfg.init_state for _, cfg in plans}) == 2
    assert len({cfg.config_hash() for _, cfg in plans}) == len(plans)


def test_an_asymmetric_grid_is_refused(tmp_path, monkeypatch):
    import bench.methods

    real = bench.methods.get_method

    def two_fields(name):
        m = real(name)
        return dataclasses.replace(m, tunable=("lr", "policy_lr_ratio")) if name == "v2" else m

    monkeypatch.setattr(bench.methods, "get_method", two_fields)
    with pytest.raises(UsageError, match="grids differ in size"):
        plan_tuning(_spec(tmp_path))
    v2 = RunConfig(method="v2")
    assert len(grid(v2, (0.5, 2.0))) == 4  # the product over its two fields


def test_winner_ties_go_to_the_preset_value_and_edges_are_flagged():
    def row(f, mean):
        return {"method": "m", "factors": [f], "values": {"x": f}, "mean": mean, "winner": False}

    rows = [row(0.5, 0.8), row(1.0, 0.8), row(2.0, 0.7)]
    w = pick_winners(rows, (0.5, 1.0, 2.0))["m"]
    assert w["factors"] == [1.0] and not w["at_edge"] and [r["winner"] for r in rows] == [False, True, False]
    rows = [row(0.5, 0.6), row(1.0, 0.7), row(2.0, 0.9)]
    assert pick_winners(rows, (0.5, 1.0, 2.0))["m"]["at_edge"]


def test_tune_end_to_end_on_a_micro_set(tmp_path, monkeypatch, one_thread, capsys):
    from bench.presets import get_preset
    from bench.runs.results import collect_results
    from reports.frame import runs_frame
    from reports.report import build_report
    from reports.tuning import tuning_text

    root = micro_set(tmp_path / "set", train=5, val=2)
    monkeypatch.chdir(tmp_path)
    argv = [
        "tune",
        "--data-root",
        str(root),
        "--seed",
        "0",
        "--factor",
        "0.5",
        "--factor",
        "2",
        "--epochs",
        "1",
        "--runs-dir",
        "runs-tune",
        "--out",
        "docs/tuning/synthetic",
        "--device",
        "cpu",
        "--workers",
        "0",
        # the tuned pair (every method: slower)
        "--no-progress",
        "--method",
        "v1",
        "--method",
        "v2",
        *V1_ARGS,
    ]
    assert run_in_process(argv) == 0
    out = capsys.readouterr().out
    lr = get_preset(
        "synthetic", "tiny", method="v1"
    ).train.policy_lr  # the grid is centred on the preset's value
    assert f"tune: 4 runs: v1 policy_lr={lr * 0.5:g}, policy_lr={lr * 2:g}; v2" in out
    assert "run 4/4" in out and "winners:" in out
    rec = json.loads((tmp_path / "docs/tuning/synthetic/tuning.json").read_text())
    assert [r["method"] for r in rec["candidates"]] == ["v1", "v1", "v2", "v2"]
    assert [r["factors"] for r in rec["candidates"]] == [[0.5], [2.0]] * 2
    assert sum(r["winner"] for r in rec["candidates"]) == 2
    assert rec["holdout"] == {"fraction": 0.2, "seed": 0, "train_videos": 8, "holdout_videos": 2}
    for r in rec["candidates"]:  # trained on train', scored on the 2 held-out training videos, never val
        (run_dir,) = r["run_dirs"]
        summary = json.loads((tmp_path / run_dir / "summary.json").read_text())
        assert summary["eval_split"] == "holdout" and summary["num_val_videos"] == 2
        assert summary["params"][next(iter(r["values"]))] == next(iter(r["values"].values()))
        assert r["scores"] == [summary["top1"]]
    md = (tmp_path / "docs/tuning/synthetic/tuning.md").read_text()
    assert rec["command"] in md and "--factor 0.5 --factor 2" in md and "validation split was not used" in md
    assert len(pd.read_csv(tmp_path / "docs/tuning/synthetic/tuning.csv")) == 4

    assert run_in_process(argv) == 0  # the same command resumes: nothing is trained again, same record
    assert capsys.readouterr().out.count("already complete") == 4
    assert json.loads((tmp_path / "docs/tuning/synthetic/tuning.json").read_text()) == rec

    report = build_report(tmp_path / "runs-tune", tmp_path / "report", tuning_dir=tmp_path / "docs/tuning")
    text = report.read_text()
    assert "**Hyper-parameter tuning.** Tuned symmetrically" in text and "held-out 20 %" in text
    assert "not on the validation split" in text  # the sweep's own runs
    # each policy_lr of a method is its own section (issue 21), named by the value, never averaged
    assert text.count("\n## synthetic · tiny preset") == 4 and "several values" not in text
    assert "policy_lr=" in text and "policy_lr_ratio=" in text
    frame = runs_frame(collect_results(tmp_path / "runs-tune")[0])
    names = frame["run_dir"].map(lambda d: Path(d).name)

    def runs_of(method, winner):
        dirs = [
            Path(d).name
            for r in rec["candidates"]
            if r["method"] == method and r["winner"] == winner
            for d in r["run_dirs"]
        ]
        return frame[names.isin(dirs)]

    v1_won, v2_lost = runs_of("v1", True), runs_of("v2", False)
    assert len(v1_won) == len(v2_lost) == 1
    para = tuning_text(pd.concat([v1_won, v2_lost]), tmp_path / "docs/tuning")
    assert "AdaFocusV1 policy_lr = " in para and "(the winner)" in para and "(not the winner" in para
    bare = build_report(
        tmp_path / "runs-tune", tmp_path / "report2", tuning_dir=tmp_path / "nowhere"
    ).read_text()
    assert "No tuning record for synthetic/tiny/matched" in bare and "policy_lr_ratio" in bare
