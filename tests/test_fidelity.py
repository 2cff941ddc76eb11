"""The departures from the official code that a side-by-side reading found, each closed (issue 10, item 5):
V2 Sth-Sth auxiliary CE on segment-averaged logits, fused heads at their network's lr ratio, one dropout mask
for the fused and auxiliary heads, N(0, 0.001) heads; V1 stage 3 keeps f_L frozen at lr 0, V1 Sth-Sth's fused
glance half is f_G's frozen head, V1 ActivityNet's focus head has no dropout. The comparisons with the
official code itself are in test_official_equivalence.py."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from fixtures_plan import plan_stages

from adafocus_v1.stages import apply_stage_modes, stage_specs
from adafocus_v2.losses import pass_loss
from adafocus_v2.method import lr_ratios
from bench.models import build_network, without_weight_files
from bench.presets import get_preset

K = 5
VIDEO = dict(
    frames=3,
    glance_frames=2,
    input_size=32,
    resize=32,
    patch_size=16,
    classifier_hidden=16,
    policy_hidden=(16, 8),
    policy_conv_channels=8,
    glance_size=16,
)


def _video(method="v2", **kw):
    return get_preset("jester", "tiny", method=method, **{**VIDEO, **kw})


def _clips(p, b=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    s = p.input_size
    return (
        torch.randn(b, p.frames, 3, s, s, generator=g),
        torch.randn(b, p.glance_frames, 3, s, s, generator=g),
        torch.randint(0, K, (b,), generator=g),
    )


def test_video_auxiliary_ce_scores_the_segment_average_and_frame_variant_every_frame():
    g = torch.Generator().manual_seed(0)
    out = {
        "logits": torch.randn(3, 1, K, generator=g),
        "glance_logits": torch.randn(3, 4, K, generator=g),
        "focus_logits": torch.randn(3, 6, K, generator=g),
    }
    labels = torch.tensor([0, 2, 4])
    video = pass_loss(out, labels, aux_supervision=True, segment_average=True)
    frame = pass_loss(out, labels, aux_supervision=True, segment_average=False)
    assert video["glance"] == pytest.approx(float(F.cross_entropy(out["glance_logits"].mean(1), labels)))
    assert video["focus"] == pytest.approx(float(F.cross_entropy(out["focus_logits"].mean(1), labels)))
    per_frame = F.cross_entropy(out["focus_logits"].reshape(-1, K), labels.repeat_interleave(6))
    assert (
        frame["focus"] == pytest.approx(float(per_frame))
        and abs(float(frame["focus"] - video["focus"])) > 1e-3
    )


def test_video_fused_heads_take_their_networks_lr_ratio():
    p = _video()
    torch.manual_seed(0)
    net = build_network(p, num_classes=K)
    (stage,) = plan_stages("v2", net, p, K)
    stage.prepare()
    ratio = {id(q): g["lr_ratio"] for g in stage.optimizer().param_groups for q in g["params"]}
    hp = p.train
    assert {ratio[id(q)] for q in net.classifier.glance_fc.parameters()} == {hp.glance_lr_ratio}
    assert {ratio[id(q)] for q in net.glance.parameters()} == {hp.glance_lr_ratio}
    assert {ratio[id(q)] for q in net.classifier.focus_fc.parameters()} == {hp.focus_lr_ratio}
    assert hp.glance_lr_ratio != hp.focus_lr_ratio
    frame = get_preset("synthetic", "tiny", method="v2")
    assert "classifier.glance_fc" not in lr_ratios(frame.train, frame.variant)


def test_tsn_dropout_is_one_mask_for_the_fused_and_the_auxiliary_head():
    """With the fused glance head a copy of the auxiliary glance head (and the focus half silenced), the
    fused logits equal the auxiliary logits' frame mean in train mode only if both saw the same mask."""
    p = _video(feature_dropout=0.5, dropout=0.0, fc_dropout=0.0)
    torch.manual_seed(0)
    net = build_network(p, num_classes=K).train()
    with torch.no_grad():
        net.classifier.glance_fc.load_state_dict(net.glance.head.state_dict())
        net.classifier.focus_fc.fc.weight.zero_()
        net.classifier.focus_fc.fc.bias.zero_()
    frames, glance, _ = _clips(p)
    out = net(frames, glance)
    torch.testing.assert_close(out["logits"][:, 0], out["glance_logits"].mean(1))
    assert net.glance.feature_dropout.p == 0.5 and net.focus.feature_dropout.p == 0.5
    dropped = net.glance(glance.flatten(0, 1))[1]
    assert float((dropped == 0).float().mean()) > 0.3  # the pooled feature itself is dropped


