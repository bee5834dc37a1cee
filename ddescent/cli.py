"""The `ddescent` command: parses flags, hands overrides to the sweep, reports. No training logic here."""

from __future__ import annotations

import functools
import logging
import os
import sys
import textwrap
from pathlib import Path
from typing import List, Optional

import typer

from ddescent import fetch_cli
from ddescent.errors import ConfigError

app = typer.Typer(add_completion=True, no_args_is_help=True, rich_markup_mode=None,
                  help="Train families of models over sweeps and plot double descent (Bishop & Bishop §9.3.2).",
                  epilog="Presets, config groups and sweep axes: `ddescent presets`. Examples: `ddescent sweep`, "
                         "`ddescent sweep width=8,16,32 seed=0,1 epochs=200`, `ddescent sweep experiment=fig9_10`, "
                         "`ddescent ls results/fig9_9`.")
log = logging.getLogger("ddescent")

OVERRIDES = typer.Argument(None, help="Hydra overrides: width=8,16,32 seed=0,1 experiment=fig9_9 optim.lr=1e-3 ...",
                           show_default=False)
ONE_RUN = typer.Argument(None, help="Hydra overrides with single values: width=8 seed=1 experiment=fig9_9 optim.lr=1e-3",
                         show_default=False)
CONFIG_DIR = typer.Option(None, "--config-dir", "-cd", "--config-path", "-cp",
                          help="A folder of your own presets and groups (experiment/mine.yaml, model/...), searched "
                               "before the packaged ones; repeatable. hydra.searchpath=[...] works too.")
CFG = typer.Option(None, "--cfg", "-c", help="Print the composed config instead of running: job (the first job's), "
                   "hydra (with the sweep axes and the launcher) or all.")
PACKAGE = typer.Option(None, "--package", "-p", help="With --cfg: print only this key (e.g. model, hydra.launcher).")
INFO = typer.Option(None, "--info", help="Print Hydra's information instead of running: all (a bare --info), config, "
                    "defaults, defaults-tree, plugins or searchpath.", show_default=False)
RESULTS = typer.Option(None, "--results", help="Results root (default: ./results).")
NO_MEMORY_CHECK = typer.Option(False, "--no-memory-check", help="Train even runs whose parameters alone would not fit the device's memory.")
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
        from ddescent.workers import stop_on

        try:
            with stop_on():  # SIGTERM: like Ctrl-C, in one line
                return fn(*args, **kwargs)
        except BrokenPipeError:  # `ddescent ls ... | head`: the reader has what it wanted
            sys.stdout = open(os.devnull, "w")
            return None
        except (ConfigError, FileNotFoundError, OSError) as exc:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            fail(str(exc) if isinstance(exc, ConfigError) else _os_message(exc))
        except RecursionError:  # pathlib's walk recurses once per level: a tree ~1000 folders deep ends it
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            fail("a folder tree too deep to walk (Python's recursion limit): is a folder nested hundreds of levels "
                 "deep under the folders given? (HYDRA_FULL_ERROR=1 shows where)")
        except KeyboardInterrupt as exc:
            signum = getattr(exc, "signum", None)  # (workers.Stopped)
            fail(f"{f'stopped by {exc.name}' if signum else 'interrupted'}; finished runs are kept, rerun the same "
                 "command to go on", 128 + signum if signum else EXIT_INTERRUPTED)

    return wrapper


def _os_message(exc: OSError) -> str:
    where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
    return f"{where}{exc.strerror or exc}"


def _logging(quiet: bool, verbose: bool) -> None:
    from ddescent.progress import NORMAL, QUIET as Q, VERBOSE as V, setup_logging

    setup_logging(Q if quiet else V if verbose else NORMAL)


def _overrides(overrides, config_dir, cfg, package, info, one_run=False) -> list[str] | None:
    """The overrides to run with (--config-dir and hydra.searchpath taken), or None when --cfg or --info printed
    what was asked instead (for `run`: of its one run)."""
    from ddescent import hydra_cli

    overrides = hydra_cli.overrides_with_search_path(overrides, config_dir)
    if cfg is None and info is None:
        return overrides + _quiet_hydra(overrides)
    typer.echo(hydra_cli.show(overrides, cfg, package, info, one_run), nl=False)
    return None


