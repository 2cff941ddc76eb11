"""Uni-AdaFocus (``--arch paper``) against the official code: import a checkpoint saved the way the official
trainer saves it, compare per-step logits in eval mode, and one training step's loss terms and gradients for
the same random draws (the official draws are recorded and given to ours).

Skipped unless ``ADABENCH_OFFICIAL_UNI`` names a checkout (or git directory) of
github.com/LeapLabTHU/Uni-AdaFocus. Sizes are reduced where the official code allows it (batch 2, 12 segments,
6 glance and 4 focus frames, so the Monte-Carlo estimator draws without replacement); frames stay 224x224 (the
official crop assumes a 7x7 map)."""

from __future__ import annotations

import types

import pytest
import torch
from fixtures_runs import run_in_process
from torch import nn

from adafocus_uni import official
from adafocus_uni.model import Draws
from adafocus_uni.objective import UniObjective
from bench.models import load_model
from bench.models.importing import convert_state
from bench.tools.official_code import snapshot_folder
from tests import official_code as oc

ENV = "ADABENCH_OFFICIAL_UNI"
FOLDER = "Uni-AdaFocus with Experiments on ActivityNet, FCVID and Mini-Kinetics"
TOL = 1e-4
B, S, TG, TF, K, P = 2, 12, 6, 4, 200, 128
SIZES = {"frames": S, "glance_segments": TG, "focus_segments": TF}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = snapshot_folder(ENV, FOLDER, tmp_path_factory.mktemp("uni-official"))
    if path is None:
        pytest.skip(f"set {ENV} to a checkout (or git directory) of github.com/LeapLabTHU/Uni-AdaFocus")
    return path


@pytest.fixture
def frames():
    return torch.randn(B, S, 3, 224, 224, generator=torch.Generator().manual_seed(1))


def build_official() -> nn.Module:
    import models.mobilenet_v2 as mb
    import models.resnet as rn
    import models.uni_adafocus as m

    m.mobilenet_v2 = lambda pretrained=True: mb.mobilenet_v2(pretrained=False)
    m.resnet50 = lambda pretrained=False, **k: rn.resnet50(pretrained=False, **k)
    args = types.SimpleNamespace(
        num_segments=S,
        num_glance_segments=TG,
        num_focus_segments=TF,
        num_classes=K,
        dataset="actnet",
        input_size=224,
        batch_size=B,
        patch_size=P,
        glance_arch="mbv2",
        device=torch.device("cpu"),
        fc_dropout=0.2,
        stn_hidden_dim=128,
        temporal_hidden_dim=64,
        temperature=1.0,
        dropout=0.2,
    )
    torch.manual_seed(0)
    model = m.AdaFocus(args)
    oc.perturb(model)
    return model


def _import(theirs: nn.Module, tmp_path, norm_ratio: float = 1.0) -> nn.Module:
    torch.save(
        {"epoch": 3, "state_dict": nn.DataParallel(theirs).state_dict(), "best_acc1": 1.0},
        tmp_path / "ckpt.pth.tar",
    )
    report = official.import_checkpoint(
        tmp_path / "ckpt.pth.tar",
        "actnet",
        tmp_path / "ours.pt",
        patch_size=P,
        overrides={**SIZES, "norm_ratio": norm_ratio},
    )
    assert sorted(k for k, _ in report.dropped) == [
        "global_CNN.classifier.bias",
        "global_CNN.classifier.weight",
        "local_CNN.fc.bias",
        "local_CNN.fc.weight",
    ]
    assert report.initialised == []
    return load_model(tmp_path / "ours.pt")


def _check(name: str, pairs: dict, tol: float = TOL) -> None:
    diffs = {what: oc.rel_diff(got, want) for what, (got, want) in pairs.items()}
    for what, diff in diffs.items():
        print(f"\n[official equivalence] {name} {what}: max relative difference {diff:.2e}")
    bad = {what: f"{d:.2e}" for what, d in diffs.items() if not d < tol}
    assert not bad, f"{name}: {bad}"


