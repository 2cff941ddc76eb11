"""The checkpoint-import machinery (``bench.models.importing``) on a tiny network and a made-up layout.

The made-up "foreign" layout renames every tensor (``theirs.`` prefix), keeps the classifier's
per-step heads as separate transposed ``[K, D]`` tensors, and adds an unused ImageNet head; the
official layouts themselves are checked against the official code in test_official_equivalence.py.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from bench.errors import UsageError
from bench.models import build_network, load_model, model_info
from bench.models.importing import (
    OfficialLayout,
    Rule,
    convert_state,
    import_official,
    read_checkpoint,
    unpack_state,
    without_weight_files,
)
from bench.presets import get_preset

LAYOUT = OfficialLayout(
    "made-up",
    [
        Rule(r"theirs\.heads\.(\d+)\.weight", r"classifier.heads.weight[\1]", transform=torch.t),
        Rule(r"theirs\.heads\.(\d+)\.bias", r"classifier.heads.bias[\1]"),
        Rule(r"theirs\.imagenet_fc\.(weight|bias)", None, "an unused ImageNet head"),
        Rule(r"theirs\.(.*)", r"\1"),
    ],
)


@pytest.fixture(scope="module")
def preset():
    return without_weight_files(
        get_preset("synthetic", "tiny", method="v2", arch="paper", glance_width=1.0)
    )  # f_G as wide as f_L: heads of one width


@pytest.fixture
def net(preset):
    torch.manual_seed(0)
    return build_network(preset).eval()


def foreign(net) -> dict:
    """``net``'s tensors in the made-up layout."""
    sd = net.state_dict()
    out = {f"theirs.{k}": v.clone() for k, v in sd.items() if not k.startswith("classifier.heads.")}
    for t in range(sd["classifier.heads.weight"].shape[0]):
        out[f"theirs.heads.{t}.weight"] = sd["classifier.heads.weight"][t].t().clone()
        out[f"theirs.heads.{t}.bias"] = sd["classifier.heads.bias"][t].clone()
    out["theirs.imagenet_fc.weight"], out["theirs.imagenet_fc.bias"] = torch.randn(1000, 8), torch.randn(1000)
    return out


def test_convert_maps_every_tensor_and_lists_the_dropped(net):
    state, report = convert_state(foreign(net), LAYOUT, net.state_dict())
    assert set(state) == set(net.state_dict())
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    assert sorted(k for k, _ in report.dropped) == ["theirs.imagenet_fc.bias", "theirs.imagenet_fc.weight"]
    assert report.initialised == [] and report.mapped == len(foreign(net)) - 2
    assert any("imagenet_fc.* (2): an unused ImageNet head" in line for line in report.lines())


@pytest.mark.parametrize(
    "break_it,message",
    [
        (lambda sd: sd.update({"theirs2.extra": torch.zeros(3)}), "'theirs2.extra' \\(3,\\) maps to nothing"),
        (
            lambda sd: sd.update({"theirs.policy.extra": torch.zeros(3)}),
            "maps to 'policy.extra', which the network",
        ),
        (lambda sd: sd.pop("theirs.policy.action.bias"), "no tensor for the network's 'policy.action.bias'"),
        (
            lambda sd: sd.update({"theirs.policy.action.bias": torch.zeros(5)}),
            "'theirs.policy.action.bias' has shape \\(5,\\)",
        ),
        (lambda sd: sd.pop("theirs.heads.1.bias"), "'classifier.heads.bias' needs"),
        (lambda sd: sd.update({"theirs.heads.0.weight": torch.zeros(3, 3)}), "theirs.heads.0.weight"),
    ],
)
def test_every_mismatch_is_one_line_naming_the_tensor(net, break_it, message):
    sd = foreign(net)
    break_it(sd)
    with pytest.raises(UsageError, match=message) as e:
        convert_state(sd, LAYOUT, net.state_dict(), "ckpt.pth")
    assert "\n" not in str(e.value) and str(e.value).startswith("ckpt.pth: ")


