"""FLOPs with fvcore: conventions (BN = 0, GRU by hand), per component/step, and the published totals."""

import dataclasses
import json
import warnings

import pytest
import torch
from torch import nn

from bench.models import build_network, create_backbone, without_weight_files
from bench.models.flops import FlopsReport, count_flops, gru_closed_form, gru_flop_jit
from bench.presets import get_preset


def _fvcore(model, *inputs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fvcore's import-time TorchScript warnings
        from fvcore.nn import FlopCountAnalysis
    fca = FlopCountAnalysis(model, inputs).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return fca.set_op_handle("aten::gru", gru_flop_jit)


@pytest.mark.parametrize(
    "layers,bidirectional,batch_first", [(1, False, True), (2, False, False), (2, True, True)]
)
def test_gru_handle_matches_closed_form(layers, bidirectional, batch_first):
    gru = nn.GRU(12, 20, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first)
    x = torch.randn(3, 5, 12)  # [B,T,I] or [T,B,I]: B*T = 15 either way
    counted = _fvcore(gru, x).total()
    assert counted == gru_closed_form(3, 5, 12, 20, layers, bidirectional)
    if layers == 1 and not bidirectional:
        assert counted == 15 * 3 * (12 * 20 + 20 * 20)  # the papers' 3(IH + H^2) per step


def test_batchnorm_counts_zero_and_modes_are_restored():
    p = get_preset("synthetic", "tiny", method="v2")
    net = build_network(p).train()
    net.glance.eval()
    report = count_flops(net, p)
    assert net.training and not net.glance.training and net.focus.training
    assert "aten::batch_norm" not in report.unsupported
    # the same count with BN removed from the tiny backbones is identical
    for mod in (net.glance.backbone, net.focus.backbone):
        for stage in mod.stages:
            stage[1] = nn.Identity()
    assert count_flops(net, p).gflops_per_video == pytest.approx(report.gflops_per_video, rel=1e-12)


@pytest.fixture(scope="module")
def tiny_v2():
    p = get_preset("synthetic", "tiny", method="v2")
    net = build_network(p)
    return p, net, count_flops(net, p)


def test_report_components_sum_to_total_and_list_unsupported(tiny_v2):
    p, net, r = tiny_v2
    assert isinstance(r, FlopsReport)
    assert set(r.by_component) == {"glance", "policy", "crop", "focus", "classifier", "aux_heads"}
    assert sum(r.by_component.values()) == pytest.approx(r.gflops_per_video, rel=1e-9)
    assert all(v > 0 for k, v in r.by_component.items())
    assert "aten::affine_grid_generator" in r.unsupported and "aten::gru" not in r.unsupported
    d = r.to_dict()
    assert json.loads(json.dumps(d))["gflops_per_video"] == r.gflops_per_video


def test_per_step_cost_is_the_count_of_the_first_k_frames(tiny_v2):
    p, net, r = tiny_v2
    assert len(r.per_step) == p.frames and r.per_step[-1] == pytest.approx(r.gflops_per_video)
    for k in (1, 3):  # really count a k-frame video with the same network
        short = count_flops(net, dataclasses.replace(p, frames=k))
        assert r.per_step[k - 1] == pytest.approx(short.gflops_per_video, rel=1e-9)


def test_v1_counts_no_aux_heads_and_video_variant_has_one_step():
    p = get_preset("jester", "tiny", method="v1")
    r = count_flops(build_network(p), p)
    assert r.by_component["aux_heads"] == 0 and len(r.per_step) == 1
    assert r.per_step[0] == r.gflops_per_video


# ----------------------------------------------------------------------------- published totals
@pytest.fixture(scope="module")
def paper_counts():
    """One count per configuration (ResNet-50 traces take seconds): {(dataset, P, glance): report}."""
    out = {}
    for dataset, patch, glance in [
        ("actnet", 96, None),
        ("actnet", 112, None),
        ("actnet", 128, None),
        ("actnet", 160, None),
        ("jester", 128, None),
    ]:
        p = get_preset(dataset, "paper", method="v2", glance_arch=glance, patch_size=patch)
        out[dataset, patch, glance] = count_flops(build_network(without_weight_files(p)), p)
    return out


@pytest.mark.parametrize(
    "dataset,patch,target",
    [("actnet", 96, 17.6), ("actnet", 128, 27.0), ("actnet", 160, 39.0), ("jester", 128, 18.5)],
)
def test_published_gflops_are_reproduced_by_counting(paper_counts, dataset, patch, target):
    assert paper_counts[dataset, patch, None].gflops_per_video == pytest.approx(target, rel=0.005)


def test_unpublished_patch_size_is_consistent(paper_counts):
    r96, r112, r128 = (paper_counts["actnet", p, None] for p in (96, 112, 128))
    assert r96.gflops_per_video < r112.gflops_per_video < r128.gflops_per_video
    for part in ("glance", "policy", "classifier", "aux_heads"):  # only the patch-dependent parts move
        assert r112.by_component[part] == r96.by_component[part] == r128.by_component[part]
    # the focus part is 16 bare ResNet-50 bodies on a 112x112 input
    from bench.models.flops import _zero_flop_jit

    body = create_backbone("res50").eval()
    fca = _fvcore(body, torch.randn(1, 3, 112, 112)).set_op_handle("aten::batch_norm", _zero_flop_jit)
    assert r112.by_component["focus"] == pytest.approx(16 * fca.total() * 1e-9, rel=1e-9)


def test_paper_per_step_and_components(paper_counts):
    r = paper_counts["actnet", 128, None]
    assert len(r.per_step) == 16 and r.per_step[0] == pytest.approx(r.gflops_per_video / 16)
    # facts §4.1: MobileNetV2 conv 0.2995 G/frame and ResNet-50@128 conv 1.3346 G/frame
    assert r.by_component["glance"] / 16 == pytest.approx(0.2995, rel=0.002)
    assert r.by_component["focus"] / 16 == pytest.approx(1.3346, rel=0.002)
    assert (
        r.by_component["policy"] + r.by_component["classifier"] + r.by_component["aux_heads"]
    ) / 16 == pytest.approx(0.050723, rel=0.01)
    jester = paper_counts["jester", 128, None]
    assert len(jester.per_step) == 1 and jester.by_component["policy"] == pytest.approx(0.0359, rel=0.01)


def test_cli_flops_json():
    from click.testing import CliRunner

    from cli import cli

    res = CliRunner().invoke(
        cli, ["flops", "--method", "v2", "--dataset", "synthetic", "--preset", "tiny", "--json"]
    )
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["gflops_per_video"] > 0 and set(d["by_component"]) >= {"glance", "focus", "policy", "classifier"}
    assert d["patch_size"] == 32 and len(d["per_step"]) == 8
    res = CliRunner().invoke(cli, ["flops", "--method", "v2", "--dataset", "synthetic", "--preset", "tiny"])
    assert res.exit_code == 0 and "GFLOPs per video" in res.output
