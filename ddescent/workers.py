"""The local worker processes of a sweep: one single-threaded process per core.

A worker that starts from nothing spends seconds importing torch. On Linux the sweep command therefore starts
a fork server first (`start`, before it imports anything heavy itself): the server imports the training code
once, on one core, while the command plans the sweep on the other, and each worker is then forked from it
ready to train, ending without an interpreter teardown. Elsewhere workers are spawned. This module imports
nothing heavy.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor

PRELOAD = ["ddescent.runner"]  # torch, the models, the data and the store


def usable_cores() -> int:
    """Cores this process may run on (a SLURM allocation or taskset, not the whole machine)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def _context():
    if sys.platform == "linux":
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        return ctx
    return multiprocessing.get_context("spawn")


def start() -> None:
    """Start the fork server now, if workers will be forked from one and there is a core for it."""
    if sys.platform == "linux" and usable_cores() > 1:
        from multiprocessing import forkserver

        _context()
        forkserver.ensure_running()


def pool(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=workers, mp_context=_context(), initializer=_watch, initargs=(os.getpid(),))


def _watch(sweep_pid: int) -> None:
    """In each worker: end it if the sweep that started it dies (kill -9 included), so none trains on alone."""
    import threading
    import time

    def watch() -> None:
        while True:
            time.sleep(1.0)
            try:
                os.kill(sweep_pid, 0)
            except ProcessLookupError:
                os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def kill(executor: ProcessPoolExecutor) -> None:
    """End the workers now, mid-pack if need be (an interrupted sweep): what they finished is on disk, and
    what they did not is redone by the next run."""
    processes = list((getattr(executor, "_processes", None) or {}).values())
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.kill()
