"""Soft weight sharing (Bishop & Bishop §9.4.1): the final weights under the learned mixture prior, and the
mixture means over training."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ddescent import analysis
from ddescent.figures.base import Figure
from ddescent.figures.style import TEST, TRAIN, legend, only_widths


def fig_sws(df: pd.DataFrame, eps: float = 0.01, widths: list[float] | None = None, ax=None) -> plt.Figure:
    """Soft weight sharing (Bishop & Bishop §9.4.1): the final weights' histogram under the learned mixture
    density (left) and the mixture means over training (right), one row per run that recorded them."""
    if ax is not None:
        raise ValueError("the sws figure has two panels per run; pass ax=None")
    rows = only_widths(analysis.complete(df), widths)
    if "sws_mu" not in rows or "weight_hist_counts" not in rows:
        raise ValueError("no soft-weight-sharing runs with a final weight histogram (regularizer=sws, quantize: true)")
    rows = rows[rows["weight_hist_counts"].notna()]
    runs = list(rows.groupby("run_id", sort=False))[:6]
    if not runs:
        raise ValueError("no soft-weight-sharing runs with a final weight histogram (regularizer=sws, quantize: true)")
    fig, axes = plt.subplots(len(runs), 2, figsize=(12, 3.8 * len(runs)), squeeze=False, layout="constrained")
    for (hist_ax, mu_ax), (_, run) in zip(axes, runs):
        run = run.sort_values("epoch")
        last = run.iloc[-1]
        lo, hi = last["weight_hist_range"]
        counts = np.asarray(last["weight_hist_counts"], float)
        edges = np.linspace(lo, hi, len(counts) + 1)
        width = edges[1] - edges[0]
        hist_ax.bar(edges[:-1], counts / (counts.sum() * width), width=width, align="edge", color="0.65",
                    label="final weights")
        grid = np.linspace(lo, hi, 800)
        pi, mu, sigma = (np.asarray(last[c], float) for c in ("sws_pi", "sws_mu", "sws_sigma"))
        comps = pi[:, None] * np.exp(-0.5 * ((grid - mu[:, None]) / sigma[:, None]) ** 2) / (sigma[:, None] * np.sqrt(2 * np.pi))
        hist_ax.plot(grid, comps.sum(0), color=TEST, lw=1.5, label="learned mixture p(w)")
        hist_ax.set_yscale("log")
        hist_ax.set_ylim(bottom=max(1e-3, 0.5 / (counts.sum() * width)))
        hist_ax.set_xlabel("weight value")
        hist_ax.set_ylabel("density (log)")
        note = (f"{last['model']} width {last['width']:g}, seed {int(last['seed'])}, data seed {int(last['data_seed'])}, "
                f"sws λ={last['reg_strength']:g}:\ntest error {last['test_error']:.3f}"
                f" → {last.get('quantized_test_error', float('nan')):.3f} quantized, "
                f"{last.get('compression', float('nan')):.0f}× compression (positions and biases counted)")
        hist_ax.set_title(note, fontsize=9)
        legend(hist_ax)
        # Before the prior switches on (pretraining) its means are placeholders, re-spread over the weights at
        # that moment: draw them from there, with the switch marked.
        start = int(last["regularizer.start_epoch"]) if pd.notna(last.get("regularizer.start_epoch")) else 0
        run = run[run["epoch"] > start] if start and (run["epoch"] > start).any() else run
        means = np.stack([np.asarray(m, float) for m in run["sws_mu"]])
        epochs = np.maximum(run["epoch"].to_numpy(), 0.5)
        mu_ax.plot(epochs, means, color=TRAIN, lw=0.9, marker="." if start else None, ms=3)
        if not start:
            mu_ax.set_xscale("log")
        else:
            mu_ax.axvline(start, color="0.4", ls="--", lw=1, label=f"prior on (epoch {start})")
            legend(mu_ax)
        mu_ax.set_xlabel("epochs" if start else "epochs (epoch 0 drawn at 0.5)")
        mu_ax.set_ylabel("mixture means μ_j")
        mu_ax.grid(alpha=0.3, lw=0.5)
    fig.suptitle("Soft weight sharing (Bishop & Bishop §9.4.1, eqs 9.21-9.31)", fontsize=11)
    return fig


def needs(rows: pd.DataFrame) -> str | None:
    return None if "weight_hist_counts" in rows and rows["weight_hist_counts"].notna().any() \
        else "no soft-weight-sharing run with a final weight histogram (regularizer=sws)"


FIGURE = Figure("sws", draw=fig_sws, needs=needs, order=7, auto_rank=3,
                summary="final weights under the learned mixture prior (soft weight sharing)")
