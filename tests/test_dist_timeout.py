"""A crashed or stuck rank must not hang the others forever: the process group gets a timeout."""

from __future__ import annotations

import datetime
import os
import socket
import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from bench.errors import UsageError
from bench.training import runtime


def test_init_distributed_passes_the_timeout(monkeypatch):
    seen = {}
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda **kw: seen.update(kw))
    monkeypatch.setenv("WORLD_SIZE", "2")
    for k, v in dict(RANK="1", LOCAL_RANK="1", MASTER_ADDR="127.0.0.1", MASTER_PORT="1").items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv(runtime.DIST_TIMEOUT_ENV, "42")
    env = runtime.init_distributed("cpu")
    assert (env.rank, env.world_size) == (1, 2)
    assert seen["backend"] == "gloo" and seen["timeout"] == datetime.timedelta(seconds=42)
    monkeypatch.delenv(runtime.DIST_TIMEOUT_ENV)
    assert runtime.dist_timeout() == datetime.timedelta(seconds=runtime.DEFAULT_DIST_TIMEOUT_S)
    monkeypatch.setenv(runtime.DIST_TIMEOUT_ENV, "soon")
    with pytest.raises(UsageError, match="ADABENCH_DIST_TIMEOUT"):
        runtime.dist_timeout()


def _stuck_worker(rank: int, port: int, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE="2",
        ADABENCH_DIST_TIMEOUT="3",
    )
    torch.set_num_threads(1)
    env = runtime.init_distributed("cpu")
    runtime.barrier(env)
    if rank == 1:  # stuck outside any collective (a hung decoder, an endless loop)
        time.sleep(25)
        return
    t0 = time.monotonic()
    try:
        runtime.all_reduce_mean(1.0, env)
        result = "returned"
    except Exception as e:  # noqa: BLE001 - gloo raises RuntimeError / DistBackendError
        result = type(e).__name__
    with open(out, "w") as f:
        f.write(f"{result} {time.monotonic() - t0:.1f}")
    os._exit(0)  # the group is broken; do not wait for the stuck peer in destroy


@pytest.mark.slow
def test_a_stuck_rank_times_out_instead_of_hanging(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "rank0.txt"
    ctx = mp.start_processes(_stuck_worker, args=(port, str(out)), nprocs=2, join=False, start_method="spawn")
    deadline = time.monotonic() + 60
    while not out.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    for p in ctx.processes:
        p.kill()
    result, seconds = out.read_text().split()
    assert result != "returned" and float(seconds) < 20
