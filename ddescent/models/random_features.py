"""Random features (Belkin et al. 2019; Mei & Montanari 2019): a fixed random first layer of p = `width` features and
a trained linear readout, on one-hot targets (classification) or real-valued ones (regression). The clearest double
descent there is: the test risk peaks where p = n_train.

Features of an input x in R^d, with W = Theta / sqrt(d), Theta ~ N(0, I) of shape [d, p] drawn from the run's
generator, so that the j-th feature reads <theta_j, x> / sqrt(d) (Mei & Montanari draw theta_j on the sphere of
radius sqrt(d); Gaussian theta_j have the same norm up to O(1/sqrt d) and the same limit: see
ddescent.theory.random_features):
    relu:    phi(x) = max(0, x W)
    tanh:    phi(x) = tanh(x W)
    fourier: phi(x) = sqrt(2) cos(x W + b), b ~ U[0, 2 pi)   (random Fourier features of a Gaussian kernel)
W and b are buffers: they move with the model and are saved with it, but are not trained.

The readout is Linear(p, outputs) without bias (outputs: the classes, or 1 for regression), so n_params =
p * outputs, all of it trainable. Recorded: for regression, *_error is the mean squared error (test: the full risk,
sigma^2 included, as for every family: ddescent.data.base.Data.test_noise); for classification the 0-1 error. *_loss
is always half the mean squared error of the outputs against the targets (one-hot for classes): the data term that
lstsq and ridge minimise.

Solvers (`model.solver`): `lstsq` and `ridge` are closed forms computed by `fit` below; `gd` trains the readout,
started at zero, through the ordinary training loop (from zero, gradient descent on squared loss tends to the
minimum-norm solution; on cross-entropy it tends to the max-margin direction instead).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ddescent.checks import POSITIVE_INT, ConfigError, one_of
from ddescent.models.base import Family

FEATURES = ("relu", "tanh", "fourier")
SOLVERS = ("lstsq", "ridge", "gd")
CLOSED_FORM = ("lstsq", "ridge")
RULES = {"model.width": POSITIVE_INT, "model.features": one_of(*FEATURES), "model.solver": one_of(*SOLVERS)}


def n_params(cfg, input_shape: tuple[int, ...], n_classes: int) -> int:
    return int(cfg.width) * n_classes


def check(cfg) -> None:
    if float(cfg.width) != int(cfg.width):
        raise ConfigError(f"model.width={cfg.width}: the number of random features must be a whole number")
    if cfg.features not in FEATURES:
        raise ConfigError(f"model.features={cfg.features!r}: expected one of {', '.join(FEATURES)}")
    if cfg.solver not in SOLVERS:
        raise ConfigError(f"model.solver={cfg.solver!r}: expected one of {', '.join(SOLVERS)}")


class RandomFeatures(nn.Module):
    def __init__(self, d: int, p: int, n_classes: int, kind: str, generator: torch.Generator):
        super().__init__()
        self.kind = kind
        self.register_buffer("weight", torch.randn(d, p, generator=generator) / math.sqrt(d))
        phase = torch.rand(p, generator=generator) * 2 * math.pi if kind == "fourier" else torch.zeros(p)
        self.register_buffer("phase", phase)
        self.readout = nn.Linear(p, n_classes, bias=False)
        nn.init.zeros_(self.readout.weight)  # gd starts at zero; the closed forms overwrite it

    def features(self, x: torch.Tensor) -> torch.Tensor:
        z = x.flatten(1) @ self.weight
        if self.kind == "relu":
            return torch.relu(z)
        if self.kind == "tanh":
            return torch.tanh(z)
        return math.sqrt(2) * torch.cos(z + self.phase)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(self.features(x))


def build(cfg, input_shape, n_classes, generator):
    check(cfg)
    return RandomFeatures(math.prod(input_shape), int(cfg.width), n_classes, cfg.features, generator)


@torch.no_grad()
def fit(model: RandomFeatures, data, solver: str, reg_strength: float) -> None:
    """Set the readout to the closed-form solution on the training set (noisy labels, one-hot targets Y):

        lstsq: the minimum-norm minimiser of 1/2 ||Phi W - Y||^2          W = Phi^+ Y
        ridge: the minimiser of 1/2 ||Phi W - Y||^2 + lambda/2 ||W||^2     W = (Phi^T Phi + lambda I)^-1 Phi^T Y

    lambda (`reg_strength`) has the meaning it has everywhere in ddescent: the book's sum_n E_n + lambda Omega
    with Omega = 1/2 ||W||^2, as the l2 regularizer uses it. lambda = 0 gives lstsq, the ridge solution's limit.
    Both come from the SVD of Phi in float64 (for lstsq on a CPU, LAPACK's SVD-based gelsd): near p = n the
    smallest singular values are tiny, and they are the double-descent peak itself, so they must be resolved
    rather than lost to float32 rounding.
    """
    if solver not in CLOSED_FORM:
        raise ValueError(f"fit: solver {solver!r} is not a closed form ({', '.join(CLOSED_FORM)})")
    device = model.readout.weight.device
    # float64 linear algebra where the device has it (MPS does not): the same solution on every machine.
    solve_on = device if device.type in ("cpu", "cuda") else torch.device("cpu")
    phi = model.features(data.x_train).to(solve_on, torch.float64)
    targets = _targets(data.y_train, data.n_classes).to(solve_on, torch.float64)
    if solver == "lstsq" and solve_on.type == "cpu":
        # LAPACK's gelsd: the same minimum-norm solution and default cut-off, ~1.5x faster than the SVD below
        # (it never forms the singular vectors). CUDA's lstsq has no minimum-norm driver.
        readout = torch.linalg.lstsq(phi, targets, driver="gelsd").solution
        model.readout.weight.copy_(readout.T.to(device, model.readout.weight.dtype))
        return
    if phi.shape[1] > phi.shape[0]:  # LAPACK factors a tall matrix ~3x faster than its wide transpose
        V, s, Uh = torch.linalg.svd(phi.T, full_matrices=False)
        U, Vh = Uh.T, V.T
    else:
        U, s, Vh = torch.linalg.svd(phi, full_matrices=False)
    if solver == "ridge" and reg_strength > 0:
        gain = s / (s * s + reg_strength)
    else:  # the pseudo-inverse, with NumPy's and LAPACK's default cut-off for numerically zero singular values
        cutoff = s.max() * max(phi.shape) * torch.finfo(phi.dtype).eps if s.numel() else 0.0
        gain = torch.where(s > cutoff, 1.0 / s, torch.zeros_like(s))
    readout = Vh.T @ (gain[:, None] * (U.T @ targets))  # [p, classes]
    model.readout.weight.copy_(readout.T.to(device, model.readout.weight.dtype))


def solve(model: RandomFeatures, data, cfg) -> list[dict]:
    """The closed-form solvers' one evaluation point (epoch 1): fit, then score every split. The loss recorded is
    the squared error these solvers minimise."""
    fit(model, data, cfg.model.solver, float(cfg.regularizer.strength))
    row = {"epoch": 1, "step": 1}
    splits = [("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test)]
    if data.x_val is not None:
        splits.append(("val", data.x_val, data.y_val))
    for name, x, y in splits:
        error, loss = scores(model, x, y, data.n_classes)
        noise = data.test_noise if name == "test" else 0.0  # the full risk for regression
        row[f"{name}_error"], row[f"{name}_loss"] = error + noise, loss + noise / 2
    return [row]


def _targets(y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """What the readout fits: one-hot classes, or the real-valued targets as a column."""
    return y.reshape(-1, 1) if y.is_floating_point() else F.one_hot(y, n_classes)


@torch.no_grad()
def scores(model: RandomFeatures, x: torch.Tensor, y: torch.Tensor, n_classes: int,
           chunk: int = 8192) -> tuple[float, float]:
    """(error, loss) on (x, y), computing the features once. loss is half the mean over samples of ||f(x) - t||^2
    (t: the one-hot class or the real target): the data term lstsq and ridge minimise, and what explodes at p = n
    (cross-entropy of the same outputs does too, less legibly). error: the 0-1 error for classes, the mean squared
    error (twice the loss) for regression."""
    wrong, total = 0, 0.0
    for i in range(0, len(x), chunk):
        out, yb = model(x[i:i + chunk]), y[i:i + chunk]
        if not yb.is_floating_point():
            wrong += int((out.argmax(1) != yb).sum())
        total += ((out.double() - _targets(yb, n_classes)) ** 2).sum().item()
    n = max(len(x), 1)
    return (total / n if y.is_floating_point() else wrong / n), total / (2 * n)


FAMILY = Family("random_features", build=build, n_params=n_params, check=check, rules=RULES, solve=solve,
                closed_form=CLOSED_FORM, squared_loss=True)
