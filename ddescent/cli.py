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
INFO = typer.Option(None, "--info", help="Print Hydra's information instead of running: all, config, defaults, "
                    "defaults-tree, plugins or searchpath.", show_default=False)
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
    from ddescent import workers

    _logging(quiet, verbose)
    overrides = _hydra_habits(overrides, config_dir, cfg, package, info)
    if overrides is None:
        return
    os.environ["DDESCENT_COMMAND"] = " ".join(["ddescent", "sweep", *sys.argv[2:]])
    local = jobs == 1 and not any(o.startswith(("hydra/launcher=", "hydra.launcher.")) for o in overrides)
    if not dry_run and local:
        workers.start()  # workers' code is imported while the sweep is planned
    from ddescent import planner

    plan = planner.plan(overrides, str(results) if results else None, memory_check=not no_memory_check)
    if dry_run:
        planner.show_plan(plan)
        return
    if no_wait:
        _in_background(plan[0].spec.folder)
        return
    outcomes = _train(plan, overrides, jobs, force, local)
    first = plan[0].spec
    if first.config.get("plot", True) and not no_plot:
        _draw_figures(first.folder, first.config.get("figures") or ["9.9"], first.config["train"]["threshold_eps"])
    _finish(plan, outcomes)


def _hydra_habits(overrides, config_dir, cfg, package, info) -> list[str] | None:
    """Hydra's own flags: --config-dir (and hydra.searchpath), --cfg [-p], --info. Returns the overrides to run
    with, or None when a flag printed what was asked instead."""
    from ddescent.config import take_search_path, use_config_dirs

    use_config_dirs([str(d) for d in config_dir or []])
    overrides = take_search_path(list(overrides or []))
    if cfg is None and info is None:
        return overrides
    from ddescent.config import expand, hydra_app, split_overrides

    if cfg is not None and cfg not in ("job", "hydra", "all"):
        fail(f"--cfg {cfg}: choose one of: job, hydra, all")
    lines = expand(overrides)  # (a bad override fails here, in one line)
    first = lines[0] + split_overrides(overrides)[1]
    if len(lines) > 1:
        typer.echo(f"# the config of job 1 of {len(lines)}; the sweep axes are under hydra.sweeper.params")
    try:
        if cfg is None:
            hydra_app().hydra.show_info(info, config_name="config", overrides=first)
            return None
    except Exception as exc:  # Hydra's own errors: one line
        from ddescent.config import _hydra_message

        raise ConfigError(_hydra_message(exc)) from exc
    typer.echo(_show_cfg(first, cfg, package, _sweep_axes(overrides)))
    return None


def _show_cfg(overrides: list[str], part: str, package: str | None, axes: dict[str, str]) -> str:
    """What Hydra's --cfg prints, with the sweep axes the command line makes (not only the preset's)."""
    from omegaconf import OmegaConf, open_dict

    from ddescent.config import compose

    node = compose(overrides, hydra=True)
    with open_dict(node):
        node.hydra.sweeper.params = axes
    body = OmegaConf.to_container(node, resolve=False)
    if part == "job":
        body.pop("hydra")
    elif part == "hydra":
        body = {"hydra": body["hydra"]}
    if package:
        selected = OmegaConf.select(OmegaConf.create(body), package)
        if selected is None:
            raise ConfigError(f"--package {package}: no such key in the {part} config")
        body = OmegaConf.to_container(selected) if OmegaConf.is_config(selected) else selected
        return f"# @package {package}\n" + (OmegaConf.to_yaml(body) if isinstance(body, (dict, list)) else str(body))
    return OmegaConf.to_yaml(body)


def _sweep_axes(overrides: list[str]) -> dict[str, str]:
    """The sweep axes of these overrides: the preset's, replaced key by key by the command line's."""
    from omegaconf import OmegaConf

    from ddescent.config import compose, split_overrides

    job, hydra_overrides = split_overrides(overrides)
    single = [o for o in job if "," not in o.split("=", 1)[-1]]
    params = dict(OmegaConf.select(compose(single + hydra_overrides, hydra=True), "hydra.sweeper.params") or {})
    params.update({o.split("=", 1)[0]: o.split("=", 1)[1] for o in job if "," in o.split("=", 1)[-1]})
    return {k: str(v) for k, v in params.items()}


def _axes(overrides: list[str]) -> str:
    """The same as the body of a Hydra dict override."""
    from ddescent.config import hydra_quote

    return ",".join(f"{k}:{hydra_quote(v)}" for k, v in _sweep_axes(overrides).items())


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
    from ddescent import launch, packing, planner, report
    from ddescent.config import split_overrides

    todo = [j for j in plan if force or not j.done]
    first = plan[0].spec
    log.info("%s: %d jobs, %d already done, %d to run -> %s", first.name, len(plan), len(plan) - len(todo),
             len(todo), first.folder)
    if not todo:
        return []
    launch.prepare(plan)
    pack_list = planner.packs(todo, jobs if jobs > 1 else None if local else 1)
    reporter = report.Reporter({j.spec.run_id: j.label for j in todo},
                               {j.spec.run_id: packing.pack_time([j]) for j in todo},
                               bars=report.bars_wanted(first.config.get("progress", "auto")))
    try:
        if local:
            return launch.run_local(pack_list, reporter, force=force)
        _, hydra_overrides = split_overrides(overrides)
        returns = launch.run_hydra(pack_list, hydra_overrides, jobs, force)
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
    """Train one run with the same overrides as `sweep` (single values only: width=8, not width=8,16)."""
    from ddescent import launch, planner, report, store
    from ddescent.runner import execute

    _logging(quiet, verbose)
    overrides = _hydra_habits(overrides, config_dir, cfg, package, info)
    if overrides is None:
        return
    os.environ["DDESCENT_COMMAND"] = " ".join(["ddescent", "run", *sys.argv[2:]])
    plan = planner.plan(overrides, str(results) if results else None, memory_check=not no_memory_check)
    if len(plan) != 1:
        fail(f"these overrides make {len(plan)} runs; use `ddescent sweep` for more than one")
    job = plan[0]
    path = store.run_path(job.spec.folder, job.spec.run_id)
    if job.done and not force:
        typer.echo(f"already done: {path} (use --force to rerun)")
        return
    launch.prepare(plan)
    reporter = report.Reporter({job.spec.run_id: job.label},
                               bars=report.bars_wanted(job.spec.config.get("progress", "auto")))
    try:
        outcome = execute([job.spec], reporter, force)[0]
    finally:
        reporter.close()
    if outcome.status == "held":
        fail(f"{job.label} is {outcome.note}", EXIT_HELD)
    typer.echo(f"{outcome.status}: {path}")


