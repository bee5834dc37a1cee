"""What a figure is (`Figure`), and choosing, drawing and saving one from records."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from ddescent import analysis, component
from ddescent.component import Component

FORMATS = (".png", ".svg", ".pdf")


@dataclass(frozen=True, kw_only=True)
class Figure(Component):
    """A figure: a module of ddescent.figures (or a plugin's) that sets `FIGURE = Figure("name", ...)`.

    draw(df, ax=None, eps=0.01, widths=None) -> matplotlib Figure   from a table of records (ddescent.load);
                                             with `ax`, into that Axes (the records must then make one panel);
                                             ValueError when the records cannot make it
    needs(rows) -> None | str                what the records must hold: None when the complete runs `rows` (never
                                             empty) allow the figure, else the reason, for `figures` and `plot`
    summary                                  one line for `--figure` help: what it plots
    order                                    where `ddescent figures` draws it among the others
    auto_rank                                `plot --figure auto` draws the allowed figure of lowest rank (the most
                                             specific one: a sample-wise sweep is also model-wise, never the other way
                                             round); None: never chosen by auto
    """

    draw: Callable
    needs: Callable
    summary: str
    order: int = 100
    auto_rank: int | None = None


def figures() -> dict[str, Figure]:
    """Every figure, in drawing order."""
    return dict(sorted(component.registry("figure").items(), key=lambda kv: (kv[1].order, kv[0])))


def figure(name: str) -> Figure:
    return component.get("figure", name)


def availability(df: pd.DataFrame) -> dict[str, str | None]:
    """For every figure: None when the stored records allow it, else the reason it cannot be drawn."""
    rows = analysis.complete(df) if "status" in df else df
    if rows.empty:
        return {name: "no complete runs" for name in figures()}
    return {name: fig.needs(rows) for name, fig in figures().items()}


def available(df: pd.DataFrame) -> list[str]:
    """The figures the records allow, in drawing order."""
    return [name for name, reason in availability(df).items() if reason is None]


def filename(name: str) -> str:
    """The image a figure gets: fig9_9.png, fig9_9_early.png, fig9_10.png, fig_lambda.png, ..."""
    stem = name.replace(".", "_").replace("-", "_")
    return f"fig{stem if stem[0].isdigit() else '_' + stem}.png"


def choose(df: pd.DataFrame, name: str = "auto") -> str:
    """The figure to draw: `name` itself when the records have its axes, the most specific one they allow for
    `auto`; ValueError naming what is missing otherwise (a one-width sweep drawn model-wise would show a dot)."""
    known = figures()
    if name != "auto" and name not in known:
        raise ValueError(f"--figure {name}: choose one of: auto, {', '.join(known)}")
    if name != "auto":  # one figure's needs (every figure's only to say which the records allow instead)
        rows = analysis.complete(df) if "status" in df else df
        if (known[name].needs(rows) if not rows.empty else "no complete runs") is None:
            return name
    why = availability(df)
    if name == "auto":
        ranked = sorted((f.auto_rank, n) for n, f in known.items() if f.auto_rank is not None)
        for _, candidate in ranked:
            if why[candidate] is None:
                return candidate
        raise ValueError("no figure fits these records (" + "; ".join(f"{n} {why[n]}" for _, n in ranked) + ")")
    if why[name] is not None:
        allowed = [n for n in known if why[n] is None]
        raise ValueError(f"--figure {name}: {why[name]}" + (f"; these records allow: {', '.join(allowed)}"
                                                            if allowed else ""))
    return name


# What decides how a figure looks from its records: a change to any of these files changes the figures.
FIGURE_CODE = ("figures", "analysis.py", "stats.py", "theory", "linalg.py")


def code_hash() -> str:
    """A hash of the figure code (FIGURE_CODE): the gallery's images carry it, and a test compares, so an image in
    docs/ is never older than the code that would draw it."""
    import hashlib

    root = Path(__file__).resolve().parents[1]
    files = sorted(p for part in FIGURE_CODE for p in ([root / part] if part.endswith(".py")
                                                        else (root / part).glob("*.py")))
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def render(df: pd.DataFrame, name: str, *, metric: str | None = None, style: str = "paper", **kwargs):
    """One figure (or `auto`, see `choose`) as a matplotlib Figure, in a style (STYLES: paper or talk), with
    `metric` (query.METRICS) on its error axis; ValueError when the records lack the axes."""
    import matplotlib.pyplot as plt

    from ddescent import query
    from ddescent.figures.style import STYLES

    if style not in STYLES:
        raise ValueError(f"--style {style}: choose one of: {', '.join(STYLES)}")
    name = choose(df, name)
    df = query.metric(df, metric)
    # pyplot's backend loads before the style context opens: Jupyter's inline backend turns interactive mode on as it
    # loads, and the context's exit would turn it off again (no figure inline after that, the user's own included)
    plt._get_backend_mod()  # (private: the public calls that load it also draw or make a figure)
    with plt.rc_context(STYLES[style]):
        fig = figure(name).draw(df, **kwargs)
    if style == "talk":  # what the figures set explicitly (line widths, title sizes) grows too
        for ax in fig.axes:
            for line in ax.get_lines():
                line.set_linewidth(line.get_linewidth() * 1.8)
                line.set_markersize(line.get_markersize() * 1.5)
            ax.title.set_fontsize(ax.title.get_fontsize() * 1.4)
        if fig._suptitle is not None:
            fig._suptitle.set_fontsize(fig._suptitle.get_fontsize() * 1.4)
    if metric and metric != "test_error":  # the curves are the metric's: say so where they are read
        kind = metric.split("_", 1)[1]
        for ax in fig.axes:
            label = ax.get_ylabel()
            if "error" in label or "risk" in label:
                ax.set_ylabel(f"{kind} ({metric.replace('_', ' ')}; train {kind} for train)")
    return fig


def draw(df: pd.DataFrame, name: str, out: str | Path | None = None, dpi: int = 130, metadata: dict | None = None,
         **kwargs) -> Path:
    """Draw one figure (`render`'s arguments: auto, metric, style) from the records and save it to `out` (.png, .svg
    or .pdf; a directory or None: named after the figure), with `metadata` (text keys) in the file."""
    import matplotlib.pyplot as plt

    name = choose(df, name)
    out = Path(out) if out is not None else Path(filename(name))
    if out.is_dir() or not out.suffix:
        out = out / filename(name)
    if out.suffix.lower() not in FORMATS:
        raise ValueError(f"{out}: write .png, .svg or .pdf")
    fig = render(df, name, **kwargs)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        # tight: a long tick label (10^6 on a log risk axis) must not push the axis label off the page
        fig.savefig(out, dpi=dpi, metadata=metadata if out.suffix.lower() == ".png" else None, bbox_inches="tight",
                    pad_inches=0.15)
    finally:
        plt.close(fig)
    return out