def test_uni_eval_logits_match_official(folder, frames, tmp_path, monkeypatch):
    with oc.official_code(folder, monkeypatch):
        theirs = build_official().eval()
        with torch.no_grad():
            logits, pred, glance_logits, focus_logits, _, _, weights = theirs(
                frames.reshape(B, S * 3, 224, 224)
            )
    torch.save(
        {"epoch": 3, "state_dict": nn.DataParallel(theirs).state_dict(), "best_acc1": 1.0},
        tmp_path / "ckpt.pth.tar",
    )
    sets = [a for k, v in SIZES.items() for a in ("--set", f"{k}={v}")]
    assert (
        run_in_process(
            [
                "import-checkpoint",
                str(tmp_path / "ckpt.pth.tar"),
                "--method",
                "uni",
                "--dataset",
                "actnet",
                "--patch-size",
                str(P),
                *sets,
                "--out",
                str(tmp_path / "cli.pt"),
            ]
        )
        == 0
    )
    ours = load_model(tmp_path / "cli.pt")  # `adabench import-checkpoint --method uni`
    with torch.no_grad():
        out = ours(frames)
    _check(
        "Uni frame (eval)",
        {
            "per-step logits (glance + focus heads)": (out["all_logits"], logits.view(B, TG + TF, K)),
            "prediction": (out["logits"][:, -1], pred),
            "glance head": (out["glance_logits"], glance_logits.view(B, TG, K)),
            "focus head": (out["focus_logits"], focus_logits.view(B, TF, K)),
        },
    )
    assert out["logits"].shape == (B, TF + 1, K)  # exits after 0..Tf focus frames


class _Recorder:
    """Wraps the torch random functions the official forward calls and keeps what they returned."""

    def __init__(self, monkeypatch) -> None:
        self.calls: list = []
        for name in ("randint", "rand_like", "multinomial"):
            fn = getattr(torch, name)
            monkeypatch.setattr(torch, name, self._wrap(name, fn))

    def _wrap(self, name, fn):
        def call(*args, **kwargs):
            out = fn(*args, **kwargs)
            self.calls.append((name, out))
            return out

        return call

    def draws(self, focus_indices: torch.Tensor, weights_shape) -> Draws:
        calls = list(self.calls)
        names = [n for n, _ in calls]
        assert names[0] == "randint" and names[1] == "rand_like" and names[-1] == "rand_like", names
        glance = calls[0][1].view(B, TG)
        random_all = calls[1][1].view(B, S, 4)[..., :2]
        focus_idx = focus_indices.view(B, TF) - torch.arange(B)[:, None] * S
        random_patch = random_all[torch.arange(B)[:, None], focus_idx]
        levels = TG // 3
        drop = torch.zeros(B, 128, levels, TG, dtype=torch.bool)
        for level, (_, idx) in enumerate(calls[2:-1], start=1):  # the estimator's level i removes i frames
            drop[:, :, level].view(B * 128, TG).scatter_(1, idx, True)
        assert len(calls[2:-1]) == levels - 1
        return Draws(glance=glance, focus=calls[-1][1].view(B, TF), random_patch=random_patch, mc_drop=drop)


