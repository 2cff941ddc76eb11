"""Matched experiments: the cross product of methods x patch sizes x seeds on equal terms.

Equal terms means identical data and splits, preset, architecture (``arch="matched"``),
hardware, and *initial weights*: every run of one (dataset, preset, arch, patch, seed)
cell starts from one saved initial state. Whichever method builds its network first
saves it; the others load every tensor whose name and shape match (only the parts that
differ by method, such as the policy's output head, keep their own initialisation).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import torch
from torch import nn

from bench.errors import UsageError
from bench.runs.config import RunConfig


def plan_runs(
    base: RunConfig,
    methods: Sequence[str],
    patch_sizes: Sequence[Optional[int]] = (),
    seeds: Sequence[int] = (),
    method_sets: Optional[Mapping[str, Mapping[str, Any]]] = None,
    data_root: Optional[Callable[[], str]] = None,
) -> List[RunConfig]:
    """One RunConfig per (patch size, seed, method), in an order that interleaves methods.

    ``base.overrides`` (``--set``) go to every method that has the field (a field no method has is a
    one-line error); ``method_sets[m]`` (method m's own options) to method m only. Methods are innermost so
    an interrupted experiment leaves matched pairs behind. Without patch sizes, the first method's preset's
    is used; without seeds, ``base.seed``. ``base.precision`` is resolved once, so every run records the
    precision it computes in and all methods share it. Every configuration is resolved (and so validated)
    here, before anything runs. Duplicates are dropped. ``data_root()``, when given, is called once every
    option has been validated (it may generate the synthetic benchmark) and sets every run's data root.
    """
    from bench.models.backbones import check_patch_size
    from bench.presets import preset_keys

    methods = list(dict.fromkeys(methods))
    if not methods:
        raise UsageError("--method: give at least one method")
    keys = {m: set(preset_keys(base.dataset, base.preset, m, base.arch)) for m in methods}
    unknown = sorted(k for k in base.overrides if not any(k in keys[m] for m in methods))
    if unknown:
        every = sorted(set().union(*keys.values()))
        hints = [
            f"{k}: did you mean {close[0]}?"
            for k in unknown
            if (close := difflib.get_close_matches(k, every, 1))
        ]
        raise UsageError(
            f"--set: unknown preset field(s): {', '.join(unknown)} (no method of {', '.join(methods)} "
            f"has them){' ' + ' '.join(hints) if hints else ''} `adabench run --list-keys` "
            f"lists every "
            "key with its default"
        )
    own = {
        m: {
            **{k: v for k, v in base.overrides.items() if k in keys[m]},
            **dict((method_sets or {}).get(m, {})),
        }
        for m in methods
    }
    precision = base.resolved_precision()  # one precision for every method of the experiment
    default_patch = (
        dataclasses.replace(base, method=methods[0], overrides=own[methods[0]]).resolve_preset().patch_size
    )
    plans = []
    for patch in list(dict.fromkeys(patch_sizes)) or [default_patch]:
        for seed in list(dict.fromkeys(seeds)) or [base.seed]:
            for method in methods:
                cfg = dataclasses.replace(
                    base,
                    method=method,
                    patch_size=patch,
                    seed=seed,
                    overrides=own[method],
                    precision=precision,
                )
                if len(methods) > 1 and cfg.init_state is None:
                    cfg.init_state = str(init_state_path(cfg))
                check_patch_size(cfg.resolve_preset())  # validates every override now
                plans.append(cfg)
    if data_root is not None:
        root = data_root()
        plans = [dataclasses.replace(cfg, data_root=root) for cfg in plans]
    return [matched_twin(cfg) for cfg in plans] if len(methods) == 1 else plans


def matched_twin(cfg: RunConfig) -> RunConfig:
    """A single-method run of a cell that a matched experiment already ran (same options, its shared initial
    weights saved): that experiment's run, so it is reused (or resumed) instead of trained again."""
    from bench.runs.rundir import RunDir

    if cfg.init_state is not None or not init_state_path(cfg).is_file():
        return cfg
    twin = dataclasses.replace(cfg, init_state=str(init_state_path(cfg)))
    return twin if RunDir.for_config(twin).config_path.is_file() else cfg


def init_state_path(cfg: RunConfig) -> Path:
    """Where the shared initial weights of a matched cell live (method-independent)."""
    cell = f"{cfg.dataset}-{cfg.preset}-{cfg.arch}-p{cfg.patch_size or 'default'}-s{cfg.seed}"
    return Path(cfg.runs_dir) / "_init" / f"{cell}.pt"


def share_initial_state(net: nn.Module, path: Optional[str]) -> Dict[str, object]:
    """Load the shared initial state into ``net``, or create it from ``net`` if it is the first.

    Returns what happened, for the run manifest: ``created``, ``loaded`` and ``kept_own``
    (tensor names that exist only in this method's network or differ in shape).
    """
    if not path:
        return {"created": False, "loaded": 0, "kept_own": []}
    target = Path(path)
    own = net.state_dict()
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        torch.save(own, tmp)
        try:  # O_EXCL-like: the first writer wins, a concurrent second one loads instead
            os.link(tmp, target)
            return {"created": True, "loaded": len(own), "kept_own": []}
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    try:
        shared = torch.load(target, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same one-line error
        raise UsageError(
            f"shared initial state {target} is unreadable ({e}); delete it to re-create"
        ) from None
    matching = {k: v for k, v in shared.items() if k in own and own[k].shape == v.shape}
    net.load_state_dict(matching, strict=False)
    kept = sorted(k for k in own if k not in matching)
    return {"created": False, "loaded": len(matching), "kept_own": kept}


def with_ablations(plans: List[RunConfig]) -> List[RunConfig]:
    """``plans`` followed by one run per registered ablation of each planned run's method (its switch off),
    each sharing that run's initial weights (so ablations pair by seed with the full method). The full runs
    come first, so an interrupted experiment has the main comparison."""
    from bench.methods import get_method

    extra = [
        dataclasses.replace(cfg, overrides={**cfg.overrides, a.field: False})
        for cfg in plans
        for a in get_method(cfg.method).ablations
    ]
    return plans + extra


def key_table(dataset: str, preset: str, arch: str, methods: Sequence[str]) -> List[str]:
    """``adabench run --list-keys``: every ``--set`` key with its default, per method (shared fields first,
    then the method's own), for ``dataset``/``preset``/``arch``."""
    from bench.presets import Preset, field_names, get_preset

    lines = []
    for method in methods:
        p = get_preset(dataset, preset, method=method, arch=arch)
        shared = [k for k in field_names(Preset) if k not in ("train", "dataset", "name", "method", "arch")]
        lines.append(f"{method} ({dataset}, {preset} preset, {arch} architecture):")
        lines += [f"  {k} = {getattr(p, k)!r}" for k in shared]
        lines += [f"  {k} = {getattr(p.train, k)!r}  ({method}'s own)" for k in field_names(p.train)]
        lines.append("")
    return lines[:-1]
