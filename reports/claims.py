"""The claims table: each claim of the V2 paper, the paper's figure, our measurement and a verdict.

Verdict rule (one rule for every two-sided comparison, kept simple on purpose):

- ``not enough seeds`` when either side has fewer than ``MIN_SEEDS`` (2) runs. The measurement is
  still shown.
- ``holds`` when the difference of the means, in the claimed direction, is larger than the pooled
  standard deviation over seeds, sqrt((s_a² + s_b²) / 2); for the training speed-up the V1/V2 ratio
  of mean times must also be at least ``SPEEDUP_MIN`` (1.5×, our reading of "about 2×").
- ``does not hold`` otherwise: the claimed effect was not seen above the seed-to-seed noise.

Early-exit savings compare each V2 run with itself: the smallest early-exit GFLOPs whose accuracy is
within ``exit_tol`` points of the full model. The claim holds when the mean saving is at least
``EXIT_SAVING_MIN`` (5 %) and larger than its std over seeds.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

from bench.timing import time_to_accuracy as _time_to_accuracy
from reports import paper
from reports.frame import ABLATION_FLAGS, fmt_mean_std, mean_std, point_accuracy, time_unit

HOLDS, FAILS, FEW = "holds", "does not hold", "not enough seeds"
VERDICTS = (HOLDS, FAILS, FEW)
MIN_SEEDS = 2
SPEEDUP_MIN = 1.5
EXIT_SAVING_MIN = 0.05
RULE = (f"Verdicts need ≥{MIN_SEEDS} seeds per side; a claim holds when the difference of means in the claimed "
        f"direction exceeds the pooled std over seeds (speed-up also ≥{SPEEDUP_MIN:g}×; early-exit saving "
        f"≥{EXIT_SAVING_MIN:.0%} and above its std).")


@dataclass
class Claim:
    claim: str
    setting: str
    paper: str
    measurement: str
    verdict: str


def compare(better: Sequence[float], worse: Sequence[float], min_seeds: int = MIN_SEEDS) -> tuple:
    """(verdict, mean difference better - worse, pooled std) for the claim mean(better) > mean(worse)."""
    b, w = np.asarray(better, dtype=float), np.asarray(worse, dtype=float)
    diff = float(b.mean() - w.mean()) if b.size and w.size else float("nan")
    if b.size < min_seeds or w.size < min_seeds:
        return FEW, diff, float("nan")
    if not (np.isfinite(b).all() and np.isfinite(w).all()):
        return (HOLDS if diff > 0 and np.isfinite(b).all() else FAILS), diff, float("nan")
    pooled = math.sqrt((b.var(ddof=1) + w.var(ddof=1)) / 2)
    return (HOLDS if diff > pooled else FAILS), diff, pooled


def time_to_accuracy(curve: Optional[Sequence[Dict[str, Any]]], target: float,
                     multilabel: bool = False) -> Optional[float]:
    """Training seconds at which ``curve`` first reaches ``target`` (fraction), None if never.

    Multi-label runs are read on mAP when their curve records it; ``bench.timing`` does the search.
    """
    curve = list(curve or [])
    key = "map" if multilabel and any(p.get("map") is not None for p in curve) else "top1"
    return _time_to_accuracy(curve, target - 1e-9, key=key)  # 1e-9: targets are means of the same floats


def exit_saving(run: pd.Series, tol_pts: float) -> Optional[float]:
    """1 - GFLOPs/full GFLOPs of the cheapest early-exit point within ``tol_pts`` of the run's accuracy."""
    points = run.get("early_exit") or []
    if not points:
        return None
    ok = [p["gflops"] for p in points if 100 * point_accuracy(p, run["multilabel"]) >= run["acc"] - tol_pts]
    return 1.0 - min(ok) / run["gflops_per_video"] if ok else 0.0


def _fmt_t(seconds: Sequence[float], scale: float) -> str:
    """Mean ± std of ``seconds`` in the unit that suits ``scale`` seconds (one unit per claim)."""
    div, unit = time_unit(scale)
    return fmt_mean_std([s / div for s in seconds], 1, f" {unit}")


