"""The claims table: each claim a method's paper makes against its baseline (``bench.methods``: the
entry's ``baseline``, ``ablations`` and published figures ``claims``; for V2: against V1), the paper's
figure, our measurement, the effect size with its 95 % interval and n, and a verdict from one stated
procedure (``bench.stats``, ``method_text``).

Claims are made inside one report section (``reports.frame.groups``: one configuration, so only the
method or the ablated technique differs) and the two sides are paired by seed:

- (a) accuracy: per seed, proposed − baseline accuracy in points; minimum effect 0.
- (b) training time: per seed, ln(baseline seconds / proposed seconds), shown as the speed-up
  exp(mean) with exp of the bounds; minimum effect ``SPEEDUP_MIN`` (1.5×, our reading of "about 2×"). Given
  twice where a method pre-trains backbones on the target data (V1's stage 0): with and without those stages.
- time-to-accuracy: per seed, ln(baseline's training seconds / seconds the proposed run of the same seed
  needed to first reach the baseline run's final accuracy); minimum effect 0. A seed whose proposed run
  never reaches it makes the claim unable to hold (inconclusive), and when no seed reaches it the claim
  does not hold.
- (c) ablations: per seed, full − ablated accuracy in points; minimum effect 0.
- (d) early exit: per proposed run, the saving 1 − GFLOPs / full GFLOPs at the cheapest budget whose
  accuracy is within ``exit_tol`` points of the run's own; minimum effect ``EXIT_SAVING_MIN`` (5 %).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, cast

import pandas as pd

from bench.methods import Method, comparison_pairs, get_method, title
from bench.stats import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    LEVEL,
    Interval,
    Pairing,
    by_seed,
    pair_by_seed,
    paired_effect,
    t_interval,
    verdict,
)
from bench.training.timing import time_to_accuracy as _time_to_accuracy
from reports.frame import fmt_mean_std, point_accuracy, time_unit

VERDICTS = (HOLDS, FAILS, INCONCLUSIVE)
SPEEDUP_MIN = 1.5
EXIT_SAVING_MIN = 0.05


@dataclass
class Claim:
    claim: str
    setting: str
    paper: str
    measurement: str
    effect: str  # mean effect with its 95 % interval, e.g. "+10.0 pts [+7.5, +12.5]"
    n: int  # paired seeds (early exit: runs) the effect is computed over
    verdict: str


class Unpublished:
    """Published figures of a method whose entry has none."""

    TIME_TO_ACCURACY = EARLY_EXIT = ABLATION = "not published; direction only"
    CLAIMS_SPEEDUP = True  # claim (b) is tested unless a method's figures say its paper makes no such claim

    @staticmethod
    def accuracy_figure(dataset: str, patch_size: int) -> str:
        return "not published"

    train_time_figure = accuracy_figure


def _figures(method: str) -> Any:
    return get_method(method).claims or Unpublished


def method_text(exit_tol: float, baseline: str, proposed: str) -> str:
    """The report's paragraph saying exactly how every effect and verdict in the claims table is computed."""
    b, p = title(baseline), title(proposed)
    return (
        f"**How the verdicts are computed.** Only runs of this section's configuration are compared (same "
        f"data root, options, `--set` overrides and code version; only the method or the ablated technique "
        f"differs), paired by seed: the runs of one seed share their initial weights. A seed run by only one "
        f"side is left out and named. Per seed: (a) {p} − {b} accuracy in points; (b) ln({b} / {p} training "
        f"seconds); time-to-accuracy: ln({b}'s training seconds / the seconds {p} of the same seed needed to "
        f"first reach that {b} run's final accuracy); (c) full {p} − {p} without the technique, in points; "
        f"(d) per {p} run, the early-exit saving 1 − GFLOPs / full-model GFLOPs at the cheapest budget whose "
        f"accuracy is within {exit_tol:g} pt of the run's own. Effect = the mean over the n seeds with its "
        f"two-sided {LEVEL:.0%} t interval, mean ± t(0.975, n−1)·sd/√n (ratios shown as exp of the mean and "
        f"of the bounds); from 5 seeds on, the paired bootstrap interval (BCa, fixed random state) follows "
        f"as a check that does not assume normal differences; the verdict uses the t interval. Verdict: "
        f"**{HOLDS}** when the whole interval lies above the claim's minimum effect "
        f"(0; speed-up {SPEEDUP_MIN:g}×; early-exit saving {EXIT_SAVING_MIN:.0%}), **{FAILS}** when it lies "
        f"entirely below it, **{INCONCLUSIVE}** otherwise or with n < 2. Time-to-accuracy cannot hold when a "
        f"{p} seed never reaches the target and does not hold when none does."
    )


