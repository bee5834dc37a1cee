"""Independent Monte Carlo check of the random-features and ridge theories (ddescent.theory.random_features,
ddescent.theory.ridge): plain numpy simulations at two or three sizes, printed as a table of formula vs simulation
and the finite-size gap (which should shrink as the size grows).

    python scripts/check_theory.py            # d = 50, 100, 200 (RF), n = 50, 100, 200 (ridge): ~2 min on one core
    python scripts/check_theory.py --quick    # d = 25, 50 and n = 25, 50, 100, fewer draws: under ~20 s

Only the public risk functions under test are imported (rf_risk, rf_risk_for, ridge_risk_for, optimal_lambda);
the activation coefficients, the lambda conversion and the simulations are written out here.

Random features (Mei & Montanari 2019): x, theta ~ N(0, I_d) ("gauss", ddescent's data and model) or uniform on the
sphere of radius sqrt d ("sphere", the paper's), N features sigma(<theta_j, x>/sqrt d), n = psi2 d samples of
y = <w, x> + tau eps, ||w|| = F1; fit with ddescent's convention a = (Phi^T Phi + lam_dd I)^+ Phi^T y. The fit is
linear in y, a = A y, so the risk is averaged exactly over the direction of w (E w w^T = F1^2/d I) and the noise for
each draw of (X, Theta):

    E (f(x) - f_hat(x))^2 = F1^2 - (2 F1^2/d) tr(M^T B) + (F1^2/d) tr(M^T K M) + tau^2 tr(A^T K A),   M = A X,

with K = E phi(x) phi(x)^T and B = E phi(x) x^T. For relu and Gaussian x both are closed forms (K the arc-cosine
kernel, B = Theta/(2 sqrt d) by Stein's lemma): the risk is exact given (X, Theta). Otherwise (sphere, tanh) the
expectation over x uses `--ntest` fresh test points (its sampling error is inside the standard error shown).
The full risk adds tau^2. The Monte Carlo is over (X, Theta) only.

Ridge (isotropic linear model): x ~ N(0, I_p), y = x^T w + sigma eps, ||w||^2 = r2, fit v = (X^T X + lam I)^+ X^T y
(ddescent's sums); the risk ||v - w||^2 + sigma^2 averaged exactly over the direction of w and the noise from the
SVD of each X: Monte Carlo over X only. For lam = 0 the column `exact` is Belkin, Hsu & Xu's finite-n formula, which
the Monte Carlo should match within its standard error (the gap to the theory is then the O(1/n) finite-size term).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import special

from ddescent.theory.random_features import rf_risk, rf_risk_for
from ddescent.theory.ridge import optimal_lambda, ridge_risk_for

# ----------------------------------------------------------------------------- random features

ACT = {"relu": lambda t: np.maximum(t, 0.0), "tanh": np.tanh, "erf": special.erf}


def coefficients(name: str) -> tuple[float, float, float]:
    """(mu0, mu1, mustar) by 201-point Gauss-Hermite (probabilists'), closed forms for relu."""
    if name == "relu":
        return 1 / np.sqrt(2 * np.pi), 0.5, np.sqrt(0.25 - 1 / (2 * np.pi))
    g, wts = np.polynomial.hermite_e.hermegauss(201)
    wts = wts / wts.sum()
    f = ACT[name](g)
    m0, m1, m2 = wts @ f, wts @ (g * f), wts @ (f * f)
    return m0, m1, np.sqrt(m2 - m0 ** 2 - m1 ** 2)


def sphere(rng, m, d):
    g = rng.standard_normal((m, d))
    return g * (np.sqrt(d) / np.linalg.norm(g, axis=1, keepdims=True))


def ridge_maps(phi, lams):
    """A(lam) = (Phi^T Phi + lam I)^+ Phi^T (N x n) for each lam, from one eigendecomposition of the smaller Gram
    matrix (lam = 0: minimum norm; the Gram matrix is full rank away from N = n)."""
    n, big_n = phi.shape
    if big_n <= n:
        e, u = np.linalg.eigh(phi.T @ phi)
        q = u.T @ phi.T
        return [u @ (q / (e + lam)[:, None]) for lam in lams]
    e, v = np.linalg.eigh(phi @ phi.T)
    return [phi.T @ ((v / (e + lam)) @ v.T) for lam in lams]


def relu_kernel(theta, d):
    """E relu(z_j) relu(z_k) for z = theta x / sqrt d, x ~ N(0, I): the degree-1 arc-cosine kernel."""
    s = np.linalg.norm(theta, axis=1) / np.sqrt(d)
    cos = np.clip(theta @ theta.T / d / np.outer(s, s), -1.0, 1.0)
    ang = np.arccos(cos)
    return np.outer(s, s) / (2 * np.pi) * (np.sin(ang) + (np.pi - ang) * cos)


def rf_monte_carlo(d, psi1, psi2, lams_dd, draws, seed, data, act, tau, f1, ntest):
    """Full risk of ddescent's RF ridge (lams_dd: sum convention) per draw of (X, Theta): array [draws, len(lams)]."""
    big_n, n = round(psi1 * d), round(psi2 * d)
    out = np.empty((draws, len(lams_dd)))
    for k in range(draws):
        rng = np.random.default_rng([seed, d, big_n, n, k])
        if data == "gauss":
            x, th = rng.standard_normal((n, d)), rng.standard_normal((big_n, d))
        else:
            x, th = sphere(rng, n, d), sphere(rng, big_n, d)
        phi = ACT[act](x @ th.T / np.sqrt(d))
        exact = data == "gauss" and act == "relu"
        if exact:
            kern, b = relu_kernel(th, d), 0.5 * th / np.sqrt(d)
        else:
            xt = rng.standard_normal((ntest, d)) if data == "gauss" else sphere(rng, ntest, d)
            pt = ACT[act](xt @ th.T / np.sqrt(d))
        for j, a in enumerate(ridge_maps(phi, lams_dd)):
            m = a @ x
            if exact:
                ex = (f1 ** 2 + f1 ** 2 / d * (np.sum((kern @ m) * m) - 2 * np.sum(m * b))
                      + tau ** 2 * np.sum((kern @ a) * a))
            else:
                ex = f1 ** 2 / d * np.sum((xt - pt @ m) ** 2) / ntest + tau ** 2 * np.sum((pt @ a) ** 2) / ntest
            out[k, j] = ex + tau ** 2
    return out


def rf_table(sizes, draws_at, data_kinds, acts, seed, ntest):
    psi2, tau, f1 = 2.0, 0.5, 1.0
    points = {0.5: [0.0, 1e-2, 1e-1], 2.0: [1e-3, 1e-2, 1e-1], 4.0: [0.0, 1e-2, 1e-1]}  # psi1: paper lambdas
    # (psi1 printed is N/d with N = round(psi1 d); the theory is evaluated there)
    print(f"\n== random features: psi2 = n/d = {psi2:g}, F1 = {f1:g}, tau = {tau:g}; full risk E(y - f_hat)^2; "
          "lambda = the paper's (fit with lam_dd = n N lambda / d)")
    print(f"{'act':5} {'data':6} {'psi1':>5} {'lambda':>7} {'d':>4} {'draws':>5} {'theory':>8} {'MC':>8} {'se':>7} "
          f"{'gap':>8} {'gap/th':>7}")
    for act in acts:
        mu0, mu1, mustar = coefficients(act)
        for data in data_kinds:
            for psi1, lams in points.items():
                for d in sizes:
                    big_n, n = round(psi1 * d), round(psi2 * d)
                    lams_dd = [n * big_n * lam / d for lam in lams]
                    draws = draws_at(d, data, act)
                    mc = rf_monte_carlo(d, psi1, psi2, lams_dd, draws, seed, data, act, tau, f1, ntest)
                    for j, lam in enumerate(lams):
                        th = float(rf_risk_for(d, big_n, n, lams_dd[j], act, F1=f1, tau=tau))
                        own = float(rf_risk(big_n / d, n / d, lam, mu0, mu1, mustar, F1=f1, tau=tau))
                        assert abs(th - own) <= 1e-6 * th, (th, own)  # the module's conversion = this script's
                        mean, se = mc[:, j].mean(), mc[:, j].std(ddof=1) / np.sqrt(draws)
                        print(f"{act:5} {data:6} {big_n / d:5.2f} {lam:7.0e} {d:4d} {draws:5d} {th:8.4f} {mean:8.4f} "
                              f"{se:7.4f} {mean - th:+8.4f} {(mean - th) / th:+7.2%}")


# ----------------------------------------------------------------------------- ridge


def ridge_monte_carlo(p, n, lams, r2, sigma, draws, seed):
    """Full risk per draw of X, averaged exactly over the direction of w and the noise: [draws, len(lams)]."""
    lams = np.asarray(lams, dtype=float)
    out = np.empty((draws, len(lams)))
    for k in range(draws):
        x = np.random.default_rng([seed, p, n, k]).standard_normal((n, p))
        sv = np.linalg.svd(x, compute_uv=False)  # min(n, p) singular values
        s2 = sv ** 2
        null = p - len(sv)  # directions of w that X does not see
        for j, lam in enumerate(lams):
            if lam == 0:
                bias = r2 / p * null
                var = sigma ** 2 * np.sum(1 / s2)
            else:
                bias = r2 / p * (np.sum((lam / (s2 + lam)) ** 2) + null)
                var = sigma ** 2 * np.sum(s2 / (s2 + lam) ** 2)
            out[k, j] = sigma ** 2 + bias + var
    return out


def min_norm_exact(p, n, r2, sigma):
    """Belkin, Hsu & Xu (2019) Theorem 1: exact finite-n expected risk of minimum-norm least squares, |p - n| >= 2."""
    if p <= n - 2:
        return sigma ** 2 * (1 + p / (n - p - 1))
    return r2 * (1 - n / p) + sigma ** 2 * (1 + n / (p - n - 1))


def ridge_table(sizes, draws, seed):
    r2, sigma = 1.0, 0.5
    print(f"\n== ridge, isotropic: r2 = {r2:g}, sigma = {sigma:g}; full risk ||v - w||^2 + sigma^2; "
          "lam_sum = ddescent's (sums); lam* = p sigma^2 / r2")
    print(f"{'gamma':>5} {'lambda':>9} {'n':>4} {'p':>4} {'draws':>5} {'theory':>8} {'MC':>8} {'se':>7} {'gap':>8} "
          f"{'gap/th':>7} {'exact':>7}")
    for gamma in (0.5, 2.0):
        for which in ("0", "lam*"):
            for n in sizes:
                p = round(gamma * n)
                lam = 0.0 if which == "0" else float(optimal_lambda(p, n, r2, sigma))
                mc = ridge_monte_carlo(p, n, [lam], r2, sigma, draws, seed)[:, 0]
                th = float(ridge_risk_for(p, n, lam, r2, sigma))
                mean, se = mc.mean(), mc.std(ddof=1) / np.sqrt(draws)
                exact = f"{min_norm_exact(p, n, r2, sigma):7.4f}" if lam == 0 else "-"
                print(f"{gamma:5.1f} {which + f'={lam:g}':>9} {n:4d} {p:4d} {draws:5d} {th:8.4f} {mean:8.4f} {se:7.4f} "
                      f"{mean - th:+8.4f} {(mean - th) / th:+7.2%} {exact:>7}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes and few draws (under ~20 s)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ntest", type=int, default=4000, help="test points where the risk has no closed form")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    if args.quick:
        rf_table((25, 50), lambda d, data, act: 80 if d <= 25 else 30, ("gauss",), ("relu",), args.seed, args.ntest)
        ridge_table((25, 50, 100), 1000, args.seed)
    else:
        def draws_at(d, data, act):
            exact = data == "gauss" and act == "relu"
            return max(8, (4000 if exact else 2000) // d)
        rf_table((50, 100, 200), draws_at, ("gauss", "sphere"), ("relu",), args.seed, args.ntest)
        rf_table((50, 100, 200), draws_at, ("gauss",), ("tanh",), args.seed, args.ntest)
        ridge_table((50, 100, 200), 2000, args.seed)
    print(f"\n{time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
