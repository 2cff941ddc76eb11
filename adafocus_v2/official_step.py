"""One training step of the official AdaFocusV2 code (ActivityNet/FCVID/Mini-Kinetics variant), built from a
local snapshot for ``adabench selfcheck`` to time beside ours (``bench.tools.official_code``; nothing of that
code is copied here). As ``../shared/tools/official_v2_step.py``: random weights (no ImageNet download), its
optimiser groups, and the loss its trainer computes (the policy and random-patch passes, each with the glance
and focus auxiliary losses, halved)."""

from __future__ import annotations

import types
from typing import Any, Callable

import torch
from torch import nn

from bench.methods import OfficialStep

ENV = "ADABENCH_OFFICIAL_V2"
FOLDER = "Experiments on ActivityNet, FCVID and Mini-Kinetics"


def build(preset: Any, device: torch.device, batch: int) -> Callable[[], Any]:
    # the official package (importable inside bench.tools.official_code.official_modules)
    import models.adafocus_v2 as m
    import models.mobilenet_v2 as mb
    import models.resnet as rn

    m.mobilenet_v2 = lambda pretrained=True: mb.mobilenet_v2(pretrained=False)
    m.resnet50 = lambda pretrained=False, **k: rn.resnet50(pretrained=False, **k)
    t, s, k = preset.frames, preset.input_size, preset.num_classes
    args = types.SimpleNamespace(
        num_segments=t,
        num_classes=k,
        dataset=preset.dataset,
        input_size=s,
        batch_size=batch,
        patch_size=preset.patch_size,
        glance_arch="mbv2",
        fc_dropout=0.2,
        dropout=0.2,
        stn_hidden_dim=2048,
        stn_lr_ratio=0.1,
        global_lr_ratio=0.5,
        classifier_lr_ratio=5.0,
        glance_ckpt_path="",
    )
    torch.manual_seed(0)
    model = m.AdaFocus(args).to(device).train()
    opt = torch.optim.SGD(model.get_optim_policies(args), lr=0.002, momentum=0.9, weight_decay=1e-4)
    ce = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, t * 3, s, s, generator=gen).to(device)
    y = torch.randint(0, k, (batch,), generator=gen).to(device).view(batch, 1).expand(batch, t).reshape(-1)

    def step() -> None:
        (o1, _, g1, l1), (o2, _, g2, l2) = model(x)
        loss = (ce(o1, y) + ce(g1, y) + ce(l1, y) + ce(o2, y) + ce(g2, y) + ce(l2, y)) / 2
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


OFFICIAL_STEP = OfficialStep(
    env=ENV,
    folder=FOLDER,
    stage="v2",
    dataset="actnet",
    arch="matched",
    build=build,
    label="official AdaFocusV2 training step",
)
