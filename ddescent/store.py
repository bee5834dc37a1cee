"""Results on disk, one folder per experiment:

    <results>/<experiment>/runs/<run_id>.parquet    one file per finished run (the records; nothing else is .parquet)
    <results>/<experiment>/_figures/                figures drawn from the records
    <results>/<experiment>/_checkpoints/            state of packs still training (removed when their runs finish)
    <results>/<experiment>/_damaged/                unreadable run files and checkpoints, moved aside, never deleted
    <results>/<experiment>/_logs/trainings.jsonl     one line per training started: which run, where, when
    <results>/<experiment>/.hydra/, .sweep/         Hydra's and the launchers' own files

Everything that is not a run file lives under a name that starts with `_` or `.`, which pyarrow's dataset
discovery skips, so `pyarrow.dataset.dataset(results)` reads every run and nothing else.

A file is written to a temporary dot-file in the same folder and moved into place with os.replace, so a reader
never sees half a file. A run counts as done only when its file reads back whole (is_done); a damaged one is
moved aside and the run is trained again. A lock per run keeps concurrent sweeps from training it twice; a lock
is trusted only while its owner is provably alive (same host: its pid and that process's start time; another
host: a heartbeat that keeps the lock's mtime fresh).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import socket
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ddescent import spec

log = logging.getLogger("ddescent")

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
REAL = ("width", "label_noise", "label_noise_effective", "reg_strength", "train_error", "train_loss", "test_error",
        "test_loss", "val_error", "val_loss", "wall_time_s")


def runs_dir(folder: str | Path) -> Path:
    return Path(folder) / "runs"


def run_path(folder: str | Path, run_id: str) -> Path:
    return runs_dir(folder) / f"{run_id}.parquet"


def figures_dir(folder: str | Path) -> Path:
    return Path(folder) / "_figures"


def checkpoints_dir(folder: str | Path) -> Path:
    return Path(folder) / "_checkpoints"


def damaged_dir(folder: str | Path) -> Path:
    return Path(folder) / "_damaged"


# ----------------------------------------------------------------------------- who is writing


HOST = socket.gethostname().replace(".", "-")  # dots separate the fields of temporary names
LOCK_HEARTBEAT_S = 30.0  # a lock's owner refreshes its mtime this often ...
LOCK_STALE_S = 180.0  # ... so a lock from another host not refreshed for this long has lost its owner
TMP_STALE_S = 3600.0  # a temporary file from another host is written in seconds; after an hour it is debris


def _start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot, /proc/<pid>/stat field 22): with the pid, it names one
    process for the machine's uptime, so a reused pid is not mistaken for the writer. None where there is no
    /proc; "" when the process does not exist or is a zombie (dead, not yet reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return "" if os.path.isdir("/proc/self") else None
    except OSError:
        return None
    return "" if fields[0] in ("Z", "X") else fields[19]


def process_token(pid: int | None = None) -> str:
    """"<pid>-<start time>" of a process (this one by default): what lock and temporary names carry."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}-{_start_time(pid) or 0}"


