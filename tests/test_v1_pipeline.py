"""The V1 pipeline end to end on a tiny synthetic set: stages, frozen modules, resume, errors.

Each full run trains all four stages for one or two epochs on 16 tiny videos (a few seconds).
"""

from __future__ import annotations

import hashlib

import pytest
import torch

import adafocus_v1.method as method_mod
from adafocus_v1.stages import STAGE_NAMES, apply_stage_modes, stage_specs
from bench.errors import UsageError
from bench.models import build_network
from bench.presets import get_preset
from bench.runs.config import RunConfig
from bench.runs.resolved import ResolvedRun
from bench.runs.rundir import RunDir
from bench.runs.runner import run_method
from bench.training.checkpoint import read_checkpoint

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
    pretrain_epochs=1,
    stage1_epochs=2,
    stage2_epochs=2,
    stage3_epochs=1,
)
OPTION_FIELDS = {"rl": "rl_algorithm", "reward": "reward", "stage3": "stage3"}


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    """Tiny ops on a shared machine: one intra-op thread (the runner would take every free core)."""
    import bench.runs.runner as runner

    monkeypatch.setattr(runner, "cpu_threads", lambda *a, **kw: 1)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    from bench.data import generate_synthetic

    out = tmp_path_factory.mktemp("synth") / "set"
    return str(
        generate_synthetic(
            out, classes=2, videos_per_class=(8, 4), frames=4, size=32, object_size=8, clutter=2, workers=1
        )
    )


def _cfg(tmp_path, data_root, name="runs", **kw) -> RunConfig:
    sets = {OPTION_FIELDS[k]: kw.pop(k) for k in list(kw) if k in OPTION_FIELDS}
    cfg = RunConfig(
        method="v1",
        dataset="synthetic",
        data_root=data_root,
        preset="tiny",
        seed=3,
        device="cpu",
        runs_dir=str(tmp_path / name),
        num_workers=0,
        progress=False,
        quiet=True,
        overrides={**SMALL, **sets},
        **kw,
    )
    cfg.patch_size = SMALL["patch_size"]
    return cfg


def _run(cfg: RunConfig):
    resolved = ResolvedRun.of(cfg)
    run = RunDir.for_run(resolved)
    return run_method(resolved, run), run


@pytest.fixture(scope="module")
def straight(tmp_path_factory, data_root):
    """(runs parent, summary, run) of the default configuration's uninterrupted run, trained once for the
    module: the reference the resume tests compare with. Tests only read it (a complete run is never
    re-trained). One thread, as the ``_one_thread`` fixture gives every test (the results must be equal)."""
    import bench.runs.runner as runner

    tmp = tmp_path_factory.mktemp("straight")
    n = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner, "cpu_threads", lambda *a, **kw: 1)
        torch.set_num_threads(1)
        try:
            summary, run = _run(_cfg(tmp, data_root, "a"))
        finally:
            torch.set_num_threads(n)
    return tmp, summary, run


def _weights(run: RunDir, ckpt: str = "last.pt"):
    return read_checkpoint(run.checkpoints_dir / ckpt)["modules"]["net"]


def _metrics_of(summary):
    keys = ("top1", "patch_eval", "coverage", "after_stage2", "stages_run")
    return {k: summary[k] for k in keys}


def test_full_run_summary_checkpoints_and_metrics(tmp_path, data_root):
    summary, run = _run(_cfg(tmp_path, data_root, rl="reinforce", stage3="official"))
    assert run.is_complete()
    assert summary["stages_run"] == list(STAGE_NAMES)
    assert set(summary["stage_seconds"]) == set(STAGE_NAMES)
    assert all(s > 0 for s in summary["stage_seconds"].values())
    assert summary["train_seconds"] == pytest.approx(sum(summary["stage_seconds"].values()))
    assert summary["stage_device_seconds"] == {
        k: v * summary["world_size"] for k, v in summary["stage_seconds"].items()
    }
    assert summary["rl"] == "reinforce" and summary["stage3_mode"] == "official"
    assert set(summary["patch_eval"]) == {"learned", "random", "centre"}
    assert set(summary["after_stage2"]["patch_eval"]) == {"learned", "random", "centre"}
    assert summary["gflops_per_video"] > 0 and summary["coverage"] is not None
    for name in STAGE_NAMES:
        assert run.stage_checkpoint(name).is_file()
    rows = run.read_metrics()
    assert [r["stage"] for r in rows] == ["stage0", "stage1", "stage1", "stage2", "stage2", "stage3"]
    s2 = [r for r in rows if r["stage"] == "stage2"]
    assert all(r["train_reward"] != "" and r["val_top1"] != "" and r["val_random_top1"] != "" for r in s2)
    assert [p["stage"] for p in summary["curve"]] == ["stage1", "stage1", "stage2", "stage2", "stage3"]


