"""Benchmark: the fig9_9 sweep with a plain PyTorch loop vs `ddescent sweep`, in one invocation.

    python scripts/bench.py                  # the full recipe: 19 widths, 500 epochs
    python scripts/bench.py --epochs 100     # shorter
    python scripts/bench.py --seeds 5        # also time seed=0..4 with ddescent
    python scripts/bench.py --rf             # also time the fig9_9_rf sweep (random features, closed form)

The plain loop is the public MNIST-1D notebook recipe written the ordinary way: one process per core
(each generating the data once), one model at a time, batches by indexing a random permutation.
Both sides train on the same 4000 samples with the same 15% label noise and report final test errors;
the script prints wall times, their ratio, peak memory (of the sweep's whole process tree) and how closely the
two curves agree.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

WIDTHS = [2, 3, 4, 5, 7, 9, 12, 16, 21, 27, 36, 47, 61, 80, 104, 135, 177, 230, 300]


def _plain_worker(args):
    widths, epochs, seed = args
    import torch
    from torch import nn

    torch.set_num_threads(1)
    from ddescent.config import compose
    from ddescent.data import load

    # Same data as ddescent (4000 samples, 15% noise), generated once per process.
    data = load(compose(["label_noise=0.15", "n_train=4000"]).data)
    x, y, xt, yt = data.x_train, data.y_train, data.x_test, data.y_test
    out = {}
    for h in widths:
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Linear(40, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, 10))
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        for _ in range(epochs):
            perm = torch.randperm(len(x))
            for i in range(0, len(x), 100):
                idx = perm[i:i + 100]
                loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        with torch.no_grad():
            out[h] = (model(xt).argmax(1) != yt).float().mean().item()
    return out


def plain(epochs: int, procs: int) -> tuple[float, dict]:
    # Deal the widths round-robin from the largest so both processes get similar work.
    order = sorted(WIDTHS, key=lambda h: -h)
    chunks = [order[i::procs] for i in range(procs)]
    start = time.perf_counter()
    with mp.get_context("spawn").Pool(procs) as pool:
        parts = pool.map(_plain_worker, [(c, epochs, 0) for c in chunks])
    wall = time.perf_counter() - start
    return wall, {h: e for part in parts for h, e in part.items()}


def _tree_pss_mb(root: int) -> float:
    """Memory of a process and all its descendants (Linux): the sum of their proportional set sizes, which
    counts pages shared between forked workers once."""
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    total = 0
    for pid in tree:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                total += sum(int(line.split()[1]) for line in f if line.startswith("Pss:"))
        except OSError:
            pass
    return total / 1024


def run_measured(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, peak memory in MB of the command's whole process tree, sampled every 0.5 s)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd)
    peak = 0.0
    while proc.poll() is None:
        if os.path.exists("/proc/self/smaps_rollup"):
            peak = max(peak, _tree_pss_mb(proc.pid))
        time.sleep(0.5)
    wall = time.perf_counter() - start
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    if not peak:  # no /proc: the largest single process instead
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return wall, peak


def ddescent(epochs: int, seeds: int, extra: list[str]) -> tuple[float, dict, float]:
    overrides = [f"epochs={epochs}", "seed=" + ",".join(map(str, range(seeds))), *extra]
    with tempfile.TemporaryDirectory() as res:
        cmd = [sys.executable, "-m", "ddescent", "sweep", *overrides, "--results", res, "--no-plot", "progress=off"]
        wall, peak_mb = run_measured(cmd)
        from ddescent import analysis, store

        final = analysis.final(store.load(res))
        errors = final.groupby("width")["test_error"].mean().to_dict()
    return wall, {int(k): v for k, v in errors.items()}, peak_mb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=500)
    ap.add_argument("--procs", type=int, default=len(os.sched_getaffinity(0)), help="plain loop processes (one per core)")
    ap.add_argument("--seeds", type=int, default=0, help="also time ddescent with this many seeds")
    ap.add_argument("--skip-plain", action="store_true")
    ap.add_argument("--rf", action="store_true", help="also time `ddescent sweep experiment=fig9_9_rf`")
    ap.add_argument("extra", nargs="*", help="extra overrides for ddescent")
    args = ap.parse_args()

    report = {"epochs": args.epochs, "cores": len(os.sched_getaffinity(0))}
    # Generate (and cache) the data before timing either side.
    from ddescent.config import compose
    from ddescent.data import load

    load(compose(["n_train=4000"]).data)
    dd_wall, dd_err, peak = ddescent(args.epochs, 1, args.extra)
    report.update(ddescent_s=round(dd_wall, 1), ddescent_peak_mb=round(peak))
    print(f"ddescent sweep (19 widths, {args.epochs} epochs): {dd_wall:.1f} s, peak memory {peak:.0f} MB", flush=True)
    if not args.skip_plain:
        pl_wall, pl_err = plain(args.epochs, args.procs)
        diff = float(np.mean([abs(dd_err[h] - pl_err[h]) for h in WIDTHS]))
        report.update(plain_s=round(pl_wall, 1), speedup=round(pl_wall / dd_wall, 2), curve_mad=round(diff, 4))
        print(f"plain PyTorch loop ({args.procs} processes): {pl_wall:.1f} s")
        print(f"speed-up: {pl_wall / dd_wall:.2f}x; mean |test error difference| across widths: {diff:.4f}")
        print("width  plain  ddescent")
        for h in WIDTHS:
            print(f"{h:5d}  {pl_err[h]:.3f}  {dd_err[h]:.3f}")
    if args.seeds > 1:
        s_wall, _, s_peak = ddescent(args.epochs, args.seeds, args.extra)
        report.update(seeds=args.seeds, seeds_s=round(s_wall, 1), seeds_ratio=round(s_wall / dd_wall, 2))
        print(f"ddescent with {args.seeds} seeds: {s_wall:.1f} s ({s_wall / dd_wall:.2f}x one seed), peak {s_peak:.0f} MB")
    if args.rf:
        with tempfile.TemporaryDirectory() as res:
            rf_wall, _ = run_measured([sys.executable, "-m", "ddescent", "sweep", "experiment=fig9_9_rf",
                                       "--results", res, "--no-plot", "progress=off"])
        report.update(rf_s=round(rf_wall, 1))
        print(f"ddescent sweep experiment=fig9_9_rf (24 widths): {rf_wall:.1f} s")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
