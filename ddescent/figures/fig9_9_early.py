"""Fig 9.9 with optimal early stopping: each run's test error at the evaluation of lowest validation loss,
against model size (chosen on the validation split only, never on the test set)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from ddescent import analysis
from ddescent.figures.base import Figure
from ddescent.figures.style import (
    band,
    colors,
    only_widths,
    params_axis,
    room_for_legends,
    seeds_note,
    size_label,
    span,
    style_axes,
    subplots,
)


def fig9_9_early(df: pd.DataFrame, eps: float = 0.01, widths: list[float] | None = None,
                 by: str = "val_loss", ax=None) -> plt.Figure:
    """Model-wise curve with optimal early stopping: the test error of each run at the evaluation whose
    validation loss (`by`) is lowest, vs model size; the final test error dashed for comparison.
    The stopping epoch is chosen on the validation split only, never on the test set."""
    rows = only_widths(analysis.complete(df), widths)
    if rows.empty:
        raise ValueError("no complete runs to plot")
    stopped = analysis.early_stopped(rows, by)  # ValueError when no validation numbers were recorded
    ends = analysis.final(rows)
    conds = list(analysis.conditions(stopped))
    own = ax is None
    fig, axes = subplots(len(conds), ax=ax)
    for ax, (cond, part) in zip(axes, conds):
        curves = analysis.variants(part, "width")
        for (label, curve), (c_train, c_test) in zip(curves, colors(len(curves))):
            suffix = f", {label}" if label else ""
            stats = analysis.seed_stats(curve, "width", ["test_error", "train_error", "epoch", "n_params"])
            same = ends[ends["run_id"].isin(curve["run_id"])]
            last = analysis.seed_stats(same, "width", ["test_error"])
            band(ax, stats["width"], stats, "test_error", c_test, f"test, early-stopped (min {by}){suffix}")
            ax.plot(last["width"], last["test_error_mean"], "--", color=c_test, alpha=0.55, lw=1.2,
                    label=f"test, final epoch{suffix}")
            ax.plot(stats["width"], stats["train_error_mean"], ":", color=c_train, lw=1.2,
                    label=f"train, early-stopped{suffix}")
            threshold = analysis.interpolation_threshold(same, eps)
            if threshold is not None:
                ax.axvline(threshold, color="0.3", ls="--", lw=1.2,
                           label=f"interpolation threshold{suffix} (final train error ≤ {eps:g})")
        if len(curves) == 1:
            params_axis(ax, analysis.seed_stats(part, "width", ["n_params"]))
        ax.set_title(analysis.describe(cond, part) + seeds_note(part, "width") + f"; stopped at epoch {span(part['epoch'])}",
                     fontsize=9)
        style_axes(ax, size_label(cond["model"]), "error", outside=own)
    if own:
        fig.suptitle("Test error vs model size, early-stopped on the validation split (cf. Bishop & Bishop Fig 9.9)",
                     fontsize=11)
        room_for_legends(fig)
    return fig


def needs(rows: pd.DataFrame) -> str | None:
    if "val_loss" not in rows or rows["val_loss"].isna().all():
        return "no val_loss recorded (needs a validation split: val_fraction > 0)"
    stopped = analysis.early_stopped(rows)
    return None if analysis.some_condition(stopped, (), lambda p: p["width"].nunique() >= 2) \
        else "needs val_loss for at least 2 widths in one condition"


FIGURE = Figure("9.9-early", draw=fig9_9_early, needs=needs, order=2,
                summary="test error vs width, early-stopped at the epoch of lowest val_loss")
