"""Results on disk: `<results>/<experiment>/runs/<run_id>.parquet`, one file per finished run.

A file is written to a temporary dot-file in the same folder and moved into place with os.replace, so a
reader never sees half a file, a crash never leaves a damaged one, and its presence means "done".
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

COLUMNS = [
    "run_id", "experiment", "status", "dataset", "model", "optimizer", "regularizer", "width", "n_params",
    "n_train", "n_test", "label_noise", "label_noise_effective", "reg_strength", "seed", "data_seed",
    "epoch", "step", "train_error", "train_loss", "test_error", "test_loss", "val_error", "val_loss",
    "wall_time_s", "config", "ddescent_version", "torch_version", "device",
]


def runs_dir(results: str | Path, experiment: str) -> Path:
    return Path(results) / experiment / "runs"


def run_path(results: str | Path, experiment: str, run_id: str) -> Path:
    return runs_dir(results, experiment) / f"{run_id}.parquet"


def is_done(results: str | Path, experiment: str, run_id: str) -> bool:
    return run_path(results, experiment, run_id).exists()


def write_run(frame: pd.DataFrame, path: Path) -> None:
    """Write atomically: temporary dot-file beside the target, fsync, then os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _run_files(path: Path) -> list[Path]:
    """Every run file under `path`: a results root, an experiment folder, its runs/ folder, or one file."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*.parquet") if not p.name.startswith((".", "_")) and p.parent.name == "runs")


def load(path: str | Path) -> pd.DataFrame:
    """All runs under `path` as one long table. Files written by older versions may lack newer columns;
    unreadable or foreign files are skipped with a warning."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such results folder")
    tables = []
    for file in _run_files(path):
        try:
            table = pq.read_table(file)
            if "run_id" not in table.column_names:
                raise ValueError("not a ddescent run file (no run_id column)")
            tables.append(table)
        except Exception as exc:  # a damaged or foreign file must not take the whole folder down
            warnings.warn(f"skipping {file}: {exc}", stacklevel=2)
    if not tables:
        return pd.DataFrame(columns=COLUMNS)
    table = pa.concat_tables(tables, promote_options="permissive")
    return table.to_pandas()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
