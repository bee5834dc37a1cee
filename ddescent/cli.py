"""The `ddescent` command: parses flags, hands overrides to the sweep, reports. No training logic here."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import List, Optional

import typer

from ddescent import ConfigError

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Train families of models over sweeps and plot double descent (Bishop & Bishop §9.3.2).")

OVERRIDES = typer.Argument(None, help="Hydra overrides: width=8,16,32 seed=0,1 experiment=fig9_9 optim.lr=1e-3 ...",
                           show_default=False)
RESULTS = typer.Option(None, "--results", help="Results root (default: ./results).")


def fail(message: str) -> None:
    typer.echo(f"ddescent: error: {message}", err=True)
    raise typer.Exit(2)


def guarded(fn):
    """Bad input ends in one line and exit code 2; HYDRA_FULL_ERROR=1 shows the traceback instead."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (ConfigError, FileNotFoundError) as exc:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            fail(str(exc))

    return wrapper


@app.command()
@guarded
def sweep(
    overrides: Optional[List[str]] = OVERRIDES,
    dry_run: bool = typer.Option(False, "--dry-run", help="List every job (run_id, parameters, done/pending) and the work; write nothing."),
    force: bool = typer.Option(False, "--force", help="Rerun jobs whose results already exist."),
    jobs: int = typer.Option(1, "--jobs", min=1, help="Run N jobs in parallel on this machine (joblib launcher)."),
    results: Optional[Path] = RESULTS,
    no_plot: bool = typer.Option(False, "--no-plot", help="Skip drawing the experiment's figures at the end."),
):
    """Run the chosen experiment preset (default fig9_9) over its sweep axes; finished runs are skipped."""
    from ddescent import workers

    overrides = list(overrides or [])
    if not dry_run and jobs == 1 and not any(o.lstrip("+~").startswith("hydra") for o in overrides):
        workers.start()  # workers' code is imported while the sweep is planned
    from ddescent import sweep as sw

    plan = sw.plan(overrides, str(results) if results else None)
    if dry_run:
        sw.show_plan(plan)
        return
    todo = [j for j in plan if force or not j.done]
    first = plan[0].config
    typer.echo(f"{first['name']}: {len(plan)} jobs, {len(plan) - len(todo)} already done, {len(todo)} to run "
               f"-> {Path(first['results']) / first['name']}", err=True)
    if todo:
        sw.clean(plan)
        pack_list = sw.packs(todo)
        _, hydra_overrides = sw.split_overrides(overrides)
        if jobs > 1 or hydra_overrides:
            sw.run_hydra(pack_list, hydra_overrides, jobs, force)
        else:
            statuses = sw.run_local(pack_list, first["progress"], force=force)
            if "diverged" in statuses:
                typer.echo(f"{statuses.count('diverged')} run(s) diverged (recorded with status 'diverged')", err=True)
    if first.get("plot", True) and not no_plot:
        _draw_figures(Path(first["results"]) / first["name"], first.get("figures") or ["9.9"], first["train"]["threshold_eps"])


def _load(path: Path):
    """The records under `path`; files that cannot be read are skipped with a one-line warning each."""
    from ddescent import store

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = store.load(path)
    for w in caught:
        typer.echo(f"warning: {w.message}", err=True)
    return df


def _draw_figures(folder: Path, figures: list[str], eps: float) -> None:
    from ddescent import plots

    df = _load(folder)
    for figure in figures:
        try:
            out = plots.draw(df, figure, folder / f"fig{figure.replace('.', '_')}.png", eps=eps)
            typer.echo(f"figure {figure}: {out}", err=True)
        except ValueError as exc:
            typer.echo(f"figure {figure} skipped: {exc}", err=True)


@app.command()
@guarded
def run(
    overrides: Optional[List[str]] = OVERRIDES,
    force: bool = typer.Option(False, "--force", help="Rerun even if the result exists."),
    results: Optional[Path] = RESULTS,
):
    """Train one run with the same overrides as `sweep` (no comma lists)."""
    from ddescent import sweep as sw

    plan = sw.plan(list(overrides or []), str(results) if results else None)
    if len(plan) != 1:
        fail(f"these overrides make {len(plan)} runs; use `ddescent sweep` for more than one")
    job = plan[0]
    from ddescent import store

    path = store.run_path(job.config["results"], job.config["name"], job.run_id)
    if job.done and not force:
        typer.echo(f"already done: {path} (use --force to rerun)")
        return
    statuses = sw.run_local([[job]], job.config["progress"], force=force)
    typer.echo(f"{statuses[0]}: {path}" if statuses else f"skipped: another live sweep is training {path.stem}")


