"""What every figure shares: the book's colours, seed bands, log axes labelled in plain numbers, legends outside
the plotting area, panels at most three a row, theory lines over the measurements.

Conventions every figure keeps: panels split by condition (dataset, model, regularizer, noise, n_train, ...);
within a panel, one curve per combination of any other hyperparameter that varies among the runs, labelled with
what differs; bands only over seeds; legends outside the plotting area (they never cover data or the threshold
line); width axes labelled in plain numbers. A panel's title says what its curves show, measured from the curves
(see ddescent.analysis).
"""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from ddescent import analysis

# --style: paper is matplotlib's own sizes; talk is for a projector, read from the back of a room
STYLES = {
    "paper": {},
    "talk": {"font.size": 15, "axes.labelsize": 17, "axes.titlesize": 15, "xtick.labelsize": 15,
             "ytick.labelsize": 15, "legend.fontsize": 13, "lines.linewidth": 3.0, "lines.markersize": 8,
             "axes.linewidth": 1.5, "grid.linewidth": 1.0},
}

TRAIN, TEST = "#1f5fa8", "#d1462f"
THEORY = "0.15"
HURT = "#f2a541"


def colors(n: int):
    """(train, test) colour pairs: the book's blue and red for one curve, a qualitative palette for several."""
    if n == 1:
        return [(TRAIN, TEST)]
    palette = plt.cm.tab10(np.arange(n) % 10)
    return [(c, c) for c in palette]


BAND = "shaded: 95% CI of the seed mean (t)"


def band(ax, x, stats, col, color, label, style="-", where=None):
    """The seed mean of `col` (analysis.seed_stats) as a line, with its 95% t interval shaded where a point has
    several seeds (`where`: the points to draw, a boolean mask; the others are left out). The legend says once
    what the shading is (see `legend`)."""
    keep = np.ones(len(stats), bool) if where is None else np.asarray(where, bool)
    x, stats = np.asarray(x)[keep], stats[keep]
    ax.plot(x, stats[f"{col}_mean"], style, color=color, label=label, marker="o", ms=3, lw=1.6)
    if (stats[f"{col}_count"] > 1).any():
        ax.fill_between(x, stats[f"{col}_lo"], stats[f"{col}_hi"], color=color, alpha=0.18, lw=0, gid=BAND)


def mean_usable(xs: pd.Series, expected: pd.DataFrame | None, x: str) -> np.ndarray:
    """Where the seed mean summarises a curve: everywhere, except where the theory says the expected risk, or its
    variance, is infinite (least squares at |p - n| <= 3: theory.linear.finite_variance)."""
    if expected is None or "finite_variance" not in expected:
        return np.ones(len(xs), bool)
    finite = dict(zip(expected[x], expected["finite_variance"]))
    return np.array([bool(finite.get(v, True)) for v in xs])


def medians(ax, rows: pd.DataFrame, x: str, col: str, color, where) -> None:
    """At the x values `where` (where the mean is not a meaningful summary: the expected risk, or its variance, is
    infinite), the seed median as a hollow marker with its order-statistic interval (ddescent.stats.median_ci)."""
    at = rows[rows[x].isin(list(where))]
    if at.empty:
        return
    m = analysis.median_band(at, x, col)
    label = "hollow: median [95% CI] where the mean risk is not finite or has no finite variance"
    ax.errorbar(m[x], m["median"], yerr=[m["median"] - m["lo"], m["hi"] - m["median"]], fmt="o", mfc="white",
                color=color, ms=5, lw=1, capsize=2, zorder=6,
                label=label if label not in ax.get_legend_handles_labels()[1] else None)


def verdict_title(head: str, lines: list[str], width: int = 95) -> str:
    """A panel title: what the panel holds, then what each curve's seeds show (ddescent.analysis.verdict)."""
    return "\n".join([head] + [textwrap.fill(line, width) for line in lines])