def test_uni_training_step_matches_official(folder, frames, tmp_path, monkeypatch):
    labels = torch.tensor([3, 17])
    ce = nn.CrossEntropyLoss()
    with oc.official_code(folder, monkeypatch):
        theirs = build_official()
        ours = _import(theirs, tmp_path)
        oc.no_dropout(theirs)
        theirs.train()
        with monkeypatch.context() as m:
            rec = _Recorder(m)
            p1, p2 = theirs(frames.reshape(B, S * 3, 224, 224))
        o1, _, g1, l1, t1, s1, action3, w1, _, focus_idx, _ = p1
        o2, _, g2, l2, t2, s2, _, _, _, _, _ = p2
        y = lambda t: labels.repeat_interleave(t)  # noqa: E731
        terms = {
            "classifier": (ce(o1, y(TG + TF)) + ce(o2, y(TG + TF))) / 2,
            "glance": (ce(g1, y(TG)) + ce(g2, y(TG))) / 2,
            "focus": (ce(l1, y(TF)) + ce(l2, y(TF))) / 2,
            "temporal": (ce(t1, labels) + ce(t2, labels)) / 2,
            "spatial": (ce(s1, labels) + ce(s2, labels)) / 2,
            "norm": ((action3[:, 2:4] - torch.ones_like(action3[:, 2:4])) ** 2).mean(),
        }
        loss = sum(terms.values())
        theirs.zero_grad()
        loss.backward()
    draws = rec.draws(focus_idx, w1.shape)
    oc.no_dropout(ours)
    ours.train()
    parts = UniObjective(ours, norm_ratio=1.0)(frames, labels, draws)
    ours.zero_grad()
    parts["total"].backward()
    _check("Uni frame (training step)", {f"loss term {k}": (parts[k], v) for k, v in terms.items()}, tol=1e-5)
    _check("Uni frame (training step)", {"total loss": (parts["total"], loss)}, tol=1e-5)
    # their gradients, mapped onto our names by the checkpoint layout (BatchNorm statistics ride along)
    state = {k: v.clone() for k, v in theirs.state_dict().items()}
    state.update(
        {n: (p.grad if p.grad is not None else torch.zeros_like(p)) for n, p in theirs.named_parameters()}
    )
    their_grads, _ = convert_state(state, official.frame_layout(), ours.state_dict())
    # A bias feeding straight into a train-mode BatchNorm (MobileNetV2's linear bottlenecks, the classifier
    # MLPs) has an exact gradient of zero: there both sides hold float noise, which must stay noise-sized.
    grads = {n: p.grad for n, p in ours.named_parameters() if p.grad is not None}
    scale = max(float(g.abs().max()) for g in their_grads.values())
    noise = 1e-5 * scale
    real = {n: (g, their_grads[n]) for n, g in grads.items() if float(their_grads[n].abs().max()) > noise}
    for name in set(grads) - set(real):
        assert float(grads[name].abs().max()) < noise, name
    _check("Uni frame gradient", real)
    assert len(real) > 250
    for name, p in ours.named_parameters():  # what gets no gradient gets none on their side either
        if p.grad is None:
            assert their_grads[name].abs().max() == 0, name


def test_uni_learning_rate_ratios_match_the_official_groups(folder, monkeypatch):
    """Every parameter's lr multiplier: the official ``get_optim_policies`` against our ``lr_ratios``
    groups."""
    from adafocus_uni.build import build_uni
    from adafocus_uni.method import lr_ratios
    from bench.models import without_weight_files
    from bench.presets import get_preset
    from bench.training.optim import param_groups_by_name

    with oc.official_code(folder, monkeypatch):
        theirs = build_official()
        args = types.SimpleNamespace(
            temporal_lr_ratio=0.2, stn_lr_ratio=0.2, global_lr_ratio=0.5, classifier_lr_ratio=20.0
        )
        # each official tensor filled with its group's multiplier, then mapped onto our names by the layout
        filled = {k: torch.zeros_like(v) for k, v in theirs.state_dict().items()}
        for group in theirs.get_optim_policies(args):
            ids = {id(p) for p in group["params"]}
            for name, p in theirs.named_parameters():
                if id(p) in ids:
                    filled[name] = torch.full_like(p, group["lr_mult"])
    preset = without_weight_files(get_preset("actnet", "paper", method="uni", arch="paper", **SIZES))
    ours = build_uni(preset)
    mapped, _ = convert_state(filled, official.frame_layout(), ours.state_dict())
    groups = param_groups_by_name(ours, lr_ratios(preset.train), 1.0, 0.0)
    ratio = {id(p): g["lr_ratio"] for g in groups for p in g["params"]}
    checked = 0
    for name, p in ours.named_parameters():
        want = mapped[name].unique()
        assert len(want) == 1 and float(want) == pytest.approx(ratio[id(p)]), name
        checked += 1
    assert checked == len(list(ours.parameters()))
