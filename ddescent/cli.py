"""The `ddescent` command: parses flags, hands overrides to the sweep, reports. No training logic here."""

from __future__ import annotations

import functools
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import List, Optional

import typer

from ddescent import ConfigError, fetch_cli

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Train families of models over sweeps and plot double descent (Bishop & Bishop §9.3.2).")
log = logging.getLogger("ddescent")

OVERRIDES = typer.Argument(None, help="Hydra overrides: width=8,16,32 seed=0,1 experiment=fig9_9 optim.lr=1e-3 ...",
                           show_default=False)
RESULTS = typer.Option(None, "--results", help="Results root (default: ./results).")
QUIET = typer.Option(False, "--quiet", "-q", help="Print nothing but errors.")
VERBOSE = typer.Option(False, "--verbose", "-v", help="Also print every evaluation point.")

EXIT_FAILED, EXIT_BAD_INPUT, EXIT_HELD, EXIT_INTERRUPTED = 1, 2, 3, 130


def fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    typer.echo(f"ddescent: error: {message}", err=True)
    raise typer.Exit(code)


def guarded(fn):
    """Bad input ends in one line and exit code 2 (HYDRA_FULL_ERROR=1 shows the traceback instead); so does a
    folder or disk that cannot be written. Ctrl-C ends in one line too."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except BrokenPipeError:  # `ddescent ls ... | head`: the reader has what it wanted
            sys.stdout = open(os.devnull, "w")
            return None
        except (ConfigError, FileNotFoundError, OSError) as exc:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            fail(str(exc) if isinstance(exc, ConfigError) else _os_message(exc))
        except KeyboardInterrupt:
            fail("interrupted; finished runs are kept, rerun the same command to go on", EXIT_INTERRUPTED)

    return wrapper


def _os_message(exc: OSError) -> str:
    where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
    return f"{where}{exc.strerror or exc}"


def _logging(quiet: bool, verbose: bool) -> None:
    from ddescent.report import NORMAL, QUIET as Q, VERBOSE as V, setup_logging

    setup_logging(Q if quiet else V if verbose else NORMAL)


@app.command()
@guarded
def sweep(
    overrides: Optional[List[str]] = OVERRIDES,
    dry_run: bool = typer.Option(False, "--dry-run", help="List every job (run_id, parameters, done/pending) and the work; write nothing."),
    force: bool = typer.Option(False, "--force", help="Rerun jobs whose results already exist."),
    jobs: int = typer.Option(1, "--jobs", min=1, help="Run N jobs in parallel on this machine (joblib launcher)."),
    results: Optional[Path] = RESULTS,
    no_plot: bool = typer.Option(False, "--no-plot", help="Skip drawing the experiment's figures at the end."),
    no_memory_check: bool = typer.Option(False, "--no-memory-check", help="Train even runs whose parameters alone would not fit the device's memory."),
    no_wait: bool = typer.Option(False, "--no-wait", help="Plan, then hand the sweep to a background process and return (for cluster launchers: submit and log out); `ddescent ls` shows progress."),
    quiet: bool = QUIET,
    verbose: bool = VERBOSE,
):
    """Run the chosen experiment preset (default fig9_9) over its sweep axes; finished runs are skipped.

    Exit codes: 0 every run done; 1 some runs failed; 2 bad input; 3 some runs are being trained by another
    live process (rerun later to draw complete figures)."""
    from ddescent import workers

    _logging(quiet, verbose)
    overrides = list(overrides or [])
    os.environ["DDESCENT_COMMAND"] = " ".join(["ddescent", "sweep", *sys.argv[2:]])
    local = jobs == 1 and not any(o.lstrip("+~").startswith("hydra") for o in overrides)
    if not dry_run and local:
        workers.start()  # workers' code is imported while the sweep is planned
    from ddescent import sweep as sw

    plan = sw.plan(overrides, str(results) if results else None, memory_check=not no_memory_check)
    if dry_run:
        sw.show_plan(plan)
        return
    if no_wait:
        _in_background(plan[0].spec.folder)
        return
    outcomes = _train(plan, overrides, jobs, force, local)
    first = plan[0].spec
    if first.config.get("plot", True) and not no_plot:
        _draw_figures(first.folder, first.config.get("figures") or ["9.9"], first.config["train"]["threshold_eps"])
    _finish(plan, outcomes)


def _in_background(folder: Path) -> None:
    """The same command without --no-wait, detached from this terminal, its output in the experiment's log."""
    import datetime
    import subprocess

    log_file = folder / "_logs" / f"sweep-{datetime.datetime.now(datetime.timezone.utc):%Y%m%dT%H%M%SZ}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    args = [a for a in sys.argv[1:] if a != "--no-wait"]
    with open(log_file, "ab") as out:
        subprocess.Popen([sys.executable, "-m", "ddescent", *args], stdin=subprocess.DEVNULL, stdout=out,
                         stderr=subprocess.STDOUT, start_new_session=True)
    typer.echo(f"running in the background; its log: {log_file}\nprogress: ddescent ls {folder}")


