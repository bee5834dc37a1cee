"""Search for a Fig 9.10 recipe (experiment=fig9_10) whose epoch-wise double descent holds in most data seeds.

    python scripts/fig9_10_recipes.py grid                       # every candidate recipe on data seeds 0-59
    python scripts/fig9_10_recipes.py grid --only kappa          # one stage of the grid (kappa, noise, n, steps)
    python scripts/fig9_10_recipes.py report data.kappa=20       # a chosen recipe: seeds 0-59 and held-out 60-119,
                                                                 # kappa = 1 and block_lr=equalize checks, preset time
    python scripts/fig9_10_recipes.py curve data.kappa=20 --seeds 0-2   # the landmarks of single curves

A recipe is a list of overrides on top of `experiment=fig9_10` (model.block_lr=null unless given). Records are
kept under --results (default results/fig910_recipes), one folder per recipe, so a rerun only reads them.

A curve (test_error, the full risk, against step) is judged by ddescent's one definition of a double descent
(ddescent.analysis.landmarks / double_descends: a peak at least 10% above the lowest point on each side of it), the
definition `ddescent ls` and the figures use. Also recorded: whether the second minimum is below the first, rise =
peak / first minimum - 1, fall = peak / second minimum - 1.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import pandas as pd

import ddescent

TUNE = range(0, 60)
HELD_OUT = range(60, 120)
BASE = ["experiment=fig9_10", "model.block_lr=null"]

# The candidate recipes, in the order of how far they move from today's (data.kappa=10, sigma 0.3, n 130, d 100,
# 30 slow coordinates, 10^5 steps). Each stage changes one thing, then the pairs that the single changes point to.
GRID: dict[str, list[list[str]]] = {
    "kappa": [[f"data.kappa={k}"] for k in (10, 15, 20, 25, 30, 40, 50)],
    "noise": [[f"data.kappa={k}", f"data.noise={s}"] for k in (10, 20, 30) for s in (0.0, 0.1, 0.2, 0.5)],
    "n": [[f"data.kappa={k}", f"n_train={n}"] for k in (10, 20, 30) for n in (115, 150, 200)],
    "slow": [[f"data.kappa={k}", f"data.slow={m}"] for k in (10, 20, 30) for m in (20, 50)],
    "steps": [[f"data.kappa={k}", f"epochs={t}"] for k in (30, 50) for t in (10**4, 10**6)],
}


# ----------------------------------------------------------------------------- the definition


def landmarks(step, y) -> dict:
    """The double-descent landmarks of one curve under ddescent's one definition (ddescent.analysis.landmarks and
    double_descends: a peak at least 10% above the lowest point on each side)."""
    from ddescent import analysis

    lm = analysis.landmarks(step, y)
    return {"dd": analysis.double_descends(lm), "rise": lm["rise"], "fall": lm["fall"],
            "second_lower": bool(lm["below"] < 0), "peak_at": lm["peak_step"]}


def per_curve(df: pd.DataFrame) -> pd.DataFrame:
    """One row per run (curve): data_seed, kappa, and its landmarks."""
    rows = []
    for run_id, g in df.groupby("run_id"):
        # the step axis: sort by step, the rows' own order is the store's
        out = landmarks(g["step"].to_numpy(), g["test_error"].to_numpy())
        out.update(run_id=run_id, data_seed=int(g["data_seed"].iloc[0]), kappa=float(g["data.kappa"].iloc[0]))
        rows.append(out)
    return pd.DataFrame(rows).sort_values("data_seed").reset_index(drop=True)


def summary(curves: pd.DataFrame) -> dict:
    return {"n": len(curves), "dd": int(curves["dd"].sum()), "frac": float(curves["dd"].mean()),
            "rise": float(curves["rise"].median()), "fall": float(curves["fall"].median()),
            "second_lower": float(curves["second_lower"].mean())}


# ----------------------------------------------------------------------------- running


def _seeds(spec: str) -> range:
    a, _, b = spec.partition("-")
    return range(int(a), int(b or a) + 1)


def folder(results: Path, overrides: list[str], seeds: range) -> Path:
    tag = " ".join(sorted(overrides)) + f" seeds={seeds.start}-{seeds.stop - 1}"
    name = "_".join(o.replace("data.", "").replace("model.", "").replace("=", "") for o in overrides) or "preset"
    return results / f"{name}_{seeds.start}-{seeds.stop - 1}_{hashlib.sha1(tag.encode()).hexdigest()[:6]}"


def measure(overrides: list[str], seeds: range, results: Path) -> tuple[pd.DataFrame, float]:
    """Runs (or reads, when stored) the recipe on `seeds`; returns its per-curve landmarks and the wall time."""
    where = folder(results, overrides, seeds)
    extra = [] if any(o.startswith("model.block_lr=") for o in overrides) else ["model.block_lr=null"]
    t0 = time.perf_counter()
    df = ddescent.sweep(["experiment=fig9_10", *extra, *overrides,
                         f"data_seed=range({seeds.start},{seeds.stop})"], results=where)
    return per_curve(df), time.perf_counter() - t0


def _row(label: str, s: dict, seconds: float | None = None) -> str:
    t = "" if seconds is None else f" {seconds:.1f} |"
    return (f"| {label} | {s['dd']}/{s['n']} ({s['frac']:.0%}) | {s['rise']:+.0%} | {s['fall']:+.0%} "
            f"| {s['second_lower']:.0%} |{t}")


HEADER = ("| recipe | double descent | median rise | median fall | second < first | time (s) |\n"
          "|---|---|---|---|---|---|")


def cmd_grid(args) -> None:
    stages = [args.only] if args.only else list(GRID)
    seeds = _seeds(args.seeds)
    print(f"seeds {seeds.start}-{seeds.stop - 1}")
    for stage in stages:
        print(f"\n### {stage}\n\n{HEADER}")
        for overrides in GRID[stage]:
            curves, sec = measure(overrides, seeds, args.results)
            print(_row(" ".join(overrides), summary(curves), sec), flush=True)


def cmd_report(args) -> None:
    rec = list(args.recipe)
    kappa = [o for o in rec if o.startswith("data.kappa=")]
    others = [o for o in rec if not o.startswith("data.kappa=")]
    print(HEADER)
    for label, overrides, seeds in [
        ("baseline data.kappa=10, seeds 0-59", ["data.kappa=10"], TUNE),
        (f"{' '.join(rec)}, seeds 0-59", rec, TUNE),
        (f"{' '.join(rec)}, held-out seeds 60-119", rec, HELD_OUT),
        (f"kappa = 1, {' '.join(others) or 'rest as preset'}, seeds 0-59", ["data.kappa=1", *others], TUNE),
        (f"{' '.join(rec)} model.block_lr=equalize, seeds 0-59", [*rec, "model.block_lr=equalize"], TUNE),
    ]:
        curves, sec = measure(overrides, seeds, args.results)
        print(_row(label, summary(curves), sec), flush=True)
    # the preset itself (kappa = 1 and the chosen kappa, with and without equalize, data seeds 0, 1, 2),
    # trained afresh, timed end to end in this process
    k = kappa[0].split("=", 1)[1] if kappa else "10"
    where = args.results / f"preset_{'_'.join(o.replace('=', '') for o in rec)}"
    t0 = time.perf_counter()
    df = ddescent.sweep(["experiment=fig9_10", *others, f"data.kappa=1,{k}", "model.block_lr=null,equalize",
                         "data_seed=0,1,2"], results=where, force=True)
    sec = time.perf_counter() - t0
    print(f"\npreset ({len(df['run_id'].unique())} runs, trained afresh): {sec:.1f} s")
    lr = df["model.block_lr"] if "model.block_lr" in df else pd.Series("null", index=df.index)
    for (kap, eq), g in df.assign(block_lr=lr.fillna("null").astype(str)).groupby(["data.kappa", "block_lr"]):
        c = per_curve(g)
        print(f"  kappa={kap:g} block_lr={eq}: " + ", ".join(
            f"seed {r.data_seed}: {'DD' if r.dd else 'no DD'} (rise {r.rise:+.0%}, fall {r.fall:+.0%})"
            for r in c.itertuples()))


def cmd_curve(args) -> None:
    for s in _seeds(args.seeds):
        where = folder(args.results, list(args.recipe), range(s, s + 1))
        extra = [] if any(o.startswith("model.block_lr=") for o in args.recipe) else ["model.block_lr=null"]
        df = ddescent.sweep(["experiment=fig9_10", *extra, *args.recipe, f"data_seed={s}"], results=where)
        g = df.sort_values("step")
        print(f"seed {s}: {landmarks(g['step'], g['test_error'])}")
        print("  " + " ".join(f"{t}:{y:.3f}" for t, y in zip(g["step"].to_numpy()[::3], g["test_error"].to_numpy()[::3])))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", type=Path, default=Path("results/fig910_recipes"))
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("grid")
    g.add_argument("--only", choices=list(GRID))
    g.add_argument("--seeds", default="0-59")
    r = sub.add_parser("report")
    r.add_argument("recipe", nargs="+")
    c = sub.add_parser("curve")
    c.add_argument("recipe", nargs="*")
    c.add_argument("--seeds", default="0-2")
    args = ap.parse_args(argv)
    {"grid": cmd_grid, "report": cmd_report, "curve": cmd_curve}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
