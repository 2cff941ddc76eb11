"""One canonical in-memory table of runs that the plots, tables and claims read.

Input is a list of ``summary.json`` dicts or the DataFrame of ``bench.results``. Each row is one
run; nested summary values (``stage_seconds``, ``patch_eval``, ``early_exit``, ``curve``) stay
Python objects. Added columns:

- ``aux_supervision``, ``diversity``, ``stop_gradient``: the V2 ablation switches (default on),
- ``variant``: ``"full"`` or the switches turned off, e.g. ``"no-aux"``, ``"no-div+no-sg"``,
- ``multilabel``: the run reports mAP; ``acc``: the headline accuracy in percent (mAP if
  multi-label, else top-1), ``metric``: its name (``"mAP"`` or ``"top-1"``).
"""
from __future__ import annotations

import json
import math
from typing import Any, Dict, Iterable, List, Mapping, Sequence, Union

import numpy as np
import pandas as pd

from bench.methods import all_methods

NESTED = ("stage_seconds", "patch_eval", "early_exit", "curve")
GROUP_KEYS = ["dataset", "preset", "arch"]  # one report section per group
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


def ablation_flags() -> Dict[str, str]:
    """{switch: variant name} of every registered method's ablations (e.g. aux_supervision: no-aux)."""
    return {a.field: a.short for m in all_methods() for a in m.ablations}


ABLATION_FLAGS = ablation_flags()


def variant_name(run: Mapping[str, Any]) -> str:
    """'full' or the ablations a run switched off: its summary's ``variant``, else read off its switches."""
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


def runs_frame(runs: RunsLike) -> pd.DataFrame:
    """Normalise summaries (or a ``bench.results`` DataFrame) into the canonical table."""
    rows: List[Dict[str, Any]] = (
        runs.to_dict("records") if isinstance(runs, pd.DataFrame) else [dict(r) for r in runs]
    )
    for r in rows:
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
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    df["patch_size"] = df["patch_size"].astype(int)
    df["seed"] = df["seed"].astype(int)
    return df.sort_values(GROUP_KEYS + ["method", "variant", "patch_size", "seed"]).reset_index(drop=True)


def groups(df: pd.DataFrame) -> Iterable[tuple]:
    """(dataset, preset, arch), sub-frame: runs that may be compared with each other."""
    if df.empty:
        return []
    return df.groupby(GROUP_KEYS, sort=True)


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
