"""Issue 23: ``adabench run --launcher local`` fans a matched experiment out as one submitit job per run
(separate processes), writes the cell's shared initial state before submitting, and ``adabench status`` tells
each run's state; a job killed mid-run shows as failed, re-submitting skips the complete run and resumes the
killed one,
and both end with the results of the same experiment run locally."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from bench import io
from bench.runs.rundir import RunDir
from bench.tools.fanout import run_state, status_lines
from tests.fixtures_runs import V1_ARGS, micro_set, one_thread, run_in_process

__all__ = ["one_thread"]
TIMING = {"train_seconds", "data_seconds", "cumulative_train_seconds"}


def _argv(root, runs):
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
        "--deterministic",
        "--precision",
        "fp32",
        *V1_ARGS,
    ]


def _run_dir(runs: Path, method: str) -> Path:
    return next((runs / "synthetic" / method).iterdir())


def _wait(condition, timeout: float = 180.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def _metrics(run: Path):
    with open(run / "metrics.csv", newline="") as f:
        return [{k: v for k, v in r.items() if k not in TIMING} for r in csv.DictReader(f)]


def _status(runs: Path, capsys) -> str:
    assert run_in_process(["status", "--runs-dir", str(runs)]) == 0
    return capsys.readouterr().out


@pytest.mark.slow  # about 40 s on a busy 2-core machine (two jobs of two processes each, twice)
def test_local_launcher_kill_resubmit_equals_local_run(tmp_path, capsys, one_thread):
    root = micro_set(tmp_path / "set", train=4, val=2)
    local, fanned = tmp_path / "local", tmp_path / "fanned"
    assert run_in_process(_argv(root, local)) == 0
    capsys.readouterr()

    assert run_in_process([*_argv(root, fanned), "--launcher", "local"]) == 0  # returns once submitted
    out = capsys.readouterr().out
    assert out.count("submitted job") == 2
    init = next((fanned / "_init").glob("*.pt"))  # written before submission, equal to the local run's
    ref = torch.load(next((local / "_init").glob("*.pt")), weights_only=True)
    assert all(torch.equal(v, ref[k]) for k, v in torch.load(init, weights_only=True).items())

    # kill the V1 job's training process mid-run (after its first checkpoint, before its summary)
    v1 = lambda: next(iter((fanned / "synthetic" / "v1").glob("*")), None)  # noqa: E731
    _wait(
        lambda: v1() is not None and (v1() / "checkpoints" / "last.pt").exists(), what="V1's first checkpoint"
    )
    assert not (v1() / "summary.json").exists(), "V1 finished before it could be killed"
    os.kill(io.read_json(v1() / "run.lock")["pid"], signal.SIGKILL)
    v2 = lambda: next(iter((fanned / "synthetic" / "v2").glob("*/summary.json")), None)  # noqa: E731
    _wait(lambda: v2() is not None, what="V2's summary")
    plan = next((fanned / "_experiments").glob("*.plan.json"))
    _wait(
        lambda: run_state(RunDir(v1()), io.read_json(plan)["jobs"][str(v1().resolve())])[0] == "failed",
        timeout=30,
        what="the killed job to be seen as failed",
    )
    text = _status(fanned, capsys)
    assert "v1 p16 s0: failed (job " in text and "AdaFocusV1" in text  # the run's last log line
    assert "v2 p16 s0: done" in text and "1 done" in text and "1 failed" in text

    assert run_in_process([*_argv(root, fanned), "--launcher", "local"]) == 0  # re-submit
    out = capsys.readouterr().out
    assert "v2 p16 s0: done, not submitted" in out and out.count("submitted job") == 1
    _wait(lambda: (v1() / "summary.json").exists(), what="the resumed V1 run")
    assert "2 done" in _status(fanned, capsys)
    for method in ("v1", "v2"):
        a, b = _run_dir(local, method), _run_dir(fanned, method)
        assert _metrics(a) == _metrics(b), method
        sa, sb = (json.loads((d / "summary.json").read_text()) for d in (a, b))
        assert (sa["top1"], sa["patch_eval"]) == (sb["top1"], sb["patch_eval"]), method
    log = (_run_dir(fanned, "v1") / "log.txt").read_text()
    assert log.count("stage0 epoch 1/") == 1  # resumed after the killed run's checkpoint, not trained again


def test_status_running_and_not_started(tmp_path, capsys):
    runs = tmp_path / "runs"
    dirs = [runs / "synthetic" / m / "x" for m in ("a", "b", "c")]
    (runs / "_experiments").mkdir(parents=True)
    io.atomic_write_json(
        runs / "_experiments" / "run-1.plan.json",
        {
            "experiment": "run-1.yaml",
            "jobs": {},
            "runs": [{"index": k, "run_dir": str(d), "label": f"m{k}"} for k, d in enumerate(dirs)],
        },
    )
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dirs[0].mkdir(parents=True)
        io.atomic_write_json(dirs[0] / "run.lock", {"pid": sleeper.pid, "host": socket.gethostname()})
        dirs[1].mkdir(parents=True)
        (dirs[1] / "log.txt").write_text("x epoch 1/2: loss 1.0\nerror: out of memory\n")
        text = "\n".join(status_lines(str(runs)))
    finally:
        sleeper.kill()
        sleeper.wait()
    assert f"m0: running (pid {sleeper.pid})" in text
    assert "m1: failed: error: out of memory" in text and "m2: not started" in text
    assert run_in_process(["status", "--runs-dir", str(tmp_path / "empty")]) == 2
    assert "no planned experiment" in capsys.readouterr().err


def test_launcher_usage_errors_and_job_command(tmp_path, capsys, monkeypatch):
    from bench.tools.fanout import LaunchSpec, job_command, select_planned

    root = micro_set(tmp_path / "set", train=4, val=2)
    argv = [*_argv(root, tmp_path / "runs")]
    assert run_in_process([*argv, "--launcher", "slurm"]) == 2
    assert "--slurm-partition" in capsys.readouterr().err
    monkeypatch.setattr("shutil.which", lambda name: None)
    assert run_in_process([*argv, "--launcher", "slurm", "--slurm-partition", "gpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --launcher slurm: sbatch not found") and err.count("\n") == 1
    assert not (tmp_path / "runs" / "_init").exists()  # nothing written before the error
    assert (
        run_in_process(
            [
                "demo",
                "--launcher",
                "slurm",
                "--slurm-partition",
                "gpu",
                "--runs-dir",
                str(tmp_path / "runs"),
                "--out",
                str(tmp_path / "report"),
            ]
        )
        == 2
    )  # demo takes them too
    assert "sbatch not found" in capsys.readouterr().err
    assert (
        run_in_process(["tune", "--launcher", "slurm", "--runs-dir", str(tmp_path / "runs")]) == 2
    )  # tune too
    assert "--slurm-partition" in capsys.readouterr().err
    assert run_in_process([*argv, "--plan-index", "5"]) == 2
    assert "--plan-index 5: the experiment plans 2 run(s)" in capsys.readouterr().err
    cmd = job_command(tmp_path / "e.yaml", 1, 4)
    assert cmd[1:4] == ["-m", "cli", "run"] and cmd[-4:] == ["--plan-index", "1", "--nproc", "4"]
    assert select_planned(["a", "b"], 1) == ["b"]
    LaunchSpec("local").check()