def frozen_fingerprint(module: torch.nn.Module) -> str:
    """SHA-1 over the names, dtypes, shapes and exact bytes of all parameters and buffers (BatchNorm running
    statistics included): equal fingerprints mean bit-identical."""
    h = hashlib.sha1()
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _fingerprints(cfg: RunConfig, run: RunDir, stage: str):
    preset = get_preset("synthetic", "tiny", method="v1", **cfg.overrides)
    net = build_network(preset, num_classes=2)
    net.load_state_dict(_weights(run, f"{stage}.pt"))
    parts = ("glance", "focus.backbone", "focus.head", "policy", "classifier")
    return {p: frozen_fingerprint(net.get_submodule(p)) for p in parts}


@pytest.mark.parametrize("stage3", ["paper", "official"])
def test_frozen_modules_and_bn_buffers_are_bit_identical(tmp_path, data_root, straight, stage3):
    if stage3 == "paper":  # the default: the module's reference run
        tmp, summary, run = straight
        cfg = _cfg(tmp, data_root, "a")
        assert summary["stage3_mode"] == "paper"
    else:
        cfg = _cfg(tmp_path, data_root, stage3=stage3)
        _, run = _run(cfg)
    fp = {s: _fingerprints(cfg, run, s) for s in STAGE_NAMES}
    unchanged = {
        "stage1": ("glance", "focus.head", "policy"),
        "stage2": ("glance", "focus.backbone", "focus.head", "classifier"),
        "stage3": ("glance", "focus.head", "policy") + (("focus.backbone",) if stage3 == "official" else ()),
    }
    changed = {
        "stage1": ("focus.backbone", "classifier"),
        "stage2": ("policy",),
        "stage3": ("classifier",) + (("focus.backbone",) if stage3 == "paper" else ()),
    }
    for k in (1, 2, 3):
        before, after = fp[STAGE_NAMES[k - 1]], fp[STAGE_NAMES[k]]
        for part in unchanged[STAGE_NAMES[k]]:
            assert before[part] == after[part], f"{part} changed in stage {k}"
        for part in changed[STAGE_NAMES[k]]:
            assert before[part] != after[part], f"{part} did not train in stage {k}"
    stats = [
        {
            k: v
            for k, v in _weights(run, f"{s}.pt").items()
            if k.startswith("focus.backbone.")
            and k.rsplit(".", 1)[-1] in ("running_mean", "running_var", "num_batches_tracked")
        }
        for s in STAGE_NAMES[2:]
    ]
    assert stats[0] and all(torch.equal(stats[0][k], stats[1][k]) for k in stats[0])  # f_L BN statistics kept


