"""One risk convention for regression, every family alike: test_error is the full risk E (f(x) - y)^2 on a fresh
sample, target noise sigma^2 included (Belkin, Hsu & Xu's quantity), test_loss half of it; train_error the train MSE."""

import json

import numpy as np
import torch
from omegaconf import OmegaConf

import ddescent
from conftest import cli
from ddescent.data import load
from ddescent.metrics import evaluate
from ddescent.models import Single, build
from ddescent.seeds import INIT_STREAM, generator

TS = ["data=teacher_student", "label_noise=0", "n_train=100", "data.noise=0.5", "data.kappa=1", "progress=off"]


def test_the_linear_familys_exact_risk_is_what_a_fresh_sample_measures(tmp_path, data_cache):
    """The same predictor through two paths: the linear family's exact risk, and the generic evaluation (the MLP's
    and every network's) on a large clean test sample plus sigma^2."""
    df = ddescent.run(["model=linear", "model.solver=lstsq", "width=20", "data.test_size=40000", *TS],
                      results=tmp_path / "r")
    config = json.loads(df["config"].iloc[0])
    data = load(OmegaConf.create(config["data"]))
    x, y = data.x_train.double().numpy()[:, :20], data.y_train.double().numpy()
    v = np.linalg.pinv(x) @ y  # the minimum-norm solution, independently
    net = torch.nn.Linear(20, 1, bias=False)
    with torch.no_grad():
        net.weight.copy_(torch.as_tensor(v[None], dtype=torch.float32))
    first20 = Single(torch.nn.Sequential(torch.nn.Flatten(), _First(20), net))
    mse, half = evaluate(first20, data.x_test, data.y_test, 1)
    measured = float(mse) + data.test_noise
    squared = ((data.x_test[:, :20].double().numpy() @ v - data.y_test.double().numpy()) ** 2)
    se = squared.std() / np.sqrt(len(squared))
    exact = float(df["test_error"].iloc[0])
    assert data.test_noise == 0.25 and abs(measured - exact) <= 4 * se, (measured, exact, se)
    assert np.isclose(float(df["test_loss"].iloc[0]), exact / 2) and np.isclose(float(half) * 2, float(mse))


class _First(torch.nn.Module):
    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        return x[:, :self.p]


def test_an_mlp_on_regression_data_records_the_full_risk(tmp_path, data_cache):
    df = ddescent.run(["model=mlp", "width=8", "epochs=1", "train.eval_points=1", *TS], results=tmp_path / "r")
    start = df[df["epoch"] == 0].iloc[0]
    config = json.loads(start["config"])
    data = load(OmegaConf.create(config["data"]))
    model = Single(build(OmegaConf.create(config["model"]), data.input_shape, 1, generator(0, INIT_STREAM)))
    mse, _ = evaluate(model, data.x_test, data.y_test, 1)
    assert np.isclose(start["test_error"], float(mse) + 0.25, rtol=1e-6)
    assert np.isclose(start["test_loss"], (float(mse) + 0.25) / 2, rtol=1e-6)
    assert start["task"] == "regression"


def test_random_features_fit_real_valued_targets_and_score_the_same_way(tmp_path, data_cache):
    r = cli("run", "model=random_features", "width=50", *TS, "--results", str(tmp_path / "r"))
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    df = ddescent.load(tmp_path / "r")
    row = df.iloc[0]
    config = json.loads(row["config"])
    data = load(OmegaConf.create(config["data"]))
    from ddescent.models import random_features as rf

    model = rf.build(OmegaConf.create(config["model"]), data.input_shape, 1, generator(0, INIT_STREAM))
    rf.fit(model, data, "lstsq", 0.0)
    mse, half = evaluate(Single(model), data.x_test, data.y_test, 1)  # the generic path, as for an MLP
    assert np.isclose(row["test_error"], float(mse) + 0.25, rtol=1e-5) and np.isclose(row["test_loss"],
                                                                                        row["test_error"] / 2)
    assert row["n_params"] == 50 and np.isclose(row["train_loss"], row["train_error"] / 2)
    # the interpolation threshold of a least-squares fit is where its train MSE is zero: p = n
    assert cli("sweep", "model=random_features", "width=50,100,200", *TS, "name=rfts", "--results",
               str(tmp_path / "s"), "--no-plot").returncode == 0
    out = cli("ls", str(tmp_path / "s" / "rfts")).stdout
    assert "interpolation threshold width = 100 (train MSE ≤ 1e-08)" in out and "test_risk" in out


def test_the_readmes_command_is_one_line_with_a_preset_of_noisy_labels(tmp_path, data_cache):
    r = cli("run", "model=random_features", "data=teacher_student", "width=50", "n_train=100",
            "--results", str(tmp_path / "r"))
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("ddescent: error: label_noise=0.15")
