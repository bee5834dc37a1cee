"""Asymptotic test risk of random-features ridge regression (Mei & Montanari 2019), computed in numpy.

Reference: S. Mei and A. Montanari, "The generalization error of random features regression: precise asymptotics
and double descent curve", arXiv:1908.05355 (Comm. Pure Appl. Math. 75, 2022): Definition 1 (the fixed point nu_1,
nu_2 and the rational functions E_0, E_1, E_2, B, V), Theorem 1 (the risk at lambda > 0) and the ridgeless-limit
theorem (Theorem 3 of the arXiv version as we read it; numbers not re-checked against the PDF, the formulas are:
see docs/experiments/theory_random_features.md for how).

Their setting. x_i ~ Unif(S^{d-1}(sqrt d)), theta_j ~ Unif(S^{d-1}(sqrt d)), j <= N, i <= n; features
phi_j(x) = sigma(<theta_j, x> / sqrt d); targets y = f_d(x) + eps, E eps^2 = tau^2, f_d(x) = beta_0 + <beta_1, x>
+ f_NL(x) with ||beta_1||^2 -> F_1^2 and E f_NL(x)^2 -> F_*^2 (f_NL orthogonal to degree <= 1). The fit is

    a_hat(lambda) = argmin_a (1/n) sum_i (y_i - sum_j a_j phi_j(x_i))^2 + (N lambda / d) ||a||^2        (paper)

and the *test error* is R_RF = E_x (f_d(x) - f_hat(x))^2: an excess risk, without the test noise tau^2. With
psi_1 = N/d, psi_2 = n/d, zeta = mu_1/mu_*, lambda_bar = lambda / mu_*^2 (mu's below), Theorem 1 says

    R_RF -> F_1^2 B(zeta, psi_1, psi_2, lambda_bar) + (tau^2 + F_*^2) V(zeta, psi_1, psi_2, lambda_bar) + F_*^2.

Conventions here. `rf_excess_risk` is the paper's R_RF; `rf_risk` is the FULL risk E (y - f_hat(x))^2 = R_RF + tau^2
(ddescent's convention for regression: the test target carries its own noise). lambda in both is the paper's.

Activation coefficients (G ~ N(0, 1)): mu_0 = E sigma(G), mu_1 = E G sigma(G), mu_*^2 = E sigma(G)^2 - mu_0^2 -
mu_1^2. mu_0 does not enter the limit (the theorem lets f_d carry a mean beta_0, fitted at no asymptotic cost through
the constant part of the features when mu_0 != 0; ddescent's targets have beta_0 = 0, so mu_0 plays no role).

Gaussian instead of spherical x and theta (ddescent draws x ~ N(0, I_d) and theta ~ N(0, I_d), W = theta / sqrt d):
the limit is the same. x = r u with u ~ Unif(S^{d-1}(sqrt d)) independent of r = ||x||/sqrt d, and
max_i |r_i - 1| = O(sqrt(log n / d)) -> 0; the same for theta. For relu, sigma(r s z) = r s sigma(z), so the Gaussian
feature matrix is D_x Phi_sphere D_theta with diagonal D's tending to I in operator norm, and the linear target
changes by the same factors r_i; the resolvents that carry the risk then differ by o(1) (for a smooth sigma,
sigma(r z) - sigma(z) = O(|r - 1|) likewise). The paper proves the sphere case; the Gaussian one is this argument
(and Gaussian-universality results for random features, e.g. Hu & Lu 2020), checked here by Monte Carlo: both
data converge to the formula, the Gaussian with a larger O(1/d) correction (docs/experiments/theory_random_features.md).

ddescent's convention and the conversion. ddescent fits a = argmin (1/2) ||Phi a - y||^2 + (lam_dd / 2) ||a||^2
(sums over the n samples), features sigma(<theta_j, x>/sqrt d). Multiplying the paper's objective by n/2 gives
(1/2)||Phi a - y||^2 + (n N lambda / (2 d)) ||a||^2, so

    lam_dd = n N lambda / d,        lambda (paper) = d lam_dd / (n N)          (`paper_lambda`, `rf_risk_for`)

A teacher y = <w, x> + tau eps with x ~ N(0, I_d), ||w||^2 = F_1^2 is f_d = <beta_1, x> with beta_1 = w, beta_0 = 0,
F_* = 0 (`rf_risk_for` takes Fstar for a nonlinear teacher part anyway).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import special

# ----------------------------------------------------------------------------- activations

_FUNCTIONS = {
    "relu": lambda t: np.maximum(t, 0.0),
    "tanh": np.tanh,
    "erf": special.erf,
    "abs": np.abs,
}
ACTIVATIONS = tuple(_FUNCTIONS)

# (mu_0, mu_1, E sigma(G)^2) where a closed form is known
_CLOSED = {
    "relu": (1 / np.sqrt(2 * np.pi), 0.5, 0.5),
    "abs": (np.sqrt(2 / np.pi), 0.0, 1.0),
    "erf": (0.0, 2 / np.sqrt(3 * np.pi), 2 / np.pi * np.arcsin(2 / 3)),  # E erf(aG)erf(bG) = 2/pi asin(2ab/...)
}


class Coefficients(NamedTuple):
    mu0: float
    mu1: float
    mustar: float


def activation(name: str):
    """The activation `name` as a numpy function (one of ACTIVATIONS)."""
    _check_name(name)
    return _FUNCTIONS[name]


def _check_name(name) -> None:
    if name not in _FUNCTIONS:
        raise ValueError(f"activation={name!r}: expected one of {', '.join(ACTIVATIONS)}")


def gaussian_moments(fn) -> tuple[float, float, float]:
    """(E f(G), E G f(G), E f(G)^2) for G ~ N(0, 1), by adaptive quadrature (scipy.integrate.quad) on each half
    line, so that a kink at 0 (relu, abs) costs no accuracy."""
    from scipy import integrate  # (a quarter second to import: only the random-features theory needs it)

    def expect(h):
        dens = lambda g: h(g) * np.exp(-g * g / 2) / np.sqrt(2 * np.pi)
        return sum(integrate.quad(dens, a, b, epsabs=1e-14, epsrel=1e-12, limit=200)[0]
                   for a, b in ((-np.inf, 0.0), (0.0, np.inf)))
    return expect(fn), expect(lambda g: g * fn(g)), expect(lambda g: fn(g) ** 2)


def activation_coefficients(name: str, method: str = "auto") -> Coefficients:
    """(mu_0, mu_1, mu_*) of an activation (Mei & Montanari's Assumption on sigma; zeta = mu_1 / mu_*).

    method: "closed" (relu, abs, erf only), "quadrature" (any; `gaussian_moments`), "auto" (closed where known).
    relu: mu_0 = 1/sqrt(2 pi), mu_1 = 1/2, mu_*^2 = 1/4 - 1/(2 pi); abs: sqrt(2/pi), 0, 1 - 2/pi;
    erf: 0, 2/sqrt(3 pi), (2/pi) asin(2/3) - 4/(3 pi); tanh: quadrature only."""
    _check_name(name)
    if method not in ("auto", "closed", "quadrature"):
        raise ValueError(f"method={method!r}: expected one of auto, closed, quadrature")
    if method == "closed" and name not in _CLOSED:
        raise ValueError(f"method='closed': no closed form for activation={name!r} (closed forms: "
                         f"{', '.join(_CLOSED)})")
    if method == "quadrature" or name not in _CLOSED:
        m0, m1, m2 = gaussian_moments(_FUNCTIONS[name])
    else:
        m0, m1, m2 = _CLOSED[name]
    return Coefficients(float(m0), float(m1), float(np.sqrt(max(m2 - m0 ** 2 - m1 ** 2, 0.0))))


# ----------------------------------------------------------------------------- the fixed point (Definition 1)


def _ridgeless_t(psi, z2):
    """The positive root of z2 t^2 + (1 + z2 - psi z2) t - psi = 0, i.e. g(t) = psi with g(t) = t + z2 t/(1 + z2 t);
    computed without cancellation on either sign of the linear coefficient (and at z2 = 0: t = psi)."""
    b = 1 + z2 - psi * z2
    root = np.sqrt(b * b + 4 * z2 * psi)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b >= 0, 2 * psi / (b + root), (root - b) / (2 * np.where(z2 > 0, z2, 1.0)))


def _t(psi1, psi2, lam_bar, zeta):
    """t = -chi = a b, where nu_1 = i a, nu_2 = i b (a, b > 0) solve Definition 1 at xi = i u, u^2 = psi1 psi2
    lam_bar. On the imaginary axis the two complex equations are real:

        a (u + b + z2 b/(1 + z2 t)) = psi1,   b (u + a + z2 a/(1 + z2 t)) = psi2      (z2 = zeta^2, t = a b)

    i.e. a u = psi1 - g(t), b u = psi2 - g(t) with g(t) = t + z2 t/(1 + z2 t), so t solves the scalar equation
    h(t) = (psi1 - g)(psi2 - g) - u^2 t = 0. h decreases from psi1 psi2 at t = 0 to -u^2 t0 at t0, the root of
    g(t0) = min(psi1, psi2): one root in (0, t0], found by bisection (vectorised; 110 halvings reach rounding).
    At lam_bar = 0 it is t0 itself: Theorem 3's chi = -t0."""
    z2 = zeta ** 2
    t0 = _ridgeless_t(np.minimum(psi1, psi2), z2)
    u2 = psi1 * psi2 * lam_bar
    lo, hi = np.zeros_like(t0), t0.copy()
    for _ in range(110):
        mid = 0.5 * (lo + hi)
        g = mid + z2 * mid / (1 + z2 * mid)
        pos = (psi1 - g) * (psi2 - g) - u2 * mid > 0
        lo, hi = np.where(pos, mid, lo), np.where(pos, hi, mid)
    return np.where(lam_bar > 0, 0.5 * (lo + hi), t0)


def rf_fixed_point(psi1, psi2, lam_bar, zeta):
    """(nu_1, nu_2), complex, of Definition 1 at xi = i sqrt(psi1 psi2 lam_bar), lam_bar > 0: the solution in the
    upper half plane of nu_1 = psi1 (-xi - nu_2 - zeta^2 nu_2 / (1 - zeta^2 nu_1 nu_2))^-1 and its mirror for nu_2.
    Both are purely imaginary there (see `_t`). Broadcasts."""
    psi1, psi2, lam_bar, zeta = _check(psi1, psi2, lam_bar, zeta)
    if np.any(lam_bar <= 0):
        raise ValueError("lam_bar must be > 0 for the fixed point (nu_1 diverges as lambda -> 0 when psi1 > psi2)")
    t = _t(psi1, psi2, lam_bar, zeta)
    u = np.sqrt(psi1 * psi2 * lam_bar)
    g = t + zeta ** 2 * t / (1 + zeta ** 2 * t)
    return 1j * (psi1 - g) / u, 1j * (psi2 - g) / u


def _polys(chi, zeta, psi1, psi2):
    """E_0, E_1, E_2 of Definition 1 (Mei & Montanari 2019, the display after the fixed-point equations)."""
    z2, z4, z6 = zeta ** 2, zeta ** 4, zeta ** 6
    p12 = psi1 * psi2
    c2, c3, c4, c5 = chi ** 2, chi ** 3, chi ** 4, chi ** 5
    e0 = (-c5 * z6 + 3 * c4 * z4 + (p12 - psi2 - psi1 + 1) * c3 * z6 - 2 * c3 * z4 - 3 * c3 * z2
          + (psi1 + psi2 - 3 * p12 + 1) * c2 * z4 + 2 * c2 * z2 + c2 + 3 * p12 * chi * z2 - p12)
    e1 = psi2 * c3 * z4 - psi2 * c2 * z2 + p12 * chi * z2 - p12
    e2 = (c5 * z6 - 3 * c4 * z4 + (psi1 - 1) * c3 * z6 + 2 * c3 * z4 + 3 * c3 * z2 + (-psi1 - 1) * c2 * z4
          - 2 * c2 * z2 - c2)
    return e0, e1, e2


def _check(psi1, psi2, lam, zeta):
    psi1, psi2, lam, zeta = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (psi1, psi2, lam, zeta)))
    if np.any(~(psi1 > 0)):
        raise ValueError("psi1 = N/d must be > 0")
    if np.any(~(psi2 > 0)):
        raise ValueError("psi2 = n/d must be > 0")
    if np.any(~(lam >= 0)):
        raise ValueError("lam must be >= 0 (0 is the ridgeless limit)")
    if np.any(~np.isfinite(zeta)):
        raise ValueError("zeta = mu1/mustar must be finite")
    return psi1, psi2, lam, zeta