def test_stage_modes_are_explicit():
    preset = get_preset("synthetic", "tiny", method="v1", **SMALL)
    net = build_network(preset, num_classes=2)
    specs = stage_specs(preset.train)
    net.train()
    apply_stage_modes(net, specs[2])
    assert net.policy.training and all(m.training for m in net.policy.modules())
    for part in (net.glance, net.focus, net.classifier):
        assert not any(m.training for m in part.modules())
        assert not any(p.requires_grad for p in part.parameters())
    apply_stage_modes(net, specs[1])
    assert net.focus.backbone.training and not net.focus.head.training and net.classifier.training
    assert not net.focus.head.fc.weight.requires_grad and net.focus.backbone.stages[0][0].weight.requires_grad
    # stage 3 (paper) tunes f_L's weights with its BatchNorm statistics frozen, as the original keeps f_L in
    # eval
    apply_stage_modes(net, specs[3])
    bns = [m for m in net.focus.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    convs = [m for m in net.focus.backbone.modules() if isinstance(m, torch.nn.Conv2d)]
    assert bns and not any(m.training for m in bns) and all(m.training for m in convs)
    assert all(p.requires_grad for m in bns for p in m.parameters())


def test_resume_between_stages_equals_uninterrupted(tmp_path, data_root, straight):
    _, straight, run_a = straight
    first, _ = _run(_cfg(tmp_path, data_root, "b", stages=(0, 1)))
    assert "stage2" not in first["stage_seconds"]
    assert not RunDir.for_config(_cfg(tmp_path, data_root, "b")).is_complete()
    resumed, run_b = _run(_cfg(tmp_path, data_root, "b", stages=(2, 3)))
    assert _metrics_of(resumed) == _metrics_of(straight)
    assert set(resumed["stage_seconds"]) == set(STAGE_NAMES)
    wa, wb = _weights(run_a), _weights(run_b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_resume_mid_stage_after_interruption(tmp_path, data_root, straight, monkeypatch):
    _, straight, run_a = straight
    real, calls = method_mod.rl_step, []

    def interrupted(*a, **kw):  # dies in the second epoch of stage 2
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(method_mod, "rl_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _run(_cfg(tmp_path, data_root, "c"))
    run_c = RunDir.for_config(_cfg(tmp_path, data_root, "c"))
    blob = read_checkpoint(run_c.last_checkpoint)
    assert (blob["stage"], blob["epoch"]) == ("stage2", 0)
    monkeypatch.setattr(method_mod, "rl_step", real)
    resumed, run_c = _run(_cfg(tmp_path, data_root, "c"))
    assert _metrics_of(resumed) == _metrics_of(straight)
    wa, wc = _weights(run_a), _weights(run_c)
    assert all(torch.equal(wa[k], wc[k]) for k in wa)
    assert len(run_c.read_metrics()) == len(run_a.read_metrics())


def test_later_stages_need_the_previous_checkpoint(tmp_path, data_root):
    cfg = _cfg(tmp_path, data_root, stages=(2, 3))
    with pytest.raises(UsageError, match="stage1.pt"):
        _run(cfg)


def test_completed_run_is_returned_and_not_overwritten(data_root, straight):
    tmp, summary, run = straight
    stamp = run.last_checkpoint.stat().st_mtime_ns
    again, _ = _run(_cfg(tmp, data_root, "a", stages=(2, 3)))
    assert again == summary
    with pytest.raises(UsageError, match="already trained stage 3"):
        _run(_cfg(tmp, data_root, "a", stages=(0, 1)))
    assert run.is_complete() and run.last_checkpoint.stat().st_mtime_ns == stamp


def test_cli_rejects_bad_stages_in_one_line(capsys):
    from cli import main

    with pytest.raises(SystemExit) as e:
        main(["run", "--method", "v1", "--stages", "1,3"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "--stages" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("reward", ["prev", "conf"])
def test_other_rewards_run(tmp_path, data_root, reward):
    summary, run = _run(_cfg(tmp_path, data_root, reward=reward))
    assert summary["reward"] == reward and run.is_complete()
    s2 = [r for r in run.read_metrics() if r["stage"] == "stage2"]
    assert len(s2) == 2 and all(float(r["train_reward"]) == float(r["train_reward"]) for r in s2)  # not NaN


def test_ppo_with_one_epoch_equals_reinforce_and_more_epochs_differ(tmp_path, data_root):
    """K = 1: the ratio is 1 where the gradient is taken, so PPO's update is REINFORCE's (same seed,
    same samples -> the same policy). K = 2 reuses each batch and ends elsewhere."""
    policies = {}
    for name, rl_name, k in (("ppo1", "ppo", 1), ("reinforce", "reinforce", 1), ("ppo2", "ppo", 2)):
        cfg = _cfg(tmp_path, data_root, name, rl=rl_name, stages=(0, 1, 2))
        cfg.overrides["ppo_epochs"] = k
        _, run = _run(cfg)
        w = _weights(run, "stage2.pt")
        policies[name] = {n: t for n, t in w.items() if n.startswith("policy.")}
    same = [
        torch.allclose(policies["ppo1"][n], policies["reinforce"][n], atol=1e-6) for n in policies["ppo1"]
    ]
    assert all(same)
    assert not all(
        torch.allclose(policies["ppo1"][n], policies["ppo2"][n], atol=1e-6) for n in policies["ppo1"]
    )
