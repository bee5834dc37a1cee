"""Who is writing: process tokens that name one process for the machine's uptime, and the locks that keep
concurrent sweeps over one results folder from training a run twice. A lock is trusted only while its owner is
provably alive (same host: its pid and that process's start time, so a reused pid does not hold it; another host:
a heartbeat that keeps the lock's mtime fresh). Temporary files carry their writer's token in their name, so the
leftovers of dead writers can be removed.

Older versions share folders with this one (see store.folder_format): ddescent 0.1 until 809b611 named a lock
`.<run_id>.<host>.<pid>.lock` (no start time, no heartbeat). Such a lock is honoured, not trained through: on this
host while its pid runs a Python process that started before the lock was made, from another host for a day (what
0.1 itself allowed). In turn every older version honours the locks written here: 0.1 keeps any lock whose pid field
it cannot read for a day, later versions read the same `<pid>-<start>` token."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("ddescent")

HOST = socket.gethostname().replace(".", "-")  # dots separate the fields of temporary names
LOCK_HEARTBEAT_S = 30.0  # a lock's owner refreshes its mtime this often ...
LOCK_STALE_S = 180.0  # ... so a lock from another host not refreshed for this long has lost its owner
TMP_STALE_S = 3600.0  # a temporary file from another host is written in seconds; after an hour it is debris
LEGACY_STALE_S = 24 * 3600.0  # a pid-only name (ddescent 0.1) from another host: what 0.1 honoured, a day
LEGACY_VERSION = "0.1"  # the versions that wrote pid-only names


def _start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot, /proc/<pid>/stat field 22): with the pid, it names one
    process for the machine's uptime, so a reused pid is not mistaken for the writer. None where there is no
    /proc; "" when the process does not exist or is a zombie (dead, not yet reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return "" if os.path.isdir("/proc/self") else None
    except OSError:
        return None
    return "" if fields[0] in ("Z", "X") else fields[19]


def process_token(pid: int | None = None) -> str:
    """"<pid>-<start time>" of a process (this one by default): what lock and temporary names carry."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}-{_start_time(pid) or 0}"


