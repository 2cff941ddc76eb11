"""Backbone starting weights: ImageNet through torch's cache (never the network here), the one-line
offline error, local files in the layouts the official code loads, and the manifest's SHA-256."""

from __future__ import annotations

import hashlib
import urllib.error

import pytest
import torch
from torchvision import models as tvm

from bench.errors import UsageError
from bench.models import build_network, create_backbone, load_state, weight_sources
from bench.models.layouts import (
    sequential_resnet_key,
    strip_shift_wrappers,
    to_torchvision,
    tonylins_mbv2_key,
)
from bench.models.weights import imagenet_cache_path, resolve_pretrained
from bench.presets import get_preset


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty torch cache and no network: any download attempt fails like an offline machine."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    calls = []

    def no_network(url, dst, *args, **kwargs):
        calls.append(url)
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return calls


def _paper(**overrides):
    return get_preset("actnet", "paper", method="v2", arch="paper", **overrides)


def test_imagenet_weights_come_from_the_torch_cache(offline):
    src = tvm.mobilenet_v2(weights=None)
    path = imagenet_cache_path("mbv2")
    path.parent.mkdir(parents=True)
    torch.save(src.state_dict(), path)
    net = create_backbone("tsm_mbv2", pretrained="imagenet", num_segments=4)
    assert torch.equal(net.features[5].conv[1][0].weight, src.features[5].conv[1][0].weight)
    assert offline == []
    assert path.name == "mobilenet_v2-b0353104.pth"  # torchvision's IMAGENET1K_V1, the papers' start
    assert imagenet_cache_path("res50").name == "resnet50-0676ba61.pth"


def test_offline_stops_before_training_with_one_line_naming_the_weights(offline):
    preset = _paper(glance_pretrained="imagenet", focus_pretrained=None)
    for attempt in (lambda: weight_sources(preset), lambda: build_network(preset)):
        with pytest.raises(UsageError) as e:
            attempt()
        msg = str(e.value)
        assert "\n" not in msg and msg.startswith(
            "glance_pretrained=imagenet: cannot get torchvision's ImageNet"
        )
        assert "--set glance_pretrained=PATH" in msg and "--set glance_pretrained=none" in msg
    assert offline and offline[0].endswith("mobilenet_v2-b0353104.pth")


def test_none_trains_from_scratch_knowingly_and_sources_carry_sha256(tmp_path, offline):
    state = tvm.resnet50(weights=None).state_dict()
    torch.save(state, tmp_path / "Initialization_model_prime_resnet50_patch_size_96.pth")
    preset = _paper(
        glance_arch="res50",
        glance_pretrained=str(tmp_path / "Initialization_model_prime_resnet50_patch_size_96.pth"),
        focus_pretrained="none",
    )
    sources = weight_sources(preset)
    glance, focus = sources["glance"].as_dict(), sources["focus"].as_dict()
    data = (tmp_path / "Initialization_model_prime_resnet50_patch_size_96.pth").read_bytes()
    assert glance["sha256"] == hashlib.sha256(data).hexdigest() and glance["backbone"] == "res50"
    assert focus == {"role": "focus", "backbone": "res50", "pretrained": None, "file": None, "sha256": None}
    net = build_network(preset)  # the official 96x96 ResNet-50 glance initialisation layout (fc dropped)
    assert torch.equal(net.glance.backbone.layer3[2].conv2.weight, state["layer3.2.conv2.weight"])
    assert offline == []


def test_spec_errors_are_one_line():
    with pytest.raises(UsageError, match="focus_pretrained=textures: only the tiny backbones"):
        resolve_pretrained("textures", "res50", "focus_pretrained")
    with pytest.raises(UsageError, match="has no ImageNet weights"):
        resolve_pretrained("imagenet", "tiny", "glance_pretrained")
    with pytest.raises(
        UsageError, match="glance_pretrained: pretrained weights file 'nope.pt' does not exist"
    ):
        resolve_pretrained("nope.pt", "mbv2", "glance_pretrained")
    assert resolve_pretrained("None", "mbv2", "x") is None and resolve_pretrained(None, "mbv2", "x") is None