def _quiet_hydra(overrides: list[str]) -> list[str]:
    """Under -q (`_logging` set the ddescent logger to errors only): Hydra's own lines too. The submitter's `[HYDRA]`
    lines (its launchers log through Hydra's logging config, to stdout), and the log lines of jobs that run on this
    machine (basic, joblib: their output is this terminal's); jobs elsewhere (SLURM) keep their log files whole."""
    if logging.getLogger("ddescent").getEffectiveLevel() < logging.ERROR:
        return []
    keys = {o.lstrip("+~").split("=", 1)[0].replace("/", ".") for o in overrides}
    launcher = next((o.split("=", 1)[1] for o in overrides if o.startswith("hydra/launcher=")), "basic")
    added = []
    if not any(k.startswith("hydra.hydra_logging") for k in keys):
        added.append("hydra.hydra_logging.root.level=ERROR")
    if launcher in ("basic", "joblib") and not any(k.startswith("hydra.job_logging") for k in keys):
        added.append("hydra.job_logging.root.level=ERROR")
    return added


@app.command()
@guarded
def sweep(
    overrides: Optional[List[str]] = OVERRIDES,
    dry_run: bool = typer.Option(False, "--dry-run", help="List every job (run_id, parameters, done/pending) and the work; write nothing."),
    force: bool = typer.Option(False, "--force", help="Rerun jobs whose results already exist."),
    jobs: int = typer.Option(1, "--jobs", min=1, help="Run N jobs in parallel on this machine (joblib launcher)."),
    results: Optional[Path] = RESULTS,
    no_plot: bool = typer.Option(False, "--no-plot", help="Skip drawing the experiment's figures at the end."),
    no_memory_check: bool = NO_MEMORY_CHECK,
    no_wait: bool = typer.Option(False, "--no-wait", help="Plan, then hand the sweep to a background process and return (for cluster launchers: submit and log out); `ddescent ls` shows progress."),
    quiet: bool = QUIET,
    verbose: bool = VERBOSE,
    config_dir: Optional[List[Path]] = CONFIG_DIR,
    cfg: Optional[str] = CFG,
    package: Optional[str] = PACKAGE,
    info: Optional[str] = INFO,
    multirun: bool = typer.Option(False, "--multirun", "-m", hidden=True, help="Accepted for Hydra's habit: a sweep is a multirun."),
):
    """Run the chosen experiment preset (default fig9_9) over its sweep axes; finished runs are skipped.

    Exit codes: 0 every run done; 1 some runs failed; 2 bad input; 3 some runs are being trained by another
    live process (rerun later to draw complete figures)."""
    from ddescent import orchestrate, workers

    _logging(quiet, verbose)
    overrides = _overrides(overrides, config_dir, cfg, package, info)
    if overrides is None:
        return
    os.environ["DDESCENT_COMMAND"] = " ".join(["ddescent", "sweep", *sys.argv[2:]])
    if not dry_run and orchestrate.is_local(overrides, jobs):
        workers.start()  # workers' code is imported while the sweep is planned
    plan = orchestrate.plan(overrides, results, memory_check=not no_memory_check)
    if dry_run:
        from ddescent.planner import show_plan

        show_plan(plan)
        return
    if no_wait:
        _in_background(plan[0].spec.folder)
        return
    outcomes = orchestrate.execute(plan, overrides, force=force, parallel=jobs)
    if not no_plot:
        _quiet_figures(orchestrate.draw_figures, plan)
    orchestrate.summarize(plan, outcomes)
    _exit_for(outcomes)


def _quiet_figures(draw, *args) -> None:
    """Figures from the command line: a non-interactive backend (a terminal or a batch job has no window)."""
    import matplotlib

    matplotlib.use("Agg")
    draw(*args)


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
    typer.echo(f"running in the background; its log: {log_file}\nprogress: ddescent ls {folder}"
               f" (jobs on a cluster: ddescent status {folder})")


