"""Ridge regression on isotropic Gaussian features: exact finite-n risk (Monte Carlo over X), its Marchenko-Pastur
limit, and the optimal ridge, computed in numpy.

Setting (ddescent's linear family): x ~ N(0, I_p) (the p features the student sees), y = x^T w + sigma eps with
||w||^2 = r2; optionally a part of the teacher beyond the p features, ||w_out||^2 = r2_out, on independent N(0, 1)
inputs (Belkin, Hsu & Xu's weak features). That part is a Gaussian N(0, r2_out) independent of x, exactly an extra
label noise, so every formula here takes sigma_eff^2 = sigma^2 + r2_out. The fit is ddescent's

    v = argmin (1/2) ||X v - y||^2 + (lam/2) ||v||^2 = (X^T X + lam I)^-1 X^T y            (sums: "lam_sum")

and lam = 0 is minimum-norm least squares (the ridgeless limit). Risk convention: the FULL risk

    R(v) = E (x^T v - y)^2 = ||v - w||^2 + sigma_eff^2.

The papers write the mean-loss ridge (1/n)||X v - y||^2 + lam_mean ||v||^2, i.e. v = (X^T X/n + lam_mean I)^-1
X^T y / n: the same estimator at lam_sum = n lam_mean. `ridge_risk_asymptotic` takes lam_mean (it only knows
gamma = p/n); `ridge_risk_for` takes ddescent's lam_sum with p and n; `ridge_risk_mc` and `optimal_lambda` take p
and n and speak lam_sum (optimal_lambda also converts).

Asymptotics (p, n -> inf, p/n -> gamma; Dobriban & Wager 2018, Ann. Statist. 46(1), Theorem 2.1 with Sigma = I;
Hastie, Montanari, Rosset & Tibshirani 2022, Ann. Statist. 50(2), the isotropic ridge result of their Section on
ridge regularization and Theorem 1 for the ridgeless limit). With m(z) the Stieltjes transform of the MP law of
X^T X/n (the root of gamma z m^2 - (1 - gamma - z) m + 1 = 0 that is positive on z < 0), the excess risk is

    ||v - w||^2 -> r2 lam^2 m'(-lam) + sigma_eff^2 gamma (m(-lam) - lam m'(-lam))        (lam = lam_mean)

(bias: (r2/p) tr (lam (S + lam)^-1)^2; variance: (sigma^2/n) tr S (S + lam)^-2, S = X^T X/n). Writing
L = lam m(-lam), a = 1 - gamma + lam and s = sqrt(a^2 + 4 gamma lam), the quadratic gives exactly

    lam^2 m' = (lam + (gamma - 1) L) / s,     gamma (m - lam m') = gamma (1 - L) / s,

a form without the cancellation of m ~ (1 - 1/gamma)/lam against lam m' for gamma > 1, valid down to lam = 0:

    gamma < 1:  R = sigma_eff^2 (1 + gamma/(1 - gamma))
    gamma > 1:  R = r2 (1 - 1/gamma) + sigma_eff^2 (1 + 1/(gamma - 1))        (+inf at gamma = 1 if sigma_eff > 0)

(Hastie et al. Theorem 1; the n -> inf limit of Belkin, Hsu & Xu's exact finite-n formula, see
ddescent.theory.linear.min_norm_risk).

Optimal ridge. For fixed X the expected risk over the noise and over the direction of w is, in the eigenvalues
s_i of X^T X (p of them, zeros included),

    R(lam | X) = sigma_eff^2 + sum_i [ (r2/p) lam^2 + sigma_eff^2 s_i ] / (s_i + lam)^2,

and d/dlam of each term is 2 s_i (r2 lam / p - sigma_eff^2) / (s_i + lam)^3: every term is minimised at
lam_sum* = p sigma_eff^2 / r2, whatever X. So lam* is exactly optimal at every finite n and p, for the expected risk
of any fixed w with ||w||^2 = r2 (by rotation invariance, below), and does not depend on n (Nakkiran, Venkat, Kakade
& Ma 2020, "Optimal regularization can mitigate double descent", their lemma on the optimal ridge: lam_opt =
d sigma^2/||beta||^2 for argmin ||X b - y||^2 + lam ||b||^2, the same lam as ddescent's halves). In the mean
convention lam_mean* = gamma sigma_eff^2 / r2 (Dobriban & Wager's lambda* = gamma sigma^2 / alpha^2), where the
limiting risk is sigma_eff^2 (1 + gamma m(-lam*)). At lam* the expected risk is non-increasing in n (Nakkiran et
al., Theorem 1, sample-wise monotonicity), while at lam = 0 it peaks (diverges) at n = p.

Rotation invariance: X's law is invariant under X -> X Q for orthogonal Q, and v(XQ, y) = Q^T v(X, y), so the
expected risk of w equals that of Q^T w: it depends on w only through r2 = ||w||^2, and averaging over a uniform
direction of w changes nothing.
"""

