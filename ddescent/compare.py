"""`ddescent compare A B`: two experiments (or two result roots) on one figure along one axis, labelled by what
differs between their configs, with the config diff and the verdict differences (where each landmark moved, and
by how much its value changed, with a Welch 95% interval over the two sides' seeds; ddescent.stats)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ddescent import analysis, spec
from ddescent.errors import ConfigError
from ddescent.stats import Interval, welch

AXES = ("width", "n_train", "reg_strength", "epoch")
LANDMARKS = (("first_min", "first minimum"), ("peak", "peak"), ("second_min", "second minimum"))


@dataclass
class Side:
    name: str
    rows: pd.DataFrame  # the rows along the axis: final rows (epoch: every evaluation)
    label: str = ""


@dataclass
class Comparison:
    on: str
    a: Side
    b: Side
    diff: list[tuple[str, str, str]]  # (key, a's value, b's value) for every setting that differs
    verdicts: pd.DataFrame

    def lines(self) -> list[str]:
        out = [f"A = {self.a.name}: {self.a.label}", f"B = {self.b.name}: {self.b.label}", "config diff (A -> B):"]
        out += [f"  {k}: {va} -> {vb}" for k, va, vb in self.diff] or ["  (none: the same settings)"]
        out.append(f"verdicts along {self.on}:")
        for r in self.verdicts.to_dict("records"):
            out.append(f"  {r['what']}: A {r['A']}; B {r['B']}; {r['change']}")
        return out


# not part of what a run computes: where it is stored, what is drawn, how progress is shown
BOOKKEEPING = ("results", "name", "figures", "progress", "logger.", "hydra.")
AXIS_KEYS = {"width": ("width", "model.width"), "n_train": ("n_train", "data.n_train"),
             "reg_strength": ("reg_strength", "regularizer.strength"), "epoch": ()}


def _constant(fin: pd.DataFrame, on: str) -> dict[str, str]:
    """The settings every run of one side shares (what varies inside a side, its axis and seeds among it, is not
    a difference between the sides)."""
    flat = pd.DataFrame([{k: json.dumps(v, sort_keys=True, default=str) for k, v in spec.flat(c).items()}
                         for c in fin["config"]])
    skip = set(AXIS_KEYS[on])
    return {k: flat[k].iloc[0] for k in flat.columns
            if flat[k].nunique() == 1 and k not in skip and not k.startswith(BOOKKEEPING)}


def compare(a: pd.DataFrame, b: pd.DataFrame, on: str = "width", names: tuple[str, str] = ("A", "B")) -> Comparison:
    """The comparison of two sets of records along `on` (ConfigError in one line when they cannot be compared)."""
    if on not in AXES:
        raise ConfigError(f"--on {on}: choose one of: {', '.join(AXES)}")
    sides = []
    for name, df in zip(names, (a, b)):
        done = analysis.complete(df)
        if done.empty:
            raise ConfigError(f"{name}: no complete runs")
        rows = done if on == "epoch" else analysis.final(done)
        curves = analysis.variants(rows, on)
        conditions = list(analysis.conditions(rows, without=(on,)))
        if len(curves) > 1 or len(conditions) > 1:
            what = ", ".join(label for label, _ in curves if label) or \
                ", ".join(analysis.describe(c) for c, _ in conditions)
            raise ConfigError(f"{name}: several curves along {on} ({what}); keep one with --where")
        if rows[on].nunique() < 2:
            raise ConfigError(f"{name}: a single {on} ({rows[on].iloc[0]:g}): nothing to compare along {on}")
        sides.append(Side(name, rows))
    a_side, b_side = sides
    lo, hi = max(a_side.rows[on].min(), b_side.rows[on].min()), min(a_side.rows[on].max(), b_side.rows[on].max())
    if lo > hi:
        raise ConfigError(f"{names[0]} and {names[1]} have no {on} range in common "
                          f"({a_side.rows[on].min():g}-{a_side.rows[on].max():g} vs "
                          f"{b_side.rows[on].min():g}-{b_side.rows[on].max():g})")
    ca, cb = _constant(analysis.final(a_side.rows), on), _constant(analysis.final(b_side.rows), on)
    diff = [(k, ca.get(k, "-"), cb.get(k, "-")) for k in sorted(set(ca) | set(cb)) if ca.get(k) != cb.get(k)]
    # the label names the groups first (model.name=cnn1d), then settings both sides have
    shown = sorted([(k, va, vb) for k, va, vb in diff if "-" not in (va, vb) and not k.endswith("_fingerprint")],
                   key=lambda kv: not kv[0].endswith(".name"))
    a_side.label = ", ".join(f"{k}={va}" for k, va, _ in shown[:3]) or names[0]
    b_side.label = ", ".join(f"{k}={vb}" for k, _, vb in shown[:3]) or names[1]
    return Comparison(on, a_side, b_side, diff, _verdicts(a_side.rows, b_side.rows, on))


def _at(rows: pd.DataFrame, on: str, step) -> np.ndarray:
    """Each seed's test error at `step` of the axis."""
    curves = analysis.seed_curves(rows, on)
    return curves.loc[step].to_numpy(float) if step is not None and step in curves.index else np.array([])


