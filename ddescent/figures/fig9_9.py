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
    metric_of,
    only_widths,
    params_axis,
    room_for_legends,
    seeds_note,
    size_label,
    style_axes,
    subplots,
    theory_line,
)


def fig9_9(df: pd.DataFrame, eps: float = 0.01, widths: list[float] | None = None, ax=None) -> plt.Figure:
    """Model-wise double descent: final train and test error vs model size, threshold dashed."""
    rows = analysis.final(only_widths(analysis.complete(df), widths))
    if rows.empty:
        raise ValueError("no complete runs to plot")
    conds = list(analysis.conditions(rows))
    fig, axes = subplots(len(conds), ax=ax)
    metric = metric_of(rows)
    for ax, (cond, part) in zip(axes, conds):
        curves = analysis.variants(part, "width")
        for (label, curve), (c_train, c_test) in zip(curves, colors(len(curves))):
            stats = analysis.seed_stats(curve, "width", ["train_error", "test_error", "n_params"])
            suffix = f", {label}" if label else ""
            threshold = analysis.interpolation_threshold(curve, eps)
            band(ax, stats["width"], stats, "train_error", c_train, f"train{suffix}", "--" if label else "-")
            band(ax, stats["width"], stats, "test_error", c_test,
                  f"test{suffix}: {analysis.describe_curve(stats['width'], stats['test_error_mean'])}")
            if threshold is not None:
                ax.axvline(threshold, color="0.3" if not label else c_test, ls=":" if label else "--", lw=1.2,
                           label=f"interpolation threshold{suffix} (train {metric} ≤ {eps:g})")
            theory_line(ax, analysis.theory_modelwise(curve), "width",
                    f"theory{suffix}: expected risk of min-norm least squares (Belkin, Hsu & Xu 2019)")
        if len(curves) == 1:
            params_axis(ax, analysis.seed_stats(part, "width", ["n_params"]))
        ax.set_title(analysis.describe(cond, part) + seeds_note(part, "width"), fontsize=9)
        style_axes(ax, size_label(cond["model"]), metric)
    fig.suptitle(f"Train and test {metric} vs model size (cf. Bishop & Bishop Fig 9.9)", fontsize=11)
    return room_for_legends(fig)


def needs(rows: pd.DataFrame) -> str | None:
    fin = analysis.final(rows)
    return None if analysis.some_condition(fin, (), lambda p: p["width"].nunique() >= 2) \
        else "needs at least 2 widths in one condition"


FIGURE = Figure("9.9", draw=fig9_9, needs=needs, order=1, auto_rank=4,
                summary="model-wise: train/test error vs width, the interpolation threshold dashed")
