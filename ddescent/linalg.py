"""Closed forms of linear least squares in numpy, shared by the linear family (which fits with them) and the theory
(which takes expectations of them): minimum-norm least squares, ridge, gradient descent along its whole path, and
the exact risk of a linear student on the linear teacher-student; and gd_path's settings from a run's config
(`gd_kwargs`). Numpy only: the theory drawn by `ddescent plot` imports no torch."""

from __future__ import annotations

import numpy as np

from ddescent.errors import ConfigError


def min_norm(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """v = X^+ y: the minimum-norm least-squares solution, with NumPy's pinv cut-off (singular values below
    1e-15 s_max are taken as zero)."""
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    keep = s > 1e-15 * s.max() if s.size else s > 0
    return vt[keep].T @ ((u[:, keep].T @ y) / s[keep])


def ridge(x: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    """argmin (1/2)||X v - y||^2 + (lam/2)||v||^2 through the SVD (stable at lam -> 0, where it is min_norm)."""
    if lam <= 0:
        return min_norm(x, y)
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    return vt.T @ (s / (s * s + lam) * (u.T @ y))


def gd_path(x, y, steps, lr=None, momentum=0.0, nesterov=False, decay=0.0, precond=None):
    """The iterates of full-batch gradient descent from v = 0 on

        J(v) = (1/2n) ||X v - y||^2 + (decay/2) ||v||^2

    at each step count in `steps`, in closed form: returns (V [len(steps), p], lr). The update is torch's SGD
    with per-coordinate learning rates lr * precond (dampening 0):

        g = grad J(v);  buf = momentum * buf + g;  v -= lr * precond * (buf, or g + momentum * buf if nesterov)

    lr=None takes 1 / lambda_max of the iteration's own Hessian P^1/2 (X^T X/n + decay I) P^1/2.

    In u = P^-1/2 v this is momentum GD on H = P^1/2 (X^T X/n + decay I) P^1/2; in H's eigenbasis every mode
    (eigenvalue a, target component c) is an affine recurrence on (u, buf) started at (0, 0), so its value after
    t steps is c times an entry of the t-th power of a 3x3 matrix, taken by repeated squaring: one
    eigendecomposition and O(p log t) arithmetic per evaluated step. Modes in the numerical null space of H
    (a <= a_max * p * eps) have no target component and stay at 0, as GD's iterate does in exact arithmetic.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    n, p = x.shape
    m = np.ones(p) if precond is None else np.asarray(precond, dtype=np.float64)
    r = np.sqrt(m)
    a_x = x * r
    h = a_x.T @ a_x / n + decay * np.diag(m)
    a, q = np.linalg.eigh(h)
    a_max = max(float(a.max()), 0.0) if p else 0.0
    if lr is None:
        lr = 1.0 / a_max if a_max > 0 else 1.0
    c = q.T @ (r * (x.T @ y)) / n
    c[a <= a_max * max(p, 1) * np.finfo(float).eps] = 0.0
    beta = float(momentum)
    mat = np.zeros((p, 3, 3))
    if nesterov:
        mat[:, 0, 0], mat[:, 0, 1], mat[:, 0, 2] = 1 - lr * (1 + beta) * a, -lr * beta ** 2, lr * (1 + beta)
    else:
        mat[:, 0, 0], mat[:, 0, 1], mat[:, 0, 2] = 1 - lr * a, -lr * beta, lr
    mat[:, 1, 0], mat[:, 1, 1], mat[:, 1, 2] = a, beta, -1.0
    mat[:, 2, 2] = 1.0
    out = np.empty((len(steps), p))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # past 2/a_max GD diverges: inf/nan
        for i, t in enumerate(steps):
            if beta == 0:
                gain = _plain_gain(a, lr, int(t))
            else:
                gain = np.linalg.matrix_power(mat, int(t))[:, 0, 2] if t > 0 else np.zeros(p)
            out[i] = (q @ (gain * c)) * r
    return out, float(lr)


def _plain_gain(a: np.ndarray, lr: float, t: int) -> np.ndarray:
    """sum_{s<t} lr (1 - lr a)^s = (1 - (1 - lr a)^t) / a (lr t at a = 0): plain GD's mode gain, computed without
    cancellation where lr a is small."""
    la = lr * a
    out = np.full(a.shape, lr * t, dtype=float)
    small = (la > 0) & (la < 1)
    out[small] = -np.expm1(t * np.log1p(-la[small])) / a[small]
    other = (a != 0) & ~small
    out[other] = (1 - np.power(1 - la[other], t)) / a[other]
    return out


def gd_steps(x, y, steps, lr, momentum=0.0, nesterov=False, decay=0.0, precond=None) -> np.ndarray:
    """Reference: the same gradient descent as gd_path, one step at a time (O(T n p)). Returns V [len(steps), p]."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    n, p = x.shape
    m = np.ones(p) if precond is None else np.asarray(precond, dtype=np.float64)
    v, buf = np.zeros(p), np.zeros(p)
    want = {int(t) for t in steps}
    out = {0: v.copy()}
    for t in range(1, max(want, default=0) + 1):
        g = x.T @ (x @ v - y) / n + decay * v
        buf = momentum * buf + g
        v = v - lr * m * (g + momentum * buf if nesterov else buf)
        if t in want:
            out[t] = v.copy()
    return np.stack([out[int(t)] for t in steps])


def gd_kwargs(cfg, blocks, n_train: int) -> dict:
    """gd_path's keyword arguments for a run of model=linear (solver gd): step size (optim.lr, null for
    1/lambda_max), momentum, nesterov, decay (optim.weight_decay, plus lambda / n_train with regularizer=l2, the
    tool's per-sample convention) and the per-coordinate step multipliers of model.block_lr over the first p
    coordinates of the data's [size, scale] blocks (None: these data have no blocks)."""
    optim, model, reg = cfg["optim"], cfg["model"], cfg["regularizer"]
    p = int(model["width"])
    decay = float(optim.get("weight_decay") or 0.0)
    if reg["name"] == "l2":
        decay += float(reg["strength"]) / n_train
    block_lr = model.get("block_lr")
    precond = None
    if block_lr is not None:
        if blocks is None:
            raise ConfigError("model.block_lr: these data have no blocks (no data.truth); set model.block_lr=null")
        sizes = [int(size) for size, _ in blocks]
        f = np.repeat([float(scale) for _, scale in blocks], sizes)[:p]
        if block_lr == "equalize":
            precond = (f.max() / f) ** 2
        elif len(block_lr) != len(sizes):
            raise ConfigError(f"model.block_lr={list(block_lr)}: the data have {len(sizes)} blocks "
                              f"(sizes {sizes}); give one multiplier per block")
        else:
            precond = np.repeat(np.asarray(list(block_lr), dtype=np.float64), sizes)[:p]
    lr = optim.get("lr")
    return {"lr": None if lr is None else float(lr), "momentum": float(optim.get("momentum") or 0.0),
            "nesterov": bool(optim.get("nesterov") or False), "decay": decay, "precond": precond}


def risk(v, w, scales, sigma):
    """Exact expected squared error on a fresh sample (sigma^2 included) of students v [..., p] reading the
    first p coordinates of x = F z, for the teacher w (length d >= p) and F = diag(scales)."""
    v = np.asarray(v, dtype=np.float64)
    w, f = np.asarray(w, dtype=np.float64), np.asarray(scales, dtype=np.float64)
    p = v.shape[-1]
    return ((w[:p] - f[:p] * v) ** 2).sum(-1) + (w[p:] ** 2).sum() + float(sigma) ** 2