def _exit_for(outcomes) -> None:
    """The exit code the outcomes call for: 1 when runs failed, 3 when another live process holds some."""
    failed = [o for o in outcomes if o.status == "failed"]
    held = [o for o in outcomes if o.status == "held"]
    if failed:
        fail(f"{len(failed)} run(s) failed: " + "; ".join(f"{o.label} ({o.note})" for o in failed[:5])
             + (" ..." if len(failed) > 5 else ""), EXIT_FAILED)
    if held:
        fail(f"{len(held)} run(s) not trained here: {held[0].label} is {held[0].note}"
             + (f" (and {len(held) - 1} more)" if len(held) > 1 else ""), EXIT_HELD)


def _load(path: Path, where: str | None = None):
    """The records under `path` (unreadable files named on stderr), only the runs `where` selects."""
    from ddescent import query, store

    df = _whole_runs(store.load_quietly(path, warn=lambda line: typer.echo(line, err=True)))
    return query.where(df, where) if where and not df.empty else df


# What a run is, beyond its measurements: ls, plot and figures read every one of these (a measurement may be NaN in
# a run that diverged; these never are in a file ddescent wrote).
DESCRIBED_BY = ("experiment", "dataset", "model", "optimizer", "regularizer", "width", "n_params", "n_train", "n_test",
                "label_noise", "reg_strength", "seed", "data_seed", "epoch", "config")


def _whole_runs(df):
    """The runs whose files hold every column that says what the run was; the others (a file with only the columns
    a file must have to be read at all, from another tool or an edit) are skipped, in one warning line."""
    if df.empty:
        return df
    described = df.reindex(columns=list(DESCRIBED_BY)).notna().groupby(df["run_id"]).any()
    lacking = described[~described.all(axis=1)]
    if lacking.empty:
        return df
    columns = [c for c in DESCRIBED_BY if not lacking[c].all()]
    typer.echo(f"warning: skipping {len(lacking)} run(s) whose files lack {', '.join(columns)} (ls, plot and figures "
               f"read what a run was as well as its measurements): {', '.join(map(str, lacking.index[:5]))}"
               + (" ..." if len(lacking) > 5 else ""), err=True)
    return df[~df["run_id"].isin(lacking.index)]


WHERE = typer.Option(None, "--where", help="Only the runs whose final row satisfies this pandas query: "
                     "'epochs==500 and seed<3'; a dotted name in backquotes: '`model.block_lr`==\"equalize\"'.")
METRIC = typer.Option(None, "--metric", help="The metric on the error axis: test_error (default), test_loss, "
                      "val_error, val_loss (the train curve follows: train_error or train_loss).")
STYLE = typer.Option("paper", "--style", help="paper (matplotlib's sizes) or talk (large type and lines, for a "
                     "projector).")
DPI = typer.Option(130, "--dpi", min=20, max=1200, help="Resolution of PNG figures.")
FORMAT = typer.Option("png", "--format", help="png, svg or pdf (for --out a folder or the default place).")


def _format(fmt: str, style: str = "paper") -> str:
    """The figure format, checked with the style: one line each when they are not known."""
    from ddescent import figures

    if style not in figures.STYLES:
        fail(f"--style {style}: choose one of: {', '.join(figures.STYLES)}")
    if f".{fmt.lower().lstrip('.')}" not in figures.FORMATS:
        fail(f"--format {fmt}: choose one of: {', '.join(f.lstrip('.') for f in figures.FORMATS)}")
    return fmt.lower().lstrip(".")


