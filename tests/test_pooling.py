"""Runs are pooled over seeds only when everything else is identical (issue 12's two cases, and the
identity's rules), through fake run directories (no training)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from bench.errors import AdabenchError
from bench.runs.identity import absolute_root, group_hash, identity_hash, launch_dir, run_identity
from bench.runs.results import collect_results
from bench.tools.regression import compare_to_baseline, make_baseline
from reports.claims import claims_for_group
from reports.frame import groups, runs_frame
from reports.report import build_report
from tests.fixtures_results import make_summary, matched_summaries, write_run


def _section_texts(md: str) -> list:
    return [s for s in md.split("\n## ")[1:] if not s.startswith("Skipped")]


def test_epochs_1_and_2_are_never_four_seeds(tmp_path: Path) -> None:
    """Issue 12: V2 runs trained with --epochs 1 and with --epochs 2 appeared as "n=4 seeds"."""
    runs = tmp_path / "runs"
    for epochs, top1 in ((1, 0.40), (2, 0.70)):
        for s in matched_summaries(seeds=(0, 1), patch_sizes=(32,), v2_top1=top1):
            write_run(runs, s, epochs=epochs)
    df, _ = collect_results(runs)
    assert len(df) == 8
    v2 = df[df["method"] == "v2"]
    assert v2["group_hash"].nunique() == 2 and sorted(v2["epochs"]) == [1, 1, 2, 2]
    assert all(v2.groupby("group_hash")["seed"].apply(sorted).map(lambda s: s == [0, 1]))

    frame = runs_frame(df)
    sections = list(groups(frame))
    assert len(sections) == 2
    for _, sub in sections:
        assert sub["group_hash"].nunique() == 2  # one V1 and one V2 configuration
        assert set(sub["epochs"]) in ({1}, {2})
        assert {c.n for c in claims_for_group(sub)} <= {0, 2}

    md = build_report(runs, tmp_path / "out").read_text()
    texts = _section_texts(md)
    assert len(texts) == 2
    assert sum("epochs `1`" in t for t in texts) == 1 and sum("epochs `2`" in t for t in texts) == 1
    assert md.count("| AdaFocusV2 | 32² | 0, 1 |") == 2 and "0, 1, 0, 1" not in md and "0, 0, 1, 1" not in md
    assert "· epochs=1\n" in md and "· epochs=2\n" in md  # each section says how it differs
    assert not re.search(r"\| 4 \| \*\*", md)  # no claim over n = 4


def test_two_data_roots_are_never_seeds_0_0(tmp_path: Path) -> None:
    """Issue 12: two seed-0 runs from different data roots appeared as "seeds 0, 0"."""
    runs = tmp_path / "runs"
    roots = [tmp_path / "data-a", tmp_path / "data-b"]
    for root in roots:
        for s in matched_summaries(seeds=(0,), patch_sizes=(32,)):
            write_run(runs, s, data_root=str(root))
    df, _ = collect_results(runs)
    assert sorted(set(df["data_root"])) == [str(r) for r in roots]
    assert df[df["method"] == "v2"]["group_hash"].nunique() == 2
    md = build_report(runs, tmp_path / "out").read_text()
    assert len(_section_texts(md)) == 2
    assert "0, 0" not in md and md.count("| AdaFocusV2 | 32² | 0 |") == 2
    for root in roots:
        assert f"data_root `{root}`" in md


def test_relative_data_root_is_made_absolute(tmp_path: Path, monkeypatch) -> None:
    """A relative root (the synthetic cache's ``.cache/...``) is resolved against the directory the run
    was started from, which the runs directory's relative path tells."""
    work = tmp_path / "work"
    runs = work / "my" / "runs"
    a = write_run(
        runs, make_summary("v2", seed=0), runs_dir="my/runs", manifest={"dataset_root": ".cache/s1"}
    )
    b = write_run(
        runs,
        make_summary("v2", seed=1),
        runs_dir="my/runs",
        manifest={"dataset_root": str(work / ".cache" / "s1")},
    )
    assert launch_dir(a, "my/runs") == work.resolve() and launch_dir(a, "./my/runs/") == work.resolve()
    assert launch_dir(a, "other/runs") is None and launch_dir(a, str(runs)) is None
    assert absolute_root(".cache/s1", a, "elsewhere") == ".cache/s1"  # cannot tell: kept as given
    monkeypatch.chdir(tmp_path)  # the report is made from another directory
    df, _ = collect_results(Path("work/my/runs"))
    assert set(df["data_root"]) == {str((work / ".cache" / "s1").resolve())}
    assert df["group_hash"].nunique() == 1 and sorted(df["seed"]) == [0, 1]
    assert {Path(p).name for p in df["run_dir"]} == {a.name, b.name}


def _ident(run_dir: Path, run: dict, preset: dict = None, manifest: dict = None, **extra) -> dict:
    cfg = {"config_hash": "deadbeef", "run": run, "preset": preset or {"lr": 0.1}, **extra}
    return run_identity(run_dir, cfg, manifest or {"git_commit": "abc", "dataset_root": "/data/x"})


def test_identity_keeps_what_changes_the_computation(tmp_path: Path) -> None:
    d = tmp_path / "r" / "synthetic" / "v2" / "x"
    base = {
        "method": "v2",
        "dataset": "synthetic",
        "seed": 0,
        "epochs": None,
        "overrides": {},
        "skip_bad": False,
    }
    ref = group_hash(_ident(d, base))
    # the seed and what only says where or how a run is shown do not matter
    same = {
        **base,
        "seed": 5,
        "runs_dir": "elsewhere",
        "progress": False,
        "num_workers": 8,
        "device": "cuda",
        "stages": [2, 3],
        "quiet": True,
        "preflight": False,
        "channels_last": "on",
        "compile": True,
    }
    assert group_hash(_ident(d, same)) == ref
    assert (
        group_hash(
            _ident(
                d,
                base,
                manifest={"git_commit": "abc", "dataset_root": "/data/x", "hostname": "other", "argv": ["x"]},
            )
        )
        == ref
    )
    # everything else does, including keys this module has never heard of
    changed = [
        _ident(d, {**base, "epochs": 2}),
        _ident(d, {**base, "overrides": {"lr": "0.2"}}),
        _ident(d, {**base, "skip_bad": True}),
        _ident(d, {**base, "init_state": "runs/_init/x.pt"}),  # a matched experiment's shared initial weights
        _ident(d, {**base, "protocol": "official"}),
        _ident(d, {**base, "brand_new_option": 1}),
        _ident(d, base, preset={"lr": 0.2}),
        _ident(d, base, method_preset={"policy_lr": 1e-3}),
        _ident(d, base, manifest={"git_commit": "def", "dataset_root": "/data/x"}),
        _ident(d, base, manifest={"git_commit": "abc", "dataset_root": "/data/y"}),
        _ident(d, base, manifest={"git_commit": "abc", "dataset_root": "/data/x", "precision": "bf16"}),
        _ident(d, base, manifest={"git_commit": "abc", "dataset_root": "/data/x", "git_dirty": True}),
    ]
    hashes = [group_hash(i) for i in changed]
    assert ref not in hashes and len(set(hashes)) == len(hashes)
    # identity_hash can leave keys or whole sections out (how report sections are keyed)
    assert identity_hash(_ident(d, base, preset={"lr": 0.2}), drop=["preset."]) == identity_hash(
        _ident(d, base), drop=["preset."]
    )
    # a flat config.yaml (no run: section) is the run section; its config_hash (which hashes the seed) is
    # ignored
    flat = [run_identity(d, {"method": "v2", "seed": k, "config_hash": f"{k}" * 8}, None) for k in (1, 2)]
    assert group_hash(flat[0]) == group_hash(flat[1])
    assert launch_dir(Path("/x"), "runs") is None
    # a run without config.yaml is its own group: nothing says what it computed
    assert run_identity(d, None, None) != run_identity(d.parent / "y", None, None)


def test_matched_runs_and_ablations_share_a_section(tmp_path: Path) -> None:
    """Method, patch size and ablation switches differ inside one matched experiment: one section."""
    runs = tmp_path / "runs"
    man = {"git_commit": "abc", "dataset_root": str(tmp_path / "d")}
    for s in matched_summaries(seeds=(0, 1, 2), patch_sizes=(32, 48)):
        write_run(runs, s, manifest=man, preset={"method": s["method"]})
    for seed in (0, 1, 2):
        write_run(
            runs,
            make_summary("v2", seed=seed, top1=0.5),
            manifest=man,
            diversity=False,
            preset={"method": "v2"},
        )
    frame = runs_frame(collect_results(runs)[0])
    assert frame["setting"].nunique() == 1 and frame["group_hash"].nunique() == 5
    claims = claims_for_group(frame)
    div = [c for c in claims if c.claim.startswith("(c) diversity")]
    assert div and div[0].n == 3 and div[0].verdict == "holds"


def test_gate_never_averages_two_configurations(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for epochs in (1, 2):
        for s in matched_summaries(seeds=(0, 1, 2), patch_sizes=(32,)):
            write_run(runs, s, epochs=epochs)
    df, _ = collect_results(runs)
    with pytest.raises(AdabenchError, match="2 configurations"):
        make_baseline(df)
    one = df[df["epochs"] == 1]
    baseline = make_baseline(one)
    assert compare_to_baseline(one, baseline)[0]
    ok, lines = compare_to_baseline(df, baseline)
    assert not ok and any(ln.startswith("FAIL") and "2 configurations" in ln for ln in lines)


def test_configuration_columns_round_trip(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    write_run(
        runs,
        make_summary("v2"),
        epochs=3,
        overrides={"lr": "0.2"},
        skip_bad=True,
        manifest={"git_commit": "abc123", "git_dirty": False, "precision": "fp32", "dataset_root": "/d"},
    )
    out = tmp_path / "out"
    build_report(runs, out)
    back = pd.read_parquet(out / "results.parquet")
    r = back.iloc[0]
    assert (r["data_root"], r["epochs"], r["skip_bad"], r["precision"], r["git_commit"]) == (
        "/d",
        3,
        True,
        "fp32",
        "abc123",
    )
    assert json.loads(r["overrides"]) == {"lr": "0.2"}
    assert group_hash(json.loads(r["identity"])) == r["group_hash"]
    assert "run.seed" not in json.loads(r["identity"])
