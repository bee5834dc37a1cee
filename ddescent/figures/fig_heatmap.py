"""Test error over model size × epochs (Nakkiran et al. 2019 Fig 2 style), from every run's log-spaced
evaluations."""

from __future__ import annotations

import matplotlib.patheffects as path_effects
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ddescent import analysis
from ddescent.figures.base import Figure
from ddescent.figures.style import edges, legend, only_widths, plain_log, size_label, subplots


def fig_heatmap(df: pd.DataFrame, eps: float = 0.01, widths: list[float] | None = None,
                metric: str = "test_error", ax=None) -> plt.Figure:
    """Test error over model size × epochs (log-log), from every run's log-spaced evaluations, seed means
    (Nakkiran et al. 2019 Fig 2 style). Cells with no record stay blank; the interpolation threshold of the
    final models is dashed."""
    rows = only_widths(analysis.complete(df), widths)
    rows = rows[rows["epoch"] > 0]
    if rows.empty:
        raise ValueError("no complete runs with evaluations after epoch 0 to plot")
    panels = [(c, label, curve) for c, p in analysis.conditions(rows) for label, curve in analysis.variants(p, "width")
              if curve["width"].nunique() >= 2 and curve["epoch"].nunique() >= 3]
    if not panels:
        raise ValueError("the heatmap needs at least 2 widths and 3 evaluated epochs > 0 in one condition")
    own = ax is None
    fig, axes = subplots(len(panels), cols=2, w=6.8, h=5.0, ax=ax)
    for ax, (cond, label, part) in zip(axes, panels):
        stats = analysis.seed_stats(part, "epoch", [metric], by=["width"])
        grid = stats.pivot(index="epoch", columns="width", values=f"{metric}_mean").sort_index().sort_index(axis=1)
        mesh = ax.pcolormesh(edges(grid.columns), edges(grid.index), np.ma.masked_invalid(grid.to_numpy(float)),
                             cmap="viridis", shading="flat")
        fig.colorbar(mesh, ax=ax, label=metric.replace("_", " "))
        threshold = analysis.interpolation_threshold(analysis.final(part), eps)
        if threshold is not None:  # black with a white outline: visible on every colour of the map
            line = ax.axvline(threshold, color="black", ls="--", lw=1.4,
                              label=f"interpolation threshold (train error ≤ {eps:g})")
            line.set_path_effects([path_effects.Stroke(linewidth=3, foreground="white"), path_effects.Normal()])
        ax.set_xscale("log")
        ax.set_yscale("log")
        plain_log(ax.xaxis)
        ax.set_xlabel(size_label(cond["model"]))
        ax.set_ylabel("epochs")
        n_seeds = int(part.groupby("width")["run_id"].nunique().max())
        ax.set_title(analysis.describe(cond, part) + (f", {label}" if label else "")
                     + (f", mean of {n_seeds} seeds" if n_seeds > 1 else ""), fontsize=9)
        legend(ax, own)
    if own:
        fig.suptitle(f"{metric.replace('_', ' ').capitalize()} over model size × epochs "
                     "(Nakkiran et al. 2019 Fig 2 style; Bishop & Bishop §9.3.2)", fontsize=11)
    return fig


def needs(rows: pd.DataFrame) -> str | None:
    trained = rows[rows["epoch"] > 0]
    return None if analysis.some_condition(trained, (), lambda p: p["width"].nunique() >= 2
                                           and p["epoch"].nunique() >= 3) \
        else "needs at least 2 widths and 3 evaluated epochs > 0 in one condition"


FIGURE = Figure("heatmap", draw=fig_heatmap, needs=needs, order=6,
                summary="test error over width × epochs")
