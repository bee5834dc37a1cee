"""Theory of the linear teacher-student (ddescent.data.teacher_student, ddescent.models.linear), computed in numpy.

Risk convention (the same as the linear family's records): the risk of a student v on the first p input
coordinates is the expected squared error on a fresh sample, target noise included,

    R(v) = E (x_{<=p}^T v - y)^2 = ||w_{<=p} - F_{<=p} v||^2 + ||w_{>p}||^2 + sigma^2     (no 1/2)

Three readings of double descent:

* model-wise and sample-wise (Belkin, Hsu & Xu 2019, weak features): the expected risk of minimum-norm least
  squares on p isotropic features from n samples, `min_norm_risk`, read along p (`modelwise`) or along n
  (`samplewise`: the peak at n = p, "more data hurts"). It is infinite (the expectation diverges) for
  n - 1 <= p <= n + 1 whenever ||w_{>p}||^2 + sigma^2 > 0.
* epoch-wise: full-batch gradient descent from v = 0 on (1/2n)||X v - y||^2 is linear in y, so its iterate at
  any step is a closed form of one eigendecomposition (`gd_path`); `risk` scores it exactly. `epochwise` gives
  the exact curve of a run's own training set, or a Monte Carlo mean over fresh training sets of the same
  teacher (labelled as such: it is an estimate, with its standard error).

The functions taking `config` read a run's resolved config as stored in the results' `config` column (a dict:
"width", "n_train", "data", "model", "optim", "train", "regularizer", ...).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from ddescent.data import teacher_student
from ddescent.data.cache import cached_arrays
from ddescent.linalg import gd_kwargs, gd_path, risk
from ddescent.schedule import eval_steps
from ddescent.theory.teachers import same, teachers

# ----------------------------------------------------------------------------- closed forms


def min_norm_risk(p, n, w_in_sq, w_out_sq, sigma):
    """Expected test risk (sigma^2 included) of minimum-norm least squares on p isotropic features, n samples
    (Belkin, Hsu & Xu 2019, Theorem 1), with w_in_sq = ||w_{<=p}||^2 and w_out_sq = ||w_{>p}||^2:

        p <= n - 2:  (||w_{>p}||^2 + sigma^2) (1 + p / (n - p - 1))
        p >= n + 2:  ||w_{<=p}||^2 (1 - n / p) + (||w_{>p}||^2 + sigma^2) (1 + n / (p - n - 1))

    and +inf for n - 1 <= p <= n + 1, where the expectation diverges (0 there if ||w_{>p}||^2 + sigma^2 = 0 and
    p <= n, ||w||^2 (1 - n/p) if p = n + 1). Broadcasts over its arguments."""
    p, n, w_in_sq, w_out_sq = (np.asarray(a, dtype=float) for a in (p, n, w_in_sq, w_out_sq))
    noise = w_out_sq + float(sigma) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        under = p / (n - p - 1)
        over = n / (p - n - 1)
        gain = np.where(p <= n - 2, under, np.where(p >= n + 2, over, np.inf))
        variance = np.where(noise > 0, noise * (1 + gain), 0.0)
        bias = np.where(p > n, w_in_sq * (1 - n / np.maximum(p, 1)), 0.0)
    return bias + variance


def expected_gd_risk(w, scales, sigma, n, p, steps, draws, seed=0, **gd):
    """Monte Carlo estimate of E_train R(v_t): the mean, and its standard error, over `draws` fresh training
    sets of n samples (x = F z, y = z^T w + sigma eps; teacher fixed) of the risk of the GD iterate at each step
    (gd_path's keyword arguments; lr=None picks each draw's own 1/lambda_max, as a run does). Seeded."""
    rng = np.random.default_rng(seed)
    curves = np.empty((draws, len(steps)))
    for k in range(draws):
        x, y = teacher_student.draw(np.asarray(w, float), np.asarray(scales, float), sigma, n, rng)
        v, _ = gd_path(x[:, :p], y, steps, **gd)
        curves[k] = risk(v, w, scales, sigma)
    return curves.mean(0), curves.std(0, ddof=1) / np.sqrt(draws) if draws > 1 else np.full(len(steps), np.nan)


# ----------------------------------------------------------------------------- runs' configs


def _isotropic_min_norm(config, w, p, n) -> np.ndarray:
    d = config["data"]
    f = teacher_student.scales(d)
    p = np.asarray(p)
    if np.any(p > len(w)):
        raise ValueError(f"theory: width {int(p.max())} > data.dim = {len(w)}")
    top = int(p[p >= np.asarray(n) + 2].max()) if np.any(p >= np.asarray(n) + 2) else 0
    if top and np.ptp(f[:top]) > 0:  # below the threshold least squares does not see a feature's scale
        raise ValueError("theory: the minimum-norm formula beyond the threshold needs isotropic features "
                         "(data.kappa = 1 or one block)")
    cum = np.concatenate([[0.0], np.cumsum(w ** 2)])
    return min_norm_risk(p, n, cum[p], cum[-1] - cum[p], float(d["noise"]))


def modelwise(configs, widths=None) -> pd.DataFrame:
    """Model-wise theory line: expected risk of minimum-norm least squares (model.solver = lstsq) against the
    width p at the configs' n_train, averaged over the distinct teachers of `configs` (a run's config dict,
    or several: pass every run of the sweep to average over its data seeds). widths: default 1 .. d.
    Columns: width, test_error (the risk, sigma^2 included; inf at |p - n| <= 1), test_loss (half of it),
    finite_variance (see `finite_variance`)."""
    pairs = teachers(configs)
    n = int(same(pairs, "n_train"))
    widths = np.arange(1, len(pairs[0][1]) + 1) if widths is None else np.asarray(widths, dtype=int)
    curve = np.mean([_isotropic_min_norm(c, w, widths, n) for c, w in pairs], axis=0)
    return pd.DataFrame({"width": widths, "test_error": curve, "test_loss": curve / 2,
                         "finite_variance": finite_variance(widths, n)})


def samplewise(configs, n_train=None) -> pd.DataFrame:
    """Sample-wise theory line: the same expected risk against n_train at the configs' width p (peak at n = p),
    averaged over their distinct teachers. n_train: default 1 .. data.pool_size."""
    pairs = teachers(configs)
    p = int(same(pairs, "width"))
    ns = np.arange(1, int(pairs[0][0]["data"]["pool_size"]) + 1) if n_train is None else np.asarray(n_train, int)
    curve = np.mean([_isotropic_min_norm(c, w, np.full(len(ns), p), ns) for c, w in pairs], axis=0)
    return pd.DataFrame({"n_train": ns, "test_error": curve, "test_loss": curve / 2,
                         "finite_variance": finite_variance(p, ns)})


def finite_variance(p, n) -> np.ndarray:
    """Where the risk of minimum-norm least squares has a finite variance over training sets: |p - n| >= 4 (its
    second moment needs the inverse Wishart's, finite for n - p - 3 > 0 below the threshold and p - n - 3 > 0 above).
    Only there does a seed mean estimate the expected risk with a standard error; at |p - n| <= 1 even the expected
    risk is infinite."""
    return np.abs(np.asarray(p) - np.asarray(n)) >= 4


def gd_settings(config) -> dict:
    """gd_kwargs for a stored run config of the teacher-student."""
    d = config["data"]
    n = config.get("n_train") or d["pool_size"] - int(round(d.get("val_fraction", 0.0) * d["pool_size"]))
    return gd_kwargs(config, teacher_student.blocks(d), int(n))


def epochwise(config, steps=None, draws: int = 0, seed: int = 0) -> pd.DataFrame:
    """Epoch-wise theory line of one gd run: its test risk after each step.

    draws = 0: exact, for the run's own training set (drawn again as the run drew it; this is the run's
    recorded test_error, to rounding). draws > 0: a Monte Carlo estimate of the expectation over training sets
    of n_train samples for the run's teacher, with `test_error_se`, its standard error. Columns: step,
    test_error (sigma^2 included), test_loss (half)."""
    (c, w), = teachers(config)
    steps = eval_steps(config) if steps is None else list(steps)
    f, sigma, p = teacher_student.scales(config["data"]), float(config["data"]["noise"]), int(config["width"])
    gd = gd_settings(config)
    if draws:
        key = {"what": "expected_gd_risk/1", "data": config["data"], "p": p, "n": int(config["n_train"]),
               "steps": [int(t) for t in steps], "draws": int(draws), "seed": int(seed),
               "gd": {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in gd.items()}}
        arrays = cached_arrays("theory", key, None, lambda: dict(zip(("mean", "se"), expected_gd_risk(
            w, f, sigma, int(config["n_train"]), p, steps, draws, seed, **gd))))
        mean, se = arrays["mean"], arrays["se"]
        return pd.DataFrame({"step": steps, "test_error": mean, "test_loss": mean / 2, "test_error_se": se})
    from ddescent.data import load as load_data  # (torch: only the exact curve of one training set needs it)

    data = load_data(OmegaConf.create(config["data"]))
    x = data.x_train.double().cpu().numpy()[:, :p]
    v, _ = gd_path(x, data.y_train.double().cpu().numpy(), steps, **gd)
    r = risk(v, w, f, sigma)
    return pd.DataFrame({"step": steps, "test_error": r, "test_loss": r / 2})
