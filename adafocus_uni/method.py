"""Uni-AdaFocus's registry entry: the only module of the package that talks to the shared run machinery
(bench.training.driver, bench.training.optim, bench.training.evaluation, bench.methods). One stage trained end
to end, plus the sample-wise early-exit curve in its summary."""

from __future__ import annotations

from typing import Any, Dict, List, cast

from adafocus_uni import early_exit, official, paper, params
from adafocus_uni.build import build_uni
from adafocus_uni.model import UniNet
from adafocus_uni.objective import UniObjective
from adafocus_uni.official_step import OFFICIAL_STEP
from bench.methods import Ablation, Column, Method, Option, PlanContext, RunOutcome, register_method
from bench.training.evaluation import EvalResult, collect
from bench.training.optim import make_sgd, set_trainable
from bench.training.stage import Stage

STAGE = "uni"
EXIT_TRAIN_VIDEOS = 20000  # training videos (evenly spaced) the exit thresholds are calibrated on


def lr_ratios(hp: params.UniParams) -> Dict[str, float]:
    """Parameter-name prefix -> lr ratio (the official optimiser groups)."""
    return {
        "glance": hp.glance_lr_ratio,
        "spatial_head": hp.glance_lr_ratio,
        "focus": hp.focus_lr_ratio,
        "policy.spatial": hp.spatial_lr_ratio,
        "policy.temporal": hp.temporal_lr_ratio,
        "classifier": hp.classifier_lr_ratio,
    }


def plan(ctx: PlanContext) -> List[Stage]:
    net, hp = cast(UniNet, ctx.net), ctx.preset.train  # built by the entry's ``network`` (build_uni)
    objective = UniObjective(net, norm_ratio=hp.norm_ratio, kl_ratio=hp.kl_ratio)

    def prepare() -> None:  # everything trains, except a policy an ablation replaces
        set_trainable(net, True)
        if not hp.temporal_policy:
            set_trainable(net.policy.temporal, False)
        net.train()

    def optimizer() -> Any:
        return make_sgd(
            net,
            base_lr=hp.lr,
            weight_decay=hp.weight_decay,
            ratios=lr_ratios(hp),
            momentum=ctx.preset.momentum,
        )

    def step(batch: Dict[str, Any], update: Any) -> Dict[str, Any]:
        parts = objective(batch["frames"], batch["label"])
        update(parts["total"])
        out = {k: v.detach() for k, v in parts.items() if k != "total"}
        out["loss"] = parts["total"].detach()
        return out

    return [Stage(STAGE, hp.epochs, prepare, optimizer, step, grad_clip=ctx.preset.grad_clip)]


# --protocol -> the exit's confidence: max softmax probability (the paper's wording); the official code's max
# raw logit
EXIT_CRITERIA = {"adabench": early_exit.DEFAULT_CRITERION, "official": "logit"}


def exit_criterion(ctx: PlanContext) -> str:
    return EXIT_CRITERIA[ctx.protocol]


def early_exit_curve(ctx: PlanContext, val: EvalResult, exit_gflops: List[float]) -> List[Dict[str, Any]]:
    """The sample-wise exit curve (exits after 0..Tf focus frames), thresholds from training-set logits
    computed with the evaluation transform (at most ``EXIT_TRAIN_VIDEOS``, evenly spaced)."""
    if ctx.train_eval_loader is None:
        return []
    loader = ctx.train_eval_loader(EXIT_TRAIN_VIDEOS, augmented=False, seed=None)
    train = collect(ctx.net, loader, ctx.device, patch_mode="policy", env=ctx.env, precision=ctx.precision)
    points = early_exit.exit_curve(
        train["step_logits"],
        val.step_logits,
        val.labels,
        exit_gflops,
        criterion=exit_criterion(ctx),
        val_labels_multi=val.labels_multi if ctx.multilabel else None,
        num_classes=ctx.num_classes,
    )
    return [pt.to_dict() for pt in points]


def summary_extras(ctx: PlanContext, outcome: RunOutcome) -> Dict[str, Any]:
    return {
        "early_exit": early_exit_curve(ctx, outcome.results["learned"], outcome.flops.per_step),
        "exit_criterion": exit_criterion(ctx),
    }


METHOD = register_method(
    Method(
        name="uni",
        title="Uni-AdaFocus",
        description="TPAMI 2024: learned frames (temporal policy), patch positions and scales; "
        "sample-wise early exit",
        params=params.params,
        with_epochs=params.with_epochs,
        arch=params.arch,
        plan=plan,
        summary_extras=summary_extras,
        stage_names=(STAGE,),
        flops_aux_heads=False,
        baseline="v2",
        claims=paper,
        import_checkpoint=official.import_checkpoint,
        network=build_uni,
        official_step=OFFICIAL_STEP,
        # `make demo` stays the mission's V1-vs-V2 comparison (`adabench demo --method ...` adds Uni)
        demo=False,
        tunable=("spatial_lr_ratio",),  # the spatial policy's SGD lr is lr * spatial_lr_ratio
        regime=params.regime,
        # the official README trains with torch.distributed on 4 GPUs (adafocus-facts.md §4.5); the TSM
        # variant is not here
        official_devices=lambda variant: {
            STAGE: (4, "Uni-AdaFocus README: torch.distributed, 4 GPUs (facts §4.5)")
        },
        options=(
            Option(
                "--uniform-frames",
                "temporal_policy",
                "Uni-AdaFocus ablation: uniformly spread focus frames instead of the temporal policy's.",
                value=False,
            ),
            Option(
                "--fixed-scale",
                "learned_scale",
                "Uni-AdaFocus ablation: every patch P x P (no learned scale).",
                value=False,
            ),
        ),
        ablations=(
            Ablation("temporal_policy", "no-tp", "learned frame selection", "--uniform-frames"),
            Ablation("learned_scale", "no-scale", "learned patch scale", "--fixed-scale"),
        ),
        columns=(
            Column("temporal_policy", "bool", "Uni learned frame selection on (config.yaml)"),
            Column("learned_scale", "bool", "Uni learned patch scale on (config.yaml)"),
        ),
    )
)
