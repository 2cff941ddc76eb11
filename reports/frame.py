"""One canonical in-memory table of runs that the plots, tables and claims read.

Input is a list of ``summary.json`` dicts or the DataFrame of ``bench.runs.results``. Each row is one
run; nested summary values (``stage_seconds``, ``patch_eval``, ``early_exit``, ``curve``) stay
Python objects. Added columns:

- the ablation switches of every registered method (``bench.methods``: each entry's ``Ablation`` fields),
- ``variant``: ``"full"`` or the ablations a run switched off, e.g. ``"no-aux"``, ``"no-div+no-sg"``
  (the summary's ``variant``; read off the switches for older summaries),
- ``kind``: ``"trained"`` or ``"evaluated"`` (a checkpoint scored by ``adabench evaluate``; the report lists
  those apart and never pools them with trained runs),
- ``multilabel``: the run reports mAP; ``acc``: the headline accuracy in percent (mAP if
  multi-label, else top-1), ``metric``: its name (``"mAP"`` or ``"top-1"``),
- ``identity`` (dict) and ``group_hash``: the run's configuration without its seed (``bench.runs.identity``;
  rebuilt from the row's own columns for summaries that lack it); only runs with one group_hash are
  pooled over seeds,
- ``setting``: the hash of the identity without what varies inside one matched experiment (the method,
  the patch size, the method's own options and preset fields: ``bench.methods.method_preset_fields``);
  ``groups`` makes one report section per (dataset, preset, arch, setting), split where a method has runs
  of several configurations (``reports.sections``), so runs of different configurations are never
  compared or averaged,
- ``label``: "AdaFocusV2", "AdaFocusV2 no-aux", ... (registry titles), plus the configuration in words
  (``[lr=0.5]``) when a section still holds two configurations of the same method, variant and patch size.
"""

from __future__ import annotations

import json
import math
from typing import Any, Dict, Iterable, List, Mapping, Sequence, Union

import numpy as np
import pandas as pd

from bench.methods import all_ablations, all_columns, method_preset_fields, title
from bench.runs import identity as ident
from reports import sections as sect

NESTED = (
    "stage_seconds",
    "patch_eval",
    "early_exit",
    "curve",
    "identity",
    "tracking",
    "skipped_items",
    "regime",
)
GROUP_KEYS = ["dataset", "preset", "arch", "setting"]  # one report section per group
CELL_KEYS = ["method", "variant", "patch_size", "group_hash"]  # never pooled across these
ABLATION_FLAGS = {a.field: a.short for _, a in all_ablations()}  # switch -> variant name, every method
# identity keys that may differ between the runs of one matched experiment (one report section)
# (an entry ending in "." is a prefix: the method's own ``train`` fields are spelled out, ``preset.train.lr``)
EXPERIMENT_VARIES = (
    "run.method",
    "run.patch_size",
    "run.overrides",
    *(f"preset.{f}{end}" for f in method_preset_fields() for end in ("", ".")),
    *(f"run.{flag}" for flag in ABLATION_FLAGS),
)
SETTING_SOURCES = ("run.", "preset.", "manifest.", ident.ROOT, ident.MISSING_CONFIG)
# row columns a summary without an identity is identified by (besides the ablation switches)
FALLBACK_KEYS = (
    "method",
    "dataset",
    "preset",
    "arch",
    "patch_size",
    *(c.column for c in all_columns()),
    "deterministic",
    "epochs",
    "overrides",
    "skip_bad",
    "protocol",
    "precision",
)
RunsLike = Union[pd.DataFrame, Sequence[Mapping[str, Any]]]


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _nested(v: Any) -> Any:
    """Nested values may come back from CSV/Parquet as JSON strings."""
    if isinstance(v, str) and v[:1] in "[{":
        try:
            return json.loads(v)
        except ValueError:
            return v
    return None if _missing(v) else v


def _flag(v: Any) -> bool:
    if _missing(v):
        return True
    if isinstance(v, str):
        return v.strip().lower() not in ("false", "0", "no", "off")
    return bool(v)


def variant_name(run: Mapping[str, Any]) -> str:
    """'full' or the ablations a run switched off: its summary's ``variant``, else read off its switches
    (the same key the regression baseline uses)."""
    v = run.get("variant")
    if isinstance(v, str) and v:
        return v
    off = [short for flag, short in ABLATION_FLAGS.items() if not _flag(run.get(flag))]
    return "+".join(off) if off else "full"


def point_accuracy(point: Mapping[str, Any], multilabel: bool) -> float:
    """Accuracy (fraction) of a curve / early-exit point: mAP when multi-label and present, else top-1."""
    if multilabel and not _missing(point.get("map")):
        return float(point["map"])
    return float(point.get("top1", float("nan")))


def fallback_identity(row: Mapping[str, Any]) -> Dict[str, Any]:
    """An identity from a row's own columns, for summaries not read from a run directory."""
    out = {f"run.{k}": row[k] for k in (*FALLBACK_KEYS, *ABLATION_FLAGS) if not _missing(row.get(k))}
    for key, name in ((ident.ROOT, "data_root"), ("manifest.git_commit", "git_commit")):
        if not _missing(row.get(name)):
            out[key] = row[name]
    return out


def setting_identity(identity: Mapping[str, Any]) -> Dict[str, Any]:
    """The part of an identity every run of one matched experiment shares: the run options, the shared
    preset fields, the code version and the data root, without ``EXPERIMENT_VARIES``."""
    return {
        k: v for k, v in identity.items() if _among(k, SETTING_SOURCES) and not _among(k, EXPERIMENT_VARIES)
    }