def _n(values: Sequence[Any]) -> str:
    return f"n={len(values)}"


def accuracy_claim(v1: pd.DataFrame, v2: pd.DataFrame, dataset: str, p: int) -> Claim:
    verdict, diff, _ = compare(v2["acc"], v1["acc"])
    metric = v2["metric"].iloc[0]
    g1, g2 = v1["gflops_per_video"].mean(), v2["gflops_per_video"].mean()
    cost = f"; GFLOPs {g1:.3g} vs {g2:.3g}"
    if abs(g2 / g1 - 1) > 0.05:
        cost += f" (⚠ V2 costs {100 * (g2 / g1 - 1):+.0f}%)"
    m = (f"V1 {fmt_mean_std(v1['acc'])} ({_n(v1)}) vs V2 {fmt_mean_std(v2['acc'])} ({_n(v2)}) {metric} %, "
         f"Δ {diff:+.1f}{cost}")
    return Claim("(a) V2 more accurate than V1 at the same inference cost", f"{p}²",
                 paper.accuracy_figure(dataset, p), m, verdict)


def speedup_claim(v1: pd.DataFrame, v2: pd.DataFrame, dataset: str, p: int) -> Claim:
    verdict, _, _ = compare(v1["train_seconds"], v2["train_seconds"])
    ratio = v1["train_seconds"].mean() / v2["train_seconds"].mean()
    if verdict == HOLDS and ratio < SPEEDUP_MIN:
        verdict = FAILS
    scale = float(v1["train_seconds"].max())
    m = (f"V1 {_fmt_t(list(v1['train_seconds']), scale)} vs V2 {_fmt_t(list(v2['train_seconds']), scale)}: "
         f"{ratio:.2f}×")
    if len(set(v1["device"]) | set(v2["device"])) > 1:
        m += " (⚠ mixed devices)"
    return Claim("(b) V2 trains about 2× faster than V1 (V1/V2 wall-clock)", f"{p}²",
                 paper.train_time_figure(dataset, p), m, verdict)


def time_to_accuracy_claim(v1: pd.DataFrame, v2: pd.DataFrame, p: int) -> Claim:
    ml = bool(v2["multilabel"].iloc[0])
    target1 = v1["acc"].mean() / 100
    t2 = [time_to_accuracy(c, target1, ml) for c in v2["curve"]]
    reached = [t for t in t2 if t is not None]
    verdict, _, _ = compare(v1["train_seconds"], [math.inf if t is None else t for t in t2])
    target2 = v2["acc"].mean() / 100
    t1 = [t for t in (time_to_accuracy(c, target2, ml) for c in v1["curve"]) if t is not None]
    scale = float(v1["train_seconds"].max())
    m = (f"V2 reaches V1's final {100 * target1:.1f}% in {len(reached)}/{len(t2)} runs"
         + (f" at {_fmt_t(reached, scale)}" if reached else "")
         + f" vs V1's full training {_fmt_t(list(v1['train_seconds']), scale)}; "
         + f"V1 reaches V2's {100 * target2:.1f}% in {len(t1)}/{len(v1)} runs"
         + (f" at {_fmt_t(t1, scale)}" if t1 else ""))
    return Claim("V2 reaches V1's final accuracy in less training time (time-to-accuracy)", f"{p}²",
                 paper.TIME_TO_ACCURACY, m, verdict)


def early_exit_claim(v2: pd.DataFrame, p: int, tol_pts: float) -> Optional[Claim]:
    savings = [s for s in (exit_saving(r, tol_pts) for _, r in v2.iterrows()) if s is not None]
    if not savings:
        return None
    mean, std, n = mean_std(savings)
    if n < MIN_SEEDS:
        verdict = FEW
    else:
        verdict = HOLDS if mean >= EXIT_SAVING_MIN and mean > std else FAILS
    m = (f"within {tol_pts:g} pt of the full model at {fmt_mean_std([100 * s for s in savings], 0)}% fewer "
         f"GFLOPs than {v2['gflops_per_video'].mean():.3g} G (n={n})")
    return Claim("(d) V2+ early exit keeps the full model's accuracy at fewer GFLOPs", f"{p}²",
                 paper.EARLY_EXIT, m, verdict)


