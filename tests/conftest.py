"""Shared test settings."""

import os
from pathlib import Path

import pytest
import torch

# One cache for the whole session, wherever a test runs from: the texture stand-in weights
# (bench.models.pretrain, ~4 s per backbone to make) are then made once, not again by every test that
# changes into a temporary directory before training (the default cache is ./.cache). A test of the cache
# itself sets its own $ADABENCH_CACHE. An $ADABENCH_CACHE given by the caller is kept.
os.environ.setdefault("ADABENCH_CACHE", str(Path(__file__).resolve().parents[1] / ".cache"))


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread per test: the tests' tensors are small, and on a shared 2-core machine
    two OpenMP threads per process thrash (a tiny step measured ~100x slower). Restored afterwards,
    since some code under test sets its own thread count."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