def _among(key: str, entries: Sequence[str]) -> bool:
    return any(key == e or (e.endswith(".") and key.startswith(e)) for e in entries)


def differing(identities: Sequence[Mapping[str, Any]]) -> Dict[str, List[Any]]:
    """{key: the distinct values} of the keys on which ``identities`` do not all agree."""
    keys = sorted(set().union(*identities)) if identities else []
    out = {}
    for k in keys:
        values = [json.dumps(i.get(k), sort_keys=True, default=str) for i in identities]
        if len(set(values)) > 1:
            out[k] = [json.loads(v) for v in dict.fromkeys(values)]
    return out


def _labels(df: pd.DataFrame) -> List[str]:
    """'AdaFocusV2 no-aux' etc. (registry titles); ``config_words`` (the configuration in words) added where
    one section holds two configurations of a cell (they are drawn apart, never averaged)."""
    words = df["config_words"] if "config_words" in df else [""] * len(df)
    return [
        title(m) + ("" if v == "full" else f" {v}") + (f" [{w}]" if w else "")
        for m, v, w in zip(df["method"], df["variant"], words)
    ]


def _cell_words(df: pd.DataFrame) -> List[str]:
    """Per run, the identity keys in which it differs from the other configurations of its cell, in words
    ("" when its cell has one configuration)."""
    out = pd.Series("", index=df.index)
    for _, cell in df.groupby(CELL_KEYS[:-1]):
        if cell["group_hash"].nunique() > 1:
            apart = differing(list(cell["identity"]))
            for i, r in cell.iterrows():
                out[i] = sect.words({k: r["identity"].get(k) for k in apart})
    return list(out)


def runs_frame(runs: RunsLike) -> pd.DataFrame:
    """Normalise summaries (or a ``bench.runs.results`` DataFrame) into the canonical table."""
    rows: List[Dict[str, Any]] = (
        runs.to_dict("records") if isinstance(runs, pd.DataFrame) else [dict(r) for r in runs]
    )
    for r in rows:
        r["kind"] = "trained" if _missing(r.get("kind")) else str(r["kind"])  # older summaries: trained runs
        for k in GROUP_KEYS:  # a missing key would silently drop the run from groupby
            r[k] = "unknown" if _missing(r.get(k)) else str(r[k])
        for k in NESTED:
            r[k] = _nested(r.get(k))
        for k in ABLATION_FLAGS:
            r[k] = _flag(r.get(k))
        r["variant"] = variant_name(r)
        r["multilabel"] = not _missing(r.get("map"))
        r["acc"] = 100.0 * float(r["map"] if r["multilabel"] else r["top1"])
        r["metric"] = "mAP" if r["multilabel"] else "top-1"
        if not isinstance(r["identity"], Mapping):
            r["identity"] = fallback_identity(r)
        if _missing(r.get("group_hash")):
            r["group_hash"] = ident.group_hash(r["identity"])
        r["setting"] = ident.identity_hash(setting_identity(r["identity"]))
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    df["patch_size"] = df["patch_size"].astype(int)
    df["seed"] = df["seed"].astype(int)
    df["label"] = _labels(df)
    return df.sort_values(GROUP_KEYS + CELL_KEYS + ["seed"]).reset_index(drop=True)


def groups(df: pd.DataFrame) -> List[tuple]:
    """[((dataset, preset, arch, setting, name), runs)]: runs that may be compared with each other, one
    entry per report section (``reports.sections``: a setting is split where a method has runs of several
    configurations; ``name`` says which, in words, "" when there is one)."""
    if df.empty:
        return []
    out = []
    for key, sub in df.groupby(GROUP_KEYS, sort=True):
        for name, part in sect.split(sub, setting_identity, tuple(ABLATION_FLAGS)):
            part = part.reset_index(drop=True)
            part = part.assign(config_words=_cell_words(part))
            out.append(((*key, name), part.assign(label=_labels(part))))
    return out


def metric_label(df: pd.DataFrame) -> str:
    """Axis / column label of the headline accuracy of a group."""
    names = sorted(set(df["metric"])) if not df.empty else ["top-1"]
    return " / ".join("top-1 accuracy" if n == "top-1" else n for n in names) + " (%)"


def mean_std(values: Iterable[float]) -> tuple:
    """(mean, sample std or nan for one value, n) ignoring NaNs."""
    a = np.asarray([v for v in values if not _missing(v)], dtype=float)
    if a.size == 0:
        return float("nan"), float("nan"), 0
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else float("nan"), int(a.size)


def fmt_mean_std(values: Iterable[float], digits: int = 1, unit: str = "") -> str:
    """'75.3 ± 1.2' (n ≥ 2), '75.3' (n = 1), '–' (no values)."""
    m, s, n = mean_std(values)
    if n == 0:
        return "–"
    if n == 1:
        return f"{m:.{digits}f}{unit}"
    return f"{m:.{digits}f} ± {s:.{digits}f}{unit}"


def time_unit(seconds: float) -> tuple:
    """(divisor, unit name) so training times read naturally: s, min or h."""
    if not seconds or _missing(seconds) or seconds < 120:
        return 1.0, "s"
    if seconds < 2 * 3600:
        return 60.0, "min"
    return 3600.0, "h"
