"""Issue 23: the t quantiles and intervals now come from scipy.stats. They must equal the ones the removed
hand-written Student t (bench/tdist.py, Abramowitz & Stegun 26.7.3-4 inverted by bisection, reproduced
below as the reference) gave on the committed baseline's per-seed values, and the gate's tolerances must
equal the ones recorded in baselines/tiny.json when it was made. The paired bootstrap interval (n >= 5)
is reproducible and sits around the mean."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench.stats import BOOTSTRAP_MIN, bootstrap_interval, pair_by_seed, paired_effect, t_interval, t_quantile
from bench.tools.regression import accuracy_tolerance, ratio_factor

BASELINE = Path(__file__).resolve().parent.parent / "baselines" / "tiny.json"


# ---------------------------------------------------------------- the old formula (bench/tdist.py before
# issue 23)
def _old_central_mass(t: float, df: int) -> float:
    if t <= 0:
        return 0.0
    theta = math.atan(t / math.sqrt(df))
    c2 = math.cos(theta) ** 2
    if df % 2 == 1:
        term, total = math.cos(theta), 0.0
        for j in range(1, (df - 1) // 2 + 1):
            total += term
            term *= c2 * (2 * j) / (2 * j + 1)
        return min(1.0, 2 / math.pi * (theta + math.sin(theta) * total))
    term, total = 1.0, 0.0
    for j in range(df // 2):
        total += term
        term *= c2 * (2 * j + 1) / (2 * j + 2)
    return min(1.0, math.sin(theta) * total)


def _old_quantile(level: float, df: int) -> float:
    lo, hi = 0.0, 1.0
    while _old_central_mass(hi, df) < level:
        lo, hi = hi, 2 * hi
    for _ in range(200):
        mid = (lo + hi) / 2
        if _old_central_mass(mid, df) < level:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * hi:
            break
    return (lo + hi) / 2


def _old_interval(values, level=0.95):
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = _old_quantile(level, n - 1) * sd / math.sqrt(n)
    return mean - half, mean + half


@pytest.fixture(scope="module")
def baseline():
    return json.loads(BASELINE.read_text())


def _series(baseline):
    """Every per-seed series of the baseline (top-1 of each run key, the time ratios, their logs) and the
    per-seed paired differences of the two methods' top-1."""
    runs = baseline["runs"]
    out = {f"{k}/top1": e["per_seed"]["top1"] for k, e in runs.items() if e["per_seed"].get("top1")}
    for k, e in baseline["time_ratios"].items():
        out[f"{k}/ratio"] = e["per_seed"]
        out[f"{k}/log_ratio"] = [math.log(r) for r in e["per_seed"]]
    keys = sorted(runs)
    a, b = runs[keys[0]], runs[keys[1]]
    pairing = pair_by_seed(a["seeds"], a["per_seed"]["top1"], b["seeds"], b["per_seed"]["top1"])
    out["paired_difference"] = paired_effect(pairing)
    return out


def test_scipy_t_intervals_equal_the_old_ones_on_the_baseline(baseline):
    series = _series(baseline)
    assert len(series) >= 4
    for name, values in series.items():
        iv = t_interval(values)
        lo, hi = _old_interval(values)
        assert iv.lo == pytest.approx(lo, rel=1e-9, abs=1e-12), name
        assert iv.hi == pytest.approx(hi, rel=1e-9, abs=1e-12), name
        for level in (0.9, 0.95, 0.99):
            assert t_quantile(level, len(values) - 1) == pytest.approx(
                _old_quantile(level, len(values) - 1), rel=1e-9
            )


def test_gate_tolerances_equal_the_recorded_ones(baseline):
    """The tolerances recorded in baselines/tiny.json were computed by the old code when it was made."""
    alpha = baseline["derivation"]["alpha"]
    for key, entry in baseline["runs"].items():
        recorded = entry["tolerance"]["top1"]
        now = accuracy_tolerance(entry["per_seed"]["top1"], alpha=alpha)
        assert now["k"] == pytest.approx(recorded["k"], rel=1e-9), key
        assert now["value"] == pytest.approx(recorded["value"], rel=1e-9), key
    for key, entry in baseline["time_ratios"].items():
        now = ratio_factor(entry["per_seed"], alpha=alpha)
        assert now["k"] == pytest.approx(entry["factor"]["k"], rel=1e-9), key
        assert now["value"] == pytest.approx(entry["factor"]["value"], rel=1e-9), key


def test_paired_bootstrap_interval(baseline):
    diffs = _series(baseline)["paired_difference"]
    assert len(diffs) >= BOOTSTRAP_MIN
    iv = t_interval(diffs)
    assert iv.boot is not None and iv.boot == bootstrap_interval(diffs)  # fixed random state: reproducible
    lo, hi = iv.boot
    assert lo < iv.mean < hi and hi - lo > 0
    assert t_interval(diffs[: BOOTSTRAP_MIN - 1]).boot is None  # too few seeds: t interval only
    assert bootstrap_interval([0.2] * 6) == (0.2, 0.2)


def test_claims_show_the_bootstrap_interval_from_five_seeds(baseline):
    from reports.claims import _fmt_diff, _fmt_ratio

    diffs = [100 * d for d in _series(baseline)["paired_difference"]]
    text = _fmt_diff(t_interval(diffs))
    lo, hi = t_interval(diffs).boot
    assert text.endswith(f"; bootstrap [{lo:+.1f}, {hi:+.1f}]") and text.count("[") == 2
    assert "bootstrap" not in _fmt_diff(t_interval(diffs[:3]))
    logs = _series(baseline)[next(k for k in _series(baseline) if k.endswith("/log_ratio"))]
    assert "; bootstrap [" in _fmt_ratio(t_interval(logs))