@app.command()
@guarded
def run(
    overrides: Optional[List[str]] = ONE_RUN,
    force: bool = typer.Option(False, "--force", help="Rerun even if the result exists."),
    results: Optional[Path] = RESULTS,
    no_memory_check: bool = NO_MEMORY_CHECK,
    quiet: bool = QUIET,
    verbose: bool = VERBOSE,
    config_dir: Optional[List[Path]] = CONFIG_DIR,
    cfg: Optional[str] = CFG,
    package: Optional[str] = PACKAGE,
    info: Optional[str] = INFO,
):
    """Train one run with the same overrides as `sweep` (single values only: width=8, not width=8,16). As in Hydra's
    run mode, a preset's sweep axes do not apply: its own values do (width, seed, ...), then yours."""
    from ddescent import orchestrate, store

    _logging(quiet, verbose)
    overrides = _overrides(overrides, config_dir, cfg, package, info, one_run=True)
    if overrides is None:
        return
    os.environ["DDESCENT_COMMAND"] = " ".join(["ddescent", "run", *sys.argv[2:]])
    plan = orchestrate.plan(overrides, results, memory_check=not no_memory_check, one_run=True)
    job = plan[0]
    path = store.run_path(job.spec.folder, job.spec.run_id)
    if job.done and not force:
        typer.echo(f"already done: {path} (use --force to rerun)")
        return
    outcomes = orchestrate.execute(plan, overrides, force=force)
    orchestrate.finish(plan, outcomes)
    _exit_for(outcomes)
    typer.echo(f"{outcomes[0].status}: {path}")


def _figure_help() -> str:
    from ddescent import figures

    return "Which figure: auto (the most specific one the records allow), " + ", ".join(
        f"{name} ({fig.summary})" for name, fig in figures.figures().items()) + "."


@app.command()
@guarded
def plot(
    results: Path = typer.Argument(Path("results"), help="An experiment folder (results/fig9_9) or a results root (default: ./results)."),
    figure: str = typer.Option("auto", "--figure", help="Which figure (see the list below)."),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="Image file, .png, .svg or .pdf, or a folder (default: RESULTS/_figures/fig<figure>.png)."),
    eps: float = typer.Option(0.01, "--eps", help="Train error at or below eps counts as interpolating."),
    widths: Optional[str] = typer.Option(None, "--widths", help="Comma list of widths: the lines of 9.10 (default: small, "
                                         "intermediate, large), the panels of lambda, the widths shown by the others."),
    where: Optional[str] = WHERE,
    metric: Optional[str] = METRIC,
    style: str = STYLE,
    dpi: int = DPI,
    fmt: str = FORMAT,
):
    """Draw a figure from saved results."""
    import matplotlib

    from ddescent import figures, store

    matplotlib.use("Agg")
    if figure != "auto" and figure not in figures.figures():
        fail(f"--figure {figure}: choose one of: auto, {', '.join(figures.figures())}")
    fmt = _format(fmt, style)
    folders = store.experiment_folders(results) if results.is_dir() else []
    if len(folders) > 1:
        names = ", ".join(str(f.relative_to(results)) for f in folders[:6]) + (", ..." if len(folders) > 6 else "")
        fail(f"{results} holds {len(folders)} experiments ({names}): plot one of them ({folders[0]}), or draw "
             f"every figure of each with `ddescent figures {results}`")
    df = _load(results, where)
    if df.empty:
        fail(f"{results}: no runs found")
    kwargs = {"eps": eps, "metric": metric, "style": style, "dpi": dpi}
    if widths:
        try:
            kwargs["widths"] = [float(w) for w in widths.split(",") if w.strip()]
        except ValueError:
            fail(f"--widths {widths}: expected a comma list of numbers such as 8,16,64")
    target = out or store.figures_dir(results)
    if target.suffix == "":  # a folder: the figure's own name, in the format asked for
        target = target / Path(figures.filename(figures.choose(df, figure) if figure == "auto" else figure)).with_suffix(f".{fmt}")
    try:
        path = figures.draw(df, figure, target, **kwargs)
    except ValueError as exc:
        fail(str(exc))
    typer.echo(str(path))


