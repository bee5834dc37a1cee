"""A run's file: written whole or not at all, and "done" only when it reads back whole.

A run file is written to a temporary dot-file in the same folder and moved into place (ddescent.files), so a
reader never sees half a file. A damaged one is moved aside (paths.quarantine) and the run is trained again.
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ddescent.files import write_atomic as _write_atomic
from ddescent.store.locks import HOST, temp_prefix
from ddescent.store.paths import logs_dir, quarantine, run_path
from ddescent.store.reading import STATUSES


def write_atomic(path: Path, write) -> None:
    """ddescent.files.write_atomic with the writer named in the temporary file (see locks.Writer); something that
    is not a file at `path` (a folder) is moved aside first."""
    if path.exists() and not path.is_file():
        quarantine(path, "not a file")
    _write_atomic(path, write, prefix=temp_prefix(path))


def write_run(frame: pd.DataFrame, path: Path) -> None:
    write_atomic(path, lambda f: pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), f))


def check_run(path: Path, run_id: str | None = None) -> str | None:
    """None when `path` is a whole, readable run file (of `run_id`, when given); else what is wrong with it."""
    if not path.exists():
        return "missing"
    if not path.is_file():
        return "not a file"
    try:
        table = pq.read_table(path, columns=["run_id", "status"])
    except Exception as exc:  # truncated, empty, not parquet, no such columns
        return f"unreadable ({type(exc).__name__})"
    if table.num_rows == 0:
        return "no rows"
    ids, statuses = set(table.column("run_id").to_pylist()), set(table.column("status").to_pylist())
    if run_id is not None and ids != {run_id}:
        return f"holds run {', '.join(map(str, ids))}, not {run_id}"
    if not statuses <= set(STATUSES):
        return f"status {', '.join(map(str, statuses))}"
    return None


def is_done(folder: str | Path, run_id: str) -> bool:
    return check_run(run_path(folder, run_id), run_id) is None


def set_aside_if_damaged(folder: str | Path, run_id: str) -> bool:
    """Move a run file that exists but does not read back whole to _damaged/ (the run is then trained again).
    True when something was moved."""
    path = run_path(folder, run_id)
    problem = check_run(path, run_id)
    if problem in (None, "missing"):
        return False
    quarantine(path, problem)
    return True


def log_training(folder: Path, run_id: str) -> None:
    """Append one line to <experiment>/_logs/trainings.jsonl: every training that starts, with where and when.
    (Lines this short are written whole by one append.)"""
    path = logs_dir(folder) / "trainings.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"run_id": run_id, "host": HOST, "pid": os.getpid(),
                       "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")})
    with open(path, "a") as f:
        f.write(line + "\n")


def trainings(folder: str | Path) -> list[dict]:
    path = logs_dir(folder) / "trainings.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