_ABLATION_OPTION = {"aux_supervision": "--no-aux", "diversity": "--no-diversity",
                    "stop_gradient": "--no-stop-gradient"}


def _ablation_name(flag: str) -> str:
    return f"(c) {flag.replace('_', ' ')} improves V2's accuracy"


def ablation_claims(v2_all: pd.DataFrame, full: pd.DataFrame, p: int) -> List[Claim]:
    """One row per technique that has ablation runs (``<flag>: false`` in config.yaml) in the group."""
    out = []
    for flag, short in ABLATION_FLAGS.items():
        if not (v2_all["variant"] == short).any():
            continue
        ab = v2_all[(v2_all["patch_size"] == p) & (v2_all["variant"] == short)]
        if ab.empty:
            out.append(Claim(_ablation_name(flag), f"{p}²", paper.ABLATION, f"no V2 runs with {flag} off", FEW))
            continue
        verdict, diff, _ = compare(full["acc"], ab["acc"])
        m = (f"with {fmt_mean_std(full['acc'])} ({_n(full)}) vs without {fmt_mean_std(ab['acc'])} ({_n(ab)}) "
             f"{full['metric'].iloc[0]} %, Δ {diff:+.1f}")
        out.append(Claim(_ablation_name(flag), f"{p}²", paper.ABLATION, m, verdict))
    return out


def missing_ablations(df: pd.DataFrame) -> List[Claim]:
    """One 'not enough seeds' row per technique never ablated in the group (the claim stays visible)."""
    v2 = df[df["method"] == "v2"]
    return [Claim(_ablation_name(flag), "all", paper.ABLATION,
                  f"no V2 runs with {flag} off in this group (`adabench run --method v2 {_ABLATION_OPTION[flag]}`)",
                  FEW)
            for flag, short in ABLATION_FLAGS.items() if not v2.empty and not (v2["variant"] == short).any()]


def claims_for_group(df: pd.DataFrame, exit_tol: float = 1.0) -> List[Claim]:
    """All claims for one (dataset, preset, arch) group of runs (see ``reports.frame.groups``)."""
    out: List[Claim] = []
    dataset = str(df["dataset"].iloc[0])
    full = df[df["variant"] == "full"]
    v2_all = df[df["method"] == "v2"]
    for p in sorted(set(df["patch_size"])):
        v1 = full[(full["method"] == "v1") & (full["patch_size"] == p)]
        v2 = full[(full["method"] == "v2") & (full["patch_size"] == p)]
        if not v1.empty and not v2.empty:
            out += [accuracy_claim(v1, v2, dataset, p), speedup_claim(v1, v2, dataset, p),
                    time_to_accuracy_claim(v1, v2, p)]
        if not v2.empty:
            out += ablation_claims(v2_all, v2, p)
            ee = early_exit_claim(v2, p, exit_tol)
            if ee is not None:
                out.append(ee)
    out += missing_ablations(df)
    order = {c: i for i, c in enumerate(["(a)", "(b)", "V2 ", "(c)", "(d)"])}
    return sorted(out, key=lambda c: (order.get(c.claim[:3], 9), c.claim, c.setting.rstrip("²").zfill(6)))


def claims_frame(claims: Sequence[Claim]) -> pd.DataFrame:
    return pd.DataFrame([asdict(c) for c in claims], columns=["claim", "setting", "paper", "measurement", "verdict"])


def claims_markdown(claims: Sequence[Claim]) -> str:
    """The claims table in Markdown (with the verdict rule underneath)."""
    if not claims:
        return "_No V1/V2 pair of runs to test the claims on._\n"
    lines = ["| Claim | Patch | Paper's figure | Our measurement | Verdict |", "|---|---|---|---|---|"]
    for c in claims:
        cells = [c.claim, c.setting, c.paper, c.measurement, f"**{c.verdict}**"]
        lines.append("| " + " | ".join(s.replace("|", "\\|") for s in cells) + " |")
    return "\n".join(lines) + f"\n\n{RULE}\n"
