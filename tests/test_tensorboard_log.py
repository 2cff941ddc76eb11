"""Issue 23: every run writes TensorBoard events (``<run>/tb/``) whose scalars equal metrics.csv's, read back
with TensorBoard's own event reader; the end-of-run values come from the summary; ``--no-tensorboard``
writes none; a resumed history is written once."""

from __future__ import annotations

import csv
import json
import math

import pytest

from bench.runs import tensorboard_log
from tests.fixtures_runs import V1_ARGS, V2_ARGS, micro_set, one_thread, run_in_process

__all__ = ["one_thread"]


def _read_scalars(tb_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: {e.step: e.value for e in acc.Scalars(tag)} for tag in acc.Tags()["scalars"]}


def _argv(root, runs, *extra):
    return [
        "run",
        "--method",
        "v1",
        "--method",
        "v2",
        "--data-root",
        str(root),
        "--runs-dir",
        str(runs),
        "--device",
        "cpu",
        "--workers",
        "0",
        "--no-progress",
        "--quiet",
        "--epochs",
        "1",
        "--precision",
        "fp32",
        *V1_ARGS,
        *extra,
    ]


def test_matched_run_tensorboard_scalars_equal_metrics_csv(tmp_path, one_thread):
    root = micro_set(tmp_path / "set", train=4, val=2)
    runs = tmp_path / "runs"
    assert run_in_process(_argv(root, runs)) == 0
    dirs = sorted(p.parent for p in runs.glob("synthetic/*/*/summary.json"))
    assert [d.parent.name for d in dirs] == ["v1", "v2"]
    for d in dirs:
        with open(d / "metrics.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        scalars = _read_scalars(d / "tb")
        compared = 0
        for step, row in enumerate(rows, start=1):
            for col, text in row.items():
                if col == "stage" or text == "":
                    continue
                tag = "stage/epoch" if col == "epoch" else tensorboard_log._tag(col)
                assert scalars[tag][step] == pytest.approx(float(text), rel=1e-6, abs=1e-30), (d, col, step)
                compared += 1
        assert compared >= 8 * len(rows)
        assert all(
            len(v) == len(rows) for k, v in scalars.items() if k.startswith("time/")
        )  # step time, data wait
        assert sum(
            len(v) for k, v in scalars.items() if k.startswith(("train/", "lr/", "val/", "time/"))
        ) == sum(
            1 for r in rows for c, t in r.items() if c not in ("stage", "epoch") and t != ""
        )  # nothing else
        stages = list(dict.fromkeys(r["stage"] for r in rows))  # the stage boundaries of a multi-stage method
        assert [scalars["stage/index"][s] for s in range(1, len(rows) + 1)] == [
            float(stages.index(r["stage"])) for r in rows
        ]
        summary = json.loads((d / "summary.json").read_text())
        for name, value in summary["patch_eval"].items():  # learned / random / centre at the end
            assert scalars[f"final/patch_eval/{name}"][len(rows)] == pytest.approx(value, rel=1e-6)
        assert scalars["final/top1"][len(rows)] == pytest.approx(summary["top1"], rel=1e-6)
        for key, points in summary.items():  # e.g. an early-exit curve: one point per budget
            if isinstance(points, list) and points and all(isinstance(p, dict) for p in points):
                for field, v in points[-1].items():
                    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                        assert scalars[f"{key}/{field}"][len(points) - 1] == pytest.approx(v, rel=1e-6)
    assert len({r.parent.name for r in dirs}) == 2 and len(stages) >= 1


def test_no_tensorboard_and_resumed_history(tmp_path, one_thread):
    root = micro_set(tmp_path / "set", train=4, val=2)
    runs = tmp_path / "runs"
    argv = [
        "run",
        "--method",
        "v2",
        "--data-root",
        str(root),
        "--runs-dir",
        str(runs),
        "--device",
        "cpu",
        "--workers",
        "0",
        "--no-progress",
        "--quiet",
        "--epochs",
        "1",
        *V2_ARGS,
    ]
    try:
        assert run_in_process([*argv, "--no-tensorboard"]) == 0
    finally:
        tensorboard_log.configure(True)
    run = next(runs.glob("synthetic/v2/*/summary.json")).parent
    assert (run / "metrics.csv").is_file() and not (run / "tb").exists()

    # a process writes a run's history afresh once, then only new cells: no step twice
    rows = [{"stage": "s0", "epoch": 1, "train_loss": 1.0}, {"stage": "s1", "epoch": 1, "train_loss": 0.5}]
    target = tmp_path / "fake-run"
    tensorboard_log.log_metrics(target, rows[:1])
    tensorboard_log.log_metrics(target, rows)
    tensorboard_log.log_summary(target, {"top1": 0.75, "early_exit": [{"gflops": 1.0, "top1": 0.5}]})
    tensorboard_log.log_metrics(target, rows)  # a resumed process: rewritten from its history, not appended
    tensorboard_log.log_summary(target, {"top1": 0.75})
    scalars = _read_scalars(target / "tb")
    assert scalars["train/loss"] == {1: 1.0, 2: 0.5} and scalars["stage/index"] == {1: 0.0, 2: 1.0}
    assert "early_exit/gflops" not in scalars  # the first process's files were replaced


def test_without_tensorboard_installed_one_note(tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if not installed
    monkeypatch.setattr(tensorboard_log, "_warned", False)
    for k in range(2):
        tensorboard_log.log_metrics(tmp_path / f"run{k}", [{"stage": "s", "epoch": 1, "train_loss": 1.0}])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "tensorboard is not installed" in err
    assert not (tmp_path / "run0" / "tb").exists()
