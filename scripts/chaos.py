"""Chaos check: kill a sweep with SIGKILL at random moments, rerun it, and report what the results folder holds.

    python scripts/chaos.py                    # 10 kills of a small sweep, then a final uninterrupted rerun
    python scripts/chaos.py --kills 30 --seed 1

After the final rerun every run must be present exactly once, every file readable, no temporary files or
locks left, and each run's records must reach the last epoch. The script exits non-zero if not.
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

SWEEP = ["width=4,8,16,32,64", "seed=0,1", "data.num_samples=2000", "n_train=400", "epochs=60",
         "train.checkpoint_every=5", "progress=off", "--no-plot"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--max-wait", type=float, default=8.0, help="longest time (s) a sweep runs before its kill")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        res = Path(tmp)
        cmd = [sys.executable, "-m", "ddescent", "sweep", *SWEEP, "--results", str(res)]
        for i in range(args.kills):
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            wait = rng.uniform(0.5, args.max_wait)
            time.sleep(wait)
            os.killpg(proc.pid, signal.SIGKILL)  # the sweep and any worker processes it started
            proc.wait()
            runs = res / "fig9_9" / "runs"
            done = len(list(runs.glob("*.parquet"))) if runs.exists() else 0
            debris = len(list(runs.glob(".*"))) if runs.exists() else 0
            print(f"kill {i + 1:2d} after {wait:4.1f} s: {done} runs finished, {debris} temporary files/locks left")
        final = subprocess.run(cmd, capture_output=True, text=True)
        print(final.stderr.strip().splitlines()[0] if final.stderr else "")

        from ddescent import store

        runs = res / "fig9_9" / "runs"
        files = sorted(os.listdir(runs))
        df = store.load(res / "fig9_9")
        problems = []
        if final.returncode != 0:
            problems.append(f"final rerun exited {final.returncode}")
        if len(files) != 10 or any(f.startswith(".") for f in files):
            problems.append(f"runs/ holds {files}")
        if df.run_id.nunique() != 10 or df.duplicated(["run_id", "epoch"]).any():
            problems.append("runs missing or rows doubled")
        if not df.groupby("run_id")["epoch"].max().eq(60).all():
            problems.append("a run ended before the last epoch")
        leftovers = list((res / "fig9_9" / "checkpoints").glob("*")) if (res / "fig9_9" / "checkpoints").exists() else []
        if leftovers:
            problems.append(f"checkpoints left: {leftovers}")
        print("OK: 10 runs, each once, all readable, nothing left over" if not problems else "FAILED: " + "; ".join(problems))
        sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
