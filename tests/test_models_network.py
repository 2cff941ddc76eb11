"""AdaFocusNet composition, gradient flow, presets and build_network."""

import dataclasses

import pytest
import torch

from bench.errors import UsageError
from bench.models import AdaFocusNet, build_network, without_weight_files
from bench.presets import Preset, get_preset


def _batch(p, b=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    frames = torch.randn(b, p.frames, 3, p.input_size, p.input_size, generator=g)
    glance = (
        torch.randn(b, p.glance_frames, 3, p.input_size, p.input_size, generator=g)
        if p.glance_frames
        else None
    )
    return frames, glance


@pytest.mark.parametrize("dataset", ["synthetic", "jester"])
@pytest.mark.parametrize("method", ["v1", "v2"])
@pytest.mark.parametrize("arch", ["matched", "paper"])
def test_tiny_networks_forward_shapes(dataset, method, arch):
    p = get_preset(dataset, "tiny", method=method, arch=arch)
    net = build_network(without_weight_files(p))
    frames, glance = _batch(p)
    k, t, tg = p.num_classes, p.frames, p.glance_frames or p.frames
    for mode in ("policy", "random", "centre"):
        out = net(frames, glance, patch_mode=mode, policy_mode="sample")
        steps = t if p.variant == "frame" else 1
        assert out["logits"].shape == (4, steps, k)
        assert out["glance_logits"].shape == (4, tg, k) and out["focus_logits"].shape == (4, t, k)
        assert out["locations"].shape == (4, t, 2)
        assert out["glance_feats"].shape[:2] == (4, tg) and out["focus_feats"].shape[:2] == (4, t)
        assert (out["policy"] is not None) == (mode == "policy")
    if p.variant == "video":  # one location per video, broadcast to every focus frame
        assert torch.all(out["locations"] == out["locations"][:, :1])
    assert (net.policy.value is not None) == (method == "v1")


def test_locations_override_and_pieces_compose():
    p = get_preset("synthetic", "tiny", method="v2")
    net = build_network(without_weight_files(p)).eval()
    frames, _ = _batch(p)
    loc = torch.rand(4, p.frames, 2)
    out = net(frames, locations=loc, aux=False)
    assert torch.equal(out["locations"], loc) and out["glance_logits"] is None and out["policy"] is None
    maps, gfeat = net.glance_forward(frames)
    ffeat = net.focus_forward(frames, loc)
    assert torch.allclose(net.classify(gfeat, ffeat), out["logits"], atol=1e-5)
    pol = net.policy_forward(maps)
    assert torch.allclose(net(frames)["locations"], pol.locations("greedy"), atol=1e-6)
    centre = net(frames, patch_mode="centre")["locations"]
    assert torch.all(centre == 0.5)


def test_policy_learns_through_interp_crop_and_stop_gradient_isolates_glance():
    torch.manual_seed(0)
    p = get_preset("synthetic", "tiny", method="v2")
    net = build_network(without_weight_files(p))
    frames, _ = _batch(p)

    def grads(detach):
        net.zero_grad(set_to_none=True)
        out = net(frames, detach_glance=detach)
        # focus logits depend on the glance network only through the policy's locations
        out["focus_logits"].logsumexp(-1).sum().backward()
        glance = [q.grad for q in net.glance.backbone.parameters()]
        policy = [q.grad for q in net.policy.parameters()]
        return glance, policy

    glance, policy = grads(detach=True)
    assert any(g is not None and g.abs().sum() > 0 for g in policy)
    assert all(g is None or g.abs().sum() == 0 for g in glance)
    glance, policy = grads(detach=False)
    assert any(g is not None and g.abs().sum() > 0 for g in policy)
    assert any(g is not None and g.abs().sum() > 0 for g in glance)


def test_hard_crop_gives_the_policy_no_gradient():
    p = get_preset("synthetic", "tiny", method="v2", crop="hard")
    net = build_network(without_weight_files(p))
    frames, _ = _batch(p)
    net(frames)["focus_logits"].sum().backward()
    assert all(q.grad is None or q.grad.abs().sum() == 0 for q in net.policy.parameters())


def test_v1_sampled_actions_can_be_rescored():
    p = get_preset("synthetic", "tiny", method="v1")
    net = build_network(without_weight_files(p))
    frames, _ = _batch(p)
    out = net(frames, policy_mode="sample")
    assert out["actions"].shape == (4, p.frames) and out["actions"].dtype == torch.long
    lp, ent, value = net.policy.evaluate(out["glance_maps"], out["actions"])
    assert torch.allclose(lp, out["policy"].log_prob(out["actions"]), atol=1e-6)
    assert value.shape == (4, p.frames) and ent.shape == (4, p.frames)


def test_paper_network_forward_at_batch_1():
    p = get_preset("jester", "paper", method="v1", arch="paper")
    net = build_network(without_weight_files(p)).eval()
    assert net.glance.backbone.out_channels == 1280 and net.focus.backbone.out_channels == 2048
    frames, glance = _batch(p, b=1)
    with torch.no_grad():
        out = net(frames, glance)
    assert out["logits"].shape == (1, 1, 27) and out["locations"].shape == (1, 12, 2)
    assert out["policy"].head == "gaussian"


def test_matched_presets_share_everything_but_the_method_parts():
    v1 = get_preset("actnet", "paper", method="v1")
    v2 = get_preset("actnet", "paper", method="v2")
    diff = {f.name for f in dataclasses.fields(Preset) if getattr(v1, f.name) != getattr(v2, f.name)}
    assert diff == {"method", "policy_head", "crop", "policy_value_head", "train"}
    assert (v1.policy_head, v2.policy_head, v1.crop, v2.crop) == ("categorical", "sigmoid", "hard", "interp")
    n1, n2 = (
        build_network(get_preset("synthetic", "tiny", method="v1")),
        build_network(get_preset("synthetic", "tiny", method="v2")),
    )
    s1, s2 = n1.state_dict(), n2.state_dict()
    shared = [k for k in s1 if not k.startswith(("policy.action", "policy.value"))]
    assert shared and all(k in s2 and s1[k].shape == s2[k].shape for k in shared)


def test_paper_preset_values_follow_the_papers():
    p = get_preset("actnet", "paper", method="v2", arch="paper")
    t = p.train
    assert (p.frames, p.patch_size, t.lr, t.batch_size, p.classifier_hidden, p.policy_hidden) == (
        16,
        128,
        0.002,
        32,
        4096,
        (2048,),
    )
    assert (t.glance_lr_ratio, t.policy_lr_ratio, t.classifier_lr_ratio, t.epochs) == (0.5, 0.1, 5.0, 50)
    m = get_preset("minik", "paper", method="v2")
    assert (m.train.lr, m.train.batch_size) == (0.003, 48)
    v1 = get_preset("actnet", "paper", method="v1", arch="paper")
    assert (v1.classifier, v1.classifier_hidden, v1.policy_hidden, v1.grid_n**2) == ("gru", 1024, (1024,), 49)
    h = v1.train
    assert (h.pretrain_epochs, h.stage1_epochs, h.stage2_epochs, h.stage3_epochs) == (15, 50, 50, 10)
    assert (h.ppo_clip, h.value_weight, h.entropy_weight, h.gamma, h.policy_lr) == (0.2, 0.5, 0.01, 0.7, 3e-4)
    s = get_preset("sthv2", "paper", method="v2")
    assert (s.frames, s.glance_frames, s.train.lr, s.weight_decay, s.train.policy_lr_ratio, s.grad_clip) == (
        12,
        8,
        0.01,
        5e-4,
        0.01,
        20.0,
    )
    assert (s.glance_backbone, s.focus_backbone, s.classifier) == ("tsm_mbv2", "tsm_res50", "tsn")
    r = get_preset("fcvid", "paper", method="v2", glance_arch="res50")
    assert (r.glance_backbone, r.glance_size, r.num_classes) == ("res50", 96, 239)


def test_overrides_are_typed_and_validated():
    p = get_preset("synthetic", "tiny", method="v2", patch_size="16", lr="0.1", policy_hidden="[64]")
    assert (p.patch_size, p.train.lr, p.policy_hidden) == (16, 0.1, (64,))
    with pytest.raises(UsageError, match="unknown preset field"):
        get_preset("synthetic", "tiny", method="v2", nonsense=1)
    with pytest.raises(UsageError, match="expected int"):
        get_preset("synthetic", "tiny", method="v2", patch_size="big")
    with pytest.raises(UsageError, match="patch size"):
        get_preset("synthetic", "tiny", method="v2", patch_size=65)
    with pytest.raises(UsageError, match="unknown dataset"):
        get_preset("kinetics", "tiny", method="v2")
    with pytest.raises(UsageError, match="unknown method"):
        get_preset("synthetic", "tiny", method="v3")
    with pytest.raises(UsageError, match="paper presets"):
        get_preset("synthetic", "tiny", method="v2", glance_arch="res50")
    for bad in ("lr=-1", "lr=", "lr=nan", "lr=inf", "batch_size=99999999999999999999", "epochs=0"):
        key, value = bad.split("=")
        with pytest.raises(UsageError, match=key):
            get_preset("synthetic", "tiny", method="v2", **{key: value})


def test_network_rejects_mismatched_parts():
    p = get_preset("jester", "tiny", method="v2")
    net = build_network(without_weight_files(p))
    with pytest.raises(ValueError):
        AdaFocusNet(net.glance, net.focus, net.policy, net.classifier, patch_size=24, variant="frame")
    with pytest.raises(ValueError):
        net(*_batch(p), patch_mode="everywhere")


def test_synthetic_class_count_matches_the_generator_default():
    synthetic = pytest.importorskip("bench.data.synthetic")
    assert get_preset("synthetic", "tiny", method="v2").num_classes == synthetic.SynthParams().classes


def test_tiny_glance_sees_the_whole_frame_with_a_narrower_network():
    """As in the papers, f_G reads the full frame (no resize); it is cheaper than f_L by being narrower."""
    p = get_preset("synthetic", "tiny", method="v2")
    net = build_network(without_weight_files(p))
    assert net.glance.glance_size is None and not net.glance.antialias
    frame = torch.randn(1, 3, p.input_size, p.input_size)
    assert torch.equal(net.glance.resize(frame), frame)
    assert net.glance.out_channels * 4 == net.focus.out_channels
    assert net.glance.map_size(p.input_size) == 7  # the paper's 7x7 glance map
