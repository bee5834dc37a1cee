"""A linear student, y_hat = x_{<=p}^T v, on the first p = `width` input coordinates (p < d leaves the rest as
unexplained signal: Belkin, Hsu & Xu's weak-features model). Made for data=teacher_student, where every solver
is exact and takes milliseconds; it reads any dataset with real-valued targets.

Solvers (`model.solver`), all closed forms:
    lstsq  minimum-norm least squares, v = X^+ y (SVD, NumPy's pinv cut-off); one row at epoch 1.
    ridge  the minimiser of (1/2)||X v - y||^2 + (lambda/2)||v||^2, v = (X^T X + lambda I)^-1 X^T y, with
           lambda = reg_strength in ddescent's convention (the book's sum_n E_n + lambda Omega, Omega = 1/2 v^T v,
           the same lambda as random_features' ridge and the l2 regularizer); lambda = 0 is lstsq. One row.
    ridge_optimal  ridge at the optimal lambda* = p (sigma^2 + ||w_{>p}||^2) / ||w_{<=p}||^2 for isotropic features
           (Dobriban & Wager 2018; Nakkiran, Venkat, Kakade & Ma 2020; ddescent.theory.ridge.optimal_lambda), from
           the generator the dataset knows (an oracle: the noise and the teacher's norm, never the test set).
           reg_strength is not read (set to 0 in the run's config); the lambda used is recorded as ridge_lambda.
    gd     full-batch gradient descent from v = 0 on (1/2n)||X v - y||^2, evaluated at log-spaced steps 0 .. T
           (T = train.steps, else epochs: a full batch makes an epoch one step; train.eval_points points, 0 and
           T always included), each in closed form (ddescent.linalg.gd_path, settings from gd_kwargs), so 10^5 steps cost milliseconds.
           It is torch's SGD on the whole training set: step optim.lr (null: 1 / lambda_max of the iteration's
           Hessian, X^T X / n preconditioned), optim.momentum / nesterov / weight_decay as torch applies them;
           regularizer=l2 adds (lambda / 2n)||v||^2 (ddescent's per-sample convention). train.batch_size is not
           used. `model.block_lr` multiplies the step size per block of the data's F (data.blocks): a list with
           one multiplier per block, or "equalize", each block times (largest scale / its scale)^2, so that every
           block learns on the fastest block's time scale (Heckel & Yilmaz 2021's fix of epoch-wise double descent).

Recorded (one dict per evaluation): *_error is the mean squared error and *_loss half of it (the data term the
solvers minimise). train_* on the training set as trained (noisy targets); test_* is the EXACT risk on a fresh
sample, target noise included, ||w_{<=p} - F_{<=p} v||^2 + ||w_{>p}||^2 + sigma^2, wherever the dataset knows its
generator (data.truth), else the MSE on its test sample; val_* the MSE on the validation split (noisy, like
training, so it estimates the same risk as test_error).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ddescent.errors import ConfigError
from ddescent.checks import POSITIVE_INT, Rule, number, one_of
from ddescent.models.base import Family
from ddescent.linalg import gd_kwargs, gd_path, min_norm, ridge, risk
from ddescent.schedule import eval_steps

SOLVERS = ("gd", "lstsq", "ridge", "ridge_optimal")
CLOSED_FORM = SOLVERS  # every solver: the training loop is never used


def _block_lr_ok(v) -> bool:
    if v is None or v == "equalize":
        return True
    try:
        return len(v) > 0 and all(number(lambda m: m > 0)(m) for m in v)
    except TypeError:
        return False


ZERO = Rule(lambda v: v == 0, "0 (model=linear is solved in closed form)")
RULES = {
    "model.width": POSITIVE_INT,
    "model.solver": one_of(*SOLVERS),
    "model.block_lr": Rule(_block_lr_ok, "null, equalize, or a list of step multipliers > 0, one per data block"),
    "optim.name": Rule(lambda v: v == "sgd", "sgd (model=linear's gd is full-batch gradient descent)"),
    "optim.lr": Rule(lambda v: v is None or number(lambda x: x > 0)(v), "a finite number > 0, or null (1/lambda_max)"),
    "optim.schedule": one_of("constant"),
    "optim.warmup_steps": ZERO,
    "regularizer.name": one_of("none", "l2"),
    "regularizer.start_epoch": ZERO,
    "regularizer.ramp_epochs": ZERO,
}


def n_params(cfg, input_shape: tuple[int, ...], n_classes: int) -> int:
    d, p = math.prod(input_shape), int(cfg.width)
    if p > d:
        raise ConfigError(f"width={p}: model=linear reads the first p of the {d} input coordinates; choose width <= {d}")
    if n_classes != 1:
        raise ConfigError(f"model=linear: the data have {n_classes} classes; it needs real-valued targets "
                          "(data=teacher_student)")
    return p


class Linear(nn.Module):
    def __init__(self, p: int):
        super().__init__()
        self.p = p
        self.weight = nn.Parameter(torch.zeros(p))  # gd starts at zero; every solver overwrites it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.flatten(1)[:, :self.p] @ self.weight).unsqueeze(-1)


def build(cfg, input_shape, n_classes, generator):
    n_params(cfg, input_shape, n_classes)
    return Linear(int(cfg.width))


# ----------------------------------------------------------------------------- solvers


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def optimal_lambda(truth: dict | None, p: int) -> float:
    """lambda* of ridge on the first p isotropic features: p (sigma^2 + ||w_{>p}||^2) / ||w_{<=p}||^2 (the part of
    the teacher the student cannot see acts as noise)."""
    if truth is None:
        raise ConfigError("model.solver=ridge_optimal: the optimal lambda needs a dataset that knows its generator "
                          "(data=teacher_student)")
    w = np.asarray(truth["teacher"], float)
    seen = float((w[:p] ** 2).sum())
    return p * (float(truth["noise"]) ** 2 + float((w[p:] ** 2).sum())) / seen if seen > 0 else float("inf")


def neutral(config: dict) -> dict:
    """Settings a solver does not read, at their neutral value: lstsq and ridge_optimal do not read reg_strength, so
    it neither splits their runs nor shows in their records (a sweep over lambda trains each of them once)."""
    if config["model"].get("solver") in ("lstsq", "ridge_optimal"):
        return {"reg_strength": 0.0, "regularizer.strength": 0.0}
    return {}


def solve(model: Linear, data, cfg) -> list[dict]:
    """The solver's evaluation rows (see the module docstring). cfg: the run's whole config."""
    p, solver = model.p, cfg.model.solver
    x, y = _np(data.x_train.flatten(1))[:, :p], _np(data.y_train)
    truth = data.truth
    if solver == "gd":
        steps = eval_steps(cfg)
        settings = gd_kwargs(cfg, None if truth is None else truth["blocks"], len(y))
        vs, _ = gd_path(x, y, steps, **settings)
    else:
        steps = [1]
        lam = optimal_lambda(truth, p) if solver == "ridge_optimal" else float(cfg.regularizer.strength)
        v = min_norm(x, y) if solver == "lstsq" else ridge(x, y, lam)
        vs = v[None]
    with np.errstate(over="ignore", invalid="ignore"):
        train_mse = ((x @ vs.T - y[:, None]) ** 2).mean(0)
        if truth is not None:
            test_mse = risk(vs, truth["teacher"], truth["scales"], truth["noise"])
        else:
            xt, yt = _np(data.x_test.flatten(1))[:, :p], _np(data.y_test)
            test_mse = ((xt @ vs.T - yt[:, None]) ** 2).mean(0)
        val_mse = None
        if data.x_val is not None:
            xv, yv = _np(data.x_val.flatten(1))[:, :p], _np(data.y_val)
            val_mse = ((xv @ vs.T - yv[:, None]) ** 2).mean(0)
    rows = []
    for i, t in enumerate(steps):
        row = {"epoch": int(t), "step": int(t), "train_error": float(train_mse[i]), "train_loss": float(train_mse[i]) / 2,
               "test_error": float(test_mse[i]), "test_loss": float(test_mse[i]) / 2}
        if solver == "ridge_optimal":
            row["ridge_lambda"] = lam
        if val_mse is not None:
            row["val_error"], row["val_loss"] = float(val_mse[i]), float(val_mse[i]) / 2
        rows.append(row)
    with torch.no_grad():
        model.weight.copy_(torch.as_tensor(vs[-1], dtype=model.weight.dtype))
    return rows


FAMILY = Family("linear", build=build, n_params=n_params, rules=RULES, solve=solve, closed_form=CLOSED_FORM,
                squared_loss=True, neutral=neutral)
