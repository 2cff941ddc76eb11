"""Issue 7, "resume anywhere": SIGKILL a real run from outside, re-run the same command, and get
exactly the metrics and weights of an uninterrupted run (``--deterministic``, CPU, same seed).

The kills are timed by polling the run directory, not by sleeping: V2 dies right after its first
checkpoint (inside epoch 2); V1 dies inside stage 1 (after its first epoch) and, on the next attempt,
right after stage 2 finished (between stages). Each killed run leaves a stale ``run.lock`` that the
re-run must take over. The uninterrupted references and the final resumes run in this process; the
killed attempts are child processes (``python -m cli``).

Issue 14: the references read their data with ``--workers 0``, the killed and resumed runs with
``--workers 2`` (persistent workers), so the equalities also show that the result depends neither on
the number of loader workers nor on where they were killed.
"""

from __future__ import annotations

import json

import pytest
import torch

from bench.io import read_csv_rows
from bench.training.checkpoint import read_checkpoint
from tests.fixtures_runs import (
    base_args,
    kill_when,
    micro_set,
    one_thread,
    only_run_dir,
    run_in_process,
    start,
)

pytestmark = pytest.mark.usefixtures("one_thread")
__all__ = ["one_thread"]

V2_EPOCHS = ["--set", "epochs=5"]
V1_EPOCHS = [
    "--set",
    "pretrain_epochs=1",
    "--set",
    "stage1_epochs=3",
    "--set",
    "stage2_epochs=2",
    "--set",
    "stage3_epochs=1",
]
WORKERS = ["--workers", "2"]  # the killed and resumed runs (the references read with 0)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return micro_set(tmp_path_factory.mktemp("kill") / "set", train=4, val=2)


def _summary(run_dir):
    return json.loads((run_dir / "summary.json").read_text())


def _same_weights(a, b) -> bool:
    wa, wb = (
        read_checkpoint(a / "checkpoints" / "last.pt")["modules"]["net"],
        read_checkpoint(b / "checkpoints" / "last.pt")["modules"]["net"],
    )
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def _metrics(summary, keys):
    return {k: summary[k] for k in keys}


def _stale_lock(run_dir) -> int:
    lock = json.loads((run_dir / "run.lock").read_text())
    assert not (run_dir / "summary.json").exists()
    return lock["pid"]


def test_v2_killed_mid_epoch_resumes_to_the_same_result(tmp_path, data_root):
    def args(name, *more):
        return base_args("v2", data_root, tmp_path / name, "--deterministic", *V2_EPOCHS, *more)

    assert run_in_process(args("straight")) == 0
    straight = only_run_dir(tmp_path / "straight", "v2")

    proc = start(args("killed", *WORKERS))

    def ckpt():
        d = only_run_dir(tmp_path / "killed", "v2")
        return d is not None and (d / "checkpoints/last.pt").is_file()

    kill_when(proc, ckpt)
    run_dir = only_run_dir(tmp_path / "killed", "v2")
    assert _stale_lock(run_dir) == proc.pid
    assert read_checkpoint(run_dir / "checkpoints" / "last.pt")["epoch"] < 4  # killed before the end

    assert run_in_process(args("killed", *WORKERS)) == 0  # the same command: takes the lock over, resumes
    assert not (run_dir / "run.lock").exists()
    keys = ("top1", "top1_best", "patch_eval", "coverage", "early_exit")
    assert _metrics(_summary(run_dir), keys) == _metrics(_summary(straight), keys)
    assert [p["top1"] for p in _summary(run_dir)["curve"]] == [p["top1"] for p in _summary(straight)["curve"]]
    assert _same_weights(run_dir, straight)
    rows = read_csv_rows(run_dir / "metrics.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4, 5]  # no epoch lost or repeated
    ref = read_csv_rows(straight / "metrics.csv")
    assert [r["train_loss"] for r in rows] == [r["train_loss"] for r in ref]
    assert json.loads((run_dir / "manifest.json").read_text())["attempt"] == 2


def _rows(run_dir):
    return read_csv_rows(run_dir / "metrics.csv") if (run_dir / "metrics.csv").is_file() else []


def test_v1_killed_mid_stage_and_between_stages_resumes_to_the_same_result(tmp_path, data_root):
    args = base_args(
        "v1", data_root, tmp_path / "killed", "--deterministic", "--rl", "reinforce", *V1_EPOCHS, *WORKERS
    )
    ref_args = base_args(
        "v1", data_root, tmp_path / "straight", "--deterministic", "--rl", "reinforce", *V1_EPOCHS
    )
    assert run_in_process(ref_args) == 0
    straight = only_run_dir(tmp_path / "straight", "v1")

    def run_dir():
        return only_run_dir(tmp_path / "killed", "v1")

    # 1. inside stage 1: its first epoch's row is written after its checkpoints
    proc = start(args)
    kill_when(proc, lambda: run_dir() is not None and any(r["stage"] == "stage1" for r in _rows(run_dir())))
    blob = read_checkpoint(run_dir() / "checkpoints" / "last.pt")
    assert (blob["stage"], blob["epoch"]) == ("stage1", 0)
    assert _stale_lock(run_dir()) == proc.pid
    # 2. the same command again, killed as soon as stage 2 has finished (its stage checkpoint exists)
    proc = start(args)
    kill_when(proc, lambda: (run_dir() / "checkpoints" / "stage2.pt").is_file())
    blob = read_checkpoint(run_dir() / "checkpoints" / "last.pt")
    assert blob["stage"] in ("stage2", "stage3") and _stale_lock(run_dir()) == proc.pid
    # 3. and once more to the end
    assert run_in_process(args) == 0
    keys = ("top1", "patch_eval", "coverage", "after_stage2", "stages_run")
    assert _metrics(_summary(run_dir()), keys) == _metrics(_summary(straight), keys)
    assert _same_weights(run_dir(), straight)
    got, ref = _rows(run_dir()), _rows(straight)
    assert [(r["stage"], r["epoch"]) for r in got] == [(r["stage"], r["epoch"]) for r in ref]
    assert [r["train_loss"] for r in got] == [r["train_loss"] for r in ref]
    assert json.loads((run_dir() / "manifest.json").read_text())["attempt"] == 3