def process_alive(token: str) -> bool:
    """Whether the process named by a process_token on this host still runs (a zombie does not)."""
    pid_text, _, start = token.partition("-")
    if not pid_text.isdigit():
        return False
    now = _start_time(int(pid_text))
    if now is not None:  # Linux: pid and start time
        return now != "" and now == start
    try:  # elsewhere: the pid alone
        os.kill(int(pid_text), 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


TOKEN = process_token()


def _refresh_token() -> None:
    """After fork, the child is another process with another token."""
    global TOKEN
    TOKEN = process_token()


os.register_at_fork(after_in_child=_refresh_token)


def _started_at(pid: int) -> float | None:
    """When the process started (seconds since the epoch, to about a second), or None where that is unknown."""
    start = _start_time(pid)
    try:
        with open("/proc/stat") as f:
            boot = next(float(line.split()[1]) for line in f if line.startswith("btime "))
        return boot + int(start) / os.sysconf("SC_CLK_TCK")
    except (OSError, StopIteration, ValueError, TypeError):
        return None


def _runs_python(pid: int) -> bool:
    """Whether the process may be a ddescent (a Python interpreter, or a command naming ddescent); True where its
    command line cannot be read."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return True
    name = os.path.basename(argv[0]).decode(errors="replace")
    return name.startswith(("python", "pypy")) or any(b"ddescent" in a for a in argv)


def legacy_alive(pid: int, mtime: float) -> bool:
    """Whether the process an older ddescent's pid-only lock names (on this host) may still be its writer: the pid
    runs a Python process that started before the lock was made (a pid reused later is not the writer)."""
    if not process_alive(process_token(pid)):
        return False
    started = _started_at(pid)
    return (started is None or started <= mtime + 2.0) and _runs_python(pid)  # (/proc/stat's boot time: 1 s)


@dataclass(frozen=True)
class Writer:
    """The owner named in a dot-file's name: .<stem>.<host>.<pid>-<start>[.<random>].tmp|lock, or, written by
    ddescent 0.1 (`legacy`), .<stem>.<host>.<pid>[.<random>].tmp|lock"""

    host: str
    token: str
    legacy: bool = False

    @classmethod
    def of(cls, name: str) -> Writer | None:
        parts = name.split(".")
        if len(parts) < 5 or parts[0] != "":
            return None
        if parts[3].isdigit():
            return cls(parts[2], parts[3], legacy=True)
        if "-" not in parts[3] or not parts[3].split("-")[0].isdigit():
            return None
        return cls(parts[2], parts[3])

    def alive(self, mtime: float, stale_after: float) -> bool:
        if self.legacy:
            if self.host == HOST:
                return legacy_alive(int(self.token), mtime)
            return time.time() - mtime < LEGACY_STALE_S
        if self.host == HOST:
            return process_alive(self.token)
        return time.time() - mtime < stale_after

    def describe(self) -> str:
        who = f"process {self.token.split('-')[0]} on {self.host}"
        return f"an older ddescent ({LEGACY_VERSION}, pid-only locks), {who}" if self.legacy else who


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming a run: ours to train, or held by another live process (`holder`, `lock`)."""

    ours: bool
    holder: str | None = None
    lock: Path | None = None

    def describe(self) -> str:
        return (f"being trained by {self.holder} (lock {self.lock}; if no such process runs, delete the lock "
                "and rerun)")


_held: set[Path] = set()
_reported: set[Path] = set()  # foreign lock files already warned about
_held_guard = threading.Lock()
_heart: threading.Thread | None = None


def _heartbeat() -> None:
    while True:
        time.sleep(LOCK_HEARTBEAT_S)
        with _held_guard:
            held = list(_held)
        for path in held:
            with contextlib.suppress(OSError):
                os.utime(path)


def _hold(path: Path) -> None:
    global _heart
    with _held_guard:
        _held.add(path)
        if _heart is None or not _heart.is_alive():
            _heart = threading.Thread(target=_heartbeat, name="ddescent-lock-heartbeat", daemon=True)
            _heart.start()


def _release(path: Path) -> None:
    with _held_guard:
        _held.discard(path)
    path.unlink(missing_ok=True)


def _live_locks(folder: Path, run_id: str) -> list[tuple[Path, Writer]]:
    """The locks on `run_id` whose owners are provably alive; the others are removed or reported."""
    live = []
    for p in folder.glob(f".{run_id}.*.lock"):
        writer = Writer.of(p.name)
        try:
            mtime = p.stat().st_mtime
        except FileNotFoundError:
            continue
        if writer is None:
            if p not in _reported:
                _reported.add(p)
                log.warning("ignoring %s: not a lock this version writes (delete it if no other ddescent is running)",
                            p)
        elif writer.alive(mtime, LOCK_STALE_S):
            live.append((p, writer))
        else:
            p.unlink(missing_ok=True)
            log.info("removed the lock of %s, which is no longer running: %s", writer.describe(), p)
    return live


@contextlib.contextmanager
def claim(folder: Path, run_id: str):
    """A lock file that says "a live process is training this run": concurrent sweeps over one results folder
    split the work instead of doing it twice. Yields a Claim; its `ours` is False when another live owner holds
    the run."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f".{run_id}.{HOST}.{TOKEN}.lock"
    others = [(p, w) for p, w in _live_locks(folder, run_id) if p != path]
    if others:
        yield Claim(False, others[0][1].describe(), others[0][0])
        return
    path.touch()
    _hold(path)
    try:
        # Two sweeps may pass the check together: the lexically first live lock wins, the other backs off.
        holders = sorted([(p.name, w) for p, w in _live_locks(folder, run_id)] + [(path.name, None)],
                         key=lambda t: t[0])
        first, writer = holders[0]
        yield Claim(True) if first == path.name else Claim(False, writer.describe(), folder / first)
    finally:
        _release(path)


def clean_stale(folder: Path) -> int:
    """Remove temporary files and locks left in `folder` by writers that died (kill -9, node failure)."""
    removed = 0
    if not folder.is_dir():
        return 0
    for p in folder.iterdir():
        if not p.name.startswith(".") or p.suffix not in (".tmp", ".lock"):
            continue
        writer = Writer.of(p.name)
        try:
            mtime = p.stat().st_mtime
            if writer is None and p.suffix == ".lock":
                continue  # reported by _live_locks when its run is claimed
            stale = LOCK_STALE_S if p.suffix == ".lock" else TMP_STALE_S
            if writer is None or not writer.alive(mtime, stale):
                if writer is None and time.time() - mtime < 24 * 3600:
                    continue
                p.unlink()
                removed += 1
        except FileNotFoundError:
            pass
    return removed


def temp_prefix(path: Path) -> str:
    """The name a temporary file beside `path` starts with: its writer's host and token (see Writer)."""
    return f".{path.stem}.{HOST}.{TOKEN}."
