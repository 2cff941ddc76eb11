"""Each V2 training technique, switched off, changes the step exactly as its name says."""

import pytest
import torch
import torch.nn.functional as F
from fixtures_plan import plan_stages

from adafocus_v2.losses import pass_loss
from adafocus_v2.method import lr_ratios
from adafocus_v2.objective import V2Objective
from bench.models import build_network
from bench.presets import get_preset

B = 3


@pytest.fixture(scope="module")
def preset():
    return get_preset("synthetic", "tiny", method="v2", frames=4)


def _net(preset, seed=0):
    torch.manual_seed(seed)
    return build_network(preset, num_classes=5)


def _batch(preset, seed=1):
    g = torch.Generator().manual_seed(seed)
    s = preset.input_size
    return torch.randn(B, preset.frames, 3, s, s, generator=g), torch.randint(0, 5, (B,), generator=g)


def _count_calls(module):
    calls = []
    module.register_forward_hook(lambda *a: calls.append(1))
    return calls


@pytest.mark.parametrize("diversity", [True, False])
def test_diversity_adds_exactly_one_random_focus_pass(preset, diversity):
    net = _net(preset)
    focus_calls, glance_calls = _count_calls(net.focus.backbone), _count_calls(net.glance.backbone)
    frames, labels = _batch(preset)
    parts = V2Objective(net, diversity=diversity)(frames, None, labels)
    assert len(focus_calls) == (2 if diversity else 1)
    assert len(glance_calls) == 1  # the random pass reuses the glance features
    assert ("random_total" in parts) == diversity


def test_diversity_loss_is_the_mean_of_policy_and_random_passes(preset):
    net = _net(preset).eval()  # no dropout / batch statistics: both computations see the same numbers
    frames, labels = _batch(preset)
    torch.manual_seed(5)
    parts = V2Objective(net, diversity=True)(frames, None, labels)
    out = net(frames, patch_mode="policy")
    policy = pass_loss(out, labels, aux_supervision=True)
    torch.manual_seed(5)
    random_out = net(frames, patch_mode="random")
    random = pass_loss(random_out, labels, aux_supervision=True)
    assert torch.allclose(parts["total"], (policy["total"] + random["total"]) / 2, atol=1e-5)
    assert torch.allclose(parts["random_total"], random["total"], atol=1e-5)


@pytest.mark.parametrize("aux", [True, False])
def test_aux_supervision_adds_frame_wise_glance_and_focus_terms(preset, aux):
    net = _net(preset).eval()
    frames, labels = _batch(preset)
    parts = V2Objective(net, aux_supervision=aux, diversity=False)(frames, None, labels)
    out = net(frames, patch_mode="policy")
    t = preset.frames
    ce = lambda logits: F.cross_entropy(logits.reshape(B * t, -1), labels.repeat_interleave(t))  # noqa: E731
    expected = ce(out["logits"]) + (ce(out["glance_logits"]) + ce(out["focus_logits"]) if aux else 0)
    assert set(parts) == ({"classifier", "glance", "focus", "total"} if aux else {"classifier", "total"})
    assert torch.allclose(parts["total"], expected, atol=1e-5)
    parts["total"].backward()
    head_grads = [p.grad for p in [*net.glance.head.parameters(), *net.focus.head.parameters()]]
    assert all(g is not None and g.abs().sum() > 0 for g in head_grads) == aux
    assert all(g is None for g in head_grads) == (not aux)


def _glance_grads(net, frames, labels, stop_gradient, fixed_locations=None):
    net.zero_grad(set_to_none=True)
    if fixed_locations is None:
        loss = V2Objective(net, diversity=False, stop_gradient=stop_gradient)(frames, None, labels)["total"]
    else:
        loss = pass_loss(net(frames, locations=fixed_locations), labels, aux_supervision=True)["total"]
    loss.backward()
    return torch.cat([p.grad.flatten() for p in net.glance.backbone.parameters()])


def test_stop_gradient_keeps_the_policy_gradient_out_of_the_glance(preset):
    net = _net(preset).eval()
    frames, labels = _batch(preset)
    with torch.no_grad():
        locations = net(frames)["locations"]
    without_policy_path = _glance_grads(net, frames, labels, True, fixed_locations=locations)
    stopped = _glance_grads(net, frames, labels, stop_gradient=True)
    through = _glance_grads(net, frames, labels, stop_gradient=False)
    # stop-gradient: the glance learns only from the classifier and its own head
    assert torch.allclose(stopped, without_policy_path, atol=1e-7)
    # without it, the policy's gradient (through the crop) reaches the glance too
    assert not torch.allclose(through, without_policy_path, atol=1e-6)
    # and the policy itself learns in both cases
    net.zero_grad(set_to_none=True)
    V2Objective(net, diversity=False)(frames, None, labels)["total"].backward()
    assert sum(float(p.grad.abs().sum()) for p in net.policy.parameters() if p.grad is not None) > 0


def test_parameter_groups_follow_the_papers_lr_ratios(preset):
    net = _net(preset)
    (stage,) = plan_stages("v2", net, preset, 5)
    stage.prepare()
    opt = stage.optimizer()
    lr = preset.train.lr
    lrs = {g["name"]: g["lr"] for g in opt.param_groups}
    t = preset.train  # the tiny preset's policy ratio is tuned (docs/tuning); the paper's are 0.5 / 0.1 / 5
    assert lrs == pytest.approx(
        {
            "glance": t.glance_lr_ratio * lr,
            "focus": lr,
            "policy": t.policy_lr_ratio * lr,
            "classifier": t.classifier_lr_ratio * lr,
        }
    )
    paper = get_preset("actnet", "paper", method="v2").train
    assert (paper.glance_lr_ratio, paper.policy_lr_ratio, paper.classifier_lr_ratio) == (0.5, 0.1, 5.0)
    n_params = sum(len(g["params"]) for g in opt.param_groups)
    assert n_params == len(list(net.parameters()))
    video = get_preset("jester", "paper", method="v2")  # the Sth-Sth/Jester scripts' ratio and clipping
    assert lr_ratios(video.train)["policy"] == 0.01 and video.grad_clip == 20.0
