"""Run directory naming, manifest, summary and the single-writer lock."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import io
from bench.errors import UsageError
from bench.runs.config import RunConfig
from bench.runs.manifest import collect_manifest
from bench.runs.rundir import RunDir
from bench.runs.runlock import pid_alive


def _cfg(tmp_path: Path, **kw) -> RunConfig:
    return RunConfig(method="v2", patch_size=32, runs_dir=str(tmp_path / "runs"), **kw)


def test_name_is_a_pure_function_of_the_config(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, seed=3)
    run = RunDir.for_config(cfg)
    assert run.path == tmp_path / "runs" / "synthetic" / "v2" / f"tiny-matched-p32-s3-{cfg.config_hash()}"
    # where/how a run is shown does not change its identity; what is trained does
    assert RunDir.for_config(dataclasses.replace(cfg, progress=False, num_workers=3)) == run
    assert RunDir.for_config(dataclasses.replace(cfg, overrides={"diversity": False})) != run
    # the same resolved configuration, however it is spelled, is the same run
    assert RunDir.for_config(dataclasses.replace(cfg, overrides={"diversity": "false"})) == RunDir.for_config(
        dataclasses.replace(cfg, overrides={"diversity": False})
    )
    assert RunDir.for_config(dataclasses.replace(cfg, epochs=cfg.resolve_preset().train.epochs)) == run
    with pytest.raises(ValueError, match="patch_size"):
        RunDir.for_config(dataclasses.replace(cfg, patch_size=None))


def test_files_and_completion(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    run = RunDir.for_config(cfg).create()
    assert run.checkpoints_dir.is_dir() and not run.is_complete() and not run.has_checkpoint()
    run.write_config(cfg, {"lr": 0.01, "frames": 4})
    config = run.read_config()
    assert config["run"]["seed"] == 0 and config["preset"]["frames"] == 4
    assert config["config_hash"] == cfg.config_hash()
    run.write_metrics([{"stage": "train", "epoch": 0, "top1": 0.25}])
    assert run.read_metrics()[0]["top1"] == "0.25"
    run.log("epoch 0 done\n")
    assert run.log_path.read_text().strip().endswith("epoch 0 done")
    run.summary_path.write_text('{"top1": ')  # a malformed summary is not a complete run
    assert not run.is_complete()
    run.write_summary({"top1": 0.5, "map": float("nan")})
    assert run.is_complete() and run.read_summary() == {"top1": 0.5, "map": None}
    assert run.stage_checkpoint("stage 1").name == "stage_1.pt"


def test_manifest_contents_and_bad_items(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, seed=7, deterministic=True)
    run = RunDir.for_config(cfg).create()
    m = collect_manifest(cfg, "cpu", world_size=2, extra={"dataset_checksum": "abc"})
    for key in ("git_commit", "git_dirty", "argv", "python", "platform", "cpu", "hostname", "started_utc"):
        assert key in m
    assert m["git_commit"] is None or len(m["git_commit"]) == 40  # this checkout is a git repo
    assert set(m["versions"]) >= {"torch", "torchvision", "fvcore", "decord", "av", "numpy", "pandas"}
    assert m["versions"]["torch"] and m["seed"] == 7 and m["deterministic"] is True and m["world_size"] == 2
    assert m["dataset_checksum"] == "abc" and m["device"] == "cpu"
    json.dumps(m)  # serialisable as is
    run.write_manifest(m)
    run.add_bad_items([("a.mp4", "truncated"), ("b.mp4", "frame count 10, header says 12")])
    run.add_bad_items([("a.mp4", "truncated")])
    assert run.read_manifest()["bad_items"] == [
        ["a.mp4", "truncated"],
        ["b.mp4", "frame count 10, header says 12"],
    ]
    # a resumed run keeps the bad items and the first start, and counts attempts
    run.write_manifest(collect_manifest(cfg, "cpu"))
    again = run.read_manifest()
    assert (
        again["attempt"] == 2
        and again["first_started_utc"] == m["started_utc"]
        and len(again["bad_items"]) == 2
    )


def test_manifest_outside_git_has_no_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bench.runs.manifest as rd

    monkeypatch.setattr(rd, "__file__", str(tmp_path / "pkg" / "runs" / "manifest.py"))
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    assert rd._git_state() == (None, None)


def test_lock_blocks_a_second_live_process_and_takes_over_a_stale_one(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        io.atomic_write_json(run.lock_path, {"pid": holder.pid, "host": socket.gethostname(), "since": "x"})
        with pytest.raises(UsageError, match=f"pid {holder.pid}") as e:
            run.acquire_lock()
        assert "\n" not in str(e.value)
    finally:
        holder.kill()
        holder.wait()
    assert not pid_alive(holder.pid)
    with run.locked():  # the holder died (SIGKILL): its lock is stale
        assert io.read_json(run.lock_path)["pid"] == os.getpid()
    assert not run.lock_path.exists()


def test_lock_from_another_host_is_respected(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    io.atomic_write_json(run.lock_path, {"pid": 1, "host": "elsewhere-" + socket.gethostname(), "since": "x"})
    with pytest.raises(UsageError, match="elsewhere"):
        run.acquire_lock()
    run.release_lock()  # not ours: left alone
    assert run.lock_path.exists()


def test_lock_from_another_host_without_a_heartbeat_for_a_while_is_taken_over(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    """Issue 21 case 5: a requeued job lands on another host; the old holder's heartbeat stopped."""
    import bench.runs.runlock as runlock

    run = RunDir(tmp_path / "run")
    other = "elsewhere-" + socket.gethostname()
    fresh = {"pid": 1, "host": other, "since": "x", "heartbeat": time.time(), "heartbeat_every": 60.0}
    io.atomic_write_json(run.lock_path, fresh)
    with pytest.raises(UsageError, match="elsewhere"):  # still beating: respected
        run.acquire_lock()
    io.atomic_write_json(run.lock_path, {**fresh, "heartbeat": time.time() - 181})
    monkeypatch.setattr(runlock, "HEARTBEAT_SECONDS", 0.05)
    with run.locked():
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"taking over {run.lock_path} from pid 1 on {other}" in err
        assert "last heartbeat was 18" in err
        first = io.read_json(run.lock_path)
        assert first["pid"] == os.getpid() and first["heartbeat_every"] == 0.05
        time.sleep(0.3)
        assert io.read_json(run.lock_path)["heartbeat"] > first["heartbeat"]  # this holder beats
    assert not run.lock_path.exists()


def test_zombie_is_not_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    for _ in range(500):  # exited but not reaped: a zombie still answers kill(pid, 0)
        if Path(f"/proc/{child.pid}/stat").exists() and " Z " in Path(f"/proc/{child.pid}/stat").read_text():
            break
        time.sleep(0.02)
    assert not pid_alive(child.pid)
    child.wait()