def rf_bias_variance(psi1, psi2, lam_bar, zeta):
    """(B, V) of Definition 1: B = E_1/E_0, V = E_2/E_0 at chi = nu_1 nu_2 evaluated at xi = i sqrt(psi1 psi2
    lam_bar), lam_bar = lambda / mu_*^2. lam_bar = 0 is Theorem 3's ridgeless limit, chi = -t0 in closed form:

        chi = -[(psi zeta^2 - zeta^2 - 1) + sqrt((psi zeta^2 - zeta^2 - 1)^2 + 4 zeta^2 psi)] / (2 zeta^2),
        psi = min(psi1, psi2),

    which is also the lam_bar -> 0 limit of the fixed point (`_t`). There E_0 = 0 exactly at psi1 = psi2: B and V
    are +inf at N = n (the interpolation peak; the nonlinear part of the features acts as noise, so B diverges
    too as soon as mu_* > 0). Broadcasts over its arguments."""
    psi1, psi2, lam_bar, zeta = _check(psi1, psi2, lam_bar, zeta)
    chi = -_t(psi1, psi2, lam_bar, zeta)
    e0, e1, e2 = _polys(chi, zeta, psi1, psi2)
    pole = (lam_bar == 0) & (np.abs(psi1 - psi2) <= 1e-12 * np.maximum(psi1, psi2))  # N/d == n/d up to rounding
    with np.errstate(divide="ignore", invalid="ignore"):
        b = np.where(pole, np.inf, e1 / np.where(pole, 1.0, e0))
        v = np.where(pole, np.inf, e2 / np.where(pole, 1.0, e0))
    return b, v


