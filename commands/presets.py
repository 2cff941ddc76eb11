"""``adabench presets``: the regime a preset trains in, next to the paper preset it is derived from."""

from __future__ import annotations

import click

from commands.options import dataset_choices, method_choices, parse_sets


@click.command("presets")
@click.option("--dataset", type=click.Choice(dataset_choices()), default="synthetic", show_default=True)
@click.option("--preset", type=click.Choice(["tiny", "paper"]), default="tiny", show_default=True)
@click.option("--arch", type=click.Choice(["matched", "paper"]), default="matched", show_default=True)
@click.option(
    "--method",
    "methods",
    type=click.Choice(method_choices()),
    multiple=True,
    help="Method(s), repeatable (default: every registered method).",
)
@click.option(
    "--patch-size",
    "patch_sizes",
    type=click.IntRange(min=1),
    multiple=True,
    help="Patch side(s) P, repeatable (default: the preset's).",
)
@click.option(
    "--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a preset field (repeatable)."
)
def presets_cmd(
    dataset: str,
    preset: str,
    arch: str,
    methods: tuple[str, ...],
    patch_sizes: tuple[int, ...],
    sets: tuple[str, ...],
) -> None:
    """Print every quantity the scale model keeps for this preset next to the paper preset's (flagging any
    more than 10 % off), the scale rule's factors and, for a generated benchmark, its geometry."""
    import dataclasses

    from bench.methods import method_names
    from bench.presets import get_preset
    from bench.regime import experiment_records
    from bench.scale import TINY
    from reports.measurements import regime_markdown

    names = list(methods or method_names())
    records = experiment_records(
        dataset, preset, names, patch_sizes or (None,), arch=arch, **parse_sets(sets)
    )
    shown = sorted(
        {get_preset(dataset, preset, method=names[0], arch=arch, **parse_sets(sets)).patch_size}
        if not patch_sizes
        else set(patch_sizes)
    )
    click.echo(f"{dataset} · {preset} preset · {arch} architecture: the regime against the paper preset\n")
    click.echo(regime_markdown(records))
    if preset == "tiny":
        factors = ", ".join(f"{f.name} x{getattr(TINY, f.name):g}" for f in dataclasses.fields(TINY))
        click.echo(
            f"scale rule (bench/scale.py): {factors}; policy learning rates only through `adabench tune`\n"
        )
    frames: dict = {}  # T -> the methods whose preset samples T frames
    for name in names:
        t = get_preset(dataset, preset, method=name, arch=arch, **parse_sets(sets)).frames
        frames.setdefault(t, []).append(name)
    click.echo(_geometry(dataset, shown, frames))


def _geometry(dataset: str, patch_sizes: list, frames: dict) -> str:
    """For a generated benchmark: how often a random or the centre patch holds the evidence, and (when the
    object is absent from some frames) how often T sampled or selected frames show it, for each T of
    ``frames`` ({T: methods})."""
    from bench.data.datasets import dataset_source

    source = dataset_source(dataset)
    if not getattr(source, "params", None) and not source.generated:
        return ""
    from bench.data.geometry import absent_share, frame_probabilities, hit_probabilities
    from bench.data.synthetic import SynthParams

    params = SynthParams(**source.params)
    probs = hit_probabilities(params, patch_sizes)
    lines = ["| patch P | a random P×P patch holds the region | the centre patch holds it |", "|---|---|---|"]
    lines += [f"| {p} | {v['random']:.2f} | {v['centre']:.2f} |" for p, v in probs.items()]
    text = f"{dataset}: the benchmark's geometry (bench/data/geometry.py)\n\n" + "\n".join(lines) + "\n"
    if absent_share(params) > 0:
        absent = absent_share(params)
        for t, methods in sorted(frames.items()):
            text += (
                f"\nthe object is absent from {absent:.0%} of the frames; of T = {t} frames "
                f"({', '.join(methods)}):\n\n"
            )
            text += "\n".join(_frame_lines(frame_probabilities(params, [t])[t])) + "\n"
    return text


def _frame_lines(chances: dict) -> list:
    names = {
        "eval": "uniform (TSN, evaluation)",
        "train": "uniform (TSN, training)",
        "best": "the best selection",
    }
    lines = [
        "| frames taken by | share showing the object | chance both patterns are shown |",
        "|---|---|---|",
    ]
    return lines + [f"| {names[k]} | {share:.2f} | {both:.2f} |" for k, (share, both) in chances.items()]
