"""``adabench data``: list the registered datasets, generate the synthetic benchmark, check a layout."""

from __future__ import annotations

import sys

import click

from commands.options import SEED, dataset_choices


@click.group()
def data() -> None:
    """List, generate and check datasets."""


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
@click.option(
    "--out", required=True, type=click.Path(file_okay=False), help="New (or empty) output directory."
)
@click.option(
    "--layout",
    type=click.Choice(["frames", "video"]),
    default="frames",
    show_default=True,
    help="frames: JPEG folders + 20BN-style CSVs; video: lossless mp4 files + the same CSVs.",
)
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option(
    "--classes",
    type=click.IntRange(min=2),
    default=_synth_default("classes"),
    show_default=True,
    help="Pattern pairs (6 = every pair of 4 patterns).",
)
@click.option(
    "--videos-per-class",
    type=_VideosPerClass(),
    default=",".join(map(str, _synth_default("videos_per_class"))),
    show_default=True,
    help="Videos per class: N (train N, val N/4) or TRAIN,VAL.",
)
@click.option("--frames", type=click.IntRange(min=2), default=_synth_default("frames"), show_default=True)
@click.option(
    "--size",
    type=click.IntRange(min=16),
    default=_synth_default("size"),
    show_default=True,
    help="Frame side in pixels.",
)
@click.option(
    "--object-size",
    type=click.IntRange(min=8),
    default=_synth_default("object_size"),
    show_default=True,
    help="Object side in pixels, marker border included (at most size/4).",
)
@click.option(
    "--clutter",
    type=click.IntRange(min=0),
    default=_synth_default("clutter"),
    show_default=True,
    help="Moving distractor shapes per video.",
)
@click.option(
    "--launch",
    type=click.FloatRange(0.0, 0.34, max_open=True),
    default=_synth_default("launch"),
    show_default=True,
    help="Share of the video spent travelling between the centre and the arc (0: never near the centre).",
)
@click.option(
    "--visible",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    default=_synth_default("visible"),
    show_default=True,
    help="Share of the frames showing the object: a contiguous window at a random place per video "
    "(1: every frame; docs/benchmarks.md).",
)
@click.option(
    "--ordered",
    is_flag=True,
    help="'A then B' and 'B then A' are different classes (needs an order-aware model).",
)
@click.option(
    "--workers", type=click.IntRange(min=1), default=None, help="Processes (default: up to 4 cores)."
)
def data_synth(
    out: str,
    layout: str,
    seed: int,
    classes: int,
    videos_per_class: tuple,
    frames: int,
    size: int,
    object_size: int,
    clutter: int,
    launch: float,
    visible: float,
    ordered: bool,
    workers: int | None,
) -> None:
    """Generate the synthetic focus benchmark (deterministic by seed)."""
    import time

    from bench.data import generate_synthetic

    t0 = time.perf_counter()
    root = generate_synthetic(
        out,
        layout=layout,
        seed=seed,
        classes=classes,
        videos_per_class=videos_per_class,
        frames=frames,
        size=size,
        object_size=object_size,
        clutter=clutter,
        launch=launch,
        ordered=ordered,
        visible=visible,
        workers=workers,
    )
    n_train, n_val = videos_per_class
    click.echo(
        f"wrote {root}: {layout} layout, {classes} classes, {n_train * classes} train + {n_val * classes} "
        f"val videos of {frames} frames {size}x{size} in {time.perf_counter() - t0:.1f} s"
    )


@data.command("check")
@click.option(
    "--dataset", required=True, type=click.Choice(dataset_choices()), help="Registered dataset name."
)
@click.option("--data-root", required=True, type=click.Path(), help="Dataset root directory.")
@click.option(
    "--full-decode",
    is_flag=True,
    help="Decode every frame of every video and every frame image (slow), not only the headers.",
)
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
