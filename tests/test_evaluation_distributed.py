"""bench.training.evaluation over two gloo ranks equals the single-process evaluation (padding repeats
dropped).

Marked slow: spawning two interpreters costs ~20 s on a loaded 2-core machine; the collectives it
relies on are covered in the default run by tests/test_distributed.py."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from bench.models import build_network
from bench.presets import get_preset
from bench.training import runtime
from bench.training.evaluation import evaluate

K, T, S, N = 5, 3, 32, 11


def _net():
    torch.manual_seed(0)
    p = get_preset(
        "synthetic",
        "tiny",
        method="v2",
        frames=T,
        input_size=S,
        resize=S,
        patch_size=16,
        classifier_hidden=32,
        policy_hidden=(32,),
    )
    return build_network(p, num_classes=K)


def _items():
    g = torch.Generator().manual_seed(1)
    frames = torch.randn(N, T, 3, S, S, generator=g)
    labels = torch.randint(0, K, (N,), generator=g)
    return frames, labels


def _batches(indices):
    frames, labels = _items()
    idx = torch.tensor(indices)
    return [
        {"frames": frames[idx[i : i + 2]], "label": labels[idx[i : i + 2]], "index": idx[i : i + 2]}
        for i in range(0, len(idx), 2)
    ]


def _worker(rank: int, port: int, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2"
    )
    torch.set_num_threads(1)
    env = runtime.init_distributed("cpu")
    try:
        # DistributedSampler-style shards: 11 items padded to 12 by repeating item 0
        order = list(range(N)) + [0]
        r = evaluate(_net(), _batches(order[rank::2]), env.device, env=env)
        if rank == 0:
            torch.save({"logits": r.step_logits, "index": r.index, "top1": r.top1}, out)
    finally:
        runtime.cleanup(env)


@pytest.mark.slow
def test_two_ranks_gather_to_the_single_process_result(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = str(tmp_path / "rank0.pt")
    mp.start_processes(_worker, args=(port, out), nprocs=2, join=True, start_method="spawn")
    got = torch.load(out)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ref = evaluate(_net(), _batches(list(range(N))), torch.device("cpu"))
    finally:
        torch.set_num_threads(n)
    assert got["index"].tolist() == list(range(N))
    assert torch.allclose(got["logits"], ref.step_logits, atol=1e-5)
    assert got["top1"] == ref.top1
