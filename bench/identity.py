"""A run's identity without its seed: which runs are repeats of one configuration and may be pooled.

Two runs form one group only when everything that changes what they compute is equal except the seed.
``run_identity`` reads that generically, without knowing the option names: every section of
``config.yaml`` (``run`` = the resolved RunConfig, ``preset`` = the resolved hyper-parameters, and any
section added later) flattened to ``"<section>.<key>"``, minus ``EXCLUDE`` (the seed and what only
says where or how a run is shown), plus from ``manifest.json`` the code version and what the runner
resolved at run time (``MANIFEST_KEYS``), and the dataset root made absolute (``data_root``).
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

# Keys that do not change what a run computes. ``stages`` only says which V1 stages one invocation
# ran; a complete run (the only kind the results table reads) has run them all. ``init_state`` is the
# path of the shared initial weights, which the seed already determines within an experiment.
# ``channels_last`` and ``compile`` change only how fast the same arithmetic runs.
# ``data_root`` is not dropped but replaced by the absolute root (``ROOT``).
EXCLUDE: Dict[str, tuple] = {
    "run": ("seed", "runs_dir", "progress", "num_workers", "device", "init_state", "stages", "data_root",
            "config_hash", "channels_last", "compile"),
}
NOT_SECTIONS = ("config_hash",)  # top-level config.yaml entries that are not option sections (it hashes the seed)
MANIFEST_KEYS = ("git_commit", "git_dirty", "precision", "protocol")
ROOT = "data_root"
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
    if ".." in parts or (parts and list(base.parts[-len(parts):]) != parts):
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
    flat: Dict[str, Any] = {}
    for name, options in sections.items():
        skip = EXCLUDE.get(name, ())
        flat.update({f"{name}.{k}": io.to_jsonable(v) for k, v in options.items() if k not in skip})
    manifest = manifest if isinstance(manifest, Mapping) else {}
    run = sections.get("run", {})
    flat[ROOT] = absolute_root(manifest.get("dataset_root", run.get("data_root")), run_dir, run.get("runs_dir"))
    flat.update({f"manifest.{k}": io.to_jsonable(manifest[k]) for k in MANIFEST_KEYS if k in manifest})
    return flat


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
