"""Fig 9.9, model-wise double descent: final train and test error against model size, the interpolation
threshold dashed, theory over the linear lab's curves."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from ddescent import analysis
from ddescent.figures.base import Figure
from ddescent.figures.style import (
    band,
    colors,
    mean_usable,
    medians,
    panels,
    only_widths,
    params_axis,
    room_for_legends,
    seeds_note,
    size_label,
    style_axes,
    theory_line,
    verdict_title,
)


def fig9_9(df: pd.DataFrame, eps: float = 0.01, widths: list[float] | None = None, ax=None) -> plt.Figure:
    """Model-wise double descent: final train and test error vs model size (seed means, 95% CI shaded), the
    interpolation threshold dashed, each curve's verdict in the panel's title, and for the linear lab the theory
    (broken at its pole p = n, where the seed median stands in for the mean)."""
    rows = analysis.final(only_widths(analysis.complete(df), widths))
    conds, fig, axes, own, metric = panels(rows, ax)
    for ax, (cond, part) in zip(axes, conds):
        curves = analysis.variants(part, "width")
        verdicts = []
        for (label, curve), (c_train, c_test) in zip(curves, colors(len(curves))):
            stats = analysis.seed_stats(curve, "width", ["train_error", "test_error", "n_params"])
            suffix = f", {label}" if label else ""
            expected = analysis.theory_modelwise(curve)
            usable = mean_usable(stats["width"], expected, "width")
            band(ax, stats["width"], stats, "train_error", c_train, f"train{suffix}", "--" if label else "-")
            band(ax, stats["width"], stats, "test_error", c_test, f"test{suffix}", where=usable)
            medians(ax, curve, "width", "test_error", c_test, stats["width"][~usable])
            _thresholds(ax, curve, eps, suffix, c_test if label else "0.3")
            agreement = analysis.theory_agreement(curve, expected, "width") if expected is not None else None
            if expected is not None:
                theory_line(ax, expected, "width", f"theory{suffix}: {expected.attrs.get('label', '')}"
                            + (f"; {analysis.describe_agreement(agreement)}" if agreement else ""),
                            within=stats["width"])
            verdicts.append((f"{label}: " if label else "") + analysis.verdict(curve, "width").text())
        if len(curves) == 1:
            params_axis(ax, analysis.seed_stats(part, "width", ["n_params"]))
        ax.set_title(verdict_title(analysis.describe(cond, part) + seeds_note(part, "width"), verdicts), fontsize=8)
        style_axes(ax, size_label(cond["model"]), metric, outside=own)
    if own:
        fig.suptitle(f"Train and test {metric} vs model size (cf. Bishop & Bishop Fig 9.9)", fontsize=11)
        room_for_legends(fig)
    return fig


def _thresholds(ax, curve: pd.DataFrame, eps: float, suffix: str, color) -> None:
    """The interpolation threshold, dashed; for a least-squares classifier also where its 0-1 train error first
    reaches eps (before the fit itself interpolates), dotted."""
    threshold = analysis.interpolation_threshold(curve, eps)
    _, _, rule = analysis.threshold_rule(curve, eps)
    if threshold is not None:
        ax.axvline(threshold, color=color, ls="--", lw=1.2, label=f"interpolation threshold{suffix} ({rule})")
    if analysis.least_squares_fit(curve) and set(curve.get("task", pd.Series(["classification"]))) != {"regression"}:
        zero_one = analysis.zero_one_threshold(curve, eps)
        if zero_one is not None and zero_one != threshold:
            ax.axvline(zero_one, color=color, ls=":", lw=1.0, label=f"0-1 train error ≤ {eps:g}{suffix}")


def needs(rows: pd.DataFrame) -> str | None:
    fin = analysis.final(rows)
    return None if analysis.some_condition(fin, (), lambda p: p["width"].nunique() >= 2) \
        else "needs at least 2 widths in one condition"


FIGURE = Figure("9.9", draw=fig9_9, needs=needs, order=1, auto_rank=4,
                summary="model-wise: train/test error vs width, the interpolation threshold dashed")
