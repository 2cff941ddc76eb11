"""Build the official AdaFocus models from a local checkout of their code, for the equivalence tests.

Nothing of the official code is in this repository: the tests read it from the folders named by
``ADABENCH_OFFICIAL_V1`` (a checkout of github.com/blackfeather-wang/AdaFocus) and
``ADABENCH_OFFICIAL_V2`` (github.com/LeapLabTHU/AdaFocusV2) and skip without them. The official
models call ``.cuda()`` and download ImageNet weights; inside ``official_code`` both are made no-ops
(CPU tensors, random initialisation) for the duration of one test.
"""

from __future__ import annotations

import contextlib
import os
import sys
import types
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest
import torch
from torch import nn

ENV = {"v1": "ADABENCH_OFFICIAL_V1", "v2": "ADABENCH_OFFICIAL_V2"}
UPSTREAM = {"v1": "blackfeather-wang/AdaFocus", "v2": "LeapLabTHU/AdaFocusV2"}
FOLDER = {
    ("v1", "frame"): "Experiments on ActivityNet, FCVID and Mini-Kinetics",
    ("v1", "video"): "Experiments on Something-Something V1&V2",
    ("v2", "frame"): "Experiments on ActivityNet, FCVID and Mini-Kinetics",
    ("v2", "video"): "Experiments on Sth-Sth and Jester",
}
# top-level names the official folders use for their own packages and scripts
_THEIR_MODULES = ("models", "ops", "archs", "basic_tools", "main", "opts")


def official_folder(method: str, variant: str) -> Path:
    """The official code folder of one variant, or skip saying how to get it."""
    env = ENV[method]
    root = os.environ.get(env)
    how = (
        f"set {env} to a checkout of github.com/{UPSTREAM[method]} (e.g. `git clone` it, or extract a "
        f"snapshot with `git archive HEAD | tar -x -C DIR`) to run the equivalence tests against the "
        f"official code"
    )
    if not root:
        pytest.skip(how)
    folder = Path(root) / FOLDER[(method, variant)]
    if not folder.is_dir():
        pytest.skip(f"{env}={root} has no folder '{FOLDER[(method, variant)]}'; {how}")
    return folder


def _theirs(name: str) -> bool:
    return name.split(".")[0] in _THEIR_MODULES


@contextlib.contextmanager
def official_code(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make ``folder`` importable (its ``models``/``ops`` packages shadow nothing of ours), ``.cuda()``
    a no-op and the unused logging imports stubs; undo everything afterwards."""
    monkeypatch.setattr(torch.Tensor, "cuda", lambda self, *a, **k: self)
    monkeypatch.setattr(nn.Module, "cuda", lambda self, *a, **k: self)
    for stub in ("tensorboardX", "hydra"):
        if stub not in sys.modules:
            module = types.ModuleType(stub)
            module.SummaryWriter = object  # type: ignore[attr-defined]
            monkeypatch.setitem(sys.modules, stub, module)
    for name in [n for n in sys.modules if _theirs(n)]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.syspath_prepend(str(folder))
    try:
        yield
    finally:
        for name in [n for n in sys.modules if _theirs(n)]:
            del sys.modules[name]


def perturb(model: nn.Module, seed: int = 0) -> None:
    """Random BatchNorm statistics and affine parameters, and non-zero biases everywhere, so every
    tensor of the state dict matters to the output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) * 1.0 + 0.5)
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) * 0.6 + 0.7)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
                m.num_batches_tracked.fill_(7)
            elif isinstance(getattr(m, "bias", None), torch.Tensor) and isinstance(m, (nn.Linear, nn.Conv2d)):
                m.bias.add_(torch.randn(m.bias.shape, generator=g) * 0.02)


def no_dropout(model: nn.Module) -> None:
    """Dropout masks are the one randomness the two code bases cannot share: switch them off."""
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0


