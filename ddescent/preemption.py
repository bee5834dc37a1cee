"""A request to stop: SLURM signals a job before it preempts, requeues or times it out, and the training loop
asks `requested()` after every epoch; when asked to stop it saves a checkpoint and returns (the requeued job
resumes from there). Safe to call `request()` from a signal handler."""

from __future__ import annotations

import threading

_requested = threading.Event()


def request() -> None:
    """Ask every training of this process to checkpoint at the end of its current epoch and stop."""
    _requested.set()


def requested() -> bool:
    return _requested.is_set()


def clear() -> None:
    _requested.clear()
