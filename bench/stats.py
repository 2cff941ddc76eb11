"""The statistics behind the claims' verdicts: runs paired by seed, a 95 % paired t interval, a verdict.

Procedure (one for every claim):

1. Pair the two sides' runs by seed (``pair_by_seed``). Runs of a matched experiment with the same seed
   share their initial weights and data order, so the per-seed difference removes the seed-to-seed
   spread both sides have in common. A seed run by only one side cannot be paired: it is left out and
   named. A seed run twice by one side (same configuration, e.g. on two machines) is averaged first.
2. Per pair, the effect ``d`` (a difference of accuracies, or a log ratio of times).
3. The effect size is the mean of ``d`` with the two-sided 95 % paired t interval
   ``mean ± t(0.975, n-1) · sd / sqrt(n)`` (``t_interval``).
4. ``verdict``: *holds* when the whole interval lies above the claim's minimum effect, *does not hold*
   when the whole interval lies below it, *inconclusive* otherwise and whenever n < 2.

Why the t interval and not a bootstrap: with the 3-10 seeds a benchmark can afford, the percentile
bootstrap has too few distinct resamples (10 for n = 3) and is known to cover well below its nominal
95 % (it treats the sample spread as the population's and ignores the uncertainty of the sd), which
would make verdicts look surer than they are. The t interval is exact when the per-seed differences
are normal, widens properly for small n (t(0.975, 2) = 4.30 for n = 3, 2.26 for n = 10), is a
standard a reviewer can recompute from the table, and needs no random numbers, so a report is
reproducible bit for bit. Log ratios make the training-time comparison multiplicative (a 2x speed-up
and a 2x slow-down are symmetric), which is also closer to normal for positive times.

The t quantile comes from ``scipy.stats.t``. Next to the t interval, for n >= ``BOOTSTRAP_MIN`` (5) seeds,
the report shows a paired bootstrap interval (``scipy.stats.bootstrap``, BCa, 9,999 resamples of the per-seed
differences, fixed random state so a report is reproducible): a check that does not assume normal
differences. The verdict stays the t interval's (the bootstrap's coverage is poor with few seeds, see above).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

HOLDS, FAILS, INCONCLUSIVE = "holds", "does not hold", "inconclusive"
VERDICTS = (HOLDS, FAILS, INCONCLUSIVE)
LEVEL = 0.95
MIN_PAIRS = 2
BOOTSTRAP_MIN = 5  # seeds from which the report adds the bootstrap interval
BOOTSTRAP_RESAMPLES = 9999
BOOTSTRAP_SEED = 0  # fixed: the same runs give the same report, bit for bit


@dataclass(frozen=True)
class Interval:
    """Mean of the per-seed effects and its confidence interval (``lo``/``hi`` NaN when n < 2)."""

    mean: float
    lo: float
    hi: float
    n: int
    level: float = LEVEL
    boot: Optional[Tuple[float, float]] = None  # paired bootstrap (lo, hi), for n >= BOOTSTRAP_MIN


def t_quantile(level: float, df: int) -> float:
    """The t with P(|T| <= t) = ``level`` for Student's t with ``df`` degrees of freedom (0.95 -> the 97.5 %
    quantile)."""
    from scipy import stats

    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    return float(stats.t.ppf((1 + level) / 2, df))


def t_central_mass(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with ``df`` degrees of freedom."""
    from scipy import stats

    return 0.0 if t <= 0 else float(2 * stats.t.cdf(t, df) - 1)


def bootstrap_interval(
    values: Union[Sequence[float], np.ndarray], level: float = LEVEL
) -> Optional[Tuple[float, float]]:
    """The paired bootstrap interval (BCa) of the mean of the per-seed differences ``values``; None below
    ``BOOTSTRAP_MIN`` values. Equal values give a zero-width interval."""
    from scipy import stats

    a = np.asarray(values, dtype=float)
    if a.size < BOOTSTRAP_MIN:
        return None
    if np.ptp(a) == 0:
        return float(a[0]), float(a[0])
    res = stats.bootstrap(
        (a,),
        np.mean,
        confidence_level=level,
        n_resamples=BOOTSTRAP_RESAMPLES,
        method="BCa",
        random_state=np.random.default_rng(BOOTSTRAP_SEED),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def t_interval(values: Iterable[float], level: float = LEVEL, bootstrap: bool = True) -> Interval:
    """Mean of ``values`` (the per-seed paired differences) with its two-sided t interval (and, for n >= 5 and
    ``bootstrap``, the paired bootstrap interval in ``boot``: 9,999 resamples, so simulations turn it off).

    sd is the sample standard deviation (ddof=1); equal values give a zero-width interval. NaNs are
    an error: the caller decides what a missing measurement means.
    """
    a = np.asarray(list(values), dtype=float)
    if np.isnan(a).any() or np.isinf(a).any():
        raise ValueError("t_interval needs finite values")
    n = int(a.size)
    if n == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0, level)
    mean = float(a.mean())
    if n < 2:
        return Interval(mean, float("nan"), float("nan"), n, level)
    sd = 0.0 if np.ptp(a) == 0 else float(a.std(ddof=1))  # equal values: exactly 0, not rounding noise
    half = t_quantile(level, n - 1) * sd / math.sqrt(n)
    return Interval(
        mean, mean - half, mean + half, n, level, bootstrap_interval(a, level) if bootstrap else None
    )