@app.command("figures")
@guarded
def figures_(
    results: Path = typer.Argument(Path("results"), help="An experiment folder (results/fig9_9) or a results root (default: ./results)."),
    eps: float = typer.Option(0.01, "--eps", help="Train error at or below eps counts as interpolating."),
    out_dir: Optional[Path] = typer.Option(None, "--out-dir", help="Write the figures here (default: each experiment's _figures/)."),
    where: Optional[str] = WHERE,
    metric: Optional[str] = METRIC,
    style: str = STYLE,
    dpi: int = DPI,
    fmt: str = FORMAT,
):
    """Redraw every figure the stored records allow for each experiment; say why the others are skipped."""
    import matplotlib

    from ddescent import figures, store

    matplotlib.use("Agg")
    fmt = _format(fmt, style)
    if not results.exists():
        raise FileNotFoundError(f"{results}: no such results folder")
    folders = store.experiment_folders(results)
    drawn = runs = 0
    for folder in folders:
        df = _load(folder)
        if df.empty:
            continue
        runs += 1
        if where:
            from ddescent import query

            df = query.where(df, where, empty_ok=True)
            if df.empty:
                continue  # (this experiment has none of the runs asked for)
        target = (out_dir / folder.name if out_dir and len(folders) > 1 else out_dir) or store.figures_dir(folder)
        for name, reason in figures.availability(df).items():
            if reason is None:
                try:
                    typer.echo(str(figures.draw(df, name, target / Path(figures.filename(name)).with_suffix(f".{fmt}"),
                                                eps=eps, metric=metric, style=style, dpi=dpi)))
                    drawn += 1
                    continue
                except ValueError as exc:
                    reason = str(exc)
            typer.echo(f"{folder}: figure {name} skipped: {reason}", err=True)
    if not drawn:
        fail(f"{results}: no runs found" if not runs else f"{results}: no figure could be drawn")


@app.command("ls")
@guarded
def ls_(
    results: Path = typer.Argument(Path("results"), help="An experiment folder (results/fig9_9) or a results root (default: ./results)."),
    eps: float = typer.Option(0.01, "--eps", help="Train error at or below eps counts as interpolating."),
    fmt: str = typer.Option("table", "--format", help="table (for people), csv or json (one record per run)."),
    where: Optional[str] = WHERE,
    stale_: bool = typer.Option(False, "--stale", help="Only the runs the folder's preset would no longer plan "
                                "(`ddescent gc RESULTS --stale` moves them to _stale/)."),
    preset: Optional[str] = typer.Option(None, "--preset", help="With --stale: the preset to compare with "
                                         "(default: the experiment the runs were stored under)."),
):
    """One line per run: status, size, n_train, λ, seed, final errors and any hyperparameter that varies; then
    each condition's interpolation threshold and test-error peak."""
    from ddescent import listing, store

    if fmt not in ("table", "csv", "json"):
        fail(f"--format {fmt}: choose one of: table, csv, json")
    if stale_:
        from ddescent import stale

        folders = store.experiment_folders(results)
        if not folders:
            fail(f"{results}: no experiment folders here")
        for folder in folders:
            rows = stale.stale(folder, preset)
            typer.echo(f"{folder}: {len(rows)} run(s) the preset would not plan")
            for r in rows.to_dict("records"):
                typer.echo(f"  {r['run_id']}  {r['model']} width={r['width']:g} n_train={r['n_train']} "
                           f"λ={r['reg_strength']:g} seed={r['seed']} epochs={r['epoch']}")
        return
    folders = store.experiment_folders(results) if results.is_dir() else []
    if fmt == "table" and len(folders) > 1:  # a root of several experiments: a summary each, not one mixed table
        for folder in folders:
            typer.echo(f"== {folder.relative_to(results)}")
            _ls_table(folder, eps, where)
        return
    if fmt == "table":
        _ls_table(results, eps, where)
        return
    df = _load(results, where)
    if df.empty:
        typer.echo(f"{results}: no runs")
        return
    rows = listing.run_table(df)
    typer.echo(rows.to_csv(index=False) if fmt == "csv" else rows.to_json(orient="records", indent=1), nl=fmt == "json")


