"""Chaos check: break a sweep in the ways a cluster or a user breaks it, rerun it, and check what the results
folder holds.

    python scripts/chaos.py                  # every scenario (a few minutes on two cores)
    python scripts/chaos.py --only kills     # one of the scenarios below
    python scripts/chaos.py --kills 30 --seed 1

Scenarios:
  kills    SIGKILL the sweep (and its workers) at random moments, then rerun uninterrupted
  jobs     SIGKILL a sweep started with --jobs 2 (joblib): within 10 s no worker of it is alive; rerun
  worker   SIGKILL one worker mid-sweep: its runs are reported failed in one line, the rest finish; rerun
  damaged  empty one run file and put a folder where another belongs; rerun trains both again, sets them aside
  locks    leave locks of dead and unverifiable owners; rerun trains through them, removes the dead owners' locks
           (an older version's pid-only ones too) and names the ones in a format no version writes (left for the user)
  format   an older ddescent (0.1, pid-only lock) holds a run: the sweep leaves it and says so, exit 3; once it ends
           the rerun trains it. A folder marked with a newer format is refused in one line, exit 2, nothing written
  early    SIGKILL a sweep with --jobs 2 at the instant its resource tracker, then its first joblib worker, appears
           (before any code of ours runs there), and once it trains: within 15 s nothing of it is alive
  deadjob  SIGTERM one joblib worker of a --jobs 2 sweep mid-training: loky ends the other too; the lost packs are
           launched once more, every run is stored and counted once, exit 0
  signals  SIGTERM, then SIGINT, to a --jobs 2 sweep: one line, exit 143 / 130, no leaked-semaphore warning, no
           process left; the rerun finishes
  repack   kill while a pack has a checkpoint, rerun a wider sweep: the pack resumes together and its numbers
           equal those of an uninterrupted sweep
  columns  drop test_error from one run file and double the rows of another: neither counts as done; the rerun
           trains exactly those two and sets the files aside
  fullfs   runs/ on a 64 KiB tmpfs (root only; skipped otherwise): the run files cannot be written, so the
           checkpoints must survive, no stored run is reported failed and every count counts each run once; after
           space is freed the rerun writes the files from the packs' kept final states without training, or
           resumes from a checkpoint (the log says which, and from which epoch)

After each: every run present exactly once, readable, at the last epoch; no temporary files, locks or
checkpoints left; each run trained the expected number of times. At the end a table: scenario | fault | expected |
held?, and "N of M scenarios held". Exits non-zero if any scenario fails.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TINY = ["data.num_samples=2000", "n_train=400", "train.checkpoint_every=5", "progress=off", "--no-plot"]
SWEEP = ["width=4,8,16,32,64", "seed=0,1", "epochs=60", *TINY]


def ddescent(*args, **kwargs):
    return [sys.executable, "-m", "ddescent", *args]


def run(args, **kwargs):
    return subprocess.run(ddescent(*args), capture_output=True, text=True, **kwargs)


def rerun(args, problems: list[str], expect: str = ""):
    """Run the sweep to its end; a nonzero exit, or a stderr without `expect`, is a problem."""
    final = run(args)
    if final.returncode != 0 or expect not in final.stderr:
        problems.append(f"rerun exited {final.returncode}" + (f", expected {expect!r}" if expect else "")
                        + f": {final.stderr[-300:]}")
    return final


def start(args):
    return subprocess.Popen(ddescent(*args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def descendants(pid: int) -> set[int]:
    out = subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True).stdout.split()
    pairs = list(zip(map(int, out[::2]), map(int, out[1::2])))
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, parent in pairs if parent in frontier} - found
        found |= frontier
    return found


def in_session(sid: int) -> set[int]:
    """The live processes of session `sid`: a sweep started in a session of its own and everything it started, even
    after the sweep died and they were reparented."""
    out = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[3]) == sid and fields[0] not in "ZX":
                    out.add(int(entry))
            except (OSError, IndexError):
                pass
    return out


def cmdlines(pids: set[int]) -> list[str]:
    out = []
    for p in pids:
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                out.append(f.read().replace(b"\0", b" ").decode(errors="replace")[:80])
        except OSError:
            pass
    return out


def gone_within(sid: int, seconds: float, problems: list[str], when: str) -> None:
    """Nothing of session `sid` alive within `seconds`; what is left is named as a problem, then killed."""
    deadline = time.time() + seconds
    while time.time() < deadline and in_session(sid):
        time.sleep(0.2)
    left = in_session(sid)
    if left:
        problems.append(f"{when}: alive {seconds:.0f} s later: {cmdlines(left)}")
        for p in left:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass


def alive(pids: set[int]) -> set[int]:
    out = set()
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] not in "ZX":
                    out.add(p)
        except FileNotFoundError:
            pass
    return out


def check(res: Path, n: int, epochs: int, problems: list[str]) -> None:
    """Every run once, readable and finished; nothing left over."""
    from ddescent import store

    folder = res / "fig9_9"
    runs = sorted(os.listdir(folder / "runs"))
    df = store.load(folder)
    if len(runs) != n or any(f.startswith(".") or not f.endswith(".parquet") for f in runs):
        problems.append(f"runs/ holds {runs}")
    if df.run_id.nunique() != n or df.duplicated(["run_id", "epoch"]).any():
        problems.append("runs missing or rows doubled")
    if not df.groupby("run_id")["epoch"].max().eq(epochs).all():
        problems.append("a run ended before the last epoch")
    left = list((folder / "_checkpoints").glob("*")) if (folder / "_checkpoints").exists() else []
    if left:
        problems.append(f"checkpoints left: {[p.name for p in left]}")


def kills(tmp: Path, rng: random.Random, args) -> list[str]:
    res, problems = tmp / "kills", []
    cmd = ["sweep", *SWEEP, "epochs=400", "--results", str(res)]  # (long enough that the kills land mid-training)
    for i in range(args.kills):
        proc = start(cmd)
        wait = rng.uniform(0.5, args.max_wait)
        time.sleep(wait)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        runs = res / "fig9_9" / "runs"
        done = len(list(runs.glob("*.parquet"))) if runs.exists() else 0
        print(f"  kill {i + 1:2d} after {wait:4.1f} s: {done} runs finished")
    rerun(cmd, problems)
    check(res, 10, 400, problems)
    return problems


def jobs(tmp: Path, rng: random.Random, args) -> list[str]:
    from ddescent import store

    res, problems = tmp / "jobs", []
    cmd = ["sweep", *SWEEP, "epochs=2000", "--jobs", "2", "--results", str(res)]
    proc = start(cmd)
    deadline, workers = time.time() + 120, set()
    while time.time() < deadline and len(workers) < 2:
        time.sleep(0.5)
        workers = descendants(proc.pid) if store.trainings(res / "fig9_9") else set()
    os.kill(proc.pid, signal.SIGKILL)  # the sweep alone, as a scheduler or an OOM killer would
    proc.wait()
    time.sleep(10)
    if alive(workers):
        problems.append(f"workers alive 10 s after the sweep died: {sorted(alive(workers))}")
        for p in alive(workers):
            os.kill(p, signal.SIGKILL)
    rerun(["sweep", *SWEEP, "--jobs", "2", "--results", str(res), "--force"], problems)
    check(res, 10, 60, problems)
    return problems


def worker(tmp: Path, rng: random.Random, args) -> list[str]:
    from ddescent import store

    res, problems = tmp / "worker", []
    cmd = ["sweep", *SWEEP, "epochs=300", "--results", str(res)]
    proc = subprocess.Popen(ddescent(*cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(store.trainings(res / "fig9_9")) < 2:
        time.sleep(0.2)
    pids = {t["pid"] for t in store.trainings(res / "fig9_9")}
    os.kill(max(pids), signal.SIGKILL)
    _, err = proc.communicate(timeout=600)
    failed = [line for line in err.splitlines() if "FAILED: its worker died" in line]
    if proc.returncode != 1 or not failed or "Traceback" in err:
        problems.append(f"exit {proc.returncode}, {len(failed)} failure lines, traceback: {'Traceback' in err}")
    rerun(cmd, problems, expect=f"{len(failed)} to run")
    check(res, 10, 300, problems)
    return problems


def damaged(tmp: Path, rng: random.Random, args) -> list[str]:
    def damage(first: Path, second: Path) -> None:
        first.write_bytes(b"")
        second.unlink()
        second.mkdir()

    return two_damaged(tmp / "damaged", damage)


def two_damaged(res: Path, damage) -> list[str]:
    """Sweep, `damage(first, second)` two run files, rerun: exactly those two are trained again and set aside."""
    problems = []
    cmd = ["sweep", *SWEEP, "--results", str(res)]
    run(cmd)
    files = sorted((res / "fig9_9" / "runs").glob("*.parquet"))
    damage(files[0], files[1])
    rerun(cmd, problems, expect="8 already done, 2 to run")
    aside = sorted(p.name for p in (res / "fig9_9" / "_damaged").glob("*.damaged"))
    if aside != sorted(f"{f.name}.damaged" for f in files[:2]):
        problems.append(f"_damaged/ holds {aside}")
    check(res, 10, 60, problems)
    return problems


def dead_pid() -> int:
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)


def pending_ids(cmd: list[str]) -> list[str]:
    return [line.split()[0] for line in run([*cmd, "--dry-run"]).stdout.splitlines() if "pending" in line][:-1]


def locks(tmp: Path, rng: random.Random, args) -> list[str]:
    from ddescent import store

    res, problems = tmp / "locks", []
    cmd = ["sweep", *SWEEP, "--results", str(res)]
    ids = pending_ids(cmd)
    runs = res / "fig9_9" / "runs"
    runs.mkdir(parents=True)
    dead = dead_pid()
    for i, rid in enumerate(ids):
        name = (f".{rid}.{store.HOST}.x1.lock", f".{rid}.{store.HOST}.{dead}-1.lock", f".{rid}.elsewhere.7-7.lock",
                f".{rid}.{store.HOST}.{dead}.lock")[i % 4]  # no version's; dead; stale; an older version's, dead
        (runs / name).touch()
        if name.endswith("7-7.lock"):  # another host's lock, its heartbeat long stopped
            old = time.time() - store.LOCK_STALE_S - 60
            os.utime(runs / name, (old, old))
    final = rerun(cmd, problems)
    # A lock in a format no version writes is trained through, named in a warning, and left for the user to delete
    # (the dead and stale ones are removed).
    for unknown in runs.glob(".*.x1.lock"):
        if str(unknown) not in final.stderr:
            problems.append(f"{unknown.name} was not named in a warning")
        unknown.unlink()
    if list(runs.glob(".*.lock")):
        problems.append(f"locks left: {[p.name for p in runs.glob('.*.lock')]}")
    check(res, 10, 60, problems)
    return problems


SMALL = ["width=4,8,16,32", "seed=0,1", "data.num_samples=2000", "n_train=400", "progress=off", "--no-plot"]


def format_(tmp: Path, rng: random.Random, args) -> list[str]:
    import json

    from ddescent import store
    from ddescent.store import folder_format
    from ddescent.version import __version__

    res, problems = tmp / "format", []
    cmd = ["sweep", *SMALL, "epochs=20", "--results", str(res)]
    held = pending_ids(cmd)[0]
    runs = res / "fig9_9" / "runs"
    runs.mkdir(parents=True)
    older = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])  # an older ddescent, training
    try:
        time.sleep(0.1)
        (runs / f".{held}.{store.HOST}.{older.pid}.lock").touch()  # its lock, as 0.1 named it
        first = run(cmd)
        said = [line for line in first.stderr.splitlines() if "an older ddescent (0.1" in line]
        if first.returncode != 3 or store.is_done(res / "fig9_9", held) or not said:
            problems.append(f"an older version's live lock: exit {first.returncode}, run trained: "
                            f"{store.is_done(res / 'fig9_9', held)}, named: {bool(said)}")
    finally:
        older.kill()
        older.wait()
    rerun(cmd, problems, expect="7 already done, 1 to run")
    check(res, 8, 20, problems)
    versions = set(store.load(res / "fig9_9").ddescent_version)
    if versions != {__version__}:
        problems.append(f"ddescent_version recorded: {versions}, this is {__version__}")
    marker = res / "fig9_9" / folder_format.MARKER
    if json.loads(marker.read_text()).get("format") != folder_format.FORMAT:
        problems.append(f"the folder's marker says {marker.read_text()}")
    marker.write_text(json.dumps({"format": folder_format.FORMAT + 1, "written_by": "9.9.9"}))
    before = sorted(str(p) for p in (res / "fig9_9").rglob("*"))
    newer = run([*cmd, "--force"])
    errors = [line for line in newer.stderr.splitlines() if line.startswith("ddescent: error")]
    if newer.returncode != 2 or len(errors) != 1 or "folder format" not in errors[0]:
        problems.append(f"a newer folder: exit {newer.returncode}, {newer.stderr[-300:]}")
    if sorted(str(p) for p in (res / "fig9_9").rglob("*")) != before:
        problems.append("something was written into a folder of a newer format")
    return problems


def early(tmp: Path, rng: random.Random, args) -> list[str]:
    from ddescent import store

    res, problems = tmp / "early", []
    cmd = ["sweep", *SMALL, "epochs=2000", "--jobs", "2", "--results", str(res)]
    moments = {"resource tracker": lambda pids: any("resource_tracker" in c for c in cmdlines(pids)),
               "first worker": lambda pids: any("popen_loky_posix" in c for c in cmdlines(pids)),
               "training": lambda pids: len({t["pid"] for t in store.trainings(res / "fig9_9")}) >= 2
               if (res / "fig9_9" / "_logs").exists() else False}
    for when, ready in moments.items():
        proc = start(cmd)
        deadline = time.time() + 120
        while time.time() < deadline and not ready(in_session(proc.pid)):
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)  # the sweep alone
        proc.wait()
        gone_within(proc.pid, 15, problems, f"killed at its {when}")
        print(f"  killed at its {when}: {'nothing' if not in_session(proc.pid) else 'something'} left")
    return problems


def deadjob(tmp: Path, rng: random.Random, args) -> list[str]:
    from ddescent import store

    res, problems = tmp / "deadjob", []
    cmd = ["sweep", *SMALL, "epochs=200", "train.checkpoint_every=20", "--jobs", "2", "--results", str(res)]
    with open(tmp / "deadjob.log", "w") as out:
        proc = subprocess.Popen(ddescent(*cmd), stdout=out, stderr=out, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len({t["pid"] for t in store.trainings(res / "fig9_9")}
                                         if (res / "fig9_9" / "_logs").exists() else ()) < 2:
        time.sleep(0.1)
    os.kill(max(t["pid"] for t in store.trainings(res / "fig9_9")), signal.SIGTERM)  # one loky worker
    proc.wait(timeout=600)
    log = (tmp / "deadjob.log").read_text()
    counts = [line for line in log.splitlines() if "/8, " in line]
    print(f"  exit {proc.returncode}; {len(counts)} run lines; retried: {'launching them once more' in log}")
    if proc.returncode != 0 or "launching them once more" not in log or len(counts) != 8 or "/8, " not in counts[-1]:
        problems.append(f"exit {proc.returncode}, {len(counts)} run lines: {log[-400:]}")
    check(res, 8, 200, problems)
    gone_within(proc.pid, 10, problems, "after the sweep")
    return problems


def signals(tmp: Path, rng: random.Random, args) -> list[str]:
    from ddescent import store

    res, problems = tmp / "signals", []
    cmd = ["sweep", *SMALL, "epochs=300", "--jobs", "2", "--results", str(res)]
    trainings = lambda: store.trainings(res / "fig9_9") if (res / "fig9_9" / "_logs").exists() else []  # noqa: E731
    for sig, code, line in ((signal.SIGTERM, 143, "stopped by SIGTERM"), (signal.SIGINT, 130, "interrupted")):
        before = len(trainings())
        with open(tmp / "signals.log", "w") as out:
            proc = subprocess.Popen(ddescent(*cmd), stdout=out, stderr=out, start_new_session=True)
        deadline = time.time() + 120
        while time.time() < deadline and len({t["pid"] for t in trainings()[before:]}) < 2:  # both workers train
            time.sleep(0.1)
        os.kill(proc.pid, sig)
        proc.wait(timeout=120)
        log = (tmp / "signals.log").read_text()
        errors = [x for x in log.splitlines() if x.startswith("ddescent: error")]
        print(f"  {sig.name}: exit {proc.returncode}, {errors}")
        if proc.returncode != code or len(errors) != 1 or line not in errors[0] or "leaked semaphore" in log \
                or "Traceback" in log:
            problems.append(f"{sig.name}: exit {proc.returncode}, {log[-300:]}")
        gone_within(proc.pid, 10, problems, f"after {sig.name}")
    rerun(cmd, problems)
    check(res, 8, 300, problems)
    return problems


def repack(tmp: Path, rng: random.Random, args) -> list[str]:
    from ddescent import store

    problems = []
    narrow = ["sweep", "width=16,32", "seed=0,1", "epochs=60", *TINY]
    whole = ["sweep", "width=4,8,16,32,64", "seed=0,1", "epochs=60", *TINY]
    ref, res = tmp / "repack-ref", tmp / "repack"
    run([*narrow, "--results", str(ref)])
    proc = start([*narrow, "--results", str(res)])
    deadline = time.time() + 120
    while time.time() < deadline and not list((res / "fig9_9" / "_checkpoints").glob("*.pt")):
        time.sleep(0.05)
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    rerun([*whole, "--results", str(res)], problems)  # a wider rerun: the checkpoint's runs must stay together
    check(res, 10, 60, problems)
    a, b = (store.load(d).set_index(["run_id", "epoch"]).sort_index() for d in (ref, res))
    common = a.index.intersection(b.index)
    diff = (a.loc[common, "test_error"] - b.loc[common, "test_error"]).abs().max()
    print(f"  the resumed runs against an uninterrupted sweep: max |Δ test error| = {diff:.2g} over {len(common)} rows")
    if diff != 0:
        problems.append(f"resumed numbers differ from the uninterrupted sweep's (max {diff:.3g})")
    return problems


def columns(tmp: Path, rng: random.Random, args) -> list[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    def damage(first: Path, second: Path) -> None:
        pq.write_table(pq.read_table(first).drop(["test_error"]), first)
        table = pq.read_table(second)
        pq.write_table(pa.concat_tables([table, table]), second)

    return two_damaged(tmp / "columns", damage)


def fullfs(tmp: Path, rng: random.Random, args) -> list[str]:
    res, problems = tmp / "fullfs", []
    runs = res / "fig9_9" / "runs"
    runs.mkdir(parents=True)
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(runs)],
                                           capture_output=True).returncode != 0:
        print("  skipped: mounting a tmpfs needs root")
        return []
    cmd = ["sweep", "width=4,8,16,32,64", "seed=0,1", "epochs=60", *TINY, "--results", str(res)]
    try:
        first = run(cmd)
        if first.returncode == 0:
            problems.append("the sweep claimed success on a full filesystem")
        kept = list((res / "fig9_9" / "_checkpoints").glob("*.pt"))
        written = len(list(runs.glob("*.parquet")))
        counters = [line for line in first.stderr.splitlines() if "/10, " in line]
        failed = [line for line in first.stderr.splitlines() if "FAILED" in line]
        if len(counters) != 10 or "ETA -" in first.stderr or len(failed) != 10 - written \
                or f"{10 - written} run(s) failed" not in first.stderr:
            problems.append(f"counts: {len(counters)} run lines, {len(failed)} FAILED for {10 - written} not written")
        if not kept:
            problems.append("no checkpoint survived the failed writes")
    finally:
        subprocess.run(["umount", str(runs)], capture_output=True)
    final = rerun(cmd, problems)
    # (the packs trained to their end: their kept final states give the rerun the files without training; a pack
    # without one resumes from its last checkpoint)
    resumed = [line for line in final.stderr.splitlines() if "resumed from its checkpoint" in line
               or "from its kept final state" in line]
    print(f"  {written} run file(s) fitted; {len(kept)} checkpoint(s) kept; the rerun: {resumed[:1]}")
    if not resumed:
        problems.append("the rerun said neither that it resumed from a checkpoint nor that it wrote from a final state")
    check(res, 10, 60, problems)
    return problems


SCENARIOS = {  # name: (scenario, the fault, what must hold)
    "kills": (kills, "SIGKILL the sweep's process group at random moments",
              "the rerun completes every run once, nothing left over"),
    "jobs": (jobs, "SIGKILL a --jobs 2 sweep mid-training", "no worker alive 10 s later; the rerun completes"),
    "worker": (worker, "SIGKILL one local worker", "its runs FAILED in one line each, the rest stored; rerun"),
    "damaged": (damaged, "an empty run file; a folder in a run file's place", "both set aside, both retrained"),
    "locks": (locks, "locks of dead, stale, older-version and unknown owners",
              "trained through; dead ones removed; unknown named and left"),
    "repack": (repack, "SIGKILL with a checkpoint, rerun wider", "resumed pack equals an uninterrupted sweep"),
    "columns": (columns, "a run file without test_error; one with doubled rows", "both set aside, both retrained"),
    "fullfs": (fullfs, "runs/ on a 64 KiB tmpfs (root only)",
               "checkpoints kept, counts honest, rerun writes from the final state / resumes"),
    "format": (format_, "an older ddescent's live lock; a folder of a newer format",
               "its run left, exit 3, version named; refused, exit 2"),
    "early": (early, "SIGKILL a --jobs 2 sweep as its tracker / first worker starts, and training",
              "nothing of it alive 15 s later"),
    "deadjob": (deadjob, "SIGTERM one joblib worker mid-training", "lost packs retried once; all stored, exit 0"),
    "signals": (signals, "SIGTERM, SIGINT to a --jobs 2 sweep",
                "one line, exit 143/130, no leaked semaphore, no orphan"),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=list(SCENARIOS))
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--max-wait", type=float, default=8.0, help="longest time (s) a sweep runs before its kill")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["XDG_CACHE_HOME"] = str(Path(tmp) / "cache")
        for name, (scenario, fault, expected) in SCENARIOS.items():
            if args.only and name != args.only:
                continue
            start_time = time.time()
            print(f"{name}:", flush=True)
            try:
                problems = scenario(Path(tmp), rng, args)
            except Exception as exc:  # a scenario that breaks is a scenario that did not hold
                problems = [f"{type(exc).__name__}: {exc}"]
            print(f"  {'OK' if not problems else 'FAILED: ' + '; '.join(problems)} ({time.time() - start_time:.0f} s)",
                  flush=True)
            rows.append((name, fault, expected, "held" if not problems else "FAILED"))
    print_table(rows)
    failed = sum(row[3] != "held" for row in rows)
    print(f"{len(rows) - failed} of {len(rows)} scenarios held")
    sys.exit(1 if failed else 0)


def print_table(rows: list[tuple[str, str, str, str]]) -> None:
    head = ("scenario", "fault", "expected", "held?")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
    line = lambda r: " | ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    print()
    print(line(head))
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(line(row))


if __name__ == "__main__":
    main()
