"""The ``adabench`` command line: data, flops, run, import-checkpoint, evaluate, bench, report, check.

Every command is a thin layer over functions in ``bench/``, ``adafocus_v1/``,
``adafocus_v2/`` and ``reports/``. Expected failures print one line
(``error: ...``) and exit 2 for usage errors, 1 otherwise; never a traceback.
"""
from __future__ import annotations

import sys

import click

from bench.errors import AdabenchError
from bench.failures import quiet_startup_interrupts

quiet_startup_interrupts()  # before the options below import torch (seconds)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="adabench")
def cli() -> None:
    """adabench: matched AdaFocusV1 vs AdaFocusV2 experiments for efficient video recognition."""


# --------------------------------------------------------------------------- data
@cli.group()
def data() -> None:
    """List, generate and check datasets."""


def _dataset_names() -> list[str]:
    from bench.data import list_datasets

    return list_datasets()


def _protocols() -> list[str]:
    from bench.config import PROTOCOLS

    return list(PROTOCOLS)


def _method_names() -> list[str]:
    """Registered methods (imported when this module is: a broken $ADABENCH_METHODS module ends here)."""
    from bench.methods import method_names

    try:
        return method_names()
    except AdabenchError as e:
        click.echo(f"error: {e}".replace("\n", " "), err=True)
        sys.exit(e.exit_code)


