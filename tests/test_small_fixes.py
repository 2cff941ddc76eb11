"""Issue 21 item 9: the smaller ones, each with a test."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from bench.errors import TrainingDivergedError
from bench.methods import all_methods
from bench.presets import preset_keys
from bench.training.optim import check_finite
from reports.frame import runs_frame
from reports.plots import _run_labels, plot_accuracy_vs_gflops
from tests.fixtures_results import make_summary, matched_summaries, write_run
from tests.fixtures_runs import run_in_process


def _cli(argv, capsys):
    code = run_in_process(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_report_on_an_empty_or_wrong_runs_dir_says_so(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, _, err = _cli(
        ["report", "--runs-dir", str(tmp_path / "empty"), "--out", str(tmp_path / "r")], capsys
    )
    assert code == 2 and err.count("\n") == 1 and "no complete runs (no run directories)" in err
    assert not (tmp_path / "r" / "report.md").exists()
    half = write_run(tmp_path / "half", make_summary("v2"), complete=False)
    code, _, err = _cli(
        ["report", "--runs-dir", str(tmp_path / "half"), "--out", str(tmp_path / "r")], capsys
    )
    assert code == 2 and f"1 incomplete run directory, e.g. {half}" in err
    code, _, err = _cli(
        ["report", "--runs-dir", str(tmp_path / "nope"), "--out", str(tmp_path / "r")], capsys
    )
    assert code == 2 and "nope" in err


def test_report_lists_skipped_runs_on_the_console(tmp_path, capsys):
    runs = tmp_path / "runs"
    for s in matched_summaries(seeds=(0, 1), patch_sizes=(32,)):
        write_run(runs, s)
    half = write_run(runs, make_summary("v2", seed=5), complete=False)
    code, out, _ = _cli(["report", "--runs-dir", str(runs), "--out", str(tmp_path / "r")], capsys)
    assert code == 0 and "report: 4 complete runs, 0 evaluated checkpoints, 1 skipped" in out
    assert f"  skipped {half}: incomplete: no summary.json" in out


@pytest.mark.parametrize("value", ["nan", "-5"])
def test_exit_tol_must_be_a_number_of_points(tmp_path, capsys, value):
    code, _, err = _cli(["report", "--runs-dir", str(tmp_path), "--exit-tol", value], capsys)
    assert code == 2 and "--exit-tol" in err and err.count("\n") == 1


def test_data_check_on_a_file_says_it_is_not_a_directory(tmp_path, capsys):
    f = tmp_path / "jester.tar"
    f.write_bytes(b"x")
    code, _, err = _cli(["data", "check", "--dataset", "jester", "--data-root", str(f)], capsys)
    assert code == 2 and f"{f}: is a file, not a directory" in err and "not found" not in err


def test_divergence_hint_names_the_precision_option():
    with pytest.raises(TrainingDivergedError, match="--precision fp32"):
        check_finite(torch.tensor(float("nan")), "epoch 1")


def test_gflops_axis_does_not_stretch_a_tiny_cost_difference(tmp_path):
    frame = runs_frame(matched_summaries(seeds=(0, 1), patch_sizes=(32,)))  # V1 costs 0.98x V2
    fig = plot_accuracy_vs_gflops(frame, tmp_path / "p.png")
    lo, hi = fig.axes[0].get_xlim()
    costs = sorted(set(frame["gflops_per_video"]))
    assert (costs[-1] - costs[0]) / (hi - lo) < 0.2  # the 2 % gap uses a small part of the axis
    assert lo <= min(q["gflops"] for e in frame["early_exit"] if e for q in e)


def test_plot_labels_name_a_configuration_in_words_not_by_hash():
    df = pd.DataFrame(
        {
            "method": ["v2", "v2"],
            "variant": ["full", "full"],
            "group_hash": ["4c32ffad", "65e5c835"],
            "config_words": ["lr=0.5", "lr=0.02 (default)"],
        }
    )
    labels = list(_run_labels(df))
    assert labels[0].endswith("[lr=0.5]") and labels[1].endswith("[lr=0.02 (default)]")
    assert not any(h in "".join(labels) for h in df["group_hash"])


def test_list_keys_lists_every_set_key_with_its_default_per_method(capsys):
    code, out, _ = _cli(["run", "--list-keys"], capsys)
    assert code == 0
    for m in all_methods():
        block = out.split(f"{m.name} (synthetic, tiny preset, matched architecture):\n", 1)[1].split("\n\n")[
            0
        ]
        shown = {ln.split(" = ")[0].strip() for ln in block.splitlines() if " = " in ln}
        settable = set(preset_keys("synthetic", "tiny", m.name)) - {"dataset", "name", "method", "arch"}
        assert settable <= shown and len(shown) == len(settable)


def test_a_mistyped_set_key_gets_did_you_mean(tmp_path, capsys):
    code, _, err = _cli(
        ["run", "--method", "v2", "--data-root", str(tmp_path), "--set", "batch_sise=4"], capsys
    )
    assert code == 2 and "batch_sise: did you mean batch_size?" in err and "--list-keys" in err
