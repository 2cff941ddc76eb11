"""Checkpoints resume bit-identically on CPU and fail with one-line errors."""

from __future__ import annotations

import random
from pathlib import Path
from typing import List

import numpy as np
import pytest
import torch
from torch import nn

from bench.errors import UsageError
from bench.training.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from bench.training.optim import cosine_schedule
from bench.training.precision import grad_scaler
from bench.training.runtime import seed_everything


def _setup():
    model = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    sched = cosine_schedule(opt, epochs=6)
    return model, opt, sched


def _epoch(model, opt, sched) -> List[float]:
    """Two steps whose data and dropout draw on all three global RNGs, then a scheduler step."""
    losses = []
    for _ in range(2):
        x = torch.randn(8, 6) + float(np.random.rand()) + random.random()
        y = torch.randint(0, 3, (8,))
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    sched.step()
    return losses


def test_resume_is_bit_identical(tmp_path: Path) -> None:
    seed_everything(0)
    model, opt, sched = _setup()
    scaler = grad_scaler(torch.device("cpu"), "fp32")  # disabled: must still round-trip
    for _ in range(2):
        _epoch(model, opt, sched)
    ckpt = tmp_path / "checkpoints" / "last.pt"
    save_checkpoint(
        ckpt,
        modules={"net": model},
        optimizers={"sgd": opt},
        schedulers={"cos": sched},
        scaler=scaler,
        stage="train",
        epoch=1,
        extra={"curve": [[1.0, 0.5]], "stage_seconds": {"a": 2.0}},
    )
    expected = [_epoch(model, opt, sched) for _ in range(3)]
    expected_state = {k: v.clone() for k, v in model.state_dict().items()}

    seed_everything(123)  # a fresh process would start from other RNG states and weights
    model2, opt2, sched2 = _setup()
    info = load_checkpoint(ckpt, {"net": model2}, {"sgd": opt2}, {"cos": sched2}, scaler)
    assert info == {
        "stage": "train",
        "epoch": 1,
        "extra": {"curve": [[1.0, 0.5]], "stage_seconds": {"a": 2.0}},
    }
    resumed = [_epoch(model2, opt2, sched2) for _ in range(3)]
    assert resumed == expected
    for k, v in model2.state_dict().items():
        assert torch.equal(v, expected_state[k]), k
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]


def test_ddp_like_wrapper_is_unwrapped(tmp_path: Path) -> None:
    class Wrapper(nn.Module):  # torch.compile's OptimizedModule keeps the model in _orig_mod
        def __init__(self, m: nn.Module) -> None:
            super().__init__()
            self._orig_mod = m

    net = nn.Linear(2, 2)
    save_checkpoint(tmp_path / "c.pt", modules={"net": Wrapper(net)}, stage="s", epoch=0)
    assert set(read_checkpoint(tmp_path / "c.pt")["modules"]["net"]) == {"weight", "bias"}


def test_missing_corrupt_and_mismatched_checkpoints(tmp_path: Path) -> None:
    net = nn.Linear(2, 2)
    with pytest.raises(UsageError, match="not found"):
        load_checkpoint(tmp_path / "none.pt", {"net": net})
    path = tmp_path / "last.pt"
    save_checkpoint(path, modules={"net": net}, stage="s", epoch=0)
    path.write_bytes(path.read_bytes()[:200])  # truncated, as after a crash without atomic writes
    with pytest.raises(UsageError, match="corrupt or truncated") as e:
        load_checkpoint(path, {"net": net})
    assert "\n" not in str(e.value)
    save_checkpoint(path, modules={"net": net}, stage="s", epoch=0)
    with pytest.raises(UsageError, match="no modules policy"):
        load_checkpoint(path, {"net": net, "policy": nn.Linear(2, 2)})
    with pytest.raises(UsageError, match="does not match the model"):
        load_checkpoint(path, {"net": nn.Linear(3, 2)})
