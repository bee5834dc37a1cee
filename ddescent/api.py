"""ddescent from Python: notebooks and scripts.

    import ddescent
    df = ddescent.sweep(["width=4,8,16", "epochs=50"], results="results")   # trains what is not done yet
    ddescent.plot(df, figure="9.9")                                        # a matplotlib Figure
    df = ddescent.load("results/fig9_9")                                    # everything stored there

Bad input raises ddescent.ConfigError with the same one-line message the command line prints; runs that fail
raise RunsFailed (the others are stored). Safe to call from a notebook kernel or `python -`: a sweep of several
packs trains them in worker processes forked from a clean server (no `if __name__ == "__main__"` needed), one
pack trains in this process.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from ddescent import ConfigError

log = logging.getLogger("ddescent")


class RunsFailed(RuntimeError):
    """Some runs of a sweep failed or were left to another live process; `outcomes` says which and why. The
    runs that finished are stored."""

    def __init__(self, message: str, outcomes: list):
        super().__init__(message)
        self.outcomes = outcomes


def sweep(overrides: list[str] | None = None, results: str | Path = "results", *, force: bool = False,
          memory_check: bool = True, progress: bool = False, config_dir: list[str | Path] = ()) -> pd.DataFrame:
    """Run a sweep (the same overrides as `ddescent sweep`); returns the records of its runs, finished now or
    before. Figures are not drawn (see `plot`)."""
    from ddescent import launch, packing, planner, report, runner, store
    from ddescent.config import take_search_path, use_config_dirs

    use_config_dirs([str(d) for d in config_dir])
    overrides = take_search_path(list(overrides or []))
    if any(o.startswith(("hydra/launcher=", "hydra.launcher.")) for o in overrides):
        raise ConfigError("hydra/launcher: from Python a sweep trains on this machine; use the command line "
                          "for cluster launchers")
    plan = planner.plan(overrides, str(results), memory_check=memory_check)
    todo = [j for j in plan if force or not j.done]
    outcomes: list[runner.Outcome] = []
    if todo:
        launch.prepare(plan)
        reporter = report.Reporter({j.spec.run_id: j.label for j in todo},
                                   {j.spec.run_id: packing.pack_time([j]) for j in todo}, bars=progress)
        try:
            outcomes = launch.run_local(planner.packs(todo), reporter, force=force)
        finally:
            reporter.close()
    bad = [o for o in outcomes if o.status in ("failed", "held")]
    if bad:
        raise RunsFailed(f"{len(bad)} run(s) not done: " + "; ".join(f"{o.label}: {o.note}" for o in bad[:5]),
                         outcomes)
    frames = [store.load(store.run_path(j.spec.folder, j.spec.run_id)) for j in plan]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=store.COLUMNS)


def run(overrides: list[str] | None = None, results: str | Path = "results", **kwargs) -> pd.DataFrame:
    """One run (single values only); returns its records."""
    from ddescent import planner

    plan = planner.plan(list(overrides or []), str(results), memory_check=kwargs.get("memory_check", True))
    if len(plan) != 1:
        raise ConfigError(f"these overrides make {len(plan)} runs; use ddescent.sweep for more than one")
    return sweep(overrides, results, **kwargs)


def load(path: str | Path) -> pd.DataFrame:
    """Every run stored under `path` (a results root, an experiment folder or one run file) as one long table,
    one row per evaluation point, with the hyperparameters as flat columns."""
    from ddescent import store

    return store.load(path)


def plot(df: pd.DataFrame, figure: str = "auto", ax=None, **kwargs):
    """One of the book's figures from records (9.9, 9.9-early, 9.10, 9.11, lambda, heatmap, sws; `auto`: the most
    specific one the records allow) as a matplotlib Figure; with `ax`, drawn into that Axes (the records must then
    make one panel)."""
    from ddescent import plots

    try:
        return plots.DRAW[plots.choose(df, figure)](df, ax=ax, **kwargs)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
