"""Runs a preset no longer asks for: after a preset changes (a new recipe, other seeds), its folder keeps the runs of
the old one. `ddescent ls --stale` lists the runs of an experiment folder that `ddescent sweep experiment=NAME` would
not plan today; `ddescent gc RESULTS --stale` moves them to `_stale/` beside `runs/` (never deletes: moving them
back restores them)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ddescent import hydra_cli, planner, store
from ddescent.analysis import final
from ddescent.errors import ConfigError


def stale(folder: str | Path, preset: str | None = None) -> pd.DataFrame:
    """The final rows of the runs in `folder` that `experiment=preset` (default: the folder's experiment name) would
    not plan. ConfigError when there is no such preset."""
    folder = Path(folder)
    df = store.load(folder)
    if df.empty:
        return df
    name = preset or _one(df["experiment"])
    known = [option for option, _ in hydra_cli.group_options("experiment")]
    if name not in known:
        raise ConfigError(f"{folder}: its runs come from experiment {name!r}, which is not a preset "
                          f"({', '.join(known[:8])}, ...); name one with --preset")
    planned = planner.plan([f"experiment={name}"], str(folder.parent), memory_check=False)
    wanted = {job.spec.run_id for job in planned if Path(job.spec.folder).resolve() == folder.resolve()}
    finals = final(df)
    return finals[~finals["run_id"].isin(wanted)].reset_index(drop=True)


def set_aside(folder: str | Path, run_ids) -> list[Path]:
    """Move these runs' files from runs/ to _stale/ (an atomic rename each: a run is in one place or the other)."""
    folder = Path(folder)
    target = folder / "_stale"
    target.mkdir(exist_ok=True)
    moved = []
    for run_id in run_ids:
        source = store.run_path(folder, run_id)
        if source.exists():
            os.replace(source, target / source.name)
            moved.append(target / source.name)
    return moved


def _one(values: pd.Series) -> str:
    names = sorted(set(values.dropna()))
    if len(names) != 1:
        raise ConfigError(f"runs of several experiments here ({', '.join(names)}); name the preset with --preset")
    return names[0]
