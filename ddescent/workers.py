"""The local worker processes of a sweep: one single-threaded process per core, each training one pack at a time.

A worker that starts from nothing spends seconds importing torch. On Linux the sweep command therefore starts
a fork server first (`start`, before it imports anything heavy itself): the server imports the training code
once, on one core, while the command plans the sweep on the other, and each worker is then forked from it
ready to train. Elsewhere workers are spawned.

Workers die with their sweep, however it ends (kill -9 included): each holds the reading end of a lifeline pipe
whose only writer is the sweep; when the sweep dies the pipe closes and a watcher thread ends the worker. A
worker that dies (killed, out of memory) costs only the runs it was training: they are reported, a new worker
takes its place and the rest of the sweep goes on. This module imports nothing heavy.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Callable

from ddescent.machine import torch_threads, usable_cores

log = logging.getLogger("ddescent")

PRELOAD = ["ddescent.runner"]  # torch, the models, the data and the store
BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def step_flops(pack: list) -> float:
    """A pack's arithmetic per training step (planner units, see ddescent.planner.training_flops): every member is
    padded to the widest."""
    return len(pack) * max(j.flops / max(1, j.steps) for j in pack)


def pack_threads(packs: list[list], workers: int, ceiling: int | None = None) -> int:
    """torch's threads for each of `workers` processes that train these packs on the CPU
    (ddescent.machine.torch_threads: an explicit OMP_NUM_THREADS, else 1 for small steps, else the cores not busy,
    shared among the workers), at most `ceiling`. Packs that train on a GPU keep the usable cores, shared."""
    if any(j.accelerator for p in packs for j in p):
        threads = max(1, usable_cores() // max(1, workers))
        return min(threads, ceiling) if ceiling else threads
    return torch_threads(workers, max((step_flops(p) for p in packs), default=None), ceiling=ceiling)


@contextlib.contextmanager
def _single_threaded_blas():
    """The environment the fork server (or a spawned worker) starts with: workers are single-threaded by design
    (one per core), and numpy's BLAS must not spin threads of its own (it did: the linear lab's closed forms ran
    ~3x slower, two workers to two cores). torch's threads are set per worker. This process keeps its own."""
    saved = {var: os.environ.get(var) for var in BLAS_THREADS}
    os.environ.update(dict.fromkeys(BLAS_THREADS, "1"))
    try:
        yield
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


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
        with _single_threaded_blas():
            forkserver.ensure_running()


# ----------------------------------------------------------------------------- staying alive only with the sweep


def _die_with(lifeline: Connection) -> None:
    """In a worker: end it as soon as the pipe from the sweep closes (the sweep ended, however)."""
    def watch() -> None:
        try:
            lifeline.recv()
        except (EOFError, OSError):
            pass
        os._exit(1)

    threading.Thread(target=watch, name="ddescent-lifeline", daemon=True).start()


def die_with_process(token: str, interval: float = 1.0) -> None:
    """In a process that has no lifeline pipe (a joblib worker of a sweep): end it once the process named by
    `token` (store.process_token: pid and start time) is gone or a zombie. Idempotent."""
    from ddescent.store import process_alive

    if any(t.name == f"ddescent-parent-{token}" for t in threading.enumerate()):
        return

    def watch() -> None:
        while process_alive(token):
            time.sleep(interval)
        os._exit(1)

    threading.Thread(target=watch, name=f"ddescent-parent-{token}", daemon=True).start()


class Stopped(KeyboardInterrupt):
    """A signal that asks a command to stop (SIGTERM: a scheduler, `kill`, a container's end), raised in the main
    thread and handled like Ctrl-C: workers stopped, finished runs kept, one line naming the signal."""

    def __init__(self, signum: int):
        self.signum, self.name = signum, signal.Signals(signum).name
        super().__init__(self.name)