def plain_log(axis) -> None:
    """A log axis with ticks at 1, 2, 5 x 10^k labelled as plain numbers (4, 47, 300; not 4x10^0)."""
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def legend(ax, outside: bool = True) -> None:
    """Outside the plotting area, below it: it can cover neither data nor the threshold line. Long labels (a curve
    named with what it shows) take a row each, wrapped. In a caller's own axes (`outside=False`:
    ddescent.plot(..., ax=ax)) the legend stays inside them, where matplotlib finds room."""
    handles, labels = ax.get_legend_handles_labels()
    if any(c.get_gid() == BAND for c in ax.collections):
        handles.append(Patch(facecolor="0.5", alpha=0.3, lw=0))
        labels.append(BAND)
    if handles:  # what a line style means ("dotted: ...") after the lines themselves
        order = sorted(range(len(labels)), key=lambda i: labels[i].startswith(("dotted:", "dashed:", "shaded:",
                                                                              "hollow:")))
        handles, labels = [handles[i] for i in order], [textwrap.fill(labels[i], 90) for i in order]
        if not outside:
            ax.legend(handles, labels, frameon=False, fontsize=7, loc="best")
            return
        ncol = 1 if max(len(t) for t in labels) > 40 else min(3, len(handles))
        k = plt.rcParams["font.size"] / 10  # (larger under --style talk: the legend clears the larger axis label)
        ax.legend(handles, labels, frameon=False, fontsize=8 * k, loc="upper center", bbox_to_anchor=(0.5, -0.16 * k),
                  ncol=ncol)


