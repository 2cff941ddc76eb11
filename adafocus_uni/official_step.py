"""One training step of the official Uni-AdaFocus code (frame variant), built from a local snapshot for
``adabench selfcheck`` to time beside ours (``bench.tools.official_code``; nothing of that code is copied
here):
random weights (no ImageNet download), its optimiser groups, and the loss its trainer computes (both passes'
classifier, glance and focus terms, the temporal and spatial terms, halved, plus the scale norm term)."""

from __future__ import annotations

import types
from typing import Any, Callable

import torch
from torch import nn

from adafocus_uni.params import segments
from bench.methods import OfficialStep

ENV = "ADABENCH_OFFICIAL_UNI"
FOLDER = "Uni-AdaFocus with Experiments on ActivityNet, FCVID and Mini-Kinetics"


def build(preset: Any, device: torch.device, batch: int) -> Callable[[], Any]:
    # the official package (importable inside bench.tools.official_code.official_modules)
    import models.mobilenet_v2 as mb
    import models.resnet as rn
    import models.uni_adafocus as m

    m.mobilenet_v2 = lambda pretrained=True: mb.mobilenet_v2(pretrained=False)
    m.resnet50 = lambda pretrained=False, **k: rn.resnet50(pretrained=False, **k)
    s, tg, tf = segments(preset)
    size, k, hp = preset.input_size, preset.num_classes, preset.train
    args = types.SimpleNamespace(
        num_segments=s,
        num_glance_segments=tg,
        num_focus_segments=tf,
        num_classes=k,
        dataset=preset.dataset,
        input_size=size,
        batch_size=batch,
        patch_size=preset.patch_size,
        glance_arch="mbv2",
        device=device,
        fc_dropout=preset.fc_dropout,
        dropout=preset.dropout,
        stn_hidden_dim=hp.spatial_hidden,
        temporal_hidden_dim=hp.temporal_hidden,
        temperature=hp.temperature,
        temporal_lr_ratio=hp.temporal_lr_ratio,
        stn_lr_ratio=hp.spatial_lr_ratio,
        global_lr_ratio=hp.glance_lr_ratio,
        classifier_lr_ratio=hp.classifier_lr_ratio,
    )
    torch.manual_seed(0)
    model = m.AdaFocus(args).to(device).train()
    groups = [{**g, "lr": hp.lr * g["lr_mult"]} for g in model.get_optim_policies(args)]
    opt = torch.optim.SGD(groups, lr=hp.lr, momentum=0.9, weight_decay=hp.weight_decay)
    ce = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, s * 3, size, size, generator=gen).to(device)
    y = torch.randint(0, k, (batch,), generator=gen).to(device)
    per = lambda t: y.view(batch, 1).expand(batch, t).reshape(-1)  # noqa: E731

    def step() -> None:
        p1, p2 = model(x)
        (o1, _, g1, l1, t1, s1, a3, *_), (o2, _, g2, l2, t2, s2, *_) = p1, p2
        loss = (
            ce(o1, per(tg + tf))
            + ce(o2, per(tg + tf))
            + ce(g1, per(tg))
            + ce(g2, per(tg))
            + ce(l1, per(tf))
            + ce(l2, per(tf))
            + ce(t1, y)
            + ce(t2, y)
            + ce(s1, y)
            + ce(s2, y)
        ) / 2
        loss = loss + hp.norm_ratio * ((a3[:, 2:4] - 1) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


OFFICIAL_STEP = OfficialStep(
    env=ENV,
    folder=FOLDER,
    stage="uni",
    dataset="actnet",
    arch="paper",
    build=build,
    label="official Uni-AdaFocus training step",
)
