"""Our ``--arch paper`` networks against the official code: import a checkpoint saved the way the
official trainers save it, then compare per-step logits in eval mode (all four variants, both V2
glance architectures) and one V2 training step (loss and gradients).

Skipped unless ``ADABENCH_OFFICIAL_V1`` / ``ADABENCH_OFFICIAL_V2`` name checkouts of the official code
(see ``tests/official_code.py`` and the README). Sizes are reduced where the official code allows it
(batch 2, 4 frames; 4 glance + 6 focus frames in the Sth-Sth variant); frames stay 224x224.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adafocus_v1 import official as v1_official
from adafocus_v2 import official as v2_official
from bench.models import load_model
from tests import official_code as oc

TOL = 1e-4
B, T, TG, TF = 2, 4, 4, 6


@pytest.fixture
def frames():
    g = torch.Generator().manual_seed(1)
    return torch.randn(B, T, 3, 224, 224, generator=g)


@pytest.fixture
def video_clips():
    g = torch.Generator().manual_seed(2)
    return torch.randn(B, TG, 3, 224, 224, generator=g), torch.randn(B, TF, 3, 224, 224, generator=g)


def _check(name: str, pairs: dict) -> None:
    """Report and assert each (ours, official) pair within TOL."""
    for what, (got, want) in pairs.items():
        diff = oc.rel_diff(got, want)
        print(f"\n[official equivalence] {name} {what}: max relative difference {diff:.2e}")
        assert diff < TOL, f"{name} {what}: {diff:.2e}"


# ----------------------------------------------------------------------------- V2
@pytest.mark.parametrize("glance_arch", ["mbv2", "res50"])
def test_v2_frame_logits_match_official(glance_arch, frames, tmp_path, monkeypatch):
    folder = oc.official_folder("v2", "frame")
    with oc.official_code(folder, monkeypatch):
        torch.manual_seed(0)
        theirs = oc.build_v2_frame(glance_arch, T, 200, 128)
        oc.perturb(theirs)
        torch.save({"state_dict": oc.dp_state_dict(theirs)}, tmp_path / "ckpt.pth.tar")
        theirs.eval()
        with torch.no_grad():
            logits, _, glance_logits, focus_logits = theirs(frames.reshape(B, T * 3, 224, 224))
    report = v2_official.import_checkpoint(
        tmp_path / "ckpt.pth.tar",
        "actnet",
        tmp_path / "ours.pt",
        patch_size=128,
        glance_arch=glance_arch,
        overrides={"frames": T},
    )
    glance_head = "global_CNN.fc" if glance_arch == "res50" else "global_CNN.classifier"
    assert sorted(k for k, _ in report.dropped) == sorted(
        f"{m}.{p}" for m in (glance_head, "local_CNN.fc") for p in ("bias", "weight")
    )  # the 1000-way heads
    assert report.initialised == []
    with torch.no_grad():
        out = load_model(tmp_path / "ours.pt")(frames)
    _check(
        f"V2 frame ({glance_arch} glance)",
        {
            "per-step logits": (out["logits"], logits.view(B, T, -1)),
            "glance head": (out["glance_logits"], glance_logits.view(B, T, -1)),
            "focus head": (out["focus_logits"], focus_logits.view(B, T, -1)),
        },
    )


def test_v2_video_logits_match_official(video_clips, tmp_path, monkeypatch):
    glance, focus = video_clips
    folder = oc.official_folder("v2", "video")
    with oc.official_code(folder, monkeypatch):
        torch.manual_seed(0)
        theirs = oc.build_v2_video(TG, 174, 144)
        oc.perturb(theirs)
        opt = torch.optim.SGD(theirs.parameters(), lr=0.01, momentum=0.9)
        torch.save(
            {
                "epoch": 3,
                "arch": "resnet50",
                "state_dict": oc.dp_state_dict(theirs),
                "optimizer": opt.state_dict(),
                "best_prec1": 12.5,
            },
            tmp_path / "ckpt.pth.tar",
        )
        theirs.eval()
        with torch.no_grad():
            logits, glance_aux, focus_aux = theirs(
                glance.reshape(B, TG * 3, 224, 224), focus.reshape(B, TF * 3, 224, 224)
            )
    report = v2_official.import_checkpoint(
        tmp_path / "ckpt.pth.tar",
        "sthv1",
        tmp_path / "ours.pt",
        patch_size=144,
        overrides={"frames": TF, "glance_frames": TG},
    )
    assert report.dropped == [] and report.initialised == []
    assert set(report.ignored_entries) == {"epoch", "arch", "optimizer", "best_prec1"}
    with torch.no_grad():
        out = load_model(tmp_path / "ours.pt")(focus, glance)
    _check(
        "V2 video (TSM)",
        {
            "logits": (out["logits"][:, 0], logits),
            "glance aux head (frame mean)": (out["glance_logits"].mean(1), glance_aux),
            "focus aux head (frame mean)": (out["focus_logits"].mean(1), focus_aux),
        },
    )


# ----------------------------------------------------------------------------- V1
def _v1_checkpoint(model: torch.nn.Module) -> dict:
    """What the official V1 trainers save (whole model, the parts again, numpy accuracies)."""
    return {
        "epoch": 5,
        "model_state_dict": model.state_dict(),
        "glancer": model.glancer.state_dict(),
        "focuser": model.focuser.state_dict(),
        "fc": model.classifier.state_dict(),
        "policy": model.focuser.policy.policy.state_dict(),
        "scaler": None,
        "acc": torch.tensor(61.5),
        "best_acc": np.float64(62.25),
        "optimizer": None,
    }


def _perturb_v1(model: torch.nn.Module) -> None:
    """Perturb the model and its policy (the Sth-Sth PPO object is no nn.Module, so ``modules()`` does not
    reach it); the official trainers then load both PPO copies from the saved learner."""
    oc.perturb(model)
    oc.perturb(model.focuser.policy.policy, seed=1)
    model.focuser.policy.policy_old.load_state_dict(model.focuser.policy.policy.state_dict())


def test_v1_frame_logits_match_official(frames, tmp_path, monkeypatch):
    folder = oc.official_folder("v1", "frame")
    with oc.official_code(folder, monkeypatch):
        torch.manual_seed(0)
        theirs = oc.build_v1_frame(T, 200, 128)
        _perturb_v1(theirs)
        torch.save(_v1_checkpoint(theirs), tmp_path / "ckpt.pth.tar")
        parts = {
            k: v for k, v in _v1_checkpoint(theirs).items() if k in ("glancer", "focuser", "fc", "policy")
        }
        torch.save(parts, tmp_path / "parts.pth.tar")
        theirs.eval()
        x = frames.reshape(B, T * 3, 224, 224)
        with torch.no_grad():  # stage 3 / evaluation, and the stage-0 heads on whole frames
            logits = theirs(input=x, scan=x, training=False, backbone_pred=False, one_step=True, gpu=0)[0]
            glance_head = theirs(input=x, glancer=True, backbone_pred=True, one_step=False)
            focus_head = theirs(input=x, glancer=False, backbone_pred=True, one_step=False)
    for name in ("ckpt", "parts"):  # the whole-model entry, or the per-part entries only
        report = v1_official.import_checkpoint(
            tmp_path / f"{name}.pth.tar",
            "actnet",
            tmp_path / f"{name}.pt",
            patch_size=128,
            overrides={"frames": T},
        )
        assert {why for _, why in report.dropped} == {v1_official._OLD} and report.initialised == []
        ours = load_model(tmp_path / f"{name}.pt")
        with torch.no_grad():
            out = ours(frames)
            whole = ours.focus.head(ours.focus(frames.flatten(0, 1))[1]).view(B, T, -1)
        _check(
            f"V1 frame ({name})",
            {
                "per-step logits": (out["logits"], logits.view(B, T, -1)),
                "glance head": (out["glance_logits"], glance_head),
                "focus head on whole frames": (whole, focus_head),
            },
        )


def test_v1_video_logits_match_official(video_clips, tmp_path, monkeypatch):
    glance, focus = video_clips
    folder = oc.official_folder("v1", "video")
    with oc.official_code(folder, monkeypatch):
        torch.manual_seed(0)
        theirs = oc.build_v1_video(TG, TF, 174, 160)
        _perturb_v1(theirs)
        torch.save(_v1_checkpoint(theirs), tmp_path / "ckpt.pth.tar")
        theirs.eval()
        theirs.focuser.policy.policy_old.eval()  # no submodule of theirs: the official validate() does this
        args = oc.ns(num_segments_glancer=TG, num_segments_focuser=TF, video_div=1, patch_size=160)
        with torch.no_grad():
            maps, glance_logits = theirs.glance(glance.reshape(B, TG * 3, 224, 224))
            logits, _ = theirs.action_stage3(focus, maps, glance_logits, 0, args)
    report = v1_official.import_checkpoint(
        tmp_path / "ckpt.pth.tar",
        "sthv1",
        tmp_path / "ours.pt",
        patch_size=160,
        overrides={"frames": TF, "glance_frames": TG},
    )
    assert {k.split(".")[1] for k, _ in report.initialised} == {"head"}
    assert {k.split(".")[0] for k, _ in report.initialised} == {"focus"}
    with torch.no_grad():
        out = load_model(tmp_path / "ours.pt")(focus, glance)
    _check(
        "V1 video (TSM)",
        {"logits": (out["logits"][:, 0], logits), "glance head": (out["glance_logits"], glance_logits)},
    )


# ----------------------------------------------------------------------------- V2 training step
def _recording(monkeypatch, name: str, store: dict) -> None:
    """Record what ``torch.<name>`` returns (the official random-patch locations)."""
    real = getattr(torch, name)

    def wrapper(*args, **kwargs):
        store[name] = real(*args, **kwargs)
        return store[name]

    monkeypatch.setattr(torch, name, wrapper)


def _official_v2_step(variant: str, glance_arch: str, frames, clips, labels, tmp_path, monkeypatch):
    """Build, save and run one official training step; -> (loss, grads by official name, random locations)."""
    folder = oc.official_folder("v2", variant)
    ce = torch.nn.functional.cross_entropy
    store: dict = {}
    with oc.official_code(folder, monkeypatch):
        torch.manual_seed(0)
        theirs = (
            oc.build_v2_frame(glance_arch, T, 200, 128)
            if variant == "frame"
            else oc.build_v2_video(TG, 174, 144)
        )
        oc.perturb(theirs)
        torch.save({"state_dict": oc.dp_state_dict(theirs)}, tmp_path / "ckpt.pth.tar")
        oc.no_dropout(theirs)
        theirs.train()
        if variant == "frame":
            _recording(monkeypatch, "rand_like", store)
            passes = theirs(frames.reshape(B, T * 3, 224, 224))
            y = labels.view(B, 1).expand(B, T).reshape(-1)
            losses = [ce(cat, y) + ce(g, y) + ce(loc, y) for cat, _, g, loc in passes]
            where = store["rand_like"].view(B, T, 2)
        else:
            _recording(monkeypatch, "rand", store)
            glance, focus = clips
            passes = theirs(glance.reshape(B, TG * 3, 224, 224), focus.reshape(B, TF * 3, 224, 224))
            losses = [ce(out, labels) + ce(g, labels) + ce(loc, labels) for out, g, loc in passes]
            where = store["rand"].view(B, 1, 2)
        loss = (losses[0] + losses[1]) / 2
        loss.backward()
    grads = {n: p.grad for n, p in theirs.named_parameters() if p.grad is not None}
    return loss.detach(), grads, where


V2_STEP_CASES = [
    pytest.param("frame", "mbv2", id="frame-mbv2"),
    pytest.param("frame", "res50", id="frame-res50"),
    pytest.param("video", "mbv2", id="video"),
]


def _gru_as_official(monkeypatch) -> None:
    """Our GRUs computed as the official ``nn.GRU(batch_first=True)`` computes them, op for op.

    ``bench.models.gru.run_gru`` (time-major, contiguous input, batched recurrent-weight gradient) equals
    ``nn.GRU`` up to rounding (tests/test_gru.py), but a training step here is sensitive to the last bit:
    the policy's locations place bilinear samples, and a 1-ulp shift shows in train-mode gradients. So the
    step is compared with the GRU arithmetic held equal, and test_gru.py covers the rest."""
    from bench.models import classifiers, policies

    def official_gru(gru, x, h=None):
        out, h = gru(x.transpose(0, 1), h)  # what batch_first=True does inside nn.GRU
        return out.transpose(0, 1), h

    monkeypatch.setattr(policies, "run_gru", official_gru)
    monkeypatch.setattr(classifiers, "run_gru", official_gru)


def _worst_by_part(ours: dict, theirs: dict) -> dict:
    """Largest relative gradient difference per part (glance, focus, policy, classifier).

    Per tensor: max |difference| / max |official gradient|, the denominator floored at 1e-3 of the
    part's largest gradient: a bias followed by train-mode BatchNorm has a mathematically zero
    gradient, so both sides hold only rounding noise there.
    """
    scale: dict = {}
    for name, grad in theirs.items():
        part = name.split(".")[0]
        scale[part] = max(scale.get(part, 0.0), float(grad.abs().max()))
    worst: dict = {}
    for name, grad in ours.items():
        part = name.split(".")[0]
        den = max(float(theirs[name].abs().max()), 1e-3 * scale[part])
        worst[part] = max(worst.get(part, 0.0), float((grad - theirs[name]).abs().max()) / den)
    return worst


@pytest.mark.parametrize("variant,glance_arch", V2_STEP_CASES)
def test_v2_training_step_matches_official(variant, glance_arch, frames, video_clips, tmp_path, monkeypatch):
    from adafocus_v2 import objective as v2_objective
    from bench.models.importing import convert_state

    labels = torch.tensor([3, 171])
    want_loss, their_grads, where = _official_v2_step(
        variant, glance_arch, frames, video_clips, labels, tmp_path, monkeypatch
    )
    dataset, extra = (
        ("actnet", {"frames": T}) if variant == "frame" else ("sthv1", {"frames": TF, "glance_frames": TG})
    )
    patch = 128 if variant == "frame" else 144
    v2_official.import_checkpoint(
        tmp_path / "ckpt.pth.tar",
        dataset,
        tmp_path / "ours.pt",
        patch_size=patch,
        glance_arch=glance_arch if variant == "frame" else None,
        overrides=extra,
    )
    ours = load_model(tmp_path / "ours.pt").train()
    oc.no_dropout(ours)
    _gru_as_official(monkeypatch)
    monkeypatch.setattr(v2_objective, "random_locations", lambda shape, device=None, generator=None: where)
    x, g = (frames, None) if variant == "frame" else (video_clips[1], video_clips[0])
    parts = v2_objective.V2Objective(ours)(x, g, labels)
    parts["total"].backward()
    our_grads = {n: p.grad for n, p in ours.named_parameters()}
    layout = v2_official.official_layout(
        v2_official.paper_preset(dataset, glance_arch=glance_arch, overrides=extra)
    )
    mapped, _ = convert_state(their_grads, layout, our_grads, "official gradients")
    worst = _worst_by_part(our_grads, mapped)
    loss_diff = oc.rel_diff(parts["total"], want_loss)
    name = f"V2 {variant} ({glance_arch}) training step"
    print(f"\n[official equivalence] {name} loss: max relative difference {loss_diff:.2e}")
    for part, value in sorted(worst.items()):
        print(f"[official equivalence] {name} gradients of {part}: max relative difference {value:.2e}")
    assert worst["classifier"] < TOL
    assert loss_diff < TOL
    assert worst["policy"] < TOL and worst["focus"] < TOL
    assert worst["glance"] < 10 * TOL  # not asked for; depthwise-conv backward rounds a little more


# ----------------------------------------------------------------------------- optimiser groups and head init
SCRIPT_RATIOS = {
    "frame": dict(global_lr_ratio=0.5, stn_lr_ratio=0.1, classifier_lr_ratio=5.0),
    "video": dict(global_lr_ratio=0.5, stn_lr_ratio=0.01),
}  # the official training scripts


@pytest.mark.parametrize("variant", ["frame", "video"])
def test_v2_lr_ratio_of_every_parameter_matches_official(variant, tmp_path, monkeypatch):
    """Every parameter's lr ratio in our SGD groups equals the one the official ``get_optim_policies`` gives
    it (the paper preset's ratios), e.g. the Sth-Sth fused glance head (TSN new_fc) at the glance ratio."""
    from adafocus_v2.method import lr_ratios
    from bench.models import build_network, without_weight_files
    from bench.models.importing import convert_state
    from bench.training.optim import make_sgd

    folder = oc.official_folder("v2", variant)
    with oc.official_code(folder, monkeypatch):
        torch.manual_seed(0)
        args = oc.ns(**SCRIPT_RATIOS[variant])
        if variant == "frame":
            theirs = oc.build_v2_frame("mbv2", T, 200, 128)
            groups = theirs.get_optim_policies(args)
        else:
            import main

            theirs = oc.build_v2_video(TG, 174, 144)
            monkeypatch.setattr(main, "args", args, raising=False)  # the official method reads a global
            groups = theirs.get_optim_policies()
        ratio = {id(p): g["lr_mult"] for g in groups for p in g["params"]}
        theirs_ratio = {n: torch.full_like(p, ratio[id(p)]) for n, p in theirs.named_parameters()}
        new_heads = [theirs.global_CNN.new_fc, theirs.local_CNN.new_new_fc] if variant == "video" else []
    dataset, extra = (
        ("actnet", {"frames": T}) if variant == "frame" else ("sthv1", {"frames": TF, "glance_frames": TG})
    )
    preset = v2_official.paper_preset(dataset, overrides=extra)
    ours = build_network(without_weight_files(preset))
    opt = make_sgd(ours, base_lr=1.0, weight_decay=0.0, ratios=lr_ratios(preset.train, preset.variant))
    our_ratio = {id(p): g["lr_ratio"] for g in opt.param_groups for p in g["params"]}
    mapped, _ = convert_state(
        theirs_ratio,
        v2_official.official_layout(preset),
        {n: p for n, p in ours.named_parameters()},
        "official lr ratios",
    )
    wrong = [n for n, p in ours.named_parameters() if not torch.all(mapped[n] == our_ratio[id(p)])]
    print(
        f"\n[official equivalence] V2 {variant} lr ratios: {len(wrong)} of "
        f"{len(list(ours.parameters()))} parameters differ"
    )
    assert wrong == []
    for head in new_heads:  # TSN's new heads: N(0, 0.001), bias 0, in both code bases
        assert float(head.bias.abs().max()) == 0 and abs(float(head.weight.std()) - 1e-3) < 1e-4
    if variant == "video":
        for head in (ours.glance.head, ours.focus.head, ours.classifier.glance_fc, ours.classifier.focus_fc):
            assert float(head.fc.bias.abs().max()) == 0 and abs(float(head.fc.weight.std()) - 1e-3) < 1e-4


# ----------------------------------------------------------------------------- backbone weight files
def test_official_imagenet_and_res50_glance_files_load(tmp_path, monkeypatch):
    """The V2 code's MobileNetV2 ImageNet file layout (tonylins) and the layout of its 96x96 ResNet-50
    glance initialisation load as ``pretrained=PATH`` and give the same feature maps."""
    from bench.models import create_backbone

    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(3))
    small = torch.nn.functional.interpolate(x, (96, 96), mode="bilinear", align_corners=True)
    with oc.official_code(oc.official_folder("v2", "frame"), monkeypatch):
        import models.mobilenet_v2 as mb
        import models.resnet as rn

        torch.manual_seed(0)
        mbv2, res50 = mb.mobilenet_v2(pretrained=False), rn.resnet50()
        for m, name in (
            (mbv2, "mobilenetv2_1.0-f2a8633.pth.tar"),
            (res50, "Initialization_model_prime_resnet50_patch_size_96.pth"),
        ):
            oc.perturb(m)
            torch.save(m.state_dict(), tmp_path / name)
            m.eval()
        with torch.no_grad():
            want_m, want_r = mbv2.get_featmap(x)[0], res50.get_featmap(small)[0]
    ours_m = create_backbone("mbv2", pretrained=str(tmp_path / "mobilenetv2_1.0-f2a8633.pth.tar")).eval()
    ours_r = create_backbone(
        "res50", pretrained=str(tmp_path / "Initialization_model_prime_resnet50_patch_size_96.pth")
    ).eval()
    with torch.no_grad():
        _check(
            "backbone files",
            {
                "tonylins MobileNetV2 feature map": (ours_m(x)[0], want_m),
                "96x96 ResNet-50 glance feature map": (ours_r(small)[0], want_r),
            },
        )