def _ls_table(results: Path, eps: float, where: str | None) -> None:
    from ddescent import listing, query

    df = _load(results)
    if where and not df.empty:
        df = query.where(df, where, empty_ok=True)
    planned = {}
    if not where and next(Path(results).rglob(".sweep/packs/*.json"), None) is not None:
        from ddescent import launch  # (torch: only where a launcher still holds packs)

        planned = launch.planned_runs(results)
    if df.empty and not planned:
        typer.echo(f"{results}: no runs" + (" match --where" if where else ""))
        return
    for line in listing.summary_lines(df, eps, planned) if not df.empty else \
            [f"{len(planned)} planned run(s) not done yet"]:
        typer.echo(line)


@app.command()
@guarded
def status(
    results: Path = typer.Argument(Path("results"), help="An experiment folder or a results root (default: ./results)."),
):
    """The runs a sweep handed to SLURM that are not done yet (a `--no-wait` sweep, or one still waiting): each
    with its job id, the job's state (from sacct, or squeue; "unknown" when neither knows it), its last checkpointed
    epoch and the training time left at the speed it has trained so far; and how many runs are done."""
    from ddescent import slurm

    if not results.exists():
        fail(f"{results}: no such folder")
    folders = slurm.experiment_folders(results)
    if not folders:
        fail(f"{results}: no experiment folders here")
    quiet = []  # on a root of several experiments: those with nothing pending in one line
    for folder in folders:
        lines = slurm.status_lines(folder)
        if len(folders) > 1 and len(lines) == 1 and "nothing pending" in lines[0]:
            quiet.append(folder)
            continue
        for line in lines:
            typer.echo(line)
    if quiet:
        typer.echo(f"{results}: nothing pending in {len(quiet)} other experiment(s)" if len(quiet) < len(folders)
                   else f"{results}: nothing pending in its {len(quiet)} experiment(s)")


@app.command()
@guarded
def gc(
    results: Path = typer.Argument(Path("results"), help="An experiment folder or a results root (default: ./results)."),
    stale_: bool = typer.Option(False, "--stale", help="Move the runs the preset would no longer plan to _stale/."),
    preset: Optional[str] = typer.Option(None, "--preset", help="The preset to compare with (default: the "
                                         "experiment the runs were stored under)."),
):
    """Tidy a results folder without deleting anything: `--stale` moves the runs its preset no longer asks for
    (see `ddescent ls --stale`) to _stale/ beside runs/; moving them back restores them."""
    from ddescent import stale, store

    if not stale_:
        fail("gc: say what to move: --stale (the runs the preset would no longer plan)")
    folders = store.experiment_folders(results)
    if not folders:
        fail(f"{results}: no experiment folders here")
    for folder in folders:
        moved = stale.set_aside(folder, stale.stale(folder, preset)["run_id"])
        typer.echo(f"{folder}: moved {len(moved)} run(s) to {folder / '_stale'}")


@app.command()
@guarded
def report(
    results: Path = typer.Argument(Path("results"), help="A results root or an experiment folder (default: ./results)."),
    out: Path = typer.Option(Path("report.html"), "-o", "--out", help="The HTML file to write."),
    eps: float = typer.Option(0.01, "--eps", help="Train error at or below eps counts as interpolating."),
    where: Optional[str] = WHERE,
):
    """One self-contained HTML file (figures inline, no network requests) with every experiment's figures,
    verdicts, run table (sortable), what varies, each run's config and provenance: to send or to archive."""
    import matplotlib

    from ddescent import html_report

    matplotlib.use("Agg")
    df = _load(results, where)
    if df.empty:
        fail(f"{results}: no runs found")
    typer.echo(str(html_report.write(df, out, eps=eps)))


