"""Reading the curves out of the records: final points, seed means, the interpolation threshold, the effective
model complexity, early stopping by the validation split, and which figures a table of records allows."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ddescent.stats import Interval, mean_ci, median_ci, t_quantile, welch

def theory_modules():
    """The theory modules, imported when a curve has a theory: they import the families (torch), which reading
    records of other runs does not need (`ddescent plot` of an MLP sweep starts a second sooner)."""
    from ddescent import theory

    return theory


# Runs that differ only in size and seed belong to one curve. These columns split the figures into panels; any
# other hyperparameter that varies among the runs (see `variants`) gives a curve of its own within a panel.
CONDITION = ["experiment", "dataset", "model", "optimizer", "regularizer", "reg_strength", "label_noise", "n_train"]
REPLICATES = ("seed", "data_seed")  # what the bands of a curve run over: seeds only (of the model, of the data)


def complete(df: pd.DataFrame) -> pd.DataFrame:
    """Finished runs only: diverged runs are listed by `ls` but left out of the curves."""
    return df[df["status"] == "complete"]


def final(df: pd.DataFrame) -> pd.DataFrame:
    """The last evaluation point of every run."""
    if df.empty:
        return df
    last = df.groupby("run_id")["epoch"].transform("max")
    return df[df["epoch"] == last].reset_index(drop=True)


def seed_stats(df: pd.DataFrame, x: str, columns: list[str], by: list[str] | None = None) -> pd.DataFrame:
    """Per x (and per `by`), over the seeds, of each column: the mean with its 95% t interval (`_mean`, `_lo`,
    `_hi`; ddescent.stats), its standard error (`_se`), the median, min, max and count."""
    keys = (by or []) + [x]
    agg = df.groupby(keys, dropna=False)[columns].agg(["mean", "std", "median", "min", "max", "count"])
    agg.columns = [f"{c}_{s}" for c, s in agg.columns]
    for c in columns:
        n = agg[f"{c}_count"].to_numpy(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            se = agg[f"{c}_std"].to_numpy(float) / np.sqrt(n)
            half = np.where(n > 1, _t975(n) * se, np.nan)
        agg[f"{c}_se"] = np.where(n > 1, se, np.nan)
        agg[f"{c}_lo"], agg[f"{c}_hi"] = agg[f"{c}_mean"] - half, agg[f"{c}_mean"] + half
    return agg.reset_index().sort_values(keys)


def _t975(n: np.ndarray) -> np.ndarray:
    return t_quantile(0.975, np.maximum(n - 1, 1))


def median_band(df: pd.DataFrame, x: str, column: str) -> pd.DataFrame:
    """Per x: the median over seeds of `column` with its order-statistic interval (ddescent.stats.median_ci)."""
    out = []
    for value, part in df.groupby(x, sort=True):
        iv = median_ci(part[column])
        out.append({x: value, "median": iv.value, "lo": iv.lo, "hi": iv.hi, "coverage": iv.level, "count": iv.n})
    return pd.DataFrame(out, columns=[x, "median", "lo", "hi", "coverage", "count"])


NUMERICALLY_ZERO = 1e-8  # a least-squares fit interpolates where its train MSE is this small (float64 round-off)


def least_squares_fit(rows: pd.DataFrame) -> bool:
    """Runs fitted by least squares in closed form (random features' lstsq/ridge, the linear family): they
    interpolate where their train MSE reaches zero, not where a 0-1 error does."""
    models = set(rows["model"].dropna()) if "model" in rows else set()
    solvers = set(rows["model.solver"].dropna()) if "model.solver" in rows else set()
    if len(models) != 1 or not solvers:  # (closed_form lists model.solver values: no solver, no closed form)
        return False
    from ddescent import component  # (the model registry imports torch: asked only for runs that have a solver)

    family = component.registry("model").get(next(iter(models)))
    return family is not None and family.squared_loss and solvers <= set(family.closed_form)


def threshold_rule(rows: pd.DataFrame, eps: float = 0.01) -> tuple[str, float, str]:
    """(column, bound, words) of "interpolates": train MSE numerically zero for a least-squares fit (train_loss is
    half of it), else final train error <= eps."""
    if least_squares_fit(rows):
        return "train_loss", NUMERICALLY_ZERO / 2, f"train MSE ≤ {NUMERICALLY_ZERO:g}"
    return "train_error", eps, f"train error ≤ {eps:g}"


def interpolation_threshold(final_rows: pd.DataFrame, eps: float = 0.01, x: str = "width") -> float | None:
    """Smallest x whose final fit (mean over seeds) interpolates (see threshold_rule); None if none does."""
    column, bound, _ = threshold_rule(final_rows, eps)
    stats = seed_stats(final_rows, x, [column])
    hit = stats[stats[f"{column}_mean"] <= bound]
    return float(hit[x].min()) if len(hit) else None


def zero_one_threshold(final_rows: pd.DataFrame, eps: float = 0.01, x: str = "width") -> float | None:
    """Smallest x whose final 0-1 train error (mean over seeds) is at most eps (for a least-squares classifier this
    comes before the fit interpolates: its argmax is right before its outputs are exact)."""
    stats = seed_stats(final_rows, x, ["train_error"])
    hit = stats[stats["train_error_mean"] <= eps]
    return float(hit[x].min()) if len(hit) else None


def effective_model_complexity(final_rows: pd.DataFrame, eps: float = 0.01, x: str = "width") -> dict[float, int | None]:
    """Effective model complexity (Nakkiran et al. 2019) per model size: the largest n_train that it still fits
    (threshold_rule: final train error, mean over seeds, at most eps); None where no training-set size is.

    Pass the final rows of one condition apart from n_train (`conditions(rows, without=("n_train",))`);
    diverged runs are left out."""
    rows = complete(final_rows) if "status" in final_rows else final_rows
    if rows.empty:
        return {}
    column, bound, _ = threshold_rule(rows, eps)
    stats = seed_stats(rows, x, [column], by=["n_train"])
    emc: dict[float, int | None] = {}
    for size, part in stats.groupby(x, sort=True):
        fitted = part[part[f"{column}_mean"] <= bound]
        emc[float(size)] = int(fitted["n_train"].max()) if len(fitted) else None
    return emc


def more_data_hurts(final_rows: pd.DataFrame, metric: str = "test_loss", x: str = "width") -> pd.DataFrame:
    """Sample-wise comparison (Bishop & Bishop Fig 9.11): for each pair of neighbouring training-set sizes and
    each size x both were trained at, the seed-mean `metric` of the smaller and the larger set, their ratio,
    `hurts` = the larger set is worse on average, and the 95% interval of the difference (larger - smaller; Welch's
    t, the seeds of the two sizes are different runs): `sure` = it excludes zero. Pass the final rows of one
    condition apart from n_train."""
    cols = [x, "n_small", "n_large", "small", "large", "ratio", "hurts", "diff_lo", "diff_hi", "sure"]
    rows = complete(final_rows) if "status" in final_rows else final_rows
    if rows.empty:
        return pd.DataFrame(columns=cols)
    sizes = sorted(rows["n_train"].unique())
    out = []
    for small, large in zip(sizes, sizes[1:]):
        a = rows[rows["n_train"] == small].groupby(x)[metric]
        b = rows[rows["n_train"] == large].groupby(x)[metric]
        for size in sorted(set(a.groups) & set(b.groups)):
            va, vb = a.get_group(size).to_numpy(float), b.get_group(size).to_numpy(float)
            diff = welch(vb, va)
            lo, hi = diff.lo, diff.hi
            ma, mb = float(va.mean()), float(vb.mean())
            out.append({x: float(size), "n_small": int(small), "n_large": int(large), "small": ma, "large": mb,
                        "ratio": mb / ma if ma else np.inf, "hurts": bool(mb > ma), "diff_lo": lo, "diff_hi": hi,
                        "sure": bool(lo > 0)})
    return pd.DataFrame(out, columns=cols)


def early_stopped(df: pd.DataFrame, by: str = "val_loss") -> pd.DataFrame:
    """One row per run at its early-stopping point: the evaluation whose validation `by` is lowest (the earliest
    one on ties). The test set never takes part in the choice. Runs without validation numbers are left out;
    a table with none at all raises ValueError."""
    if by.startswith("test"):
        raise ValueError(f"early stopping by {by} would choose on the test set; use val_loss or val_error")
    if by not in df or df[by].isna().all():
        raise ValueError(f"no {by} recorded: early stopping needs a validation split (rerun with val_fraction > 0)")
    rows = df.dropna(subset=[by]).sort_values(["run_id", "epoch"]).reset_index(drop=True)
    best = rows.groupby("run_id", sort=True)[by].idxmin()
    return rows.loc[best.to_numpy()].reset_index(drop=True)


def identity_columns(df: pd.DataFrame) -> list[str]:
    """The columns of the table that hold a run's identity: the condition columns, data_seed, and the flat
    hyperparameter columns (see ddescent.spec.hyperparameters)."""
    return [c for c in df.columns if c in CONDITION or c in ("data_seed", "epochs", "val_fraction", "width", "seed")
            or ("." in c and c.split(".", 1)[0] in ("data", "model", "optim", "regularizer", "train"))]


def varying(df: pd.DataFrame, exclude=()) -> list[str]:
    """Identity columns with more than one value among the runs of `df` (lists compared as text)."""
    runs = df.drop_duplicates("run_id") if "run_id" in df else df
    return [c for c in identity_columns(runs) if c not in exclude and runs[c].map(show).nunique() > 1]


def short_names(columns: list[str]) -> dict[str, str]:
    """Legend names: the last part of a key (optim.lr -> lr) unless two keys share it."""
    last = [c.rsplit(".", 1)[-1] for c in columns]
    return {c: (s if last.count(s) == 1 else c) for c, s in zip(columns, last)}


def variants(df: pd.DataFrame, x: str) -> list[tuple[str, pd.DataFrame]]:
    """The curves of one panel: runs grouped by every identity column that varies among them other than the
    x-axis, the seeds and the panel's own condition, each with a label naming what differs ("lr=0.01"). One
    group labelled "" when nothing varies."""
    keys = varying(df, exclude=(x, *REPLICATES, *CONDITION))
    if not keys:
        return [("", df)]
    names = short_names(keys)
    out = []
    for values, rows in df.groupby([df[k].map(show) for k in keys], sort=True, dropna=False):
        values = values if isinstance(values, tuple) else (values,)
        # a key a group lacks (null: another setting's option) is left out of its label, unless that leaves the
        # label empty: then null is the setting itself (block_lr=null beside block_lr=equalize)
        label = ", ".join(f"{names[k]}={v}" for k, v in zip(keys, values) if v != "null")
        out.append((label or ", ".join(f"{names[k]}={v}" for k, v in zip(keys, values)), rows))
    return out


def missing(value) -> bool:
    """A key a run does not have (another regularizer's setting): None or NaN."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def show(value) -> str:
    """A hyperparameter as the config writes it (a missing one, NaN in a table, is null)."""
    if missing(value):
        return "null"
    return f"{value:g}" if isinstance(value, float) else str(value)


# ----------------------------------------------------------------------------- the one definition
# A double descent, along any axis (width, p, n, epochs or steps, 1/λ): the curve's peak is its interior point of
# greatest prominence, min(peak / lowest point before it, peak / lowest point after it); the first and second minima
# are those lowest points. The curve double-descends when its peak stands at least RISE above the first minimum and
# at least FALL above the second: peak >= 1.10 x first minimum and peak >= 1.10 x second minimum. Whether the second
# minimum is below the first is reported beside (the book's Fig 9.9 goes below; many measured curves do not).
# Across seeds (`verdict`), the curve is the seed mean; the rise and the fall are the seeds' own ratios at the mean
# curve's landmarks (peak / first minimum, peak / second minimum), paired over seeds, as geometric means with 95%
# t intervals of their logs (ddescent.stats), and "double descent" needs both intervals to exclude no change. The
# landmarks are chosen on the same seeds, which makes the intervals somewhat optimistic: with few seeds, read them
# as the least a claim needs. Non-finite points (a diverged run) are left out.
RISE = 0.10
FALL = 0.10


def landmarks(steps, values) -> dict:
    """{first_min, first_min_step, peak, peak_step, second_min, second_min_step, rise, fall, below}: rise =
    peak / first_min - 1, fall = peak / second_min - 1, below = second_min / first_min - 1 (negative: the second
    minimum is lower). Without an interior point above both its minima the peak's entries are None and rise, fall,
    below NaN; first_min is then the curve's lowest point."""
    steps, values = np.asarray(steps, dtype=float), np.asarray(values, dtype=float)
    keep = np.isfinite(values) & np.isfinite(steps)
    steps, values = steps[keep], values[keep]
    order = np.argsort(steps, kind="stable")
    steps, values = steps[order], values[order]
    out = {"first_min": None, "first_min_step": None, "peak": None, "peak_step": None, "second_min": None,
           "second_min_step": None, "rise": math.nan, "fall": math.nan, "below": math.nan}
    if len(values) == 0:
        return out
    lowest = int(np.argmin(values))
    out.update(first_min=float(values[lowest]), first_min_step=_step(steps[lowest]))
    if len(values) < 3:
        return out
    before = np.minimum.accumulate(values)[:-2]  # lowest up to i, for a peak at i + 1
    after = np.minimum.accumulate(values[::-1])[::-1][2:]  # lowest from i + 2 on
    peaks = values[1:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        prominence = np.minimum(peaks / before, peaks / after)
    prominence = np.where((before > 0) & (after > 0), prominence,
                          np.where((peaks > before) & (peaks > after), np.inf, 1.0))
    j = int(np.argmax(prominence))
    if not prominence[j] > 1:
        return out
    peak = j + 1
    first = int(np.argmin(values[:peak]))
    second = peak + 1 + int(np.argmin(values[peak + 1:]))
    f, p, s = values[first], values[peak], values[second]
    with np.errstate(divide="ignore", invalid="ignore"):
        return {"first_min": float(f), "first_min_step": _step(steps[first]), "peak": float(p),
                "peak_step": _step(steps[peak]), "second_min": float(s), "second_min_step": _step(steps[second]),
                "rise": float(p / f - 1) if f > 0 else math.inf, "fall": float(p / s - 1) if s > 0 else math.inf,
                "below": float(s / f - 1) if f > 0 else math.nan}


def _step(s: float):
    return int(s) if float(s).is_integer() else float(s)


def double_descends(lm: dict) -> bool:
    """The one definition (above): a peak at least RISE above the first minimum and FALL above the second."""
    return lm["peak"] is not None and lm["rise"] >= RISE and lm["fall"] >= FALL


def landmarks_of_run(rows: pd.DataFrame, column: str = "test_error", x: str = "step") -> dict:
    """landmarks() of one run's records (its rows of a results table), along `x` (step, or epoch)."""
    rows = rows.sort_values(x)
    return landmarks(rows[x].to_numpy(), rows[column].to_numpy())


def shape(lm: dict, at: str = "width", ends: float | None = None) -> str:
    """A curve's landmarks in words: its minimum, or its first minimum, peak and second minimum, and what that
    makes under the one definition. `ends`: the curve's last value (a U that rises to its end says so)."""
    if lm["first_min"] is None:
        return "no finite points"
    low = f"lowest {lm['first_min']:.3g} at {at} {lm['first_min_step']:g}"
    if lm["peak"] is None:
        if ends is not None and ends > (1 + RISE) * lm["first_min"]:
            return f"{low}, ends at {ends:.3g}: no second descent"
        return f"falls to {lm['first_min']:.3g} at {at} {lm['first_min_step']:g}: no bump"
    head = (f"min {lm['first_min']:.3g} at {at} {lm['first_min_step']:g}, peak {lm['peak']:.3g} at "
            f"{lm['peak_step']:g} ({lm['rise']:+.0%}), then min {lm['second_min']:.3g} at {lm['second_min_step']:g}")
    if double_descends(lm):
        return f"{head}: double descent ({'below' if lm['below'] < 0 else 'above'} the first minimum)"
    if lm["rise"] < RISE:
        return f"{head}: a bump under the {RISE:.0%} a double descent needs"
    return f"{head}: no second descent (falls {lm['fall']:.0%} from its peak, under {FALL:.0%})"


def describe_landmarks(lm: dict) -> str:
    """One line for `ls` (steps)."""
    if lm["first_min"] is None:
        return "no finite points"
    if lm["peak"] is None:
        return f"no bump: minimum {lm['first_min']:.4g} at step {lm['first_min_step']}"
    return (f"first minimum {lm['first_min']:.4g} at step {lm['first_min_step']}, peak {lm['peak']:.4g} at step "
            f"{lm['peak_step']} ({lm['rise']:+.0%}), second minimum {lm['second_min']:.4g} at step "
            f"{lm['second_min_step']} ({lm['below']:+.0%} vs the first)")


# ----------------------------------------------------------------------------- verdicts across seeds


@dataclass(frozen=True)
class Verdict:
    """What the seeds of one curve show. `mean`: the landmarks of the seed mean; rise, fall, below: seed by seed at
    the mean curve's landmarks, peak / first minimum, peak / second minimum and second / first minimum, as
    geometric means with the 95% t intervals of their logs (paired over seeds), minus 1. kind: "double descent"
    (the mean curve is one and both the rise and the fall exclude zero), "not distinguishable from seed noise", or
    "no double descent" (with `mean_shape`, the mean curve in words)."""

    seeds: int
    k: int  # seeds whose own curve double-descends
    mean: dict
    kind: str
    mean_shape: str
    rise: Interval | None = None
    fall: Interval | None = None
    below: Interval | None = None

    def text(self) -> str:
        """The verdict in one line: "double descent in k of n seeds; seed mean: ..." (with one seed: "1 seed")."""
        if self.seeds <= 1:
            return f"1 seed (no confidence): {self.mean_shape}"
        head = f"double descent in {self.k} of {self.seeds} seeds; seed mean: "
        if self.rise is None:
            return head + f"no double descent ({self.mean_shape})"
        numbers = (f"peak {_pct(self.rise)} over the first minimum, {_pct(self.fall)} over the second, second "
                   f"minimum {_pct(self.below)} vs the first (95% CIs of the seeds' ratios)")
        if self.kind == "double descent":
            return head + "double descent, " + numbers
        return head + f"{self.kind} ({self.seeds} seeds), " + numbers


def _pct(iv: Interval) -> str:
    """A relative difference as a percentage, or as a factor once it passes +100% (a risk near its pole)."""
    def one(v: float) -> str:
        return f"{1 + v:.3g}x" if v >= 1 else f"{v:+.0%}"

    if not math.isfinite(iv.lo):
        return one(iv.value)
    return f"{one(iv.value)} [{one(iv.lo)}, {one(iv.hi)}]"


def seed_curves(rows: pd.DataFrame, x: str, y: str = "test_error") -> pd.DataFrame:
    """One column per seed (the replicates: seed and data_seed), one row per x, of `y` (NaN where a seed lacks x)."""
    keys = [c for c in REPLICATES if c in rows] or ["run_id"]
    table = rows.pivot_table(index=x, columns=keys, values=y, aggfunc="mean", dropna=False)
    return table.sort_index()


def verdict(rows: pd.DataFrame, x: str, y: str = "test_error", at: str | None = None) -> Verdict:
    """The verdict of one curve (the rows of one variant: final rows for a model-wise curve, every evaluation of
    one width for an epoch-wise one) under the one definition, across its seeds."""
    curves = seed_curves(rows, x, y)
    xs = curves.index.to_numpy(float)
    per_seed = [landmarks(xs, curves[c].to_numpy(float)) for c in curves.columns]
    center = curves.mean(axis=1, skipna=True).to_numpy(float)
    lm = landmarks(xs, center)
    finite = center[np.isfinite(center)]
    words = shape(lm, at or x, ends=float(finite[-1]) if len(finite) else None)
    n, k = len(per_seed), sum(double_descends(s) for s in per_seed)
    if n <= 1 or lm["peak"] is None:
        kind = "double descent" if double_descends(lm) else "no double descent"
        return Verdict(n, k, lm, kind, words)
    at_x = {name: curves.loc[lm[f"{name}_step"]].to_numpy(float) for name in ("first_min", "peak", "second_min")}
    rise = _ratio(at_x["peak"], at_x["first_min"])
    fall = _ratio(at_x["peak"], at_x["second_min"])
    below = _ratio(at_x["second_min"], at_x["first_min"])
    if not double_descends(lm):
        kind = "no double descent"
    elif rise.excludes_zero and rise.lo > 0 and fall.excludes_zero and fall.lo > 0:
        kind = "double descent"
    else:
        kind = "not distinguishable from seed noise"
    return Verdict(n, k, lm, kind, words, rise, fall, below)


def _ratio(top: np.ndarray, bottom: np.ndarray) -> Interval:
    """Seed by seed top / bottom, summarised as a geometric mean with the 95% t interval of the log-ratios, minus 1
    (a relative difference: +0.2 is 20% higher). Logs tame the heavy tail of a risk near its pole, where a mean of
    differences would be dominated by one seed. NaN where a value is not positive."""
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log(top / bottom)
    iv = mean_ci(logs[np.isfinite(logs)])
    return Interval(math.expm1(iv.value), math.expm1(iv.lo), math.expm1(iv.hi), iv.n, iv.level) \
        if iv.n else iv


# ----------------------------------------------------------------------------- theory over the measurements


def _configs(rows: pd.DataFrame) -> list[dict]:
    return [json.loads(c) for c in rows.drop_duplicates("run_id")["config"]]


def has_theory(rows: pd.DataFrame) -> bool:
    """Runs on the teacher-student by a family with a theory here: linear, random features."""
    return (not rows.empty and "config" in rows and rows["model"].nunique() == 1
            and set(rows["model"]) <= {"linear", "random_features"} and set(rows["dataset"]) == {"teacher_student"})


def _solvers(configs: list[dict]) -> set[str]:
    """The runs' solvers, ridge at lambda = 0 counted as lstsq (the same fit)."""
    return {"lstsq" if c["model"]["solver"] == "ridge" and not float(c["reg_strength"]) else c["model"]["solver"]
            for c in configs}


def theory_modelwise(rows: pd.DataFrame) -> pd.DataFrame | None:
    """The expected risk against the width at these runs' n_train and teachers, with `attrs["label"]` naming the
    theory: minimum-norm least squares (Belkin, Hsu & Xu 2019, exact at finite n), ridge on isotropic features
    (the Marchenko-Pastur limit), random features (Mei & Montanari 2019, asymptotic). None where no theory applies
    (another solver, anisotropic features, Fourier features)."""
    if not has_theory(rows):
        return None
    configs = _configs(rows)
    solvers = _solvers(configs)
    try:
        if set(rows["model"]) == {"random_features"}:
            return theory_modules().random_features.modelwise(configs)
        if solvers == {"lstsq"}:
            out = theory_modules().modelwise(configs)
            out.attrs["label"] = "the expected risk of min-norm least squares (Belkin, Hsu & Xu 2019)"
            return out
        if len(solvers) == 1 and solvers <= {"ridge", "ridge_optimal"}:
            return _ridge_line(configs, "width", np.arange(1, int(configs[0]["data"]["dim"]) + 1))
    except ValueError:  # e.g. anisotropic features beyond the threshold: no closed form here
        return None
    return None


def theory_samplewise(rows: pd.DataFrame) -> pd.DataFrame | None:
    """The same risk against n_train at these runs' width (peak at n = p)."""
    if not has_theory(rows) or set(rows["model"]) != {"linear"}:
        return None
    configs = _configs(rows)
    grid = {int(n) for n in np.geomspace(1, max(c["data"]["pool_size"] for c in configs), 400)}
    ns = sorted(grid | {int(n) for n in rows["n_train"]})
    solvers = _solvers(configs)
    try:
        if solvers == {"lstsq"}:
            out = theory_modules().samplewise(configs, ns)
            out.attrs["label"] = "the expected risk of min-norm least squares (Belkin, Hsu & Xu 2019)"
            return out
        if len(solvers) == 1 and solvers <= {"ridge", "ridge_optimal"}:
            return _ridge_line(configs, "n_train", np.asarray(ns))
    except ValueError:
        return None
    return None


def _ridge_line(configs: list[dict], x: str, values: np.ndarray) -> pd.DataFrame:
    """The ridge theory along width (at the runs' n_train) or along n_train (at their width)."""
    p = values if x == "width" else np.full(len(values), int(configs[0]["width"]), float)
    n = values if x == "n_train" else np.full(len(values), int(configs[0]["n_train"]), float)
    risk = theory_modules().ridge.curve_for(configs, p, n)
    out = pd.DataFrame({x: values, "test_error": risk, "test_loss": risk / 2,
                        "finite_variance": np.ones(len(values), bool)})
    out.attrs["label"] = theory_modules().ridge.label(configs)
    return out


THEORY_DRAWS = 50  # training sets per teacher in the Monte Carlo of gradient descent's expected risk


def theory_epochwise(rows: pd.DataFrame, draws: int = THEORY_DRAWS) -> pd.DataFrame | None:
    """The expected test risk of gradient descent over training sets, at the steps these runs evaluated: per
    teacher a Monte Carlo mean of `draws` fresh training sets (each teacher's draws from a seed of its own, derived
    from its data seed), averaged over the runs' teachers; `test_error_se` is the standard error of that average.
    Cached on disk per teacher (theory.epochwise), so a figure is redrawn in seconds."""
    configs = _configs(rows)
    if not has_theory(rows) or {c["model"]["solver"] for c in configs} != {"gd"}:
        return None
    curves = [theory_modules().epochwise(c, draws=draws, seed=1_000_003 + int(c["data"]["data_seed"])) for c in configs]
    out = curves[0][["step"]].copy()
    out["test_error"] = np.mean([c["test_error"].to_numpy() for c in curves], axis=0)
    out["test_error_se"] = np.sqrt(np.sum([c["test_error_se"].to_numpy() ** 2 for c in curves], axis=0)) / len(curves)
    return out


def theory_agreement(rows: pd.DataFrame, expected: pd.DataFrame, x: str) -> dict | None:
    """The seed mean against the expected risk, in standard errors of the mean: at every x where the theory is finite
    with a finite variance (`finite_variance`) and at least 2 seeds were measured, z = (mean - theory) / se.
    Returns {points, within_2se, max_abs_z, at} (at: the x of the largest |z|), or None without such points."""
    stats = seed_stats(rows, x, ["test_error"])
    both = stats.merge(expected, on=x, how="inner", suffixes=("", "_theory"))
    ok = np.isfinite(both["test_error"]) & (both["test_error_count"] > 1) & (both["test_error_se"] > 0)
    if "finite_variance" in both:
        ok &= both["finite_variance"].astype(bool)
    both = both[ok]
    if both.empty:
        return None
    z = (both["test_error_mean"] - both["test_error"]) / both["test_error_se"]
    worst = int(np.argmax(np.abs(z.to_numpy())))
    return {"points": len(z), "within_2se": int((z.abs() <= 2).sum()), "max_abs_z": float(z.abs().max()),
            "at": float(both[x].iloc[worst]), "seeds": int(both["test_error_count"].min())}


def describe_agreement(agreement: dict | None, x: str = "width") -> str:
    if agreement is None:
        return ""
    return (f"{agreement['within_2se']} of {agreement['points']} points within 2 standard errors of the theory "
            f"(largest |z| {agreement['max_abs_z']:.1f} at {x} {agreement['at']:g}; {agreement['seeds']}+ seeds)")


def conditions(df: pd.DataFrame, without: tuple[str, ...] | list[str] = ()):
    """(description, rows) for every condition present, in a stable order; `without` names condition columns
    that vary inside one group (n_train for the sample-wise figure, reg_strength for the λ-wise one)."""
    cols = [c for c in CONDITION if c in df and c not in without]
    if not cols:
        yield {}, df
        return
    for key, rows in df.groupby(cols, dropna=False, sort=True):
        yield dict(zip(cols, key if isinstance(key, tuple) else (key,))), rows


def describe(cond: dict, rows: pd.DataFrame | None = None) -> str:
    """A condition in words for a title: family, dataset, n, the noise (label noise for classification; the
    targets' σ for regression, read from `rows`), the regularizer."""
    parts = [f"{cond.get('model')} on {cond.get('dataset')}"]
    if "n_train" in cond:
        parts.append(f"n={cond['n_train']}")
    sigma = _one(rows, "data.noise") if rows is not None and _one(rows, "task") == "regression" else None
    parts.append(f"target noise σ={sigma:g}" if sigma is not None else f"noise {cond.get('label_noise', 0):.0%}")
    if cond.get("regularizer") not in (None, "none"):
        parts.append(f"{cond['regularizer']} λ={cond['reg_strength']:g}" if "reg_strength" in cond else cond["regularizer"])
    elif rows is not None and _one(rows, "model.solver") == "ridge" and "reg_strength" in cond:
        parts.append(f"ridge λ={cond['reg_strength']:g}")
    return ", ".join(parts)


def _one(rows: pd.DataFrame, column: str):
    """The value `column` holds in every row, or None (absent, or several values)."""
    if column not in rows:
        return None
    values = rows[column].dropna().unique()
    return values[0] if len(values) == 1 else None


def some_condition(df: pd.DataFrame, without: tuple[str, ...], test) -> bool:
    """Whether `test(rows)` holds for the rows of at least one condition (see `conditions`)."""
    return any(test(part) for _, part in conditions(df, without)) if not df.empty else False


# ----------------------------------------------------------------------------- ridge and its optimal lambda


def ridge_settings(rows: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Runs of the linear family's ridge solvers by their lambda: ("λ=0 (min-norm)", ...), ("λ=10", ...), and
    ("λ* (optimal)", the ridge_optimal runs), in that order."""
    solver = rows["model.solver"] if "model.solver" in rows else pd.Series("", index=rows.index)
    out = []
    plain = rows[solver.isin(["ridge", "lstsq"])]
    for lam, part in plain.groupby("reg_strength", sort=True):
        out.append(("λ=0 (min-norm)" if lam == 0 else f"λ={lam:g}", part))
    best = rows[solver == "ridge_optimal"]
    if not best.empty:
        out.append(("λ* (optimal)", best))
    return out


def monotone(rows: pd.DataFrame, x: str, y: str = "test_error") -> dict:
    """Is the seed mean non-increasing along x within noise? Each step's rise in standard errors of the difference
    of the two seed means (independent runs): {max_rise_se, at, rises} (rises: steps that rise by more than 2 SE)."""
    stats = seed_stats(rows, x, [y])
    mean, se = stats[f"{y}_mean"].to_numpy(float), stats[f"{y}_se"].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (mean[1:] - mean[:-1]) / np.hypot(se[1:], se[:-1])
    z = np.where(np.isfinite(z), z, np.where(mean[1:] > mean[:-1], np.inf, -np.inf))
    worst = int(np.argmax(z)) if len(z) else 0
    return {"max_rise_se": float(z[worst]) if len(z) else -math.inf,
            "at": float(stats[x].iloc[worst + 1]) if len(z) else math.nan, "rises": int((z > 2).sum())}


def describe_monotone(m: dict, x: str) -> str:
    if m["rises"] == 0:
        return (f"non-increasing within noise (largest rise {max(m['max_rise_se'], 0):.1f} standard errors, at "
                f"{x} {m['at']:g})")
    return f"rises by more than 2 standard errors at {m['rises']} step(s) (largest {m['max_rise_se']:.1f}, at {x} {m['at']:g})"
