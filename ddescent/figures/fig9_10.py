"""Fig 9.10, epoch-wise: test error against training time (log), a line per model size."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ddescent import analysis
from ddescent.figures.base import Figure
from ddescent.figures.style import band, panels, room_for_legends, seeds_note, style_axes, verdict_title


def pick_widths(rows: pd.DataFrame, eps: float) -> list[float]:
    """Small, intermediate and large models relative to the interpolation threshold."""
    widths = sorted(rows["width"].unique())
    if len(widths) <= 3:
        return widths
    threshold = analysis.interpolation_threshold(analysis.final(rows), eps)
    if threshold is None:
        return widths[:: max(1, len(widths) // 3)][:3]
    below = [w for w in widths if w < threshold]
    small = below[len(below) // 3] if below else widths[0]
    return sorted({small, threshold, widths[-1]})


def fig9_10(df: pd.DataFrame, widths: list[float] | None = None, eps: float = 0.01, ax=None) -> plt.Figure:
    """Epoch-wise: test error vs epochs (log), a line per model size (and per varying hyperparameter), seed means
    with their 95% CI shaded; train error dashed. Each line's verdict across its seeds (ddescent.analysis) is in
    the title; for the linear lab, the expected risk over training sets is dotted, with its Monte Carlo error."""
    rows = analysis.complete(df)
    rows = rows[rows["epoch"] > 0]
    conds, fig, axes, own, metric = panels(rows, ax)
    along = "step" if metric == "risk (MSE)" else "epoch"
    for ax, (cond, part) in zip(axes, conds):
        chosen = widths or pick_widths(part, eps)
        lines = [(w, label, curve[np.isclose(curve["width"], w)]) for label, curve in analysis.variants(part, "width")
                 for w in chosen]
        lines = [(w, label, sel) for w, label, sel in lines if not sel.empty]
        palette = plt.cm.viridis(np.linspace(0.1, 0.85, len(lines)))
        one_width = len({w for w, _, _ in lines}) == 1
        verdicts = []
        for (w, label, sel), color in zip(lines, palette):
            stats = analysis.seed_stats(sel, "epoch", ["train_error", "test_error", "n_params"])
            name = ", ".join(filter(None, ["" if one_width and label else
                                           f"width {w:g} ({int(stats['n_params_mean'].iloc[0]):,} params)", label]))
            band(ax, stats["epoch"], stats, "test_error", color, name)
            ax.plot(stats["epoch"], stats["train_error_mean"], "--", color=color, lw=1, alpha=0.8)
            verdicts.append(f"{name}: {analysis.verdict(sel, 'epoch', at=along).text()}")
            expected = analysis.theory_epochwise(sel)
            if expected is not None:
                shown = expected[expected["step"] > 0]
                ax.plot(shown["step"], shown["test_error"], ":", color=color, lw=2.2, alpha=0.9)
                ax.fill_between(shown["step"], shown["test_error"] - 2 * shown["test_error_se"],
                                shown["test_error"] + 2 * shown["test_error_se"], color=color, alpha=0.12, lw=0)
                note = (f"dotted: expected risk over training sets, each seed's teacher (Monte Carlo, "
                        f"{analysis.THEORY_DRAWS} draws a teacher; ±2 standard errors)")
                if note not in ax.get_legend_handles_labels()[1]:
                    ax.plot([], [], ":", color="0.3", lw=2.2, label=note)
        ax.set_title(verdict_title(analysis.describe(cond, part) + seeds_note(part, "width"), verdicts), fontsize=8)
        style_axes(ax, "epochs" if metric != "risk (MSE)" else "gradient-descent steps", f"test {metric} (train dashed)",
                   width_axis=False, outside=own)
    if own:
        fig.suptitle(f"Test {metric} over training (cf. Bishop & Bishop Fig 9.10)", fontsize=11)
        room_for_legends(fig)
    return fig


def needs(rows: pd.DataFrame) -> str | None:
    trained = rows[rows["epoch"] > 0]
    return None if analysis.some_condition(trained, (), lambda p: p["epoch"].nunique() >= 2) \
        else "needs evaluations at 2 or more epochs > 0"


FIGURE = Figure("9.10", draw=fig9_10, needs=needs, order=3, auto_rank=5,
                summary="epoch-wise: test error vs epochs, a line per model size (small, intermediate, large)")
