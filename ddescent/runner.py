"""One training: the runs of one pack (or a single run), from claiming them to their result files.

    claim each run -> data -> models -> batched net -> train (or a closed-form solve) -> regularizer's finish
    -> records -> one parquet file per run

`events(kind, payload)` hears what happens, for progress bars, log lines and trackers: "start" (the runs, their
epochs and n_params per run_id), "epoch" (progress, with the rows just recorded per run_id) and "run" (an Outcome
per run).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

import pandas as pd
import torch

from ddescent import accel, extension, loggers, models, packing, regularizers, store
from ddescent import data as datasets
from ddescent.accel import resolve_device
from ddescent.checkpoint import Checkpoint
from ddescent.history import History
from ddescent.metrics import per_model_loss
from ddescent.models import ManualBackward
from ddescent.optim import make_optimizer, make_schedule
from ddescent.regularizers import Penalty
from ddescent.seeds import INIT_STREAM, generator
from ddescent.spec import RunSpec, hyperparameters
from ddescent.step import Step
from ddescent.train import Plan, Trained, train
from ddescent.version import __version__

Events = Callable[[str, dict], None]


@dataclass
class Outcome:
    """How one run of a training ended: complete | diverged | failed, or held (another live process is
    training it) | done (finished before; skipped) | interrupted (a stop was asked: checkpointed, not written)."""

    run_id: str
    label: str
    status: str
    seconds: float = 0.0
    final: dict = field(default_factory=dict)  # train_error, test_error of the last evaluation
    note: str = ""


def execute(specs: list[RunSpec], events: Events | None = None, force: bool = False) -> list[Outcome]:
    """Train the runs of one pack and write one parquet file per run. Runs already finished (unless `force`),
    or being trained by another live process, are left out; a checkpoint of these runs is resumed. Done runs of a
    checkpoint whose other runs are not (a pack killed while writing its files) train along from the checkpoint,
    and only the missing files are written."""
    events = events or (lambda kind, payload: None)
    outcomes, todo, done = [], [], []
    with contextlib.ExitStack() as stack:
        for spec in specs:
            claim = stack.enter_context(store.claim(store.runs_dir(spec.folder), spec.run_id))
            if not claim.ours:
                outcomes.append(Outcome(spec.run_id, spec.label, "held", note=claim.describe()))
            elif not force and store.is_done(spec.folder, spec.run_id):
                outcomes.append(Outcome(spec.run_id, spec.label, "done"))
                done.append(spec)
            else:
                store.set_aside_if_damaged(spec.folder, spec.run_id)
                store.log_training(spec.folder, spec.run_id)
                todo.append(spec)
        if todo and done and Checkpoint.exists(todo[0].folder, [s.run_id for s in specs]):
            outcomes += _train_and_store([s for s in specs if s in todo or s in done], events,
                                         write={s.run_id for s in todo})
        elif todo:
            outcomes += _train_and_store(todo, events, extend=not force)
    return outcomes


def _train_and_store(specs: list[RunSpec], events: Events, write: set[str] | None = None,
                     extend: bool = False) -> list[Outcome]:
    """Train, then write each run's file (those in `write`, by default all); every evaluation row also goes to the
    runs' trackers (logger=...). With `extend`, runs continue the kept final state of their shorter runs where
    there is one (ddescent.extension)."""
    write = {s.run_id for s in specs} if write is None else write
    trackers = loggers.Trackers([s for s in specs if s.run_id in write])
    try:
        return _train_and_write(specs, lambda kind, payload: (trackers(kind, payload), events(kind, payload)),
                                trackers, write, extend)
    except BaseException as exc:
        trackers.close_all("interrupted" if isinstance(exc, KeyboardInterrupt) else "failed")
        raise


def _train_and_write(specs: list[RunSpec], events: Events, trackers: loggers.Trackers, write: set[str],
                     extend: bool = False) -> list[Outcome]:
    shared = packing.shared(specs)  # data, family, recipe: the same for every member (only width and seed differ)
    started = _utc()
    device = resolve_device(shared.train.device)
    data = datasets.load(shared.data, device)
    family = models.family(shared.model)
    members = [models.build(s.cfg.model, data.input_shape, data.n_classes, generator(s.cfg.train.seed, INIT_STREAM))
               for s in specs]
    events("start", {"runs": [s.run_id for s in specs], "labels": [s.label for s in specs],
                     "epochs": _epochs(shared, data),
                     "n_params": {s.run_id: models.count_params(m) for s, m in zip(specs, members)}})
    clock = time.perf_counter()
    checkpoint = None
    if family.solve is not None and shared.model.get("solver") in family.closed_form:
        histories = [_solved(family, s, m, data) for s, m in zip(specs, members)]
    else:
        checkpoint = Checkpoint(specs[0].folder, [s.run_id for s in specs], shared.train.checkpoint_every,
                                _epochs(shared, data), shared.train.keep_checkpoints,
                                keep_final=shared.train.get("keep_final", "auto"),
                                base=extension.of_pack(specs) if extend else None)
        checkpoint.started_at = started
        trained = _fit(family, specs, members, data, device, events, checkpoint)
        if trained.stopped == "preempted":  # the checkpoint holds them; the requeued job finishes them
            trackers.close_all("interrupted")
            return [Outcome(s.run_id, s.label, "interrupted", note=f"checkpointed at epoch {trained.epoch}")
                    for s in specs]
        histories = trained.histories
    outcomes = []
    for spec, member, history in zip(specs, members, histories):
        if spec.run_id not in write:
            continue
        frame = records(spec, member, data, history, device, started, checkpoint)
        path = store.run_path(spec.folder, spec.run_id)
        try:
            store.write_run(frame, path)
        except OSError as exc:  # a full disk, a quota: the run is trained, its file is not
            kept = checkpoint.kept() if checkpoint is not None else "a closed-form solve: it is quick to redo"
            outcome = Outcome(spec.run_id, spec.label, "failed", time.perf_counter() - clock,
                              note=f"could not write {path}: {exc.strerror or exc}; {kept} (rerun to write it)")
        else:
            trackers.close(spec.run_id, history)
            last = history.rows[-1] if history.rows else {}
            outcome = Outcome(spec.run_id, spec.label, history.status, time.perf_counter() - clock,
                              {k: last.get(k) for k in ("train_error", "test_error")})
        outcomes.append(outcome)
        events("run", {"outcome": outcome})
    if checkpoint is not None and all(o.status != "failed" for o in outcomes):
        checkpoint.close()  # only now: until every run file is written, the checkpoint is all there is of them
    return outcomes


def _solved(family: models.Family, spec: RunSpec, member: torch.nn.Module, data) -> History:
    start = time.perf_counter()
    rows = family.solve(member.to(data.x_train.device), data, spec.cfg)
    for row in rows:
        row.setdefault("wall_time_s", time.perf_counter() - start)
    finite = all(math.isfinite(v) for row in rows for v in row.values() if isinstance(v, float))
    return History(rows, "complete" if finite else "diverged")


def _epochs(cfg, data) -> int:
    """Epochs to train: `epochs`, or a budget of optimizer steps (the same at every n_train) in whole epochs."""
    if cfg.train.get("steps"):
        return math.ceil(cfg.train.steps / math.ceil(len(data.y_train) / cfg.train.batch_size))
    return int(cfg.train.epochs)


def _fit(family, specs: list[RunSpec], members: list, data, device, events: Events, checkpoint: Checkpoint) -> Trained:
    """The training loop for the members (one batched net), then the regularizer's finish of a lone run."""
    shared = specs[0].cfg
    with accel.precision_context(shared.train.precision, device):
        net = packing.batched(family, members).to(device)
        if shared.train.get("channels_last"):
            net.to_channels_last(data.x_train[:1].unsqueeze(0))
        spec = regularizers.regularizer(shared.regularizer)
        regularizer = spec.build(shared.regularizer).to(device)
        optimizer = make_optimizer([{"params": list(net.parameters())}] + regularizer.param_groups(shared.optim.lr),
                                   shared.optim)
        smoothing = float(shared.train.get("label_smoothing", 0.0))
        by_hand = isinstance(net, ManualBackward) and data.y_train.dim() == 1 and not data.regression
        # (no penalty at all without a term: Penalty would return None every step, and CUDA graphs want none)
        penalty = Penalty(regularizer, regularizer.regularized(net), shared.regularizer, len(data.y_train)) \
            if spec.name != "none" and shared.regularizer.strength else None
        step = Step(net, optimizer, lambda out, y: per_model_loss(out, y, smoothing).sum(),
                    schedule=make_schedule(optimizer, shared.optim), penalty=penalty, regularizer=regularizer, lean=True, precision=shared.train.precision,
                    compile=shared.train.compile,
                    backward=(lambda x, y: net.backward_by_hand(x, y, smoothing)) if by_hand else None)
        epochs = _epochs(shared, data)
        ids = [s.run_id for s in specs]

        def watch(epoch: int, rows: dict) -> None:
            events("epoch", {"runs": ids, "epoch": epoch, "epochs": epochs,
                             "rows": {ids[g]: row for g, row in rows.items()},
                             "extends": [checkpoint.extends[i] for i in ids if i in checkpoint.extends]})

        plan = Plan([s.cfg.train.seed for s in specs], epochs, shared.train.batch_size, shared.train.eval_points,
                    shared.train.patience, int(shared.train.get("length_buckets", 0)), regularizer.columns, watch)
        trained = train(net, data, plan, step, checkpoint)
        if spec.finish is not None and trained.stopped != "preempted" and trained.histories[0].status == "complete":
            trained.histories[0].summary.update(spec.finish(regularizer, net, data, shared))  # never packed
    return trained