def verdict(iv: Interval, minimum: float = 0.0) -> str:
    """holds: the whole interval above ``minimum`` (the smallest effect the claim implies, 0 for a
    direction); does not hold: the whole interval below it; inconclusive: otherwise or n < 2."""
    if iv.n < MIN_PAIRS or math.isnan(iv.lo) or math.isnan(iv.hi):
        return INCONCLUSIVE
    if iv.lo > minimum:
        return HOLDS
    if iv.hi < minimum:
        return FAILS
    return INCONCLUSIVE


@dataclass
class Pairing:
    """Runs of two sides matched by seed. ``a``/``b``: one value per paired seed (repeats averaged)."""

    seeds: List[int]
    a: List[float]
    b: List[float]
    only_a: List[int] = field(default_factory=list)
    only_b: List[int] = field(default_factory=list)
    repeated: List[int] = field(default_factory=list)  # seeds run more than once by one side

    @property
    def n(self) -> int:
        return len(self.seeds)

    def notes(self, name_a: str, name_b: str) -> str:
        """'; '-joined remarks on unpaired and repeated seeds ('' when every seed paired once)."""
        out = []
        for name, seeds in ((name_a, self.only_a), (name_b, self.only_b)):
            if seeds:
                out.append(
                    f"unpaired {name} seed{'s' if len(seeds) > 1 else ''} "
                    f"{', '.join(map(str, seeds))} excluded"
                )
        if self.repeated:
            out.append(
                f"seed{'s' if len(self.repeated) > 1 else ''} {', '.join(map(str, self.repeated))} "
                "ran more than once: averaged per seed"
            )
        return "; ".join(out)


def by_seed(seeds: Sequence[int], values: Sequence[float]) -> Tuple[Dict[int, float], List[int]]:
    """({seed: mean of its values}, seeds that occur more than once), seeds in first-seen order."""
    groups: Dict[int, List[float]] = {}
    for s, v in zip(seeds, values):
        groups.setdefault(int(s), []).append(float(v))
    return {s: float(np.mean(v)) for s, v in groups.items()}, [s for s, v in groups.items() if len(v) > 1]


def pair_by_seed(
    seeds_a: Sequence[int], values_a: Sequence[float], seeds_b: Sequence[int], values_b: Sequence[float]
) -> Pairing:
    """Match two sides' runs on their seed; seeds in ascending order."""
    a, rep_a = by_seed(seeds_a, values_a)
    b, rep_b = by_seed(seeds_b, values_b)
    common = sorted(set(a) & set(b))
    return Pairing(
        seeds=common,
        a=[a[s] for s in common],
        b=[b[s] for s in common],
        only_a=sorted(set(a) - set(b)),
        only_b=sorted(set(b) - set(a)),
        repeated=sorted(set(rep_a) | set(rep_b)),
    )


def paired_effect(pairing: Pairing, kind: str = "difference") -> List[float]:
    """Per-seed effect of side a over side b: ``a - b`` ("difference") or ``ln(a / b)`` ("log_ratio")."""
    a, b = np.asarray(pairing.a, dtype=float), np.asarray(pairing.b, dtype=float)
    if kind == "difference":
        return list(a - b)
    if kind == "log_ratio":
        return list(np.log(a / b))
    raise ValueError(f"unknown effect kind {kind!r}")


def ratio_interval(iv: Interval) -> Optional[Tuple[float, float, float]]:
    """(geometric-mean ratio, lo, hi) from an interval on log ratios; None when empty."""
    if iv.n == 0:
        return None
    return math.exp(iv.mean), math.exp(iv.lo), math.exp(iv.hi)