from __future__ import annotations

import numpy as np


def _nonneg(name, value):
    value = np.asarray(value, dtype=float)
    if np.any(~(value >= 0)):
        raise ValueError(f"{name} must be >= 0")
    return value


def _positive_int(name, value) -> int:
    if not (float(value) == int(value) and int(value) > 0):
        raise ValueError(f"{name}={value!r} must be a positive whole number")
    return int(value)


# ----------------------------------------------------------------------------- Marchenko-Pastur


def mp_stieltjes(gamma, lam):
    """m(-lam), lam > 0: the limit of (1/p) tr (X^T X/n + lam I)^-1 for X with i.i.d. N(0, 1) entries, p/n -> gamma.
    m = (-a + sqrt(a^2 + 4 gamma lam)) / (2 gamma lam), a = 1 - gamma + lam, evaluated without cancellation.
    Broadcasts."""
    gamma, lam = np.broadcast_arrays(_gamma(gamma), _nonneg("lam", lam))
    if np.any(lam == 0):
        raise ValueError("lam must be > 0 for m(-lam) (it diverges at 0 when gamma >= 1)")
    return _lam_m(gamma, lam)[0] / lam


def _gamma(gamma):
    gamma = np.asarray(gamma, dtype=float)
    if np.any(~(gamma > 0)):
        raise ValueError("gamma = p/n must be > 0")
    return gamma


def _lam_m(gamma, lam):
    """(L, s) with L = lam m(-lam) in [0, 1) and s = sqrt(a^2 + 4 gamma lam), a = 1 - gamma + lam; at lam = 0,
    L = max(0, 1 - 1/gamma) (the MP atom at 0) and s = |1 - gamma|. nan at gamma = 1, lam = 0."""
    a = 1 - gamma + lam
    s = np.sqrt(a * a + 4 * gamma * lam)
    with np.errstate(divide="ignore", invalid="ignore"):
        big = np.where(a >= 0, 2 * lam / (a + s), (s - a) / (2 * gamma))
    return big, s


# ----------------------------------------------------------------------------- asymptotic risk