@app.command()
@guarded
def compare(
    a: Path = typer.Argument(..., help="An experiment folder (results/fig9_9) or a results root."),
    b: Path = typer.Argument(..., help="The other one (results/fig9_9_cnn1d)."),
    on: str = typer.Option("width", "--on", help="The axis: width, n_train, reg_strength or epoch."),
    out: Path = typer.Option(Path("compare.png"), "-o", "--out", help="The figure (.png, .svg or .pdf)."),
    html: Optional[Path] = typer.Option(None, "--html", help="Also write the comparison as a self-contained HTML file."),
    where: Optional[str] = WHERE,
):
    """Two experiments on one figure along one axis, labelled by what differs between their configs; prints the
    config diff and how each landmark of the curve moved (with 95% intervals over the seeds)."""
    import matplotlib
    import matplotlib.pyplot as plt

    from ddescent import compare as comparing, html_report

    matplotlib.use("Agg")
    if out.suffix.lower() not in (".png", ".svg", ".pdf"):
        fail(f"-o {out}: write .png, .svg or .pdf")
    frames = []
    for path in (a, b):
        df = _load(path, where)
        if df.empty:
            fail(f"{path}: no runs found")
        frames.append(df)
    c = comparing.compare(*frames, on=on, names=(a.name, b.name))
    for line in c.lines():
        typer.echo(line)
    fig = comparing.draw(c)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=130, bbox_inches="tight", pad_inches=0.15)
        if html is not None:
            html_report.write_comparison(c, fig, html)
            typer.echo(str(html))
    finally:
        plt.close(fig)
    typer.echo(str(out))


@app.command()
@guarded
def config(overrides: Optional[List[str]] = OVERRIDES, config_dir: Optional[List[Path]] = CONFIG_DIR):
    """Print the composed config of one run (the first job of a sweep), then the sweep's axes and its launcher.
    Needs no dataset files: what needs them is checked when a run is planned."""
    from ddescent import hydra_cli

    typer.echo(hydra_cli.config_text(hydra_cli.overrides_with_search_path(overrides, config_dir)))


@app.command()
@guarded
def presets(config_dir: Optional[List[Path]] = CONFIG_DIR):
    """The experiment presets with what each reproduces, the options of every config group, the figures, and the
    sweep axes."""
    from ddescent import figures, hydra_cli
    from ddescent.config import GROUPS

    hydra_cli.overrides_with_search_path([], config_dir)
    for group in GROUPS:
        options = hydra_cli.group_options(group)
        if group == "experiment":
            typer.echo("presets (experiment=NAME):")
            for name, text in options:  # the whole description, wrapped under its name (paths and names whole)
                typer.echo(textwrap.fill(text, 118, initial_indent=f"  {name:28} ", subsequent_indent=" " * 31,
                                         break_long_words=False, break_on_hyphens=False))
        else:
            typer.echo(f"{group}=: " + ", ".join(name for name, _ in options))
    typer.echo("figures (--figure NAME): " + ", ".join(figures.figures()))
    typer.echo("sweep axes (top-level keys every group reads): width, epochs, n_train, label_noise, reg_strength, "
               "seed, data_seed, val_fraction; anything deeper is an ordinary override (optim.lr=1e-3)")


def _version(value: bool) -> None:
    if value:
        from ddescent.version import __version__

        typer.echo(f"ddescent {__version__}")
        raise typer.Exit()


@app.callback()
def _main(ctx: typer.Context, version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                                          help="Print the version and exit.")):
    """Train families of models over sweeps and plot double descent (Bishop & Bishop §9.3.2)."""
    if ctx.invoked_subcommand == "plot":  # the figures are components: their list is read from the registry
        for param in ctx.command.commands["plot"].params:
            if param.name == "figure":
                param.help = _figure_help()


app.add_typer(fetch_cli.app, name="data")


def main() -> None:
    app(prog_name="ddescent", args=_bare_info(sys.argv[1:]))


def _bare_info(args: list[str]) -> list[str]:
    """Hydra's `--info` alone means `--info all`; a typer option cannot take an optional value, so say it here (an
    override or an option after it is not its value)."""
    args = list(args)
    for i in reversed(range(len(args))):
        if args[i] == "--info" and (i + 1 == len(args) or "=" in args[i + 1] or args[i + 1].startswith("-")):
            args.insert(i + 1, "all")
    return args


if __name__ == "__main__":
    sys.exit(main())
