"""Commands that train: ``run`` (a matched experiment, resumable), ``tune`` (the symmetric hyper-parameter
sweep) and ``demo`` (the main job on the synthetic benchmark, report included)."""

from __future__ import annotations

import dataclasses
import os
import sys

import click

from bench.errors import AdabenchError
from commands import INVOCATION
from commands.cluster import launcher_options, pop_launch
from commands.experiment_file import config_option, resolved_options, save_resolved
from commands.options import (
    SEED,
    generated_dataset_choices,
    method_choices,
    method_option_values,
    method_options,
    parse_sets,
    parse_stages,
    precision_options,
    protocol_choices,
)


# --------------------------------------------------------------------------- run
@click.command("run")
@config_option
@click.option(
    "--list-keys",
    is_flag=True,
    help="List every --set key with its default, per method (of --method, "
    "else every method; for --dataset, --preset and --arch), and exit.",
)
@click.option(
    "--method",
    "methods",
    type=click.Choice(method_choices()),
    multiple=True,
    help="Method(s) to train, repeatable: several make a matched experiment (same data, "
    "architecture and initial weights for each patch size x seed).",
)
@click.option(
    "--dataset",
    default="synthetic",
    show_default=True,
    help="Dataset name (see `adabench data list`); synthetic is generated on first use.",
)
@click.option(
    "--data-root",
    type=click.Path(file_okay=False),
    default=None,
    help="Dataset root directory (not needed for synthetic).",
)
@click.option("--preset", type=click.Choice(["paper", "tiny"]), default="tiny", show_default=True)
@click.option(
    "--arch",
    type=click.Choice(["matched", "paper"]),
    default="matched",
    show_default=True,
    help="matched: every method shares glance, focus, policy trunk and classifier.",
)
@click.option(
    "--patch-size",
    "patch_sizes",
    type=click.IntRange(min=1),
    multiple=True,
    help="Patch side P, repeatable for a sweep (default: the preset's).",
)
@click.option("--seed", "seeds", type=SEED, multiple=True, help="Seed, repeatable (default: 0).")
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=None,
    help="Training epochs (default: the preset's; a multi-stage method scales its stages).",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--runs-dir", type=click.Path(file_okay=False), default="runs", show_default=True)
