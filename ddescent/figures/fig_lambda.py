"""Regularization-wise: final train and test error against 1/λ (log) at a fixed width."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ddescent import analysis
from ddescent.figures.base import Figure
from ddescent.figures.style import TEST, TRAIN, band, only_widths, room_for_legends, style_axes, subplots, verdict_title
from ddescent.stats import mean_ci


def fig_lambda(df: pd.DataFrame, eps: float = 0.01, widths: list[float] | None = None, ax=None) -> plt.Figure:
    """Regularization-wise double descent: final train and test error vs 1/λ (log x) at a fixed width, a panel
    per width (and per regularizer; with soft weight sharing also the test error after quantization, dashed).
    Runs with λ = 0 (1/λ = ∞) are drawn as separate markers at the right edge, beyond a dotted line, labelled
    "λ = 0"; they are not part of the curves."""
    rows = analysis.final(only_widths(analysis.complete(df), widths))
    if rows.empty:
        raise ValueError("no complete runs to plot")
    panels = []
    for cond, part in analysis.conditions(rows, without=("reg_strength", "regularizer")):
        for w, at in part.groupby("width", sort=True):
            zero = at[at["reg_strength"] == 0]
            pos = at[at["reg_strength"] > 0]
            for reg, curve in pos.groupby("regularizer", sort=True):
                if curve["reg_strength"].nunique() + (not zero.empty) >= 2:
                    panels.append((cond, float(w), reg, curve, zero))
    if not panels:
        raise ValueError("the lambda figure needs at least two reg_strength values (one > 0) at one width "
                         f"(stored: {', '.join(f'{v:g}' for v in sorted(rows['reg_strength'].unique()))})")
    own = ax is None
    fig, axes = subplots(len(panels), ax=ax)
    for ax, (cond, w, reg, curve, zero) in zip(axes, panels):
        curve = curve.assign(inv_lambda=1.0 / curve["reg_strength"])
        quantized = all(c in curve and curve[c].notna().all() for c in ("quantized_test_error", "compression"))
        stats = analysis.seed_stats(curve, "inv_lambda", ["train_error", "test_error", "n_params"]
                                    + (["quantized_test_error", "compression"] if quantized else []))
        x = stats["inv_lambda"]
        band(ax, x, stats, "train_error", TRAIN, "train")
        band(ax, x, stats, "test_error", TEST, "test")
        if quantized:  # soft weight sharing: the same nets with every weight snapped to its component's mean,
            # and what that buys (right axis)
            band(ax, x, stats, "quantized_test_error", TEST, "test, quantized", style="--")
            right_ax = ax.twinx()
            right_ax.plot(x, stats["compression_mean"], ":", color="0.35", marker="s", ms=3, lw=1.4,
                          label="compression")
            right_ax.set_ylabel("compression (×, right; positions and biases counted)")
            right_ax.set_ylim(bottom=0)
            ax.plot([], [], ":", color="0.35", marker="s", ms=3, label="compression (right axis)")
        if not zero.empty:  # λ = 0 (1/λ = ∞): markers beyond a dotted line, with their 95% t interval
            lo, hi = float(x.min()), float(x.max())
            right = hi * max(3.0, (hi / lo) ** 0.15) if hi > lo else hi * 3.0
            shown = [("train_error", TRAIN, "D"), ("test_error", TEST, "D")]
            if quantized and "quantized_test_error" in zero and zero["quantized_test_error"].notna().any():
                shown.append(("quantized_test_error", TEST, "s"))  # a plain net snapped to the prior's means
            for col, color, marker in shown:
                iv = mean_ci(zero[col])
                ax.plot([right], [iv.value], marker, color=color, ms=6, mfc="white", mew=1.6)
                if iv.n > 1:
                    ax.vlines(right, iv.lo, iv.hi, color=color, lw=2, alpha=0.4)
            ax.axvline(np.sqrt(hi * right), color="0.5", ls=":", lw=1)
            ax.annotate("λ = 0", (right, 1), xytext=(0, -4), textcoords="offset points", ha="center", va="top",
                        fontsize=8, xycoords=("data", "axes fraction"))
        n_seeds = int(stats["test_error_count"].max())
        head = (f"{analysis.describe(cond, curve)}, width {w:g} ({int(stats['n_params_mean'].iloc[0]):,} params), "
                f"{n_seeds} seed{'s' if n_seeds != 1 else ''}")
        ax.set_title(verdict_title(head, ["test error along 1/λ: " + analysis.verdict(curve, "inv_lambda",
                                                                                       at="1/λ").text()]), fontsize=8)
        style_axes(ax, f"1/λ (inverse {reg} strength)", "error", width_axis=False, outside=own)
    if own:
        fig.suptitle("Train and test error vs 1/λ (cf. Bishop & Bishop §9.3.2)", fontsize=11)
        room_for_legends(fig)
    return fig




def needs(rows: pd.DataFrame) -> str | None:
    fin = analysis.final(rows)
    ok = analysis.some_condition(fin, ("reg_strength", "regularizer"), lambda p: any(
        g.loc[g["reg_strength"] > 0, "reg_strength"].nunique() >= 2 for _, g in p.groupby("width")))
    return None if ok else "needs at least 2 reg_strength values > 0 at one width (a curve along 1/λ)"


FIGURE = Figure("lambda", draw=fig_lambda, needs=needs, order=5, auto_rank=2,
                summary="train/test error vs 1/λ at a fixed width")
