"""Random-features ridge theory (Mei & Montanari 2019): activation coefficients, the fixed point of Definition 1,
the ridgeless limit and its pole at N = n, known limits, and a Monte Carlo in ddescent's lambda convention."""

import time

import numpy as np
import pytest

from ddescent.theory import random_features as rf

RELU = rf.activation_coefficients("relu")


# ----------------------------------------------------------------------------- activation coefficients


def test_quadrature_matches_the_closed_forms():
    for name in ("relu", "abs", "erf"):
        np.testing.assert_allclose(rf.activation_coefficients(name, "quadrature"),
                                   rf.activation_coefficients(name, "closed"), rtol=0, atol=1e-9)
    np.testing.assert_allclose(RELU, [1 / np.sqrt(2 * np.pi), 0.5, np.sqrt(0.25 - 1 / (2 * np.pi))], atol=1e-15)


def test_coefficients_match_a_large_monte_carlo():
    g = np.random.default_rng(0).standard_normal(1_000_000)
    for name in rf.ACTIVATIONS:
        mu0, mu1, mustar = rf.activation_coefficients(name)
        f = rf.activation(name)(g)
        for value, sample in ((mu0, f), (mu1, g * f), (mustar ** 2 + mu0 ** 2 + mu1 ** 2, f * f)):
            se = sample.std() / np.sqrt(len(g))
            assert abs(sample.mean() - value) < 5 * se, (name, sample.mean(), value, se)


def test_bad_input_is_one_clear_value_error():
    cases = [
        (lambda: rf.activation_coefficients("gelu"), "activation='gelu'"),
        (lambda: rf.activation_coefficients("tanh", "closed"), "no closed form"),
        (lambda: rf.rf_risk(0.0, 1.0, 0.1, *RELU), "psi1"),
        (lambda: rf.rf_risk([1.0, -2.0], 1.0, 0.1, *RELU), "psi1"),
        (lambda: rf.rf_risk(1.0, 0.0, 0.1, *RELU), "psi2"),
        (lambda: rf.rf_risk(1.0, 1.0, -0.1, *RELU), "lam"),
        (lambda: rf.rf_risk(1.0, 1.0, 0.1, 0.0, 1.0, 0.0), "mustar"),
        (lambda: rf.rf_risk(1.0, 1.0, 0.1, *RELU, tau=-1.0), "tau"),
        (lambda: rf.rf_risk_for(10, 20, 30, -1.0), "lam_ddescent"),
        (lambda: rf.rf_risk_for(10, 20, 30, 1.0, activation="sigmoid"), "activation='sigmoid'"),
        (lambda: rf.rf_fixed_point(1.0, 2.0, 0.0, 1.0), "lam_bar"),
    ]
    for call, words in cases:
        with pytest.raises(ValueError) as err:
            call()
        assert words in str(err.value) and "\n" not in str(err.value)


# ----------------------------------------------------------------------------- the formula itself


def test_fixed_point_solves_definition_1():
    """nu_1, nu_2 in the upper half plane solve the two complex equations of Definition 1 at xi = i sqrt(psi1 psi2
    lam_bar): checks the reduction to one real equation."""
    psi1, psi2, lam_bar, zeta = np.meshgrid([0.3, 1.0, 2.5, 8.0], [0.5, 2.5, 6.0], [1e-4, 0.1, 10.0], [0.0, 0.7, 3.0])
    nu1, nu2 = rf.rf_fixed_point(psi1, psi2, lam_bar, zeta)
    xi = 1j * np.sqrt(psi1 * psi2 * lam_bar)
    z2 = zeta ** 2
    r1 = nu1 - psi1 / (-xi - nu2 - z2 * nu2 / (1 - z2 * nu1 * nu2))
    r2 = nu2 - psi2 / (-xi - nu1 - z2 * nu1 / (1 - z2 * nu1 * nu2))
    assert np.all(nu1.imag > 0) and np.all(nu2.imag > 0)
    assert np.max(np.abs(r1) / np.abs(nu1)) < 1e-10 and np.max(np.abs(r2) / np.abs(nu2)) < 1e-10


