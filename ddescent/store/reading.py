"""Reading run files: every reader (the sweep's "is it done?", `ls`, `plot`, `load`) applies the same validation
(`conform`), so a file that one of them would refuse never counts as done for another."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ddescent import spec

COLUMNS = [
    "run_id", "experiment", "status", "dataset", "model", "optimizer", "regularizer", "width", "n_params",
    "n_train", "n_test", "label_noise", "label_noise_effective", "reg_strength", "seed", "data_seed",
    "epoch", "step", "train_error", "train_loss", "test_error", "test_loss", "val_error", "val_loss",
    "wall_time_s", "config", "ddescent_version", "torch_version", "device",
]
STATUSES = ("complete", "diverged")
# What a reader needs of a run file, and the kind each standard column must have (files of other kinds are
# skipped with a warning: one bad file must not take a folder down).
REQUIRED = ("run_id", "status", "epoch", "width", "train_error", "test_error")
TEXT = ("run_id", "experiment", "status", "dataset", "model", "optimizer", "regularizer", "config",
        "ddescent_version", "torch_version", "device")
WHOLE = ("n_params", "n_train", "n_test", "seed", "data_seed", "epoch", "step")
REAL = ("label_noise", "label_noise_effective", "reg_strength", "train_error", "train_loss", "test_error",
        "test_loss", "val_error", "val_loss", "wall_time_s")


def run_files(path: Path) -> list[Path]:
    """Every run file under `path`: a results root, an experiment folder, its runs/ folder, or one file."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*.parquet") if p.is_file() and p.parent.name == "runs"
                  and not any(part.startswith((".", "_")) for part in p.relative_to(path).parts))


def conform(table: pa.Table) -> pa.Table:
    """The table with the standard columns in their standard kinds, or ValueError saying what is wrong."""
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise ValueError(f"not a ddescent run file (no {', '.join(missing)} column)")
    for i, name in enumerate(table.column_names):
        kind = table.schema.field(i).type
        if name in TEXT and not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind)):
            raise ValueError(f"column {name} holds {kind}, not text")
        if name in WHOLE + REAL + ("width",) and not (pa.types.is_integer(kind) or pa.types.is_floating(kind)
                                         or pa.types.is_null(kind)):
            raise ValueError(f"column {name} holds {kind}, not numbers")
        if name in REAL and not pa.types.is_float64(kind):
            table = table.set_column(i, name, table.column(i).cast(pa.float64()))
        if name == "width":
            table = table.set_column(i, name, _width(table.column(i)))
    return table


def _width(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Widths as integers where every one is whole (a family's count of units, features, channels), else as
    real numbers (files written before widths were stored as integers hold 4.0)."""
    if pa.types.is_integer(column.type):
        return column.cast(pa.int64())
    real = column.cast(pa.float64())
    if real.null_count == 0 and len(real) and pc.max(real).as_py() < 2**53 and pc.all(pc.equal(pc.floor(real), real)).as_py():
        return real.cast(pa.int64())
    return real


def with_hyperparameters(table: pa.Table) -> pa.Table:
    """Runs written before the records carried flat hyperparameter columns get them from their config."""
    if "config" not in table.column_names or table.num_rows == 0 or "optim.name" in table.column_names:
        return table
    try:
        flat = spec.hyperparameters(json.loads(table.column("config")[0].as_py()))
    except (TypeError, ValueError, AttributeError):
        return table
    for key, value in flat.items():
        if key not in table.column_names:
            table = table.append_column(key, pa.array([value] * table.num_rows))
    return table


def read_run(file: Path) -> pa.Table:
    """One run file as every reader sees it; ValueError (or an I/O error) when it cannot be read so."""
    return with_hyperparameters(conform(pq.read_table(file)))


def load(path: str | Path) -> pd.DataFrame:
    """All runs under `path` as one long table. Files written by older versions may lack newer columns; files
    that cannot be read, or are not run files, are skipped with a warning; a run stored in two experiment
    folders (the same run_id) is read once."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such results folder")
    tables, seen, doubled = [], {}, []
    for file in run_files(path):
        try:
            table = read_run(file)
        except Exception as exc:  # a damaged or foreign file must not take the whole folder down
            warnings.warn(f"skipping {file}: {exc}", stacklevel=2)
            continue
        ids = set(table.column("run_id").to_pylist())
        if ids & seen.keys():
            doubled.append((file, seen[next(iter(ids & seen.keys()))]))
            continue
        seen.update(dict.fromkeys(ids, file))
        tables.append(table)
    if doubled:
        file, first = doubled[0]
        warnings.warn(f"{len(doubled)} run(s) stored in more than one folder were read once (e.g. {file.stem} in "
                      f"{first.parent.parent.name} and {file.parent.parent.name})", stacklevel=2)
    if not tables:
        return pd.DataFrame(columns=COLUMNS)
    try:
        return pa.concat_tables(tables, promote_options="permissive").to_pandas()
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # extra columns of different kinds across files
        return pd.concat([t.to_pandas() for t in tables], ignore_index=True)


def load_quietly(path: str | Path, warn=None) -> pd.DataFrame:
    """`load`, with each file that cannot be read reported through `warn(line)` (or not at all) instead of as a
    Python warning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = load(path)
    for w in caught:
        if warn is not None:
            warn(f"warning: {w.message}")
    return df
