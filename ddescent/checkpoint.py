"""Checkpoints of runs in training: an interrupted run resumes with exactly the numbers an uninterrupted one
would have produced.

A checkpoint holds the state of every part of the training (the net, the step with its optimizer and
regularizer, the batch order, the records so far, early stopping) for the runs trained together, in
`<experiment>/_checkpoints/<key>.pt`, with `<key>.json` naming those runs so that the planner can put them
together again whatever else the rerun holds. It is read with `weights_only` (no code runs on loading) and is
only used when it fits: the same runs, an epoch inside the run, and parts that load without complaint (shapes,
keys, generator states, records consistent with the epoch). Anything else is moved to `_damaged/` and the runs
start over.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from pathlib import Path

import torch

from ddescent import store
from ddescent.files import NotRegular, open_regular

log = logging.getLogger("ddescent")


def key(run_ids: list[str]) -> str:
    return hashlib.sha256(",".join(sorted(run_ids)).encode()).hexdigest()[:12]


def _runs_of(meta: Path):
    with open_regular(meta) as f:
        return json.loads(f.read())["runs"]


def pending_groups(folder: Path) -> list[list[str]]:
    """The runs of every checkpoint in an experiment folder (each list trains together on a rerun)."""
    out = []
    for meta in sorted(store.checkpoints_dir(folder).glob("*.json")):
        try:
            runs = _runs_of(meta)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if isinstance(runs, list) and all(isinstance(r, str) for r in runs) and key(runs) == meta.stem \
                and meta.with_suffix(".pt").exists():
            out.append(runs)
    return out


def remove_finished(folder: Path) -> int:
    """Delete the checkpoints whose runs are all done (left by a run killed between its last write and the
    checkpoint's removal), and sidecars without a checkpoint."""
    removed = 0
    for meta in store.checkpoints_dir(folder).glob("*.json"):
        pt = meta.with_suffix(".pt")
        try:
            runs = _runs_of(meta)
            done = all(store.is_done(folder, r) for r in runs)
        except (OSError, ValueError, KeyError, TypeError):
            runs, done = [], True
        if done or not pt.exists():
            pt.unlink(missing_ok=True)
            meta.unlink(missing_ok=True)
            removed += 1
    return removed


class Checkpoint:
    """The checkpoint of the runs `run_ids` (trained together), saved every `every` epochs of `epochs`."""

    def __init__(self, folder: Path, run_ids: list[str], every: int, epochs: int, keep: bool = False):
        self.run_ids, self.every, self.epochs, self.keep = list(run_ids), every, epochs, keep
        self.path = store.checkpoints_dir(folder) / f"{key(run_ids)}.pt"
        self.meta = self.path.with_suffix(".json")

    @staticmethod
    def exists(folder: Path, run_ids: list[str]) -> bool:
        return (store.checkpoints_dir(folder) / f"{key(run_ids)}.pt").exists()

    def resume(self, parts: dict) -> int:
        """Load the checkpoint into `parts` ({name: object with state_dict/load_state_dict}) and return its epoch;
        0 (parts untouched) when there is none or it does not fit, in which case it is moved aside."""
        if not self.path.exists():
            return 0
        try:
            with open_regular(self.path) as f:  # a FIFO there would block the read forever
                state = torch.load(f, map_location="cpu", weights_only=True)
        except Exception as exc:  # truncated, not a checkpoint, or carrying objects we refuse to unpickle
            why = "not a regular file" if isinstance(exc, NotRegular) else type(exc).__name__
            store.quarantine(self.path, f"unreadable checkpoint ({why})")
            return 0
        backup = {name: copy.deepcopy(part.state_dict()) for name, part in parts.items()}
        try:
            epoch = self._check(state, parts)
            for name, part in parts.items():
                part.load_state_dict(state["parts"][name])  # (modules and optimizers copy onto their device)
        except Exception as exc:  # a checkpoint of other runs, another version, or tampered with
            for name, part in parts.items():
                part.load_state_dict(backup[name])
            store.quarantine(self.path, f"checkpoint does not fit these runs: {exc}")
            return 0
        log.debug("resuming %d run(s) from epoch %d (%s)", len(self.run_ids), epoch, self.path.name)
        return epoch

    def _check(self, state, parts: dict) -> int:
        if not isinstance(state, dict) or state.get("runs") != self.run_ids:
            raise ValueError("it belongs to other runs")
        epoch = state.get("epoch")
        if not isinstance(epoch, int) or not 1 <= epoch < self.epochs:
            raise ValueError(f"epoch {epoch!r} is outside 1..{self.epochs - 1}")
        if not isinstance(state.get("parts"), dict) or set(state["parts"]) != set(parts):
            raise ValueError(f"parts {sorted(state.get('parts') or [])}, expected {sorted(parts)}")
        recorded = state["parts"].get("recorder", {}).get("epoch")
        if recorded != epoch:
            raise ValueError(f"records end at epoch {recorded}, the checkpoint at {epoch}")
        return epoch

    def save(self, epoch: int, parts: dict, now: bool = False) -> None:
        """Every `every` epochs (not at the last: the results are written then), or `now` (a stop was asked)."""
        if epoch >= self.epochs or not now and (not self.every or epoch % self.every):
            return
        state = {"runs": self.run_ids, "epoch": epoch, "parts": {n: p.state_dict() for n, p in parts.items()}}
        if not self.meta.exists():
            store.write_atomic(self.meta, lambda f: f.write(json.dumps({"runs": self.run_ids}).encode()))
        store.write_atomic(self.path, lambda f: torch.save(state, f))
        if now:
            log.warning("checkpointed %d run(s) at epoch %d (%s)", len(self.run_ids), epoch, self.path.name)

    def close(self) -> None:
        """Call once the runs' files are written (never before: until then the checkpoint is all there is of
        them): their checkpoint has served, unless asked to keep it."""
        if not self.keep:
            self.path.unlink(missing_ok=True)
            self.meta.unlink(missing_ok=True)