def _coefficients(mu1, mustar):
    if np.any(~(np.asarray(mustar, dtype=float) > 0)):
        raise ValueError("mustar must be > 0 (a linear activation has no nonlinear part; Theorem 1 needs mu_* > 0)")
    return np.asarray(mu1, dtype=float) / np.asarray(mustar, dtype=float)


def rf_excess_risk(psi1, psi2, lam, mu0, mu1, mustar, F1=1.0, tau=0.0, Fstar=0.0):
    """The paper's test error R_RF = E_x (f_d(x) - f_hat(x))^2 (no test noise), Theorem 1 (lam > 0) / Theorem 3
    (lam = 0):  F1^2 B + (tau^2 + Fstar^2) V + Fstar^2, with zeta = mu1/mustar and B, V at lambda_bar =
    lam / mustar^2. lam is the paper's lambda (penalty (N lam / d) ||a||^2 on a mean loss). mu0 does not enter
    (see the module's docstring). Vectorised over psi1, psi2, lam; ~1 ms for 200 points."""
    for name, value in (("F1", F1), ("tau", tau), ("Fstar", Fstar)):
        if np.any(~(np.asarray(value, dtype=float) >= 0)):
            raise ValueError(f"{name} must be >= 0 (a norm or a standard deviation)")
    zeta = _coefficients(mu1, mustar)
    b, v = rf_bias_variance(psi1, psi2, np.asarray(lam, dtype=float) / np.asarray(mustar, dtype=float) ** 2, zeta)
    signal = np.asarray(F1, dtype=float) ** 2
    noise = np.asarray(tau, dtype=float) ** 2 + np.asarray(Fstar, dtype=float) ** 2
    with np.errstate(invalid="ignore"):  # a zero weight on an infinite term (the pole) counts as 0
        return (np.where(signal > 0, signal * b, 0.0) + np.where(noise > 0, noise * v, 0.0)
                + np.asarray(Fstar, dtype=float) ** 2)