@contextlib.contextmanager
def stop_on(signals=(signal.SIGTERM,)):
    """In this block the `signals` raise Stopped in the main thread (elsewhere, this is a no-op: only the main thread
    may set handlers); the previous handlers come back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Stopped(signum)

    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        for sig, before in previous.items():
            signal.signal(sig, before)


# A joblib (loky) worker is a fresh interpreter that runs none of ddescent's code until its first job arrives: a sweep
# killed while its workers start leaves them blocked on a pipe they hold both ends of, and their resource trackers
# with them. So the sweep starts a reaper first, a tiny interpreter of its own that watches the sweep, and marks
# every process it starts while launching with DDESCENT_SWEEP=<the sweep's token> in the environment, which they
# carry from their first instruction: when the sweep is gone, the reaper kills what carries its mark, lets the
# resource trackers clean up and exit (killing them after a few seconds if they do not), then exits.

REAP_VAR = "DDESCENT_SWEEP"
REAP_POLL_S = 0.2  # how often the reaper looks at the sweep
REAP_TRACKERS_S = 5.0  # how long the resource trackers get to clean up once the workers are gone

_REAPER = r"""
import os, signal, sys, time
for s in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGPIPE):
    signal.signal(s, signal.SIG_IGN)  # a Ctrl-C or a hang-up ends the sweep; the reaper outlives it to clean up
parent, mark, poll, grace = sys.argv[1], sys.argv[2].encode(), float(sys.argv[3]), float(sys.argv[4])