class _VideosPerClass(click.ParamType):
    """``N`` (N train, N // 4 val) or ``TRAIN,VAL``."""

    name = "N|TRAIN,VAL"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            parts = [int(v) for v in str(value).split(",")]
        except ValueError:
            parts = []
        if len(parts) == 1 and parts[0] >= 1:
            return (parts[0], max(1, parts[0] // 4))
        if len(parts) == 2 and min(parts) >= 1:
            return tuple(parts)
        self.fail(f"expected N or TRAIN,VAL (positive integers), got {value!r}", param, ctx)


@data.command("list")
def data_list() -> None:
    """Registered datasets and the on-disk layouts they read."""
    import textwrap

    from bench.data import dataset_info, list_datasets

    for name in list_datasets():
        info = dataset_info(name)
        flags = [f for f, on in (("multi-label (mAP)", info.multilabel), ("no flip", not info.flip)) if on]
        click.echo(f"{name}: {info.description}" + (f" [{', '.join(flags)}]" if flags else ""))
        for layout in info.layouts:
            click.echo(textwrap.fill(layout, width=100, initial_indent="  - ", subsequent_indent="    "))


def _synth_default(field: str):
    from bench.data import SynthParams

    return getattr(SynthParams(), field)


@data.command("synth")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="New (or empty) output directory.")
@click.option("--layout", type=click.Choice(["frames", "video"]), default="frames", show_default=True,
              help="frames: JPEG folders + 20BN-style CSVs; video: lossless mp4 files + the same CSVs.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--classes", type=click.IntRange(min=2), default=_synth_default("classes"), show_default=True,
              help="Pattern pairs (6 = every pair of 4 patterns).")
@click.option("--videos-per-class", type=_VideosPerClass(), default=",".join(map(str, _synth_default("videos_per_class"))),
              show_default=True, help="Videos per class: N (train N, val N/4) or TRAIN,VAL.")
@click.option("--frames", type=click.IntRange(min=2), default=_synth_default("frames"), show_default=True)
@click.option("--size", type=click.IntRange(min=16), default=_synth_default("size"), show_default=True,
              help="Frame side in pixels.")
@click.option("--object-size", type=click.IntRange(min=8), default=_synth_default("object_size"), show_default=True,
              help="Object side in pixels, marker border included (at most size/4).")
@click.option("--clutter", type=click.IntRange(min=0), default=_synth_default("clutter"), show_default=True,
              help="Moving distractor shapes per video.")
@click.option("--launch", type=click.FloatRange(0.0, 0.34, max_open=True), default=_synth_default("launch"),
              show_default=True, help="Share of the video spent travelling between the centre and the arc (0: never "
                                      "near the centre).")
@click.option("--ordered", is_flag=True, help="'A then B' and 'B then A' are different classes (needs an order-aware model).")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Processes (default: up to 4 cores).")
def data_synth(out: str, layout: str, seed: int, classes: int, videos_per_class: tuple, frames: int, size: int,
               object_size: int, clutter: int, launch: float, ordered: bool, workers: int | None) -> None:
    """Generate the synthetic focus benchmark (deterministic by seed)."""
    import time

    from bench.data import generate_synthetic

    t0 = time.perf_counter()
    root = generate_synthetic(out, layout=layout, seed=seed, classes=classes, videos_per_class=videos_per_class,
                              frames=frames, size=size, object_size=object_size, clutter=clutter, launch=launch, ordered=ordered,
                              workers=workers)
    n_train, n_val = videos_per_class
    click.echo(f"wrote {root}: {layout} layout, {classes} classes, {n_train * classes} train + {n_val * classes} "
               f"val videos of {frames} frames {size}x{size} in {time.perf_counter() - t0:.1f} s")


@data.command("check")
@click.option("--dataset", required=True, type=click.Choice(_dataset_names()), help="Registered dataset name.")
@click.option("--data-root", required=True, type=click.Path(), help="Dataset root directory.")
@click.option("--full-decode", is_flag=True,
              help="Decode every frame of every video and every frame image (slow), not only the headers.")
@click.pass_context
def data_check(ctx: click.Context, dataset: str, data_root: str, full_decode: bool) -> None:
    """Validate a dataset layout: counts per split, class count, and every problem found (exit 1 if any)."""
    from bench.data import check_dataset

    bars: dict = {}

    def progress(split: str, i: int, total: int) -> None:  # a bar per split, only on a terminal
        if split not in bars:
            from tqdm import tqdm

            for bar in bars.values():
                bar.close()
            bars[split] = tqdm(total=total, desc=f"checking {split}", unit="video", leave=False)
        bars[split].update(1)

    show = sys.stderr.isatty()
    report = check_dataset(dataset, data_root, full_decode=full_decode, progress=progress if show else None)
    for bar in bars.values():
        bar.close()
    click.echo(report.text())
    if not report.ok:
        click.echo(f"error: {len(report.problems)} problem(s) in {dataset} at {data_root}", err=True)
        ctx.exit(1)


# --------------------------------------------------------------------------- precision
def precision_options(fn=None, *, multiple: bool = False, default: str = "auto"):
    """``--precision`` and ``--channels-last`` (bench.precision) for a command that trains, evaluates or
    times a network; ``multiple``: --precision repeatable (bench compares them side by side)."""
    from bench.precision import LAYOUTS, PRECISIONS

    def deco(f):
        f = click.option("--channels-last", "channels_last", type=click.Choice(list(LAYOUTS)), default="auto",
                         show_default=True, help="Network memory layout; auto: on CUDA and on AVX-512 CPUs with "
                         "native bf16 (measured faster there, docs/speed.md), off on other CPUs.")(f)
        return click.option(
            "--precision", "precision", type=click.Choice(list(PRECISIONS)), multiple=multiple,
            default=(default,) if multiple else default, show_default=True,
            help="Numeric precision of every method and stage: fp32, or bf16/fp16 autocast of the backbones (policy, "
                 "classifier, heads, losses and softmax stay fp32); auto: bf16 on CPUs with bf16 in hardware and on "
                 "CUDA GPUs that support it, fp16 on older GPUs, else fp32" + (" (repeatable)." if multiple else "."))(f)

    return deco(fn) if fn is not None else deco


# --------------------------------------------------------------------------- flops
@cli.command("flops")
@click.option("--method", type=click.Choice(_method_names()), required=True, help="Which method's network.")
@click.option("--dataset", required=True, help="Dataset whose preset and class count to use (e.g. actnet, jester).")
@click.option("--patch-size", type=int, default=None, help="Patch side P (default: the preset's).")
@click.option("--glance-arch", type=click.Choice(["mbv2", "res50"]), default=None,
              help="Paper presets: MobileNetV2 on the frame or ResNet-50 on the frame resized to 96x96.")
@click.option("--preset", "preset_name", type=click.Choice(["paper", "tiny"]), default="paper", show_default=True)
@click.option("--arch", type=click.Choice(["matched", "paper"]), default="matched", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def flops_cmd(method: str, dataset: str, patch_size: int | None, glance_arch: str | None, preset_name: str,
              arch: str, as_json: bool) -> None:
    """Inference GFLOPs per video (fvcore; multiply-adds, BatchNorm excluded, GRU counted by hand)."""
    import json

    from bench.flops import count_flops
    from bench.models import build_network, without_weight_files
    from bench.presets import get_preset

    preset = get_preset(dataset, preset_name, method=method, arch=arch, glance_arch=glance_arch,
                        **({"patch_size": patch_size} if patch_size is not None else {}))
    report = count_flops(build_network(without_weight_files(preset)), preset)  # FLOPs do not depend on weights
    info = {"method": method, "dataset": dataset, "preset": preset_name, "arch": arch,
            "glance_arch": preset.glance_arch, "patch_size": preset.patch_size, "num_classes": preset.num_classes,
            "frames": preset.frames, "glance_frames": preset.glance_frames or preset.frames}
    click.echo(json.dumps({**info, **report.to_dict()}, indent=2) if as_json else report.text(info))


# --------------------------------------------------------------------------- official checkpoints
@cli.command("import-checkpoint")
@click.argument("src", type=click.Path(dir_okay=False))
@click.option("--method", required=True, type=click.Choice(_method_names()), help="Whose official code saved SRC.")
@click.option("--dataset", required=True, type=click.Choice(_dataset_names()),
              help="Dataset the checkpoint was trained on (its preset and class count).")
@click.option("--patch-size", type=click.IntRange(min=1), default=None,
              help="Patch side the checkpoint was trained with (checkpoints do not record it; default: the preset's).")
@click.option("--glance-arch", type=click.Choice(["mbv2", "res50"]), default=None,
              help="Glance network of the checkpoint (ActivityNet-style variants: mbv2, or res50 on 96x96 frames).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a preset field (repeatable).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The adabench model file to write.")
def import_checkpoint_cmd(src: str, method: str, dataset: str, patch_size: int | None, glance_arch: str | None,
                          sets: tuple[str, ...], out: str) -> None:
    """Convert a checkpoint of a method's official code into an adabench model file (every tensor accounted for)."""
    from bench.errors import UsageError
    from bench.methods import get_method

    entry = get_method(method)
    if entry.import_checkpoint is None:
        raise UsageError(f"--method {method}: {entry.title} has no importer of official checkpoints")
    report = entry.import_checkpoint(src, dataset, out, patch_size=patch_size, glance_arch=glance_arch,
                                     overrides=_parse_sets(sets))
    for line in report.lines():
        click.echo(line)
    click.echo(f"wrote {out} (bench.models.load_model reads it; `adabench evaluate --checkpoint {out}` scores it)")


@cli.command("evaluate")
@click.option("--checkpoint", "checkpoint_path", required=True, type=click.Path(dir_okay=False),
              help="An adabench model file (import-checkpoint) or a run's checkpoints/last.pt, <stage>.pt, best.pt.")
@click.option("--dataset", required=True, type=click.Choice(_dataset_names()), help="Dataset to evaluate on.")
@click.option("--data-root", type=click.Path(file_okay=False), default=None,
              help="Dataset root directory (not needed for synthetic).")
@click.option("--protocol", type=click.Choice(_protocols()), default=_protocols()[0], show_default=True,
              help="Early-exit calibration: adabench (softmax, evaluation transform) or official (max logit, "
                   "training augmentation).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random-patch evaluation.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Videos per batch (default: the preset's).")
@click.option("--runs-dir", type=click.Path(file_okay=False), default="runs", show_default=True,
              help="Where the evaluated-run directory goes (adabench report lists it beside trained runs).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--workers", type=click.IntRange(min=0), default=None, help="DataLoader workers (default: from the machine).")
@click.option("--skip-bad", is_flag=True, help="Skip unreadable videos (listed in the manifest) instead of failing.")
@click.option("--no-preflight", is_flag=True, help="Do not open every video's header first.")
@precision_options
def evaluate_cmd(checkpoint_path: str, dataset: str, data_root: str | None, protocol: str, seed: int,
                 batch_size: int | None, runs_dir: str, device: str, workers: int | None, skip_bad: bool,
                 no_preflight: bool, precision: str, channels_last: str) -> None:
    """Evaluate a checkpoint as a trained run is evaluated (top-1, mAP, learned / random / centre patches, the
    method's extras such as the V2+ exit curve) into an evaluated-run directory."""
    from bench.checkpoint_eval import evaluate_checkpoint, evaluated_line

    summary, run = evaluate_checkpoint(checkpoint_path, dataset, data_root, runs_dir=runs_dir, seed=seed,
                                       protocol=protocol, device=device, num_workers=workers, batch_size=batch_size,
                                       skip_bad=skip_bad, preflight=not no_preflight, precision=precision,
                                       channels_last=channels_last)
    click.echo(evaluated_line(summary) + f"\n  {run.path}")


# --------------------------------------------------------------------------- report
@cli.command("report")
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path(file_okay=False),
              help="Directory of run directories (only runs with a complete summary.json are read).")
@click.option("--out", "out_dir", default="report", show_default=True, type=click.Path(file_okay=False),
              help="Where report.md, its plots and results.csv/.parquet go.")
@click.option("--exit-tol", type=float, default=1.0, show_default=True,
              help="Accuracy points the V2+ early exit may lose and still match the full model.")
@click.option("--throughput", "throughput_device", default=None, metavar="DEVICE",
              help="Also measure inference throughput per section on DEVICE (cpu, cuda).")
def report_cmd(runs_dir: str, out_dir: str, exit_tol: float, throughput_device: str | None) -> None:
    """Plots, tables and the claims table of every complete run, in OUT/report.md."""
    from reports.report import build_report

    path = build_report(runs_dir, out_dir, exit_tol=exit_tol, throughput=throughput_device)
    click.echo(f"report: {path}")


# --------------------------------------------------------------------------- check
@cli.command("check")
@click.option("--baseline", "baseline_path", required=True, type=click.Path(dir_okay=False),
              help="Baseline JSON (e.g. bench/baselines/tiny.json).")
@click.option("--runs-dir", default=None, type=click.Path(file_okay=False),
              help="Compare these runs; without it the baseline's runs (its methods and seeds) are re-trained "
                   "first (into runs-check/<time>/).")
@click.option("--acc-tol", type=float, default=None,
              help="Absolute accuracy tolerance, fraction (default: the baseline's, derived from its seed spread; "
                   "with --update: the floor of the derived tolerance).")
@click.option("--time-factor", type=float, default=None,
              help="Training-time ratios may differ by this factor either way (default: the baseline's; with "
                   "--update: the floor).")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
              help="With --update: false-alarm probability per check the tolerances are derived for (default 0.01).")