# ------------------------------------------------------------------------------------------ formatting
def _boot(iv: Interval, fmt) -> str:
    """'; bootstrap [lo, hi]' when the interval has a paired bootstrap interval (n >= 5), else ''."""
    return f"; bootstrap [{fmt(iv.boot[0])}, {fmt(iv.boot[1])}]" if iv.boot is not None else ""


def _fmt_diff(iv: Interval, unit: str = " pts") -> str:
    if iv.n == 0:
        return "–"
    if math.isnan(iv.lo):
        return f"{iv.mean:+.1f}{unit} (no interval, n={iv.n})"
    return f"{iv.mean:+.1f}{unit} [{iv.lo:+.1f}, {iv.hi:+.1f}]" + _boot(iv, lambda v: f"{v:+.1f}")


def _x(log_ratio: float) -> str:
    r = math.exp(log_ratio)
    return f"{r:.2f}×" if 0.01 <= r < 100 else f"{r:.3g}×"  # few seeds can give very wide bounds


def _fmt_ratio(iv: Interval) -> str:
    if iv.n == 0:
        return "–"
    if math.isnan(iv.lo):
        return f"{_x(iv.mean)} (no interval, n={iv.n})"
    return f"{_x(iv.mean)} [{_x(iv.lo)}, {_x(iv.hi)}]" + _boot(iv, _x)


def _fmt_share(iv: Interval) -> str:
    if iv.n == 0:
        return "–"
    if math.isnan(iv.lo):
        return f"{100 * iv.mean:.0f}% (no interval, n={iv.n})"
    return f"{100 * iv.mean:.0f}% [{100 * iv.lo:.0f}%, {100 * iv.hi:.0f}%]" + _boot(
        iv, lambda v: f"{100 * v:.0f}%"
    )


def _fmt_t(seconds: Sequence[float], scale: float) -> str:
    """Mean ± std of ``seconds`` in the unit that suits ``scale`` seconds (one unit per claim)."""
    div, unit = time_unit(scale)
    return fmt_mean_std([s / div for s in seconds], 1, f" {unit}")


def _with_notes(text: str, pairing: Pairing, a: str, b: str) -> str:
    notes = pairing.notes(a, b)
    return f"{text}; {notes}" if notes else text


def _seeds(pairing: Pairing) -> str:
    if not pairing.seeds:
        return "no common seed"
    return f"seed{'s' if pairing.n > 1 else ''} {', '.join(map(str, pairing.seeds))}"


# -------------------------------------------------------------------------------------------- pairing
def _pair(a: pd.DataFrame, b: pd.DataFrame, col: str, positive: bool = False) -> Pairing:
    """Runs of ``a`` and ``b`` paired by seed on column ``col`` (runs without a usable value left out)."""

    def ok(df: pd.DataFrame) -> pd.DataFrame:
        v = pd.to_numeric(df[col], errors="coerce")
        return df[v.notna() & (v > 0 if positive else True)]

    a, b = ok(a), ok(b)
    return pair_by_seed(list(a["seed"]), list(a[col]), list(b["seed"]), list(b[col]))


def time_to_accuracy(
    curve: Optional[Sequence[Dict[str, Any]]], target: float, multilabel: bool = False
) -> Optional[float]:
    """Training seconds at which ``curve`` first reaches ``target`` (fraction), None if never.

    Multi-label runs are read on mAP when their curve records it; ``bench.training.timing`` does the search.
    """
    curve = list(curve or [])
    key = "map" if multilabel and any(p.get("map") is not None for p in curve) else "top1"
    return _time_to_accuracy(curve, target - 1e-9, key=key)  # 1e-9: targets are stored floats


def exit_saving(run: pd.Series, tol_pts: float) -> Optional[float]:
    """1 - GFLOPs/full GFLOPs of the cheapest early-exit point within ``tol_pts`` of the run's accuracy."""
    points = run.get("early_exit") or []
    if not points:
        return None
    ok = [p["gflops"] for p in points if 100 * point_accuracy(p, run["multilabel"]) >= run["acc"] - tol_pts]
    return 1.0 - min(ok) / run["gflops_per_video"] if ok else 0.0


