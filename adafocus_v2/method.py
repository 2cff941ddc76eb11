"""AdaFocusV2's registry entry: one stage trained end to end, plus the early-exit curve in its summary."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, cast

from adafocus_v2 import devices, early_exit, official, paper, params
from adafocus_v2.objective import V2Objective
from adafocus_v2.official_step import OFFICIAL_STEP
from bench.methods import Ablation, Column, Method, Option, PlanContext, RunOutcome, register_method
from bench.models import AdaFocusNet
from bench.training.evaluation import EvalResult, collect
from bench.training.optim import make_sgd, set_trainable
from bench.training.stage import Stage

STAGE = "v2"
# Early-exit thresholds need training-set logits. adabench protocol: a large training set is subsampled
# (evenly spaced) to this many videos; official protocol: like the official test_early_exit.py, a random
# subset of this size on Mini-Kinetics only, every training video elsewhere.
EXIT_TRAIN_VIDEOS = 20000
OFFICIAL_SUBSET_DATASETS = ("minik",)


def lr_ratios(hp: params.V2Params, variant: str = "frame") -> Dict[str, float]:
    """Parameter-name prefix -> lr ratio (V2 scripts: glance 0.5, policy 0.1 or 0.01, classifier 5).

    Video variant: the fused heads are the TSNs' ``new_fc``, which the official Sth-Sth code optimises with
    their network (``global_CNN`` at the glance ratio, ``local_CNN`` at 1), not as a classifier group."""
    ratios = {
        "glance": hp.glance_lr_ratio,
        "focus": hp.focus_lr_ratio,
        "policy": hp.policy_lr_ratio,
        "classifier": hp.classifier_lr_ratio,
    }
    if variant == "video":
        ratios.update({"classifier.glance_fc": hp.glance_lr_ratio, "classifier.focus_fc": hp.focus_lr_ratio})
    return ratios


def plan(ctx: PlanContext) -> List[Stage]:
    net, p, hp = cast(AdaFocusNet, ctx.net), ctx.preset, ctx.preset.train  # built by build_network
    objective = V2Objective(
        net, aux_supervision=hp.aux_supervision, diversity=hp.diversity, stop_gradient=hp.stop_gradient
    )

    def prepare() -> None:  # everything trains
        set_trainable(net, True)
        net.train()

    def optimizer() -> Any:
        return make_sgd(
            net,
            base_lr=hp.lr,
            weight_decay=p.weight_decay,
            ratios=lr_ratios(hp, p.variant),
            momentum=p.momentum,
        )

    def step(batch: Dict[str, Any], update: Any) -> Dict[str, Any]:
        parts = objective(batch["frames"], batch.get("glance"), batch["label"])
        update(parts["total"])
        out = {k: v.detach() for k, v in parts.items() if k != "total"}
        out["loss"] = parts["total"].detach()
        return out

    return [Stage(STAGE, hp.epochs, prepare, optimizer, step, grad_clip=p.grad_clip)]


def _adabench_exit(dataset: str) -> Dict[str, Any]:
    """Max softmax probability (the paper's wording); thresholds from training-set logits computed with the
    *evaluation* transform, so train and val confidences are measured the same way."""
    return {
        "criterion": early_exit.DEFAULT_CRITERION,
        "augmented": False,
        "max_videos": EXIT_TRAIN_VIDEOS,
        "random_subset": False,
    }


def _official_exit(dataset: str) -> Dict[str, Any]:
    """The official ``test_early_exit.py`` (pitfall 17): max raw logit; the training pass keeps the training
    augmentation (in eval mode); 20,000 random training videos on Mini-Kinetics, all of them elsewhere."""
    subset = EXIT_TRAIN_VIDEOS if dataset in OFFICIAL_SUBSET_DATASETS else None
    return {
        "criterion": "logit",
        "augmented": True,
        "max_videos": subset,
        "random_subset": subset is not None,
    }


EXIT_PROTOCOLS = {"adabench": _adabench_exit, "official": _official_exit}  # --protocol -> calibration


def exit_protocol(ctx: PlanContext) -> Dict[str, Any]:
    """How the early exit is calibrated under the run's protocol (``EXIT_PROTOCOLS``)."""
    return EXIT_PROTOCOLS[ctx.protocol](ctx.dataset)


def early_exit_curve(
    ctx: PlanContext, val: EvalResult, per_step_gflops: List[float], how: Mapping[str, Any]
) -> List[Dict[str, Any]]:
    """The V2+ curve over ``early_exit.DEFAULT_BUDGETS``, calibrated as ``how`` (``exit_protocol``) says."""
    if val.step_logits.shape[1] < 2:
        return []  # one classifier step (video variant): nothing to exit early from
    if ctx.train_eval_loader is None:
        return []
    loader = ctx.train_eval_loader(
        how["max_videos"], augmented=how["augmented"], seed=ctx.seed if how["random_subset"] else None
    )
    train = collect(ctx.net, loader, ctx.device, patch_mode="policy", env=ctx.env, precision=ctx.precision)
    points = early_exit.exit_curve(
        train["step_logits"],
        val.step_logits,
        val.labels,
        per_step_gflops,
        criterion=how["criterion"],
        val_labels_multi=val.labels_multi if ctx.multilabel else None,
        num_classes=ctx.num_classes,
    )
    return [pt.to_dict() for pt in points]


def summary_extras(ctx: PlanContext, outcome: RunOutcome) -> Dict[str, Any]:
    how = exit_protocol(ctx)
    return {
        "early_exit": early_exit_curve(ctx, outcome.results["learned"], outcome.flops.per_step, how),
        "exit_criterion": how["criterion"],
        "exit_calibration": how,
    }


METHOD = register_method(
    Method(
        name="v2",
        title="AdaFocusV2",
        description="CVPR 2022: one stage, end to end through a differentiable patch crop; "
        "conditional early exit",
        params=params.params,
        with_epochs=params.with_epochs,
        arch=params.arch,
        plan=plan,
        summary_extras=summary_extras,
        stage_names=(STAGE,),
        flops_aux_heads=True,
        baseline="v1",
        claims=paper,
        import_checkpoint=official.import_checkpoint,
        official_step=OFFICIAL_STEP,
        tunable=("policy_lr_ratio",),  # pi's SGD lr is lr * policy_lr_ratio
        regime=params.regime,
        official_devices=lambda variant: {STAGE: devices.DEVICES[variant]},
        options=(
            Option(
                "--no-aux",
                "aux_supervision",
                "AdaFocusV2 ablation: no auxiliary frame-wise losses on glance and focus.",
                value=False,
            ),
            Option("--no-diversity", "diversity", "AdaFocusV2 ablation: no random-patch pass.", value=False),
            Option(
                "--no-stop-gradient",
                "stop_gradient",
                "AdaFocusV2 ablation: the policy's gradient reaches the glance.",
                value=False,
            ),
        ),
        ablations=(
            Ablation("aux_supervision", "no-aux", "auxiliary supervision", "--no-aux"),
            Ablation("diversity", "no-div", "diversity augmentation", "--no-diversity"),
            Ablation("stop_gradient", "no-sg", "stop-gradient", "--no-stop-gradient"),
        ),
        columns=(
            Column("aux_supervision", "bool", "V2 auxiliary supervision on (config.yaml)"),
            Column("diversity", "bool", "V2 diversity augmentation on (config.yaml)"),
            Column("stop_gradient", "bool", "V2 stop-gradient on (config.yaml)"),
        ),
    )
)
