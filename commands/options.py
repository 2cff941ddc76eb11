"""Options and option helpers several commands share: the choices read from the registries (datasets,
protocols, methods), --precision/--channels-last, each method's own options, --stages and --set.

The choices are computed when a command module is imported (they fill ``--help``); everything heavier
is imported inside the helpers.
"""

from __future__ import annotations

import sys

import click

from bench.errors import AdabenchError


def dataset_choices() -> list[str]:
    """Registered dataset names (--dataset)."""
    from bench.data import list_datasets

    return list_datasets()


def generated_dataset_choices() -> list[str]:
    """Registered datasets that are generated on first use (the synthetic benchmarks: no --data-root)."""
    from bench.data import list_datasets
    from bench.data.datasets import dataset_source

    return [name for name in list_datasets() if dataset_source(name).generated]


def protocol_choices() -> list[str]:
    """Evaluation protocols (--protocol), the default first."""
    from bench.runs.config import PROTOCOLS

    return list(PROTOCOLS)


def method_choices() -> list[str]:
    """Registered methods (imported when the commands are: a broken $ADABENCH_METHODS module ends here)."""
    from bench.methods import method_names

    try:
        return method_names()
    except AdabenchError as e:
        click.echo(f"error: {e}".replace("\n", " "), err=True)
        sys.exit(e.exit_code)


def precision_options(fn=None, *, multiple: bool = False, default: str = "auto"):
    """``--precision`` and ``--channels-last`` (bench.training.precision) for a command that trains, evaluates
    or
    times a network; ``multiple``: --precision repeatable (bench compares them side by side)."""
    from bench.training.precision import LAYOUTS, PRECISIONS

    def deco(f):
        f = click.option(
            "--channels-last",
            "channels_last",
            type=click.Choice(list(LAYOUTS)),
            default="auto",
            show_default=True,
            help="Network memory layout; auto: on CUDA and on AVX-512 CPUs with "
            "native bf16 (measured faster there, docs/speed.md), off on other CPUs.",
        )(f)
        return click.option(
            "--precision",
            "precision",
            type=click.Choice(list(PRECISIONS)),
            multiple=multiple,
            default=(default,) if multiple else default,
            show_default=True,
            help="Numeric precision of every method and stage: fp32, or bf16/fp16 autocast of the backbones "
            "(policy, classifier, heads, losses and softmax stay fp32); auto: bf16 on CPUs with bf16 in "
            "hardware and on CUDA GPUs that support it, fp16 on older GPUs, else fp32"
            + (" (repeatable)." if multiple else "."),
        )(f)

    return deco(fn) if fn is not None else deco


def method_options(fn):
    """Every registered method's own options (``bench.methods.Option``), e.g. --no-aux or --rl."""
    from bench.methods import all_methods

    for method in reversed(all_methods()):
        for opt in reversed(method.options):
            dest = f"opt__{method.name}__{opt.field}".replace("-", "_")
            if opt.choices:
                fn = click.option(
                    opt.flag, dest, type=click.Choice(list(opt.choices)), default=None, help=opt.help
                )(fn)
            else:
                fn = click.option(opt.flag, dest, is_flag=True, default=False, help=opt.help)(fn)
    return fn


def method_option_values(values: dict, selected=None) -> dict:
    """The method options given on the command line -> {method: {field: value}}. An option of a method
    that is not among ``selected`` (when given) is a usage error naming the method it belongs to."""
    from bench.errors import UsageError
    from bench.methods import all_methods

    out: dict = {}
    for method in all_methods():
        for opt in method.options:
            given = values.get(f"opt__{method.name}__{opt.field}".replace("-", "_"))
            if given in (None, False):
                continue
            if selected is not None and method.name not in selected:
                raise UsageError(
                    f"{opt.flag} is an option of method {method.name} ({method.title}), which is not "
                    f"selected (--method {' --method '.join(selected)}); add --method {method.name} "
                    "or drop the option"
                )
            out.setdefault(method.name, {})[opt.field] = given if opt.choices else opt.value
    return out


def parse_stages(ctx, param, value: str | None) -> tuple[int, ...] | None:
    """Click callback of --stages: "2,3" -> (2, 3), a bad list a usage error."""
    if value is None:
        return None
    from bench.errors import UsageError
    from bench.training.resume import parse_stage_list

    try:
        return parse_stage_list(value)
    except UsageError as e:
        raise click.BadParameter(str(e).split(": ", 1)[-1], param_hint="'--stages'") from None


def parse_sets(items: tuple[str, ...]) -> dict[str, str]:
    """The --set KEY=VALUE options -> {key: value} (preset field overrides)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected key=value, got {item!r}", param_hint="'--set'")
        out[key.strip()] = value.strip()
    return out


# --seed: every seed consumer (torch, numpy, the item RNG) takes 0..2^31-1 (bench.runs.config.MAX_SEED)
SEED = click.IntRange(0, 2**31 - 1)
