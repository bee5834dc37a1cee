"""The theory presets as a user runs them, on data seeds the README does not quote: random features against Mei &
Montanari's risk (rf_theory), ridge at its optimal lambda against Nakkiran et al.'s monotonicity (optimal_ridge)."""


import numpy as np
import pytest
from omegaconf import OmegaConf

import ddescent
from conftest import cli
from ddescent import analysis
from ddescent.data import load
from ddescent.models import random_features as rf
from ddescent.seeds import INIT_STREAM, generator


def test_rf_theory_follows_mei_and_montanari_away_from_the_peak_and_ridge_shrinks_it(tmp_path, data_cache):
    df = analysis.final(ddescent.sweep(["experiment=rf_theory", "data_seed=range(5,10)"], results=tmp_path / "r"))
    for lam, curve in df.groupby("reg_strength"):
        expected = analysis.theory_modelwise(curve)
        assert "Mei & Montanari" in expected.attrs["label"]
        agreement = analysis.theory_agreement(curve, expected, "width")  # (|N/n - 1| >= 0.1: finite_variance)
        assert agreement["within_2se"] >= 0.9 * agreement["points"], (lam, agreement)
    peak = {lam: c.groupby("width")["test_error"].median().max() for lam, c in df.groupby("reg_strength")}
    assert peak[5.0] < 0.1 * peak[0.0]  # ridge shrinks the peak at N = n
    assert analysis.verdict(df[df.reg_strength == 0], "width").kind == "double descent"


def test_the_random_features_ridge_solves_the_normal_equations(tmp_path, data_cache):
    cfg = OmegaConf.create({"name": "random_features", "width": 30, "features": "tanh", "solver": "ridge"})
    data_cfg = OmegaConf.create({"name": "teacher_student", "dim": 10, "scale": 1.0, "slow": 0, "kappa": 1.0,
                                 "blocks": None, "noise": 0.3, "pool_size": 50, "test_size": 20, "teacher_seed": None,
                                 "teacher": None, "alpha": None, "n_train": 50, "label_noise": 0.0, "data_seed": 3,
                                 "val_fraction": 0.0})
    data = load(data_cfg)
    model = rf.build(cfg, data.input_shape, 1, generator(0, INIT_STREAM))
    rf.fit(model, data, "ridge", 2.5)
    phi = model.features(data.x_train).double().numpy()
    a = np.linalg.solve(phi.T @ phi + 2.5 * np.eye(30), phi.T @ data.y_train.double().numpy())
    np.testing.assert_allclose(model.readout.weight.detach().double().numpy()[0], a, rtol=1e-4, atol=1e-6)


def test_optimal_ridge_is_monotone_in_n_where_min_norm_peaks_at_n_equal_p(tmp_path, data_cache):
    df = analysis.final(ddescent.sweep(["experiment=optimal_ridge", "width=100", "reg_strength=0,10",
                                        "data_seed=range(6,12)"], results=tmp_path / "r"))
    settings = dict(analysis.ridge_settings(df))
    best = settings["λ* (optimal)"]
    assert analysis.monotone(best, "n_train")["rises"] == 0  # every rise under 2 standard errors
    assert best["ridge_lambda"].notna().all() and (best["reg_strength"] == 0).all()
    plain = settings["λ=0 (min-norm)"]
    v = analysis.verdict(plain, "n_train")
    assert v.kind == "double descent" and v.mean["peak_step"] == 100
    for name, part in settings.items():
        expected = analysis.theory_samplewise(part)
        agreement = analysis.theory_agreement(part, expected, "n_train")
        assert agreement["within_2se"] >= 0.8 * agreement["points"], (name, agreement)


@pytest.mark.parametrize("override,key", [("model.features=sigmoid", "model.features"), ("reg_strength=-1",
                                                                                         "reg_strength"),
                                          ("model.solver=ridge_best", "model.solver")])
def test_bad_input_for_the_theory_presets_is_one_line(tmp_path, override, key, data_cache):
    r = cli("sweep", "experiment=rf_theory", override, "--dry-run", "--results", str(tmp_path / "r"))
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"ddescent: error: {key}="), r.stderr