def test_paper_video_preset_is_the_tsn_head_layout_with_tsn_init():
    p = without_weight_files(get_preset("sthv1", "paper", method="v2", frames=3, glance_frames=2))
    assert (p.feature_dropout, p.dropout, p.fc_dropout, p.head_init_std) == (0.5, 0.0, 0.0, 0.001)
    small = _video(head_init_std=0.001, classifier_hidden=16)
    torch.manual_seed(0)
    net = build_network(small, num_classes=200)
    for head in (net.glance.head, net.focus.head, net.classifier.glance_fc, net.classifier.focus_fc):
        head = head.requires_grad_(False)
        assert float(head.fc.bias.abs().max()) == 0 and abs(float(head.fc.weight.std()) - 0.001) < 1e-4
    assert _video().head_init_std == 0.001  # the tiny video preset keeps the paper's head init
    frame = build_network(without_weight_files(get_preset("synthetic", "tiny", method="v2")), num_classes=200)
    assert float(frame.glance.head.fc.weight.detach().std()) > 0.01  # nn.Linear's own init elsewhere


@pytest.mark.parametrize("lr,focus_trains", [(0.0, False), (1e-4, True)])
def test_v1_stage3_keeps_focus_frozen_and_in_eval_mode_when_its_lr_is_zero(lr, focus_trains):
    p = get_preset("synthetic", "tiny", method="v1", stage3="paper", stage3_backbone_lr=lr)
    spec = stage_specs(p.train)[3]
    net = build_network(p, num_classes=K).train()
    apply_stage_modes(net, spec)
    assert ("focus.backbone" in spec.trainable) == focus_trains
    assert net.focus.backbone.training == focus_trains
    assert all(q.requires_grad == focus_trains for q in net.focus.backbone.parameters())
    assert net.classifier.training


def test_v1_video_fused_glance_half_is_the_frozen_glance_head():
    p = _video(
        method="v1", dropout=0.0, feature_dropout=0.5, fc_dropout=0.0, stage3_backbone_lr=0.0
    )  # scripts
    torch.manual_seed(0)
    net = build_network(p, num_classes=K)
    stages = plan_stages("v1", net, p, K)
    s1 = stages[1]
    s1.prepare()
    assert torch.equal(net.classifier.glance_fc.fc.weight, net.glance.head.fc.weight)
    assert not net.classifier.glance_fc.training and not net.classifier.glance_fc.fc.weight.requires_grad
    assert net.classifier.focus_fc.training and net.focus.feature_dropout.training  # f_L's dropout in stage 1
    before = net.classifier.glance_fc.fc.weight.clone()
    opt = s1.optimizer()
    frames, glance, labels = _clips(p)

    def update(loss):
        opt.zero_grad()
        loss.backward()
        opt.step()

    s1.step({"frames": frames, "glance": glance, "label": labels}, update)
    assert torch.equal(net.classifier.glance_fc.fc.weight, before)
    stages[3].prepare()
    assert not net.focus.feature_dropout.training  # stage 3 (the scripts' dropout=0)
    assert {n for n, q in net.named_parameters() if q.requires_grad} == {
        "classifier.focus_fc.fc.weight",
        "classifier.focus_fc.fc.bias",
    }


def test_v1_activitynet_focus_head_has_no_dropout():
    p = without_weight_files(get_preset("actnet", "paper", method="v1", arch="paper", frames=2))
    net = build_network(
        dataclasses.replace(
            p,
            glance_backbone="tiny",
            focus_backbone="tiny",
            glance_size=None,
            policy_hidden=(8,),
            classifier_hidden=8,
        ),
        num_classes=K,
    )
    assert net.focus.head.dropout.p == 0.0 and net.glance.head.dropout.p == p.fc_dropout == 0.2
    v2 = get_preset("actnet", "paper", method="v2", arch="paper")
    assert v2.focus_fc_dropout is None  # V2's focus head keeps fc_dropout (V2a local_CNN_fc)