# --------------------------------------------------------------------------------------------- claims
def accuracy_claim(base: pd.DataFrame, prop: pd.DataFrame, dataset: str, p: int) -> Claim:
    b, q = title(base["method"].iloc[0]), title(prop["method"].iloc[0])
    pairing = _pair(prop, base, "acc")
    iv = t_interval(paired_effect(pairing))
    metric = prop["metric"].iloc[0]
    g1, g2 = base["gflops_per_video"].mean(), prop["gflops_per_video"].mean()
    cost = f"; GFLOPs {g1:.3g} vs {g2:.3g}"
    if abs(g2 / g1 - 1) > 0.05:
        cost += f" (⚠ {q} costs {100 * (g2 / g1 - 1):+.0f}%)"
    m = f"{b} {fmt_mean_std(pairing.b)} vs {q} {fmt_mean_std(pairing.a)} {metric} % ({_seeds(pairing)}){cost}"
    return Claim(
        f"(a) {q} more accurate than {b} at the same inference cost",
        f"{p}²",
        _figures(prop["method"].iloc[0]).accuracy_figure(dataset, p),
        _with_notes(m, pairing, q, b),
        _fmt_diff(iv),
        iv.n,
        verdict(iv),
    )


def speedup_claim(
    base: pd.DataFrame, prop: pd.DataFrame, dataset: str, p: int, *, without_pretraining: bool = False
) -> Claim:
    """(b) on the whole training time, or (``without_pretraining``) without the stages that pre-train the
    backbones on the target data (each method's ``pretraining_stages``: the papers do not say which they
    timed)."""
    b, q = title(base["method"].iloc[0]), title(prop["method"].iloc[0])
    col = "train_seconds_no_pretrain" if without_pretraining else "train_seconds"
    pairing = _pair(base, prop, col, positive=True)
    iv = t_interval(paired_effect(pairing, "log_ratio"))
    scale = float(base[col].max())
    m = f"{b} {_fmt_t(pairing.a, scale)} vs {q} {_fmt_t(pairing.b, scale)} ({_seeds(pairing)})"
    if len(set(base["device"]) | set(prop["device"])) > 1:
        m += " (⚠ mixed devices)"
    which = _pretraining_label(base, prop, without_pretraining)
    return Claim(
        f"(b) {q} trains about 2× faster than {b} ({b}/{q} wall-clock, {which})",
        f"{p}²",
        _figures(prop["method"].iloc[0]).train_time_figure(dataset, p),
        _with_notes(m, pairing, b, q),
        _fmt_ratio(iv),
        iv.n,
        verdict(iv, math.log(SPEEDUP_MIN)),
    )


def _pretraining_label(base: pd.DataFrame, prop: pd.DataFrame, without: bool) -> str:
    stages = [
        f"{title(df['method'].iloc[0])} {', '.join(get_method(df['method'].iloc[0]).pretraining_stages)}"
        for df in (base, prop)
        if get_method(df["method"].iloc[0]).pretraining_stages
    ]
    if not stages:
        return "every stage"
    return (
        f"without pre-training: {'; '.join(stages)} left out"
        if without
        else "every stage, pre-training included"
    )


def has_pretraining(*names: str) -> bool:
    return any(get_method(n).pretraining_stages for n in names)


def time_to_accuracy_claim(base: pd.DataFrame, prop: pd.DataFrame, p: int) -> Claim:
    b, q = title(base["method"].iloc[0]), title(prop["method"].iloc[0])
    ml = bool(prop["multilabel"].iloc[0])
    targets, _ = by_seed(list(base["seed"]), list(base["acc"] / 100))
    reach = [
        math.inf if t is None else t
        for t in (
            time_to_accuracy(c, targets.get(int(s), math.inf), ml)
            for s, c in zip(prop["seed"], prop["curve"])
        )
    ]
    timed = base[pd.to_numeric(base["train_seconds"], errors="coerce") > 0]
    pairing = pair_by_seed(list(timed["seed"]), list(timed["train_seconds"]), list(prop["seed"]), reach)
    reached = [math.isfinite(t) for t in pairing.b]
    scale = float(base["train_seconds"].max())
    m = (
        f"{q} reaches the same-seed {b} run's final accuracy in {sum(reached)}/{pairing.n} seeds"
        + (f", at {_fmt_t([t for t in pairing.b if math.isfinite(t)], scale)}" if any(reached) else "")
        + f", vs {b}'s full training {_fmt_t(pairing.a, scale)}"
    )
    if pairing.n >= 2 and not any(reached):
        iv, v, effect = Interval(float("nan"), float("nan"), float("nan"), pairing.n), FAILS, "never reached"
    elif not all(reached):
        iv, v = Interval(float("nan"), float("nan"), float("nan"), pairing.n), INCONCLUSIVE
        effect = f"reached in {sum(reached)}/{pairing.n} seeds"
    else:
        iv = t_interval(paired_effect(pairing, "log_ratio"))
        v, effect = verdict(iv), _fmt_ratio(iv)
    return Claim(
        f"{q} reaches {b}'s final accuracy in less training time (time-to-accuracy)",
        f"{p}²",
        _figures(prop["method"].iloc[0]).TIME_TO_ACCURACY,
        _with_notes(m, pairing, b, q),
        effect,
        pairing.n,
        v,
    )


