"""`adabench run --method v2` end to end on a micro synthetic set: each technique switched off still
completes and changes the logged loss exactly as named; summary keys; a complete run is not re-trained;
missing data is one line."""

from __future__ import annotations

import json

import pytest
from fixtures_runs import base_args, micro_set, one_thread, run_in_process  # noqa: F401 (fixture)

SUMMARY_KEYS = {
    "method",
    "dataset",
    "preset",
    "arch",
    "patch_size",
    "seed",
    "top1",
    "map",
    "gflops_per_video",
    "train_seconds",
    "stage_seconds",
    "epoch_seconds",
    "data_wait_share",
    "peak_memory_mb",
    "patch_eval",
    "coverage",
    "early_exit",
    "curve",
    "device",
    "world_size",
    "run_dir",
}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return micro_set(tmp_path_factory.mktemp("micro") / "set", train=4, val=2)


def _run(tmp_path, data_root, *extra):
    runs = tmp_path / "runs"
    assert run_in_process(base_args("v2", data_root, runs, "--epochs", "1", *extra)) == 0
    (summary,) = list(runs.glob("synthetic/v2/*/summary.json"))
    return json.loads(summary.read_text()), summary.parent


@pytest.mark.parametrize(
    "flag,absent",
    [
        (None, set()),
        ("--no-aux", {"train_glance", "train_focus"}),
        ("--no-diversity", {"train_random_total"}),
        ("--no-stop-gradient", set()),
    ],
)
def test_micro_run_completes_with_each_technique_switched_off(tmp_path, data_root, one_thread, flag, absent):
    summary, run_dir = _run(tmp_path, data_root, *([flag] if flag else []))
    assert SUMMARY_KEYS <= set(summary) and 0 <= summary["top1"] <= 1
    assert summary["params"]["aux_supervision"] == (flag != "--no-aux")
    assert summary["params"]["diversity"] == (flag != "--no-diversity")
    assert summary["params"]["stop_gradient"] == (flag != "--no-stop-gradient")
    assert (
        summary["variant"]
        == {None: "full", "--no-aux": "no-aux", "--no-diversity": "no-div", "--no-stop-gradient": "no-sg"}[
            flag
        ]
    )
    assert set(summary["patch_eval"]) == {"learned", "random", "centre"} and summary["coverage"] is not None
    full = summary["gflops_per_video"]
    exits = summary["early_exit"]
    assert (
        exits and min(p["gflops"] for p in exits) < full and max(p["gflops"] for p in exits) <= full + 1e-12
    )
    header = (run_dir / "metrics.csv").read_text().splitlines()[0].split(",")
    present = {"train_classifier", "train_glance", "train_focus", "train_random_total"} - absent
    assert present <= set(header) and not (absent & set(header))


def test_a_complete_run_is_not_trained_again(tmp_path, data_root, one_thread, capsys):
    first, run_dir = _run(tmp_path, data_root)
    stamp = (run_dir / "checkpoints" / "last.pt").stat().st_mtime_ns
    second, _ = _run(tmp_path, data_root)
    assert second == first and (run_dir / "checkpoints" / "last.pt").stat().st_mtime_ns == stamp
    assert "already complete" in capsys.readouterr().out


def test_missing_dataset_is_one_line_saying_where_and_what(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ADABENCH_DATA", raising=False)
    assert run_in_process(["run", "--method", "v2", "--dataset", "jester", "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "data/jester" in err and "category.txt" in err and "README" in err and "Datasets" in err