@click.option("--deterministic", is_flag=True, help="Deterministic kernels (slower).")
@click.option(
    "--skip-bad", is_flag=True, help="Skip unreadable videos (listed in the manifest) instead of failing."
)
@click.option(
    "--no-preflight",
    is_flag=True,
    help="Do not open every video's header before training (a broken file then fails when it is read).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=None,
    help="DataLoader workers (default: from the machine).",
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a preset field of every method that has it (repeatable).",
)
@click.option(
    "--stages",
    callback=parse_stages,
    default=None,
    metavar="LIST",
    help="Multi-stage methods: the stages to run, e.g. 2,3 (from the previous stage's checkpoint).",
)
@click.option(
    "--protocol",
    type=click.Choice(protocol_choices()),
    default=protocol_choices()[0],
    show_default=True,
    help="adabench: last-epoch model, softmax early exit calibrated with the evaluation transform. official: "
    "the official code's (best validation checkpoint, max-logit exit calibrated on train-augmented "
    "logits, 20k-video subset for Mini-Kinetics only, glance and focus views augmented apart).",
)
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@click.option("--quiet", is_flag=True, help="No per-epoch lines on the console (log.txt keeps them).")
@click.option(
    "--nproc",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Processes (one per GPU, or CPU ranks with gloo): launches torchrun.",
)
@precision_options
@click.option(
    "--compile",
    "compile_",
    is_flag=True,
    help="torch.compile the backbones (opt-in: compilation takes minutes; see docs/speed.md).",
)
@launcher_options
@click.option(
    "--no-tensorboard",
    is_flag=True,
    help="No TensorBoard event files (runs/.../tb/; metrics.csv has the same values).",
)
@method_options
@click.pass_context
def run_cmd(
    click_ctx: click.Context,
    methods: tuple[str, ...],
    dataset: str,
    data_root: str | None,
    preset: str,
    arch: str,
    patch_sizes: tuple[int, ...],
    seeds: tuple[int, ...],
    epochs: int | None,
    device: str,
    runs_dir: str,
    deterministic: bool,
    skip_bad: bool,
    no_preflight: bool,
    workers: int | None,
    sets: tuple[str, ...],
    stages: tuple[int, ...] | None,
    protocol: str,
    no_progress: bool,
    quiet: bool,
    nproc: int,
    precision: str,
    channels_last: str,
    compile_: bool,
    list_keys: bool,
    no_tensorboard: bool,
    **method_options: object,
) -> None:
    """Train and evaluate each run (methods x patch sizes x seeds); re-running the command resumes.

    Each run writes runs/<dataset>/<method>/<name>/ (config.yaml, manifest.json, metrics.csv,
    checkpoints/, summary.json). A run that is complete is not trained again.
    """
    from bench.data import resolve_data_root
    from bench.errors import UsageError
    from bench.methods import method_names
    from bench.runs import tensorboard_log
    from bench.runs.config import RunConfig
    from bench.runs.experiment import key_table, plan_runs
    from bench.runs.runner import run_all
    from bench.tools.fanout import select_planned, submit, write_plan
    from bench.training.launch import under_torchrun

    if list_keys:
        click.echo("\n".join(key_table(dataset, preset, arch, methods or method_names())))
        return
    if not methods:
        raise UsageError("--method: give at least one method (`adabench run --help` lists them)")
    tensorboard_log.configure(not no_tensorboard)
    launch_spec, plan_index = pop_launch(method_options, nproc)
    base = RunConfig(
        method=methods[0],
        dataset=dataset,
        data_root=None,
        preset=preset,
        arch=arch,
        seed=seeds[0] if seeds else 0,
        epochs=epochs,
        device=device,
        runs_dir=runs_dir,
        deterministic=deterministic,
        skip_bad=skip_bad,
        preflight=not no_preflight,
        num_workers=workers,
        progress=not no_progress,
        quiet=quiet,
        stages=stages,
        overrides=parse_sets(sets),
        protocol=protocol,
        precision=precision,
        channels_last=channels_last,
        compile=compile_,
    )
    own = method_option_values(method_options, methods)
    # every option is validated before the data root is resolved (which may generate the synthetic benchmark)
    configs = plan_runs(
        base, methods, patch_sizes, seeds, own, data_root=lambda: str(resolve_data_root(dataset, data_root))
    )
    if plan_index is not None:  # a job of a fanned-out experiment: its one run
        configs = select_planned(configs, plan_index)
    elif not under_torchrun():  # the experiment file that reproduces this command, and its planned runs
        experiment = save_resolved(runs_dir, resolved_options(click_ctx))
        write_plan(experiment, configs)
        if launch_spec is not None:
            submit(configs, experiment, launch_spec, click.echo)
            return
    from bench.training.launch import LAUNCHED_ENV, launch

    if (
        nproc > 1 and os.environ.get(LAUNCHED_ENV) != "1"
    ):  # a rank --nproc started (nproc from a config file) trains
        launch(INVOCATION or sys.argv[1:], nproc)
        return
    run_all(configs, click.echo)


# --------------------------------------------------------------------------- tune
def _tune_default(name: str):
    import bench.tools.tune

    return getattr(bench.tools.tune, name)