def start(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return ""
    return "" if fields[0] in "ZX" else fields[19]

pid, token = parent.split("-")
while start(pid) == token:
    time.sleep(poll)

def marked():
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if mark not in f.read().split(b"\0"):
                    continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                out[int(entry)] = b"resource_tracker" in f.read()
        except OSError:
            pass
    return out

deadline = time.monotonic() + grace
while time.monotonic() < deadline + 10:  # (a process that cannot be killed does not keep the reaper forever)
    found = {p: tracker for p, tracker in marked().items() if start(p)}
    if not found:
        break
    for p, tracker in found.items():
        if not tracker or time.monotonic() > deadline:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
    time.sleep(0.1)
"""

_reaper_of: str | None = None  # the token of the process whose reaper runs


def _start_reaper(token: str) -> None:
    """Start the reaper of this process (once), where there is /proc to find marked processes in."""
    global _reaper_of
    if _reaper_of == token or not os.path.isdir("/proc/self"):
        return
    env = {k: v for k, v in os.environ.items() if k != REAP_VAR}
    devnull = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_RDWR, 0) for fd in (0, 1, 2)]
    try:
        os.posix_spawn(sys.executable, [sys.executable, "-I", "-S", "-c", _REAPER, token, f"{REAP_VAR}={token}",
                                        str(REAP_POLL_S), str(REAP_TRACKERS_S)], env, file_actions=devnull)
    except OSError as exc:  # the workers still end once their first job arrives (hydra_task: die_with_process)
        log.warning("could not start the reaper of this sweep's workers: %s", exc)
        return
    _reaper_of = token


@contextlib.contextmanager
def reaped_children():
    """Processes started in this block (a Hydra launcher's workers on this machine, their resource trackers) end
    with this process, however it ends (kill -9 included) and at every moment of their start-up: see _REAPER."""
    from ddescent.store import process_token

    token = process_token()
    _start_reaper(token)
    saved = os.environ.get(REAP_VAR)
    os.environ[REAP_VAR] = token
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(REAP_VAR, None)
        else:
            os.environ[REAP_VAR] = saved


# ----------------------------------------------------------------------------- the pool


@dataclass
class Task:
    """One pack to train: its run specs, and labels to report them by if its worker dies."""

    specs: list
    labels: list[str]


def _serve(conn: Connection, lifeline: Connection, threads: int) -> None:
    """A worker's life: train the packs it is sent, forwarding the runner's events, until told to stop."""
    _die_with(lifeline)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the sweep's to handle: it ends the workers
    import torch

    from ddescent.runner import execute

    torch.set_num_threads(threads)
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        number, specs, force, command = message
        # the command of the sweep that sent this pack: a worker outlives one command in a notebook or a test, and
        # the fork server it came from kept the environment of the first
        os.environ["DDESCENT_COMMAND"] = command

        def events(kind, payload, number=number):
            conn.send(("event", number, kind, payload))

        try:
            conn.send(("done", number, execute(specs, events, force)))
        except Exception as exc:  # reported by the sweep, which goes on with the other packs
            conn.send(("error", number, f"{type(exc).__name__}: {exc}"))


@contextlib.contextmanager
def _main_module_hidden():
    """Workers need nothing of the caller's __main__ (everything they run lives in ddescent), so they are not told
    about it: multiprocessing would otherwise re-import a user's script in every worker, or fail outright for
    `python -` and notebooks (no file to import). So no `if __name__ == "__main__"` guard is needed."""
    main = sys.modules["__main__"]
    saved = {k: main.__dict__.pop(k) for k in ("__file__",) if k in main.__dict__}
    spec, main.__spec__ = getattr(main, "__spec__", None), None
    try:
        yield
    finally:
        main.__dict__.update(saved)
        main.__spec__ = spec


@dataclass
class _Slot:
    process: multiprocessing.process.BaseProcess
    conn: Connection
    task: int | None = None


class Pool:
    """`workers` processes of `threads` threads each; `run` hands them tasks in the order given."""

    def __init__(self, workers: int, threads: int):
        self.ctx, self.threads = _context(), threads
        self.lifeline_r, self.lifeline_w = self.ctx.Pipe(duplex=False)
        self.slots = [self._spawn() for _ in range(workers)]

    def _spawn(self) -> _Slot:
        ours, theirs = self.ctx.Pipe()
        process = self.ctx.Process(target=_serve, args=(theirs, self.lifeline_r, self.threads), daemon=True)
        with _main_module_hidden(), _single_threaded_blas():
            process.start()
        theirs.close()
        return _Slot(process, ours)

    def run(self, tasks: list[Task], events: Callable[[str, dict], None], force: bool = False) -> list:
        """Train every task; returns the runner's Outcomes, one per run, with status "failed" for the runs of a task
        whose worker raised or died before reporting them (the runs it had reported stay as reported, stored runs
        are never failed after the fact; the other tasks go on, on a new worker)."""
        from ddescent.runner import Outcome, command

        queue = list(range(len(tasks)))
        outcomes: list = []
        reported: dict[int, dict] = {}  # task -> {run_id: the Outcome its worker reported}

        def fail(number: int, why: str) -> None:
            done = reported.pop(number, {})
            outcomes.extend(done.values())
            for spec, label in zip(tasks[number].specs, tasks[number].labels):
                if spec.run_id not in done:
                    outcome = Outcome(spec.run_id, label, "failed", note=why)
                    outcomes.append(outcome)
                    events("run", {"outcome": outcome})

        while queue or any(slot.task is not None for slot in self.slots):
            for slot in self.slots:
                if slot.task is None and queue:
                    slot.task = queue.pop(0)
                    slot.conn.send((slot.task, tasks[slot.task].specs, force, command()))
            ready = wait([slot.conn for slot in self.slots] + [slot.process.sentinel for slot in self.slots])
            for i, slot in enumerate(self.slots):
                if slot.conn in ready:
                    try:
                        kind, number, *payload = slot.conn.recv()
                    except (EOFError, OSError):
                        kind = None  # it died: its sentinel says so
                    if kind == "event":
                        if payload[0] == "run":
                            reported.setdefault(number, {})[payload[1]["outcome"].run_id] = payload[1]["outcome"]
                        events(*payload)
                    elif kind == "done":
                        reported.pop(number, None)
                        outcomes.extend(payload[0])
                        slot.task = None
                    elif kind == "error":
                        fail(number, payload[0])
                        slot.task = None
                    if kind is not None:
                        continue
                if slot.process.sentinel in ready:
                    slot.process.join(timeout=5)
                    if slot.task is not None:
                        fail(slot.task, f"its worker died ({_exit_reason(slot.process.exitcode)})")
                    self.slots[i] = self._spawn()  # the rest of the sweep goes on
        return outcomes

    def close(self) -> None:
        """Stop the workers: politely when idle, by force otherwise (an interrupted sweep)."""
        for slot in self.slots:
            try:
                slot.conn.send(None)
            except (OSError, ValueError):
                pass
        deadline = time.time() + 2
        for slot in self.slots:
            slot.process.join(timeout=max(0.0, deadline - time.time()))
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join(timeout=5)
        self.lifeline_w.close()


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "no exit code"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"
