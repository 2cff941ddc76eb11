"""Host synchronisations per training step, counted: the same for every method and stage.

A host synchronisation is a device -> host read: ``.item()``, ``float(t)``, ``bool(t)`` (all
``aten._local_scalar_dense``), ``.tolist()``, ``.numpy()``, and ops whose output size depends on the data
(``nonzero``, ``masked_select``, ``unique``). On CUDA each one stalls the host until the queued kernels ran,
so if one method read its loss every step and the other every tenth, their training times would be taken
under different conditions. The optimiser's own update is left out (its state-step counter lives on the
host by design, and the optimiser is part of the method); everything else a step does is counted.
"""

from __future__ import annotations

import contextlib

import pytest
import torch
from fixtures_plan import plan_stages
from torch.utils._python_dispatch import TorchDispatchMode

from bench.models import build_network
from bench.presets import get_preset
from bench.runs.rundir import RunDir
from bench.training.driver import LOG_EVERY, Driver, make_update
from bench.training.runtime import DistEnv

SYNC_OPS = {"_local_scalar_dense", "nonzero", "masked_select", "_unique2", "unique_dim", "unique_consecutive"}
K = 3
SMALL = dict(
    frames=4,
    input_size=32,
    resize=32,
    patch_size=16,
    glance_size=16,
    classifier_hidden=16,
    policy_hidden="[16]",
    policy_conv_channels=8,
    grid_n=3,
    batch_size=4,
)


class SyncCounter(TorchDispatchMode):
    """Counts host reads while active and not ``paused``."""

    def __init__(self) -> None:
        super().__init__()
        self.count, self.paused, self.active, self.seen = 0, False, False, []

    def __enter__(self):
        self.active = True
        return super().__enter__()

    def __exit__(self, *exc):
        self.active = False
        return super().__exit__(*exc)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not self.paused and func.__name__.split(".")[0] in SYNC_OPS:
            self.count += 1
            self.seen.append(func.__name__)
        return func(*args, **(kwargs or {}))

    @contextlib.contextmanager
    def pause(self):
        self.paused, was = True, self.paused
        try:
            yield
        finally:
            self.paused = was


@pytest.fixture
def counter(monkeypatch):
    c = SyncCounter()
    for name in ("tolist", "numpy"):  # host reads that bypass the dispatcher
        real = getattr(torch.Tensor, name)

        def counted(self, *a, _real=real, **kw):
            if c.active and not c.paused:
                c.count += 1
                c.seen.append(_real.__name__)
            return _real(self, *a, **kw)

        monkeypatch.setattr(torch.Tensor, name, counted)
    return c


def _stages(method: str, dataset: str):
    preset = get_preset(dataset, "tiny", method=method, **SMALL)
    torch.manual_seed(0)
    net = build_network(preset, num_classes=K)
    return preset, net, plan_stages(method, net, preset, K)


def _batches(preset, n: int):
    g = torch.Generator().manual_seed(1)
    s = preset.input_size
    out = []
    for _ in range(n):
        b = {
            "frames": torch.randn(4, preset.frames, 3, s, s, generator=g),
            "label": torch.randint(0, K, (4,), generator=g),
        }
        if preset.glance_frames:
            b["glance"] = torch.randn(4, preset.glance_frames, 3, s, s, generator=g)
        out.append(b)
    return out


def _update_outside(counter: SyncCounter, opt: torch.optim.Optimizer):
    def update(loss):
        opt.zero_grad(set_to_none=True)
        loss.backward()  # counted: the backward pass is part of the step
        with counter.pause():  # the optimiser's host-side step counter is not
            opt.step()

    return update


@pytest.mark.parametrize("dataset", ["synthetic", "jester"])  # frame and video variants
@pytest.mark.parametrize("method", ["v1", "v2"])
def test_no_step_of_any_stage_reads_the_device(counter, method, dataset):
    preset, net, stages = _stages(method, dataset)
    for stage in stages:
        stage.prepare()
        opt = stage.optimizer()
        for batch in _batches(preset, 2):
            with counter:
                parts = stage.step(batch, _update_outside(counter, opt))
            assert "loss" in parts and all(v.dim() == 0 and not v.requires_grad for v in parts.values())
        assert counter.count == 0, f"{method} {stage.name} reads the device: {counter.seen}"


def test_an_epoch_reads_the_device_at_the_same_points_for_every_method(tmp_path, counter):
    """The driver reads the running loss every LOG_EVERY steps and once at the end of the epoch."""
    counts = {}
    for method in ("v1", "v2"):
        preset, net, stages = _stages(method, "synthetic")
        stage = stages[-1]  # V1: fine-tuning; V2: its one stage
        driver = Driver(
            net,
            stages,
            RunDir(tmp_path / method).create(),
            [],
            DistEnv(),
            seed=0,
            label=method,
            evaluate_curve=lambda m: {},
            evaluate_end=lambda: {},
            curve_epochs=lambda n: set(),
        )
        stage.prepare()
        opt = stage.optimizer()
        step = opt.step
        opt.step = lambda *a, _s=step, **kw: _pause_call(counter, _s, *a, **kw)
        driver.loader = _batches(preset, 2 * LOG_EVERY)
        with counter:
            driver._train_epoch(
                stage,
                make_update(opt, torch.amp.GradScaler("cpu", enabled=False), stage.grad_clip, DistEnv()),
                0,
            )
        counts[method] = counter.count
        counter.count = 0
    assert counts["v1"] == counts["v2"] == 2 + 1  # two periodic reads, the epoch's means once


def _pause_call(counter: SyncCounter, fn, *a, **kw):
    with counter.pause():
        return fn(*a, **kw)
