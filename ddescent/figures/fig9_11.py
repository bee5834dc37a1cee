"""Fig 9.11, sample-wise non-monotonicity ("more data can hurt"): the final test loss against model size, a line
per training-set size, or against n_train with a line per width."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ddescent import analysis
from ddescent.figures.base import Figure
from ddescent.figures.style import (
    HURT,
    band,
    edges,
    legend,
    mean_usable,
    medians,
    metric_of,
    only_widths,
    plain_log,
    room_for_legends,
    size_label,
    subplots,
    theory_line,
    verdict_title,
)


def hurt_spans(widths, hurting) -> list[tuple[float, float]]:
    """Width ranges (log-axis cells around each width, merged when adjacent) covering the `hurting` widths."""
    ws = sorted(float(w) for w in widths)
    cells = edges(ws)
    bad = [any(np.isclose(w, h) for h in hurting) for w in ws]
    spans, start = [], None
    for i, b in enumerate(bad + [False]):
        if b and start is None:
            start = i
        elif not b and start is not None:
            spans.append((float(cells[start]), float(cells[i])))
            start = None
    return spans


def fig9_11(df: pd.DataFrame, eps: float = 0.01, widths: list[float] | None = None,
            metric: str | None = None, ax=None) -> plt.Figure:
    """Sample-wise non-monotonicity: the final test loss (test risk for regression) against model size, a line
    per training-set size, the widths where the larger set ends worse shaded; or, when the runs sweep n_train more
    finely than width, against n_train with a line per width (the peak at n = p is "more data hurts")."""
    rows = analysis.final(only_widths(analysis.complete(df), widths))
    if rows.empty:
        raise ValueError("no complete runs to plot")
    conds = [(c, p) for c, p in analysis.conditions(rows, without=("n_train",)) if p["n_train"].nunique() >= 2]
    if not conds:
        raise ValueError("figure 9.11 needs at least two n_train values in one condition "
                         f"(stored: {', '.join(str(n) for n in sorted(rows['n_train'].unique()))})")
    metric = metric or ("test_error" if metric_of(rows) == "risk (MSE)" else "test_loss")
    what = "test risk (MSE)" if metric == "test_error" and metric_of(rows) == "risk (MSE)" else metric.replace("_", " ")
    own = ax is None
    fig, axes = subplots(len(conds), ax=ax)
    along_n = all(p["n_train"].nunique() > p["width"].nunique() for _, p in conds)
    for ax_, (cond, part) in zip(axes, conds):
        x, lines = ("n_train", "width") if along_n else ("width", "n_train")
        values = sorted(part[lines].unique())
        palette = plt.cm.viridis(np.linspace(0.1, 0.8, len(values)))
        findings = []
        for v, color in zip(values, palette):
            for label, curve in analysis.variants(part[part[lines] == v], x):
                name = (f"width {v:g}" if lines == "width" else f"n_train = {v:,}") + (f", {label}" if label else "")
                stats = analysis.seed_stats(curve, x, [metric])
                expected = (analysis.theory_samplewise(curve) if along_n else analysis.theory_modelwise(curve)) \
                    if metric == "test_error" else None
                usable = mean_usable(stats[x], expected, x)
                band(ax_, stats[x], stats, metric, color, name, where=usable)
                medians(ax_, curve, x, metric, color, stats[x][~usable])
                agreement = analysis.theory_agreement(curve, expected, x) if expected is not None else None
                if expected is not None:
                    theory_line(ax_, expected, x, f"theory, {name}: {expected.attrs.get('label', '')}"
                                + (f"; {analysis.describe_agreement(agreement, 'n' if along_n else x)}"
                                   if agreement else ""), color=color, within=stats[x])
                if along_n:
                    findings.append(f"{name}: {analysis.verdict(curve, 'n_train', y=metric, at='n').text()}")
        if not along_n:
            cmp = analysis.more_data_hurts(part, metric)
            bad = cmp[cmp["hurts"]]
            for i, (lo, hi) in enumerate(hurt_spans(part["width"].unique(), bad["width"])):
                worst = bad.loc[bad["ratio"].idxmax()]
                label = (f"more data hurts on average (worst: +{worst['ratio'] - 1:.0%} at width {worst['width']:g})"
                         if i == 0 else None)
                ax_.axvspan(lo, hi, color=HURT, alpha=0.22, lw=0, label=label)
            sure = cmp[cmp["sure"]]
            findings.append("more data never hurts on average here" if bad.empty else
                            f"more data hurts on average at {len(bad)} of {len(cmp)} widths; the 95% CI of the "
                            f"difference (Welch) excludes zero at {len(sure)} of them"
                            + (f" ({', '.join(f'{w:g}' for w in sure['width'])})" if len(sure) else ""))
        ax_.set_xscale("log")
        plain_log(ax_.xaxis)
        ax_.set_xlabel("training-set size n_train" if along_n else size_label(cond["model"]))
        ax_.set_ylabel(what)
        n_seeds = int(part.groupby(["n_train", "width"])[list(analysis.REPLICATES)]
                      .apply(lambda g: len(g.drop_duplicates())).max())
        ax_.set_title(verdict_title(analysis.describe(cond, part) + f", {n_seeds} seed{'s' if n_seeds != 1 else ''}",
                                    findings), fontsize=8)
        ax_.grid(alpha=0.3, which="both", lw=0.5)
        legend(ax_, own)
    if own:
        fig.suptitle(f"{what[0].upper() + what[1:]} vs "
                     f"{'training-set size' if along_n else 'model size by training-set size'} (cf. Bishop & Bishop "
                     "Fig 9.11)", fontsize=11)
        room_for_legends(fig)
    return fig



def needs(rows: pd.DataFrame) -> str | None:
    fin = analysis.final(rows)
    return None if analysis.some_condition(fin, ("n_train",), lambda p: p["n_train"].nunique() >= 2
                                           and p["width"].nunique() >= 2) \
        else "needs at least 2 n_train values and 2 widths in one condition"


FIGURE = Figure("9.11", draw=fig9_11, needs=needs, order=4, auto_rank=1,
                summary="sample-wise: test loss vs width, a line per n_train (or vs n_train, a line per width)")
