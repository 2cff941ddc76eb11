"""The training driver on a handful of in-memory tiny videos (V2's one stage): epochs, checkpoints,
metrics, curve, resume, NaN guard, clipping."""

import pytest
import torch
from fixtures_plan import plan_stages

import bench.training.driver as driver_mod
from bench.errors import TrainingDivergedError
from bench.models import build_network
from bench.presets import get_preset
from bench.runs.rundir import RunDir
from bench.training.driver import Driver
from bench.training.runtime import DistEnv

K = 4


def _preset(**kw):
    small = dict(
        frames=4,
        epochs=3,
        batch_size=4,
        input_size=32,
        resize=32,
        patch_size=16,
        classifier_hidden=32,
        policy_hidden=(32,),
    )
    return get_preset("synthetic", "tiny", method="v2", **{**small, **kw})


def _batches(preset, n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    s = preset.input_size
    return [
        {
            "frames": torch.randn(4, preset.frames, 3, s, s, generator=g),
            "label": torch.randint(0, K, (4,), generator=g),
        }
        for _ in range(n)
    ]


def _fit(tmp_path, name, preset, batches, seed=0):
    run = RunDir(tmp_path / name).create()
    torch.manual_seed(seed)
    net = build_network(preset, num_classes=K)
    d = Driver(
        net,
        plan_stages("v2", net, preset, K),
        run,
        batches,
        DistEnv(),
        seed=seed,
        label="test",
        evaluate_curve=lambda modes: {"top1": 0.5, "map": None},
        evaluate_end=lambda: {},
        curve_epochs=lambda n: set(range(n)),
    )
    d.fit()
    return run, net, d.state


def test_fit_writes_checkpoint_metrics_and_curve(tmp_path):
    preset = _preset()
    run, _, state = _fit(tmp_path, "a", preset, _batches(preset))
    assert run.has_checkpoint()
    rows = run.read_metrics()
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert {
        "lr_glance",
        "train_loss",
        "train_classifier",
        "train_glance",
        "train_focus",
        "train_random_total",
        "train_seconds",
        "data_seconds",
        "val_top1",
    } <= set(rows[0])
    lrs = [float(r["lr_focus"]) for r in rows]
    assert lrs[0] == pytest.approx(preset.train.lr) and lrs[0] > lrs[1] > lrs[2] > 0  # per-epoch cosine
    # the last epoch's point is the run's full-split score (bench.runs.runner), not the curve set's
    assert [p["epoch"] for p in state.curve] == [1, 2]
    assert state.curve[1]["train_seconds"] >= state.curve[0]["train_seconds"] > 0
    assert state.clock.total == pytest.approx(sum(state.epoch_seconds))


def test_resume_after_interruption_equals_uninterrupted(tmp_path, monkeypatch):
    preset = _preset()
    batches = _batches(preset)
    _, straight, _ = _fit(tmp_path, "straight", preset, batches)

    real, calls = Driver._train_epoch, []

    def interrupted(self, *a, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, *a, **kw)

    monkeypatch.setattr(Driver, "_train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _fit(tmp_path, "resumed", preset, batches)
    monkeypatch.setattr(Driver, "_train_epoch", real)
    run, resumed, state = _fit(tmp_path, "resumed", preset, batches)  # same command again
    assert [int(r["epoch"]) for r in run.read_metrics()] == [1, 2, 3]
    a, b = straight.state_dict(), resumed.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # a finished run is not trained again
    _, _, again = _fit(tmp_path, "resumed", preset, batches)
    assert len(again.history) == 3


def test_nan_guard_stops_training(tmp_path):
    preset = _preset(lr=1e30)
    with pytest.raises(TrainingDivergedError):
        _fit(tmp_path, "nan", preset, _batches(preset, n=3))


def test_grad_clipping_is_applied_when_the_preset_has_it(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(driver_mod, "clip_gradients", lambda params, max_norm: seen.append(max_norm))
    preset = _preset(grad_clip=3.0, epochs=1)
    _fit(tmp_path, "clip", preset, _batches(preset, n=2))
    assert seen == [3.0, 3.0]
