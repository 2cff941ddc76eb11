"""Two gloo processes on CPU: collectives with uneven sizes, DDP gradient averaging and
rank-reduced epoch timing."""
from __future__ import annotations

import os
import socket
import time

import pytest
import torch
import torch.multiprocessing as mp

from bench import runtime
from bench.timing import EpochTimer

WORLD = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _data(rank: int):
    g = torch.Generator().manual_seed(100 + rank)
    return torch.randn(4, 3, generator=g), torch.randn(4, 1, generator=g)


def _worker(rank: int, port: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD))
    torch.set_num_threads(1)
    env = runtime.init_distributed("cpu")
    try:
        assert (env.rank, env.world_size, env.is_main) == (rank, WORLD, rank == 0)
        # scalars and tensors, returned as the kind they were given
        assert runtime.all_reduce_sum(float(rank + 1), env) == 3.0
        assert runtime.all_reduce_mean(float(rank + 1), env) == 1.5
        assert runtime.all_reduce_max(float(rank + 1), env) == 2.0
        t = runtime.all_reduce_sum(torch.tensor([rank, 10 * rank]), env)
        assert t.tolist() == [1, 10] and t.dtype == torch.int64
        # uneven gathers: rank 0 holds 3 rows, rank 1 holds 5
        rows = 3 + 2 * rank
        logits = torch.full((rows, 4), float(rank)) + torch.arange(rows).unsqueeze(1)
        got = runtime.all_gather_cat(logits, env)
        assert got.shape == (8, 4)
        assert got[:, 0].tolist() == [0, 1, 2, 1, 2, 3, 4, 5]
        flags = runtime.all_gather_cat(torch.arange(rows) % 2 == 0, env)
        assert flags.dtype == torch.bool and flags.tolist() == [True, False, True, True, False, True, False, True]
        empty = runtime.all_gather_cat(torch.zeros(0 if rank == 0 else 2, dtype=torch.long), env)
        assert empty.shape == (2,)
        assert runtime.broadcast_object({"dir": f"rank{rank}"}, env) == {"dir": "rank0"}
        # DDP averages gradients over ranks
        torch.manual_seed(0)
        net = torch.nn.Linear(3, 1)
        ref = [p.detach().clone() for p in net.parameters()]
        ddp = runtime.wrap_ddp(net, env)
        assert isinstance(ddp, torch.nn.parallel.DistributedDataParallel)
        x, y = _data(rank)
        torch.nn.functional.mse_loss(ddp(x), y).backward()
        expected = []
        for r in range(WORLD):  # the same step computed locally for every rank's data
            local = torch.nn.Linear(3, 1)
            with torch.no_grad():
                for p, q in zip(local.parameters(), ref):
                    p.copy_(q)
            xr, yr = _data(r)
            torch.nn.functional.mse_loss(local(xr), yr).backward()
            expected.append([p.grad for p in local.parameters()])
        for i, p in enumerate(net.parameters()):
            torch.testing.assert_close(p.grad, (expected[0][i] + expected[1][i]) / 2)
        frozen = torch.nn.Linear(2, 2).requires_grad_(False)
        assert runtime.wrap_ddp(frozen, env) is frozen
        # epoch time is the slowest rank's; data wait is the mean
        timer = EpochTimer()
        for _ in timer.iterate(range(2)):
            time.sleep(0.05 + 0.25 * rank)
        times = timer.result(env)
        assert times.total_seconds >= 0.6 and times.steps == 2
        runtime.barrier(env)
    finally:
        runtime.cleanup(env)


def test_two_gloo_processes() -> None:
    ctx = mp.spawn(_worker, args=(_free_port(),), nprocs=WORLD, join=False)
    deadline = time.monotonic() + 60
    while not ctx.join(timeout=1):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail("distributed workers did not finish within 60 s")