def _train(plan, overrides: list[str], jobs: int, force: bool, local: bool) -> list:
    from ddescent import packing, report
    from ddescent import sweep as sw

    todo = [j for j in plan if force or not j.done]
    first = plan[0].spec
    log.info("%s: %d jobs, %d already done, %d to run -> %s", first.name, len(plan), len(plan) - len(todo),
             len(todo), first.folder)
    if not todo:
        return []
    sw.prepare(plan)
    pack_list = sw.packs(todo, jobs if jobs > 1 else None if local else 1)
    reporter = report.Reporter({j.spec.run_id: j.label for j in todo},
                               {j.spec.run_id: packing.pack_time([j]) for j in todo},
                               bars=report.bars_wanted(first.config.get("progress", "auto")))
    try:
        if local:
            return sw.run_local(pack_list, reporter, force=force)
        _, hydra_overrides = sw.split_overrides(overrides)
        returns = sw.run_hydra(pack_list, hydra_overrides, jobs, force)
        outcomes = _hydra_outcomes(pack_list, returns)
        for outcome in outcomes:  # the jobs logged their runs in their own logs: one line each here too
            reporter("run", {"outcome": outcome})
        return outcomes
    finally:
        reporter.close()


def _hydra_outcomes(pack_list, returns) -> list:
    """What the launcher's jobs did, read back from the store (the source of truth) and Hydra's job returns."""
    from hydra.core.utils import JobStatus

    from ddescent import store
    from ddescent.runner import Outcome

    outcomes = []
    for pack, ret in zip(pack_list, returns):
        error = ""
        if ret is None or ret.status != JobStatus.COMPLETED:
            error = "its job did not complete" if ret is None else f"its job failed: {ret._return_value}"
        for job in pack:
            path = store.run_path(job.spec.folder, job.spec.run_id)
            if store.check_run(path, job.spec.run_id) is None:
                last = store.load(path).sort_values("epoch").iloc[-1]
                outcomes.append(Outcome(job.spec.run_id, job.label, str(last["status"]),
                                        final={k: float(last[k]) for k in ("train_error", "test_error")}))
            else:
                outcomes.append(Outcome(job.spec.run_id, job.label, "failed",
                                        note=error or "its job ended without writing it"))
    return outcomes


def _finish(plan, outcomes) -> None:
    """The `ls` summary of what the sweep ran, then the exit code its outcomes call for."""
    from ddescent import analysis

    diverged = [o for o in outcomes if o.status == "diverged"]
    failed = [o for o in outcomes if o.status == "failed"]
    held = [o for o in outcomes if o.status == "held"]
    if diverged:
        log.warning("%d run(s) diverged (recorded with status 'diverged')", len(diverged))
    first = plan[0].spec
    df = _load(first.folder, quiet=True)
    if not df.empty and log.isEnabledFor(logging.INFO):
        ours = df[df["run_id"].isin({j.spec.run_id for j in plan})]
        for line in analysis.summary_lines(ours, first.config["train"]["threshold_eps"]):
            log.info("%s", line)
    if failed:
        fail(f"{len(failed)} run(s) failed: " + "; ".join(f"{o.label} ({o.note})" for o in failed[:5])
             + (" ..." if len(failed) > 5 else ""), EXIT_FAILED)
    if held:
        fail(f"{len(held)} run(s) not trained here: {held[0].label} is {held[0].note}"
             + (f" (and {len(held) - 1} more)" if len(held) > 1 else ""), EXIT_HELD)