def test_ridgeless_closed_form_is_the_small_lambda_limit_and_peaks_at_n_equal_N():
    psi1 = np.array([0.3, 1.0, 1.9, 2.1, 3.0, 8.0])
    for tau, fstar in ((0.5, 0.0), (0.0, 0.3), (0.0, 0.0)):
        at0 = rf.rf_risk(psi1, 2.0, 0.0, *RELU, F1=1.0, tau=tau, Fstar=fstar)
        near = rf.rf_risk(psi1, 2.0, 1e-11, *RELU, F1=1.0, tau=tau, Fstar=fstar)
        np.testing.assert_allclose(near, at0, rtol=1e-5)
    # N = n: infinite whenever anything is to be fitted (F1 > 0: the features' nonlinear part acts as noise)
    assert np.isinf(rf.rf_risk(2.0, 2.0, 0.0, *RELU, F1=1.0, tau=0.5))
    assert np.isinf(rf.rf_risk(2.0, 2.0, 0.0, *RELU, F1=0.0, tau=0.0, Fstar=0.3))
    assert rf.rf_risk(2.0, 2.0, 0.0, *RELU, F1=0.0, tau=0.0) == 0.0
    # model-wise curve on N = 1 .. 500 at d = 100, n = 200: finite except at N = n, largest next to it
    d, n = 100, 200
    big_n = np.arange(1, 501)
    curve = rf.rf_risk_for(d, big_n, n, 0.0, F1=1.0, tau=0.5)
    assert np.isinf(curve[big_n == n]).all() and np.isfinite(curve[big_n != n]).all()
    finite = np.where(np.isfinite(curve), curve, -np.inf)
    assert abs(big_n[np.argmax(finite)] - n) == 1
    assert np.all(np.diff(curve[150:199]) > 0) and np.all(np.diff(curve[200:260]) < 0)  # rises to it, falls after


def test_ridge_lowers_the_peak_and_more_ridge_lowers_it_more():
    psi1 = np.linspace(0.02, 6.0, 300)  # grid steps across psi2 = 2 without landing on it
    ridgeless = rf.rf_risk(psi1, 2.0, 0.0, *RELU, F1=1.0, tau=0.5)
    peaks = [rf.rf_risk(psi1, 2.0, lam, *RELU, F1=1.0, tau=0.5).max() for lam in (1e-4, 1e-3, 1e-2)]
    near = ridgeless[np.abs(psi1 - 2.0) < 0.03]
    assert np.all(np.diff(peaks) < 0) and peaks[0] < near.min()
    assert ridgeless[np.argmax(ridgeless)] > 10 * peaks[0]


def test_known_limits():
    # lambda -> inf: f_hat -> 0, the excess risk is the target's power
    assert rf.rf_excess_risk(2.0, 3.0, 1e9, *RELU, F1=1.0, tau=0.5, Fstar=0.3) == pytest.approx(1.09, rel=1e-6)
    # d << N, n (psi's -> inf at fixed N/n = 3 or 1/3), ridgeless: least squares with N generic features,
    # B -> 0 and V -> N/(n - N) (N < n) or n/(N - n) (N > n), Hastie et al.'s isotropic formula at gamma = N/n
    zeta = RELU.mu1 / RELU.mustar
    b, v = rf.rf_bias_variance([1e5, 3e5], [3e5, 1e5], 0.0, zeta)
    np.testing.assert_allclose(v, [0.5, 0.5], rtol=1e-3)
    assert np.all(b < 1e-4)
    # mu_1 = 0 (abs): the features carry no linear part, the linear target is never learnt (B >= 1)
    b, _ = rf.rf_bias_variance([0.5, 1.0, 5.0, 50.0], 3.0, [0.0, 0.1, 0.0, 1.0], 0.0)
    assert np.all(b >= 1.0)


