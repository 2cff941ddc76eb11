"""The paper presets run one full V2 training step (both passes, all techniques) on CPU at batch 1.

The frame preset's step is checked in the default run with 4 of its 16 frames (everything else the paper's:
224 px, MobileNetV2 glance, ResNet-50 focus on 128 px patches, the GRU classifier over time, every technique);
the full 16 frames (4x the cost, the same code paths) are ``@pytest.mark.slow``. Likewise the TSM preset's
step with 4 + 4 of its 8 glance + 12 focus frames."""

import dataclasses

import pytest
import torch
from fixtures_plan import plan_stages

from adafocus_v2.objective import V2Objective
from bench.models import build_network, without_weight_files
from bench.presets import get_preset


def _one_step(preset):
    torch.manual_seed(0)
    net = build_network(without_weight_files(preset))
    (stage,) = plan_stages("v2", net, preset, preset.num_classes)
    stage.prepare()
    opt = stage.optimizer()
    s = preset.input_size
    frames = torch.randn(1, preset.frames, 3, s, s)
    glance = torch.randn(1, preset.glance_frames, 3, s, s) if preset.glance_frames else None
    before = net.policy.action.weight.detach().clone()
    parts = V2Objective(net)(frames, glance, torch.tensor([3]))
    opt.zero_grad()
    parts["total"].backward()
    if preset.grad_clip:
        torch.nn.utils.clip_grad_norm_(net.parameters(), preset.grad_clip)
    opt.step()
    assert torch.isfinite(parts["total"]) and {"classifier", "glance", "focus", "random_total"} <= set(parts)
    assert not torch.equal(before, net.policy.action.weight)  # the policy learned through the crop
    return net


@pytest.mark.slow
def test_paper_frame_preset_mobilenetv2_resnet50_16_frames():
    preset = get_preset("actnet", "paper", method="v2")
    assert (preset.frames, preset.input_size, preset.glance_backbone, preset.focus_backbone) == (
        16,
        224,
        "mbv2",
        "res50",
    )
    _one_step(preset)


def test_paper_frame_preset_steps_with_fewer_frames():
    """The paper frame preset but 4 frames: every other field the paper's (so the same code paths run)."""
    paper = get_preset("actnet", "paper", method="v2")
    preset = get_preset("actnet", "paper", method="v2", frames=4)
    assert dataclasses.replace(paper, frames=4) == preset and paper.frames == 16
    assert (preset.input_size, preset.patch_size, preset.glance_backbone, preset.focus_backbone) == (
        224,
        128,
        "mbv2",
        "res50",
    )
    _one_step(preset)


@pytest.mark.slow
def test_paper_tsm_preset_8_glance_12_focus_frames():
    preset = get_preset("sthv1", "paper", method="v2")
    assert (preset.glance_frames, preset.frames, preset.glance_backbone) == (8, 12, "tsm_mbv2")
    _one_step(preset)


def test_paper_tsm_preset_steps_with_fewer_frames():
    """The paper TSM preset but 4 glance and 4 focus frames: every other field the paper's."""
    paper = get_preset("sthv1", "paper", method="v2")
    preset = get_preset("sthv1", "paper", method="v2", frames=4, glance_frames=4)
    assert dataclasses.replace(paper, frames=4, glance_frames=4) == preset
    assert (paper.glance_frames, paper.frames) == (8, 12)
    assert (preset.input_size, preset.glance_backbone, preset.focus_backbone) == (
        224,
        "tsm_mbv2",
        "tsm_res50",
    )
    _one_step(preset)
