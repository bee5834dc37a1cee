"""Ridge on isotropic features: the Marchenko-Pastur risk and its ridgeless limit, the exact finite-n Monte Carlo
(against Belkin, Hsu & Xu's exact formula and a brute-force fit), the optimal lambda against grid searches, and
Nakkiran et al.'s monotonicity at the optimum."""

import numpy as np
import pytest
from scipy import integrate

from ddescent.theory import ridge

GAMMAS = np.array([0.1, 0.5, 0.9, 0.99, 1.01, 1.5, 3.0, 10.0])


def min_norm_risk(p, n, r2_in, r2_out, sigma):
    """Belkin, Hsu & Xu (2019) Theorem 1: the exact expected full risk of minimum-norm least squares on p isotropic
    features from n samples (|p - n| >= 2), the teacher's unseen part r2_out acting as noise."""
    p, n = np.asarray(p, dtype=float), np.asarray(n, dtype=float)
    noise = r2_out + sigma ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p <= n - 2, noise * (1 + p / (n - p - 1)),
                        r2_in * (1 - n / p) + noise * (1 + n / (p - n - 1)))


def _mp_integral(gamma, h):
    """int h(s) dF_gamma(s) over the Marchenko-Pastur law of X^T X / n (atom 1 - 1/gamma at 0 when gamma > 1),
    by quadrature of its density: independent of the module's closed forms."""
    lo, hi = (1 - np.sqrt(gamma)) ** 2, (1 + np.sqrt(gamma)) ** 2
    dens = lambda s: np.sqrt((hi - s) * (s - lo)) / (2 * np.pi * gamma * s) * h(s)
    cont = integrate.quad(dens, lo, hi, epsabs=1e-13, epsrel=1e-11, limit=200)[0]
    return cont + (max(0.0, 1 - 1 / gamma) * h(0.0) if gamma > 1 else 0.0)


def test_closed_forms_equal_the_marchenko_pastur_integrals():
    """bias = r2 lam^2 int (s + lam)^-2, variance = sigma^2 gamma int s (s + lam)^-2, m = int (s + lam)^-1."""
    r2, sigma = 1.3, 0.7
    for gamma in (0.3, 0.8, 1.0, 2.0, 5.0):
        for lam in (1e-3, 0.1, 1.0, 10.0):
            bias, var = ridge.ridge_bias_variance(gamma, lam, r2, sigma)
            m = _mp_integral(gamma, lambda s, lam=lam: 1 / (s + lam))
            m2 = _mp_integral(gamma, lambda s, lam=lam: (s + lam) ** -2)
            ms = _mp_integral(gamma, lambda s, lam=lam: s / (s + lam) ** 2)
            assert ridge.mp_stieltjes(gamma, lam) == pytest.approx(m, rel=1e-8)
            assert bias == pytest.approx(r2 * lam ** 2 * m2, rel=1e-7)
            assert var == pytest.approx(sigma ** 2 * gamma * ms, rel=1e-7)


def test_ridgeless_limit():
    """lam = 0 through the general formula = Hastie et al.'s Theorem 1 written out = the lam -> 0 limit = the
    n -> inf limit of Belkin, Hsu & Xu's exact finite-n formula; +inf at gamma = 1 with noise."""
    r2, sigma = 1.0, 0.5
    at0 = ridge.ridge_risk_asymptotic(GAMMAS, 0.0, r2, sigma)
    np.testing.assert_allclose(at0, ridge.ridgeless_risk_asymptotic(GAMMAS, r2, sigma), rtol=1e-12)
    np.testing.assert_allclose(ridge.ridge_risk_asymptotic(GAMMAS, 1e-10, r2, sigma), at0, rtol=1e-5)
    np.testing.assert_allclose(at0, np.where(GAMMAS < 1, sigma ** 2 / (1 - GAMMAS),
                                             r2 * (1 - 1 / GAMMAS) + sigma ** 2 * (1 + 1 / (GAMMAS - 1))), rtol=1e-12)
    n = 100_000
    p = np.round(GAMMAS * n)
    np.testing.assert_allclose(min_norm_risk(p, n, r2, 0.0, sigma), ridge.ridge_risk_for(p, n, 0.0, r2, sigma),
                               rtol=2e-3)
    assert np.isinf(ridge.ridge_risk_asymptotic(1.0, 0.0, r2, sigma))
    assert ridge.ridge_risk_asymptotic(1.0, 0.0, r2, 0.0) == 0.0
    # weak features: the unseen part of the teacher is label noise
    np.testing.assert_allclose(ridge.ridge_risk_asymptotic(GAMMAS, 0.3, r2, sigma, r2_out=0.4),
                               ridge.ridge_risk_asymptotic(GAMMAS, 0.3, r2, np.sqrt(sigma ** 2 + 0.4)), rtol=1e-14)


