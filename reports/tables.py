"""Markdown tables for one (dataset, preset, arch) group of runs (see ``reports.frame``).

- ``efficiency_table``: V1 vs V2 training efficiency per patch size, like V2's Table 2,
- ``stage_table``: per-stage training time breakdown,
- ``seeds_table``: every metric as mean ± std over seeds, per method / variant / patch size.
"""

from __future__ import annotations

from typing import Any, Dict, List, Sequence

import numpy as np
import pandas as pd

from bench.methods import comparison_pairs
from reports.frame import CELL_KEYS, fmt_mean_std, metric_label, time_unit


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub Markdown table; '|' inside cells is escaped."""

    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _sig_digits(values: pd.Series, sig: int = 3) -> int:
    """Decimals that show ``sig`` significant digits of the largest value (tiny presets: 0.0257 G)."""
    m = float(np.nanmax(np.abs(values))) if len(values) else 0.0
    return 1 if not np.isfinite(m) or m == 0 else max(0, sig - 1 - int(np.floor(np.log10(m))))


def _unit_for(seconds: pd.Series) -> tuple:
    return time_unit(float(seconds.max()) if len(seconds) else 0.0)


def _pairs_of_configs(a: pd.DataFrame, b: pd.DataFrame) -> List[tuple]:
    """Every (a configuration, b configuration) pair of sub-frames (one pair in a normal section)."""
    return [(sa, sb) for _, sa in a.groupby("group_hash") for _, sb in b.groupby("group_hash")]


def efficiency_table(df: pd.DataFrame) -> str:
    """Each method against its baseline (``bench.methods``; full variants): accuracy, GFLOPs/video, training
    time and the baseline/method speed-up per patch size. One table per compared pair."""
    full = df[df["variant"] == "full"]
    pairs = comparison_pairs(sorted(set(full["method"])))
    if not pairs:
        return "_Needs runs of a method and of its baseline._\n"
    return "\n".join(_efficiency_pair(full, base, prop) for base, prop in pairs)


def _efficiency_pair(full: pd.DataFrame, base: Any, prop: Any) -> str:
    div, unit = _unit_for(full["train_seconds"])
    acc = metric_label(full)
    b, q = base.title, prop.title
    headers = [
        "Patch",
        f"{b} {acc}",
        f"{q} {acc}",
        f"{b} GFLOPs/video",
        f"{q} GFLOPs/video",
        f"{b} train time ({unit})",
        f"{q} train time ({unit})",
        f"Speed-up ({b}/{q})",
        "Seeds",
    ]
    gd = _sig_digits(full["gflops_per_video"])
    rows = []
    for p, sub in full.groupby("patch_size"):
        for x, y in _pairs_of_configs(sub[sub["method"] == base.name], sub[sub["method"] == prop.name]):
            speed = x["train_seconds"].mean() / y["train_seconds"].mean()
            la, lb = x["label"].iloc[0], y["label"].iloc[0]
            patch = f"{p}²" + (f" ({la} vs {lb})" if "[" in la + lb else "")  # two configurations here
            rows.append(
                [
                    patch,
                    fmt_mean_std(x["acc"]),
                    fmt_mean_std(y["acc"]),
                    fmt_mean_std(x["gflops_per_video"], gd),
                    fmt_mean_std(y["gflops_per_video"], gd),
                    fmt_mean_std(x["train_seconds"] / div, 1),
                    fmt_mean_std(y["train_seconds"] / div, 1),
                    f"{speed:.2f}×",
                    f"{len(x)}/{len(y)}",
                ]
            )
    return markdown_table(headers, rows) if rows else f"_No patch size has both {b} and {q} runs._\n"


def _stage_names(stage_dicts: Sequence[Any]) -> List[str]:
    names: List[str] = []
    for d in stage_dicts:
        for k in d or {}:
            if k not in names:
                names.append(k)
    return names


def stage_means(sub: pd.DataFrame) -> Dict[str, float]:
    """Mean seconds per stage over the runs of ``sub`` (a stage a run lacks counts as 0 s)."""
    names = _stage_names(list(sub["stage_seconds"]))
    return {n: float(np.mean([(d or {}).get(n, 0.0) for d in sub["stage_seconds"]])) for n in names}


def _cells(df: pd.DataFrame) -> List[tuple]:
    """(label, patch size, sub-frame) per method / variant / patch size / configuration, in a stable
    order: runs of different configurations (group_hash) are never one cell."""
    return [(sub["label"].iloc[0], key[2], sub) for key, sub in df.groupby(CELL_KEYS, sort=True)]


def stage_table(df: pd.DataFrame) -> str:
    """Mean wall-clock per training stage, total, data-wait share and peak memory."""
    stages = _stage_names(list(df["stage_seconds"]))
    div, unit = _unit_for(df["train_seconds"])
    headers = (
        ["Method", "Patch"]
        + [f"{s} ({unit})" for s in stages]
        + [f"total ({unit})", "data wait (%)", "peak memory (MB)", "seeds"]
    )
    rows = []
    for label, p, sub in _cells(df):
        means = stage_means(sub)
        rows.append(
            [label, f"{p}²"]
            + [f"{means[s] / div:.2f}" if s in means else "–" for s in stages]
            + [
                fmt_mean_std(sub["train_seconds"] / div, 2),
                fmt_mean_std(100 * sub["data_wait_share"], 0),
                fmt_mean_std(sub["peak_memory_mb"], 0),
                len(sub),
            ]
        )
    return markdown_table(headers, rows)


def _tracking_cells(sub: pd.DataFrame) -> List[str]:
    """Does the learned patch follow the object (``bench.training.metrics.location_tracking``): the
    correlation of patch
    and object centres over videos, and their mean distance next to the best constant location's."""
    tr = [
        t
        for t in (sub["tracking"] if "tracking" in sub else [])
        if isinstance(t, dict) and t.get("corr") is not None
    ]
    if not tr:
        return ["–", "–"]
    dist = fmt_mean_std([t["distance"] for t in tr], 2)
    return [
        fmt_mean_std([t["corr"] for t in tr], 2),
        f"{dist} / {fmt_mean_std([t['constant_distance'] for t in tr], 2)}",
    ]


def seeds_table(df: pd.DataFrame) -> str:
    """Every headline number as mean ± std over seeds (std shown when n ≥ 2)."""
    div, unit = _unit_for(df["train_seconds"])
    headers = [
        "Method",
        "Patch",
        "Seeds",
        metric_label(df),
        "GFLOPs/video",
        f"train time ({unit})",
        "learned-patch top-1 (%)",
        "random-patch top-1 (%)",
        "centre-patch top-1 (%)",
        "coverage (%)",
        "tracking corr",
        "distance / constant",
    ]
    gd = _sig_digits(df["gflops_per_video"])
    rows = []
    for label, p, sub in _cells(df):
        pe = [d or {} for d in sub["patch_eval"]]
        cov = sub["coverage"] if "coverage" in sub else pd.Series(dtype=float)
        rows.append(
            [
                label,
                f"{p}²",
                ", ".join(str(s) for s in sub["seed"]),
                fmt_mean_std(sub["acc"]),
                fmt_mean_std(sub["gflops_per_video"], gd),
                fmt_mean_std(sub["train_seconds"] / div, 2),
            ]
            + [
                fmt_mean_std([100 * d[k] for d in pe if d.get(k) is not None])
                for k in ("learned", "random", "centre")
            ]
            + [fmt_mean_std(100 * pd.to_numeric(cov, errors="coerce"))]
            + _tracking_cells(sub)
        )
    return markdown_table(headers, rows)
