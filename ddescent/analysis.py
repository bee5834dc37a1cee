"""Reading the curves out of the records: final points, seed means, the interpolation threshold."""

from __future__ import annotations

import pandas as pd

# Runs that differ only in size and seed belong to one curve; anything else is a different condition.
CONDITION = ["experiment", "dataset", "model", "optimizer", "regularizer", "reg_strength", "label_noise", "n_train"]


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


def conditions(df: pd.DataFrame):
    """(description, rows) for every condition present, in a stable order."""
    cols = [c for c in CONDITION if c in df]
    for key, rows in df.groupby(cols, dropna=False, sort=True):
        yield dict(zip(cols, key if isinstance(key, tuple) else (key,))), rows


def describe(cond: dict) -> str:
    parts = [f"{cond.get('model')} on {cond.get('dataset')}", f"n={cond.get('n_train')}",
             f"noise {cond.get('label_noise', 0):.0%}"]
    if cond.get("regularizer") not in (None, "none"):
        parts.append(f"{cond['regularizer']} λ={cond.get('reg_strength'):g}")
    return ", ".join(parts)
