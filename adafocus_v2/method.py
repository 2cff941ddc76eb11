"""AdaFocusV2's registry entry: one stage trained end to end, plus the early-exit curve in its summary."""
from __future__ import annotations

from typing import Any, Dict, List, Mapping

from adafocus_v2 import early_exit, paper, params
from adafocus_v2.objective import V2Objective
from bench.driver import Stage
from bench.evaluation import EvalResult, collect
from bench.methods import Ablation, Method, Option, register_method
from bench.training import make_sgd, set_trainable

STAGE = "v2"
# Early-exit thresholds need training-set logits; like the official code on Mini-Kinetics, a large
# training set is subsampled (evenly spaced) to this many videos.
EXIT_TRAIN_VIDEOS = 20000


def lr_ratios(hp: params.V2Params) -> Dict[str, float]:
    """Parameter-name prefix -> lr ratio (V2 scripts: glance 0.5, policy 0.1 or 0.01, classifier 5)."""
    return {"glance": hp.glance_lr_ratio, "focus": hp.focus_lr_ratio, "policy": hp.policy_lr_ratio,
            "classifier": hp.classifier_lr_ratio}


def plan(ctx: Any) -> List[Stage]:
    net, p, hp = ctx.net, ctx.preset, ctx.preset.train
    objective = V2Objective(net, aux_supervision=hp.aux_supervision, diversity=hp.diversity,
                            stop_gradient=hp.stop_gradient)

    def prepare() -> None:  # everything trains
        set_trainable(net, True)
        net.train()

    def optimizer() -> Any:
        return make_sgd(net, base_lr=hp.lr, weight_decay=p.weight_decay, ratios=lr_ratios(hp), momentum=p.momentum)

    def step(batch: Dict[str, Any], update: Any) -> Dict[str, Any]:
        parts = objective(batch["frames"], batch.get("glance"), batch["label"])
        update(parts["total"])
        out = {k: v.detach() for k, v in parts.items() if k != "total"}
        out["loss"] = parts["total"].detach()
        return out

    return [Stage(STAGE, hp.epochs, prepare, optimizer, step, grad_clip=p.grad_clip)]


def early_exit_curve(ctx: Any, val: EvalResult, per_step_gflops: List[float]) -> List[Dict[str, Any]]:
    """The V2+ curve. Thresholds come from training-set logits computed with the *evaluation* transform
    (the official script used the training augmentation, pitfall 17), so train and val confidences are
    measured the same way."""
    if val.step_logits.shape[1] < 2:
        return []  # one classifier step (video variant): nothing to exit early from
    loader = ctx.data.train_eval_loader(EXIT_TRAIN_VIDEOS)
    train = collect(ctx.net, loader, ctx.device, patch_mode="policy", env=ctx.env, precision=ctx.precision)
    points = early_exit.exit_curve(
        train["step_logits"], val.step_logits, val.labels, per_step_gflops,
        val_labels_multi=val.labels_multi if ctx.data.multilabel else None, num_classes=ctx.data.num_classes)
    return [pt.to_dict() for pt in points]


def summary_extras(ctx: Any, results: Mapping[str, EvalResult], flops: Any) -> Dict[str, Any]:
    return {"early_exit": early_exit_curve(ctx, results["learned"], flops.per_step),
            "exit_criterion": early_exit.DEFAULT_CRITERION}


METHOD = register_method(Method(
    name="v2", title="AdaFocusV2",
    description="CVPR 2022: one stage, end to end through a differentiable patch crop; conditional early exit",
    params=params.params, with_epochs=params.with_epochs, arch=params.arch, plan=plan,
    summary_extras=summary_extras, stage_names=(STAGE,), flops_aux_heads=True, baseline="v1", claims=paper,
    options=(
        Option("--no-aux", "aux_supervision", "AdaFocusV2 ablation: no auxiliary frame-wise losses on glance and focus.",
               value=False),
        Option("--no-diversity", "diversity", "AdaFocusV2 ablation: no random-patch pass.", value=False),
        Option("--no-stop-gradient", "stop_gradient", "AdaFocusV2 ablation: the policy's gradient reaches the glance.",
               value=False),
    ),
    ablations=(
        Ablation("aux_supervision", "no-aux", "auxiliary supervision", "--no-aux"),
        Ablation("diversity", "no-div", "diversity augmentation", "--no-diversity"),
        Ablation("stop_gradient", "no-sg", "stop-gradient", "--no-stop-gradient"),
    ),
))