def test_bad_input_is_one_clear_value_error():
    cases = [
        (lambda: ridge.ridge_risk_asymptotic(0.0, 0.1, 1.0, 0.5), "gamma"),
        (lambda: ridge.ridge_risk_asymptotic(1.0, -0.1, 1.0, 0.5), "lam"),
        (lambda: ridge.ridge_risk_asymptotic(1.0, 0.1, -1.0, 0.5), "r2"),
        (lambda: ridge.ridge_risk_mc(0, 10, 0.1, 1.0, 0.5, 10, 0), "p=0"),
        (lambda: ridge.ridge_risk_mc(5, 10, 0.1, 1.0, 0.5, 1, 0), "draws"),
        (lambda: ridge.optimal_lambda(5, 10, 0.0, 0.5), "r2"),
        (lambda: ridge.optimal_lambda(5, 10, 1.0, 0.5, convention="median"), "convention"),
        (lambda: ridge.mp_stieltjes(2.0, 0.0), "lam"),
    ]
    for call, words in cases:
        with pytest.raises(ValueError) as err:
            call()
        assert words in str(err.value) and "\n" not in str(err.value)


# ----------------------------------------------------------------------------- the exact finite-n Monte Carlo


@pytest.mark.parametrize("p, n", [(10, 30), (20, 40), (50, 30), (60, 20)])
def test_monte_carlo_matches_the_exact_minimum_norm_risk(p, n):
    mean, se = ridge.ridge_risk_mc(p, n, 0.0, 1.0, 0.5, draws=800, seed=p)
    exact = min_norm_risk(p, n, 1.0, 0.0, 0.5)
    assert abs(mean - exact) < 4 * se and se < 0.01 * exact, (mean, se, exact)


def test_monte_carlo_matches_a_brute_force_fit_with_weak_features():
    """A plain simulation: w fixed (not random) on d = 40 coordinates, the student on the first p = 25, realized
    noise, ddescent's ridge solved directly, risk ||v - w_in||^2 + ||w_out||^2 + sigma^2."""
    d, p, n, sigma = 40, 25, 40, 0.5
    w = np.random.default_rng(7).standard_normal(d) * 0.2
    r2, r2_out = float(w[:p] @ w[:p]), float(w[p:] @ w[p:])
    lams = np.array([0.0, 2.0, 20.0])
    rng = np.random.default_rng(8)
    risks = []
    for _ in range(3000):
        x = rng.standard_normal((n, d))
        y = x @ w + sigma * rng.standard_normal(n)
        xs = x[:, :p]
        row = []
        for lam in lams:
            v = np.linalg.solve(xs.T @ xs + lam * np.eye(p), xs.T @ y)
            row.append(np.sum((v - w[:p]) ** 2) + r2_out + sigma ** 2)
        risks.append(row)
    risks = np.array(risks)
    brute, brute_se = risks.mean(0), risks.std(0, ddof=1) / np.sqrt(len(risks))
    mean, se = ridge.ridge_risk_mc(p, n, lams, r2, sigma, draws=800, seed=3, r2_out=r2_out)
    assert np.all(np.abs(brute - mean) < 4 * np.hypot(brute_se, se)), (brute, brute_se, mean, se)
    assert np.all(brute_se < 0.01 * brute)
    assert abs(mean[0] - min_norm_risk(p, n, r2, r2_out, sigma)) < 4 * se[0]  # Belkin, Hsu & Xu, weak features


def test_monte_carlo_approaches_the_asymptotic_risk():
    """p, n = 100, 200 and 200, 100: the finite-size gap at lam* is ~0.2% and ~0.05%
    (scripts/check_theory.py), at lam = 0.5 n similar; 1% allowed."""
    for p, n in ((100, 200), (200, 100)):
        lams = np.array([0.5 * n, float(ridge.optimal_lambda(p, n, 1.0, 0.5))])
        mean, se = ridge.ridge_risk_mc(p, n, lams, 1.0, 0.5, draws=30, seed=1)
        theory = ridge.ridge_risk_for(p, n, lams, 1.0, 0.5)
        assert np.all(np.abs(mean - theory) < 0.01 * theory + 3 * se), (mean, se, theory)


