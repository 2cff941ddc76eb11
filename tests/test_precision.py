"""--precision: resolution, what runs in low precision and what stays fp32, one setting per experiment."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from fixtures_plan import plan_stages

from bench.errors import UsageError
from bench.models import build_network
from bench.models.flops import count_flops
from bench.presets import get_preset
from bench.runs.config import RunConfig
from bench.runs.experiment import plan_runs
from bench.training import precision as prec
from bench.training.driver import make_update, train_step
from bench.training.runtime import DistEnv

CPU = torch.device("cpu")


def _cpu_flags() -> set:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return {
        f for line in text.splitlines() if line.startswith("flags") for f in line.split(":", 1)[1].split()
    }


def test_auto_is_bf16_on_a_cpu_with_native_bf16_and_fp32_without(monkeypatch):
    flags = _cpu_flags()
    if flags & {"avx512_bf16", "amx_bf16"}:  # this machine (AMD EPYC Zen 4: avx512_bf16): oneDNN must see it
        assert prec.cpu_has_native_bf16()
        assert prec.resolve_precision("auto", CPU) == "bf16"
    monkeypatch.setattr(prec, "cpu_has_native_bf16", lambda: False)
    assert prec.resolve_precision("auto", CPU) == "fp32"
    assert prec.resolve_precision(None, CPU) == "fp32"
    assert not prec.resolve_channels_last("auto", CPU)
    monkeypatch.setattr(prec, "cpu_has_native_bf16", lambda: True)
    assert prec.resolve_precision("auto", CPU) == "bf16"
    assert prec.resolve_channels_last("auto", CPU)  # measured faster at fp32 and bf16 on such CPUs
    for explicit in ("fp32", "bf16", "fp16"):
        assert prec.resolve_precision(explicit, CPU) == explicit
    assert prec.resolve_channels_last("off", CPU) is False and prec.resolve_channels_last("on", CPU)
    with pytest.raises(UsageError, match="--precision fp64: expected one of auto, fp32, bf16, fp16"):
        prec.resolve_precision("fp64", CPU)
    with pytest.raises(UsageError, match="--channels-last sideways"):
        prec.resolve_channels_last("sideways", CPU)


def test_only_fp16_scales_the_loss():
    assert not prec.grad_scaler(CPU, "bf16").is_enabled() and not prec.grad_scaler(CPU, "fp32").is_enabled()
    assert prec.grad_scaler(CPU, "fp16").is_enabled()


def test_fp32_region_inside_autocast_and_identity_outside():
    lin = torch.nn.Linear(4, 3)
    x = torch.randn(2, 4)
    assert torch.equal(prec.fp32(lin, x), lin(x))  # outside autocast: the plain call, bit for bit
    with prec.autocast(CPU, "bf16"):
        assert lin(x).dtype == torch.bfloat16
        y = prec.fp32(lin, x.bfloat16())
    assert y.dtype == torch.float32


def _batch(preset, b=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    s = preset.input_size
    return {
        "frames": torch.randn(b, preset.frames, 3, s, s, generator=g),
        "label": torch.randint(0, preset.num_classes, (b,), generator=g),
    }


@pytest.mark.parametrize("method", ["v1", "v2"])
def test_every_stage_runs_in_bf16_with_fp32_losses_and_log_probs(method, monkeypatch):
    torch.manual_seed(0)
    preset = get_preset("synthetic", "tiny", method=method)
    net = build_network(preset)
    env = DistEnv(device=CPU)
    dtypes = {}

    def spy(name, fn):  # records the dtype of what a piece returns during the steps
        def wrapped(*a, **k):
            out = fn(*a, **k)
            dtypes.setdefault(name, set()).add(out[0].dtype if isinstance(out, tuple) else out.dtype)
            return out

        return wrapped

    monkeypatch.setattr(net.glance, "forward", spy("glance", net.glance.forward))
    monkeypatch.setattr(net.classifier, "forward", spy("logits", net.classifier.forward))
    import torch.nn.functional as F

    monkeypatch.setattr(F, "cross_entropy", spy("loss", F.cross_entropy))
    from bench.models.policies import PolicyOutput

    monkeypatch.setattr(PolicyOutput, "log_prob", spy("log_prob", PolicyOutput.log_prob))
    for stage in plan_stages(method, net, preset, preset.num_classes):
        stage.prepare()
        before = {k: v.clone() for k, v in net.state_dict().items()}
        update = make_update(stage.optimizer(), prec.grad_scaler(CPU, "bf16"), stage.grad_clip, env)
        parts = train_step(stage, _batch(preset), update, CPU, "bf16")
        assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in parts.values()), stage.name
        changed = [
            k for k, v in net.state_dict().items() if v.is_floating_point() and not torch.equal(v, before[k])
        ]
        assert changed, f"{stage.name} updated nothing"
        assert all(
            before[k].dtype == net.state_dict()[k].dtype == torch.float32 for k in changed
        )  # fp32 masters
    assert dtypes["glance"] == {torch.bfloat16}  # the convolutions did run in bf16
    assert dtypes["logits"] == {torch.float32} and dtypes["loss"] == {torch.float32}
    if method == "v1":
        assert dtypes["log_prob"] == {torch.float32}  # stage 2's policy gradient


def test_policy_outputs_and_rl_terms_are_fp32_under_autocast():
    from adafocus_v1 import rl
    from adafocus_v1.method import rl_config
    from adafocus_v1.stage2 import sample_actions

    torch.manual_seed(0)
    preset = get_preset("synthetic", "tiny", method="v1")
    net = build_network(preset).train()
    with prec.autocast(CPU, "bf16"):
        maps, _ = net.glance_forward(_batch(preset)["frames"])
        out = net.policy_forward(maps)
        actions, _ = sample_actions(out)
        returns = rl.episode_returns(torch.rand(actions.shape), rl_config(preset.train))
        loss, _ = rl.ppo_loss(
            out.log_prob(actions),
            out.log_prob(actions),
            returns,
            out.value,
            out.entropy(),
            rl_config(preset.train),
        )
    assert maps.dtype == torch.bfloat16
    assert out.params.dtype == out.value.dtype == out.entropy().dtype == torch.float32
    assert loss.dtype == torch.float32


def test_a_matched_experiment_runs_every_method_at_one_resolved_precision(monkeypatch, tmp_path):
    monkeypatch.setattr(prec, "cpu_has_native_bf16", lambda: True)
    base = RunConfig(method="v1", device="cpu", runs_dir=str(tmp_path), precision="auto")
    plans = plan_runs(base, ["v1", "v2"], seeds=[0, 1])
    assert {c.precision for c in plans} == {"bf16"} and len(plans) == 4
    monkeypatch.setattr(prec, "cpu_has_native_bf16", lambda: False)
    assert {c.precision for c in plan_runs(base, ["v1", "v2"])} == {"fp32"}
    # precision is part of what a run computes: another precision, another run directory
    fp32, bf16 = (RunConfig(method="v2", device="cpu", precision=p) for p in ("fp32", "bf16"))
    assert fp32.config_hash() != bf16.config_hash()
    assert RunConfig(method="v2", device="cpu", precision="auto").config_hash() == fp32.config_hash()
    # the memory layout only changes speed
    assert (
        RunConfig(method="v2", device="cpu", channels_last="on").config_hash()
        == RunConfig(method="v2", device="cpu", channels_last="off").config_hash()
    )


@pytest.mark.parametrize("method", ["v1", "v2"])
def test_flops_do_not_depend_on_precision_or_layout(method):
    preset = get_preset("synthetic", "tiny", method=method)
    net = build_network(preset)
    fp32 = count_flops(net, preset).to_dict()
    prec.prepare_network(net, channels_last=True)
    with prec.autocast(CPU, "bf16"):
        bf16 = count_flops(net, preset).to_dict()
    assert fp32["gflops_per_video"] > 0
    assert bf16["gflops_per_video"] == fp32["gflops_per_video"]
    assert bf16["by_component"] == fp32["by_component"] and bf16["unsupported"] == fp32["unsupported"]


def test_compile_that_cannot_build_is_one_line(monkeypatch):
    def broken(fn, *a, **k):
        def call(*args):
            raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found\nlong traceback")

        return call

    monkeypatch.setattr(torch, "compile", broken)
    with pytest.raises(UsageError) as e:
        prec.prepare_network(torch.nn.Linear(2, 2), channels_last=False, compile=True)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("--compile: torch.compile does not work on cpu")
    assert "No working C++ compiler" in msg and "run without --compile" in msg
