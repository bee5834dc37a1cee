"""The book's figures, drawn from the records alone (Bishop & Bishop §9.3.2)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ddescent import analysis  # noqa: E402

TRAIN, TEST = "#1f5fa8", "#d1462f"
FIGURES = ("9.9", "9.10")


def _band(ax, x, stats, col, color, label, style="-"):
    ax.plot(x, stats[f"{col}_mean"], style, color=color, label=label, marker="o", ms=3, lw=1.6)
    if (stats[f"{col}_count"] > 1).any():
        ax.fill_between(x, stats[f"{col}_min"], stats[f"{col}_max"], color=color, alpha=0.18, lw=0)


def _params_axis(ax, stats):
    """A top axis in parameters, interpolated (log-log) from the widths' exact counts."""
    w = stats["width"].to_numpy(float)
    p = stats["n_params_mean"].to_numpy(float)
    if len(w) < 2 or np.any(np.diff(p) <= 0):
        return
    lw, lp = np.log(w), np.log(p)
    top = ax.secondary_xaxis("top", functions=(lambda v: np.exp(np.interp(np.log(np.maximum(v, 1e-12)), lw, lp)),
                                               lambda v: np.exp(np.interp(np.log(np.maximum(v, 1e-12)), lp, lw))))
    top.set_xlabel("parameters")


def fig9_9(df: pd.DataFrame, eps: float = 0.01) -> plt.Figure:
    """Model-wise double descent: final train and test error vs model size, threshold dashed."""
    rows = analysis.final(analysis.complete(df))
    if rows.empty:
        raise ValueError("no complete runs to plot")
    conds = list(analysis.conditions(rows))
    fig, axes = plt.subplots(1, len(conds), figsize=(6.4 * len(conds), 4.4), squeeze=False)
    for ax, (cond, part) in zip(axes[0], conds):
        stats = analysis.seed_stats(part, "width", ["train_error", "test_error", "n_params"])
        x = stats["width"]
        _band(ax, x, stats, "train_error", TRAIN, "train")
        _band(ax, x, stats, "test_error", TEST, "test")
        threshold = analysis.interpolation_threshold(part, eps)
        if threshold is not None:
            ax.axvline(threshold, color="0.3", ls="--", lw=1.2, label=f"interpolation threshold (train error ≤ {eps:g})")
        ax.set_xscale("log")
        ax.set_xlabel(f"model size ({cond['model']} width)")
        ax.set_ylabel("error")
        ax.set_ylim(bottom=0)
        n_seeds = int(stats["test_error_count"].max())
        ax.set_title(f"{analysis.describe(cond)}" + (f", {n_seeds} seeds" if n_seeds > 1 else ""), fontsize=10)
        _params_axis(ax, stats)
        ax.grid(alpha=0.3, which="both", lw=0.5)
        ax.legend(frameon=False, fontsize=9)
    fig.suptitle("Model-wise double descent (Bishop & Bishop Fig 9.9)", fontsize=11)
    fig.tight_layout()
    return fig


def pick_widths(rows: pd.DataFrame, eps: float) -> list[float]:
    """Small, intermediate and large models relative to the interpolation threshold."""
    widths = sorted(rows["width"].unique())
    threshold = analysis.interpolation_threshold(analysis.final(rows), eps)
    if threshold is None or len(widths) <= 3:
        return widths[:: max(1, len(widths) // 3)][:3] if len(widths) > 3 else widths
    below = [w for w in widths if w < threshold]
    small = below[len(below) // 3] if below else widths[0]
    return sorted({small, threshold, widths[-1]})


def fig9_10(df: pd.DataFrame, widths: list[float] | None = None, eps: float = 0.01) -> plt.Figure:
    """Epoch-wise double descent: test error vs epochs (log), a line per model size; train error dashed."""
    rows = analysis.complete(df)
    rows = rows[rows["epoch"] > 0]
    if rows.empty:
        raise ValueError("no complete runs to plot")
    conds = list(analysis.conditions(rows))
    fig, axes = plt.subplots(1, len(conds), figsize=(6.4 * len(conds), 4.4), squeeze=False)
    for ax, (cond, part) in zip(axes[0], conds):
        chosen = widths or pick_widths(part, eps)
        colors = plt.cm.viridis(np.linspace(0.1, 0.85, len(chosen)))
        for w, color in zip(chosen, colors):
            sel = part[np.isclose(part["width"], w)]
            if sel.empty:
                continue
            stats = analysis.seed_stats(sel, "epoch", ["train_error", "test_error", "n_params"])
            _band(ax, stats["epoch"], stats, "test_error", color, f"width {w:g} ({int(stats['n_params_mean'].iloc[0]):,} params)")
            ax.plot(stats["epoch"], stats["train_error_mean"], "--", color=color, lw=1, alpha=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("epochs")
        ax.set_ylabel("test error (train dashed)")
        ax.set_ylim(bottom=0)
        ax.set_title(analysis.describe(cond), fontsize=10)
        ax.grid(alpha=0.3, which="both", lw=0.5)
        ax.legend(frameon=False, fontsize=9)
    fig.suptitle("Epoch-wise double descent (Bishop & Bishop Fig 9.10)", fontsize=11)
    fig.tight_layout()
    return fig


DRAW = {"9.9": fig9_9, "9.10": fig9_10}


def draw(df: pd.DataFrame, figure: str, out: str | Path, **kwargs) -> Path:
    if figure not in DRAW:
        raise ValueError(f"--figure {figure}: choose one of: {', '.join(DRAW)}")
    fig = DRAW[figure](df, **kwargs)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=130)
    plt.close(fig)
    return out
