"""The README's gallery, redrawn by this version: every figure in docs/ comes from running its command here.

    python scripts/gallery.py                 # run every gallery command (finished runs are skipped) and redraw
    python scripts/gallery.py fig9_10 fig9_9  # only these images
    python scripts/gallery.py --fresh         # from empty results folders, timing each command as a user would
    python scripts/gallery.py --list          # the images, their commands, and whether each is current

Each PNG carries in its metadata the command that made its records, the ddescent version, the git commit and the
hash of the figure code (ddescent.figures.code_hash); tests/test_gallery.py checks that every image the README shows
was drawn by the figure code of this checkout. Results go to --results (default ./results, git-ignored), so a
redraw after a change to the figure code costs seconds, not the sweeps again. Times (wall clock of the sweep command,
--fresh) are printed for the README.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

# image -> (sweep arguments, experiment folder, figure). The order is the README's.
GALLERY = {
    "fig9_9.png": ([], "fig9_9", "9.9"),
    "fig_heatmap.png": ([], "fig9_9", "heatmap"),
    "fig9_9_rf.png": (["experiment=fig9_9_rf"], "fig9_9_rf", "9.9"),
    "fig9_9_linear.png": (["experiment=linear_modelwise"], "linear_modelwise", "9.9"),
    "fig9_9_cnn1d.png": (["experiment=fig9_9_cnn1d", "epochs=200"], "fig9_9_cnn1d", "9.9"),
    "fig9_10.png": (["experiment=fig9_10"], "fig9_10", "9.10"),
    "fig9_11_linear.png": (["experiment=linear_samplewise"], "linear_samplewise", "9.11"),
    "fig9_11.png": (["experiment=fig9_11"], "fig9_11", "9.11"),
    "fig_lambda.png": (["experiment=lambda"], "lambda", "lambda"),
    "fig_rf_theory.png": (["experiment=rf_theory"], "rf_theory", "9.9"),
    "fig_optimal_ridge_n.png": (["experiment=optimal_ridge"], "optimal_ridge", "ridge-n"),
    "fig_optimal_ridge_p.png": (["experiment=optimal_ridge"], "optimal_ridge", "ridge-p"),
    "fig_optimal_ridge_heatmap.png": (["experiment=optimal_ridge"], "optimal_ridge", "ridge-heatmap"),
    "fig_sws.png": (["experiment=sws_mnist1d", "seed=0,1,2"], "sws_mnist1d", "sws"),
    "fig_lambda_sws.png": (["experiment=lambda_sws"], "lambda_sws", "lambda"),
}


def command(args: list[str]) -> str:
    return " ".join(["ddescent", "sweep", *args])


def metadata_of(path: Path) -> dict:
    from PIL import Image

    with Image.open(path) as image:
        return dict(getattr(image, "text", {}) or {})


def git_commit() -> str:
    out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return (out.stdout.strip() + ("-dirty" if dirty else "")) or "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="*", help="image names (fig9_10 or fig9_10.png); default: all")
    parser.add_argument("--results", type=Path, default=ROOT / "results")
    parser.add_argument("--fresh", action="store_true", help="empty each experiment's results folder first")
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    from ddescent import figures, load
    from ddescent.version import __version__

    names = [n if n.endswith(".png") else f"{n}.png" for n in args.images] or list(GALLERY)
    unknown = [n for n in names if n not in GALLERY]
    if unknown:
        parser.error(f"unknown image(s): {', '.join(unknown)}; choose among {', '.join(GALLERY)}")
    current = figures.code_hash()
    if args.list:
        for name in names:
            path = DOCS / name
            state = "missing" if not path.exists() else \
                "current" if metadata_of(path).get("Figure code") == current else "stale"
            print(f"{name:32} {state:8} {command(GALLERY[name][0])}")
        return 0
    swept: dict[tuple, float] = {}
    for name in names:
        sweep_args, folder, figure = GALLERY[name]
        key = tuple(sweep_args)
        if key not in swept:
            if args.fresh:
                shutil.rmtree(args.results / folder, ignore_errors=True)
            start = time.perf_counter()
            cmd = [sys.executable, "-m", "ddescent", "sweep", *sweep_args, "--results", str(args.results),
                   "--no-plot", "-q"]
            if subprocess.run(cmd).returncode != 0:
                print(f"{name}: `{shlex.join(cmd)}` failed", file=sys.stderr)
                return 1
            swept[key] = time.perf_counter() - start
            print(f"{command(sweep_args)}: {swept[key]:.0f} s")
        meta = {"Command": command(sweep_args), "Figure": figure, "ddescent version": __version__,
                "Git commit": git_commit(), "Figure code": current}
        out = figures.draw(load(args.results / folder), figure, DOCS / name, metadata=meta)
        print(f"  {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
