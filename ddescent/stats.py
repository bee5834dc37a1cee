"""The intervals every verdict and band uses, stated once:

- the mean of n seeds with its 95% confidence interval from Student's t: mean ± t(0.975, n-1) s / sqrt(n), s the
  sample standard deviation (n - 1 in the denominator). It assumes the seeds' values are roughly normal around
  their mean; with 3 seeds t = 4.30, so only large, consistent effects exclude zero: that is the point.
- the difference of two means (independent seeds: two experiments, two training-set sizes) with Welch's t
  interval (unequal variances; Welch-Satterthwaite degrees of freedom).
- the median with a distribution-free interval from order statistics: the k-th smallest and k-th largest values,
  k the largest index whose binomial(n, 1/2) coverage is still >= 95% (with fewer than 6 values no pair reaches
  95%: the interval is then the min and max, and its coverage, 1 - 2^(1-n), is reported). Used where the mean is
  not a meaningful summary (near p = n the expected risk of least squares is infinite).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special as _special


def t_quantile(q, dof):
    """Student's t quantile: scipy.stats.t.ppf's own computation (special.stdtrit), without importing
    scipy.stats (most of a second: `ddescent plot` reads faster without it)."""
    return _special.stdtrit(dof, q)


LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """An estimate with its interval: `value` in [lo, hi] at `level` (coverage), from n values."""

    value: float
    lo: float
    hi: float
    n: int
    level: float = LEVEL

    @property
    def excludes_zero(self) -> bool:
        return self.n > 1 and (self.lo > 0 or self.hi < 0)


def mean_ci(values, level: float = LEVEL) -> Interval:
    """The mean and its t interval (NaN bounds with fewer than 2 finite values)."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    n = len(v)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, level)
    mean = float(v.mean())
    if n < 2:
        return Interval(mean, math.nan, math.nan, n, level)
    half = float(t_quantile(0.5 + level / 2, n - 1)) * float(v.std(ddof=1)) / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, level)


def welch(b, a, level: float = LEVEL) -> Interval:
    """mean(b) - mean(a) with its Welch t interval (NaN bounds with fewer than 2 finite values on a side)."""
    a, b = (np.asarray(v, float) for v in (a, b))
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    d = float(b.mean() - a.mean()) if len(a) and len(b) else math.nan
    n = min(len(a), len(b))
    if n < 2:
        return Interval(d, math.nan, math.nan, n, level)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    if va + vb == 0:
        return Interval(d, d, d, n, level)
    dof = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    half = float(t_quantile(0.5 + level / 2, dof)) * math.sqrt(va + vb)
    return Interval(d, d - half, d + half, n, level)


def standard_error(values) -> float:
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    return float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else math.nan


def median_ci(values, level: float = LEVEL) -> Interval:
    """The median and its order-statistic interval; `level` of the result is the coverage actually reached."""
    v = np.sort(np.asarray(values, float)[np.isfinite(np.asarray(values, float))])
    n = len(v)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, level)
    median = float(np.median(v))
    if n == 1:
        return Interval(median, math.nan, math.nan, 1, 0.0)
    from scipy import stats as _stats  # (binomial coverage: only where medians are drawn)

    best = 1  # k = 1: [min, max]
    for k in range(1, n // 2 + 1):
        coverage = 1 - 2 * _stats.binom.cdf(k - 1, n, 0.5)
        if coverage >= level:
            best = k
        else:
            break
    coverage = float(1 - 2 * _stats.binom.cdf(best - 1, n, 0.5))
    return Interval(median, float(v[best - 1]), float(v[n - best]), n, coverage)