def ridge_bias_variance(gamma, lam, r2, sigma, r2_out=0.0):
    """Limiting (bias, variance) of ||v - w||^2 for the mean-convention ridge lam = lam_mean >= 0 (see the module's
    docstring): bias = r2 lam^2 m'(-lam), variance = sigma_eff^2 gamma (m(-lam) - lam m'(-lam)). Broadcasts."""
    gamma, lam = _gamma(gamma), _nonneg("lam", lam)
    r2, noise = _nonneg("r2", r2), _nonneg("sigma", sigma) ** 2 + _nonneg("r2_out", r2_out)
    gamma, lam, r2, noise = np.broadcast_arrays(gamma, lam, r2, noise)
    big, s = _lam_m(gamma, lam)
    peak = (lam == 0) & (gamma == 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        bias = np.where(peak, 0.0, r2 * (lam + (gamma - 1) * big) / s)
        var = np.where(peak, np.where(noise > 0, np.inf, 0.0), noise * gamma * (1 - big) / s)
    return bias, var


def ridge_risk_asymptotic(gamma, lam, r2, sigma, r2_out=0.0):
    """Limiting FULL risk E (x^T v - y)^2 = sigma_eff^2 + bias + variance of ridge with the MEAN-convention lam
    (lam_mean = lam_sum / n; 0 = ridgeless) at gamma = p/n: Dobriban & Wager 2018 Thm 2.1 / Hastie et al. 2022
    (isotropic case). Vectorised over gamma, lam, r2 and r2_out."""
    bias, var = ridge_bias_variance(gamma, lam, r2, sigma, r2_out)
    return float(sigma) ** 2 + np.asarray(r2_out, dtype=float) + bias + var


def ridgeless_risk_asymptotic(gamma, r2, sigma, r2_out=0.0):
    """Hastie et al. 2022 Theorem 1 (isotropic), FULL risk, written out separately from the general formula:
    gamma < 1: sigma_eff^2 / (1 - gamma); gamma > 1: r2 (1 - 1/gamma) + sigma_eff^2 gamma / (gamma - 1);
    gamma = 1: +inf (sigma_eff^2 if sigma_eff = 0)."""
    gamma = _gamma(gamma)
    r2, noise = _nonneg("r2", r2), _nonneg("sigma", sigma) ** 2 + _nonneg("r2_out", r2_out)
    with np.errstate(divide="ignore", invalid="ignore"):
        under = noise / (1 - gamma)
        over = r2 * (1 - 1 / gamma) + noise * gamma / (gamma - 1)
        at = np.where(noise > 0, np.inf, 0.0)
    return np.where(gamma < 1, under, np.where(gamma > 1, over, at))


def ridge_risk_for(p, n, lam_sum, r2, sigma, r2_out=0.0):
    """`ridge_risk_asymptotic` in ddescent's terms: gamma = p/n and lam_mean = lam_sum / n. Broadcasts."""
    p, n = np.asarray(p, dtype=float), np.asarray(n, dtype=float)
    if np.any(~(p > 0)) or np.any(~(n > 0)):
        raise ValueError("p and n must be > 0")
    return ridge_risk_asymptotic(p / n, _nonneg("lam_sum", lam_sum) / n, r2, sigma, r2_out)


# ----------------------------------------------------------------------------- optimal ridge


def optimal_lambda(p, n, r2, sigma, r2_out=0.0, convention="sum"):
    """The optimal ridge for isotropic features (see the module's docstring for the proof that it is exact at
    every finite p, n): convention="sum" (ddescent's (1/2)||Xv - y||^2 + (lam/2)||v||^2, and Nakkiran et al.'s):
    lam* = p sigma_eff^2 / r2, independent of n; convention="mean" ((1/n)||Xv - y||^2 + lam||v||^2, Dobriban &
    Wager's): lam* = p sigma_eff^2 / (n r2) = gamma sigma_eff^2 / r2. Broadcasts over p and n."""
    if convention not in ("sum", "mean"):
        raise ValueError(f"convention={convention!r}: expected sum or mean")
    p, n = np.asarray(p, dtype=float), np.asarray(n, dtype=float)
    if np.any(~(p > 0)) or np.any(~(n > 0)):
        raise ValueError("p and n must be > 0")
    r2 = np.asarray(r2, dtype=float)
    if np.any(~(r2 > 0)):
        raise ValueError("r2 must be > 0 (with no signal the optimal ridge is infinite: predict 0)")
    noise = _nonneg("sigma", sigma) ** 2 + _nonneg("r2_out", r2_out)
    lam = p * noise / r2
    return lam if convention == "sum" else lam / n


# ----------------------------------------------------------------------------- exact finite-n risk


def conditional_risk(eigenvalues, p, lam, r2, sigma, r2_out=0.0):
    """Expected FULL risk given X, over the noise and a uniformly random direction of w (||w||^2 = r2), from the
    eigenvalues of X^T X (length p, zeros included), for ddescent's lam_sum (array, >= 0; 0 = minimum norm):

        sigma_eff^2 + sum_i [(r2/p) lam^2 + sigma_eff^2 s_i] / (s_i + lam)^2     (lam = 0: zero s_i give r2/p each,
                                                                                 the others sigma_eff^2 / s_i)
    Returns an array of lam's shape."""
    s = np.asarray(eigenvalues, dtype=float)
    lam = _nonneg("lam", lam)
    noise = float(sigma) ** 2 + float(r2_out)
    lam_c = lam.reshape(-1, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ridge = ((r2 / p) * lam_c ** 2 + noise * s) / (s + lam_c) ** 2
        ridgeless = np.where(s > 0, noise / np.where(s > 0, s, 1.0), r2 / p)
    terms = np.where(lam_c > 0, ridge, ridgeless)
    return (noise + terms.sum(1)).reshape(lam.shape)


def ridge_risk_mc(p, n, lam, r2, sigma, draws, seed, r2_out=0.0):
    """Exact finite-(p, n) expected FULL risk of ddescent's ridge (lam = lam_sum >= 0, scalar or array; 0 = minimum
    norm), estimated over `draws` training designs X (n x p, i.i.d. N(0, 1)): returns (mean, standard error), each of
    lam's shape. The noise and the direction of w are integrated exactly for each X (`conditional_risk`): w is
    effectively uniform on the sphere of radius sqrt(r2), which gives the same expectation as any fixed w of that norm
    (rotation invariance). Draw k uses np.random.default_rng([seed, k]) and X = standard_normal((n, p)), so designs
    are nested in n (the first n rows of a larger draw): common random numbers along a sample-wise curve.
    At lam = 0 with |p - n| <= 1 the expectation is infinite (Belkin, Hsu & Xu); the mean of draws is then finite
    and meaningless."""
    p, n, draws = _positive_int("p", p), _positive_int("n", n), _positive_int("draws", draws)
    if draws < 2:
        raise ValueError("draws must be >= 2 (for a standard error)")
    _nonneg("r2", r2), _nonneg("sigma", sigma), _nonneg("r2_out", r2_out)
    lam = _nonneg("lam", lam)
    out = np.empty((draws,) + lam.shape)
    for k in range(draws):
        x = np.random.default_rng([int(seed), k]).standard_normal((n, p))
        if p <= n:
            s = np.linalg.eigvalsh(x.T @ x)
        else:  # the p - n structural zeros exactly, the others from the smaller Gram matrix
            s = np.concatenate([np.linalg.eigvalsh(x @ x.T), np.zeros(p - n)])
        out[k] = conditional_risk(np.clip(s, 0.0, None), p, lam, r2, sigma, r2_out)
    return out.mean(0), out.std(0, ddof=1) / np.sqrt(draws)


# ----------------------------------------------------------------------------- over a sweep's runs


def teacher_parts(w: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(||w_{<=p}||^2, ||w_{>p}||^2) for each p: the signal a student of the first p features can see, and the part
    that acts as noise."""
    cum = np.concatenate([[0.0], np.cumsum(np.asarray(w, float) ** 2)])
    p = np.asarray(p, int)
    return cum[p], cum[-1] - cum[p]


def _lam(config, p, r2, r2_out):
    """The lambda (sum convention) a linear run used: reg_strength for ridge, 0 for lstsq, lambda* for
    ridge_optimal (models.linear.optimal_lambda, the same formula)."""
    solver = config["model"]["solver"]
    if solver == "ridge_optimal":
        return optimal_lambda(p, 1, r2, float(config["data"]["noise"]), r2_out)
    return float(config["reg_strength"]) if solver == "ridge" else 0.0


def curve_for(configs, p, n):
    """The asymptotic full risk (Dobriban & Wager / Hastie et al., the Marchenko-Pastur limit) of linear ridge
    runs (lstsq, ridge, ridge_optimal) on the isotropic teacher-student at features p and samples n (arrays of one
    shape; the part of the teacher beyond p counts as noise), averaged over the configs' distinct teachers."""
    from ddescent.theory.teachers import isotropic, teachers

    pairs = teachers(configs)
    if not all(isotropic(c) for c, _ in pairs):
        raise ValueError("theory: the ridge theory needs isotropic features (data.kappa = 1 or one block)")
    p, n = np.asarray(p, float), np.asarray(n, float)
    curves = []
    for c, w in pairs:
        r2, r2_out = teacher_parts(w, p)
        curves.append(ridge_risk_for(p, n, _lam(c, p, r2, r2_out), r2, float(c["data"]["noise"]), r2_out))
    return np.mean(curves, axis=0)


def label(configs) -> str:
    """What the line is, for a legend (the lambda is the line's own label)."""
    return "the Marchenko-Pastur limit of ridge (Dobriban & Wager 2018; Hastie et al. 2019)"
