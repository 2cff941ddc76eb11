"""A run's identity without its seed: which runs are repeats of one configuration and may be pooled.

Two runs form one group only when everything that changes what they compute is equal except the seed.
What that is has one definition, ``bench.runs.config.computation_identity``, which also names the run
directory (``RunConfig.config_hash``); ``run_identity`` applies it to a run's ``config.yaml`` (``run`` =
the resolved RunConfig, ``preset`` = the resolved hyper-parameters, the method's own ``train`` fields
spelled out), keeps any other section, flattens everything to ``"<section>.<key>"`` without the seed,
and adds from ``manifest.json`` the code version and what the runner resolved at run time
(``MANIFEST_KEYS``) and the dataset root made absolute (``data_root``).
``group_hash`` hashes it; ``identity_hash(identity, drop=...)`` hashes it with keys left out (e.g. the
method, to find the runs of one matched experiment).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Dict, Iterable, Mapping, Optional

from bench import io
from bench.runs.config import SPELLING, computation_identity

# What changes a run's computation is defined once, by ``bench.runs.config.computation_identity`` (the run
# directory's hash reads it too). Of the other config.yaml sections (e.g. an evaluated checkpoint's) only
# the seed and the stored hash are left out. ``data_root`` is replaced by the absolute root (``ROOT``).
EXCLUDE: Dict[str, tuple] = {"run": ("seed", "data_root", "config_hash")}
# top-level config.yaml entries that are not option sections (it hashes the seed)
NOT_SECTIONS = ("config_hash",)
MANIFEST_KEYS = ("git_commit", "git_dirty", "precision", "protocol")
ROOT = "data_root"
NESTED = "train"  # the preset section of the method's own hyper-parameters
MISSING_CONFIG = "config_missing"


def _sections(config: Any) -> Dict[str, Mapping[str, Any]]:
    """{section: options}; a flat config.yaml (no ``run`` mapping) is the ``run`` section."""
    if not isinstance(config, Mapping):
        return {}
    if not isinstance(config.get("run"), Mapping):
        return {"run": config}
    return {k: v for k, v in config.items() if isinstance(v, Mapping) and k not in NOT_SECTIONS}


def launch_dir(run_dir: Path, runs_dir: Any) -> Optional[Path]:
    """The directory a run was started from, when its runs directory was given as a relative path:
    the run lives at ``<launch dir>/<runs_dir>/<dataset>/<method>/<name>``. None when unknown."""
    if runs_dir is None or Path(str(runs_dir)).is_absolute():
        return None
    parts = [p for p in Path(os.path.normpath(str(runs_dir))).parts if p != "."]
    above = Path(run_dir).resolve().parents
    if len(above) < 3:
        return None
    base = above[2]
    if ".." in parts or (parts and list(base.parts[-len(parts) :]) != parts):
        return None
    return Path(*base.parts[: len(base.parts) - len(parts)]) if parts else base


def absolute_root(root: Any, run_dir: Path, runs_dir: Any) -> Optional[str]:
    """``root`` as an absolute, normalised path; a relative one is joined to the run's launch
    directory (``launch_dir``), or kept relative when that cannot be told."""
    if root is None:
        return None
    p = Path(str(root))
    if not p.is_absolute():
        start = launch_dir(run_dir, runs_dir)
        p = start / p if start is not None else p
    return os.path.normpath(str(p))


def run_identity(run_dir: Path, config: Any, manifest: Any) -> Dict[str, Any]:
    """The flattened configuration of a run without its seed (see the module docstring)."""
    sections = _sections(config)
    if not sections:  # nothing says what was computed: never pooled with another run
        return {MISSING_CONFIG: str(run_dir)}
    run = sections.get("run", {})
    preset = sections.get("preset", {})
    computed = computation_identity(run, preset)
    if not isinstance(preset.get(NESTED), Mapping):  # no resolved preset: what was asked for stands in for it
        computed.update({k: run[k] for k in SPELLING if k in run})
    flat: Dict[str, Any] = {}
    for name, options in {**sections, "run": computed, "preset": computed.pop("preset")}.items():
        skip = EXCLUDE.get(name, ())
        flat.update({f"{name}.{k}": io.to_jsonable(v) for k, v in _flatten(options).items() if k not in skip})
    manifest = manifest if isinstance(manifest, Mapping) else {}
    flat[ROOT] = absolute_root(
        manifest.get("dataset_root", run.get("data_root")), run_dir, run.get("runs_dir")
    )
    flat.update({f"manifest.{k}": io.to_jsonable(manifest[k]) for k in MANIFEST_KEYS if k in manifest})
    return flat


def _flatten(options: Mapping[str, Any]) -> Dict[str, Any]:
    """One level of nesting spelled out (``train`` -> ``train.lr``), so a difference names its field."""
    out: Dict[str, Any] = {}
    for k, v in options.items():
        if isinstance(v, Mapping) and k == NESTED:
            out.update({f"{k}.{kk}": vv for kk, vv in v.items()})
        else:
            out[k] = v
    return out


def _dropped(key: str, drop: Iterable[str]) -> bool:
    return any(key == d or (d.endswith(".") and key.startswith(d)) for d in drop)


def identity_hash(identity: Mapping[str, Any], drop: Iterable[str] = ()) -> str:
    """8-hex SHA-1 of ``identity`` without the keys in ``drop`` (an entry ending in '.' drops a
    whole section, e.g. ``"preset."``)."""
    drop = tuple(drop)
    kept = {k: v for k, v in identity.items() if not _dropped(k, drop)}
    blob = json.dumps(io.to_jsonable(kept), sort_keys=True, default=str).encode()
    return hashlib.sha1(blob).hexdigest()[:8]


def group_hash(identity: Mapping[str, Any]) -> str:
    """Runs with equal group hashes differ only in their seed."""
    return identity_hash(identity)


def first(identity: Mapping[str, Any], *keys: str) -> Any:
    """The value of the first of ``keys`` present in ``identity`` (None if none is)."""
    return next((identity[k] for k in keys if k in identity), None)
