"""Backbones, temporal shift, policies and classifiers: shapes, semantics, state-dict loading."""

import pytest
import torch

from bench.errors import UsageError
from bench.models import (
    BACKBONES,
    GRUClassifier,
    PerStepHeads,
    PoolingClassifier,
    RecurrentPolicy,
    TSNAverage,
    VideoPolicy,
    create_backbone,
    grid_positions,
    temporal_shift,
)


# ----------------------------------------------------------------------------- backbones
@pytest.mark.parametrize(
    "name,size,channels", [("tiny", 32, 128), ("tiny", 24, 128), ("mbv2", 64, 1280), ("res50", 96, 2048)]
)
def test_backbone_shapes_and_map_size(name, size, channels):
    net = create_backbone(name).eval()
    with torch.no_grad():
        fmap, pooled = net(torch.randn(2, 3, size, size))
    side = net.map_size(size)
    assert fmap.shape == (2, channels, side, side) and pooled.shape == (2, channels)
    assert net.out_channels == channels
    assert torch.allclose(pooled, fmap.mean((2, 3)), atol=1e-5)


def test_registry_lists_all_backbones():
    assert set(BACKBONES.names()) >= {"mbv2", "res50", "tsm_mbv2", "tsm_res50", "tiny", "tiny_tsm"}


def test_temporal_shift_moves_one_eighth_each_way():
    t, c = 3, 16
    x = torch.arange(1.0, t + 1).view(t, 1, 1, 1).expand(t, c, 2, 2).contiguous()  # value = frame index
    y = temporal_shift(x, t, 8)[:, :, 0, 0]
    assert y[:, :2].tolist() == [[2, 2], [3, 3], [0, 0]]  # next frame's channels, zero at the end
    assert y[:, 2:4].tolist() == [[0, 0], [1, 1], [2, 2]]  # previous frame's channels
    assert torch.equal(y[:, 4:], x[:, 4:, 0, 0])
    with pytest.raises(ValueError):
        temporal_shift(torch.randn(5, 8, 2, 2), 3)


@pytest.mark.parametrize("name", ["tiny_tsm", "tsm_mbv2", "tsm_res50"])
def test_tsm_backbones_mix_neighbouring_frames_only(name):
    torch.manual_seed(0)
    net = create_backbone(name, num_segments=3).eval()
    plain = create_backbone(name.replace("tsm_", "").replace("_tsm", "")).eval()
    plain.load_state_dict(net.state_dict())  # same parameter names as the plain net
    x = torch.randn(6, 3, 32, 32)  # 2 videos x 3 frames
    x2 = x.clone()
    x2[1] += 1.0  # change frame 1 of video 0
    with torch.no_grad():
        a, b = net(x)[1], net(x2)[1]
        p, q = plain(x)[1], plain(x2)[1]
    scale = a.abs().max()  # random-init activations can be tiny
    assert (a[0] - b[0]).abs().max() > 1e-3 * scale  # frame 0 sees frame 1 through the shift
    assert (a[3:] - b[3:]).abs().max() <= 1e-5 * scale  # the other video is untouched
    assert (p[0] - q[0]).abs().max() <= 1e-5 * scale  # no shift, no mixing


def test_tsm_backbone_needs_segments():
    with pytest.raises(UsageError, match="num_segments"):
        create_backbone("tsm_res50")


def test_pretrained_path_loads_and_mismatch_is_one_clear_error(tmp_path):
    src = create_backbone("tiny")
    path = tmp_path / "w.pt"
    torch.save({"state_dict": {"module." + k: v for k, v in src.state_dict().items()}}, path)
    dst = create_backbone("tiny", pretrained=str(path))
    assert all(torch.equal(a, b) for a, b in zip(src.state_dict().values(), dst.state_dict().values()))
    torch.save(create_backbone("mbv2").state_dict(), tmp_path / "other.pt")
    with pytest.raises(UsageError, match="does not match the architecture.*missing"):
        create_backbone("tiny", pretrained=str(tmp_path / "other.pt"))
    with pytest.raises(UsageError, match="does not exist"):
        create_backbone("tiny", pretrained=str(tmp_path / "nope.pt"))
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    with pytest.raises(UsageError, match="cannot read"):
        create_backbone("tiny", pretrained=str(tmp_path / "junk.pt"))
    with pytest.raises(UsageError, match="no ImageNet weights"):
        create_backbone("tiny", pretrained="imagenet")


def test_torchvision_state_dict_with_classifier_loads(tmp_path):
    from torchvision.models import mobilenet_v2

    tv = mobilenet_v2(weights=None)
    torch.save(tv.state_dict(), tmp_path / "tv.pt")
    net = create_backbone("mbv2", pretrained=str(tmp_path / "tv.pt"))
    assert torch.equal(net.features[0][0].weight, tv.features[0][0].weight)


# ----------------------------------------------------------------------------- policies
def _maps(b=3, t=4, c=16, s=4):
    return torch.randn(b, t, c, s, s)


