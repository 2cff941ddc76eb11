"""`adabench import-checkpoint` and `adabench evaluate` through the command line, on local files only.

A run's own checkpoint evaluates to exactly the run's final scores (one evaluation code path); an imported
model file evaluates into an evaluated-run directory that records the file, its SHA-256 and the official
file it came from; the report lists evaluated checkpoints apart from trained runs. The official layouts
themselves are checked against the official code in test_official_equivalence.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from fixtures_runs import base_args, micro_set, one_thread, run_in_process  # noqa: F401 (fixture)
from test_models_importing import LAYOUT, foreign

from bench.io import read_yaml
from bench.methods import METHODS, get_method
from bench.models import build_network, load_model
from bench.models.importing import import_official
from bench.presets import get_preset

COMPARED = ("top1", "map", "patch_eval", "coverage", "early_exit", "gflops_per_video", "num_val_videos")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return micro_set(tmp_path_factory.mktemp("micro") / "set", train=4, val=2)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_root):
    runs = tmp_path_factory.mktemp("runs")
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMP_NUM_THREADS", "1")
        assert run_in_process(base_args("v2", data_root, runs, "--epochs", "1")) == 0
    torch.set_num_threads(threads)
    (summary,) = runs.glob("synthetic/v2/*/summary.json")
    return runs, summary.parent, json.loads(summary.read_text())


def _evaluate(checkpoint, data_root, runs, *extra):
    argv = [
        "evaluate",
        "--checkpoint",
        str(checkpoint),
        "--dataset",
        "synthetic",
        "--data-root",
        str(data_root),
        "--runs-dir",
        str(runs),
        "--device",
        "cpu",
        "--workers",
        "0",
        *extra,
    ]
    return run_in_process(argv)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_runs_checkpoint_evaluates_to_the_runs_own_final_scores(trained, data_root, one_thread, tmp_path):
    runs, run_dir, summary = trained
    checkpoint = run_dir / "checkpoints" / "last.pt"
    assert _evaluate(checkpoint, data_root, tmp_path, "--seed", str(summary["seed"])) == 0
    (path,) = tmp_path.glob("synthetic/v2/evaluated-*/summary.json")
    got = json.loads(path.read_text())
    assert got["kind"] == "evaluated" and summary["kind"] == "trained"
    assert {k: got[k] for k in COMPARED} == {k: summary[k] for k in COMPARED}
    assert got["checkpoint"] == str(checkpoint.resolve()) and got["checkpoint_sha256"] == _sha(checkpoint)
    assert got["source"]["run_dir"] == str(run_dir.resolve()) and got["source"]["epoch"] == 1
    config = read_yaml(path.parent / "config.yaml")
    assert config["run"]["kind"] == "evaluated" and config["run"]["checkpoint_sha256"] == _sha(checkpoint)
    assert (path.parent / "manifest.json").is_file() and got["stages_run"] == [] and got["train_seconds"] == 0


def test_imported_model_file_is_evaluated_with_its_source_and_listed_apart(
    trained, data_root, one_thread, tmp_path, monkeypatch, capsys
):
    """import-checkpoint reaches the method's importer through the registry (here one that reads a made-up
    layout into a small network, since the official ones need the papers' backbones); its file evaluates and
    the report shows it beside the trained run, never pooled with it."""
    runs, _, _ = trained
    preset = get_preset(
        "synthetic",
        "tiny",
        method="v2",
        frames=4,
        input_size=32,
        resize=32,
        patch_size=16,
        classifier_hidden=32,
        policy_hidden=(32,),
    )
    torch.manual_seed(5)
    official = tmp_path / "official.pth.tar"
    torch.save(
        {"state_dict": {f"module.{k}": v for k, v in foreign(build_network(preset, num_classes=2)).items()}},
        official,
    )
    calls = []

    def importer(src, dataset, out, *, patch_size=None, glance_arch=None, overrides=None):
        calls.append((dataset, patch_size, glance_arch, dict(overrides)))
        return import_official(src, dataclasses.replace(preset, num_classes=2), LAYOUT, out)

    monkeypatch.setitem(
        METHODS._builders, "v2", dataclasses.replace(get_method("v2"), import_checkpoint=importer)
    )
    model = tmp_path / "model.pt"
    assert (
        run_in_process(
            [
                "import-checkpoint",
                str(official),
                "--method",
                "v2",
                "--dataset",
                "synthetic",
                "--patch-size",
                "16",
                "--set",
                "frames=4",
                "--out",
                str(model),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert calls == [("synthetic", 16, None, {"frames": "4"})]
    assert "tensors mapped" in out and "dropped theirs.imagenet_fc" in out and str(model) in out
    assert load_model(model).patch_size == 16

    assert _evaluate(model, data_root, runs) == 0
    (path,) = runs.glob("synthetic/v2/evaluated-*/summary.json")
    got = json.loads(path.read_text())
    assert got["checkpoint_sha256"] == _sha(model)
    assert got["source"]["imported_from"]["sha256"] == _sha(official)
    assert _evaluate(model, data_root, runs) == 0  # the same evaluation again replaces its directory
    assert len(list(runs.glob("synthetic/v2/evaluated-*"))) == 1

    assert run_in_process(["report", "--runs-dir", str(runs), "--out", str(tmp_path / "report")]) == 0
    md = (tmp_path / "report" / "report.md").read_text()
    evaluated_part = md.split("## Evaluated checkpoints")[1].split("## Skipped runs")[0]
    trained_part = md.split("## Evaluated checkpoints")[0]
    assert (
        _sha(model) in evaluated_part and _sha(official) in evaluated_part and str(official) in evaluated_part
    )
    assert _sha(model) not in trained_part and "1 complete run;" in trained_part
    df = pd.read_csv(tmp_path / "report" / "results.csv")
    assert sorted(df["kind"]) == ["evaluated", "trained"]


def test_evaluate_bad_input_is_one_line(trained, data_root, tmp_path, capsys):
    runs, run_dir, _ = trained
    bare = tmp_path / "bare.pt"
    torch.save({"weight": torch.zeros(2)}, bare)
    cases = [
        (tmp_path / "missing.pt", "synthetic", "no such file"),
        (bare, "synthetic", "not an adabench model file"),
        (run_dir / "checkpoints" / "last.pt", "jester", "video variant"),
    ]
    for checkpoint, dataset, words in cases:
        argv = [
            "evaluate",
            "--checkpoint",
            str(checkpoint),
            "--dataset",
            dataset,
            "--data-root",
            str(data_root),
            "--runs-dir",
            str(tmp_path / "runs"),
            "--device",
            "cpu",
        ]
        assert run_in_process(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and words in err, err