# ----------------------------------------------------------------------------- layouts
# the tonylins MobileNetV2 names of a few torchvision tensors, as read from that code's module order
TONYLINS = {
    "features.1.conv.0.weight": "features.1.conv.0.0.weight",  # dw conv (expansion-1 block)
    "features.1.conv.1.running_var": "features.1.conv.0.1.running_var",
    "features.1.conv.3.weight": "features.1.conv.1.weight",  # pw-linear conv
    "features.1.conv.4.bias": "features.1.conv.2.bias",
    "features.7.conv.0.weight": "features.7.conv.0.0.weight",  # pw expansion
    "features.7.conv.3.weight": "features.7.conv.1.0.weight",  # dw
    "features.7.conv.4.weight": "features.7.conv.1.1.weight",
    "features.7.conv.6.weight": "features.7.conv.2.weight",  # pw-linear
    "features.7.conv.7.num_batches_tracked": "features.7.conv.3.num_batches_tracked",
    "features.18.1.weight": "features.18.1.weight",
    "features.0.0.weight": "features.0.0.weight",
}


def test_layout_keys():
    assert {k: tonylins_mbv2_key(k) for k in TONYLINS} == TONYLINS
    assert strip_shift_wrappers("layer1.0.conv1.net.weight") == "layer1.0.conv1.weight"
    assert strip_shift_wrappers("features.2.conv.0.net.weight") == "features.2.conv.0.weight"
    assert sequential_resnet_key("4.0.conv1.weight") == "layer1.0.conv1.weight"
    assert sequential_resnet_key("1.running_mean") == "bn1.running_mean"
    with pytest.raises(KeyError):
        tonylins_mbv2_key("features.3.conv.5.weight")
    assert to_torchvision({"layer1.0.conv1.net.weight": 1}) == {"layer1.0.conv1.weight": 1}


def _tonylins(state: dict) -> dict:
    """torchvision MobileNetV2 names -> tonylins names (the inverse of ``TONYLINS``' rule)."""
    inv = {"0.0": "0", "0.1": "1", "1.0": "3", "1.1": "4", "2": "6", "3": "7"}
    inv1 = {"0.0": "0", "0.1": "1", "1": "3", "2": "4"}
    out = {}
    for k, v in state.items():
        parts = k.split(".")
        if parts[0] == "features" and parts[2:3] == ["conv"]:
            table = inv1 if parts[1] == "1" else inv
            sub = ".".join(parts[3:5]) if ".".join(parts[3:5]) in table else parts[3]
            rest = parts[3 + len(sub.split(".")) :]
            k = ".".join(["features", parts[1], "conv", table[sub], *rest])
        out[k] = v
    return out


def test_tsm_mobilenet_checkpoint_layout_loads(tmp_path):
    """What the official Sth-Sth code loads: ``module.base_model.`` prefixes, TSM's ``.net`` in shifted
    convs, tonylins names, a ``new_fc`` head."""
    src = tvm.mobilenet_v2(weights=None).state_dict()
    assert set(to_torchvision(_tonylins(src))) == set(src)
    sd = {}
    for k, v in _tonylins(src).items():
        if k.startswith("features.3.conv.0."):  # a block with a residual path: shifted
            k = k.replace("conv.0.", "conv.0.net.")
        sd["module.base_model." + k] = v
    sd["module.new_fc.weight"], sd["module.new_fc.bias"] = torch.zeros(174, 1280), torch.zeros(174)
    torch.save(
        {"epoch": 50, "arch": "mobilenetv2", "state_dict": sd, "best_prec1": 40.0}, tmp_path / "tsm.pth.tar"
    )
    net = create_backbone("tsm_mbv2", pretrained=str(tmp_path / "tsm.pth.tar"), num_segments=8)
    assert all(torch.equal(v, src[k]) for k, v in net.state_dict().items())
    dropped = load_state(net, str(tmp_path / "tsm.pth.tar"), "test")
    assert dropped == ["classifier.1.bias", "classifier.1.weight", "new_fc.bias", "new_fc.weight"]
