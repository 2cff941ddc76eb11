"""Commands on networks and checkpoints: ``flops`` (inference cost), ``import-checkpoint`` (an official
checkpoint -> an adabench model file), ``evaluate`` (a checkpoint, as a trained run is evaluated) and
``bench`` (throughput, or the time of one training step)."""

from __future__ import annotations

import click

from commands.options import (
    SEED,
    dataset_choices,
    method_choices,
    parse_sets,
    precision_options,
    protocol_choices,
)


# --------------------------------------------------------------------------- flops
@click.command("flops")
@click.option("--method", type=click.Choice(method_choices()), required=True, help="Which method's network.")
@click.option(
    "--dataset", required=True, help="Dataset whose preset and class count to use (e.g. actnet, jester)."
)
@click.option("--patch-size", type=int, default=None, help="Patch side P (default: the preset's).")
@click.option(
    "--glance-arch",
    type=click.Choice(["mbv2", "res50"]),
    default=None,
    help="Paper presets: MobileNetV2 on the frame or ResNet-50 on the frame resized to 96x96.",
)
@click.option(
    "--preset", "preset_name", type=click.Choice(["paper", "tiny"]), default="paper", show_default=True
)
@click.option("--arch", type=click.Choice(["matched", "paper"]), default="matched", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def flops_cmd(
    method: str,
    dataset: str,
    patch_size: int | None,
    glance_arch: str | None,
    preset_name: str,
    arch: str,
    as_json: bool,
) -> None:
    """Inference GFLOPs per video (fvcore; multiply-adds, BatchNorm excluded, GRU counted by hand)."""
    import json

    from bench.models import build_network, without_weight_files
    from bench.models.flops import count_flops
    from bench.presets import get_preset

    preset = get_preset(
        dataset,
        preset_name,
        method=method,
        arch=arch,
        glance_arch=glance_arch,
        **({"patch_size": patch_size} if patch_size is not None else {}),
    )
    report = count_flops(
        build_network(without_weight_files(preset)), preset
    )  # FLOPs do not depend on weights
    info = {
        "method": method,
        "dataset": dataset,
        "preset": preset_name,
        "arch": arch,
        "glance_arch": preset.glance_arch,
        "patch_size": preset.patch_size,
        "num_classes": preset.num_classes,
        "frames": preset.frames,
        "glance_frames": preset.glance_frames or preset.frames,
    }
    click.echo(json.dumps({**info, **report.to_dict()}, indent=2) if as_json else report.text(info))


# --------------------------------------------------------------------------- official checkpoints
@click.command("import-checkpoint")
@click.argument("src", type=click.Path(dir_okay=False))
@click.option(
    "--method", required=True, type=click.Choice(method_choices()), help="Whose official code saved SRC."
)
@click.option(
    "--dataset",
    required=True,
    type=click.Choice(dataset_choices()),
    help="Dataset the checkpoint was trained on (its preset and class count).",
)
@click.option(
    "--patch-size",
    type=click.IntRange(min=1),
    default=None,
    help="Patch side the checkpoint was trained with (checkpoints do not record it; default: the preset's).",
)
@click.option(
    "--glance-arch",
    type=click.Choice(["mbv2", "res50"]),
    default=None,
    help="Glance network of the checkpoint (ActivityNet-style variants: mbv2, or res50 on 96x96 frames).",
)
@click.option(
    "--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a preset field (repeatable)."
)
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False), help="The adabench model file to write."
)
def import_checkpoint_cmd(
    src: str,
    method: str,
    dataset: str,
    patch_size: int | None,
    glance_arch: str | None,
    sets: tuple[str, ...],
    out: str,
) -> None:
    """Convert a checkpoint of a method's official code into an adabench model file (every tensor accounted
    for)."""
    from bench.errors import UsageError
    from bench.methods import get_method

    entry = get_method(method)
    if entry.import_checkpoint is None:
        raise UsageError(f"--method {method}: {entry.title} has no importer of official checkpoints")
    report = entry.import_checkpoint(
        src, dataset, out, patch_size=patch_size, glance_arch=glance_arch, overrides=parse_sets(sets)
    )
    for line in report.lines():
        click.echo(line)
    click.echo(
        f"wrote {out} (bench.models.load_model reads it; `adabench evaluate --checkpoint {out}` scores it)"
    )


