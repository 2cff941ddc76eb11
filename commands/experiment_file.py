"""``--config experiment.yaml``: every option of a command from a YAML file, and the resolved file kept with
the runs.

Keys are the options' long names without the dashes, ``-`` written ``_`` (``patch_size``, ``no_aux``,
``runs_dir``); a repeatable option takes a list (``method: [v1, v2]``, ``seed: [0, 1, 2]``) and ``set`` a
mapping (``set: {lr: 0.01}``). The file's values become the command's defaults (click's ``default_map``), so
an option given on the command line overrides the file. An unknown key, or a file that is not a mapping, is a
one-line usage error naming the file and the key.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Dict, Mapping

import click

CONFIG = "config"
EXPERIMENTS_DIR = "_experiments"  # in the runs directory, next to _init/
# options that say where or how the runs are executed or shown, not which runs: left out of the file's name,
# so the same experiment submitted, run locally or re-run quietly is one file (the latest options in it)
HOW = (
    "launcher",
    "slurm_partition",
    "slurm_time",
    "slurm_account",
    "gpus_per_run",
    "nproc",
    "no_progress",
    "quiet",
)


def _key(opt: str) -> str:
    return opt.lstrip("-").replace("-", "_")


def option_keys(command: click.Command) -> Dict[str, click.Option]:
    """{YAML key: option} for every long option of ``command`` (but --config and --help)."""
    out: Dict[str, click.Option] = {}
    for param in command.params:
        if isinstance(param, click.Option) and param.name not in (CONFIG, "help"):
            for opt in param.opts:
                if opt.startswith("--"):
                    out[_key(opt)] = param
    return out


def _value(param: click.Option, key: str, value: Any, path: str) -> Any:
    """A YAML value as the option's default: lists for repeatable options, 'k=v' items for ``set``."""
    if key == "set" and isinstance(value, Mapping):
        return [f"{k}={_scalar(v)}" for k, v in value.items()]
    if param.multiple:
        return [_scalar(v) if key == "set" else v for v in (value if isinstance(value, list) else [value])]
    if isinstance(value, list):
        if key == "stages":
            return ",".join(str(v) for v in value)
        raise click.BadParameter(f"{path}: {key}: expected one value, got a list", param_hint="'--config'")
    return value


def _scalar(v: Any) -> str:
    """A ``set`` value back in the command line's spelling (lists as [a,b], booleans lower case)."""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, list):
        return "[" + ",".join(_scalar(x) for x in v) + "]"
    return str(v)


def load_config(ctx: click.Context, param: click.Parameter, path: str | None) -> str | None:
    """Callback of ``--config`` (eager): the file's options become the command's defaults."""
    if path is None or ctx.resilient_parsing:
        return path
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise click.BadParameter(
            f"{path}: cannot read it ({e.strerror or e})", param_hint="'--config'"
        ) from None
    except yaml.YAMLError as e:
        raise click.BadParameter(
            f"{path}: not valid YAML ({str(e).splitlines()[0]})", param_hint="'--config'"
        ) from None
    data = {} if data is None else data
    if not isinstance(data, Mapping):
        raise click.BadParameter(
            f"{path}: expected a mapping of option names to values", param_hint="'--config'"
        )
    keys = option_keys(ctx.command)
    defaults: Dict[str, Any] = {}
    for key, value in data.items():
        name = str(key)
        if name not in keys:
            raise click.BadParameter(
                f"{path}: unknown key {name!r} (keys are {ctx.command.name}'s option names, "
                "e.g. method, patch_size, seed, set)",
                param_hint="'--config'",
            )
        opt = keys[name]
        defaults[opt.name] = _value(opt, name, value, path)
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return path


def config_option(fn):
    """``--config FILE`` on a command (read before the other options, which override it)."""
    return click.option(
        "--config",
        CONFIG,
        type=click.Path(dir_okay=False),
        default=None,
        is_eager=True,
        expose_value=False,
        callback=load_config,
        help="YAML file of this command's options (keys = option names, `-` as `_`; repeatable "
        "options as lists, set as a mapping); command-line options override it.",
    )(fn)


def resolved_options(ctx: click.Context) -> Dict[str, Any]:
    """Every option of this invocation, file and command line resolved, keyed as in a config file (so the
    result is itself a config file that reproduces the invocation)."""
    out: Dict[str, Any] = {}
    for param in ctx.command.params:
        longs = [o for o in getattr(param, "opts", []) if o.startswith("--")]
        if not isinstance(param, click.Option) or not longs or param.name not in ctx.params:
            continue
        value = ctx.params[param.name]
        if value is not None:
            out[_key(longs[0])] = _plain(_key(longs[0]), value)
    return out


def _plain(key: str, value: Any) -> Any:
    if key == "set":
        return {item.partition("=")[0].strip(): _yaml_value(item.partition("=")[2].strip()) for item in value}
    if isinstance(value, tuple):
        return [_plain(key, v) for v in value]
    return value


def _yaml_value(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text) if text else ""
    except yaml.YAMLError:
        return text


def save_resolved(runs_dir: str, options: Mapping[str, Any], command: str = "run") -> Path:
    """``<runs_dir>/_experiments/<command>-<hash>.yaml`` (atomic; the same options give the same file)."""
    import yaml

    from bench.io import atomic_write_text, check_writable_dir

    check_writable_dir(runs_dir)  # an unusable runs directory is named as such, before anything else
    text = (
        f"# adabench {command}: every option of the experiment, resolved (re-run it with "
        f"`adabench {command} --config <this file>`)\n" + yaml.safe_dump(dict(options), sort_keys=True)
    )
    what = {k: v for k, v in options.items() if k not in HOW}
    digest = hashlib.sha1(yaml.safe_dump(what, sort_keys=True).encode()).hexdigest()[:8]
    path = Path(runs_dir) / EXPERIMENTS_DIR / f"{command}-{digest}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)
    return path
