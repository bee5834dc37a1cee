"""What `ddescent ls` prints: a line per run, then each curve's interpolation threshold and test-error peak, the
effective model complexity where n_train varies, and each run's landmarks over training. The curve maths is
ddescent.analysis; this module only words it."""

from __future__ import annotations

import pandas as pd

from ddescent.analysis import (complete, conditions, describe, describe_agreement, describe_landmarks,
                               double_descends, effective_model_complexity, final, identity_columns,
                               interpolation_threshold, landmarks_of_run, missing, short_names, show,
                               theory_agreement, theory_modelwise, theory_samplewise, threshold_rule, variants,
                               verdict, varying)


def run_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per run at its last evaluation, with what identifies it and what it scored (for `ls --format`)."""
    rows = final(df)
    lead = ["run_id", "experiment", "status", "dataset", "task", "model", "optimizer", "regularizer", "width", "n_params",
            "n_train", "label_noise", "reg_strength", "seed", "data_seed", "epoch", "train_error", "test_error",
            "train_loss", "test_loss", "val_error", "val_loss"]
    keep = [c for c in lead if c in rows] + [c for c in identity_columns(rows) if c not in lead] + \
        [c for c in ("started_at", "finished_at", "host", "git_commit", "ddescent_version", "device") if c in rows]
    return rows[keep].sort_values([c for c in ("experiment", "model", "n_train", "reg_strength", "width", "seed")
                                   if c in rows]).reset_index(drop=True)


EPOCHWISE_RUNS = 40  # `ls` reads each run's curve over training when a table has at most this many runs


def epochwise_lines(df: pd.DataFrame, finals: pd.DataFrame, extra: list[str], names: dict[str, str]) -> list[str]:
    """Each run's test error over training (steps): first minimum, peak, second minimum, and whether that is a
    double descent under the one definition (ddescent.analysis); then, for every curve with several seeds, the
    verdict across them."""
    done = complete(finals)
    trained = complete(df)
    if done.empty or len(done) > EPOCHWISE_RUNS or trained.groupby("run_id")["epoch"].nunique().max() < 5:
        return []
    marks = {r["run_id"]: landmarks_of_run(trained[trained["run_id"] == r["run_id"]]) for r in done.to_dict("records")}
    if all(lm["peak"] is None for lm in marks.values()):  # nothing to tell run by run
        return [f"test error over training: no bump in any of the {len(marks)} runs"]
    out = ["test error over training, run by run (steps):"]
    for r in done.to_dict("records"):
        lm = marks[r["run_id"]]
        label = f"{r['model']} width {r['width']:g} seed {int(r['seed'])}" + \
            "".join(f" {names[c]}={show(r[c])}" for c in extra if not missing(r[c]))
        out.append(f"  {r['run_id']} {label}: {describe_landmarks(lm)}"
                   + ("; double descent" if double_descends(lm) else ""))
    for cond, part in conditions(trained):
        for label, curve in variants(part, "width"):
            for width, runs in curve.groupby("width", sort=True):
                v = verdict(runs, "step")
                out.append(f"over training, {describe(cond, runs)}, width {width:g}{f' ({label})' if label else ''}: "
                           f"{v.text()}")
    return out


def _sortable(column: pd.Series) -> pd.Series:
    """Numbers sort as numbers; anything else (lists, None, text) by how it is shown."""
    return column if pd.api.types.is_numeric_dtype(column) else column.map(show)


def curve_lines(done: pd.DataFrame, eps: float) -> list[str]:
    """Each model-wise curve (and each sample-wise one, where n_train is swept more finely than width): the
    interpolation threshold, the verdict of its seeds, and the agreement with the theory where there is one."""
    lines = []
    for cond, part in conditions(done):
        for label, curve in variants(part, "width"):
            if curve["width"].nunique() < 3:  # (two widths make a pair, not a curve)
                continue
            threshold = interpolation_threshold(curve, eps)
            _, _, rule = threshold_rule(curve, eps)
            where = f"{describe(cond, curve)}{f' ({label})' if label else ''}"
            expected = theory_modelwise(curve)
            agreement = theory_agreement(curve, expected, "width") if expected is not None else None
            lines.append(f"{where}: interpolation threshold width = "
                         f"{'none reached' if threshold is None else f'{threshold:g}'} ({rule}); "
                         f"{verdict(curve, 'width').text()}"
                         + (f"; theory ({expected.attrs.get('label')}): {describe_agreement(agreement)}"
                            if agreement else ""))
    for cond, part in conditions(done, without=("n_train",)):
        if part["n_train"].nunique() < 3 or part["n_train"].nunique() <= part["width"].nunique():
            continue
        for width, at_width in part.groupby("width", sort=True):
            for label, at in variants(at_width, "n_train"):
                expected = theory_samplewise(at)
                agreement = theory_agreement(at, expected, "n_train") if expected is not None else None
                lines.append(f"{describe(cond, at)}, width {width:g}{f' ({label})' if label else ''}, along n_train: "
                             f"{verdict(at, 'n_train', at='n').text()}"
                             + (f"; theory ({expected.attrs.get('label')}): {describe_agreement(agreement, 'n')}"
                                if agreement else ""))
    return lines


def summary_lines(df: pd.DataFrame, eps: float = 0.01, planned: dict[str, str] | None = None) -> list[str]:
    """What `ls` prints: a line per run (with a column for every hyperparameter that varies), then each curve's
    interpolation threshold and verdict (ddescent.analysis: one definition of a double descent, its seeds and
    their intervals), the effective model complexity where n_train varies, and each run's landmarks over
    training. Regression records are risks (MSE), and the header says so."""
    rows = run_table(df)
    # a column for everything that varies beyond the fixed ones; the groups by their names (dataset, optimizer,
    # regularizer), not twice
    extra = varying(rows, exclude=("width", "seed", "n_train", "reg_strength", "model", "data.name", "model.name",
                                   "optim.name", "regularizer.name"))
    names = short_names(extra)
    order = [c for c in ("experiment", "model", *extra, "n_train", "reg_strength", "width", "seed") if c in rows]
    rows = rows.sort_values(order, key=_sortable, kind="stable").reset_index(drop=True)
    regression = "task" in rows and set(rows["task"].dropna()) == {"regression"}
    train_col, test_col = ("train_mse", "test_risk") if regression else ("train_err", "test_err")
    lines = [f"{'run_id':12}  {'status':8}  {'model':8} {'width':>7} {'params':>9} {'n_train':>7} {'λ':>8} "
             f"{'seed':>4} {'epoch':>6} {train_col:>9} {test_col:>9}" + "".join(f" {names[c]:>10}" for c in extra)]
    for r in rows.to_dict("records"):
        lines.append(f"{r['run_id']:12}  {r['status']:8}  {r['model']:8} {r['width']:7g} {int(r['n_params']):9d} "
                     f"{int(r['n_train']):7d} {r['reg_strength']:8g} {int(r['seed']):4d} {int(r['epoch']):6d} "
                     f"{r['train_error']:9.4g} {r['test_error']:9.4g}"
                     + "".join(f" {'-' if missing(r[c]) else show(r[c]):>10}" for c in extra))
    done = complete(rows)
    lines += curve_lines(complete(final(df)), eps)  # (the whole records: the theory reads each run's config)
    for cond, part in conditions(done, without=("n_train",)):
        if part["n_train"].nunique() < 2:
            continue
        emc = effective_model_complexity(part, eps)
        lines.append(f"{describe(cond, part)}: effective model complexity (largest n_train with "
                     f"{threshold_rule(part, eps)[2]}) by width: " + ", ".join(f"{w:g}: {'none' if n is None else n}" for w, n in emc.items()))
    lines += epochwise_lines(df, rows, extra, names)
    waiting = {rid: label for rid, label in (planned or {}).items() if rid not in set(rows["run_id"])}
    if waiting:
        lines.append(f"{len(waiting)} planned run(s) not done yet (queued, training, or failed: see the sweep's "
                     "log): " + "; ".join(list(waiting.values())[:5]) + (" ..." if len(waiting) > 5 else ""))
    return lines
