"""Single-process runtime helpers: device resolution, seeding, determinism, gathering."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from bench.errors import UsageError
from bench.training import runtime


def test_resolve_device() -> None:
    assert runtime.resolve_device("cpu") == torch.device("cpu")
    assert runtime.resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(UsageError, match="expected auto, cpu, cuda"):
        runtime.resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="CUDA is not available"):
            runtime.resolve_device("cuda")


def test_seed_everything_is_reproducible_and_rank_dependent() -> None:
    def draw():
        return random.random(), float(np.random.rand()), float(torch.rand(()))

    runtime.seed_everything(5)
    a = draw()
    runtime.seed_everything(5)
    assert draw() == a
    runtime.seed_everything(5, rank=1)
    assert draw() != a


def test_deterministic_flag_round_trip() -> None:
    try:
        runtime.set_deterministic(True)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    finally:
        runtime.set_deterministic(False)
    assert not torch.are_deterministic_algorithms_enabled()


def test_configure_cuda_speed_is_a_no_op_on_cpu() -> None:
    before = torch.backends.cudnn.benchmark
    runtime.configure_cuda_speed(torch.device("cpu"))
    assert torch.backends.cudnn.benchmark == before


def test_single_process_env_and_identity_collectives(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    env = runtime.init_distributed("cpu")
    assert (env.rank, env.world_size, env.is_main, env.distributed) == (0, 1, True, False)
    t = torch.arange(3.0)
    assert runtime.all_reduce_mean(2.5, env) == 2.5
    assert runtime.all_gather_cat(t, env) is t
    runtime.barrier(env)
    runtime.cleanup(env)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(UsageError, match="torchrun"):
        runtime.init_distributed("cpu")
    assert runtime.default_num_workers() >= 0


def test_unique_by_index_drops_sampler_padding() -> None:
    # rank 0 got items 0, 2, 4; rank 1 got 1, 3 and item 0 again as padding
    index = torch.tensor([0, 2, 4, 1, 3, 0])
    logits = torch.tensor([[0.0], [2.0], [4.0], [1.0], [3.0], [9.0]])
    idx, out = runtime.unique_by_index(index, logits)
    assert idx.tolist() == [0, 1, 2, 3, 4]
    assert out.squeeze(1).tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]  # the first occurrence is kept
