"""A toy third method, registered from outside the repository's packages (``ADABENCH_METHODS=toy_method``):
the proof that adding a method needs no edit to bench/, reports/, cli.py or commands/.

"ToyFocus" trains glance, focus and classifier in one stage on uniformly random patches (the policy is never
trained), and claims to beat AdaFocusV2. It has one option (``--toy-no-aux``), one ablation and one results
column (``toy_aux``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, List

import torch.nn.functional as F

from bench.methods import Ablation, Column, Method, Option, register_method
from bench.models import random_locations
from bench.presets import check_params
from bench.training.losses import framewise_ce
from bench.training.optim import make_sgd, set_trainable
from bench.training.stage import Stage


@dataclass(frozen=True)
class ToyParams:
    epochs: int = 2
    batch_size: int = 8
    lr: float = 0.05
    aux: bool = True  # also train the glance and focus heads

    def __post_init__(self) -> None:
        check_params(self)


def _plan(ctx: Any) -> List[Stage]:
    net, hp = ctx.net, ctx.preset.train

    def prepare() -> None:
        set_trainable(net, True)
        net.policy.requires_grad_(False)
        net.train()

    def step(batch: Dict[str, Any], update: Any) -> Dict[str, Any]:
        frames, labels = batch["frames"], batch["label"]
        b = frames.shape[0]
        out = net(
            frames,
            batch.get("glance"),
            locations=random_locations(net.decision_shape(frames, None), frames.device),
            aux=hp.aux,
        )
        loss = framewise_ce(out["logits"], labels)
        if hp.aux:
            loss = loss + F.cross_entropy(out["focus_logits"].mean(1).float(), labels)
        update(loss)
        return {"loss": loss.detach(), "batch": frames.new_tensor(float(b))}

    return [Stage("toy", hp.epochs, prepare, lambda: make_sgd(net, base_lr=hp.lr, weight_decay=1e-4), step)]


METHOD = register_method(
    Method(
        name="toy",
        title="ToyFocus",
        description="a test method: random patches, one stage",
        params=lambda preset_name, variant, dataset: ToyParams(),
        with_epochs=lambda p, e: dataclasses.replace(p, epochs=e),
        arch=lambda d, name, variant, arch: dict(
            policy_head="sigmoid", crop="interp", policy_value_head=False
        ),
        plan=_plan,
        stage_names=("toy",),
        baseline="v2",
        options=(Option("--toy-no-aux", "aux", "ToyFocus ablation: no auxiliary focus loss.", value=False),),
        ablations=(Ablation("aux", "no-toyaux", "the auxiliary focus loss", "--toy-no-aux"),),
        columns=(Column("aux", "bool", "ToyFocus auxiliary focus loss on", name="toy_aux"),),
    )
)
