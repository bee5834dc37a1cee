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
import datetime
import hashlib
import json
import logging
from pathlib import Path

import torch

from ddescent import store
from ddescent.files import NotRegular, open_regular

log = logging.getLogger("ddescent")


# train.keep_final=auto keeps a pack's final state up to this size (fig9_9's 16 packs keep 7.7 MB in all; a ResNet18
# at k = 64 is above it).
FINAL_AUTO_BYTES = 64e6


def _tensor_bytes(node) -> int:
    if isinstance(node, torch.Tensor):
        return node.numel() * node.element_size()
    if isinstance(node, dict):
        return sum(_tensor_bytes(v) for v in node.values())
    if isinstance(node, (list, tuple)):
        return sum(_tensor_bytes(v) for v in node)
    return 0


def _utc() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def key(run_ids: list[str]) -> str:
    return hashlib.sha256(",".join(sorted(run_ids)).encode()).hexdigest()[:12]


def _runs_of(meta: Path):
    with open_regular(meta) as f:
        return json.loads(f.read())["runs"]


def pending_groups(folder: Path) -> list[list[str]]:
    """The runs of every checkpoint and kept final state in an experiment folder (each list trains together on a
    rerun, so that it resumes there)."""
    out = []
    metas = [*store.checkpoints_dir(folder).glob("*.json"), *store.finals_dir(folder).glob("*.json")]
    for meta in sorted(metas, key=lambda m: (m.name, m.parent.name)):
        try:
            runs = _runs_of(meta)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if isinstance(runs, list) and all(isinstance(r, str) for r in runs) and key(runs) == meta.stem \
                and meta.with_suffix(".pt").exists() and runs not in out:
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
    """The checkpoint of the runs `run_ids` (trained together), saved every `every` epochs of `epochs`; with
    `keep_final` (True, or "auto": when it is at most FINAL_AUTO_BYTES) their final state is kept too, in
    `_final/` (see ddescent.extension); with `base` (a kept final state of shorter runs and their ids, in this
    pack's order: extension.of_pack) runs without a checkpoint of their own continue that state."""

    def __init__(self, folder: Path, run_ids: list[str], every: int, epochs: int, keep: bool = False,
                 keep_final: bool | str = False, base=None):
        self.run_ids, self.every, self.epochs, self.keep = list(run_ids), every, epochs, keep
        self.keep_final, self.base = keep_final, base
        self.path = store.checkpoints_dir(folder) / f"{key(run_ids)}.pt"
        self.meta = self.path.with_suffix(".json")
        self.final = store.finals_dir(folder) / f"{key(run_ids)}.pt"
        self.started_at: str | None = None  # when the runs first started (kept across resumes)
        self.resumed_at: str | None = None
        self.extends: dict[str, str] = {}  # {run: the run it continues} after resuming from `base`

    @staticmethod
    def exists(folder: Path, run_ids: list[str]) -> bool:
        """A checkpoint or a kept final state of these runs (trained together) is there."""
        name = f"{key(run_ids)}.pt"
        return (store.checkpoints_dir(folder) / name).exists() or (store.finals_dir(folder) / name).exists()

    def resume(self, parts: dict) -> int:
        """Load into `parts` ({name: object with state_dict/load_state_dict}) the runs' own kept final state (they
        trained to the end, their files were not written), else their checkpoint, else the kept final state of
        `base`, and return its epoch; 0 (parts untouched) when none is there or fits (a state that does not fit is
        moved aside). The runs' own states bring back when they started and what they extend."""
        own = ([(self.final, self.epochs)] if self.keep_final else []) + [(self.path, None)]
        for path, epoch in own:  # (the final state: trained to the end before, its files never written)
            state = self._load(path, self.run_ids, parts, epoch=epoch)
            if state is not None:
                self.started_at = state.get("started_at") or self.started_at
                self.extends = state.get("extends") or {}
                self.resumed_at = _utc()
                log.debug("resuming %d run(s) from epoch %d (%s)", len(self.run_ids), state["epoch"], path.name)
                return state["epoch"]
        if self.base is None:
            return 0
        final, bases = self.base
        state = self._load(final.path, list(final.runs), parts, epoch=final.epoch)
        if state is None:
            return 0
        self.extends = dict(zip(self.run_ids, bases))
        log.debug("extending %d run(s) of %d epochs (%s)", len(bases), final.epoch, ", ".join(bases))
        return final.epoch

    def _load(self, path: Path, runs: list[str], parts: dict, epoch: int | None = None) -> dict | None:
        """The state in `path`, loaded into `parts`, when it is that of `runs` (at `epoch`, if given) and fits;
        else None, `parts` untouched, and the file moved aside."""
        if not path.exists():
            return None
        try:
            with open_regular(path) as f:  # a FIFO there would block the read forever
                state = torch.load(f, map_location="cpu", weights_only=True)
        except Exception as exc:  # truncated, not a checkpoint, or carrying objects we refuse to unpickle
            why = "not a regular file" if isinstance(exc, NotRegular) else type(exc).__name__
            store.quarantine(path, f"unreadable checkpoint ({why})")
            return None
        backup = {name: copy.deepcopy(part.state_dict()) for name, part in parts.items()}
        try:
            self._check(state, parts, runs, epoch)
            for name, part in parts.items():
                part.load_state_dict(state["parts"][name])  # (modules and optimizers copy onto their device)
        except Exception as exc:  # a checkpoint of other runs, another version, or tampered with
            for name, part in parts.items():
                part.load_state_dict(backup[name])
            store.quarantine(path, f"checkpoint does not fit these runs: {exc}")
            return None
        return state

    def _check(self, state, parts: dict, runs: list[str], expected: int | None = None) -> int:
        if not isinstance(state, dict) or state.get("runs") != runs:
            raise ValueError("it belongs to other runs")
        epoch = state.get("epoch")
        if expected is not None and epoch != expected:  # (a kept final state: the epoch its sidecar names)
            raise ValueError(f"epoch {epoch!r}, its sidecar says {expected}")
        if expected is None and (not isinstance(epoch, int) or not 1 <= epoch < self.epochs):
            raise ValueError(f"epoch {epoch!r} is outside 1..{self.epochs - 1}")
        if not isinstance(state.get("parts"), dict) or set(state["parts"]) != set(parts):
            raise ValueError(f"parts {sorted(state.get('parts') or [])}, expected {sorted(parts)}")
        recorded = state["parts"].get("recorder", {}).get("epoch")
        if recorded != epoch:
            raise ValueError(f"records end at epoch {recorded}, the checkpoint at {epoch}")
        return epoch

    def _state(self, epoch: int, parts: dict) -> dict:
        """What a checkpoint and a final state hold: the runs, the epoch, every part, and the runs' life so far."""
        return {"runs": self.run_ids, "epoch": epoch, "parts": {n: p.state_dict() for n, p in parts.items()},
                "started_at": self.started_at, "extends": self.extends}

    def save(self, epoch: int, parts: dict, now: bool = False) -> None:
        """Every `every` epochs (not at the last: the results are written then), or `now` (a stop was asked)."""
        if epoch >= self.epochs or not now and (not self.every or epoch % self.every):
            return
        state = self._state(epoch, parts)
        if not self.meta.exists():
            store.write_atomic(self.meta, lambda f: f.write(json.dumps({"runs": self.run_ids}).encode()))
        store.write_atomic(self.path, lambda f: torch.save(state, f))
        if now:
            log.warning("checkpointed %d run(s) at epoch %d (%s)", len(self.run_ids), epoch, self.path.name)

    def save_final(self, epoch: int, parts: dict) -> None:
        """Keep the state the runs ended in (train.keep_final), for a sweep with more epochs to continue; "auto"
        keeps it when it is at most FINAL_AUTO_BYTES. Written before the runs' files: should writing them fail,
        the rerun writes them from this state without training."""
        if not self.keep_final:
            return
        state = self._state(epoch, parts)
        size = _tensor_bytes(state)
        if self.keep_final == "auto" and size > FINAL_AUTO_BYTES:
            log.debug("final state of %d run(s) not kept: %.0f MB > %.0f MB (train.keep_final=true keeps it)",
                      len(self.run_ids), size / 1e6, FINAL_AUTO_BYTES / 1e6)
            return
        try:
            store.write_atomic(self.final.with_suffix(".json"),
                               lambda f: f.write(json.dumps({"runs": self.run_ids, "epoch": epoch}).encode()))
            store.write_atomic(self.final, lambda f: torch.save(state, f))
        except OSError as exc:  # a shortcut for later, not the runs' result: their files come next
            log.warning("final state of %d run(s) not kept (%s): %s", len(self.run_ids), self.final,
                        exc.strerror or exc)

    def kept(self) -> str:
        """Where the runs' training is kept until their files are written (for the message of a failed write)."""
        if self.final.exists():
            return f"their final state is kept in {self.final}"
        if self.path.exists():
            return f"their checkpoint is kept in {self.path}"
        return "nothing of their training is kept (train.checkpoint_every=0, train.keep_final=false)"

    def close(self) -> None:
        """Call once the runs' files are written (never before: until then the checkpoint is all there is of
        them): their checkpoint has served, unless asked to keep it."""
        if not self.keep:
            self.path.unlink(missing_ok=True)
            self.meta.unlink(missing_ok=True)

