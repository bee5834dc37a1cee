"""Choosing runs and the metric to read: `--where` and `--metric` of plot, figures, ls and report, and
ddescent.finals. A filter keeps or drops whole runs (every evaluation of a run that matches at its last one), so a
figure over training never shows half a run."""

from __future__ import annotations

import pandas as pd

from ddescent.analysis import final
from ddescent.errors import ConfigError

# the metrics a figure can put on its error axis: the recorded per-evaluation columns
AXES = ("width", "seed", "data_seed", "n_train", "reg_strength", "label_noise", "epochs", "epoch", "model", "dataset",
        "status", "test_error")
METRICS = ("test_error", "test_loss", "train_error", "train_loss", "val_error", "val_loss")


def finals(df: pd.DataFrame) -> pd.DataFrame:
    """One row per run at its last evaluation (its final train and test error, its config columns)."""
    return final(df)


def where(df: pd.DataFrame, expression: str | None, empty_ok: bool = False) -> pd.DataFrame:
    """The records of the runs whose last evaluation satisfies `expression` (pandas query syntax: `epochs==500 and
    seed<3`; a name with a dot in backquotes: `` `model.block_lr`=='equalize' ``). ConfigError, in one line, when it
    does not parse or names a column the records lack; an empty selection is an error too (nothing to draw), unless
    `empty_ok` (one experiment of several may hold none of the runs asked for)."""
    if not expression:
        return df
    last = final(df)
    try:
        kept = last.query(expression, engine="python")
    except Exception as exc:  # pandas raises many kinds: a syntax error, an unknown name, a bad comparison
        common = [c for c in AXES if c in last]
        undefined = type(exc).__name__ == "UndefinedVariableError"
        reason = str(exc).splitlines()[0] if undefined else "does not parse as a pandas query"
        raise ConfigError(f"--where {expression!r}: {reason} (columns such as {', '.join(common)}; a dotted name "
                          "in backquotes; `ddescent ls RESULTS --format csv` shows them all)") from None
    if not isinstance(kept, pd.DataFrame):
        raise ConfigError(f"--where {expression!r}: expected a condition on the columns, such as 'seed<3'")
    if kept.empty and not empty_ok:
        raise ConfigError(f"--where {expression!r}: no run matches (of {last['run_id'].nunique()})")
    return df[df["run_id"].isin(set(kept["run_id"]))].reset_index(drop=True)


def metric(df: pd.DataFrame, name: str | None) -> pd.DataFrame:
    """The records with `name` read as the error axis: its values moved into test_error (and the train metric of the
    same kind into train_error), so every figure draws it unchanged (figures.render relabels the axis)."""
    if not name or name == "test_error":
        return df
    if name not in METRICS:
        raise ConfigError(f"--metric {name}: choose one of: {', '.join(METRICS)}")
    if name not in df or df[name].isna().all():
        recorded = ", ".join(m for m in METRICS if m in df and df[m].notna().any())
        raise ConfigError(f"--metric {name}: not recorded in these runs (recorded: {recorded})")
    out = df.copy()
    kind = name.split("_", 1)[1]  # error or loss
    out["test_error"] = df[name]
    out["train_error"] = df[f"train_{kind}"] if f"train_{kind}" in df else float("nan")
    return out
