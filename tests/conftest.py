"""Shared test settings."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread per test: the tests' tensors are small, and on a shared 2-core machine
    two OpenMP threads per process thrash (a tiny step measured ~100x slower). Restored afterwards,
    since some code under test sets its own thread count."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
