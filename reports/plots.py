"""Seaborn PNG plots for one (dataset, preset, arch) group of runs (see ``reports.frame``).

Each ``plot_*`` function draws on a fresh ``matplotlib.figure.Figure`` (no pyplot, so no global
state and no display backend), writes the PNG atomically and returns the figure so tests can
inspect axes labels and legends.
"""

from __future__ import annotations

import io as _io
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from bench.io import atomic_write_bytes
from bench.methods import comparison_pairs, title
from reports.frame import CELL_KEYS, metric_label, point_accuracy, time_unit
from reports.tables import stage_means

DPI = 120
PATCH_MODES = ("learned", "random", "centre")


def _new_axes(size: Tuple[float, float] = (7.0, 4.6)) -> Tuple[Figure, Axes]:
    with sns.axes_style("whitegrid"):
        fig = Figure(figsize=size, layout="constrained")
        ax = fig.add_subplot()
    return fig, ax


def _save(fig: Figure, path: Path) -> Path:
    buf = _io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return atomic_write_bytes(path, buf.getvalue())


def _label(method: str, variant: str) -> str:
    return title(method) + ("" if variant == "full" else f" ({variant})")


def _palette(labels: List[str]) -> dict:
    colours = sns.color_palette("colorblind", max(len(labels), 3))
    return dict(zip(labels, colours))


def _title(df: pd.DataFrame, what: str) -> str:
    r = df.iloc[0]
    return f"{what} — {r['dataset']} / {r['preset']} preset / {r['arch']} arch"


def _run_labels(df: pd.DataFrame) -> pd.Series:
    """Legend label per run: method and variant (and the configuration in words, ``reports.frame``, when a
    section holds two configurations of one cell: they are drawn apart, never averaged)."""
    words = df["config_words"] if "config_words" in df else [""] * len(df)
    return pd.Series(
        [
            _label(m, v) + (f" [{w}]" if isinstance(w, str) and w else "")
            for m, v, w in zip(df["method"], df["variant"], words)
        ],
        index=df.index,
    )


MIN_RELATIVE_SPAN = 0.2  # an x-axis spans at least this share of its largest cost


def _cost_axis(ax: Axes, costs: List[float]) -> None:
    """Costs that differ by little (0.6 % between two methods) stay close on the axis: it spans at least
    ``MIN_RELATIVE_SPAN`` of the largest cost, centred on the points, instead of stretching any gap to fill
    it."""
    costs = [c for c in costs if c == c]
    if not costs:
        return
    lo, hi = min(costs), max(costs)
    span = MIN_RELATIVE_SPAN * hi
    if hi - lo < span:
        mid = (lo + hi) / 2
        ax.set_xlim(max(0.0, mid - span / 2 - 0.05 * span), mid + span / 2 + 0.05 * span)


def _mean_exit_curve(runs: pd.DataFrame) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """(GFLOPs [n], accuracy % [n]) of the early-exit points averaged over seeds point by point
    (runs share the budget list); None when no run has early-exit points."""
    curves = [
        sorted(r["early_exit"], key=lambda q: q["gflops"]) for _, r in runs.iterrows() if r["early_exit"]
    ]
    if not curves:
        return None
    n = min(len(c) for c in curves)
    ml = bool(runs["multilabel"].iloc[0])
    g = np.array([[q["gflops"] for q in c[:n]] for c in curves]).mean(0)
    a = np.array([[100 * point_accuracy(q, ml) for q in c[:n]] for c in curves]).mean(0)
    return g, a


def plot_accuracy_vs_gflops(df: pd.DataFrame, path: Path) -> Figure:
    """Mean accuracy (± std over seeds) vs GFLOPs per video per method and patch size, with the
    early-exit curve of every method whose runs have one (accuracy at each exit budget; V2+)."""
    fig, ax = _new_axes()
    df = df.assign(label=_run_labels(df))
    pal = _palette(sorted(set(df["label"])))
    first = True
    for (_, label), sub in df[df["variant"] == "full"].groupby(["patch_size", "label"]):
        curve = _mean_exit_curve(sub)
        if curve is not None:
            ax.plot(
                curve[0],
                curve[1],
                "--",
                marker=".",
                color=pal[label],
                alpha=0.6,
                label="early exit (mean over seeds)" if first else None,
            )
            first = False
    agg = (
        df.groupby(["label", "patch_size"])
        .agg(g=("gflops_per_video", "mean"), acc=("acc", "mean"), sd=("acc", "std"))
        .reset_index()
    )
    for label, sub in agg.groupby("label"):
        ax.errorbar(
            sub["g"],
            sub["acc"],
            yerr=sub["sd"].fillna(0),
            fmt="o-",
            ms=7,
            capsize=3,
            color=pal[label],
            label=label,
        )
        for _, r in sub.iterrows():
            ax.annotate(
                f"{r['patch_size']}²",
                (r["g"], r["acc"]),
                textcoords="offset points",
                xytext=(5, 5),
                fontsize=8,
            )
    exit_costs = [q["gflops"] for e in df["early_exit"] if isinstance(e, list) for q in e]
    _cost_axis(ax, list(agg["g"]) + exit_costs)
    ax.set_xlabel("inference cost (GFLOPs per video)")
    ax.set_ylabel(f"{metric_label(df)}")
    ax.set_title(_title(df, "Accuracy vs inference cost"))
    ax.legend(title="method")
    _save(fig, path)
    return fig


