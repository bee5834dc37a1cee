"""Results on disk: `<results>/<experiment>/runs/<run_id>.parquet`, one file per finished run.

A file is written to a temporary dot-file in the same folder and moved into place with os.replace, so a
reader never sees half a file, a crash never leaves a damaged one, and its presence means "done".
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import time
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


HOST = socket.gethostname().replace(".", "-")  # dots separate the fields of temporary names
STALE_AFTER_S = 24 * 3600  # a dot-file from another host is presumed dead after this long


def write_atomic(path: Path, write) -> None:
    """Call write(file) on a temporary dot-file beside `path`, fsync, then os.replace it into place.

    The dot-file names its writer (host and pid) so a later sweep can remove those of dead writers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.{HOST}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
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


def _writer_alive(name: str, mtime: float) -> bool:
    """Whether the process named in a dot-file's name (.<stem>.<host>.<pid>[.<random>].tmp|lock) may still run."""
    parts = name.split(".")
    if len(parts) >= 5 and parts[2] == HOST and parts[3].isdigit():
        try:
            os.kill(int(parts[3]), 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
    return time.time() - mtime < STALE_AFTER_S


def clean_stale(folder: Path) -> int:
    """Remove temporary files and locks left in `folder` by writers that died (kill -9, node failure)."""
    removed = 0
    if not folder.is_dir():
        return 0
    for p in folder.iterdir():
        if p.name.startswith(".") and p.suffix in (".tmp", ".lock"):
            try:
                if not _writer_alive(p.name, p.stat().st_mtime):
                    p.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
    return removed


@contextlib.contextmanager
def claim(folder: Path, run_id: str):
    """A lock file that says "a live process is training this run": concurrent sweeps over one results
    folder split the work instead of doing it twice. Yields False when another live writer holds it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f".{run_id}.{HOST}.{os.getpid()}.lock"
    others = [p for p in folder.glob(f".{run_id}.*.lock") if p != path]
    if any(_writer_alive(p.name, p.stat().st_mtime) for p in others if p.exists()):
        yield False
        return
    path.touch()
    # Two sweeps may pass the check together: the lexically first lock wins, the other backs off.
    holders = sorted(p.name for p in folder.glob(f".{run_id}.*.lock")
                     if p == path or _writer_alive(p.name, p.stat().st_mtime))
    try:
        yield holders[0] == path.name
    finally:
        path.unlink(missing_ok=True)


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
