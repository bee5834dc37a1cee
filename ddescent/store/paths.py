"""Where an experiment's files live, and where a damaged one goes:

    <results>/<experiment>/runs/<run_id>.parquet    one file per finished run (the records; nothing else is .parquet)
    <results>/<experiment>/_figures/                figures drawn from the records
    <results>/<experiment>/_checkpoints/            state of packs still training (removed when their runs finish)
    <results>/<experiment>/_damaged/                unreadable run files and checkpoints, moved aside, never deleted
    <results>/<experiment>/_logs/trainings.jsonl     one line per training started: which run, where, when
    <results>/<experiment>/.hydra/, .sweep/         Hydra's and the launchers' own files

Everything that is not a run file lives under a name that starts with `_` or `.`, which pyarrow's dataset
discovery skips, so `pyarrow.dataset.dataset(results)` reads every run and nothing else.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

log = logging.getLogger("ddescent")


def experiment_folders(results: str | Path) -> list[Path]:
    """The experiment folders under `results` (itself, when it is one), in name order; folders named `_*` or `.*`
    are ddescent's own."""
    results = Path(results)
    if (results / "runs").is_dir():
        return [results]
    return sorted({p.parent for p in results.rglob("runs") if p.is_dir()
                   and not any(part.startswith((".", "_")) for part in p.relative_to(results).parts)})


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


def finals_dir(folder: str | Path) -> Path:
    return Path(folder) / "_final"


def logs_dir(folder: str | Path) -> Path:
    return Path(folder) / "_logs"


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
