"""Label noise, applied to training (and validation) labels only."""

from __future__ import annotations

import numpy as np


def apply_label_noise(y: np.ndarray, rate: float, n_classes: int, mode: str, rng: np.random.Generator) -> np.ndarray:
    """Resample exactly round(rate * n) labels (tokens, for sequence targets), chosen at random.

    mode "uniform": the new label is drawn from all classes, so about 1/n_classes of them keep their label
    (the MNIST-1D notebook's convention: 15% requested is about 13.5% effectively wrong).
    mode "wrong": the new label is always a different class, so the effective rate equals the requested one.
    """
    out = np.array(y, copy=True)
    flat = out.reshape(-1)  # sequence targets: noise per token; negative targets (padding) never change
    labels = np.flatnonzero(flat >= 0)
    n_flip = int(round(rate * len(labels)))
    if n_flip == 0:
        return out
    idx = rng.choice(labels, size=n_flip, replace=False)
    if mode == "uniform":
        flat[idx] = rng.integers(0, n_classes, size=n_flip)
    elif mode == "wrong":
        flat[idx] = (flat[idx] + rng.integers(1, n_classes, size=n_flip)) % n_classes
    else:
        raise ValueError(f"noise mode {mode!r}: expected uniform or wrong")
    return out
