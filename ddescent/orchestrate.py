"""One orchestration path for `ddescent sweep`, `ddescent run` and ddescent.sweep/run from Python:

    plan (validate every job, skip the finished) -> prepare the folders -> cut packs -> report -> launch
    (this machine: workers, or this process; a Hydra launcher: joblib, SLURM) -> outcomes

The command line and the API differ only in how they ask and how they answer (exit codes, exceptions)."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from ddescent import launch, listing, packing, planner, progress, store
from ddescent.config import split_overrides
from ddescent.planner import Job
from ddescent.runner import Outcome

log = logging.getLogger("ddescent")


def is_local(overrides: list[str], jobs: int = 1) -> bool:
    """Whether the sweep trains on this machine without a Hydra launcher (workers or this process)."""
    return jobs == 1 and not any(o.startswith(("hydra/launcher=", "hydra.launcher.")) for o in overrides)


def plan(overrides: list[str], results: str | Path | None = None, *, memory_check: bool = True,
         one_run: bool = False) -> list[Job]:
    """Every job of the sweep (or the one run, `one_run`), validated (ConfigError on the first bad one); nothing is
    written."""
    return planner.plan(overrides, str(results) if results is not None else None, memory_check=memory_check,
                        one_run=one_run)


def execute(jobs: list[Job], overrides: list[str] = (), *, force: bool = False, parallel: int = 1,
            bars: bool | None = None) -> list[Outcome]:
    """Train what the plan has not done yet (everything with `force`), with the launcher the overrides choose.
    Progress bars: `bars`, or (None) as the experiment's `progress` setting says (auto: on a terminal)."""
    todo = [j for j in jobs if force or not j.done]
    first = jobs[0].spec
    extending = 0 if force else sum(j.extends for j in todo)
    log.info("%s: %d jobs, %d already done, %d to run%s -> %s", first.name, len(jobs), len(jobs) - len(todo),
             len(todo), f" ({extending} extend shorter runs)" if extending else "", first.folder)
    launch.prepare(jobs)  # also when all is done: a run killed after its files were written left its checkpoint
    if not todo:
        return []
    local = is_local(list(overrides), parallel)
    pack_list = planner.packs(todo, parallel if parallel > 1 else None if local else 1, planned=jobs)
    reporter = progress.Reporter({j.spec.run_id: j.label for j in todo},
                               {j.spec.run_id: packing.pack_time([j]) for j in todo},
                               bars=progress.bars_wanted(first.config.get("progress", "auto")) if bars is None else bars)
    try:
        if local:
            return launch.run_local(pack_list, reporter, force=force)
        hydra_overrides = split_overrides(list(overrides))[1]
        returns = launch.run_hydra(pack_list, hydra_overrides, parallel, force, events=reporter,
                                   retried=_retries(hydra_overrides, parallel))
        returns = _once_more(pack_list, returns, hydra_overrides, parallel, force, reporter)
        outcomes = launch.hydra_outcomes(pack_list, returns)
        for outcome in outcomes:  # the jobs logged their runs in their own logs: one line each here too (those
            if outcome.run_id not in reporter.finished:  # the launcher's wait did not report as they finished)
                reporter("run", {"outcome": outcome})
        return outcomes
    finally:
        reporter.close()


def _retries(hydra_overrides: list[str], parallel: int) -> bool:
    """Whether the launcher's lost jobs are launched once more (see _once_more): joblib's."""
    launcher = next((o.split("=", 1)[1] for o in hydra_overrides if o.startswith("hydra/launcher=")), None)
    return launcher == "joblib" or launcher is None and parallel > 1


def _once_more(pack_list: list[list[Job]], returns: list, hydra_overrides: list[str], parallel: int, force: bool,
               reporter) -> list:
    """joblib's workers (loky) share one fate: when one dies (killed, out of memory), loky ends the others and the
    launcher loses every job it was running or had not started. Each such pack with runs not stored is launched
    once more (it resumes from its checkpoint where it has one); what fails again is reported failed. The runs are
    reported once, after this. Other launchers are left alone (a SLURM job cancelled is not to be resubmitted)."""
    if not _retries(hydra_overrides, parallel):
        return returns
    lost = [i for i, (pack, ret) in enumerate(zip(pack_list, returns))
            if ret is None and not all(store.is_done(j.spec.folder, j.spec.run_id) for j in pack)]
    if not lost:
        return returns
    left = sum(not store.is_done(j.spec.folder, j.spec.run_id) for i in lost for j in pack_list[i])
    log.warning("the launcher lost %d job(s) with %d run(s) not stored (a worker died, or a job failed): launching "
                "them once more", len(lost), left)
    again = launch.run_hydra([pack_list[i] for i in lost], hydra_overrides, parallel, force, events=reporter)
    returns = list(returns)
    for i, ret in zip(lost, again):
        returns[i] = ret
    return returns


def records(jobs: list[Job]) -> pd.DataFrame:
    """The records of the plan's runs (finished now or before)."""
    frames = [store.load(store.run_path(j.spec.folder, j.spec.run_id)) for j in jobs
              if store.is_done(j.spec.folder, j.spec.run_id)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=store.COLUMNS)


def finish(jobs: list[Job], outcomes: list[Outcome]) -> None:
    """The tracker's record of the sweep as a whole ends (MLflow's parent run: FAILED when some runs failed)."""
    from ddescent.loggers.base import finish_sweep

    finish_sweep(jobs[0].spec.config, failed=any(o.status == "failed" for o in outcomes))


def summarize(jobs: list[Job], outcomes: list[Outcome]) -> None:
    """After a sweep: the diverged runs, and the `ls` summary of what it ran, as log lines; then `finish`."""
    diverged = [o for o in outcomes if o.status == "diverged"]
    if diverged:
        log.warning("%d run(s) diverged (recorded with status 'diverged')", len(diverged))
    first = jobs[0].spec
    finish(jobs, outcomes)
    df = store.load_quietly(first.folder)
    if not df.empty and log.isEnabledFor(logging.INFO):
        ours = df[df["run_id"].isin({j.spec.run_id for j in jobs})]
        for line in listing.summary_lines(ours, first.config["train"]["threshold_eps"]):
            log.info("%s", line)


def draw_figures(jobs: list[Job]) -> None:
    """The experiment's figures (its `figures:` list), drawn from the folder's records; a figure the records cannot
    make is skipped with its reason. The tracker keeps those drawn with the sweep (MLflow: its parent run's
    artifacts)."""
    from ddescent import figures
    from ddescent.loggers.base import finish_sweep

    first = jobs[0].spec
    if not first.config.get("plot", True):
        return
    df = store.load_quietly(first.folder, warn=log.warning)
    drawn = []
    for name in first.config.get("figures") or ["9.9"]:
        try:
            out = figures.draw(df, name, store.figures_dir(first.folder) / figures.filename(name),
                               eps=first.config["train"]["threshold_eps"])
            log.info("figure %s: %s", name, out)
            drawn.append(out)
        except ValueError as exc:
            log.warning("figure %s skipped: %s", name, exc)
    if drawn:
        finish_sweep(first.config, drawn)
