"""Landmarks of an epoch-wise curve: first minimum, peak, second minimum (Bishop & Bishop Fig 9.10).

A double descent is a bump: a point higher than the lowest point before it and the lowest point after it. Of
all points, the peak is the one whose bump is most prominent, min(peak / first minimum, peak / second minimum);
the first and second minima are the lowest points before and after it. A curve whose most prominent bump is
below `min_prominence` (a flat curve, a U, noise) has no peak: it reports its lowest point as the first minimum.
Non-finite points (a diverged run) are left out.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def landmarks(steps, values, min_prominence: float = 0.05) -> dict:
    """{first_min, first_min_step, peak, peak_step, second_min, second_min_step, rise, drop}: rise = peak /
    first_min, drop = second_min / first_min; the peak's entries are None (rise, drop NaN) without a bump of at
    least `min_prominence` (relative to its higher minimum)."""
    steps, values = np.asarray(steps, dtype=float), np.asarray(values, dtype=float)
    keep = np.isfinite(values) & np.isfinite(steps)
    steps, values = steps[keep], values[keep]
    order = np.argsort(steps, kind="stable")
    steps, values = steps[order], values[order]
    none = {"first_min": None, "first_min_step": None, "peak": None, "peak_step": None, "second_min": None,
            "second_min_step": None, "rise": math.nan, "drop": math.nan}
    if len(values) == 0:
        return none
    lowest = int(np.argmin(values))
    none.update(first_min=float(values[lowest]), first_min_step=_step(steps[lowest]))
    if len(values) < 3:
        return none
    before = np.minimum.accumulate(values)[:-2]  # lowest up to i, for a peak at i + 1
    after = np.minimum.accumulate(values[::-1])[::-1][2:]  # lowest from i + 2 on
    peaks = values[1:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        prominence = np.minimum(peaks / before, peaks / after)
    prominence = np.where(before > 0, prominence, np.where(peaks > before, np.inf, 1.0))
    j = int(np.argmax(prominence))
    if not prominence[j] >= 1 + min_prominence:
        return none
    peak = j + 1
    first = int(np.argmin(values[:peak]))
    second = peak + 1 + int(np.argmin(values[peak + 1:]))
    return {"first_min": float(values[first]), "first_min_step": _step(steps[first]),
            "peak": float(values[peak]), "peak_step": _step(steps[peak]),
            "second_min": float(values[second]), "second_min_step": _step(steps[second]),
            "rise": float(values[peak] / values[first]) if values[first] > 0 else math.inf,
            "drop": float(values[second] / values[first]) if values[first] > 0 else math.nan}


def _step(s: float):
    return int(s) if float(s).is_integer() else float(s)


def from_rows(rows: pd.DataFrame, column: str = "test_error", x: str = "step", min_prominence: float = 0.05) -> dict:
    """landmarks() of one run's records (its rows of a results table), along `x` (step, or epoch)."""
    rows = rows.sort_values(x)
    return landmarks(rows[x].to_numpy(), rows[column].to_numpy(), min_prominence)


def double_descent(lm: dict, rise: float = 1.15, drop: float = 0.85) -> bool:
    """A clear epoch-wise double descent: the peak at least `rise` times the first minimum, and the second
    minimum at most `drop` times the first."""
    return lm["peak"] is not None and lm["rise"] >= rise and lm["drop"] <= drop


def describe(lm: dict) -> str:
    """One line for `ls`."""
    if lm["first_min"] is None:
        return "no finite points"
    if lm["peak"] is None:
        return f"no bump: minimum {lm['first_min']:.4g} at step {lm['first_min_step']}"
    return (f"first minimum {lm['first_min']:.4g} at step {lm['first_min_step']}, peak {lm['peak']:.4g} at step "
            f"{lm['peak_step']} ({lm['rise'] - 1:+.0%}), second minimum {lm['second_min']:.4g} at step "
            f"{lm['second_min_step']} ({lm['drop'] - 1:+.0%} vs the first)")
