"""``adabench run --nproc N`` hands the same arguments, minus ``--nproc``, to torchrun."""

from __future__ import annotations

import pytest

from bench.errors import UsageError
from bench.training import launch


def test_torchrun_gets_the_same_arguments_without_nproc():
    argv = ["run", "--method", "v2", "--nproc", "2", "--set", "lr=0.1", "--nproc=3", "--seed", "4"]
    assert launch.strip_option(argv, "--nproc") == ["run", "--method", "v2", "--set", "lr=0.1", "--seed", "4"]
    assert launch.torchrun_args(argv, 2) == [
        "--standalone",
        "--nproc_per_node",
        "2",
        "--module",
        "cli",
        "run",
        "--method",
        "v2",
        "--set",
        "lr=0.1",
        "--seed",
        "4",
    ]


def test_a_worker_does_not_launch_again(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(UsageError, match="already a distributed worker"):
        launch.launch(["run"], 2)
    monkeypatch.setenv("RANK", "1")
    assert not launch.main_rank()


def test_a_rank_that_lost_its_peer_says_so_in_one_line(monkeypatch):
    lost = RuntimeError(
        "[pair.cc:561] Connection closed by peer [127.0.0.1]:8429. This is typically caused\nby"
    )
    assert launch.peer_failure_message(lost) is None  # not distributed: a real error, keep the traceback
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    msg = launch.peer_failure_message(lost)
    assert msg.startswith("rank 1: lost the other ranks") and "\n" not in msg
    assert launch.peer_failure_message(RuntimeError("shape mismatch")) is None
    assert launch.peer_failure_message(ValueError("Connection closed by peer")) is None


def test_run_nproc_relaunches_the_arguments_main_was_given(tmp_path, monkeypatch):
    """``main(argv)`` records argv where the run command reads it (``commands.INVOCATION``, the list
    ``cli._INVOCATION`` is), so --nproc hands on exactly these arguments, not this process's sys.argv."""
    import cli
    import commands
    from tests.fixtures_runs import micro_set

    seen = []
    monkeypatch.setattr(launch, "launch", lambda argv, nproc: seen.append((list(argv), nproc)))
    root = micro_set(tmp_path / "set", train=2, val=1, easy=True)
    argv = [
        "run",
        "--method",
        "v2",
        "--data-root",
        str(root),
        "--runs-dir",
        str(tmp_path / "runs"),
        "--nproc",
        "2",
    ]
    with pytest.raises(SystemExit) as done:
        cli.main(argv)
    assert done.value.code == 0
    assert seen == [(argv, 2)]
    assert cli._INVOCATION is commands.INVOCATION
