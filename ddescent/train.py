"""The training loop, read top to bottom.

One call trains G members in lockstep (G = 1 for a single run; more when runs share one batched computation).
The net maps x [G, B, ...] -> outputs [G, B, ..., classes]; every member has its own batch order, its own loss
and its own records. Data stay on the device, and the loop syncs with it once per epoch (the divergence check).
The parts it drives each live in their own module: the step (ddescent.step), the batches (ddescent.batches),
the records (ddescent.history), early stopping (ddescent.stopping) and checkpoints (ddescent.checkpoint).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from torch import nn

from ddescent import preemption
from ddescent.batches import Batches
from ddescent.checkpoint import Checkpoint
from ddescent.data import Data
from ddescent.history import History, Recorder, eval_epochs
from ddescent.step import Step
from ddescent.stopping import EarlyStopping


@dataclass(frozen=True)
class Plan:
    """How long and how the G members train: one seed each (batch order, augmentation), and the settings the
    loop reads. `extras()` adds columns at each evaluation (a regularizer's); `watch(epoch, rows)` hears about
    every epoch, with the rows just recorded ({member: row}, often empty): progress bars, log lines, trackers."""

    seeds: list[int]
    epochs: int
    batch_size: int
    eval_points: int = 24
    patience: int = 0
    length_buckets: int = 0
    extras: Callable[[], dict] | None = None
    watch: Callable[[int, dict], None] | None = None


@dataclass(frozen=True)
class Trained:
    """What `train` returns: each member's History, and why the loop ended at `epoch`: finished (every epoch
    trained), diverged (every member), early_stopped, or preempted (a stop was asked: the state is in the
    checkpoint and the rerun resumes there; the records are not complete)."""

    histories: list[History]
    stopped: str
    epoch: int


def train(net: nn.Module, data: Data, plan: Plan, step: Step, checkpoint: Checkpoint | None = None) -> Trained:
    """Train the members of `net` for `plan.epochs` epochs.

    Every `checkpoint.every` epochs the state of every part goes to the checkpoint; a rerun resumes from it with
    exactly the numbers an uninterrupted run would have produced. Training ends early once every member has
    diverged, with early stopping once none has improved for `plan.patience` epochs, and when a stop is asked
    (ddescent.preemption), after checkpointing."""
    G = len(plan.seeds)
    batches = Batches(data, plan.seeds, plan.batch_size, plan.length_buckets)
    recorder = Recorder(net, data, G, math.ceil(len(data.y_train) / plan.batch_size), plan.extras)
    stopping = EarlyStopping(net, data, G, plan.patience, recorder)
    parts = {"net": net, "step": step, "batches": batches, "recorder": recorder, "stopping": stopping}
    evals = set(eval_epochs(plan.epochs, plan.eval_points))
    watch = plan.watch or (lambda epoch, rows: None)

    net.train()
    first = checkpoint.resume(parts) if checkpoint is not None else 0
    watch(first, recorder.record(0, recorder.alive) if first == 0 else {})
    for epoch in range(first + 1, plan.epochs + 1):
        for x, y in batches.epoch():
            step(x, y, epoch)
        alive_before = recorder.alive
        diverged = recorder.check(epoch)
        stop = stopping.update(epoch, recorder.alive)
        rows = recorder.record(epoch, alive_before) if diverged or stop or epoch in evals else {}
        watch(epoch, rows)
        if not recorder.alive:
            return Trained(recorder.histories, "diverged", epoch)
        if stop:
            return Trained(recorder.histories, "early_stopped", epoch)
        asked = preemption.requested() and epoch < plan.epochs
        if checkpoint is not None:
            checkpoint.save(epoch, parts, now=asked)
        if asked:
            return Trained(recorder.histories, "preempted", epoch)
    if checkpoint is not None and first < plan.epochs:
        checkpoint.save_final(plan.epochs, parts)  # a sweep with more epochs continues from here (ddescent.extension)
    return Trained(recorder.histories, "finished", plan.epochs)
