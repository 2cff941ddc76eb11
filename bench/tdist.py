"""Student's t distribution for integer degrees of freedom, without SciPy: ``t_central_mass`` and
``t_quantile``. Closed form (Abramowitz & Stegun 26.7.3-4), inverted by bisection. Used by the claims'
verdicts (``reports.stats``) and the regression gate's tolerances (``bench.regression``).
"""
from __future__ import annotations

import math


def t_central_mass(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with integer ``df`` >= 1 degrees of freedom (A&S 26.7.3-4)."""
    if df < 1 or int(df) != df:
        raise ValueError(f"degrees of freedom must be a positive integer, got {df}")
    if t <= 0:
        return 0.0
    if math.isinf(t):
        return 1.0
    theta = math.atan(t / math.sqrt(df))
    c2 = math.cos(theta) ** 2
    if df % 2 == 1:  # odd: (2/pi) (theta + sin(theta) (cos + 2/3 cos^3 + ... + cos^(df-2)))
        term, total = math.cos(theta), 0.0
        for j in range(1, (df - 1) // 2 + 1):
            total += term
            term *= c2 * (2 * j) / (2 * j + 1)
        return min(1.0, 2 / math.pi * (theta + math.sin(theta) * total))
    term, total = 1.0, 0.0  # even: sin(theta) (1 + 1/2 cos^2 + 1.3/2.4 cos^4 + ... + cos^(df-2))
    for j in range(df // 2):
        total += term
        term *= c2 * (2 * j + 1) / (2 * j + 2)
    return min(1.0, math.sin(theta) * total)


def t_quantile(level: float, df: int) -> float:
    """The t with P(|T| <= t) = ``level`` (e.g. 0.95 -> the 97.5 % quantile), by bisection."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    lo, hi = 0.0, 1.0
    while t_central_mass(hi, df) < level:
        lo, hi = hi, 2 * hi
    for _ in range(200):
        mid = (lo + hi) / 2
        if t_central_mass(mid, df) < level:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * hi:
            break
    return (lo + hi) / 2
