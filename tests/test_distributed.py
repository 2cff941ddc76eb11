"""Two gloo processes on CPU: collectives with uneven sizes, DDP gradient averaging and
rank-reduced epoch timing."""

from __future__ import annotations

import os
import socket
import time

import pytest
import torch
import torch.multiprocessing as mp

from bench.training import runtime
from bench.training.timing import EpochTimer

WORLD = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _data(rank: int):
    g = torch.Generator().manual_seed(100 + rank)
    return torch.randn(4, 3, generator=g), torch.randn(4, 1, generator=g)


def _worker(rank: int, port: int, tmp: str = "") -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(WORLD),
    )
    torch.set_num_threads(1)
    env = runtime.init_distributed("cpu")
    try:
        assert (env.rank, env.world_size, env.is_main) == (rank, WORLD, rank == 0)
        # scalars and tensors, returned as the kind they were given
        assert runtime.all_reduce_mean(float(rank + 1), env) == 1.5
        assert runtime.all_reduce_max(float(rank + 1), env) == 2.0
        t = runtime.all_reduce_max(torch.tensor([rank, 10 * rank]), env)
        assert t.tolist() == [1, 10] and t.dtype == torch.int64
        # uneven gathers: rank 0 holds 3 rows, rank 1 holds 5
        rows = 3 + 2 * rank
        logits = torch.full((rows, 4), float(rank)) + torch.arange(rows).unsqueeze(1)
        got = runtime.all_gather_cat(logits, env)
        assert got.shape == (8, 4)
        assert got[:, 0].tolist() == [0, 1, 2, 1, 2, 3, 4, 5]
        flags = runtime.all_gather_cat(torch.arange(rows) % 2 == 0, env)
        assert flags.dtype == torch.bool and flags.tolist() == [
            True,
            False,
            True,
            True,
            False,
            True,
            False,
            True,
        ]
        empty = runtime.all_gather_cat(torch.zeros(0 if rank == 0 else 2, dtype=torch.long), env)
        assert empty.shape == (2,)
        assert runtime.broadcast_object({"dir": f"rank{rank}"}, env) == {"dir": "rank0"}
        # DDP averages gradients over ranks
        torch.manual_seed(0)
        net = torch.nn.Linear(3, 1)
        ref = [p.detach().clone() for p in net.parameters()]
        ddp = torch.nn.parallel.DistributedDataParallel(net)  # the reference average_gradients must match
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
        # epoch time is the slowest rank's; data wait is the mean
        timer = EpochTimer()
        for _ in timer.iterate(range(2)):
            time.sleep(0.05 + 0.25 * rank)
        times = timer.result(env)
        assert times.total_seconds >= 0.6 and times.steps == 2
        _check_averager_broadcast_and_rng(env, rank, expected, tmp)
        runtime.barrier(env)
    finally:
        runtime.cleanup(env)


def _check_averager_broadcast_and_rng(env, rank: int, expected, tmp: str) -> None:
    """average_gradients (every method's data-parallel gradients, DDP's arithmetic), broadcast_module_state,
    gather_objects and per-rank RNG states in a collective checkpoint."""
    from bench.training.checkpoint import load_checkpoint, save_checkpoint

    torch.manual_seed(0)
    net = torch.nn.Linear(3, 1)  # same initial weights as the DDP check above
    x, y = _data(rank)
    torch.nn.functional.mse_loss(net(x), y).backward()
    torch.testing.assert_close(list(net.parameters())[0].grad, expected[rank][0])  # local grads before
    runtime.average_gradients(net.parameters(), env)
    for i, p in enumerate(net.parameters()):
        torch.testing.assert_close(p.grad, (expected[0][i] + expected[1][i]) / 2)
    bn = torch.nn.BatchNorm1d(2)
    bn.running_mean.fill_(float(rank + 3))
    with torch.no_grad():
        bn.weight.fill_(float(rank + 1))
    runtime.broadcast_module_state(bn, env)
    assert bn.running_mean.tolist() == [3.0, 3.0] and bn.weight.tolist() == [1.0, 1.0]
    assert runtime.gather_objects(("rank", rank), env) == [("rank", 0), ("rank", 1)]
    path = os.path.join(tmp, "ckpt.pt")
    torch.manual_seed(50 + rank)
    written = save_checkpoint(path, modules={"bn": bn}, stage="s", epoch=0, env=env)
    assert (written is None) == (rank != 0)
    nxt = torch.rand(3)
    runtime.barrier(env)
    torch.manual_seed(999)
    load_checkpoint(path, {"bn": bn}, env=env)
    assert torch.equal(torch.rand(3), nxt)  # each rank continues its own random stream
    assert not torch.equal(*runtime.all_gather_cat(nxt[None], env))


def test_two_gloo_processes(tmp_path) -> None:
    ctx = mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=False)
    deadline = time.monotonic() + 60
    while not ctx.join(timeout=1):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail("distributed workers did not finish within 60 s")