def rf_risk(psi1, psi2, lam, mu0, mu1, mustar, F1=1.0, tau=0.0, Fstar=0.0):
    """FULL asymptotic test risk E (y - f_hat(x))^2 = R_RF + tau^2 (ddescent's convention), paper's lambda.
    psi1 = N/d, psi2 = n/d; lam = 0 is the ridgeless limit, +inf at psi1 = psi2. See `rf_excess_risk`."""
    return rf_excess_risk(psi1, psi2, lam, mu0, mu1, mustar, F1, tau, Fstar) + np.asarray(tau, dtype=float) ** 2


# ----------------------------------------------------------------------------- ddescent's conventions


def paper_lambda(d, N, n, lam_ddescent):
    """Mei & Montanari's lambda for ddescent's ridge a = argmin (1/2)||Phi a - y||^2 + (lam_dd/2)||a||^2 (sums):
    lambda = d lam_dd / (n N). Broadcasts."""
    d, N, n, lam = (np.asarray(a, dtype=float) for a in (d, N, n, lam_ddescent))
    if np.any(~(lam >= 0)):
        raise ValueError("lam_ddescent must be >= 0 (0 is minimum-norm least squares)")
    if np.any(~(d > 0)) or np.any(~(N > 0)) or np.any(~(n > 0)):
        raise ValueError("d, N and n must be > 0")
    return d * lam / (n * N)