def plot_accuracy_vs_time(df: pd.DataFrame, path: Path) -> Figure:
    """Accuracy vs training wall-clock (like V2's Figure 1): each run's evaluated-epoch curve, its
    final point, and per patch size each method's speed-up and accuracy gain over its baseline."""
    fig, ax = _new_axes()
    div, unit = time_unit(float(df["train_seconds"].max()))
    df = df.assign(label=_run_labels(df))
    pts = []
    for i, r in df.iterrows():
        for q in r["curve"] or []:
            pts.append(
                {
                    "run": i,
                    "label": r["label"],
                    "patch": f"{r['patch_size']}²",
                    "t": q["train_seconds"] / div,
                    "acc": 100 * point_accuracy(q, r["multilabel"]),
                }
            )
    finals = pd.DataFrame(
        {
            "method": df["label"],
            "patch size": [f"{p}²" for p in df["patch_size"]],
            "t": df["train_seconds"] / div,
            "acc": df["acc"],
        }
    )
    pal = _palette(sorted(set(df["label"])))
    if pts:
        sns.lineplot(
            data=pd.DataFrame(pts),
            x="t",
            y="acc",
            hue="label",
            units="run",
            estimator=None,
            palette=pal,
            alpha=0.45,
            lw=1,
            marker="o",
            markersize=3,
            ax=ax,
            legend=False,
        )
    sns.scatterplot(data=finals, x="t", y="acc", hue="method", style="patch size", s=80, palette=pal, ax=ax)
    notes = []
    full = df[df["variant"] == "full"]
    for (p, _), sub in full.groupby(["patch_size", "setting"]):
        for base, prop in comparison_pairs(sorted(set(sub["method"]))):
            a, b = sub[sub["method"] == base.name], sub[sub["method"] == prop.name]
            if a["group_hash"].nunique() == 1 == b["group_hash"].nunique():
                notes.append(
                    f"{p}²: {prop.title} speed-up "
                    f"{a['train_seconds'].mean() / b['train_seconds'].mean():.1f}×, "
                    f"accuracy {b['acc'].mean() - a['acc'].mean():+.1f} pts vs {base.title}"
                )
    if notes:
        ax.text(
            0.98,
            0.03,
            "\n".join(notes),
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize=8,
            bbox={"boxstyle": "round", "fc": "white", "ec": "0.7"},
        )
    ax.set_xlabel(f"training wall-clock ({unit})")
    ax.set_ylabel(metric_label(df))
    ax.set_title(_title(df, "Accuracy vs training time"))
    ax.legend(fontsize=8, loc="upper left")
    _save(fig, path)
    return fig


def plot_patch_modes(df: pd.DataFrame, path: Path) -> Optional[Figure]:
    """Grouped bars: top-1 with learned vs random vs centre patches per method and patch size."""
    rows = []
    labels = _run_labels(df)
    for i, r in df.iterrows():
        for mode in PATCH_MODES:
            v = (r["patch_eval"] or {}).get(mode)
            if v is not None:
                rows.append({"run": f"{labels[i]} {r['patch_size']}²", "patches": mode, "top1": 100 * v})
    if not rows:
        return None
    fig, ax = _new_axes((max(6.0, 1.3 * len({r["run"] for r in rows}) + 2), 4.6))
    sns.barplot(
        data=pd.DataFrame(rows),
        x="run",
        y="top1",
        hue="patches",
        hue_order=list(PATCH_MODES),
        errorbar="sd",
        capsize=0.1,
        palette="colorblind",
        ax=ax,
    )
    ax.set_xlabel("method and patch size")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title(_title(df, "Learned vs random vs centre patches"))
    ax.legend(title="patch locations")
    _save(fig, path)
    return fig


def plot_stage_breakdown(df: pd.DataFrame, path: Path) -> Optional[Figure]:
    """Stacked bars: mean training wall-clock per stage, per method / variant / patch size
    (None, and no file, when no run recorded stage times)."""
    div, unit = time_unit(float(df["train_seconds"].max()))
    cells = [
        (f"{_run_labels(sub).iloc[0]} {p}²", stage_means(sub))
        for (m, v, p, _), sub in df.groupby(CELL_KEYS, sort=True)
    ]
    stages: List[str] = []
    for _, means in cells:
        stages += [s for s in means if s not in stages]
    if not stages:
        return None
    fig, ax = _new_axes((max(6.0, 1.1 * len(cells) + 2), 4.6))
    pal = _palette(stages)
    bottom = np.zeros(len(cells))
    x = np.arange(len(cells))
    for s in stages:
        h = np.array([means.get(s, 0.0) / div for _, means in cells])
        ax.bar(x, h, bottom=bottom, color=pal[s], label=s, width=0.6)
        bottom += h
    ax.set_xticks(x, [c for c, _ in cells], rotation=20, ha="right")
    ax.set_xlabel("method and patch size")
    ax.set_ylabel(f"training wall-clock ({unit})")
    ax.set_ylim(0, 1.08 * max(float(bottom.max()), 1e-9))
    ax.set_title(_title(df, "Training time per stage"))
    ax.legend(title="stage", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _save(fig, path)
    return fig


PLOTS = {
    "accuracy_vs_gflops": plot_accuracy_vs_gflops,
    "accuracy_vs_time": plot_accuracy_vs_time,
    "patch_modes": plot_patch_modes,
    "stage_time": plot_stage_breakdown,
}