def _load(path: Path, quiet: bool = False):
    """The records under `path`; files that cannot be read are skipped with a one-line warning each."""
    from ddescent import store

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = store.load(path)
    for w in caught:
        if not quiet:
            typer.echo(f"warning: {w.message}", err=True)
    return df


def _draw_figures(folder: Path, figures: list[str], eps: float) -> None:
    from ddescent import plots, store

    df = _load(folder)
    for figure in figures:
        try:
            out = plots.draw(df, figure, store.figures_dir(folder) / plots.filename(figure), eps=eps)
            log.info("figure %s: %s", figure, out)
        except ValueError as exc:
            log.warning("figure %s skipped: %s", figure, exc)


@app.command()
@guarded
def run(
    overrides: Optional[List[str]] = OVERRIDES,
    force: bool = typer.Option(False, "--force", help="Rerun even if the result exists."),
    results: Optional[Path] = RESULTS,
    no_memory_check: bool = typer.Option(False, "--no-memory-check", help="Train even if its parameters alone would not fit the device's memory."),
    quiet: bool = QUIET,
    verbose: bool = VERBOSE,
):
    """Train one run with the same overrides as `sweep` (single values only: width=8, not width=8,16)."""
    from ddescent import report, store
    from ddescent import sweep as sw
    from ddescent.runner import execute

    _logging(quiet, verbose)
    os.environ["DDESCENT_COMMAND"] = " ".join(["ddescent", "run", *sys.argv[2:]])
    plan = sw.plan(list(overrides or []), str(results) if results else None, memory_check=not no_memory_check)
    if len(plan) != 1:
        fail(f"these overrides make {len(plan)} runs; use `ddescent sweep` for more than one")
    job = plan[0]
    path = store.run_path(job.spec.folder, job.spec.run_id)
    if job.done and not force:
        typer.echo(f"already done: {path} (use --force to rerun)")
        return
    sw.prepare(plan)
    reporter = report.Reporter({job.spec.run_id: job.label},
                               bars=report.bars_wanted(job.spec.config.get("progress", "auto")))
    try:
        outcome = execute([job.spec], reporter, force)[0]
    finally:
        reporter.close()
    if outcome.status == "held":
        fail(f"{job.label} is {outcome.note}", EXIT_HELD)
    typer.echo(f"{outcome.status}: {path}")


FIGURE_HELP = ("Which figure: 9.9 (model-wise: train/test error vs width), 9.9-early (test error vs width, early-stopped "
               "at the epoch of lowest val_loss), 9.10 (epoch-wise: test error vs epochs), 9.11 (sample-wise: test "
               "loss vs width, a line per n_train), lambda (train/test error vs 1/λ at a fixed width), heatmap "
               "(test error over width × epochs), sws (final weights under the learned mixture prior).")


@app.command()
@guarded
def plot(
    results: Path = typer.Argument(..., help="An experiment folder (results/fig9_9) or a results root."),
    figure: str = typer.Option("9.9", "--figure", help=FIGURE_HELP),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="Image file, .png, .svg or .pdf (default: RESULTS/_figures/fig<figure>.png)."),
    eps: float = typer.Option(0.01, "--eps", help="Train error at or below eps counts as interpolating."),
    widths: Optional[str] = typer.Option(None, "--widths", help="Comma list of widths: the lines of 9.10 (default: small, "
                                         "intermediate, large), the panels of lambda, the widths shown by the others."),
):
    """Draw a figure from saved results."""
    from ddescent import plots, store

    if figure not in plots.DRAW:
        fail(f"--figure {figure}: choose one of: {', '.join(plots.DRAW)}")
    df = _load(results)
    if df.empty:
        fail(f"{results}: no runs found")
    kwargs = {"eps": eps}
    if widths:
        try:
            kwargs["widths"] = [float(w) for w in widths.split(",") if w.strip()]
        except ValueError:
            fail(f"--widths {widths}: expected a comma list of numbers such as 8,16,64")
    try:
        path = plots.draw(df, figure, out or store.figures_dir(results) / plots.filename(figure), **kwargs)
    except ValueError as exc:
        fail(str(exc))
    typer.echo(str(path))


