"""Ridge's test risk over features p × lambda at a fixed n, with the optimal lambda's path (the figure of Nakkiran,
Venkat, Kakade & Ma 2020, in the linear world)."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ddescent import analysis
from ddescent.figures import ridge_lines
from ddescent.figures.base import Figure
from ddescent.figures.style import edges, plain_log, subplots


def draw(df: pd.DataFrame, eps: float = 0.01, widths: list[float] | None = None, ax=None) -> plt.Figure:
    """Seed-mean test risk (log colour) of the fixed-lambda runs over p × lambda (lambda = 0 in the bottom row), at
    the n_train closest to the median of the sweep's (`widths`: these n_train values instead); the theory's lambda*
    (p) drawn over it."""
    rows = ridge_lines.ridge_runs(analysis.complete(df))
    rows = rows[rows["model.solver"].isin(["ridge", "lstsq"])]
    if rows.empty:
        raise ValueError("no complete fixed-lambda ridge runs to plot")
    ns = sorted(rows["n_train"].unique())
    picks = widths or [min(ns, key=lambda v: (abs(v - float(np.median(ns))), -v))]
    own = ax is None
    fig, axes = subplots(len(picks), cols=2, w=6.8, h=5.2, ax=ax)
    for ax, n in zip(axes, picks):
        at = rows[np.isclose(rows["n_train"], n)]
        lams = sorted(at["reg_strength"].unique())
        shown = [lam for lam in lams if lam > 0]
        floor = shown[0] / 10 if shown else 1.0  # lambda = 0 drawn one decade below the smallest lambda
        at = at.assign(lam=at["reg_strength"].where(at["reg_strength"] > 0, floor))
        stats = analysis.seed_stats(at, "lam", ["test_error"], by=["width"])
        grid = stats.pivot(index="lam", columns="width", values="test_error_mean").sort_index().sort_index(axis=1)
        values = np.log10(grid.to_numpy(float))
        top = float(np.nanquantile(values, 0.9))  # the pole's cell (p = n at lambda = 0) would flatten the rest
        mesh = ax.pcolormesh(edges(grid.columns), edges(grid.index), values, cmap="viridis", shading="flat",
                             vmax=top)
        fig.colorbar(mesh, ax=ax, label="log10 test risk (seed mean; brighter cells clipped)", extend="max")
        configs = [json.loads(c) for c in at.drop_duplicates("run_id")["config"]]
        ps = np.arange(int(grid.columns.min()), int(grid.columns.max()) + 1)
        theory = analysis.theory_modules()
        star = np.mean([theory.ridge.optimal_lambda(ps, n, *_seen_and_unseen(w, ps, float(c["data"]["noise"])))
                        for c, w in theory.teachers.teachers(configs)], axis=0)
        ax.plot(ps, star, color="white", lw=2.2, label="λ*(p) = p (σ² + ||w>p||²) / ||w≤p||² (theory)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        plain_log(ax.xaxis)
        ax.set_ylim(edges(grid.index)[0], edges(grid.index)[-1])
        ax.set_xlabel("features p")
        ax.set_ylabel(f"ridge λ (bottom row: λ = 0, drawn at {floor:g})")
        n_seeds = int(at.groupby(["width", "lam"])["data_seed"].nunique().max())
        ax.set_title(f"linear ridge on teacher_student, n = {n:g}, mean of {n_seeds} seeds", fontsize=9)
        ax.legend(frameon=False, fontsize=8, loc="upper left", labelcolor="white")
    if own:
        fig.suptitle("Ridge test risk over features × λ, with the optimal λ (cf. Nakkiran, Venkat, Kakade & Ma 2020)",
                     fontsize=11)
    return fig


def _seen_and_unseen(w: np.ndarray, ps: np.ndarray, sigma: float) -> tuple:
    """optimal_lambda's (r2, sigma, r2_out) for a student of the first p features."""
    r2, r2_out = analysis.theory_modules().ridge.teacher_parts(w, ps)
    return r2, sigma, r2_out


def needs(rows: pd.DataFrame) -> str | None:
    ridge = ridge_lines.ridge_runs(rows)
    if ridge.empty:
        return "needs ridge runs of model=linear on data=teacher_student at fixed lambdas"
    ridge = ridge[ridge["model.solver"].isin(["ridge", "lstsq"])]
    ok = any(part["width"].nunique() >= 2 and (part["reg_strength"] > 0).sum() and part["reg_strength"].nunique() >= 3
             for _, part in ridge.groupby("n_train")) if not ridge.empty else False
    return None if ok else "needs fixed-lambda ridge runs at 2+ widths and 3+ lambdas at one n_train"


FIGURE = Figure("ridge-heatmap", draw=draw, needs=needs, order=10,
                summary="ridge risk over p × λ at fixed n, with the optimal λ*(p) path")
