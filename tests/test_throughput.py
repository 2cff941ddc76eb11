"""Throughput measurement discipline and the full-frame baseline's shape and FLOPs."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from bench.models.backbones import Backbone
from bench.tools.throughput import FullFrameNet, full_frame_gflops, measure_interleaved, measure_throughput


class _Counting(nn.Module):
    """Records the batch sizes, train flags and grad mode it was called with."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 2)
        self.calls = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append((x.shape[0], self.training, torch.is_grad_enabled()))
        return self.fc(x)


def test_measure_throughput_discipline():
    m = _Counting().train()
    r = measure_throughput(m, torch.randn(1, 6), batch=4, warmup=2, repeats=5)
    assert len(m.calls) == 7 and all(c == (4, False, False) for c in m.calls)  # batch, eval, no_grad
    assert m.training  # mode restored
    assert r["videos_per_s"] == pytest.approx(4000.0 / r["ms_per_batch"])
    assert r["ms_per_batch_min"] <= r["ms_per_batch"] <= r["ms_per_batch_max"]
    assert r["ms_per_video"] == pytest.approx(r["ms_per_batch"] / 4)
    assert (r["batch"], r["warmup"], r["repeats"], r["device"]) == (4, 2, 5, "cpu")
    with pytest.raises(ValueError, match="batch 3"):
        measure_throughput(m, torch.randn(3, 6), batch=4)


def test_interleaved_times_every_model_each_repeat():
    a, b = _Counting(), _Counting()
    out = measure_interleaved(
        {"a": (a, torch.randn(2, 6)), "b": (b, torch.randn(1, 6))}, batch=2, warmup=1, repeats=3
    )
    assert set(out) == {"a", "b"} and len(a.calls) == len(b.calls) == 4
    assert all(c[0] == 2 for c in b.calls)


class _StubBackbone(Backbone):
    """1x1 conv 3 -> 4 channels + BatchNorm (excluded from FLOPs) + global average pool."""

    def __init__(self) -> None:
        nn.Module.__init__(self)
        self.conv, self.bn, self.out_channels = nn.Conv2d(3, 4, 1, bias=False), nn.BatchNorm2d(4), 4

    def forward(self, x):
        f = self.bn(self.conv(x))
        return f, f.mean((2, 3))


def test_full_frame_net_shape_and_flops():
    t, s, k = 3, 8, 5
    net = FullFrameNet(_StubBackbone(), k)
    assert net(torch.randn(2, t, 3, s, s)).shape == (2, k)
    g = full_frame_gflops(net, SimpleNamespace(frames=t, input_size=s))
    # per frame: conv s*s*3*4 MACs + head 4*k; BatchNorm and the means are not counted
    assert g * 1e9 == pytest.approx(t * (s * s * 3 * 4 + 4 * k))
