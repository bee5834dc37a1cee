"""What the two optimal-ridge line figures share (ridge-n: risk against n at a fixed p; ridge-p: against p at a
fixed n): a line per lambda of the linear family's ridge runs (0, fixed values, and lambda*), seed means with their
95% CI, the Marchenko-Pastur theory of each line in its colour, and in the title whether lambda* is monotone within
noise (Nakkiran, Venkat, Kakade & Ma 2020: at the optimal lambda the expected risk never rises with n, or p) and
whether lambda = 0 double-descends."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ddescent import analysis
from ddescent.figures.style import (band, legend, mean_usable, medians, plain_log, room_for_legends, subplots,
                                   theory_line, verdict_title)


def ridge_runs(rows: pd.DataFrame) -> pd.DataFrame:
    """The final records of the linear family's ridge runs (lstsq, ridge, ridge_optimal) on the teacher-student."""
    rows = analysis.final(rows)
    if "model.solver" not in rows:
        return rows.iloc[:0]
    keep = (rows["model"] == "linear") & rows["model.solver"].isin(["lstsq", "ridge", "ridge_optimal"])
    return rows[keep & (rows["dataset"] == "teacher_student")]


def needs(rows: pd.DataFrame, fixed: str, along: str) -> str | None:
    ridge = ridge_runs(rows)
    if ridge.empty:
        return "needs ridge runs of model=linear on data=teacher_student (model.solver=ridge or ridge_optimal)"
    if not any(part[along].nunique() >= 3 and len(analysis.ridge_settings(part)) >= 2
               for _, part in ridge.groupby(fixed)):
        return f"needs at least 3 values of {along} and 2 lambdas at one {fixed}"
    return None


def draw(df: pd.DataFrame, fixed: str, along: str, chosen: list[float] | None, ax=None) -> plt.Figure:
    rows = ridge_runs(analysis.complete(df))
    values = sorted(rows[fixed].unique())
    if not values:
        raise ValueError("no complete ridge runs to plot")
    picks = chosen or [min(values, key=lambda v: (abs(v - float(np.median(values))), -v))]
    own = ax is None
    fig, axes = subplots(len(picks), ax=ax)
    symbol = {"width": "p", "n_train": "n"}
    for ax, value in zip(axes, picks):
        at = rows[np.isclose(rows[fixed], value)]
        settings = analysis.ridge_settings(at)
        palette = plt.cm.plasma(np.linspace(0.05, 0.85, len(settings)))
        findings, kinds, agree = [], {}, []
        for (name, part), color in zip(settings, palette):
            stats = analysis.seed_stats(part, along, ["test_error"])
            expected = (analysis.theory_samplewise if along == "n_train" else analysis.theory_modelwise)(part)
            usable = mean_usable(stats[along], expected, along)
            band(ax, stats[along], stats, "test_error", color, name, where=usable)
            medians(ax, part, along, "test_error", color, stats[along][~usable])
            agreement = analysis.theory_agreement(part, expected, along) if expected is not None else None
            if expected is not None:  # one legend entry for all theory lines (below), each in its lambda's colour
                theory_line(ax, expected, along, "_nolegend_", color=color, within=stats[along])
                kinds.setdefault(expected.attrs.get("label", ""), None)
            if agreement:
                agree.append(f"{name.split(' ')[0]} {agreement['within_2se']}/{agreement['points']}")
            if name.startswith("λ*"):
                findings.append(f"{name}: " + analysis.describe_monotone(analysis.monotone(part, along),
                                                                         symbol[along]))
            elif name.startswith("λ=0"):
                findings.append(f"{name}: " + analysis.verdict(part, along, at=symbol[along]).text())
        n_seeds = int(at.groupby([along, "model.solver", "reg_strength"])["data_seed"].nunique().max())
        head = (f"linear ridge on teacher_student, {symbol[fixed]} = {value:g}, target noise "
                f"σ={at['data.noise'].iloc[0]:g}, {n_seeds} seed{'s' if n_seeds != 1 else ''}")
        for kind in kinds:  # what the dashed lines are, once each
            ax.plot([], [], "--", color="0.3", label=f"dashed, in each λ's colour: {kind}")
        if agree:
            ax.plot([], [], " ", label="points within 2 standard errors of their theory: " + ", ".join(agree))
        ax.set_title(verdict_title(head, findings), fontsize=8)
        ax.set_xscale("log")
        plain_log(ax.xaxis)
        ax.set_yscale("log")
        ax.set_xlabel("training-set size n" if along == "n_train" else "features p")
        ax.set_ylabel("test risk (MSE)")
        ax.grid(alpha=0.3, which="both", lw=0.5)
        legend(ax, own)
    if own:
        fig.suptitle(f"Ridge risk vs {'n' if along == 'n_train' else 'p'}, fixed λ and the optimal λ* "
                     "(cf. Nakkiran et al. 2020)", fontsize=11)
        room_for_legends(fig)
    return fig