@click.option("--update", is_flag=True, help="Write the baseline from --runs-dir (>= 3 seeds) instead of comparing.")
@click.option("--data-root", type=click.Path(file_okay=False), default=None,
              help="Dataset root for re-training (default: the dataset's usual place; synthetic: the cache).")
@click.option("--device", default="auto", show_default=True, help="Device for re-training.")
@click.option("--workers", type=click.IntRange(min=0), default=None, help="DataLoader workers for re-training.")
def check_cmd(baseline_path: str, runs_dir: str | None, acc_tol: float | None, time_factor: float | None,
              alpha: float | None, update: bool, data_root: str | None, device: str, workers: int | None) -> None:
    """Regression gate: compare runs with a baseline; exit 0 within tolerance, 1 outside."""
    from bench.gate import check

    tol = {k: v for k, v in (("accuracy_abs", acc_tol), ("time_ratio_factor", time_factor)) if v is not None}
    if not check(baseline_path, runs_dir=runs_dir, tolerances=tol, alpha=alpha, update=update, data_root=data_root,
                 device=device, workers=workers, echo=click.echo):
        raise click.exceptions.Exit(1)


# --------------------------------------------------------------------------- bench
@cli.command("bench")
@click.option("--dataset", default="synthetic", show_default=True, help="Dataset whose preset to use.")
@click.option("--preset", "preset_name", type=click.Choice(["paper", "tiny"]), default="tiny", show_default=True)
@click.option("--arch", type=click.Choice(["matched", "paper"]), default="matched", show_default=True)
@click.option("--patch-size", type=int, default=None, help="Patch side P (default: the preset's).")
@click.option("--batch", type=click.IntRange(min=1), default=8, show_default=True, help="Videos per forward call.")
@click.option("--warmup", type=click.IntRange(min=0), default=3, show_default=True)
@click.option("--repeats", type=click.IntRange(min=1), default=10, show_default=True, help="Timed calls (median).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option("--train-step", is_flag=True,
              help="Time one training step of every method and stage (the driver's step and update) instead "
                   "of inference, with achieved GFLOP/s against the device's measured matmul peak.")