# ----------------------------------------------------------------------------- records


def records(spec: RunSpec, member: torch.nn.Module, data, history: History, device, started: str,
            checkpoint: Checkpoint | None = None) -> pd.DataFrame:
    """The long-format rows of one run (results contract, design §4), with its hyperparameters as flat columns
    and its provenance: when it first started (kept across resumes from its checkpoint), when it last resumed,
    and the run it extends (ddescent.extension)."""
    cfg = spec.cfg
    frame = pd.DataFrame(history.rows)
    meta = {
        "run_id": spec.run_id,
        "experiment": cfg.name,
        "status": history.status,
        "dataset": cfg.data.name,
        "model": cfg.model.name,
        "optimizer": cfg.optim.name,
        "regularizer": cfg.regularizer.name,
        "width": int(cfg.width) if float(cfg.width).is_integer() else float(cfg.width),
        "n_params": models.count_params(member),
        "n_train": len(data.y_train),
        "n_test": len(data.y_test),
        "label_noise": float(cfg.label_noise),
        "label_noise_effective": data.label_noise_effective,
        "task": "regression" if data.regression else "sequence" if data.y_train.dim() > 1 else "classification",
        "reg_strength": float(cfg.regularizer.strength),
        "seed": int(cfg.train.seed),
        "data_seed": int(cfg.data.data_seed),
        "config": json.dumps(spec.config, sort_keys=True),
        "ddescent_version": __version__,
        "torch_version": torch.__version__,
        "device": str(device),
        "precision": cfg.train.get("precision", "fp32"),
        "compile": cfg.train.get("compile", "none"),
        "data_fingerprint": spec.fingerprint,
        **provenance(),
        "started_at": checkpoint.started_at if checkpoint is not None and checkpoint.started_at else started,
        "resumed_at": checkpoint.resumed_at if checkpoint is not None else None,
        "finished_at": _utc(),
        "extends": checkpoint.extends.get(spec.run_id) if checkpoint is not None else None,
        **hyperparameters(spec.config),
    }
    for key, value in {**meta, **history.summary}.items():
        frame[key] = [value] * len(frame) if isinstance(value, list) else value  # a list is one cell, per row
    for col in ("val_error", "val_loss"):
        if col not in frame:
            frame[col] = float("nan")
    first = [c for c in store.COLUMNS if c in frame]
    return frame[first + [c for c in frame.columns if c not in first]]


def _utc() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def provenance() -> dict:
    """Where and from what a run came: the host, Python, the command line (as it is now: one process may run
    several commands, a notebook or a test), and the git commit of the project when ddescent runs from a checkout
    (a `-dirty` suffix when it has uncommitted changes)."""
    return {"host": platform.node(), "python_version": platform.python_version(),
            "command": command(), "git_commit": _git_commit()}


def command() -> str:
    """The command line this process runs for (set by the CLI; workers are told it with each pack)."""
    return os.environ.get("DDESCENT_COMMAND") or " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])


@lru_cache(maxsize=1)
def _git_commit() -> str | None:
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return None  # installed from a wheel: the version says it
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (head + ("-dirty" if dirty else "")) or None
