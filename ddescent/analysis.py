"""Reading the curves out of the records: final points, seed means, the interpolation threshold, the effective
model complexity, early stopping by the validation split, and which figures a table of records allows."""

from __future__ import annotations

import numpy as np
import pandas as pd

# Runs that differ only in size and seed belong to one curve; anything else is a different condition.
CONDITION = ["experiment", "dataset", "model", "optimizer", "regularizer", "reg_strength", "label_noise", "n_train"]

# Every figure `plots.DRAW` knows, in the order `ddescent figures` draws them.
FIGURES = ("9.9", "9.9-early", "9.10", "9.11", "lambda", "heatmap", "sws")


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


def conditions(df: pd.DataFrame, without: tuple[str, ...] | list[str] = ()):
    """(description, rows) for every condition present, in a stable order; `without` names condition columns
    that vary inside one group (n_train for the sample-wise figure, reg_strength for the λ-wise one)."""
    cols = [c for c in CONDITION if c in df and c not in without]
    if not cols:
        yield {}, df
        return
    for key, rows in df.groupby(cols, dropna=False, sort=True):
        yield dict(zip(cols, key if isinstance(key, tuple) else (key,))), rows


def describe(cond: dict) -> str:
    parts = [f"{cond.get('model')} on {cond.get('dataset')}"]
    if "n_train" in cond:
        parts.append(f"n={cond['n_train']}")
    parts.append(f"noise {cond.get('label_noise', 0):.0%}")
    if cond.get("regularizer") not in (None, "none"):
        parts.append(f"{cond['regularizer']} λ={cond['reg_strength']:g}" if "reg_strength" in cond else cond["regularizer"])
    return ", ".join(parts)


def _some(df: pd.DataFrame, without: tuple[str, ...], test) -> bool:
    return any(test(part) for _, part in conditions(df, without)) if not df.empty else False


def figure_availability(df: pd.DataFrame) -> dict[str, str | None]:
    """For every figure: None when the stored axes allow it, else the reason it cannot be drawn."""
    rows = complete(df) if "status" in df else df
    if rows.empty:
        return {f: "no complete runs" for f in FIGURES}
    fin = final(rows)
    trained = rows[rows["epoch"] > 0]

    def widths(part, k=2):
        return part["width"].nunique() >= k

    why: dict[str, str | None] = {}
    why["9.9"] = None if _some(fin, (), widths) else "needs at least 2 widths in one condition"
    if "val_loss" not in rows or rows["val_loss"].isna().all():
        why["9.9-early"] = "no val_loss recorded (needs a validation split: val_fraction > 0)"
    else:
        stopped = early_stopped(rows)
        why["9.9-early"] = None if _some(stopped, (), widths) else "needs val_loss for at least 2 widths in one condition"
    why["9.10"] = (None if _some(trained, (), lambda p: p["epoch"].nunique() >= 2)
                   else "needs evaluations at 2 or more epochs > 0")
    why["9.11"] = (None if _some(fin, ("n_train",), lambda p: p["n_train"].nunique() >= 2 and widths(p))
                   else "needs at least 2 n_train values and 2 widths in one condition")
    why["lambda"] = (None if _some(fin, ("reg_strength", "regularizer"),
                                   lambda p: any(g["reg_strength"].nunique() >= 2 and (g["reg_strength"] > 0).any()
                                                 for _, g in p.groupby("width")))
                     else "needs at least 2 reg_strength values (one > 0) at one width")
    why["heatmap"] = (None if _some(trained, (), lambda p: widths(p) and p["epoch"].nunique() >= 3)
                      else "needs at least 2 widths and 3 evaluated epochs > 0 in one condition")
    why["sws"] = (None if "weight_hist_counts" in rows and rows["weight_hist_counts"].notna().any()
                  else "no soft-weight-sharing run with a final weight histogram (regularizer=sws)")
    return why


def available_figures(df: pd.DataFrame) -> list[str]:
    """The figures (keys of `plots.DRAW`) that the stored axes allow, in drawing order."""
    return [f for f, reason in figure_availability(df).items() if reason is None]