def rf_risk_for(d, N, n, lam_ddescent, activation="relu", F1=1.0, tau=0.0, Fstar=0.0):
    """Asymptotic FULL test risk of ddescent's random-features ridge on the isotropic teacher-student data:
    x ~ N(0, I_d), y = <w, x> + tau eps with ||w||^2 = F1^2 (plus a nonlinear teacher part of power Fstar^2, 0 for
    ddescent's linear teacher), N features sigma(<theta_j, x>/sqrt d) with theta_j ~ N(0, I_d) (W = theta/sqrt d,
    as ddescent's model draws it), n samples, lam_ddescent on the sum-of-squares objective (0 = lstsq).
    Evaluates `rf_risk` at psi1 = N/d, psi2 = n/d, lambda = d lam_dd / (n N). Broadcasts over N, n, lam."""
    mu0, mu1, mustar = activation_coefficients(activation)
    lam = paper_lambda(d, N, n, lam_ddescent)
    d = np.asarray(d, dtype=float)
    return rf_risk(np.asarray(N, dtype=float) / d, np.asarray(n, dtype=float) / d, lam, mu0, mu1, mustar,
                   F1, tau, Fstar)


# ----------------------------------------------------------------------------- over a sweep's runs

RIDGELESS = ("lstsq",)


def modelwise(configs, widths=None):
    """Model-wise theory line of random-features runs (model=random_features, lstsq or ridge, relu or tanh features)
    on the isotropic teacher-student (data.kappa = 1 or one block, every scale 1): the asymptotic full risk against
    N at the runs' n_train, d and lambda, averaged over their distinct teachers (F1^2 = ||w||^2 of each, tau = the
    target noise). widths: default 1 .. 5 max(n, N). Columns: width, test_error (inf at N = n when ridgeless),
    test_loss, finite_variance (ridgeless: |N/n - 1| >= 0.1, near the pole a seed mean estimates the risk poorly;
    ridge with lambda > 0: everywhere, the fit is bounded)."""
    import pandas as pd

    from ddescent.theory.teachers import isotropic, same, teachers

    pairs = teachers(configs)
    config = pairs[0][0]
    if config["model"]["name"] != "random_features" or config["model"]["solver"] not in ("lstsq", "ridge"):
        raise ValueError("theory: random-features theory covers model=random_features with solver lstsq or ridge")
    if config["model"]["features"] not in ACTIVATIONS or not all(isotropic(c) for c, _ in pairs):
        raise ValueError("theory: Mei & Montanari need features sigma(<theta, x>/sqrt d) on isotropic inputs")
    n, d = int(same(pairs, "n_train")), int(config["data"]["dim"])
    lam = 0.0 if config["model"]["solver"] in RIDGELESS else float(same(pairs, "reg_strength"))
    widths = np.arange(1, 5 * max(n, *(int(c["width"]) for c, _ in pairs)) + 1) if widths is None \
        else np.asarray(widths, int)
    curve = np.mean([rf_risk_for(d, widths, n, lam, config["model"]["features"], F1=float(np.linalg.norm(w)),
                                 tau=float(c["data"]["noise"])) for c, w in pairs], axis=0)
    out = pd.DataFrame({"width": widths, "test_error": curve, "test_loss": curve / 2,
                        "finite_variance": (np.abs(widths / n - 1) >= 0.1) | (lam > 0)})
    out.attrs["label"] = (f"Mei & Montanari 2019, asymptotic (N, n, d proportional), d={d}, n={n}, "
                          f"{config['model']['features']}, λ={lam:g}")
    return out