@click.command("evaluate")
@click.option(
    "--checkpoint",
    "checkpoint_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="An adabench model file (import-checkpoint) or a run's checkpoints/last.pt, <stage>.pt, best.pt.",
)
@click.option(
    "--dataset", required=True, type=click.Choice(dataset_choices()), help="Dataset to evaluate on."
)
@click.option(
    "--data-root",
    type=click.Path(file_okay=False),
    default=None,
    help="Dataset root directory (not needed for synthetic).",
)
@click.option(
    "--protocol",
    type=click.Choice(protocol_choices()),
    default=protocol_choices()[0],
    show_default=True,
    help="Early-exit calibration: adabench (softmax, evaluation transform) or official (max logit, "
    "training augmentation).",
)
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the random-patch evaluation.")
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=None, help="Videos per batch (default: the preset's)."
)
@click.option(
    "--runs-dir",
    type=click.Path(file_okay=False),
    default="runs",
    show_default=True,
    help="Where the evaluated-run directory goes (adabench report lists it beside trained runs).",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=None,
    help="DataLoader workers (default: from the machine).",
)
@click.option(
    "--skip-bad", is_flag=True, help="Skip unreadable videos (listed in the manifest) instead of failing."
)
@click.option("--no-preflight", is_flag=True, help="Do not open every video's header first.")
@precision_options
def evaluate_cmd(
    checkpoint_path: str,
    dataset: str,
    data_root: str | None,
    protocol: str,
    seed: int,
    batch_size: int | None,
    runs_dir: str,
    device: str,
    workers: int | None,
    skip_bad: bool,
    no_preflight: bool,
    precision: str,
    channels_last: str,
) -> None:
    """Evaluate a checkpoint as a trained run is evaluated (top-1, mAP, learned / random / centre patches, the
    method's extras such as the V2+ exit curve) into an evaluated-run directory."""
    from bench.tools.checkpoint_eval import evaluate_checkpoint, evaluated_line

    summary, run = evaluate_checkpoint(
        checkpoint_path,
        dataset,
        data_root,
        runs_dir=runs_dir,
        seed=seed,
        protocol=protocol,
        device=device,
        num_workers=workers,
        batch_size=batch_size,
        skip_bad=skip_bad,
        preflight=not no_preflight,
        precision=precision,
        channels_last=channels_last,
    )
    click.echo(evaluated_line(summary) + f"\n  {run.path}")


# --------------------------------------------------------------------------- bench
@click.command("bench")
@click.option("--dataset", default="synthetic", show_default=True, help="Dataset whose preset to use.")
@click.option(
    "--preset", "preset_name", type=click.Choice(["paper", "tiny"]), default="tiny", show_default=True
)
@click.option("--arch", type=click.Choice(["matched", "paper"]), default="matched", show_default=True)
@click.option("--patch-size", type=int, default=None, help="Patch side P (default: the preset's).")
@click.option(
    "--batch", type=click.IntRange(min=1), default=8, show_default=True, help="Videos per forward call."
)
@click.option("--warmup", type=click.IntRange(min=0), default=3, show_default=True)
@click.option(
    "--repeats", type=click.IntRange(min=1), default=10, show_default=True, help="Timed calls (median)."
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option(
    "--train-step",
    is_flag=True,
    help="Time one training step of every method and stage (the driver's step and update) instead "
    "of inference, with achieved GFLOP/s against the device's measured matmul peak.",
)
@click.option(
    "--method",
    "methods",
    type=click.Choice(method_choices()),
    multiple=True,
    help="Only these methods (repeatable; default: all).",
)
@click.option(
    "--step",
    "steps",
    multiple=True,
    metavar="NAME",
    help="--train-step: only the stages with these names (repeatable; default: all).",
)
@precision_options(multiple=True)
@click.option("--compile", "compile_", is_flag=True, help="--train-step: torch.compile the backbones first.")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write the rows as JSON to this file.",
)
def bench_cmd(
    dataset: str,
    preset_name: str,
    arch: str,
    patch_size: int | None,
    batch: int,
    warmup: int,
    repeats: int,
    device: str,
    train_step: bool,
    methods: tuple[str, ...],
    steps: tuple[str, ...],
    precision: tuple[str, ...],
    channels_last: str,
    compile_: bool,
    as_json: bool,
    out_path: str | None,
) -> None:
    """Inference throughput (videos/s) of every method and of the full-frame baseline, next to their GFLOPs;
    or, with --train-step, the time of one training step of every method and stage."""
    import json

    from bench.training.runtime import resolve_device

    dev = resolve_device(device)
    if train_step:
        from bench.tools.trainstep import benchmark_train_steps
        from reports.measurements import train_step_markdown

        rows = benchmark_train_steps(
            dataset,
            preset_name,
            arch=arch,
            patch_size=patch_size,
            batch=batch,
            warmup=warmup,
            repeats=repeats,
            device=dev,
            precisions=precision,
            channels_last=channels_last,
            methods=methods or None,
            steps=steps or None,
            compile=compile_,
        )
        _bench_out(rows, out_path)
        weights_note(rows)
        click.echo(json.dumps(rows, indent=2) if as_json else train_step_markdown(rows))
        return
    from bench.tools.throughput import benchmark_preset
    from reports.measurements import throughput_markdown

    if len(precision) > 1:
        raise click.BadParameter(
            "one precision at a time for inference throughput", param_hint="'--precision'"
        )
    rows = benchmark_preset(
        dataset,
        preset_name,
        arch=arch,
        patch_size=patch_size,
        batch=batch,
        warmup=warmup,
        repeats=repeats,
        device=dev,
        methods=methods or None,
        precision=precision[0],
        channels_last=channels_last,
    )
    _bench_out(rows, out_path)
    weights_note(rows)
    click.echo(json.dumps(rows, indent=2) if as_json else throughput_markdown(rows))


def weights_note(rows: list) -> None:
    """One line on stderr when some backbones were timed with random weights (rows' ``weights``)."""
    notes = list(dict.fromkeys(r["weights"] for r in rows if r.get("weights")))
    if notes:
        click.echo("; ".join(notes), err=True)


def _bench_out(rows: list, path: str | None) -> None:
    if path:
        from bench.io import atomic_write_json

        atomic_write_json(path, rows)