def rel_diff(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    """max |ours - theirs| / max |theirs|."""
    ours, theirs = ours.detach().double(), theirs.detach().double()
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    return float((ours - theirs).abs().max() / theirs.abs().max().clamp_min(1e-30))


def ns(**kw: Any) -> types.SimpleNamespace:
    return types.SimpleNamespace(**kw)


def dp_state_dict(model: nn.Module) -> Dict[str, torch.Tensor]:
    """The state dict as ``DataParallel(model)`` saves it (``module.`` prefixes), built the same way."""
    return nn.DataParallel(model).state_dict()


# ----------------------------------------------------------------------------- the four variants
def build_v2_frame(glance_arch: str, frames: int, classes: int, patch: int) -> nn.Module:
    """Official AdaFocusV2 ActivityNet/FCVID/Mini-K model (random weights)."""
    import models.adafocus_v2 as m
    import models.mobilenet_v2 as mb
    import models.resnet as rn

    m.mobilenet_v2 = lambda pretrained=True: mb.mobilenet_v2(pretrained=False)
    m.resnet50 = lambda pretrained=False, **k: rn.resnet50(pretrained=False, **k)
    args = ns(
        num_segments=frames,
        num_classes=classes,
        dataset="actnet",
        input_size=224,
        batch_size=2,
        patch_size=patch,
        glance_arch=glance_arch,
        fc_dropout=0.2,
        dropout=0.2,
        stn_hidden_dim=2048,
        glance_ckpt_path="",
    )
    return m.AdaFocus(args)


def build_v2_video(glance_frames: int, classes: int, patch: int) -> nn.Module:
    """Official AdaFocusV2 Sth-Sth/Jester model (TSM; focus frames = 1.5 x glance frames)."""
    import main

    args = ns(
        num_segments=glance_frames,
        modality="RGB",
        consensus_type="avg",
        dropout=0.5,
        img_feature_dim=256,
        no_partialbn=True,
        pretrain="scratch",
        shift=True,
        shift_div=8,
        shift_place="blockres",
        tune_from=None,
        dataset="somethingv1",
        temporal_pool=False,
        non_local=False,
        feature_map_channels=1280,
        patch_size=patch,
    )
    return main.AdaFocus(classes, args)


def build_v1_frame(frames: int, classes: int, patch: int) -> nn.Module:
    """Official AdaFocus ActivityNet/FCVID/Mini-K model (GRU classifier, discrete 7x7 policy)."""
    import models.gfv_net as g
    import models.mobilenet as mb
    import models.resnet as rn

    g.mobilenet_v2 = lambda pretrained=False, **k: mb.mobilenet_v2(pretrained=False, **k)
    g.resnet50 = lambda pretrained=False, **k: rn.resnet50(pretrained=False, **k)
    args = ns(
        num_segments=frames,
        num_classes=classes,
        reward="random",
        dataset="actnet",
        input_size=224,
        batch_size=2,
        patch_size=patch,
        with_glancer=True,
        feature_map_channels=1280,
        glance_size=224,
        action_dim=49,
        hidden_state_dim=1024,
        policy_conv=True,
        gpu=0,
        continuous=False,
        gamma=0.7,
        policy_lr=3e-4,
        random_patch=False,
        dropout=0.8,
        consensus="gru",
        hidden_dim=1024,
    )
    return g.GFV(args)


def build_v1_video(glance_frames: int, focus_frames: int, classes: int, patch: int) -> nn.Module:
    """Official AdaFocus Sth-Sth model (TSM, continuous PPO), with the stage scripts' fc cut."""
    import models.gfv_net as g

    args = ns(
        num_segments_glancer=glance_frames,
        num_segments_focuser=focus_frames,
        num_classes=classes,
        batch_size=2,
        patch_size=patch,
        with_glancer=True,
        feature_map_channels=1280,
        video_div=1,
        glance_size=224,
        action_dim=25,
        hidden_state_dim=1024,
        policy_conv=True,
        gpu=0,
        ppo_continuous=True,
        gamma=0.7,
        policy_lr=3e-4,
        action_std=0.25,
        actorcritic_with_bn=True,
        modality="RGB",
        base_model="resnet50",
        partial_bn=False,
        pretrain="imagenet",
        is_shift=True,
        shift_div=8,
        shift_place="blockres",
        fc_lr5=False,
        temporal_pool=False,
        non_local=False,
        dropout=0.5,
        random_patch=False,
    )
    model = g.GFV(args)
    model.focuser.net.base_model = nn.Sequential(*list(model.focuser.net.base_model.children())[:-1])
    model.focuser.policy.policy_old.load_state_dict(model.focuser.policy.policy.state_dict())
    return model
