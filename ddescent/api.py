"""ddescent from Python: notebooks and scripts.

    import ddescent
    df = ddescent.sweep(["width=4,8,16", "epochs=50"], results="results")   # trains what is not done yet
    ddescent.plot(df, figure="9.9")                                        # a matplotlib Figure
    df = ddescent.load("results/fig9_9")                                    # everything stored there

Bad input raises ddescent.ConfigError with the same one-line message the command line prints; runs that fail
raise RunsFailed (the others are stored). Safe to call from a notebook kernel or `python -`: a sweep of several
packs trains them in worker processes forked from a clean server (no `if __name__ == "__main__"` needed), one
pack trains in this process. The same orchestration as the command line (ddescent.orchestrate).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ddescent.errors import ConfigError, RunsFailed

__all__ = ["ConfigError", "RunsFailed", "finals", "load", "plot", "report", "run", "sweep"]


def sweep(overrides: list[str] | None = None, results: str | Path = "results", *, force: bool = False,
          memory_check: bool = True, progress: bool | str = False, config_dir: list[str | Path] = (),
          one_run: bool = False) -> pd.DataFrame:
    """Run a sweep (the same overrides as `ddescent sweep`); returns the records of its runs, finished now or
    before. Figures are not drawn (see `plot`). `progress` (True, "auto"): bars on a terminal or in a notebook with
    ipywidgets, else a line per run on stderr."""
    import logging

    from ddescent import hydra_cli, orchestrate
    from ddescent.progress import bars_wanted, setup_logging

    if progress not in (False, "off") and not logging.getLogger("ddescent").handlers:
        setup_logging()  # (bars and lines are shown only when the logger speaks)

    overrides = hydra_cli.overrides_with_search_path(overrides, list(config_dir))
    if not orchestrate.is_local(overrides):
        raise ConfigError("hydra/launcher: from Python a sweep trains on this machine; use the command line "
                          "for cluster launchers")
    plan = orchestrate.plan(overrides, results, memory_check=memory_check, one_run=one_run)
    outcomes = orchestrate.execute(plan, overrides, force=force, bars=bars_wanted(progress))
    orchestrate.finish(plan, outcomes)
    bad = [o for o in outcomes if o.status in ("failed", "held")]
    if bad:
        raise RunsFailed(f"{len(bad)} run(s) not done: " + "; ".join(f"{o.label}: {o.note}" for o in bad[:5]),
                         outcomes)
    return orchestrate.records(plan)


def run(overrides: list[str] | None = None, results: str | Path = "results", **kwargs) -> pd.DataFrame:
    """One run (single values only; as `ddescent run`, a preset's sweep axes do not apply); returns its records."""
    return sweep(overrides, results, one_run=True, **kwargs)


def load(path: str | Path) -> pd.DataFrame:
    """Every run stored under `path` (a results root, an experiment folder or one run file) as one long table,
    one row per evaluation point, with the hyperparameters as flat columns."""
    from ddescent import store

    return store.load(path)


def plot(df: pd.DataFrame, figure: str = "auto", ax=None, *, where: str | None = None, metric: str | None = None,
         style: str = "paper", **kwargs):
    """One of the book's figures from records (`ddescent presets` lists them; `auto`: the most specific one the
    records allow) as a matplotlib Figure; with `ax`, drawn into that Axes (the records must then make one
    panel). `where` keeps the runs a pandas query selects (`seed<3`), `metric` puts another recorded metric on the
    error axis (test_loss, ...), `style` is paper or talk."""
    from ddescent import figures, query

    try:
        fig = figures.render(query.where(df, where), figure, metric=metric, style=style, ax=ax, **kwargs)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    if _inline_backend() is not None:
        fig._ipython_display_ = _ShownOnce(fig)
    return fig


def _inline_backend():
    """matplotlib_inline's backend module when it is pyplot's backend (Jupyter's default), else None."""
    import sys

    import matplotlib

    inline = sys.modules.get("matplotlib_inline.backend_inline")
    backend = matplotlib.get_backend()
    return inline if inline is not None and backend in ("inline", "module://matplotlib_inline.backend_inline") \
        else None


class _ShownOnce:
    """A Figure's display in Jupyter: shown now and taken out of the inline backend's end-of-cell showing, so
    `ddescent.plot(df)` as a cell's last line shows one image, not two (the cell's value, then the figures pyplot
    holds); an explicit display() mid-cell also stands for the end-of-cell one. A class, not a closure: the Figure
    stays picklable."""

    def __init__(self, fig):
        self.fig = fig

    def __call__(self) -> None:
        from IPython.display import display

        inline, fig = _inline_backend(), self.fig
        metadata = getattr(inline, "_fetch_figure_metadata", lambda f: None)(fig) if inline else None
        fig.__dict__.pop("_ipython_display_", None)  # displayed the usual way, without coming back here
        try:
            display(fig, metadata=metadata)
        finally:
            fig._ipython_display_ = self
        if inline is None:
            return
        import matplotlib.pyplot as plt

        pending = getattr(inline.show, "_to_draw", [])
        if fig in pending:
            pending.remove(fig)
        if inline.InlineBackend.instance().close_figures:
            plt.close(fig)  # (what the end of the cell would do after showing it)


def finals(df: pd.DataFrame) -> pd.DataFrame:
    """One row per run at its last evaluation."""
    from ddescent import query

    return query.finals(df)


def report(source: pd.DataFrame | str | Path, path: str | Path = "report.html", *, where: str | None = None) -> Path:
    """One self-contained HTML file of the records (a results root, an experiment folder or a DataFrame): per
    experiment every figure they allow, the verdicts, the run table, what varies, each run's config, provenance."""
    from ddescent import html_report

    df = load(source) if isinstance(source, (str, Path)) else source
    return html_report.write(df, path, where=where)
