"""V2Trainer on a handful of in-memory tiny videos: epochs, checkpoints, metrics, resume."""
import pytest
import torch

import adafocus_v2.trainer as trainer_mod
from adafocus_v2.trainer import V2Trainer
from bench.errors import TrainingDivergedError
from bench.models import build_network
from bench.presets import get_preset
from bench.rundir import RunDir

K = 4


def _preset(**kw):
    small = dict(frames=4, epochs=3, batch_size=4, input_size=32, resize=32, patch_size=16, classifier_hidden=32,
                 policy_hidden=(32,))
    return get_preset("synthetic", "tiny", method="v2", **{**small, **kw})


def _batches(preset, n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    s = preset.input_size
    return [{"frames": torch.randn(4, preset.frames, 3, s, s, generator=g),
             "label": torch.randint(0, K, (4,), generator=g)} for _ in range(n)]


def _trainer(preset, seed=0, **kw):
    torch.manual_seed(seed)
    return V2Trainer(build_network(preset, num_classes=K), preset, torch.device("cpu"), **kw)


def _fit(tmp_path, name, preset, batches, **kw):
    run = RunDir(tmp_path / name).create()
    t = _trainer(preset)
    state = t.fit(run, batches, evaluate_fn=lambda e: {"top1": 0.5, "map": None}, eval_epochs=[0, 1], **kw)
    return run, t, state


def test_fit_writes_checkpoint_metrics_and_curve(tmp_path):
    preset = _preset()
    run, t, state = _fit(tmp_path, "a", preset, _batches(preset))
    assert state.epoch == preset.epochs - 1 and run.has_checkpoint()
    rows = run.read_metrics()
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert {"lr", "train_loss", "loss_classifier", "loss_glance", "loss_focus", "loss_random_total",
            "train_seconds", "data_seconds", "val_top1"} <= set(rows[0])
    lrs = [float(r["lr"]) for r in rows]
    assert lrs[0] == pytest.approx(preset.lr) and lrs[0] > lrs[1] > lrs[2] > 0  # per-epoch cosine
    assert [p["epoch"] for p in state.curve] == [1, 2]
    assert state.curve[1]["train_seconds"] >= state.curve[0]["train_seconds"] > 0
    assert state.clock.total == pytest.approx(sum(state.epoch_seconds))


def test_resume_after_interruption_equals_uninterrupted(tmp_path, monkeypatch):
    preset = _preset()
    batches = _batches(preset)
    _, straight, _ = _fit(tmp_path, "straight", preset, batches)

    real = trainer_mod.train_one_epoch
    calls = []

    def interrupted(*a, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(trainer_mod, "train_one_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _fit(tmp_path, "resumed", preset, batches)
    monkeypatch.setattr(trainer_mod, "train_one_epoch", real)
    run, resumed, state = _fit(tmp_path, "resumed", preset, batches)  # same command again
    assert [int(r["epoch"]) for r in run.read_metrics()] == [1, 2, 3]
    a, b = straight.net.state_dict(), resumed.net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # a finished run is not trained again
    again_run, again, again_state = _fit(tmp_path, "resumed", preset, batches)
    assert again_state.epoch == preset.epochs - 1 and len(again_state.history) == 3


def test_nan_guard_stops_training(tmp_path):
    preset = _preset(lr=1e30)
    batches = _batches(preset, n=3)
    with pytest.raises(TrainingDivergedError):
        _fit(tmp_path, "nan", preset, batches)


def test_grad_clipping_is_applied_when_the_preset_has_it(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(trainer_mod, "clip_gradients", lambda params, max_norm: seen.append(max_norm))
    preset = _preset(grad_clip=3.0, epochs=1)
    _fit(tmp_path, "clip", preset, _batches(preset, n=2))
    assert seen == [3.0, 3.0]
