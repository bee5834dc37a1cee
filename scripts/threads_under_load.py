"""Time whole `ddescent sweep` commands as ddescent chooses torch's threads against OMP_NUM_THREADS=1, on an idle
machine and while CPU-bound processes compete (issue 24, item 3).

    python scripts/threads_under_load.py                      # 3 rounds per case, idle and with 2 competing
    python scripts/threads_under_load.py --rounds 5 --loads 0,1,2 --cases single,sweep
    python scripts/threads_under_load.py --arm today:PYTHONPATH=../old-checkout --arm now: --arm omp1:OMP_NUM_THREADS=1

Cases (each command trains: a fresh results folder and --force, --no-plot -q):

    single  one run:               ddescent sweep width=8 seed=0 epochs=E
    sweep   four runs, one pack:   ddescent sweep width=4,8,16,32 seed=0 epochs=E
    full    the fig9_9 widths:     ddescent sweep seed=0 epochs=F (19 runs in several packs, one worker per core)

Arms are environments: LABEL:VAR=VALUE,VAR=VALUE (empty: the caller's). By default "ddescent" (as it chooses) and
"OMP_NUM_THREADS=1". Within a round every arm runs once, back to back, the order rotated from round to round
(A B, B A, A B, ...), so that whatever else the machine does falls on both alike; the table gives each arm's
median over the rounds and its ratio to the last arm's median (by default OMP_NUM_THREADS=1), with the median of
the per-round ratios beside it.

Load: N processes `python -c "while True: pass"`, started before a condition's rounds and killed after them (also
when this script is interrupted). Before each round the script looks at /proc/stat for a second and records how
many cores were busy (the competing processes included): the table's "busy" column, the median. With --idle-below
X an idle round first waits (at most --max-wait seconds) until fewer than X cores are busy.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = {
    "single": ["width=8", "seed=0"],
    "sweep": ["width=4,8,16,32", "seed=0"],
    "full": ["seed=0"],  # fig9_9's 19 widths
}


def busy_cores(seconds: float = 1.0) -> float:
    """Cores busy during `seconds` (all of this machine's, from /proc/stat); -1 where it cannot be read."""
    def read():
        with open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:9]]
        return ticks[3] + ticks[4], sum(ticks)

    try:
        idle0, total0 = read()
        time.sleep(seconds)
        idle1, total1 = read()
    except OSError:
        return -1.0
    cpus = os.cpu_count() or 1
    return cpus * (1 - (idle1 - idle0) / max(1, total1 - total0))


def start_load(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def stop_load(hogs: list[subprocess.Popen]) -> None:
    for hog in hogs:
        if hog.poll() is None:
            hog.kill()
        hog.wait()


def parse_arm(text: str) -> tuple[str, dict[str, str]]:
    label, _, assignments = text.partition(":")
    env = dict(a.split("=", 1) for a in assignments.split(",") if a)
    return label or assignments, env


def run_one(args, case: str, env_extra: dict[str, str], base: Path) -> float:
    """Seconds of one whole command (start to exit), in a fresh results folder."""
    results = Path(tempfile.mkdtemp(dir=base))
    epochs = args.full_epochs if case == "full" else args.epochs
    cmd = [sys.executable, "-m", "ddescent", "sweep", *CASES[case], f"epochs={epochs}", "--results", str(results),
           "--no-plot", "-q", "--force"]
    env = {**os.environ, **env_extra}
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=base, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    shutil.rmtree(results, ignore_errors=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} ({env_extra}) failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default="single,sweep,full", help="of: " + ", ".join(CASES))
    ap.add_argument("--loads", default="0,2", help="numbers of competing CPU-bound processes")
    ap.add_argument("--rounds", type=int, default=3, help="rounds per case and load (each arm once a round)")
    ap.add_argument("--epochs", type=int, default=100, help="epochs of the single and sweep cases")
    ap.add_argument("--full-epochs", type=int, default=50, help="epochs of the full case")
    ap.add_argument("--arm", action="append", help="LABEL:VAR=VALUE,... (repeatable); the last is the reference")
    ap.add_argument("--idle-below", type=float, default=None, help="idle rounds wait until fewer cores are busy")
    ap.add_argument("--max-wait", type=float, default=120.0)
    ap.add_argument("--out", type=Path, default=None, help="also write every timing as JSON here")
    args = ap.parse_args()
    arms = [parse_arm(a) for a in (args.arm or ["ddescent:", "OMP_NUM_THREADS=1:OMP_NUM_THREADS=1"])]
    cases = [c for c in args.cases.split(",") if c]
    loads = [int(n) for n in args.loads.split(",") if n]
    base = Path(tempfile.mkdtemp(prefix="threads-under-load-"))
    hogs: list[subprocess.Popen] = []
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rows = []
    print(f"# {os.cpu_count()} CPUs, affinity {len(os.sched_getaffinity(0))}; arms: "
          + "; ".join(f"{label} {env or '(as is)'}" for label, env in arms), flush=True)
    try:
        for load in loads:
            hogs = start_load(load)
            time.sleep(2 if load else 0)
            for case in cases:
                times = {label: [] for label, _ in arms}
                busy = []
                for r in range(args.rounds):
                    if not load and args.idle_below is not None:
                        deadline = time.time() + args.max_wait
                        while busy_cores(1.0) >= args.idle_below and time.time() < deadline:
                            pass
                    busy.append(busy_cores(1.0))
                    order = arms[r % len(arms):] + arms[:r % len(arms)]
                    for label, env in order:
                        t = run_one(args, case, env, base)
                        times[label].append(t)
                        print(f"{case:6s} load {load} round {r + 1}: {label:20s} {t:7.1f} s (busy {busy[-1]:.2f})",
                              flush=True)
                rows.append({"case": case, "load": load, "busy": statistics.median(busy), "times": times})
            stop_load(hogs)
            hogs = []
    finally:
        stop_load(hogs)
        shutil.rmtree(base, ignore_errors=True)
    ref = arms[-1][0]
    print("\n| case | competing | busy cores | " + " | ".join(f"{label} (s)" for label, _ in arms)
          + " | " + " | ".join(f"{label} / {ref}" for label, _ in arms[:-1]) + " |")
    print("|---|---|---|" + "---|" * (2 * len(arms) - 1))
    for row in rows:
        med = {label: statistics.median(ts) for label, ts in row["times"].items()}
        ratios = []
        for label, _ in arms[:-1]:
            per_round = [a / b for a, b in zip(row["times"][label], row["times"][ref])]
            ratios.append(f"{med[label] / med[ref]:.2f} ({statistics.median(per_round):.2f})")
        print(f"| {row['case']} | {row['load']} | {row['busy']:.1f} | "
              + " | ".join(f"{med[label]:.1f}" for label, _ in arms) + " | " + " | ".join(ratios) + " |")
    if args.out:
        args.out.write_text(json.dumps({"arms": arms, "epochs": args.epochs, "full_epochs": args.full_epochs,
                                        "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
