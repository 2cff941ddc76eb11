"""``adabench project``: claim (b) at the paper's full schedule, projected from step times measured in
minutes."""

from __future__ import annotations

import click

from commands.options import dataset_choices, method_choices, precision_options


def default_out(runs_dir: str, dataset: str, preset: str, devices: str, precisions: tuple) -> str:
    """Where the projection goes when --out is not given: the runs directory's ``projections/`` (the report
    reads every file there)."""
    import os

    return os.path.join(runs_dir, "projections", f"{dataset}-{preset}-{devices}-{'+'.join(precisions)}.json")


@click.command("project")
@click.option(
    "--dataset",
    required=True,
    type=click.Choice(dataset_choices()),
    help="Dataset whose preset and training-set size to use.",
)
@click.option(
    "--preset", "preset_name", type=click.Choice(["paper", "tiny"]), default="paper", show_default=True
)
@click.option("--arch", type=click.Choice(["matched", "paper"]), default="matched", show_default=True)
@click.option(
    "--patch-size",
    "patch_sizes",
    type=click.IntRange(min=1),
    multiple=True,
    help="Patch side P (repeatable; default: the sizes with a published training-time ratio, else the "
    "preset's).",
)
@click.option(
    "--devices",
    default="official",
    show_default=True,
    help="'official' (the official scripts' count per stage) or N for every stage (ideal scaling).",
)
@click.option(
    "--train-videos",
    type=int,
    default=None,
    help="Training-set size (default: the dataset's registered split size).",
)
@click.option(
    "--method",
    "methods",
    type=click.Choice(method_choices()),
    multiple=True,
    help="Only these methods (repeatable; default: all).",
)
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Videos per timed step (projected to each preset's batch, per-video cost assumed constant).",
)
@click.option("--warmup", type=click.IntRange(min=0), default=1, show_default=True)
@click.option(
    "--repeats",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Timed steps per stage (median; the table shows their min-max).",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@precision_options(multiple=True)
@click.option(
    "--runs-dir",
    type=click.Path(file_okay=False),
    default="runs",
    show_default=True,
    help="The projection goes to <runs-dir>/projections/ (adabench report reads it) unless --out.",
)
@click.option(
    "--out", "out_path", type=click.Path(dir_okay=False), default=None, help="The JSON file to write."
)
@click.option("--json", "as_json", is_flag=True, help="Print the projection as JSON.")
def project_cmd(
    dataset: str,
    preset_name: str,
    arch: str,
    patch_sizes: tuple,
    devices: str,
    train_videos: int | None,
    methods: tuple,
    batch: int,
    warmup: int,
    repeats: int,
    device: str,
    precision: tuple,
    channels_last: str,
    runs_dir: str,
    out_path: str | None,
    as_json: bool,
) -> None:
    """Each method's training time at the paper's full schedule, projected from measured step times: per stage
    s/step, steps, epochs, devices, hours and device-hours; then the baseline/proposed ratios in wall-clock
    and device-hours, with and without pre-training, next to the published ratio. Random weights when the
    pretrained files are not on this machine (nothing is downloaded)."""
    import json
    import os

    from bench.io import atomic_write_json, check_writable_dir, to_jsonable
    from bench.tools.projection import parse_devices, project
    from bench.training.runtime import resolve_device
    from reports.measurements import projection_markdown

    alloc = parse_devices(devices)
    out = out_path or default_out(runs_dir, dataset, preset_name, str(alloc), precision)
    check_writable_dir(os.path.dirname(out) or ".", for_file=out)  # before minutes of measuring
    proj = project(
        dataset,
        preset_name,
        arch=arch,
        patch_sizes=patch_sizes or None,
        devices=alloc,
        precisions=precision,
        train_videos=train_videos,
        batch=batch,
        warmup=warmup,
        repeats=repeats,
        device=resolve_device(device),
        channels_last=channels_last,
        methods=methods or None,
    )
    atomic_write_json(out, proj)
    if as_json and proj.get("weights"):
        click.echo(proj["weights"], err=True)  # the Markdown says it itself
    click.echo(json.dumps(to_jsonable(proj), indent=2) if as_json else projection_markdown(proj))
    click.echo(f"wrote {out}", err=True)