@click.option("--method", "methods", type=click.Choice(_method_names()), multiple=True,
              help="Only these methods (repeatable; default: all).")
@click.option("--step", "steps", multiple=True, metavar="NAME",
              help="--train-step: only the stages with these names (repeatable; default: all).")
@precision_options(multiple=True)
@click.option("--compile", "compile_", is_flag=True, help="--train-step: torch.compile the backbones first.")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the rows as JSON to this file.")
def bench_cmd(dataset: str, preset_name: str, arch: str, patch_size: int | None, batch: int, warmup: int,
              repeats: int, device: str, train_step: bool, methods: tuple[str, ...], steps: tuple[str, ...],
              precision: tuple[str, ...], channels_last: str, compile_: bool, as_json: bool,
              out_path: str | None) -> None:
    """Inference throughput (videos/s) of every method and of the full-frame baseline, next to their GFLOPs;
    or, with --train-step, the time of one training step of every method and stage."""
    import json

    from bench.runtime import resolve_device

    dev = resolve_device(device)
    if train_step:
        from bench.trainstep import benchmark_train_steps, train_step_markdown

        rows = benchmark_train_steps(dataset, preset_name, arch=arch, patch_size=patch_size, batch=batch,
                                     warmup=warmup, repeats=repeats, device=dev, precisions=precision,
                                     channels_last=channels_last, methods=methods or None, steps=steps or None,
                                     compile=compile_)
        _bench_out(rows, out_path)
        click.echo(json.dumps(rows, indent=2) if as_json else train_step_markdown(rows))
        return
    from bench.throughput import benchmark_preset, throughput_markdown

    if len(precision) > 1:
        raise click.BadParameter("one precision at a time for inference throughput", param_hint="'--precision'")
    rows = benchmark_preset(dataset, preset_name, arch=arch, patch_size=patch_size, batch=batch, warmup=warmup,
                            repeats=repeats, device=dev, methods=methods or None, precision=precision[0],
                            channels_last=channels_last)
    _bench_out(rows, out_path)
    click.echo(json.dumps(rows, indent=2) if as_json else throughput_markdown(rows))