def early_exit_claim(prop: pd.DataFrame, p: int, tol_pts: float) -> Optional[Claim]:
    q = title(prop["method"].iloc[0])
    runs = [(s, exit_saving(r, tol_pts)) for s, (_, r) in zip(prop["seed"], prop.iterrows())]
    runs = [(s, v) for s, v in runs if v is not None]
    if not runs:
        return None
    per_seed, repeated = by_seed([s for s, _ in runs], [cast(float, v) for _, v in runs])  # Nones left out
    iv = t_interval(per_seed.values())
    m = (
        f"within {tol_pts:g} pt of the full model at "
        f"{fmt_mean_std([100 * s for s in per_seed.values()], 0)}% "
        f"fewer GFLOPs than {prop['gflops_per_video'].mean():.3g} G (seeds {', '.join(map(str, per_seed))})"
        + (
            f"; seeds {', '.join(map(str, repeated))} ran more than once: averaged per seed"
            if repeated
            else ""
        )
    )
    return Claim(
        f"(d) {q}+ early exit keeps the full model's accuracy at fewer GFLOPs",
        f"{p}²",
        _figures(prop["method"].iloc[0]).EARLY_EXIT,
        m,
        _fmt_share(iv),
        iv.n,
        verdict(iv, EXIT_SAVING_MIN),
    )


def _ablation_name(label: str, method: str) -> str:
    return f"(c) {label} improves {title(method)}'s accuracy"


def ablation_claims(prop_all: pd.DataFrame, full: pd.DataFrame, p: int) -> List[Claim]:
    """One row per ablation of the method (its registry entry) that has runs in the section, each paired
    by seed with the full method; none at a patch size where no ablation ran (the demo ablates at one
    size)."""
    out: List[Claim] = []
    method = full["method"].iloc[0]
    figure = _figures(method).ABLATION
    ablated = {a.short for a in get_method(method).ablations}
    if not prop_all[(prop_all["patch_size"] == p) & prop_all["variant"].isin(ablated)].shape[0]:
        return out
    for a in get_method(method).ablations:
        if not (prop_all["variant"] == a.short).any():
            continue
        ab = prop_all[(prop_all["patch_size"] == p) & (prop_all["variant"] == a.short)]
        if ab.empty:
            out.append(
                Claim(
                    _ablation_name(a.label, method),
                    f"{p}²",
                    figure,
                    f"no {title(method)} runs with {a.label} off",
                    "–",
                    0,
                    INCONCLUSIVE,
                )
            )
            continue
        pairing = _pair(full, ab, "acc")
        iv = t_interval(paired_effect(pairing))
        m = (
            f"with {fmt_mean_std(pairing.a)} vs without {fmt_mean_std(pairing.b)} {full['metric'].iloc[0]} % "
            f"({_seeds(pairing)})"
        )
        out.append(
            Claim(
                _ablation_name(a.label, method),
                f"{p}²",
                figure,
                _with_notes(m, pairing, "full", a.short),
                _fmt_diff(iv),
                iv.n,
                verdict(iv),
            )
        )
    return out


def missing_ablations(df: pd.DataFrame, proposed: Method) -> List[Claim]:
    """One inconclusive row per ablation never run in the section (the claim stays visible)."""
    runs = df[df["method"] == proposed.name]
    return [
        Claim(
            _ablation_name(a.label, proposed.name),
            "all",
            _figures(proposed.name).ABLATION,
            f"no {proposed.title} runs with {a.label} off in this section "
            f"(`adabench run --method {proposed.name} {a.option}`)",
            "–",
            0,
            INCONCLUSIVE,
        )
        for a in proposed.ablations
        if not runs.empty and not (runs["variant"] == a.short).any()
    ]


