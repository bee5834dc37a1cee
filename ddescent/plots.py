"""The book's figures, drawn from the records alone (Bishop & Bishop §9.3.2).

Conventions every figure keeps: panels split by condition (dataset, model, regularizer, noise, n_train, ...), at
most three a row; within a panel, one curve per combination of any other hyperparameter that varies among the
runs, labelled with what differs; bands only over seeds; legends outside the plotting area (they never cover data
or the threshold line); width axes labelled in plain numbers. A panel's title says what its curves show, measured
from the curves (see analysis.describe_*). A newcomer adds a figure as a function here, its name in DRAW, and its
precondition in analysis.figure_availability.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.patheffects as path_effects  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

from ddescent import analysis  # noqa: E402

TRAIN, TEST = "#1f5fa8", "#d1462f"
THEORY = "0.15"
HURT = "#f2a541"
FORMATS = (".png", ".svg", ".pdf")


def _colors(n: int):
    """(train, test) colour pairs: the book's blue and red for one curve, a qualitative palette for several."""
    if n == 1:
        return [(TRAIN, TEST)]
    palette = plt.cm.tab10(np.arange(n) % 10)
    return [(c, c) for c in palette]


def _band(ax, x, stats, col, color, label, style="-"):
    ax.plot(x, stats[f"{col}_mean"], style, color=color, label=label, marker="o", ms=3, lw=1.6)
    if (stats[f"{col}_count"] > 1).any():
        ax.fill_between(x, stats[f"{col}_min"], stats[f"{col}_max"], color=color, alpha=0.18, lw=0)


