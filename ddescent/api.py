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

__all__ = ["ConfigError", "RunsFailed", "load", "plot", "run", "sweep"]


def sweep(overrides: list[str] | None = None, results: str | Path = "results", *, force: bool = False,
          memory_check: bool = True, progress: bool = False, config_dir: list[str | Path] = (),
          one_run: bool = False) -> pd.DataFrame:
    """Run a sweep (the same overrides as `ddescent sweep`); returns the records of its runs, finished now or
    before. Figures are not drawn (see `plot`)."""
    from ddescent import hydra_cli, orchestrate

    overrides = hydra_cli.overrides_with_search_path(overrides, list(config_dir))
    if not orchestrate.is_local(overrides):
        raise ConfigError("hydra/launcher: from Python a sweep trains on this machine; use the command line "
                          "for cluster launchers")
    plan = orchestrate.plan(overrides, results, memory_check=memory_check, one_run=one_run)
    outcomes = orchestrate.execute(plan, overrides, force=force, bars=progress)
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


def plot(df: pd.DataFrame, figure: str = "auto", ax=None, **kwargs):
    """One of the book's figures from records (`ddescent presets` lists them; `auto`: the most specific one the
    records allow) as a matplotlib Figure; with `ax`, drawn into that Axes (the records must then make one
    panel)."""
    from ddescent import figures

    try:
        return figures.figure(figures.choose(df, figure)).draw(df, ax=ax, **kwargs)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