FIGURE_HELP = ("Which figure: auto (the most specific one the results allow), 9.9 (model-wise: train/test error vs width), 9.9-early (test error vs width, early-stopped "
               "at the epoch of lowest val_loss), 9.10 (epoch-wise: test error vs epochs), 9.11 (sample-wise: test "
               "loss vs width, a line per n_train), lambda (train/test error vs 1/λ at a fixed width), heatmap "
               "(test error over width × epochs), sws (final weights under the learned mixture prior).")


@app.command()
@guarded
def plot(
    results: Path = typer.Argument(..., help="An experiment folder (results/fig9_9) or a results root."),
    figure: str = typer.Option("auto", "--figure", help=FIGURE_HELP),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="Image file, .png, .svg or .pdf, or a folder (default: RESULTS/_figures/fig<figure>.png)."),
    eps: float = typer.Option(0.01, "--eps", help="Train error at or below eps counts as interpolating."),
    widths: Optional[str] = typer.Option(None, "--widths", help="Comma list of widths: the lines of 9.10 (default: small, "
                                         "intermediate, large), the panels of lambda, the widths shown by the others."),
):
    """Draw a figure from saved results."""
    from ddescent import plots, store

    if figure != "auto" and figure not in plots.DRAW:
        fail(f"--figure {figure}: choose one of: auto, {', '.join(plots.DRAW)}")
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
        path = plots.draw(df, figure, out or store.figures_dir(results), **kwargs)
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
    from ddescent import launch

    df = _load(results)
    planned = launch.planned_runs(results)
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
def config(overrides: Optional[List[str]] = OVERRIDES, config_dir: Optional[List[Path]] = CONFIG_DIR):
    """Print the composed config of one run (the first job of a sweep), then the sweep's axes and its launcher."""
    from omegaconf import OmegaConf

    from ddescent.config import compose, expand, split_overrides, validate

    overrides = _hydra_habits(overrides, config_dir, None, None, None)
    lines = expand(overrides)
    cfg = compose(lines[0] + split_overrides(overrides)[1], hydra=True)
    validate(cfg)
    launcher = cfg.hydra.launcher
    body = OmegaConf.to_container(cfg, resolve=False)
    body.pop("hydra")
    typer.echo(OmegaConf.to_yaml(body))
    typer.echo(f"# sweep: {len(lines)} job(s) over " + "; ".join(f"{k}={v}" for k, v in _sweep_axes(overrides).items()))
    typer.echo(f"# launcher: {launcher._target_.rsplit('.', 1)[-1]} ("
               + ", ".join(f"{k}={v}" for k, v in OmegaConf.to_container(launcher, resolve=False).items()
                           if k != "_target_" and v not in (None, {}, [])) + ")")


@app.command()
@guarded
def presets(config_dir: Optional[List[Path]] = CONFIG_DIR):
    """The experiment presets with what each reproduces, the options of every config group, and the sweep axes."""
    from ddescent.config import GROUPS, take_search_path, use_config_dirs

    use_config_dirs([str(d) for d in config_dir or []])
    take_search_path([])
    for group in GROUPS:
        options = _group_options(group)
        if group == "experiment":
            typer.echo("presets (experiment=NAME):")
            for name, text in options:
                typer.echo(f"  {name:28} {text}")
        else:
            typer.echo(f"{group}=: " + ", ".join(name for name, _ in options))
    typer.echo("sweep axes (top-level keys every group reads): width, epochs, n_train, label_noise, reg_strength, "
               "seed, data_seed, val_fraction; anything deeper is an ordinary override (optim.lr=1e-3)")


def _group_options(group: str) -> list[tuple[str, str]]:
    """(option, the first line of its header) of a config group, from every folder on the search path."""
    import importlib.resources

    from ddescent.config import SEARCH_PATH, hydra_app

    folders = [Path(p[len("file://"):]) for p in SEARCH_PATH if p.startswith("file://")]
    folders.append(Path(str(importlib.resources.files("ddescent.conf"))))
    out = []
    for name in hydra_app().config_loader().get_group_options(group):
        path = next((f / group / f"{name}.yaml" for f in folders if (f / group / f"{name}.yaml").is_file()), None)
        header = [line[1:].strip() for line in path.read_text().splitlines() if line.startswith("#")] if path else []
        out.append((name, next((h for h in header if h and not h.startswith("@package")), "")))
    return out


def _version(value: bool) -> None:
    if value:
        import ddescent

        typer.echo(f"ddescent {ddescent.__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")):
    """Train families of models over sweeps and plot double descent (Bishop & Bishop §9.3.2)."""


app.add_typer(fetch_cli.app, name="data")


def main() -> None:
    app(prog_name="ddescent")


if __name__ == "__main__":
    sys.exit(main())