def test_one_source_may_fill_two_tensors_and_absent_parts_are_listed(net):
    sd = {k: v for k, v in foreign(net).items() if not k.startswith("theirs.focus.head.")}
    two = OfficialLayout(
        "two",
        [Rule(r"theirs\.glance\.head\.fc\.(.*)", (r"glance.head.fc.\1", r"focus.head.fc.\1")), *LAYOUT.rules],
    )
    state, _ = convert_state(sd, two, net.state_dict())  # (both tiny heads are 128 wide)
    assert torch.equal(state["focus.head.fc.weight"], net.state_dict()["glance.head.fc.weight"])
    absent = OfficialLayout("absent", LAYOUT.rules, absent={"focus.head.": "no such head upstream"})
    state, report = convert_state(sd, absent, net.state_dict())
    assert sorted(k for k, _ in report.initialised) == ["focus.head.fc.bias", "focus.head.fc.weight"]
    assert "focus.head.fc.weight" not in state
    dup = OfficialLayout("dup", [Rule(r"theirs\.imagenet_fc\.bias", "policy.action.bias"), *LAYOUT.rules])
    with pytest.raises(UsageError, match="both map to 'policy.action.bias'"):
        convert_state({**foreign(net), "theirs.imagenet_fc.bias": torch.zeros(2)}, dup, net.state_dict())


def test_unpack_finds_the_state_dict_the_way_trainers_save_it():
    a, b = torch.ones(2), torch.zeros(3)
    assert unpack_state({"module.x": a}, "f")[0] == {"x": a}
    state, ignored = unpack_state({"state_dict": {"module.x": a}, "epoch": 3, "best_prec1": 1.0}, "f")
    assert state == {"x": a} and ignored == ["epoch", "best_prec1"]
    split = {"glancer": "g.", "policy": "p."}
    state, ignored = unpack_state(
        {"model_state_dict": {"g.w": a}, "glancer": {"w": b}, "policy": {"w": b}, "optimizer": None},
        "f",
        split,
    )
    assert state["g.w"] is a and state["p.w"] is b and ignored == ["optimizer"]  # the whole model wins
    assert unpack_state({"policy": {"module.w": b}}, "f", split)[0] == {"p.w": b}
    with pytest.raises(UsageError, match="holds no state dict \\(top-level entries: epoch"):
        unpack_state({"epoch": 1}, "f")
    with pytest.raises(UsageError, match="holds a list"):
        unpack_state([a], "f")


def test_read_checkpoint_accepts_numpy_scalars_and_refuses_code(tmp_path):
    torch.save(
        {"state_dict": {"x": torch.ones(1)}, "best_acc": np.float64(61.5), "acc": np.float32(2)},
        tmp_path / "ok.pth",
    )
    assert float(read_checkpoint(tmp_path / "ok.pth")["best_acc"]) == 61.5
    buf = io.BytesIO()  # the same, pickled the way numpy 1.x names its scalars (older official checkpoints)
    torch.save({"best_acc": np.float64(61.5)}, buf, _use_new_zipfile_serialization=False)
    (tmp_path / "np1.pth").write_bytes(
        buf.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    )
    assert float(read_checkpoint(tmp_path / "np1.pth")["best_acc"]) == 61.5
    torch.save({"args": torch.nn.Linear(2, 2)}, tmp_path / "code.pth")  # a pickled module: not loaded
    (tmp_path / "junk.pth").write_text("not a checkpoint")
    for name in ("code.pth", "junk.pth"):
        with pytest.raises(UsageError, match="cannot read it as a torch checkpoint") as e:
            read_checkpoint(tmp_path / name)
        assert "\n" not in str(e.value)
    with pytest.raises(UsageError, match="does not exist"):
        read_checkpoint(tmp_path / "missing.pth")


def test_import_writes_a_model_file_that_loads_with_no_other_argument(net, preset, tmp_path):
    torch.save(
        {"state_dict": {f"module.{k}": v for k, v in foreign(net).items()}, "epoch": 2}, tmp_path / "c.pth"
    )
    report = import_official(tmp_path / "c.pth", preset, LAYOUT, tmp_path / "out.pt")
    assert report.ignored_entries == ["epoch"] and len(report.sha256) == 64
    loaded = load_model(tmp_path / "out.pt")
    assert not loaded.training
    x = torch.randn(2, preset.frames, 3, preset.input_size, preset.input_size)
    with torch.no_grad():
        assert torch.equal(loaded(x)["logits"], net(x)["logits"])
    info = model_info(tmp_path / "out.pt")
    assert info["preset"]["patch_size"] == preset.patch_size and info["source"]["layout"] == "made-up"
    assert [tuple(d) for d in info["source"]["dropped"]] == report.dropped


def test_load_model_refuses_other_files(tmp_path, net):
    torch.save(net.state_dict(), tmp_path / "bare.pt")
    with pytest.raises(UsageError, match="not an adabench model file"):
        load_model(tmp_path / "bare.pt")
