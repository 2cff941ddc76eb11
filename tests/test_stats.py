"""The claims' statistics: t quantiles against published values, the paired t interval on known inputs,
its coverage for 3-10 seeds, verdicts, and pairing by seed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.stats import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    Interval,
    pair_by_seed,
    paired_effect,
    ratio_interval,
    t_central_mass,
    t_interval,
    t_quantile,
    verdict,
)

# two-sided 95 % critical values of Student's t (any statistics table)
T975 = {1: 12.7062, 2: 4.3027, 3: 3.1824, 4: 2.7764, 5: 2.5706, 9: 2.2622, 29: 2.0452, 120: 1.9799}


@pytest.mark.parametrize("df", sorted(T975))
def test_t_quantile_matches_tables(df):
    assert t_quantile(0.95, df) == pytest.approx(T975[df], abs=1e-4)


def test_t_distribution_closed_forms_and_other_levels():
    for t in (0.3, 1.0, 4.0):
        assert t_central_mass(t, 1) == pytest.approx(2 / math.pi * math.atan(t))  # Cauchy
        assert t_central_mass(t, 2) == pytest.approx(t / math.sqrt(2 + t * t))
    assert t_quantile(0.99, 4) == pytest.approx(4.6041, abs=1e-4)
    assert t_quantile(0.90, 10) == pytest.approx(1.8125, abs=1e-4)
    assert t_quantile(0.95, 10_000) == pytest.approx(1.9602, abs=1e-3)  # towards the normal 1.96
    with pytest.raises(ValueError):
        t_quantile(0.95, 0)


def test_t_interval_known_values():
    iv = t_interval([1.0, 2.0, 3.0])  # mean 2, sd 1, n 3
    half = 4.3027 / math.sqrt(3)
    assert iv.mean == 2.0 and iv.n == 3
    assert iv.lo == pytest.approx(2 - half, abs=1e-4) and iv.hi == pytest.approx(2 + half, abs=1e-4)
    iv = t_interval([0.5, 1.5, 1.0, 2.0, 0.0, 1.0, 1.5, 0.5, 1.0, 1.0])  # n 10, mean 1, sd 0.5774
    half = 2.2622 * np.std([0.5, 1.5, 1.0, 2.0, 0.0, 1.0, 1.5, 0.5, 1.0, 1.0], ddof=1) / math.sqrt(10)
    assert iv.lo == pytest.approx(1 - half, abs=1e-4) and iv.hi == pytest.approx(1 + half, abs=1e-4)
    same = t_interval([0.4, 0.4, 0.4])
    assert same.lo == same.hi == pytest.approx(0.4)
    one = t_interval([3.0])
    assert one.n == 1 and one.mean == 3.0 and math.isnan(one.lo)
    assert t_interval([]).n == 0
    with pytest.raises(ValueError):
        t_interval([1.0, float("inf")])


@pytest.mark.parametrize("n", [3, 5, 10])
def test_coverage_is_nominal_for_few_seeds(n):
    """Over many simulated experiments the 95 % interval contains the true mean about 95 % of the time."""
    rng = np.random.default_rng(12345)
    samples = rng.normal(2.0, 3.0, size=(3000, n))
    intervals = [t_interval(x, bootstrap=False) for x in samples]  # the t interval's coverage; no resampling
    covered = np.mean([iv.lo <= 2.0 <= iv.hi for iv in intervals])
    assert 0.935 <= covered <= 0.965


def test_verdicts():
    clear = t_interval([2.1, 1.9, 2.3, 2.0])  # a clear effect
    null = t_interval([0.5, -0.4, 0.1, -0.3])  # no effect
    reversed_ = t_interval([-2.1, -1.9, -2.3, -2.0])  # the other way
    assert verdict(clear) == HOLDS and verdict(null) == INCONCLUSIVE and verdict(reversed_) == FAILS
    assert verdict(t_interval([5.0])) == INCONCLUSIVE  # n < 2
    assert verdict(t_interval([0.0, 0.0, 0.0])) == INCONCLUSIVE  # exactly no effect: not "holds"
    # a minimum effect: speed-up >= 1.5x on log ratios
    m = math.log(1.5)
    assert verdict(t_interval(np.log([1.2, 1.25, 1.22])), m) == FAILS  # faster, but surely below 1.5x
    assert verdict(t_interval(np.log([1.3, 1.8, 1.5])), m) == INCONCLUSIVE
    assert verdict(t_interval(np.log([1.9, 2.0, 2.1])), m) == HOLDS
    assert verdict(Interval(1.0, 0.5, 1.5, 3), minimum=0.4) == HOLDS


def test_pair_by_seed():
    p = pair_by_seed([2, 0, 1, 3, 1], [0.6, 0.5, 0.55, 0.9, 0.65], [0, 1, 2, 7], [0.4, 0.45, 0.5, 0.1])
    assert p.seeds == [0, 1, 2] and p.n == 3
    assert p.a == pytest.approx([0.5, 0.6, 0.6]) and p.b == pytest.approx([0.4, 0.45, 0.5])  # seed 1 averaged
    assert p.only_a == [3] and p.only_b == [7] and p.repeated == [1]
    assert paired_effect(p) == pytest.approx([0.1, 0.15, 0.1])
    notes = p.notes("V1", "V2")
    assert "unpaired V1 seed 3 excluded" in notes and "unpaired V2 seed 7 excluded" in notes
    assert "seed 1 ran more than once" in notes
    assert pair_by_seed([0], [1.0], [0], [1.0]).notes("a", "b") == ""


def test_log_ratio_effect_and_ratio_interval():
    p = pair_by_seed([0, 1, 2], [200.0, 220.0, 180.0], [0, 1, 2], [100.0, 110.0, 90.0])
    effects = paired_effect(p, "log_ratio")
    assert effects == pytest.approx([math.log(2)] * 3)
    assert ratio_interval(t_interval(effects)) == pytest.approx((2.0, 2.0, 2.0))
    with pytest.raises(ValueError):
        paired_effect(p, "quotient")


def test_deterministic():
    x = [0.3, -0.1, 0.8, 0.4, 0.2]
    assert t_interval(x) == t_interval(list(x)) and t_quantile(0.95, 4) == t_quantile(0.95, 4)
