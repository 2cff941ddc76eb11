"""One stage-2 (PPO policy) training step of the official AdaFocus (V1) code (ActivityNet/FCVID/Mini-Kinetics
variant), built from a local snapshot for ``adabench selfcheck`` to time beside ours
(``bench.tools.official_code``; nothing of that code is copied here). As
``../shared/tools/official_v1_stage2_step.py``: random weights, 49 actions, GRU classifier; the glance under
no_grad, then its step-by-step loop over the frames with the
random-patch reward, then its PPO update."""

from __future__ import annotations

import types
from typing import Any, Callable

import torch
import torch.nn.functional as F

from bench.methods import OfficialStep

ENV = "ADABENCH_OFFICIAL_V1"
FOLDER = "Experiments on ActivityNet, FCVID and Mini-Kinetics"


def build(preset: Any, device: torch.device, batch: int) -> Callable[[], Any]:
    import PIL.Image

    # the official transforms read the old attribute, which Pillow no longer declares
    PIL.Image.Image.BILINEAR = PIL.Image.BILINEAR  # type: ignore[attr-defined]
    # the official package (importable inside bench.tools.official_code.official_modules)
    import models.gfv_net as g
    import models.mobilenet as mb
    import models.resnet as rn

    g.mobilenet_v2 = lambda pretrained=True, **k: mb.mobilenet_v2(pretrained=False, **k)
    g.resnet50 = lambda pretrained=True, **k: rn.resnet50(pretrained=False, **k)
    t, s, k = preset.frames, preset.input_size, preset.num_classes
    args = types.SimpleNamespace(
        num_segments=t,
        num_classes=k,
        reward="random",
        dataset=preset.dataset,
        input_size=s,
        batch_size=batch,
        patch_size=preset.patch_size,
        with_glancer=True,
        feature_map_channels=1280,
        glance_size=s,
        action_dim=49,
        hidden_state_dim=1024,
        policy_conv=True,
        gpu=None,
        continuous=False,
        gamma=0.7,
        policy_lr=0.0003,
        random_patch=False,
        dropout=0.8,
        consensus="gru",
        hidden_dim=1024,
        train_stage=2,
    )
    torch.manual_seed(0)
    model = g.GFV(args)
    model.train_mode(args)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, t * 3, s, s, generator=gen).to(device)
    y = torch.randint(0, k, (batch,), generator=gen).to(device)

    def step() -> None:
        images = x.view(batch, t, 3, s, s)
        with torch.no_grad():
            fmap, feat = model.glance(F.interpolate(x, (s, s)))
        for i in range(t):
            out, _, _, bsl = model.one_step_act(
                images[:, i], fmap[:, i], feat[:, i], restart_batch=(i == 0), training=True
            )
            conf = torch.gather(F.softmax(out.detach(), 1), 1, y.view(-1, 1)).view(1, -1)
            base = torch.gather(F.softmax(bsl.detach(), 1), 1, y.view(-1, 1)).view(1, -1)
            model.focuser.memory.rewards.append(conf - base)
        model.focuser.update()

    return step


OFFICIAL_STEP = OfficialStep(
    env=ENV,
    folder=FOLDER,
    stage="stage2",
    dataset="actnet",
    arch="paper",
    build=build,
    label="official AdaFocus stage-2 (PPO) step",
)