def test_a_figure_curve_is_cheap():
    psi1 = np.linspace(0.05, 10, 200)
    start = time.perf_counter()
    for lam in (0.0, 1e-3):
        curve = rf.rf_risk(psi1, 3.0, lam, *RELU, F1=1.0, tau=0.5)
    assert time.perf_counter() - start < 0.5 and curve.shape == (200,)


# ----------------------------------------------------------------------------- Monte Carlo, ddescent's convention


def _mc_full_risk(d, big_n, n, lam_dd, f1, tau, draws, seed):
    """ddescent's fit a = (Phi^T Phi + lam_dd I)^+ Phi^T y on x, theta ~ N(0, I_d), relu features; the full risk
    averaged exactly over w's direction and the noise (the fit is linear in y) and over x (arc-cosine kernel), per
    draw of (X, Theta)."""
    out = []
    for k in range(draws):
        rng = np.random.default_rng([seed, k])
        x, th = rng.standard_normal((n, d)), rng.standard_normal((big_n, d))
        phi = np.maximum(x @ th.T / np.sqrt(d), 0)
        a = np.linalg.pinv(phi.T @ phi + lam_dd * np.eye(big_n)) @ phi.T  # pinv: lam_dd = 0 is minimum norm
        s = np.linalg.norm(th, axis=1) / np.sqrt(d)
        cos = np.clip(th @ th.T / d / np.outer(s, s), -1, 1)
        kern = np.outer(s, s) / (2 * np.pi) * (np.sin(np.arccos(cos)) + (np.pi - np.arccos(cos)) * cos)
        m = a @ x
        excess = f1 ** 2 + f1 ** 2 / d * (np.sum((kern @ m) * m) - np.sum(m * th) / np.sqrt(d)) \
            + tau ** 2 * np.sum((kern @ a) * a)
        out.append(excess + tau ** 2)
    return np.mean(out), np.std(out, ddof=1) / np.sqrt(draws)


@pytest.mark.parametrize("big_n, lam_dd, gap", [(25, 0.0, 0.03), (200, 0.0, 0.07), (25, 50.0, 0.03), (100, 50.0, 0.03),
                                                (200, 200.0, 0.03)])
def test_theory_matches_a_monte_carlo_fit_in_ddescent_convention(big_n, lam_dd, gap):
    """d = 50, n = 100 (psi2 = 2), N = 25 .. 200: within the finite-size gap, which scripts/check_theory.py measures
    shrinking with d (docs/experiments/theory_random_features.md): at d = 50 about +1.5% with a ridge, +4.5% for
    ridgeless N = 4d; `gap` allows twice the ridge's and 1.5 times the ridgeless one. A lambda converted without its
    N/d (or n) factor misses by 5 to 40% at N = 100, 200."""
    d, n, f1, tau = 50, 100, 1.0, 0.5
    mean, se = _mc_full_risk(d, big_n, n, lam_dd, f1, tau, draws=10, seed=big_n)
    theory = float(rf.rf_risk_for(d, big_n, n, lam_dd, "relu", F1=f1, tau=tau))
    assert abs(mean - theory) <= gap * theory + 3 * se, (mean, se, theory)
    assert se < 0.02 * theory


def test_the_lambda_conversion():
    """lam_dd = n N lambda / d: the same risk whether given in ddescent's or the paper's convention."""
    d, big_n, n, lam_dd = 50, np.array([25, 100, 200]), 100, 50.0
    paper = d * lam_dd / (n * big_n)
    np.testing.assert_allclose(rf.paper_lambda(d, big_n, n, lam_dd), paper)
    np.testing.assert_allclose(rf.rf_risk_for(d, big_n, n, lam_dd, "relu", F1=1.0, tau=0.5),
                               rf.rf_risk(big_n / d, n / d, paper, *RELU, F1=1.0, tau=0.5), rtol=1e-12)