FIGURE_HELP = ("Which figure: 9.9 (model-wise: train/test error vs width), 9.9-early (test error vs width, early-stopped "
               "at the epoch of lowest val_loss), 9.10 (epoch-wise: test error vs epochs), 9.11 (sample-wise: test "
               "loss vs width, a line per n_train), lambda (train/test error vs 1/λ at a fixed width), heatmap "
               "(test error over width × epochs), sws (final weights under the learned mixture prior).")


@app.command()
@guarded
def plot(
    results: Path = typer.Argument(..., help="An experiment folder (results/fig9_9) or a results root."),
    figure: str = typer.Option("9.9", "--figure", help=FIGURE_HELP),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="Image file (default: RESULTS/fig<figure>.png)."),
    eps: float = typer.Option(0.01, "--eps", help="Train error at or below eps counts as interpolating."),
    widths: Optional[str] = typer.Option(None, "--widths", help="Comma list of widths: the lines of 9.10 (default: small, "
                                         "intermediate, large), the panels of lambda, the widths shown by the others."),
):
    """Draw a figure from saved results."""
    from ddescent import plots

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
        path = plots.draw(df, figure, out or results / plots.filename(figure), **kwargs)
    except ValueError as exc:
        fail(str(exc))
    typer.echo(str(path))


@app.command()
@guarded
def figures(
    results: Path = typer.Argument(..., help="An experiment folder (results/fig9_9) or a results root."),
    eps: float = typer.Option(0.01, "--eps", help="Train error at or below eps counts as interpolating."),
):
    """Redraw every figure the stored axes allow (9.9, 9.9-early, 9.10, 9.11, lambda, heatmap, sws) into each
    experiment folder; say why the others are skipped."""
    from ddescent import analysis, plots

    if not results.exists():
        raise FileNotFoundError(f"{results}: no such results folder")
    if results.is_dir() and (results / "runs").is_dir():
        folders = [results]
    else:
        folders = sorted({p.parent for p in results.rglob("runs") if p.is_dir()})
    drawn = 0
    for folder in folders:
        df = _load(folder)
        if df.empty:
            continue
        for figure, reason in analysis.figure_availability(df).items():
            if reason is None:
                try:
                    typer.echo(str(plots.draw(df, figure, folder / plots.filename(figure), eps=eps)))
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
):
    """One line per run: status, size, n_train, λ, seed, final errors; then each condition's threshold."""
    from ddescent import analysis

    df = _load(results)
    if df.empty:
        typer.echo(f"{results}: no runs")
        return
    rows = analysis.final(df).sort_values(["experiment", "model", "n_train", "reg_strength", "width", "seed"])
    typer.echo(f"{'run_id':12}  {'status':8}  {'model':8} {'width':>7} {'params':>9} {'n_train':>7} {'λ':>8} {'seed':>4} "
               f"{'epoch':>6} {'train_err':>9} {'test_err':>8}")
    for r in rows.itertuples():
        typer.echo(f"{r.run_id:12}  {r.status:8}  {r.model:8} {r.width:7g} {r.n_params:9d} {r.n_train:7d} "
                   f"{r.reg_strength:8g} {r.seed:4d} {r.epoch:6d} {r.train_error:9.4f} {r.test_error:8.4f}")
    for cond, part in analysis.conditions(analysis.complete(rows)):
        threshold = analysis.interpolation_threshold(part, eps)
        peak = analysis.second_peak(part, threshold)
        typer.echo(f"{analysis.describe(cond)}: interpolation threshold width = "
                   f"{'none reached' if threshold is None else f'{threshold:g}'} (train error ≤ {eps:g}); "
                   f"test error peak {peak['test_error_mean']:.3f} at width {peak['width']:g}")
    for cond, part in analysis.conditions(analysis.complete(rows), without=("n_train",)):
        if part["n_train"].nunique() < 2:
            continue
        emc = analysis.effective_model_complexity(part, eps)
        typer.echo(f"{analysis.describe(cond)}: effective model complexity (largest n_train with train error ≤ {eps:g}) "
                   "by width: " + ", ".join(f"{w:g}: {'none' if n is None else n}" for w, n in emc.items()))


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


def main() -> None:
    app(prog_name="ddescent")


if __name__ == "__main__":
    sys.exit(main())