@app.command()
@guarded
def figures(
    results: Path = typer.Argument(..., help="An experiment folder (results/fig9_9) or a results root."),
    eps: float = typer.Option(0.01, "--eps", help="Train error at or below eps counts as interpolating."),
    out_dir: Optional[Path] = typer.Option(None, "--out-dir", help="Write the figures here (default: each experiment's _figures/)."),
):
    """Redraw every figure the stored axes allow (9.9, 9.9-early, 9.10, 9.11, lambda, heatmap, sws) for each
    experiment; say why the others are skipped."""
    from ddescent import analysis, plots, store

    if not results.exists():
        raise FileNotFoundError(f"{results}: no such results folder")
    if results.is_dir() and (results / "runs").is_dir():
        folders = [results]
    else:
        folders = sorted({p.parent for p in results.rglob("runs") if p.is_dir()
                          and not any(part.startswith((".", "_")) for part in p.relative_to(results).parts)})
    drawn = 0
    for folder in folders:
        df = _load(folder)
        if df.empty:
            continue
        target = (out_dir / folder.name if out_dir and len(folders) > 1 else out_dir) or store.figures_dir(folder)
        for figure, reason in analysis.figure_availability(df).items():
            if reason is None:
                try:
                    typer.echo(str(plots.draw(df, figure, target / plots.filename(figure), eps=eps)))
                    drawn += 1
                    continue
                except ValueError as exc:
                    reason = str(exc)
            typer.echo(f"{folder}: figure {figure} skipped: {reason}", err=True)
    if not drawn:
        fail(f"{results}: no runs found" if not folders else f"{results}: no figure could be drawn")


@app.command("ls")
@guarded
def ls_(
    results: Path = typer.Argument(..., help="An experiment folder (results/fig9_9) or a results root."),
    eps: float = typer.Option(0.01, "--eps", help="Train error at or below eps counts as interpolating."),
    fmt: str = typer.Option("table", "--format", help="table (for people), csv or json (one record per run)."),
):
    """One line per run: status, size, n_train, λ, seed, final errors and any hyperparameter that varies; then
    each condition's interpolation threshold and test-error peak."""
    from ddescent import analysis

    if fmt not in ("table", "csv", "json"):
        fail(f"--format {fmt}: choose one of: table, csv, json")
    from ddescent import sweep as sw

    df = _load(results)
    planned = sw.planned_runs(results)
    if df.empty and not planned:
        typer.echo(f"{results}: no runs")
        return
    if fmt == "table":
        for line in analysis.summary_lines(df, eps, planned) if not df.empty else \
                [f"{len(planned)} planned run(s) not done yet"]:
            typer.echo(line)
        return
    rows = analysis.run_table(df)
    typer.echo(rows.to_csv(index=False) if fmt == "csv" else rows.to_json(orient="records", indent=1), nl=fmt == "json")


@app.command()
@guarded
def config(overrides: Optional[List[str]] = OVERRIDES):
    """Print the composed config of one run."""
    from omegaconf import OmegaConf

    from ddescent.config import compose, split_overrides, validate

    job, _ = split_overrides(list(overrides or []))
    cfg = compose(job)
    validate(cfg)
    typer.echo(OmegaConf.to_yaml(cfg, resolve=False))


app.add_typer(fetch_cli.app, name="data")


def main() -> None:
    app(prog_name="ddescent")


if __name__ == "__main__":
    sys.exit(main())
