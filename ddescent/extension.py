"""Extending a sweep: a run of N epochs continues the final state of the same run trained for E < N epochs
instead of starting over.

A pack that trains to its last epoch keeps its final state (net, optimizer, batch order, records: the parts a
checkpoint holds) in `<experiment>/_final/<key>.pt`, with `<key>.json` naming its runs and epoch
(train.keep_final; ddescent.checkpoint writes them). A run differs from its E-epoch base only in `epochs`, and
nothing in the training depends on the total (the learning-rate schedules run per step, evaluations do not touch
the state), so continuing the base from epoch E+1 computes what a fresh N-epoch run computes: the records keep the
base's rows up to E and add the N-epoch run's evaluation epochs after it. The extended run is a new run (its own
run id, the N-epoch run's), whose records name the run it extends (`extends`).

A kept state holds its pack whole, so its runs are continued together, in its order: a run whose pack-mates the
sweep does not extend, or whose base kept no state (too large, keep_final=false, stopped early), is trained from
the start, and the plan says so.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from ddescent import store
from ddescent.files import open_regular
from ddescent.spec import MIRRORS, put, run_id


@dataclass(frozen=True)
class Final:
    """A kept final state: the runs trained together (in their order) and the epoch they ended at."""

    key: str
    runs: tuple[str, ...]
    epoch: int
    path: Path


def finals(folder: Path) -> list[Final]:
    """The final states kept in an experiment folder (sidecars that do not read, or lack their state, are
    passed over)."""
    out = []
    for meta in sorted(store.finals_dir(folder).glob("*.json")):
        try:
            with open_regular(meta) as f:
                blob = json.loads(f.read())
            runs, epoch = tuple(blob["runs"]), blob["epoch"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if isinstance(epoch, int) and epoch > 0 and all(isinstance(r, str) for r in runs) \
                and meta.with_suffix(".pt").exists():
            out.append(Final(meta.stem, runs, epoch, meta.with_suffix(".pt")))
    return out


def extendable(config: dict) -> bool:
    """Trained runs counted in epochs can be extended; a budget of optimizer steps (train.steps) fixes its own
    length, and a closed-form solve has no state to continue."""
    from ddescent import models

    family = models.family(config["model"]["name"])
    closed = family.solve is not None and config["model"].get("solver") in family.closed_form
    return not config["train"].get("steps") and not closed


def base_config(config: dict, epochs: int) -> dict:
    """The config of the same run trained for `epochs` epochs (the axis and the group keys that mirror it)."""
    base = copy.deepcopy(config)
    for key in ["epochs", *(k for k, axis in MIRRORS.items() if axis == "epochs")]:
        put(base, key, epochs)
    return base


def base_id(config: dict, fingerprint: str | None, epochs: int) -> str:
    return run_id(base_config(config, epochs), fingerprint)


def of_pack(specs: list) -> tuple[Final, list[str]] | None:
    """The kept final state that the runs `specs` (one pack, in its order) continue, and their base runs; the
    one of most epochs when several fit; None when none does."""
    if not specs or not all(extendable(s.config) for s in specs):
        return None
    epochs = specs[0].config["epochs"]
    best = None
    for final in finals(specs[0].folder):
        if final.epoch >= epochs or len(final.runs) != len(specs) or best and best[0].epoch >= final.epoch:
            continue
        bases = [base_id(s.config, s.fingerprint, final.epoch) for s in specs]
        if tuple(bases) == final.runs and all(store.is_done(specs[0].folder, b) for b in bases):
            best = (final, bases)
    return best


@dataclass(frozen=True)
class Extension:
    """How the planner continues a pending run: from `base` (a run of `epoch` epochs), with the pack `together`
    (the new runs, in the kept state's order); or, `together` empty, why it is trained from the start."""

    base: str
    epoch: int
    together: tuple[str, ...] = ()
    why_not: str = ""


def plan(jobs: list) -> dict[str, Extension]:
    """For the pending jobs that have a shorter finished run: {run_id: Extension}. Each kept state is used whole
    (all its runs pending in this sweep), the one of most epochs first."""
    out: dict[str, Extension] = {}
    pending = [j for j in jobs if not j.done and extendable(j.spec.config)]
    for folder in {j.spec.folder for j in pending}:
        here = [j for j in pending if j.spec.folder == folder]
        kept = sorted(finals(folder), key=lambda f: -f.epoch)
        for final in kept:
            mapped = {}
            for job in here:
                if job.spec.run_id not in out and final.epoch < job.spec.config["epochs"]:
                    b = base_id(job.spec.config, job.spec.fingerprint, final.epoch)
                    if b in final.runs:
                        mapped[b] = job
            if len(mapped) == len(final.runs) and all(store.is_done(folder, b) for b in final.runs):
                together = tuple(mapped[b].spec.run_id for b in final.runs)
                for b in final.runs:
                    out[mapped[b].spec.run_id] = Extension(b, final.epoch, together)
        lengths = None
        for job in here:  # a shorter run is done, but its state was not kept (or is kept with runs not asked for)
            if job.spec.run_id in out:
                continue
            lengths = sorted(_finished_epochs(folder), reverse=True) if lengths is None else lengths
            for epoch in lengths:
                b = base_id(job.spec.config, job.spec.fingerprint, epoch) if epoch < job.spec.config["epochs"] else None
                if b and store.is_done(folder, b):
                    partial = next((f for f in kept if b in f.runs and f.epoch == epoch), None)
                    why = (f"its {epoch}-epoch run {b} kept its final state with runs this sweep does not extend"
                           if partial else f"its {epoch}-epoch run {b} kept no final state (train.keep_final)")
                    out[job.spec.run_id] = Extension(b, epoch, why_not=why)
                    break
    return out


def _finished_epochs(folder: Path) -> set[int]:
    """The run lengths (epochs) stored in an experiment folder, read from each run file's config."""
    found = set()
    for path in store.runs_dir(folder).glob("*.parquet"):
        try:
            first = next(pq.ParquetFile(path).iter_batches(batch_size=1, columns=["config"]))
            found.add(int(json.loads(first.column(0)[0].as_py())["epochs"]))
        except Exception:  # a damaged or foreign file says nothing here (the planner reports it)
            continue
    return found