@click.command("tune")
@click.option(
    "--method",
    "methods",
    type=click.Choice(method_choices()),
    multiple=True,
    help="Method(s) to tune, repeatable (default: every method that declares tunable hyper-parameters).",
)
@click.option(
    "--dataset", default="synthetic", show_default=True, help="Dataset name (see `adabench data list`)."
)
@click.option("--data-root", type=click.Path(file_okay=False), default=None, help="Dataset root directory.")
@click.option("--preset", type=click.Choice(["paper", "tiny"]), default="tiny", show_default=True)
@click.option("--arch", type=click.Choice(["matched", "paper"]), default="matched", show_default=True)
@click.option("--seed", "seeds", type=SEED, multiple=True, help="Seed, repeatable (default: 0, 1, 2).")
@click.option(
    "--factor",
    "factors",
    type=click.FloatRange(min=0, min_open=True),
    multiple=True,
    help="Multiplier of each tunable value, repeatable (default: 0.25, 0.5, 1, 2, 4).",
)
@click.option(
    "--holdout",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=_tune_default("HOLDOUT"),
    show_default=True,
    help="Fraction of the training split held out to score candidates on (val is never used).",
)
@click.option(
    "--epochs", type=click.IntRange(min=1), default=None, help="Training epochs (default: the preset's)."
)
@click.option(
    "--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a preset field (repeatable)."
)
@click.option(
    "--runs-dir", type=click.Path(file_okay=False), default=_tune_default("RUNS_DIR"), show_default=True
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default="tuning",
    show_default=True,
    help="Where tuning.md, tuning.csv and tuning.json go (commit them under docs/tuning/<dataset>/).",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=None,
    help="DataLoader workers (default: from the machine).",
)
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@config_option
@launcher_options
@click.pass_context
def tune_cmd(
    click_ctx: click.Context,
    methods: tuple[str, ...],
    dataset: str,
    data_root: str | None,
    preset: str,
    arch: str,
    seeds: tuple[int, ...],
    factors: tuple[float, ...],
    holdout: float,
    epochs: int | None,
    sets: tuple[str, ...],
    runs_dir: str,
    out_dir: str,
    device: str,
    workers: int | None,
    no_progress: bool,
    **launch_options: object,
) -> None:
    """Symmetric hyper-parameter sweep: every method's tunable values x the same factors, the same budget,
    scored on a held-out part of the training split (never on val); writes the table and the winners."""
    from bench.data import resolve_data_root
    from bench.runs.config import RunConfig
    from bench.runs.runner import run_all
    from bench.tools.fanout import select_planned, submit, write_plan
    from bench.tools.tune import FACTORS, SEEDS, TuneSpec, plan_tuning, run_tuning, tuned_methods
    from reports.tuning import winners_text, write_tuning

    launch_spec, plan_index = pop_launch(launch_options, 1)
    names = tuned_methods(methods)
    base = RunConfig(
        method=names[0],
        dataset=dataset,
        data_root=str(resolve_data_root(dataset, data_root)),
        preset=preset,
        arch=arch,
        epochs=epochs,
        device=device,
        runs_dir=runs_dir,
        num_workers=workers,
        progress=not no_progress,
        quiet=True,
        overrides=parse_sets(sets),
    )
    spec = TuneSpec(
        base,
        tuple(names),
        tuple(seeds) or SEEDS,
        tuple(factors) or FACTORS,
        holdout,
        data_root_given=data_root is not None,
    )
    if plan_index is not None or launch_spec is not None:  # one job per candidate run, then tune again here
        configs = [cfg for _, cfg in plan_tuning(spec)]
        if plan_index is not None:
            run_all(select_planned(configs, plan_index), click.echo)
            return
        experiment = save_resolved(runs_dir, resolved_options(click_ctx), command="tune")
        write_plan(experiment, configs)
        submit(configs, experiment, dataclasses.replace(launch_spec, nproc=1), click.echo, command="tune")
        click.echo(
            "when `adabench status` shows every run done, re-run this command with --launcher none: it reads "
            "the complete runs and writes the tables"
        )
        return
    record = run_tuning(spec, out_dir, click.echo)
    for path in write_tuning(record, out_dir):
        click.echo(f"tune: {path}")
    click.echo(f"tune: winners: {winners_text(record)}")


# --------------------------------------------------------------------------- demo
DEMO_SEEDS = (0, 1, 2)  # the claims' paired intervals need n >= 3


