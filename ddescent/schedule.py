"""When a run evaluates: the log-spaced evaluation epochs the training loop records at, and the steps of a linear
gradient-descent run. Plain numpy, so that the theory (which must evaluate where the runs did) reads them without
importing torch."""

from __future__ import annotations

import numpy as np


def eval_epochs(epochs: int, n_points: int) -> list[int]:
    """Log-spaced evaluation epochs, plus epoch 0 (initialisation) and the last epoch."""
    grid = np.round(np.geomspace(1, epochs, max(n_points, 1))).astype(int)
    return sorted({0, epochs, *grid.tolist()})


def eval_steps(cfg) -> list[int]:
    """The steps a gd run of model=linear evaluates at: log-spaced 0 .. T (T = train.steps, else epochs), as the
    training loop spaces its evaluation epochs."""
    train = cfg["train"]
    return eval_epochs(int(train.get("steps") or train["epochs"]), int(train["eval_points"]))