def room_for_legends(fig) -> plt.Figure:
    """Grow the figure by the legends' rows, so the panels keep their size whatever the legends hold."""
    rows = [-(-len(lg.get_texts()) // lg._ncols) for ax in fig.axes if (lg := ax.get_legend()) is not None]
    panel_rows = len({round(ax.get_position().y0, 3) for ax in fig.axes if ax.get_legend() is not None}) or 1
    if rows:
        w, h = fig.get_size_inches()
        fig.set_size_inches(w, h + 0.2 * max(rows) * panel_rows)
    return fig


def style_axes(ax, xlabel: str, ylabel: str, width_axis: bool = True, outside: bool = True) -> None:
    """The axes every curve figure shares: log x, labels, y from 0, a light grid, the legend (see `legend`)."""
    ax.set_xscale("log")
    if width_axis:
        plain_log(ax.xaxis)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if ax.get_yscale() == "linear":
        ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3, which="both", lw=0.5)
    legend(ax, outside)


def params_axis(ax, stats):
    """A top axis in parameters, interpolated (log-log) from the widths' exact counts."""
    w = stats["width"].to_numpy(float)
    p = stats["n_params_mean"].to_numpy(float)
    if len(w) < 2 or np.any(np.diff(p) <= 0):
        return
    lw, lp = np.log(w), np.log(p)
    top = ax.secondary_xaxis("top", functions=(lambda v: np.exp(_loglog(v, lw, lp)), lambda v: np.exp(_loglog(v, lp, lw))))
    top.set_xlabel("parameters")


def _loglog(v, xs, ys):
    """log-log interpolation that continues the end slopes past the data (clamping would stack tick labels)."""
    x = np.log(np.maximum(np.asarray(v, float), 1e-12))
    y = np.interp(x, xs, ys)
    lo, hi = (ys[1] - ys[0]) / (xs[1] - xs[0]), (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
    return np.where(x < xs[0], ys[0] + lo * (x - xs[0]), np.where(x > xs[-1], ys[-1] + hi * (x - xs[-1]), y))


def only_widths(df: pd.DataFrame, widths: list[float] | None) -> pd.DataFrame:
    if not widths:
        return df
    keep = np.zeros(len(df), bool)
    for w in widths:
        keep |= np.isclose(df["width"].to_numpy(float), float(w))
    if not keep.any():
        raise ValueError(f"none of the widths {', '.join(f'{w:g}' for w in widths)} is in the records "
                         f"(stored: {', '.join(f'{w:g}' for w in sorted(df['width'].unique()))})")
    return df[keep]


def size_label(model: str) -> str:
    names = {"transformer": "embedding dimension d_model", "linear": "features p", "random_features": "features p"}
    return f"model size ({names.get(model, f'{model} width')})"


def metric_of(rows: pd.DataFrame) -> str:
    """What the error columns hold: the 0-1 error, the token error, or (regression) the test risk."""
    task = rows["task"].dropna().unique().tolist() if "task" in rows else []
    return "risk (MSE)" if task == ["regression"] else "token error" if task == ["sequence"] else "error"


def subplots(n: int, cols: int = 3, w: float = 6.0, h: float = 4.6, ax=None):
    """n panels, at most `cols` a row; returns the figure and the n axes in reading order (spares removed). With
    `ax` (a caller's Axes), the one panel is drawn there."""
    if ax is not None:
        if n != 1:
            raise ValueError(f"these records make {n} panels; select one condition, or pass ax=None")
        return ax.figure, [ax]
    ncols = min(n, cols)
    nrows = -(-n // ncols)
    w = w * 1.3 if n == 1 else w  # a lone panel has room for the legend's long labels
    fig, axes = plt.subplots(nrows, ncols, figsize=(w * ncols, h * nrows), squeeze=False, layout="constrained")
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.remove()
    return fig, flat[:n]


def panels(rows: pd.DataFrame, ax=None):
    """A curve figure's panels: one per condition of `rows` (ValueError when there is none), the figure and its
    axes (or the caller's `ax`), whether the figure is the figure's own (not a caller's), and the error axis's
    name. Returns (conditions, fig, axes, own, metric)."""
    if rows.empty:
        raise ValueError("no complete runs to plot")
    conds = list(analysis.conditions(rows))
    fig, axes = subplots(len(conds), ax=ax)
    return conds, fig, axes, ax is None, metric_of(rows)


def seeds_note(part: pd.DataFrame, by: str) -> str:
    """", N seeds": the most replicates (seed, data_seed) behind one point of one curve (", 1 seed" too: a figure
    of one seed says so)."""
    curves = [curve for _, curve in analysis.variants(part, by)] if len(part) else []
    n = max((int(c.groupby(by)[list(analysis.REPLICATES)].apply(lambda g: len(g.drop_duplicates())).max())
             for c in curves), default=0)
    return f", {n} seed{'s' if n != 1 else ''}"


def theory_line(ax, curve: pd.DataFrame | None, x: str, label: str, color=THEORY, within=None) -> None:
    """A theory line over the measurements, dashed (over the range of the values `within`, when given). Where it is
    infinite (the expected risk at the threshold) the line is broken, never joined across the pole, and the pole is
    marked by a dotted vertical asymptote; the risk axis then becomes logarithmic."""
    if curve is None:
        return
    if within is not None and len(within):
        curve = curve[(curve[x] >= float(np.min(within))) & (curve[x] <= float(np.max(within)))]
    y = curve["test_error"].to_numpy(float)
    xs = curve[x].to_numpy(float)
    finite = np.isfinite(y)
    segment = np.cumsum(~finite)  # a new segment after every non-finite point
    first = True
    for k in np.unique(segment[finite]):
        part = finite & (segment == k)
        ax.plot(xs[part], y[part], "--", color=color, lw=1.3, label=label if first else None, zorder=5)
        first = False
    if not finite.all():
        name = "p = n" if x == "width" else "n = p"
        pole = f"dotted: {name}, where the expected risk is infinite"
        ax.axvline(float(np.median(xs[~finite])), color=color, ls=":", lw=1.2,
                   label=pole if pole not in ax.get_legend_handles_labels()[1] else None)
        ax.set_yscale("log")
        # from a decade below the expected risk: an interpolating student's train risk (0, or 1e-30 in floats)
        # would otherwise stretch the axis over thirty decades
        ax.set_ylim(bottom=10 ** (np.floor(np.log10(y[finite].min())) - 1))


def span(values) -> str:
    lo, hi = int(values.min()), int(values.max())
    return f"{lo}" if lo == hi else f"{lo}–{hi}"


def edges(values) -> np.ndarray:
    """Cell edges for positive values on a log axis: geometric midpoints, half a step beyond the ends."""
    v = np.asarray(sorted(values), float)
    if len(v) == 1:
        return np.array([v[0] / 1.2, v[0] * 1.2])
    mid = np.sqrt(v[1:] * v[:-1])
    return np.concatenate([[v[0] ** 2 / mid[0]], mid, [v[-1] ** 2 / mid[-1]]])
