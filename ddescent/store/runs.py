"""A run's file: written whole or not at all, and "done" only when it reads back whole.

A run file is written to a temporary dot-file in the same folder and moved into place (ddescent.files), so a
reader never sees half a file. A damaged one is moved aside (paths.quarantine) and the run is trained again.
"""

from __future__ import annotations

import datetime
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ddescent import component
from ddescent.files import write_atomic as _write_atomic
from ddescent.store.locks import HOST, temp_prefix
from ddescent.store.paths import logs_dir, quarantine, run_path
from ddescent.store.reading import REQUIRED, STATUSES, conform


def write_atomic(path: Path, write) -> None:
    """ddescent.files.write_atomic with the writer named in the temporary file (see locks.Writer); something that
    is not a file at `path` (a folder) is moved aside first."""
    if path.exists() and not path.is_file():
        quarantine(path, "not a file")
    _write_atomic(path, write, prefix=temp_prefix(path))


def write_run(frame: pd.DataFrame, path: Path) -> None:
    write_atomic(path, lambda f: pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), f))


def check_run(path: Path, run_id: str | None = None) -> str | None:
    """None when `path` is a whole run file that every reader takes (reading.conform: the required columns, each
    column of its kind), holding run `run_id` (else the one its name says) and the rows a finished run records
    (see check_rows); else what is wrong with it. Reads the footer, the first row and a few columns, never the
    rest of a file that holds more rows than any run records."""
    if not path.exists():
        return "missing"
    if not path.is_file():
        return "not a file"
    run_id = path.stem if run_id is None else run_id
    try:
        parquet = pq.ParquetFile(path)
        schema, rows = parquet.schema_arrow, parquet.metadata.num_rows
    except Exception as exc:  # truncated, empty, not parquet
        return f"unreadable ({type(exc).__name__})"
    try:
        conform(schema.empty_table())  # the kinds are in the schema: no data is read for them
    except ValueError as exc:
        return str(exc)
    if rows == 0:
        return "no rows"
    try:
        wanted = [c for c in ("config", "n_train") if c in schema.names]
        first = next(parquet.iter_batches(batch_size=1, columns=wanted))
        schedule = expected_schedule(first.to_pylist()[0] if first.num_columns else {})
        if schedule is not None and rows > schedule.most:  # (a file of 400k copied rows is not read whole)
            return (f"{rows} rows, duplicated or foreign: a run of {schedule.last} epochs records at most "
                    f"{schedule.most}")
        table = pq.read_table(path, columns=list(REQUIRED))
    except Exception as exc:  # a damaged page
        return f"unreadable ({type(exc).__name__})"
    ids, statuses = set(table.column("run_id").to_pylist()), set(table.column("status").to_pylist())
    if ids != {run_id}:
        return f"holds run {', '.join(map(str, ids))}, not {run_id}"
    if len(statuses) != 1 or not statuses <= set(STATUSES):
        return f"status {', '.join(map(str, statuses))}"
    return check_rows(table.column("epoch").to_pylist(), statuses.pop(), schedule)


@dataclass(frozen=True)
class Schedule:
    """The evaluation epochs of a finished run, as far as a file can be checked against them: `last`, the last
    epoch of a run trained to the end; `most`, the most rows it can have; `closed_form`: a solver's rows (one at
    epoch 1, or a path 0 .. last); `early`: it may end before `last` (train.patience: early stopping)."""

    last: int
    most: int
    closed_form: bool = False
    early: bool = False


def expected_schedule(first: dict) -> Schedule | None:
    """The schedule of the run whose first row (its config and n_train) is `first`; None when the file does not
    say (an older file, a family this install lacks): its rows are then only checked for duplicates."""
    try:
        config = json.loads(first["config"])
        train, model = config["train"], config["model"]
        family = component.get("model", model["name"])
        steps = int(train.get("steps") or 0)
        if family.solve is not None and model.get("solver") in family.closed_form:
            last = steps or int(train["epochs"])  # the training loop's epochs are the solver's steps
            return Schedule(last, last + 1, closed_form=True)
        # As runner._epochs: a step budget in whole epochs of the training set the run saw (n_train).
        last = math.ceil(steps / math.ceil(int(first["n_train"]) / int(train["batch_size"]))) if steps \
            else int(train["epochs"])
        return Schedule(last, last + 1, early=bool(train.get("patience")))
    except Exception:  # anything a file of another version, or a foreign one, holds
        return None


def check_rows(epochs: list, status: str, schedule: Schedule | None) -> str | None:
    """None when the epochs of a run's rows are what a finished run records: one row per evaluation, in order;
    from epoch 0 (initialisation) to the run's last epoch, or to the epoch it diverged or stopped early at; a
    closed-form solve's one row at epoch 1, or its path from step 0 to its last step."""
    if any(e is None for e in epochs):
        return "rows without an epoch"
    if len(set(epochs)) != len(epochs):
        doubled = next(e for e in epochs if epochs.count(e) > 1)
        return f"duplicated rows (epoch {doubled} {epochs.count(doubled)} times in {len(epochs)} rows)"
    if epochs != sorted(epochs):
        return "rows out of epoch order"
    if schedule is None:
        return None
    last, ends_early = epochs[-1], status == "diverged" or schedule.early
    if schedule.closed_form:  # (a solve that diverged still records every row)
        if epochs == [1] or len(epochs) >= 2 and epochs[0] == 0 and last == schedule.last:
            return None
        return f"rows at epochs [{_span(epochs)}]: a solve records epoch 1, or 0 .. {schedule.last}"
    if len(epochs) < 2 or epochs[0] != 0 or last > schedule.last or last < schedule.last and not ends_early:
        return (f"rows at epochs [{_span(epochs)}]: a {status} run of {schedule.last} epochs records "
                f"0 .. {schedule.last}")
    return None


def _span(epochs: list) -> str:
    return ", ".join(map(str, epochs)) if len(epochs) <= 4 else f"{epochs[0]}, {epochs[1]} ... {epochs[-1]}"


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