# ----------------------------------------------------------------------------- the optimal lambda


def test_optimal_lambda_conventions():
    assert ridge.optimal_lambda(50, 200, 2.0, 0.5) == pytest.approx(50 * 0.25 / 2.0)          # p sigma^2 / r2
    assert ridge.optimal_lambda(50, 200, 2.0, 0.5, convention="mean") == pytest.approx(0.25 * 0.25 / 2.0)
    assert ridge.optimal_lambda(50, 200, 2.0, 0.5, r2_out=0.75) == pytest.approx(50 * 1.0 / 2.0)
    # independent of n in ddescent's (sum) convention
    np.testing.assert_allclose(ridge.optimal_lambda(50, [10, 50, 500], 2.0, 0.5), 6.25)


def test_optimal_lambda_minimises_the_asymptotic_risk():
    lam = np.geomspace(1e-4, 1e3, 7001)  # steps of 0.23%
    for gamma in (0.3, 1.0, 2.0, 6.0):
        for r2, sigma, r2_out in ((1.0, 0.5, 0.0), (4.0, 1.0, 0.5), (1.0, 0.1, 0.0)):
            risk = ridge.ridge_risk_asymptotic(gamma, lam, r2, sigma, r2_out)
            best = lam[np.argmin(risk)]
            assert best == pytest.approx(gamma * (sigma ** 2 + r2_out) / r2, rel=0.003)
            # and there the risk is sigma_eff^2 (1 + gamma m(-lam*)) (Dobriban & Wager)
            star = gamma * (sigma ** 2 + r2_out) / r2
            assert ridge.ridge_risk_asymptotic(gamma, star, r2, sigma, r2_out) == pytest.approx(
                (sigma ** 2 + r2_out) * (1 + gamma * ridge.mp_stieltjes(gamma, star)), rel=1e-12)


def test_optimal_lambda_minimises_the_finite_n_risk_on_every_draw():
    """lam* = p sigma^2 / r2 minimises E[R | X] for every X, so the Monte Carlo grid search (same X's for all lam)
    lands on the grid point next to it whatever the draws, at sizes where the asymptotics do not hold."""
    for p, n in ((12, 8), (10, 30), (20, 20)):
        star = float(ridge.optimal_lambda(p, n, 1.0, 0.6))
        lam = np.linspace(0.05, 3 * star, 301)
        mean, _ = ridge.ridge_risk_mc(p, n, lam, 1.0, 0.6, draws=20, seed=p + n)
        assert abs(lam[np.argmin(mean)] - star) <= lam[1] - lam[0]


def test_at_the_optimal_lambda_more_data_never_hurts_while_at_zero_it_peaks_at_n_equal_p():
    """Nakkiran et al. 2020, Theorem 1 (sample-wise monotonicity), asymptotically and at finite n."""
    p, r2, sigma = 200, 1.0, 0.5
    n = np.arange(20, 801)
    at_star = ridge.ridge_risk_for(p, n, ridge.optimal_lambda(p, n, r2, sigma), r2, sigma)
    assert np.all(np.diff(at_star) <= 1e-12)
    at0 = ridge.ridge_risk_for(p, n, 0.0, r2, sigma)
    assert np.isinf(at0[n == p]).all() and np.isfinite(at0[n != p]).all()
    # more data hurts: r2 (1 - n/p) + sigma^2 p/(p - n) rises from n = p (1 - sigma/r) = 100 up to n = p
    assert np.all(np.diff(at0[(n > 100) & (n < p)]) > 0) and np.all(np.diff(at0[n > p]) < 0)
    assert np.all(np.diff(at_star[(n > 100) & (n < p)]) < 0)
    # finite n, exact optimum, common random numbers (designs nested in n)
    p = 20
    ns = np.arange(4, 61, 4)
    means, ses = np.array([ridge.ridge_risk_mc(p, k, ridge.optimal_lambda(p, k, r2, sigma), r2, sigma, 200, 5)
                           for k in ns]).T
    assert np.all(np.diff(means) <= 3 * np.hypot(ses[1:], ses[:-1])), (means, ses)
    assert means[-1] < 0.6 * means[0]