@click.command("demo")
@click.option(
    "--dataset",
    type=click.Choice(generated_dataset_choices()),
    default="synthetic",
    show_default=True,
    help="A generated benchmark (docs/benchmarks.md): synthetic (the frame variant in the papers' regime, "
    "`make demo`), synthetic_hard (its hard regime), synthetic_temporal (the object in a quarter of the "
    "frames: frame selection matters), synthetic_video / synthetic_video_hard (the Sth-Sth/Jester "
    "variant: TSM backbones, one location per video).",
)
@click.option(
    "--method",
    "methods",
    type=click.Choice(method_choices()),
    multiple=True,
    help="Method(s) to compare, repeatable (default: the methods of the mission's comparison, those whose "
    "registry entry is in the demo).",
)
@click.option(
    "--seed",
    "seeds",
    type=SEED,
    multiple=True,
    help="Seed, repeatable (default: 0, 1, 2; the claims' paired intervals need at least 3).",
)
@click.option(
    "--patch-size",
    "patch_sizes",
    type=click.IntRange(min=1),
    multiple=True,
    help="Patch side, repeatable (default: the papers' three sizes of the variant, scaled to the preset: "
    "96/128/160 -> 24/32/40 for the frame variant, 144/160/176 -> 36/40/44 for the video variant).",
)
@click.option("--no-ablations", is_flag=True, help="Only the full methods, not each method's ablations.")
@click.option("--runs-dir", type=click.Path(file_okay=False), default="runs", show_default=True)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default="report",
    show_default=True,
    help="Where report.md and its plots go.",
)
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@config_option
@launcher_options
@click.pass_context
def demo_cmd(
    click_ctx: click.Context,
    dataset: str,
    methods: tuple[str, ...],
    seeds: tuple[int, ...],
    patch_sizes: tuple[int, ...],
    no_ablations: bool,
    runs_dir: str,
    out_dir: str,
    no_progress: bool,
    **launch_options: object,
) -> None:
    """The main job on built-in data: a generated benchmark -> the matched experiment of every method at three
    patch sizes and each method's ablations at the middle one (tiny preset, seeds 0-2) -> the report, ending
    with each claim's verdict.

    One line per run says which run of how many and the time left. Re-running it resumes interrupted runs
    and reuses complete ones.
    """
    from bench.data import check_dataset, dataset_info, resolve_data_root
    from bench.io import check_writable_dir
    from bench.methods import get_method, method_names
    from bench.runs.config import RunConfig
    from bench.runs.experiment import plan_runs, with_ablations
    from bench.runs.runner import run_all
    from bench.scale import demo_patch_sizes
    from bench.tools.fanout import select_planned, submit, write_plan
    from reports.report import build_report, verdict_lines

    launch_spec, plan_index = pop_launch(launch_options, 1)
    check_writable_dir(out_dir)  # before training, not after
    root = resolve_data_root(dataset)  # generated into the cache on first use
    report = check_dataset(dataset, root)
    counts = ", ".join(f"{split} {n}" for split, n in report.splits.items())
    click.echo(f"{dataset} benchmark: {root} ({report.num_classes} classes; {counts} videos)")
    if not report.ok:
        raise AdabenchError(
            f"the {dataset} benchmark at {root} has problems: {'; '.join(report.problems[:3])}"
        )
    names = list(dict.fromkeys(methods)) or [n for n in method_names() if get_method(n).demo]
    base = RunConfig(
        method=names[0],
        dataset=dataset,
        data_root=str(root),
        preset="tiny",
        arch="matched",
        runs_dir=runs_dir,
        progress=not no_progress,
        quiet=True,
    )
    sizes = patch_sizes or demo_patch_sizes(dataset_info(dataset).variant)
    plans = plan_runs(base, names, patch_sizes=sizes, seeds=seeds or DEMO_SEEDS)
    middle = [cfg for cfg in plans if cfg.patch_size == sorted(sizes)[len(sizes) // 2]]
    plans = plans if no_ablations else plans + with_ablations(middle)[len(middle) :]
    if plan_index is not None:  # a job of a fanned-out demo: its one run (the report comes once all are done)
        run_all(select_planned(plans, plan_index), click.echo)
        return
    experiment = save_resolved(runs_dir, resolved_options(click_ctx), command="demo")
    write_plan(experiment, plans)
    if launch_spec is not None:
        submit(plans, experiment, dataclasses.replace(launch_spec, nproc=1), click.echo, command="demo")
        click.echo(
            f"when `adabench status --runs-dir {runs_dir}` shows every run done: "
            f"adabench report --runs-dir {runs_dir} --out {out_dir}"
        )
        return
    run_all(plans, click.echo)
    path = build_report(runs_dir, out_dir)
    click.echo(f"report: {path}")
    lines = verdict_lines(runs_dir, dataset=dataset)
    if lines:
        click.echo("claims (effect [95% paired t interval over seeds], n, verdict; details in the report):")
        click.echo("\n".join(f"  {line}" for line in lines))