def _plain_log(axis) -> None:
    """A log axis with ticks at 1, 2, 5 x 10^k labelled as plain numbers (4, 47, 300; not 4x10^0)."""
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _legend(ax) -> None:
    """Outside the plotting area, below it: it can cover neither data nor the threshold line. Long labels (a curve
    named with what it shows) take a row each."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:  # what a line style means ("dotted: ...") after the lines themselves
        order = sorted(range(len(labels)), key=lambda i: labels[i].startswith(("dotted:", "dashed:")))
        handles, labels = [handles[i] for i in order], [labels[i] for i in order]
        ncol = 1 if max(len(t) for t in labels) > 40 else min(3, len(handles))
        ax.legend(handles, labels, frameon=False, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16),
                  ncol=ncol)


def _room_for_legends(fig) -> plt.Figure:
    """Grow the figure by the legends' rows, so the panels keep their size whatever the legends hold."""
    rows = [-(-len(lg.get_texts()) // lg._ncols) for ax in fig.axes if (lg := ax.get_legend()) is not None]
    panel_rows = len({round(ax.get_position().y0, 3) for ax in fig.axes if ax.get_legend() is not None}) or 1
    if rows:
        w, h = fig.get_size_inches()
        fig.set_size_inches(w, h + 0.2 * max(rows) * panel_rows)
    return fig


def _style(ax, xlabel: str, ylabel: str, width_axis: bool = True) -> None:
    """The axes every curve figure shares: log x, labels, y from 0, a light grid, the legend."""
    ax.set_xscale("log")
    if width_axis:
        _plain_log(ax.xaxis)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if ax.get_yscale() == "linear":
        ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3, which="both", lw=0.5)
    _legend(ax)


def _params_axis(ax, stats):
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


def _only_widths(df: pd.DataFrame, widths: list[float] | None) -> pd.DataFrame:
    if not widths:
        return df
    keep = np.zeros(len(df), bool)
    for w in widths:
        keep |= np.isclose(df["width"].to_numpy(float), float(w))
    if not keep.any():
        raise ValueError(f"none of the widths {', '.join(f'{w:g}' for w in widths)} is in the records "
                         f"(stored: {', '.join(f'{w:g}' for w in sorted(df['width'].unique()))})")
    return df[keep]


def _size_label(model: str) -> str:
    names = {"transformer": "embedding dimension d_model", "linear": "features p", "random_features": "features p"}
    return f"model size ({names.get(model, f'{model} width')})"


def _metric(rows: pd.DataFrame) -> str:
    """What the error columns hold: the 0-1 error, the token error, or (regression) the test risk."""
    task = rows["task"].dropna().unique().tolist() if "task" in rows else []
    return "risk (MSE)" if task == ["regression"] else "token error" if task == ["sequence"] else "error"


def _subplots(n: int, cols: int = 3, w: float = 6.0, h: float = 4.6, ax=None):
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


def _seeds(part: pd.DataFrame, by: str) -> str:
    """", N seeds": the most replicates (seed, data_seed) behind one point of one curve."""
    curves = [curve for _, curve in analysis.variants(part, by)] if len(part) else []
    n = max((int(c.groupby(by)[list(analysis.REPLICATES)].apply(lambda g: len(g.drop_duplicates())).max())
             for c in curves), default=0)
    return f", {n} seeds" if n > 1 else ""


def fig9_9(df: pd.DataFrame, eps: float = 0.01, widths: list[float] | None = None, ax=None) -> plt.Figure:
    """Model-wise double descent: final train and test error vs model size, threshold dashed."""
    rows = analysis.final(_only_widths(analysis.complete(df), widths))
    if rows.empty:
        raise ValueError("no complete runs to plot")
    conds = list(analysis.conditions(rows))
    fig, axes = _subplots(len(conds), ax=ax)
    metric = _metric(rows)
    for ax, (cond, part) in zip(axes, conds):
        curves = analysis.variants(part, "width")
        for (label, curve), (c_train, c_test) in zip(curves, _colors(len(curves))):
            stats = analysis.seed_stats(curve, "width", ["train_error", "test_error", "n_params"])
            suffix = f", {label}" if label else ""
            threshold = analysis.interpolation_threshold(curve, eps)
            _band(ax, stats["width"], stats, "train_error", c_train, f"train{suffix}", "--" if label else "-")
            _band(ax, stats["width"], stats, "test_error", c_test,
                  f"test{suffix}: {analysis.describe_curve(stats['width'], stats['test_error_mean'])}")
            if threshold is not None:
                ax.axvline(threshold, color="0.3" if not label else c_test, ls=":" if label else "--", lw=1.2,
                           label=f"interpolation threshold{suffix} (train {metric} ≤ {eps:g})")
            _theory(ax, analysis.theory_modelwise(curve), "width",
                    f"theory{suffix}: expected risk of min-norm least squares (Belkin, Hsu & Xu 2019)")
        if len(curves) == 1:
            _params_axis(ax, analysis.seed_stats(part, "width", ["n_params"]))
        ax.set_title(analysis.describe(cond, part) + _seeds(part, "width"), fontsize=9)
        _style(ax, _size_label(cond["model"]), metric)
    fig.suptitle(f"Train and test {metric} vs model size (cf. Bishop & Bishop Fig 9.9)", fontsize=11)
    return _room_for_legends(fig)


def _theory(ax, curve: pd.DataFrame | None, x: str, label: str) -> None:
    """A theory line over the measurements, dashed; where it diverges (the threshold) it is left out, and the
    risk axis becomes logarithmic (the expected risk explodes there)."""
    if curve is None:
        return
    finite = curve[np.isfinite(curve["test_error"])]
    ax.plot(finite[x], finite["test_error"], "--", color=THEORY, lw=1.3, label=label, zorder=5)
    if not np.isfinite(curve["test_error"]).all():
        ax.set_yscale("log")
        # from a decade below the expected risk: an interpolating student's train risk (0, or 1e-30 in floats)
        # would otherwise stretch the axis over thirty decades
        ax.set_ylim(bottom=10 ** (np.floor(np.log10(finite["test_error"].min())) - 1))


def pick_widths(rows: pd.DataFrame, eps: float) -> list[float]:
    """Small, intermediate and large models relative to the interpolation threshold."""
    widths = sorted(rows["width"].unique())
    threshold = analysis.interpolation_threshold(analysis.final(rows), eps)
    if threshold is None or len(widths) <= 3:
        return widths[:: max(1, len(widths) // 3)][:3] if len(widths) > 3 else widths
    below = [w for w in widths if w < threshold]
    small = below[len(below) // 3] if below else widths[0]
    return sorted({small, threshold, widths[-1]})


def fig9_10(df: pd.DataFrame, widths: list[float] | None = None, eps: float = 0.01, ax=None) -> plt.Figure:
    """Epoch-wise: test error vs epochs (log), a line per model size (and per varying hyperparameter); train
    error dashed. Each line's shape (one descent, or descent-ascent-descent) is measured and named in the title."""
    rows = analysis.complete(df)
    rows = rows[rows["epoch"] > 0]
    if rows.empty:
        raise ValueError("no complete runs to plot")
    conds = list(analysis.conditions(rows))
    fig, axes = _subplots(len(conds), ax=ax)
    metric = _metric(rows)
    for ax, (cond, part) in zip(axes, conds):
        chosen = widths or pick_widths(part, eps)
        lines = [(w, label, curve[np.isclose(curve["width"], w)]) for label, curve in analysis.variants(part, "width")
                 for w in chosen]
        lines = [(w, label, sel) for w, label, sel in lines if not sel.empty]
        colors = plt.cm.viridis(np.linspace(0.1, 0.85, len(lines)))
        one_width = len({w for w, _, _ in lines}) == 1
        for (w, label, sel), color in zip(lines, colors):
            stats = analysis.seed_stats(sel, "epoch", ["train_error", "test_error", "n_params"])
            name = ", ".join(filter(None, ["" if one_width and label else
                                           f"width {w:g} ({int(stats['n_params_mean'].iloc[0]):,} params)", label]))
            shape = analysis.describe_curve(stats["epoch"], stats["test_error_mean"],
                                            "step" if metric == "risk (MSE)" else "epoch")
            _band(ax, stats["epoch"], stats, "test_error", color, f"{name}: {shape}")
            ax.plot(stats["epoch"], stats["train_error_mean"], "--", color=color, lw=1, alpha=0.8)
            expected = analysis.theory_epochwise(sel)
            if expected is not None:
                shown = expected[expected["step"] > 0]
                ax.plot(shown["step"], shown["test_error"], ":", color=color, lw=2.2, alpha=0.9,
                        label="dotted: expected over training sets (Monte Carlo, 20 draws a seed)"
                        if not any("expected over" in t for t in ax.get_legend_handles_labels()[1]) else None)
        ax.set_title(analysis.describe(cond, part) + _seeds(part, "width"), fontsize=9)
        _style(ax, "epochs" if metric != "risk (MSE)" else "gradient-descent steps", f"test {metric} (train dashed)",
               width_axis=False)
    fig.suptitle(f"Test {metric} over training (cf. Bishop & Bishop Fig 9.10)", fontsize=11)
    return _room_for_legends(fig)


def fig9_9_early(df: pd.DataFrame, eps: float = 0.01, widths: list[float] | None = None,
                 by: str = "val_loss", ax=None) -> plt.Figure:
    """Model-wise curve with optimal early stopping: the test error of each run at the evaluation whose
    validation loss (`by`) is lowest, vs model size; the final test error dashed for comparison.
    The stopping epoch is chosen on the validation split only, never on the test set."""
    rows = _only_widths(analysis.complete(df), widths)
    if rows.empty:
        raise ValueError("no complete runs to plot")
    stopped = analysis.early_stopped(rows, by)  # ValueError when no validation numbers were recorded
    ends = analysis.final(rows)
    conds = list(analysis.conditions(stopped))
    fig, axes = _subplots(len(conds), ax=ax)
    for ax, (cond, part) in zip(axes, conds):
        curves = analysis.variants(part, "width")
        for (label, curve), (c_train, c_test) in zip(curves, _colors(len(curves))):
            suffix = f", {label}" if label else ""
            stats = analysis.seed_stats(curve, "width", ["test_error", "train_error", "epoch", "n_params"])
            same = ends[ends["run_id"].isin(curve["run_id"])]
            last = analysis.seed_stats(same, "width", ["test_error"])
            _band(ax, stats["width"], stats, "test_error", c_test, f"test, early-stopped (min {by}){suffix}")
            ax.plot(last["width"], last["test_error_mean"], "--", color=c_test, alpha=0.55, lw=1.2,
                    label=f"test, final epoch{suffix}")
            ax.plot(stats["width"], stats["train_error_mean"], ":", color=c_train, lw=1.2,
                    label=f"train, early-stopped{suffix}")
            threshold = analysis.interpolation_threshold(same, eps)
            if threshold is not None:
                ax.axvline(threshold, color="0.3", ls="--", lw=1.2,
                           label=f"interpolation threshold{suffix} (final train error ≤ {eps:g})")
        if len(curves) == 1:
            _params_axis(ax, analysis.seed_stats(part, "width", ["n_params"]))
        ax.set_title(analysis.describe(cond, part) + _seeds(part, "width") + f"; stopped at epoch {_span(part['epoch'])}",
                     fontsize=9)
        _style(ax, _size_label(cond["model"]), "error")
    fig.suptitle("Test error vs model size, early-stopped on the validation split (cf. Bishop & Bishop Fig 9.9)",
                 fontsize=11)
    return _room_for_legends(fig)


def _span(values) -> str:
    lo, hi = int(values.min()), int(values.max())
    return f"{lo}" if lo == hi else f"{lo}–{hi}"


def _edges(values) -> np.ndarray:
    """Cell edges for positive values on a log axis: geometric midpoints, half a step beyond the ends."""
    v = np.asarray(sorted(values), float)
    if len(v) == 1:
        return np.array([v[0] / 1.2, v[0] * 1.2])
    mid = np.sqrt(v[1:] * v[:-1])
    return np.concatenate([[v[0] ** 2 / mid[0]], mid, [v[-1] ** 2 / mid[-1]]])


def hurt_spans(widths, hurting) -> list[tuple[float, float]]:
    """Width ranges (log-axis cells around each width, merged when adjacent) covering the `hurting` widths."""
    ws = sorted(float(w) for w in widths)
    edges = _edges(ws)
    bad = [any(np.isclose(w, h) for h in hurting) for w in ws]
    spans, start = [], None
    for i, b in enumerate(bad + [False]):
        if b and start is None:
            start = i
        elif not b and start is not None:
            spans.append((float(edges[start]), float(edges[i])))
            start = None
    return spans


def fig9_11(df: pd.DataFrame, eps: float = 0.01, widths: list[float] | None = None,
            metric: str | None = None, ax=None) -> plt.Figure:
    """Sample-wise non-monotonicity: the final test loss (test risk for regression) against model size, a line
    per training-set size, the widths where the larger set ends worse shaded; or, when the runs sweep n_train more
    finely than width, against n_train with a line per width (the peak at n = p is "more data hurts")."""
    rows = analysis.final(_only_widths(analysis.complete(df), widths))
    if rows.empty:
        raise ValueError("no complete runs to plot")
    conds = [(c, p) for c, p in analysis.conditions(rows, without=("n_train",)) if p["n_train"].nunique() >= 2]
    if not conds:
        raise ValueError("figure 9.11 needs at least two n_train values in one condition "
                         f"(stored: {', '.join(str(n) for n in sorted(rows['n_train'].unique()))})")
    metric = metric or ("test_error" if _metric(rows) == "risk (MSE)" else "test_loss")
    what = "test risk (MSE)" if metric == "test_error" and _metric(rows) == "risk (MSE)" else metric.replace("_", " ")
    fig, axes = _subplots(len(conds), ax=ax)
    along_n = all(p["n_train"].nunique() > p["width"].nunique() for _, p in conds)
    for ax_, (cond, part) in zip(axes, conds):
        x, lines = ("n_train", "width") if along_n else ("width", "n_train")
        values = sorted(part[lines].unique())
        colors = plt.cm.viridis(np.linspace(0.1, 0.8, len(values)))
        finding = ""
        for v, color in zip(values, colors):
            for label, curve in analysis.variants(part[part[lines] == v], x):
                name = (f"width {v:g}" if lines == "width" else f"n_train = {v:,}") + (f", {label}" if label else "")
                stats = analysis.seed_stats(curve, x, [metric])
                shape = f": {analysis.describe_curve(stats[x], stats[f'{metric}_mean'], 'n')}" if along_n else ""
                _band(ax_, stats[x], stats, metric, color, name + shape)
                if along_n:
                    _theory(ax_, analysis.theory_samplewise(curve), "n_train", f"theory, {name}")
                else:
                    _theory(ax_, analysis.theory_modelwise(curve), "width", f"theory, {name}")
        if not along_n:
            cmp = analysis.more_data_hurts(part, metric)
            bad = cmp[cmp["hurts"]]
            for i, (lo, hi) in enumerate(hurt_spans(part["width"].unique(), bad["width"])):
                worst = bad.loc[bad["ratio"].idxmax()]
                label = (f"more data hurts (worst: +{worst['ratio'] - 1:.0%} at width {worst['width']:g})"
                         if i == 0 else None)
                ax_.axvspan(lo, hi, color=HURT, alpha=0.22, lw=0, label=label)
            finding = "\nmore data hurts at some widths" if len(bad) else "\nmore data never hurts here"
        ax_.set_xscale("log")
        _plain_log(ax_.xaxis)
        ax_.set_xlabel("training-set size n_train" if along_n else _size_label(cond["model"]))
        ax_.set_ylabel(what)
        n_seeds = int(part.groupby(["n_train", "width"])[list(analysis.REPLICATES)]
                      .apply(lambda g: len(g.drop_duplicates())).max())
        ax_.set_title(analysis.describe(cond, part) + (f", {n_seeds} seeds" if n_seeds > 1 else "") + finding, fontsize=9)
        ax_.grid(alpha=0.3, which="both", lw=0.5)
        _legend(ax_)
    fig.suptitle(f"{what[0].upper() + what[1:]} vs {'training-set size' if along_n else 'model size by training-set size'}"
                 " (cf. Bishop & Bishop Fig 9.11)", fontsize=11)
    return _room_for_legends(fig)


def fig_lambda(df: pd.DataFrame, eps: float = 0.01, widths: list[float] | None = None, ax=None) -> plt.Figure:
    """Regularization-wise double descent: final train and test error vs 1/λ (log x) at a fixed width, a panel
    per width (and per regularizer; with soft weight sharing also the test error after quantization, dashed).
    Runs with λ = 0 (1/λ = ∞) are drawn as separate markers at the right edge, beyond a dotted line, labelled
    "λ = 0"; they are not part of the curves."""
    rows = analysis.final(_only_widths(analysis.complete(df), widths))
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
    fig, axes = _subplots(len(panels), ax=ax)
    for ax, (cond, w, reg, curve, zero) in zip(axes, panels):
        curve = curve.assign(inv_lambda=1.0 / curve["reg_strength"])
        quantized = all(c in curve and curve[c].notna().all() for c in ("quantized_test_error", "compression"))
        stats = analysis.seed_stats(curve, "inv_lambda", ["train_error", "test_error", "n_params"]
                                    + (["quantized_test_error", "compression"] if quantized else []))
        x = stats["inv_lambda"]
        _band(ax, x, stats, "train_error", TRAIN, "train")
        _band(ax, x, stats, "test_error", TEST, "test")
        if quantized:  # soft weight sharing: the same nets with every weight snapped to its component's mean,
            # and what that buys (right axis)
            _band(ax, x, stats, "quantized_test_error", TEST, "test, quantized", style="--")
            right_ax = ax.twinx()
            right_ax.plot(x, stats["compression_mean"], ":", color="0.35", marker="s", ms=3, lw=1.4,
                          label="compression")
            right_ax.set_ylabel("compression (×, right; positions and biases counted)")
            right_ax.set_ylim(bottom=0)
            ax.plot([], [], ":", color="0.35", marker="s", ms=3, label="compression (right axis)")
        if not zero.empty:
            lo, hi = float(x.min()), float(x.max())
            right = hi * max(3.0, (hi / lo) ** 0.15) if hi > lo else hi * 3.0
            for col, color in (("train_error", TRAIN), ("test_error", TEST)):
                vals = zero[col].to_numpy(float)
                ax.plot([right], [vals.mean()], "D", color=color, ms=6, mfc="white", mew=1.6)
                if len(vals) > 1:
                    ax.vlines(right, vals.min(), vals.max(), color=color, lw=2, alpha=0.4)
            ax.axvline(np.sqrt(hi * right), color="0.5", ls=":", lw=1)
            ax.annotate("λ = 0", (right, 1), xytext=(0, -4), textcoords="offset points", ha="center", va="top",
                        fontsize=8, xycoords=("data", "axes fraction"))
        n_seeds = int(stats["test_error_count"].max())
        ax.set_title(f"{analysis.describe(cond, part)}, width {w:g} ({int(stats['n_params_mean'].iloc[0]):,} params)"
                     + (f", {n_seeds} seeds" if n_seeds > 1 else "") + "\n"
                     + analysis.describe_lambdawise(x.to_numpy(), stats["test_error_mean"].to_numpy()), fontsize=9)
        _style(ax, f"1/λ (inverse {reg} strength)", "error", width_axis=False)
    fig.suptitle("Train and test error vs 1/λ (cf. Bishop & Bishop §9.3.2)", fontsize=11)
    return _room_for_legends(fig)


def fig_heatmap(df: pd.DataFrame, eps: float = 0.01, widths: list[float] | None = None,
                metric: str = "test_error", ax=None) -> plt.Figure:
    """Test error over model size × epochs (log-log), from every run's log-spaced evaluations, seed means
    (Nakkiran et al. 2019 Fig 2 style). Cells with no record stay blank; the interpolation threshold of the
    final models is dashed."""
    rows = _only_widths(analysis.complete(df), widths)
    rows = rows[rows["epoch"] > 0]
    if rows.empty:
        raise ValueError("no complete runs with evaluations after epoch 0 to plot")
    panels = [(c, label, curve) for c, p in analysis.conditions(rows) for label, curve in analysis.variants(p, "width")
              if curve["width"].nunique() >= 2 and curve["epoch"].nunique() >= 3]
    if not panels:
        raise ValueError("the heatmap needs at least 2 widths and 3 evaluated epochs > 0 in one condition")
    fig, axes = _subplots(len(panels), cols=2, w=6.8, h=5.0, ax=ax)
    for ax, (cond, label, part) in zip(axes, panels):
        stats = analysis.seed_stats(part, "epoch", [metric], by=["width"])
        grid = stats.pivot(index="epoch", columns="width", values=f"{metric}_mean").sort_index().sort_index(axis=1)
        mesh = ax.pcolormesh(_edges(grid.columns), _edges(grid.index), np.ma.masked_invalid(grid.to_numpy(float)),
                             cmap="viridis", shading="flat")
        fig.colorbar(mesh, ax=ax, label=metric.replace("_", " "))
        threshold = analysis.interpolation_threshold(analysis.final(part), eps)
        if threshold is not None:  # black with a white outline: visible on every colour of the map
            line = ax.axvline(threshold, color="black", ls="--", lw=1.4,
                              label=f"interpolation threshold (train error ≤ {eps:g})")
            line.set_path_effects([path_effects.Stroke(linewidth=3, foreground="white"), path_effects.Normal()])
        ax.set_xscale("log")
        ax.set_yscale("log")
        _plain_log(ax.xaxis)
        ax.set_xlabel(_size_label(cond["model"]))
        ax.set_ylabel("epochs")
        n_seeds = int(part.groupby("width")["run_id"].nunique().max())
        ax.set_title(analysis.describe(cond, part) + (f", {label}" if label else "")
                     + (f", mean of {n_seeds} seeds" if n_seeds > 1 else ""), fontsize=9)
        _legend(ax)
    fig.suptitle(f"{metric.replace('_', ' ').capitalize()} over model size × epochs "
                 "(Nakkiran et al. 2019 Fig 2 style; Bishop & Bishop §9.3.2)", fontsize=11)
    return fig


def fig_sws(df: pd.DataFrame, eps: float = 0.01, widths: list[float] | None = None, ax=None) -> plt.Figure:
    """Soft weight sharing (Bishop & Bishop §9.4.1): the final weights' histogram under the learned mixture
    density (left) and the mixture means over training (right), one row per run that recorded them."""
    if ax is not None:
        raise ValueError("the sws figure has two panels per run; pass ax=None")
    rows = _only_widths(analysis.complete(df), widths)
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
        note = (f"width {last['width']:g}, λ={last['reg_strength']:g}: test error {last['test_error']:.3f}"
                f" → {last.get('quantized_test_error', float('nan')):.3f} quantized, "
                f"{last.get('compression', float('nan')):.0f}× compression (positions and biases counted)")
        hist_ax.set_title(note, fontsize=9)
        _legend(hist_ax)
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
            _legend(mu_ax)
        mu_ax.set_xlabel("epochs" if start else "epochs (epoch 0 drawn at 0.5)")
        mu_ax.set_ylabel("mixture means μ_j")
        mu_ax.grid(alpha=0.3, lw=0.5)
    fig.suptitle("Soft weight sharing (Bishop & Bishop §9.4.1, eqs 9.21-9.31)", fontsize=11)
    return fig


DRAW = {"9.9": fig9_9, "9.9-early": fig9_9_early, "9.10": fig9_10, "9.11": fig9_11, "lambda": fig_lambda,
        "heatmap": fig_heatmap, "sws": fig_sws}


def filename(figure: str) -> str:
    """The image a figure gets: fig9_9.png, fig9_9_early.png, fig9_10.png, fig9_11.png, fig_lambda.png,
    fig_heatmap.png, fig_sws.png."""
    name = figure.replace(".", "_").replace("-", "_")
    return f"fig{name if name[0].isdigit() else '_' + name}.png"


# `auto` draws the most specific figure the records allow: a sample-wise or λ sweep is also model-wise, never
# the other way round.
AUTO = ("9.11", "lambda", "sws", "9.9", "9.10")


def choose(df: pd.DataFrame, figure: str = "auto") -> str:
    """The figure to draw: `figure` itself when the records have its axes, the most specific one they allow for
    `auto`; ValueError naming what is missing otherwise (a one-width sweep drawn model-wise would show a dot)."""
    if figure != "auto" and figure not in DRAW:
        raise ValueError(f"--figure {figure}: choose one of: auto, {', '.join(DRAW)}")
    why = analysis.figure_availability(df)
    if figure == "auto":
        for name in AUTO:
            if why[name] is None:
                return name
        raise ValueError(f"no figure fits these records (9.9 {why['9.9']}; 9.10 {why['9.10']})")
    if why[figure] is not None:
        allowed = [name for name in DRAW if why[name] is None]
        raise ValueError(f"--figure {figure}: {why[figure]}" +
                         (f"; these records allow: {', '.join(allowed)}" if allowed else ""))
    return figure


def draw(df: pd.DataFrame, figure: str, out: str | Path | None = None, dpi: int = 130, **kwargs) -> Path:
    """Draw one figure of `DRAW` (or `auto`, see `choose`) from the records and save it to `out` (.png, .svg or
    .pdf; a directory or None: named after the figure); ValueError when the records lack the axes."""
    figure = choose(df, figure)
    out = Path(out) if out is not None else Path(filename(figure))
    if out.is_dir() or not out.suffix:
        out = out / filename(figure)
    if out.suffix.lower() not in FORMATS:
        raise ValueError(f"{out}: write .png, .svg or .pdf")
    fig = DRAW[figure](df, **kwargs)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=dpi)
    finally:
        plt.close(fig)
    return out
