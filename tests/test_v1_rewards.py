"""Stage-2 rewards on a hand-made model that recognises a bright object when its patch covers it."""

from __future__ import annotations

import pytest
import torch

from adafocus_v1.rewards import step_rewards, true_class_prob
from adafocus_v1.stage2 import sample_actions, step_confidences
from bench.models import (
    AdaFocusNet,
    FocusNet,
    GlanceNet,
    GRUClassifier,
    PoolingClassifier,
    RecurrentPolicy,
    TSNAverage,
    VideoPolicy,
    random_pixel_locations,
)
from bench.models.backbones import Backbone

S, P, T = 32, 16, 4
OBJ = (2, 2)  # object's top-left corner (row, col): fully inside the patch at location (0, 0)


class Brightness(Backbone):
    """Feature = the mean intensity of the input (1 channel): high iff the object is in view."""

    out_channels = 1

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean((1, 2, 3), keepdim=True)  # [N,1,1,1]


def _frames(b: int) -> torch.Tensor:
    x = torch.zeros(b, T, 3, S, S)
    x[..., OBJ[0] : OBJ[0] + 8, OBJ[1] : OBJ[1] + 8] = 1.0
    return x


def _net(kind: str) -> AdaFocusNet:
    glance, focus = GlanceNet(Brightness(), 2), FocusNet(Brightness(), 2)
    if kind == "tsn":
        clf = TSNAverage(1, 1, 2)
        with torch.no_grad():  # class 1 iff bright patch; the glance sees no difference
            clf.glance_fc.fc.weight.zero_()
            clf.glance_fc.fc.bias.zero_()
            clf.focus_fc.fc.weight.copy_(torch.tensor([[-20.0], [20.0]]))
            clf.focus_fc.fc.bias.copy_(torch.tensor([2.0, -2.0]))
        policy = VideoPolicy(T, 1, (8,), "gaussian", value_head=True)
        return AdaFocusNet(glance, focus, policy, clf, patch_size=P, variant="video", crop="hard").eval()
    if kind == "pooling":
        clf = PoolingClassifier(2, 1, 2, T)
        with torch.no_grad():  # hidden = relu(brightness of the focus patch)
            clf.mlp[0].weight.copy_(torch.tensor([[0.0, 1.0]]))
            clf.mlp[0].bias.zero_()
    else:
        clf = GRUClassifier(2, 1, 2, T)
        with torch.no_grad():  # hidden = tanh-ish memory of the focus brightness
            clf.gru.weight_ih_l0.zero_()
            clf.gru.weight_hh_l0.zero_()
            clf.gru.bias_hh_l0.zero_()
            clf.gru.bias_ih_l0.copy_(torch.tensor([-10.0, 0.0, 0.0]))  # update gate closed -> h = n
            clf.gru.weight_ih_l0[2, 1] = 10.0  # n = tanh(10 * brightness)
    with torch.no_grad():
        clf.heads.weight.zero_()
        clf.heads.weight[:, 0, 1] = 20.0
        clf.heads.bias.copy_(torch.tensor([2.0, -2.0]).expand_as(clf.heads.bias))
    policy = RecurrentPolicy(1, 1, 8, "categorical", grid_n=3, value_head=True)
    return AdaFocusNet(glance, focus, policy, clf, patch_size=P, variant="frame", crop="hard").eval()


@pytest.mark.parametrize(
    "kind,cover_step", [("pooling", 0), ("pooling", T - 1), ("gru", 0), ("gru", T - 1), ("tsn", 0)]
)
def test_reward_positive_when_patch_covers_object(kind, cover_step):
    """The policy's patch covers the object at ``cover_step`` only; the random baseline never does.

    The reward is clearly positive at that step and zero at the others (before it both patches
    are empty; after it the classifier state already holds the object either way).
    """
    net = _net(kind)
    b = 3
    frames, labels = _frames(b), torch.ones(b, dtype=torch.long)
    batch = {"frames": frames, "label": labels}
    _, g_feats = net.glance_forward(frames)
    tp = 1 if kind == "tsn" else T
    elsewhere = torch.ones(b, tp, 2)  # bottom-right: rows/cols 16..31, no object
    policy = elsewhere.clone()
    policy[:, cover_step] = 0.0  # top-left: rows/cols 0..15 contain the object
    conf_pol, conf_rand = step_confidences(net, batch, g_feats, policy, elsewhere)
    r = step_rewards(conf_pol, conf_rand, "random", 2)
    assert r.shape == (b, tp)
    assert (r[:, cover_step] > 0.5).all(), r
    others = torch.arange(tp) != cover_step
    assert r[:, others].abs().max().item() < 1e-4 if others.any() else True
    # the other way round (random baseline on the object, policy elsewhere) it is negative
    conf_pol2, conf_rand2 = step_confidences(net, batch, g_feats, elsewhere, torch.zeros(b, tp, 2))
    assert (step_rewards(conf_pol2, conf_rand2, "random", 2)[:, 0] < -0.5).all()


@pytest.mark.parametrize("kind", ["pooling", "gru"])
def test_random_baseline_equals_step_by_step(kind):
    """The batched 'replace frame t' baseline equals running the classifier step by step."""
    torch.manual_seed(0)
    net = _net(kind)
    b = 2
    frames = torch.rand(b, T, 3, S, S)
    labels = torch.tensor([0, 1])
    _, g = net.glance_forward(frames)
    pol, rnd = torch.rand(b, T, 2), torch.rand(b, T, 2)
    _, conf_rand = step_confidences(net, {"frames": frames, "label": labels}, g, pol, rnd)
    f_pol, f_rnd = net.focus_forward(frames, pol), net.focus_forward(frames, rnd)
    state = None
    for t in range(T):
        alt_logits, _ = net.classifier.step(torch.cat([g[:, t], f_rnd[:, t]], -1), state, t)
        expect = true_class_prob(alt_logits[:, None], labels)[:, 0]
        assert torch.allclose(conf_rand[:, t], expect, atol=1e-5)
        _, state = net.classifier.step(torch.cat([g[:, t], f_pol[:, t]], -1), state, t)


def test_prev_and_conf_rewards():
    conf = torch.tensor([[0.5, 0.7, 0.6]])
    assert torch.allclose(step_rewards(conf, None, "prev", 4), torch.tensor([[0.25, 0.2, -0.1]]))
    assert torch.equal(step_rewards(conf, None, "conf", 4), conf)
    with pytest.raises(ValueError):
        step_rewards(conf, None, "random", 4)


def test_gaussian_sample_keeps_raw_action_and_clamps_location():
    torch.manual_seed(0)
    net = _net("tsn")
    out = net.policy_forward(net.glance_forward(_frames(64))[0])
    raw, loc = sample_actions(out)
    assert (raw < 0).any() or (raw > 1).any()  # some samples fall outside [0, 1] ...
    assert loc.min() >= 0 and loc.max() <= 1  # ... but the patch location never does
    assert torch.equal(loc, raw.clamp(0, 1))


def test_uniform_patch_locations_reach_every_offset():
    g = torch.Generator().manual_seed(0)
    loc = random_pixel_locations((4000,), S, P, torch.device("cpu"), g)
    offsets = torch.floor(loc * (S - P) + 1e-4).long()
    assert set(offsets.flatten().tolist()) == set(range(S - P + 1))