@pytest.mark.parametrize("head", ["categorical", "gaussian", "sigmoid"])
def test_recurrent_policy_heads(head):
    torch.manual_seed(0)
    pol = RecurrentPolicy(16, 4, 32, head, grid_n=5)
    maps = _maps()
    out = pol(maps)
    assert out.hidden.shape == (3, 4, 32) and out.value.shape == (3, 4)
    for mode in ("greedy", "sample"):
        actions, loc = out.act(mode)
        assert loc.shape == (3, 4, 2) and 0 <= loc.min() and loc.max() <= 1
    if head == "categorical":
        actions, loc = out.act("sample")
        assert actions.shape == (3, 4) and actions.dtype == torch.long
        assert torch.equal(loc, grid_positions(5)[actions])
        assert torch.equal(out.act("greedy")[0], out.params.argmax(-1))
    if head == "sigmoid":
        with pytest.raises(ValueError):
            out.log_prob(out.params)
        assert out.act("greedy")[1].requires_grad  # V2 trains through the location
        return
    actions, _ = out.act("sample")
    lp, ent, value = pol.evaluate(maps, actions)
    assert lp.shape == ent.shape == value.shape == (3, 4)
    assert torch.allclose(lp, out.log_prob(actions)) and torch.allclose(ent, out.entropy())
    lp.sum().backward()
    assert pol.action.weight.grad.abs().sum() > 0


def test_gaussian_log_prob_matches_torch_normal():
    pol = RecurrentPolicy(16, 4, 32, "gaussian", std=0.25)
    out = pol(_maps())
    a = torch.rand(3, 4, 2)
    ref = torch.distributions.Normal(out.params, 0.25)
    assert torch.allclose(out.log_prob(a), ref.log_prob(a).sum(-1), atol=1e-5)
    assert torch.allclose(out.entropy(), ref.entropy().sum(-1), atol=1e-5)


def test_categorical_entropy_is_uniform_at_most():
    out = RecurrentPolicy(16, 4, 32, "categorical", grid_n=7)(_maps())
    assert torch.all(out.entropy() <= torch.log(torch.tensor(49.0)) + 1e-5)


@pytest.mark.parametrize("gru", [False, True])
def test_video_policy_makes_one_decision_per_video(gru):
    pol = VideoPolicy(16 * 4, 4, (32, 16), "sigmoid", gru=gru, value_head=False)
    out = pol(_maps())
    assert out.params.shape == (3, 1, 2) and out.value is None
    with pytest.raises(ValueError, match="stacked channels"):
        pol(_maps(t=3))


def test_policy_is_causal_over_frames():
    pol = RecurrentPolicy(16, 4, 32, "sigmoid").eval()
    maps = _maps()
    later = maps.clone()
    later[:, 2:] += 1
    assert torch.allclose(pol(maps).params[:, :2], pol(later).params[:, :2])


# ----------------------------------------------------------------------------- classifiers
@pytest.mark.parametrize("cls", [PoolingClassifier, GRUClassifier])
def test_sequence_classifier_steps_agree_with_forward(cls):
    torch.manual_seed(0)
    clf = cls(12, 16, 5, steps=6).eval()
    feats, alt = torch.randn(2, 6, 12), torch.randn(2, 6, 12)
    logits = clf(feats)
    assert logits.shape == (2, 6, 5)
    state, stepped, replaced = None, [], []
    for t in range(6):  # reference loop (test only)
        replaced.append(clf.step(alt[:, t], state, t)[0])  # alt frame t from the same state
        out, state = clf.step(feats[:, t], state, t)
        stepped.append(out)
    assert torch.allclose(torch.stack(stepped, 1), logits, atol=1e-5)
    assert torch.allclose(clf.replaced_step_logits(feats, alt), torch.stack(replaced, 1), atol=1e-5)
    assert torch.allclose(clf.replaced_step_logits(feats, feats), logits, atol=1e-5)
    both = clf.logits_and_replaced(feats, alt)  # what V1's stage 2 calls: one pass for both
    assert torch.equal(both[0], logits) and torch.equal(both[1], clf.replaced_step_logits(feats, alt))
    later = feats.clone()
    later[:, 3:] += 1  # causal: step t sees frames <= t
    assert torch.allclose(clf(later)[:, :3], logits[:, :3], atol=1e-6)
    assert clf(feats[:, :4]).shape == (2, 4, 5)  # fewer frames: the first heads


def test_per_step_heads_apply_head_t_to_step_t():
    heads = PerStepHeads(3, 4, 2)
    x = torch.randn(5, 3, 4)
    out = heads(x)
    for t in range(3):
        assert torch.allclose(out[:, t], x[:, t] @ heads.weight[t] + heads.bias[t], atol=1e-6)
        assert torch.allclose(heads.one(x[:, t], t), out[:, t], atol=1e-6)
    shared = PerStepHeads(3, 4, 2, shared=True)
    assert torch.allclose(shared(x)[:, 2], x[:, 2] @ shared.weight[0] + shared.bias[0], atol=1e-6)
    with pytest.raises(ValueError):
        heads(torch.randn(5, 4, 4))


def test_pooling_classifier_uses_running_max():
    clf = PoolingClassifier(3, 4, 2, steps=5).eval()
    feats = torch.randn(1, 5, 3)
    h = clf.embed(feats)
    pooled = torch.stack([h[:, : t + 1].amax(1) for t in range(5)], 1)
    assert torch.allclose(clf(feats), clf.heads(pooled), atol=1e-6)


@pytest.mark.parametrize("detach", [False, True])
def test_tsn_average(detach):
    clf = TSNAverage(6, 8, 3, detach=detach)
    g, f = torch.randn(2, 4, 6, requires_grad=True), torch.randn(2, 5, 8, requires_grad=True)
    out = clf(g, f)
    assert out.shape == (2, 1, 3)
    ref = clf.glance_fc(g).mean(1) + clf.focus_fc(f).mean(1)
    assert torch.allclose(out[:, 0], ref, atol=1e-6)
    out.sum().backward()
    assert (g.grad is None) == detach and (f.grad is None) == detach
