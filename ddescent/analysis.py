"""Reading the curves out of the records: final points, seed means, the interpolation threshold, the effective
model complexity, early stopping by the validation split, and which figures a table of records allows."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from ddescent import theory

# Runs that differ only in size and seed belong to one curve. These columns split the figures into panels; any
# other hyperparameter that varies among the runs (see `variants`) gives a curve of its own within a panel.
CONDITION = ["experiment", "dataset", "model", "optimizer", "regularizer", "reg_strength", "label_noise", "n_train"]
REPLICATES = ("seed", "data_seed")  # what the bands of a curve run over: seeds only (of the model, of the data)


def complete(df: pd.DataFrame) -> pd.DataFrame:
    """Finished runs only: diverged runs are listed by `ls` but left out of the curves."""
    return df[df["status"] == "complete"]


def final(df: pd.DataFrame) -> pd.DataFrame:
    """The last evaluation point of every run."""
    if df.empty:
        return df
    last = df.groupby("run_id")["epoch"].transform("max")
    return df[df["epoch"] == last].reset_index(drop=True)


def seed_stats(df: pd.DataFrame, x: str, columns: list[str], by: list[str] | None = None) -> pd.DataFrame:
    """Mean, min, max and count over seeds of each column, per x (and per `by`)."""
    keys = (by or []) + [x]
    agg = df.groupby(keys, dropna=False)[columns].agg(["mean", "min", "max", "count"])
    agg.columns = [f"{c}_{s}" for c, s in agg.columns]
    return agg.reset_index().sort_values(keys)


def interpolation_threshold(final_rows: pd.DataFrame, eps: float = 0.01, x: str = "width") -> float | None:
    """Smallest x whose final train error (mean over seeds) is at most eps; None if no model interpolates."""
    stats = seed_stats(final_rows, x, ["train_error"])
    hit = stats[stats["train_error_mean"] <= eps]
    return float(hit[x].min()) if len(hit) else None


def effective_model_complexity(final_rows: pd.DataFrame, eps: float = 0.01, x: str = "width") -> dict[float, int | None]:
    """Effective model complexity (Nakkiran et al. 2019) per model size: the largest n_train whose final train
    error (mean over seeds) is at most eps; None where no training-set size is fitted that well.

    Pass the final rows of one condition apart from n_train (`conditions(rows, without=("n_train",))`);
    diverged runs are left out."""
    rows = complete(final_rows) if "status" in final_rows else final_rows
    if rows.empty:
        return {}
    stats = seed_stats(rows, x, ["train_error"], by=["n_train"])
    emc: dict[float, int | None] = {}
    for size, part in stats.groupby(x, sort=True):
        fitted = part[part["train_error_mean"] <= eps]
        emc[float(size)] = int(fitted["n_train"].max()) if len(fitted) else None
    return emc


def more_data_hurts(final_rows: pd.DataFrame, metric: str = "test_loss", x: str = "width") -> pd.DataFrame:
    """Sample-wise comparison (Bishop & Bishop Fig 9.11): for each pair of neighbouring training-set sizes and
    each size x both were trained at, the seed-mean `metric` of the smaller and the larger set, their ratio,
    and `hurts` = the larger set is worse. Pass the final rows of one condition apart from n_train."""
    cols = [x, "n_small", "n_large", "small", "large", "ratio", "hurts"]
    rows = complete(final_rows) if "status" in final_rows else final_rows
    if rows.empty:
        return pd.DataFrame(columns=cols)
    stats = seed_stats(rows, x, [metric], by=["n_train"])
    sizes = sorted(stats["n_train"].unique())
    out = []
    for small, large in zip(sizes, sizes[1:]):
        a = stats[stats["n_train"] == small].set_index(x)[f"{metric}_mean"]
        b = stats[stats["n_train"] == large].set_index(x)[f"{metric}_mean"]
        for size in sorted(a.index.intersection(b.index)):
            out.append({x: float(size), "n_small": int(small), "n_large": int(large), "small": float(a[size]),
                        "large": float(b[size]), "ratio": float(b[size] / a[size]) if a[size] else np.inf,
                        "hurts": bool(b[size] > a[size])})
    return pd.DataFrame(out, columns=cols)


def early_stopped(df: pd.DataFrame, by: str = "val_loss") -> pd.DataFrame:
    """One row per run at its early-stopping point: the evaluation whose validation `by` is lowest (the earliest
    one on ties). The test set never takes part in the choice. Runs without validation numbers are left out;
    a table with none at all raises ValueError."""
    if by.startswith("test"):
        raise ValueError(f"early stopping by {by} would choose on the test set; use val_loss or val_error")
    if by not in df or df[by].isna().all():
        raise ValueError(f"no {by} recorded: early stopping needs a validation split (rerun with val_fraction > 0)")
    rows = df.dropna(subset=[by]).sort_values(["run_id", "epoch"]).reset_index(drop=True)
    best = rows.groupby("run_id", sort=True)[by].idxmin()
    return rows.loc[best.to_numpy()].reset_index(drop=True)


def second_peak(final_rows: pd.DataFrame, threshold: float | None) -> pd.Series:
    """The double-descent peak: the highest mean test error at or after the best model below the threshold
    (small underfitting models, which err most of all, are the first descent, not the peak)."""
    stats = seed_stats(final_rows, "width", ["test_error"])
    below = stats[stats["width"] <= threshold] if threshold is not None else stats
    start = (below if len(below) else stats).sort_values("test_error_mean").iloc[0]["width"]
    return stats[stats["width"] >= start].sort_values("test_error_mean").iloc[-1]


def identity_columns(df: pd.DataFrame) -> list[str]:
    """The columns of the table that hold a run's identity: the condition columns, data_seed, and the flat
    hyperparameter columns (see ddescent.spec.hyperparameters)."""
    return [c for c in df.columns if c in CONDITION or c in ("data_seed", "epochs", "val_fraction", "width", "seed")
            or ("." in c and c.split(".", 1)[0] in ("data", "model", "optim", "regularizer", "train"))]


def varying(df: pd.DataFrame, exclude=()) -> list[str]:
    """Identity columns with more than one value among the runs of `df` (lists compared as text)."""
    runs = df.drop_duplicates("run_id") if "run_id" in df else df
    return [c for c in identity_columns(runs) if c not in exclude and runs[c].map(show).nunique() > 1]


def short_names(columns: list[str]) -> dict[str, str]:
    """Legend names: the last part of a key (optim.lr -> lr) unless two keys share it."""
    last = [c.rsplit(".", 1)[-1] for c in columns]
    return {c: (s if last.count(s) == 1 else c) for c, s in zip(columns, last)}


def variants(df: pd.DataFrame, x: str) -> list[tuple[str, pd.DataFrame]]:
    """The curves of one panel: runs grouped by every identity column that varies among them other than the
    x-axis, the seeds and the panel's own condition, each with a label naming what differs ("lr=0.01"). One
    group labelled "" when nothing varies."""
    keys = varying(df, exclude=(x, *REPLICATES, *CONDITION))
    if not keys:
        return [("", df)]
    names = short_names(keys)
    out = []
    for values, rows in df.groupby([df[k].map(show) for k in keys], sort=True, dropna=False):
        values = values if isinstance(values, tuple) else (values,)
        # a key a group lacks (null: another setting's option) is left out of its label
        out.append((", ".join(f"{names[k]}={v}" for k, v in zip(keys, values) if v != "null"), rows))
    return out


def missing(value) -> bool:
    """A key a run does not have (another regularizer's setting): None or NaN."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def show(value) -> str:
    """A hyperparameter as the config writes it (a missing one, NaN in a table, is null)."""
    if missing(value):
        return "null"
    return f"{value:g}" if isinstance(value, float) else str(value)


# ----------------------------------------------------------------------------- the shape of a curve
# A double descent is a bump: a point higher than the lowest point before it and the lowest point after it. Of all
# points, the peak is the one whose bump is most prominent, min(peak / first minimum, peak / second minimum); the
# first and second minima are the lowest points before and after it. A curve whose most prominent bump is below
# `min_prominence` (a flat curve, a U, noise) has no peak. Non-finite points (a diverged run) are left out.
# Model-wise (x = width), epoch-wise (x = epoch or step) and lambda-wise (x = 1/lambda) curves are read alike.
SECOND_DESCENT = 0.15  # a second descent falls at least this far below its peak


def landmarks(steps, values, min_prominence: float = 0.05) -> dict:
    """{first_min, first_min_step, peak, peak_step, second_min, second_min_step, rise, drop}: rise = peak /
    first_min, drop = second_min / first_min; the peak's entries are None (rise, drop NaN) without a bump of at
    least `min_prominence` (relative to its higher minimum)."""
    steps, values = np.asarray(steps, dtype=float), np.asarray(values, dtype=float)
    keep = np.isfinite(values) & np.isfinite(steps)
    steps, values = steps[keep], values[keep]
    order = np.argsort(steps, kind="stable")
    steps, values = steps[order], values[order]
    none = {"first_min": None, "first_min_step": None, "peak": None, "peak_step": None, "second_min": None,
            "second_min_step": None, "rise": math.nan, "drop": math.nan}
    if len(values) == 0:
        return none
    lowest = int(np.argmin(values))
    none.update(first_min=float(values[lowest]), first_min_step=_step(steps[lowest]))
    if len(values) < 3:
        return none
    before = np.minimum.accumulate(values)[:-2]  # lowest up to i, for a peak at i + 1
    after = np.minimum.accumulate(values[::-1])[::-1][2:]  # lowest from i + 2 on
    peaks = values[1:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        prominence = np.minimum(peaks / before, peaks / after)
    prominence = np.where(before > 0, prominence, np.where(peaks > before, np.inf, 1.0))
    j = int(np.argmax(prominence))
    if not prominence[j] >= 1 + min_prominence:
        return none
    peak = j + 1
    first = int(np.argmin(values[:peak]))
    second = peak + 1 + int(np.argmin(values[peak + 1:]))
    return {"first_min": float(values[first]), "first_min_step": _step(steps[first]),
            "peak": float(values[peak]), "peak_step": _step(steps[peak]),
            "second_min": float(values[second]), "second_min_step": _step(steps[second]),
            "rise": float(values[peak] / values[first]) if values[first] > 0 else math.inf,
            "drop": float(values[second] / values[first]) if values[first] > 0 else math.nan}


def _step(s: float):
    return int(s) if float(s).is_integer() else float(s)


def landmarks_of_run(rows: pd.DataFrame, column: str = "test_error", x: str = "step", min_prominence: float = 0.05) -> dict:
    """landmarks() of one run's records (its rows of a results table), along `x` (step, or epoch)."""
    rows = rows.sort_values(x)
    return landmarks(rows[x].to_numpy(), rows[column].to_numpy(), min_prominence)


def double_descent(lm: dict, rise: float = 1.15, drop: float = 0.85) -> bool:
    """A clear epoch-wise double descent: the peak at least `rise` times the first minimum, and the second
    minimum at most `drop` times the first."""
    return lm["peak"] is not None and lm["rise"] >= rise and lm["drop"] <= drop


def describe_landmarks(lm: dict) -> str:
    """One line for `ls`."""
    if lm["first_min"] is None:
        return "no finite points"
    if lm["peak"] is None:
        return f"no bump: minimum {lm['first_min']:.4g} at step {lm['first_min_step']}"
    return (f"first minimum {lm['first_min']:.4g} at step {lm['first_min_step']}, peak {lm['peak']:.4g} at step "
            f"{lm['peak_step']} ({lm['rise'] - 1:+.0%}), second minimum {lm['second_min']:.4g} at step "
            f"{lm['second_min_step']} ({lm['drop'] - 1:+.0%} vs the first)")


def describe_curve(x, y, at: str = "width") -> str:
    """What a curve shows, in words and numbers, for a figure's title: its minimum, or its first minimum, peak and
    second minimum, and whether that makes a double descent (the second minimum below the first), a partial one
    (it falls at least 15% below the peak but not below the first) or none."""
    lm = landmarks(x, y)
    if lm["first_min"] is None:
        return "no finite points"
    if lm["peak"] is None:
        y = np.asarray(y, float)
        end = y[np.isfinite(y)][-1]
        if end > 1.05 * lm["first_min"]:
            return f"lowest {lm['first_min']:.3g} at {at} {lm['first_min_step']:g}, ends {end:.3g}: no second descent"
        return f"falls to {lm['first_min']:.3g} at {at} {lm['first_min_step']:g}"
    head = f"min {lm['first_min']:.3g} at {at} {lm['first_min_step']:g}, peak {lm['peak']:.3g} at {lm['peak_step']:g}"
    if lm["second_min"] > (1 - SECOND_DESCENT) * lm["peak"]:
        return f"{head}: no second descent"
    kind = "double descent" if lm["second_min"] < lm["first_min"] else "partial second descent"
    return f"{head}, second min {lm['second_min']:.3g} at {lm['second_min_step']:g}: {kind}"


def describe_lambdawise(inv_lambda, values) -> str:
    return "test " + describe_curve(inv_lambda, values, "1/λ")


# ----------------------------------------------------------------------------- theory over the measurements


def _configs(rows: pd.DataFrame) -> list[dict]:
    return [json.loads(c) for c in rows.drop_duplicates("run_id")["config"]]


def has_theory(rows: pd.DataFrame) -> bool:
    """Runs of the linear family on the teacher-student: the ones theory.py can predict."""
    return (not rows.empty and "config" in rows and set(rows["model"]) == {"linear"}
            and set(rows["dataset"]) == {"teacher_student"})


def theory_modelwise(rows: pd.DataFrame) -> pd.DataFrame | None:
    """The expected risk of minimum-norm least squares (Belkin, Hsu & Xu 2019) at every width 1 .. d, for these
    runs' n_train and teachers (None where the theory does not apply: not lstsq, or not isotropic features)."""
    configs = _configs(rows)
    if not has_theory(rows) or {c["model"]["solver"] for c in configs} != {"lstsq"}:
        return None
    try:
        return theory.modelwise(configs)
    except ValueError:  # e.g. anisotropic features beyond the threshold: no closed form here
        return None


def theory_samplewise(rows: pd.DataFrame) -> pd.DataFrame | None:
    """The same risk against n_train at these runs' width (peak at n = p)."""
    configs = _configs(rows)
    if not has_theory(rows) or {c["model"]["solver"] for c in configs} != {"lstsq"}:
        return None
    try:
        return theory.samplewise(configs, sorted({int(n) for n in np.geomspace(1, max(c["data"]["pool_size"]
                                                                                     for c in configs), 400)}))
    except ValueError:
        return None


def theory_epochwise(rows: pd.DataFrame, draws: int = 20) -> pd.DataFrame | None:
    """The expected test risk of gradient descent over training sets (a Monte Carlo mean of `draws` sets per
    teacher, averaged over these runs' teachers), at the steps they evaluated."""
    configs = _configs(rows)
    if not has_theory(rows) or {c["model"]["solver"] for c in configs} != {"gd"}:
        return None
    curves = [theory.epochwise(c, draws=draws, seed=0) for c in configs]
    out = curves[0][["step"]].copy()
    out["test_error"] = np.mean([c["test_error"].to_numpy() for c in curves], axis=0)
    return out


def conditions(df: pd.DataFrame, without: tuple[str, ...] | list[str] = ()):
    """(description, rows) for every condition present, in a stable order; `without` names condition columns
    that vary inside one group (n_train for the sample-wise figure, reg_strength for the λ-wise one)."""
    cols = [c for c in CONDITION if c in df and c not in without]
    if not cols:
        yield {}, df
        return
    for key, rows in df.groupby(cols, dropna=False, sort=True):
        yield dict(zip(cols, key if isinstance(key, tuple) else (key,))), rows


def describe(cond: dict, rows: pd.DataFrame | None = None) -> str:
    """A condition in words for a title: family, dataset, n, the noise (label noise for classification; the
    targets' σ for regression, read from `rows`), the regularizer."""
    parts = [f"{cond.get('model')} on {cond.get('dataset')}"]
    if "n_train" in cond:
        parts.append(f"n={cond['n_train']}")
    sigma = _one(rows, "data.noise") if rows is not None and _one(rows, "task") == "regression" else None
    parts.append(f"target noise σ={sigma:g}" if sigma is not None else f"noise {cond.get('label_noise', 0):.0%}")
    if cond.get("regularizer") not in (None, "none"):
        parts.append(f"{cond['regularizer']} λ={cond['reg_strength']:g}" if "reg_strength" in cond else cond["regularizer"])
    return ", ".join(parts)


def _one(rows: pd.DataFrame, column: str):
    """The value `column` holds in every row, or None (absent, or several values)."""
    if column not in rows:
        return None
    values = rows[column].dropna().unique()
    return values[0] if len(values) == 1 else None


def some_condition(df: pd.DataFrame, without: tuple[str, ...], test) -> bool:
    """Whether `test(rows)` holds for the rows of at least one condition (see `conditions`)."""
    return any(test(part) for _, part in conditions(df, without)) if not df.empty else False