def test_official_tsm_checkpoints_load(tmp_path, monkeypatch):
    """TSM checkpoints (``module.base_model.*`` with TSM wrappers, ``module.new_fc.*``), the layout the
    official Sth-Sth code loads its pre-trained glance and focus networks from."""
    from bench.models import create_backbone

    x = torch.randn(8, 3, 160, 160, generator=torch.Generator().manual_seed(4))
    with oc.official_code(oc.official_folder("v2", "video"), monkeypatch):
        from ops.models import TSN

        torch.manual_seed(0)
        want = {}
        for arch in ("mobilenetv2", "resnet50"):
            tsn = TSN(
                174,
                4,
                "RGB",
                base_model=arch,
                dropout=0.5,
                partial_bn=False,
                pretrain="scratch",
                is_shift=True,
                shift_div=8,
                shift_place="blockres",
                print_spec=False,
            )
            oc.perturb(tsn)
            torch.save(
                {"epoch": 50, "arch": arch, "state_dict": oc.dp_state_dict(tsn), "best_prec1": 45.0},
                tmp_path / f"TSM_{arch}_segment4.pth.tar",
            )
            body = tsn.base_model.eval()
            with torch.no_grad():
                want[arch] = (
                    body(x)[1]
                    if arch == "mobilenetv2"
                    else torch.nn.Sequential(*list(body.children())[:-2])(x)
                )
    got = {}
    for arch, ours in (("mobilenetv2", "tsm_mbv2"), ("resnet50", "tsm_res50")):
        net = create_backbone(
            ours, pretrained=str(tmp_path / f"TSM_{arch}_segment4.pth.tar"), num_segments=4
        ).eval()
        with torch.no_grad():
            got[arch] = net(x)[0]
    _check("TSM checkpoints", {f"{a} feature map": (got[a], want[a]) for a in want})