def _verdicts(a: pd.DataFrame, b: pd.DataFrame, on: str) -> pd.DataFrame:
    va, vb = analysis.verdict(a, on), analysis.verdict(b, on)
    out = [{"what": "verdict", "A": va.text(), "B": vb.text(),
            "change": "same kind" if va.kind == vb.kind else f"{va.kind} -> {vb.kind}"}]
    for key, words in LANDMARKS:
        sa, sb = va.mean[f"{key}_step"], vb.mean[f"{key}_step"]
        ya, yb = va.mean[key], vb.mean[key]
        if ya is None and yb is None:
            continue
        moved = "" if sa == sb else f"moved from {on} {_g(sa)} to {_g(sb)}; "
        d = welch(_at(b, on, sb), _at(a, on, sa)) if ya is not None and yb is not None else None
        out.append({"what": words, "A": f"{_g(ya)} at {on} {_g(sa)}", "B": f"{_g(yb)} at {on} {_g(sb)}",
                    "change": moved + (_difference(d) if d is not None else "present in one side only")})
    return pd.DataFrame(out)


def _difference(d: Interval) -> str:
    if np.isnan(d.lo):
        return f"B - A = {d.value:+.3g} (a side with 1 seed: no interval)"
    sure = "" if d.excludes_zero else ", within seed noise"
    return f"B - A = {d.value:+.3g} [{d.lo:+.3g}, {d.hi:+.3g}] (95% Welch){sure}"


def _g(v) -> str:
    return "-" if v is None else f"{v:.4g}"


def draw(c: Comparison):
    """Both sides' seed-mean test error (solid) and train error (dashed) along the axis, 95% bands, one axes."""
    import matplotlib.pyplot as plt

    from ddescent.figures.style import band, legend, plain_log, room_for_legends, verdict_title

    fig, ax = plt.subplots(figsize=(8.5, 5))
    for side, color in ((c.a, "#1f5fa8"), (c.b, "#d1462f")):
        stats = analysis.seed_stats(side.rows, c.on, ["test_error", "train_error"])
        band(ax, stats[c.on], stats, "test_error", color, f"{side.name}: {side.label} (test)")
        band(ax, stats[c.on], stats, "train_error", color, f"{side.name} (train)", style="--")
    if c.on != "reg_strength" or (c.a.rows[c.on] > 0).all():
        ax.set_xscale("log")
        plain_log(ax.xaxis)
    ax.set_xlabel(c.on)
    ax.set_ylabel("error (risk for regression)")
    ax.grid(alpha=0.3, which="both", lw=0.5)
    legend(ax, True)
    rows = c.verdicts.set_index("what")
    ax.set_title(verdict_title(f"{c.a.name} vs {c.b.name} along {c.on}",
                               [f"{s}: {rows.loc['verdict', s]}" for s in ("A", "B")]), fontsize=8)
    room_for_legends(fig)
    return fig