def _bench_out(rows: list, path: str | None) -> None:
    if path:
        from bench.io import atomic_write_json

        atomic_write_json(path, rows)


# --------------------------------------------------------------------------- run
def _method_options(fn):
    """Every registered method's own options (``bench.methods.Option``), e.g. --no-aux or --rl."""
    from bench.methods import all_methods

    for method in reversed(all_methods()):
        for opt in reversed(method.options):
            dest = f"opt__{method.name}__{opt.field}".replace("-", "_")
            if opt.choices:
                fn = click.option(opt.flag, dest, type=click.Choice(list(opt.choices)), default=None, help=opt.help)(fn)
            else:
                fn = click.option(opt.flag, dest, is_flag=True, default=False, help=opt.help)(fn)
    return fn


def _method_sets(values: dict) -> dict:
    """The method options given on the command line -> {method: {field: value}}."""
    from bench.methods import all_methods

    out: dict = {}
    for method in all_methods():
        for opt in method.options:
            given = values.get(f"opt__{method.name}__{opt.field}".replace("-", "_"))
            if given not in (None, False):
                out.setdefault(method.name, {})[opt.field] = given if opt.choices else opt.value
    return out


def _parse_stages(ctx, param, value: str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    from bench.errors import UsageError
    from bench.resume import parse_stage_list

    try:
        return parse_stage_list(value)
    except UsageError as e:
        raise click.BadParameter(str(e).split(": ", 1)[-1], param_hint="'--stages'") from None


def _parse_sets(items: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected key=value, got {item!r}", param_hint="'--set'")
        out[key.strip()] = value.strip()
    return out


@cli.command("run")
@click.option("--method", "methods", type=click.Choice(_method_names()), multiple=True, required=True,
              help="Method(s) to train, repeatable: several make a matched experiment (same data, "
                   "architecture and initial weights for each patch size x seed).")
@click.option("--dataset", default="synthetic", show_default=True,
              help="Dataset name (see `adabench data list`); synthetic is generated on first use.")
@click.option("--data-root", type=click.Path(file_okay=False), default=None,
              help="Dataset root directory (not needed for synthetic).")
@click.option("--preset", type=click.Choice(["paper", "tiny"]), default="tiny", show_default=True)
@click.option("--arch", type=click.Choice(["matched", "paper"]), default="matched", show_default=True,
              help="matched: every method shares glance, focus, policy trunk and classifier.")
@click.option("--patch-size", "patch_sizes", type=click.IntRange(min=1), multiple=True,
              help="Patch side P, repeatable for a sweep (default: the preset's).")
@click.option("--seed", "seeds", type=int, multiple=True, help="Seed, repeatable (default: 0).")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Training epochs (default: the preset's; a multi-stage method scales its stages).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--runs-dir", type=click.Path(file_okay=False), default="runs", show_default=True)
@click.option("--deterministic", is_flag=True, help="Deterministic kernels (slower).")
@click.option("--skip-bad", is_flag=True, help="Skip unreadable videos (listed in the manifest) instead of failing.")
@click.option("--no-preflight", is_flag=True,
              help="Do not open every video's header before training (a broken file then fails when it is read).")
@click.option("--workers", type=click.IntRange(min=0), default=None, help="DataLoader workers (default: from the machine).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override a preset field of every method that has it (repeatable).")
@click.option("--stages", callback=_parse_stages, default=None, metavar="LIST",
              help="Multi-stage methods: the stages to run, e.g. 2,3 (from the previous stage's checkpoint).")
@click.option("--protocol", type=click.Choice(_protocols()), default=_protocols()[0], show_default=True,
              help="adabench: last-epoch model, softmax early exit calibrated with the evaluation transform. official: "
                   "the official code's (best validation checkpoint, max-logit exit calibrated on train-augmented "
                   "logits, 20k-video subset for Mini-Kinetics only, glance and focus views augmented apart).")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@click.option("--quiet", is_flag=True, help="No per-epoch lines on the console (log.txt keeps them).")
@click.option("--nproc", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes (one per GPU, or CPU ranks with gloo): launches torchrun.")
@precision_options
@click.option("--compile", "compile_", is_flag=True,
              help="torch.compile the backbones (opt-in: compilation takes minutes; see docs/speed.md).")
@_method_options
def run_cmd(methods: tuple[str, ...], dataset: str, data_root: str | None, preset: str, arch: str,
            patch_sizes: tuple[int, ...], seeds: tuple[int, ...], epochs: int | None, device: str, runs_dir: str,
            deterministic: bool, skip_bad: bool, no_preflight: bool, workers: int | None, sets: tuple[str, ...],
            stages: tuple[int, ...] | None, protocol: str, no_progress: bool, quiet: bool, nproc: int,
            precision: str, channels_last: str, compile_: bool, **method_options: object) -> None:
    """Train and evaluate each run (methods x patch sizes x seeds); re-running the command resumes.

    Each run writes runs/<dataset>/<method>/<name>/ (config.yaml, manifest.json, metrics.csv,
    checkpoints/, summary.json). A run that is complete is not trained again.
    """
    from bench.config import RunConfig
    from bench.data import resolve_data_root
    from bench.experiment import plan_runs
    from bench.runner import run_all

    base = RunConfig(method=methods[0], dataset=dataset, data_root=None, preset=preset, arch=arch,
                     seed=seeds[0] if seeds else 0, epochs=epochs, device=device, runs_dir=runs_dir,
                     deterministic=deterministic, skip_bad=skip_bad, preflight=not no_preflight, num_workers=workers,
                     progress=not no_progress, quiet=quiet, stages=stages, overrides=_parse_sets(sets),
                     protocol=protocol, precision=precision, channels_last=channels_last, compile=compile_)
    plan_runs(base, methods, patch_sizes, seeds, _method_sets(method_options))  # every option, before any data
    base.data_root = str(resolve_data_root(dataset, data_root))  # may generate the synthetic benchmark
    configs = plan_runs(base, methods, patch_sizes, seeds, _method_sets(method_options))
    if nproc > 1:
        from bench.launch import launch

        launch(_INVOCATION or sys.argv[1:], nproc)
        return
    run_all(configs, click.echo)


# --------------------------------------------------------------------------- tune
def _tune_default(name: str):
    import bench.tune

    return getattr(bench.tune, name)


@cli.command("tune")
@click.option("--method", "methods", type=click.Choice(_method_names()), multiple=True,
              help="Method(s) to tune, repeatable (default: every method that declares tunable hyper-parameters).")
@click.option("--dataset", default="synthetic", show_default=True, help="Dataset name (see `adabench data list`).")
@click.option("--data-root", type=click.Path(file_okay=False), default=None, help="Dataset root directory.")
@click.option("--preset", type=click.Choice(["paper", "tiny"]), default="tiny", show_default=True)
@click.option("--arch", type=click.Choice(["matched", "paper"]), default="matched", show_default=True)
@click.option("--seed", "seeds", type=int, multiple=True, help="Seed, repeatable (default: 0, 1, 2).")
@click.option("--factor", "factors", type=click.FloatRange(min=0, min_open=True), multiple=True,
              help="Multiplier of each tunable value, repeatable (default: 0.25, 0.5, 1, 2, 4).")
@click.option("--holdout", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=_tune_default("HOLDOUT"), show_default=True,
              help="Fraction of the training split held out to score candidates on (val is never used).")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Training epochs (default: the preset's).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a preset field (repeatable).")
@click.option("--runs-dir", type=click.Path(file_okay=False), default=_tune_default("RUNS_DIR"), show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="tuning", show_default=True,
              help="Where tuning.md, tuning.csv and tuning.json go (commit them under docs/tuning/<dataset>/).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--workers", type=click.IntRange(min=0), default=None, help="DataLoader workers (default: from the machine).")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def tune_cmd(methods: tuple[str, ...], dataset: str, data_root: str | None, preset: str, arch: str,
             seeds: tuple[int, ...], factors: tuple[float, ...], holdout: float, epochs: int | None,
             sets: tuple[str, ...], runs_dir: str, out_dir: str, device: str, workers: int | None,
             no_progress: bool) -> None:
    """Symmetric hyper-parameter sweep: every method's tunable values x the same factors, the same budget,
    scored on a held-out part of the training split (never on val); writes the table and the winners."""
    from bench.config import RunConfig
    from bench.data import resolve_data_root
    from bench.tune import FACTORS, SEEDS, TuneSpec, run_tuning, tuned_methods
    from reports.tuning import winners_text, write_tuning

    names = tuned_methods(methods)
    base = RunConfig(method=names[0], dataset=dataset, data_root=str(resolve_data_root(dataset, data_root)),
                     preset=preset, arch=arch, epochs=epochs, device=device, runs_dir=runs_dir, num_workers=workers,
                     progress=not no_progress, quiet=True, overrides=_parse_sets(sets))
    spec = TuneSpec(base, tuple(names), tuple(seeds) or SEEDS, tuple(factors) or FACTORS, holdout,
                    data_root_given=data_root is not None)
    record = run_tuning(spec, out_dir, click.echo)
    for path in write_tuning(record, out_dir):
        click.echo(f"tune: {path}")
    click.echo(f"tune: winners: {winners_text(record)}")


# --------------------------------------------------------------------------- demo
@cli.command("demo")
@click.option("--runs-dir", type=click.Path(file_okay=False), default="runs", show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="report", show_default=True,
              help="Where report.md and its plots go.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def demo_cmd(runs_dir: str, out_dir: str, seed: int, no_progress: bool) -> None:
    """The main job on the built-in data: synthetic benchmark -> matched experiment of every method (tiny)
    -> report.

    Re-running it resumes interrupted runs and reuses complete ones.
    """
    from bench.config import RunConfig
    from bench.data import check_dataset, resolve_data_root
    from bench.experiment import plan_runs
    from bench.io import check_writable_dir
    from bench.methods import method_names
    from bench.runner import run_all
    from reports.report import build_report

    check_writable_dir(out_dir)  # before training, not after
    root = resolve_data_root("synthetic")  # generated into the cache on first use
    report = check_dataset("synthetic", root)
    counts = ", ".join(f"{split} {n}" for split, n in report.splits.items())
    click.echo(f"synthetic benchmark: {root} ({report.num_classes} classes; {counts} videos)")
    if not report.ok:
        raise AdabenchError(f"the synthetic benchmark at {root} has problems: {'; '.join(report.problems[:3])}")
    names = method_names()
    base = RunConfig(method=names[0], dataset="synthetic", data_root=str(root), preset="tiny", arch="matched",
                     seed=seed, runs_dir=runs_dir, progress=not no_progress)
    run_all(plan_runs(base, names), click.echo)
    path = build_report(runs_dir, out_dir)
    click.echo(f"report: {path}")


# --------------------------------------------------------------------------- entry point
_INVOCATION: list[str] = []  # the arguments of this invocation (``--nproc`` relaunches them)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: one-line errors (``bench.failures``), exit 2 for usage errors."""
    from bench.failures import describe_failure, watch_interrupts

    _INVOCATION[:] = list(sys.argv[1:] if argv is None else argv)
    with watch_interrupts():
        try:
            rv = cli.main(args=argv, prog_name="adabench", standalone_mode=False)
        except click.exceptions.Exit as e:  # --help, --version
            sys.exit(e.exit_code)
        except click.exceptions.NoArgsIsHelpError as e:  # bare `adabench` (or a bare group): its help
            click.echo(e.ctx.get_help())
            sys.exit(0)
        except click.ClickException as e:  # usage errors: bad or missing option, unknown command
            click.echo(f"error: {e.format_message()}".replace("\n", " "), err=True)
            sys.exit(e.exit_code)
        except (Exception, KeyboardInterrupt, click.exceptions.Abort) as e:
            failure = describe_failure(KeyboardInterrupt() if isinstance(e, click.exceptions.Abort) else e)
            if failure is None:
                raise
            click.echo(f"error: {failure.message}", err=True)
            sys.exit(failure.exit_code)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
