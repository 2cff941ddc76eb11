"""AdaFocusV1's registry entry: its four stages as ``bench.training.driver.Stage``s (the driver trains them).

Distributed runs need nothing special here: the driver averages every stage's gradients over the
ranks, stage 2 included (each rank samples its own actions and rewards and normalises its returns over
its own batch; the original code refused multi-GPU RL).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Dict, List, cast

import torch

from adafocus_v1 import devices, official, params, rl
from adafocus_v1.official_step import OFFICIAL_STEP
from adafocus_v1.rewards import REWARDS
from adafocus_v1.stage2 import rl_step
from adafocus_v1.stages import (
    STAGE_NAMES,
    StageSpec,
    apply_stage_modes,
    check_stage_modes,
    stage_specs,
    tie_fused_glance,
)
from adafocus_v1.steps import stage0_loss, stage1_loss, stage3_loss
from bench.methods import Column, Method, Option, PlanContext, RunOutcome, register_method
from bench.models import AdaFocusNet
from bench.training.optim import make_sgd
from bench.training.stage import Stage


def rl_config(hp: params.V1Params) -> rl.RLConfig:
    return rl.RLConfig(
        algo=hp.rl_algorithm,
        gamma=hp.gamma,
        clip=hp.ppo_clip,
        value_coef=hp.value_weight,
        entropy_coef=hp.entropy_weight,
        lr=hp.policy_lr,
        epochs=hp.ppo_epochs,
    )


def _optimizer(net: AdaFocusNet, preset: Any, spec: StageSpec) -> Callable[[], torch.optim.Optimizer]:
    def adam() -> torch.optim.Optimizer:
        return torch.optim.Adam(net.policy.parameters(), lr=spec.lrs["policy"])

    def sgd() -> torch.optim.Optimizer:  # lrs are absolute per module path: ratios of a base lr of 1
        return make_sgd(
            net, base_lr=1.0, weight_decay=preset.weight_decay, ratios=spec.lrs, momentum=preset.momentum
        )

    return {"adam": adam, "sgd": sgd}[spec.optimizer]


def _supervised(loss_fn: Callable[..., Any]) -> Callable[..., Any]:
    """A step on one supervised loss of ``adafocus_v1.steps``."""

    def build(
        net: torch.nn.Module, spec: StageSpec, hp: params.V1Params, num_classes: int
    ) -> Callable[..., Any]:
        def step(batch: Dict[str, torch.Tensor], update: Any) -> Dict[str, torch.Tensor]:
            loss, parts = loss_fn(net, batch, spec)
            update(loss)
            return {"loss": loss.detach(), **parts}

        return step

    return build


def _rl(net: AdaFocusNet, spec: StageSpec, hp: params.V1Params, num_classes: int) -> Callable[..., Any]:
    cfg = rl_config(hp)
    return lambda batch, update: rl_step(net, batch, update, cfg, hp.reward, num_classes)


# StageSpec.loss -> the step it trains with
STEPS: Dict[str, Callable[..., Any]] = {
    "pretrain": _supervised(lambda net, batch, spec: stage0_loss(net, batch)),
    "patches": _supervised(lambda net, batch, spec: stage1_loss(net, batch)),
    "finetune": _supervised(
        lambda net, batch, spec: stage3_loss(net, batch, tune_focus="focus.backbone" in spec.trainable)
    ),
    "rl": _rl,
}


def _prepare(net: torch.nn.Module, spec: StageSpec) -> None:
    apply_stage_modes(net, spec)
    if spec.glance_frozen:  # f_G's head is frozen from stage 1 on, so the copy is the same every epoch
        tie_fused_glance(net)


def plan(ctx: PlanContext) -> List[Stage]:
    net, preset, hp = cast(AdaFocusNet, ctx.net), ctx.preset, ctx.preset.train  # built by build_network
    stages = []
    for _, spec in sorted(stage_specs(hp, preset.variant).items()):
        sgd = spec.optimizer == "sgd"
        stages.append(
            Stage(
                spec.name,
                spec.epochs,
                prepare=functools.partial(_prepare, net, spec),
                optimizer=_optimizer(net, preset, spec),
                step=STEPS[spec.loss](net, spec, hp, ctx.num_classes),
                cosine=sgd,
                grad_clip=preset.grad_clip if sgd else None,
                curve=bool(spec.curve_modes),
                curve_modes=spec.curve_modes or ("policy",),
                end_eval=spec.end_eval,
                check=functools.partial(check_stage_modes, net, spec),
            )
        )
    return stages


def summary_extras(ctx: PlanContext, outcome: RunOutcome) -> Dict[str, Any]:
    hp = ctx.preset.train
    ran = "stage3" in outcome.stages_run
    tuned = "focus.backbone" in stage_specs(hp, ctx.preset.variant)[3].trainable
    return {
        "rl": hp.rl_algorithm,
        "reward": hp.reward,
        "stage3_mode": hp.stage3 if ran else None,
        "stage3_focus_trained": tuned if ran else None,
        "after_stage2": outcome.stage_results.get("after_stage2"),
    }


METHOD = register_method(
    Method(
        name="v1",
        title="AdaFocusV1",
        description="ICCV 2021: pre-training, then random patches, an RL-trained patch policy, "
        "and fine-tuning",
        params=params.params,
        with_epochs=params.with_epochs,
        arch=params.arch,
        plan=plan,
        summary_extras=summary_extras,
        stage_names=STAGE_NAMES,
        flops_aux_heads=False,
        import_checkpoint=official.import_checkpoint,
        official_step=OFFICIAL_STEP,
        tunable=("policy_lr",),  # Adam lr of pi in stage 2 (RL)
        regime=params.regime,
        pretraining_stages=(STAGE_NAMES[0],),
        official_devices=devices.official_devices,
        options=(
            Option(
                "--rl",
                "rl_algorithm",
                "AdaFocusV1 stage-2 algorithm (default ppo, the original's).",
                choices=rl.ALGORITHMS,
            ),
            Option(
                "--reward",
                "reward",
                "AdaFocusV1 reward: gain over a random patch (default), over the previous "
                "step, or raw confidence.",
                choices=REWARDS,
            ),
            Option(
                "--stage3",
                "stage3",
                "AdaFocusV1 stage 3 tunes f_L + f_C (paper, default) or f_C only (official code).",
                choices=params.STAGE3_MODES,
            ),
        ),
        columns=(
            Column("rl_algorithm", "str", "V1 stage-2 algorithm: reinforce or ppo (config.yaml)", name="rl"),
            Column("reward", "str", "V1 reward: random, prev or conf (config.yaml)"),
            Column("stage3", "str", "V1 stage 3: paper or official (config.yaml)"),
        ),
    )
)