def process_alive(token: str) -> bool:
    """Whether the process named by a process_token on this host still runs (a zombie does not)."""
    pid_text, _, start = token.partition("-")
    if not pid_text.isdigit():
        return False
    now = _start_time(int(pid_text))
    if now is not None:  # Linux: pid and start time
        return now != "" and now == start
    try:  # elsewhere: the pid alone
        os.kill(int(pid_text), 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


TOKEN = process_token()


def _refresh_token() -> None:
    """After fork, the child is another process with another token."""
    global TOKEN
    TOKEN = process_token()


os.register_at_fork(after_in_child=_refresh_token)


@dataclass(frozen=True)
class Writer:
    """The owner named in a dot-file's name: .<stem>.<host>.<pid>-<start>[.<random>].tmp|lock"""

    host: str
    token: str

    @classmethod
    def of(cls, name: str) -> Writer | None:
        parts = name.split(".")
        if len(parts) < 5 or parts[0] != "" or "-" not in parts[3] or not parts[3].split("-")[0].isdigit():
            return None
        return cls(parts[2], parts[3])

    def alive(self, mtime: float, stale_after: float) -> bool:
        if self.host == HOST:
            return process_alive(self.token)
        return time.time() - mtime < stale_after

    def describe(self) -> str:
        return f"process {self.token.split('-')[0]} on {self.host}"


def write_atomic(path: Path, write) -> None:
    """Call write(file) on a temporary dot-file beside `path`, fsync, then os.replace it into place.

    The dot-file names its writer (host, pid and start time) so a later sweep can remove those of dead writers.
    Something that is not a file at `path` (a directory) is moved aside first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not path.is_file():
        quarantine(path, "not a file")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.{HOST}.{TOKEN}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_run(frame: pd.DataFrame, path: Path) -> None:
    write_atomic(path, lambda f: pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), f))


def quarantine(path: Path, reason: str) -> Path:
    """Move a damaged file (or whatever stands where a file should) to <experiment>/_damaged/, never deleting it."""
    folder = path.parent.parent if path.parent.name in ("runs", "_checkpoints") else path.parent
    target = damaged_dir(folder) / f"{path.name}.damaged"
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        target = target.with_name(f"{path.name}.{time.strftime('%Y%m%dT%H%M%S')}.{os.getpid()}.damaged")
    os.replace(path, target)
    log.warning("moved aside %s (%s): %s", path, reason, target)
    return target


# ----------------------------------------------------------------------------- done or not


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


# ----------------------------------------------------------------------------- locks


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming a run: ours to train, or held by another live process (`holder`, `lock`)."""

    ours: bool
    holder: str | None = None
    lock: Path | None = None

    def describe(self) -> str:
        return (f"being trained by {self.holder} (lock {self.lock}; if no such process runs, delete the lock "
                "and rerun)")


_held: set[Path] = set()
_reported: set[Path] = set()  # foreign lock files already warned about
_held_guard = threading.Lock()
_heart: threading.Thread | None = None


def _heartbeat() -> None:
    while True:
        time.sleep(LOCK_HEARTBEAT_S)
        with _held_guard:
            held = list(_held)
        for path in held:
            with contextlib.suppress(OSError):
                os.utime(path)


def _hold(path: Path) -> None:
    global _heart
    with _held_guard:
        _held.add(path)
        if _heart is None or not _heart.is_alive():
            _heart = threading.Thread(target=_heartbeat, name="ddescent-lock-heartbeat", daemon=True)
            _heart.start()


def _release(path: Path) -> None:
    with _held_guard:
        _held.discard(path)
    path.unlink(missing_ok=True)


def _live_locks(folder: Path, run_id: str) -> list[tuple[Path, Writer]]:
    """The locks on `run_id` whose owners are provably alive; the others are removed or reported."""
    live = []
    for p in folder.glob(f".{run_id}.*.lock"):
        writer = Writer.of(p.name)
        try:
            mtime = p.stat().st_mtime
        except FileNotFoundError:
            continue
        if writer is None:
            if p not in _reported:
                _reported.add(p)
                log.warning("ignoring %s: not a lock this version writes (delete it if no older ddescent is "
                            "running)", p)
        elif writer.alive(mtime, LOCK_STALE_S):
            live.append((p, writer))
        else:
            p.unlink(missing_ok=True)
            log.info("removed the lock of %s, which is no longer running: %s", writer.describe(), p)
    return live


@contextlib.contextmanager
def claim(folder: Path, run_id: str):
    """A lock file that says "a live process is training this run": concurrent sweeps over one results folder
    split the work instead of doing it twice. Yields a Claim; its `ours` is False when another live owner holds
    the run."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f".{run_id}.{HOST}.{TOKEN}.lock"
    others = [(p, w) for p, w in _live_locks(folder, run_id) if p != path]
    if others:
        yield Claim(False, others[0][1].describe(), others[0][0])
        return
    path.touch()
    _hold(path)
    try:
        # Two sweeps may pass the check together: the lexically first live lock wins, the other backs off.
        holders = sorted([(p.name, w) for p, w in _live_locks(folder, run_id)] + [(path.name, None)],
                         key=lambda t: t[0])
        first, writer = holders[0]
        yield Claim(True) if first == path.name else Claim(False, writer.describe(), folder / first)
    finally:
        _release(path)


def clean_stale(folder: Path) -> int:
    """Remove temporary files and locks left in `folder` by writers that died (kill -9, node failure)."""
    removed = 0
    if not folder.is_dir():
        return 0
    for p in folder.iterdir():
        if not p.name.startswith(".") or p.suffix not in (".tmp", ".lock"):
            continue
        writer = Writer.of(p.name)
        try:
            mtime = p.stat().st_mtime
            if writer is None and p.suffix == ".lock":
                continue  # reported by _live_locks when its run is claimed
            stale = LOCK_STALE_S if p.suffix == ".lock" else TMP_STALE_S
            if writer is None or not writer.alive(mtime, stale):
                if writer is None and time.time() - mtime < 24 * 3600:
                    continue
                p.unlink()
                removed += 1
        except FileNotFoundError:
            pass
    return removed


def log_training(folder: Path, run_id: str) -> None:
    """Append one line to <experiment>/_logs/trainings.jsonl: every training that starts, with where and when.
    (Lines this short are written whole by one append.)"""
    path = Path(folder) / "_logs" / "trainings.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"run_id": run_id, "host": HOST, "pid": os.getpid(),
                       "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")})
    with open(path, "a") as f:
        f.write(line + "\n")


def trainings(folder: str | Path) -> list[dict]:
    path = Path(folder) / "_logs" / "trainings.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


# ----------------------------------------------------------------------------- reading


def run_files(path: Path) -> list[Path]:
    """Every run file under `path`: a results root, an experiment folder, its runs/ folder, or one file."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*.parquet") if p.is_file() and p.parent.name == "runs"
                  and not any(part.startswith((".", "_")) for part in p.relative_to(path).parts))


def _conform(table: pa.Table) -> pa.Table:
    """The table with the standard columns in their standard kinds, or ValueError saying what is wrong."""
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise ValueError(f"not a ddescent run file (no {', '.join(missing)} column)")
    for i, name in enumerate(table.column_names):
        kind = table.schema.field(i).type
        if name in TEXT and not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind)):
            raise ValueError(f"column {name} holds {kind}, not text")
        if name in WHOLE + REAL and not (pa.types.is_integer(kind) or pa.types.is_floating(kind)
                                         or pa.types.is_null(kind)):
            raise ValueError(f"column {name} holds {kind}, not numbers")
        if name in REAL and not pa.types.is_float64(kind):
            table = table.set_column(i, name, table.column(i).cast(pa.float64()))
    return table


def _with_hyperparameters(table: pa.Table) -> pa.Table:
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
            table = _with_hyperparameters(_conform(pq.read_table(file)))
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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