def _configs(df: pd.DataFrame) -> List[pd.DataFrame]:
    """One sub-frame per configuration (group_hash); a section normally has one per cell."""
    return [sub for _, sub in df.groupby("group_hash", sort=True)] if not df.empty else []


def _setting(p: int, *subs: pd.DataFrame) -> str:
    labels = [s["label"].iloc[0] for s in subs if "label" in s]
    return f"{p}²" + (f" ({' vs '.join(labels)})" if any("[" in lb for lb in labels) else "")


def claims_for_group(df: pd.DataFrame, exit_tol: float = 1.0) -> List[Claim]:
    """All claims for one report section (see ``reports.frame.groups``): every registered comparison (a
    method against its entry's ``baseline``) whose two methods have runs here, and each method's own claims
    (its ablations, its early exit) wherever it has runs."""
    out: List[Claim] = []
    methods = sorted(set(df["method"]))
    for baseline, proposed in comparison_pairs(methods):
        out += _ordered(_comparison_claims(df, baseline.name, proposed.name), proposed.title)
    for name in methods:
        if name in {m.name for m in _registered(methods)}:
            out += _ordered(_own_claims(df, get_method(name), exit_tol), title(name))
    return out


def _registered(names: Sequence[str]) -> List[Method]:
    from bench.methods import METHODS

    return [get_method(n) for n in names if n in METHODS]


def _ordered(claims: List[Claim], proposed: str) -> List[Claim]:
    order = ["(a)", "(b)", proposed, "(c)", "(d)"]
    rank = {c.claim: next((i for i, o in enumerate(order) if c.claim.startswith(o)), 9) for c in claims}
    return sorted(claims, key=lambda c: (rank[c.claim], c.claim, c.setting.split("²")[0].zfill(6), c.setting))


def _comparison_claims(df: pd.DataFrame, baseline: str, proposed: str) -> List[Claim]:
    """(a), (b) and time-to-accuracy for every patch size and pair of configurations."""
    out: List[Claim] = []
    dataset = str(df["dataset"].iloc[0])
    full = df[df["variant"] == "full"]
    for p in sorted(set(df["patch_size"])):
        for base in _configs(full[(full["method"] == baseline) & (full["patch_size"] == p)]):
            for prop in _configs(full[(full["method"] == proposed) & (full["patch_size"] == p)]):
                speed = []
                if getattr(_figures(proposed), "CLAIMS_SPEEDUP", True):
                    speed.append(speedup_claim(base, prop, dataset, p))
                    if has_pretraining(baseline, proposed) and "train_seconds_no_pretrain" in df:
                        speed.append(speedup_claim(base, prop, dataset, p, without_pretraining=True))
                for c in (
                    accuracy_claim(base, prop, dataset, p),
                    *speed,
                    time_to_accuracy_claim(base, prop, p),
                ):
                    c.setting = _setting(p, base, prop)
                    out.append(c)
    return out


def _own_claims(df: pd.DataFrame, method: Method, exit_tol: float) -> List[Claim]:
    """(c) the method's ablations and (d) its early exit, per patch size and configuration."""
    out: List[Claim] = []
    full = df[df["variant"] == "full"]
    own = df[df["method"] == method.name]
    for p in sorted(set(own["patch_size"])):
        for prop in _configs(full[(full["method"] == method.name) & (full["patch_size"] == p)]):
            for c in ablation_claims(own, prop, p) + [early_exit_claim(prop, p, exit_tol)]:
                if c is not None:
                    c.setting = _setting(p, prop)
                    out.append(c)
    return out + missing_ablations(df, method)


def claims_markdown(claims: Sequence[Claim], exit_tol: float = 1.0, pairs: Sequence[tuple] = ()) -> str:
    """The claims table in Markdown, with the paragraph saying how effects and verdicts were computed for
    each compared pair ``(baseline, proposed)`` of method names."""
    if not claims:
        return (
            "_No pair of compared methods (a method and its baseline) has runs here to test the claims on._\n"
        )
    lines = [
        "| Claim | Patch | Paper's figure | Our measurement | Effect [95% CI] | n | Verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in claims:
        cells = [c.claim, c.setting, c.paper, c.measurement, c.effect, str(c.n), f"**{c.verdict}**"]
        lines.append("| " + " | ".join(s.replace("|", "\\|") for s in cells) + " |")
    text = "\n\n".join(method_text(exit_tol, b, p) for b, p in pairs)
    return "\n".join(lines) + (f"\n\n{text}\n" if text else "\n")
