"""Datasets as tensors on the training device: a pool to draw training samples from, and a clean test set.

Each dataset module provides `N_CLASSES`, `input_shape(cfg)`, `pool_size(cfg)`, `check(cfg)` and
`load(cfg) -> Pool` (numpy arrays); all but `load` answer without reading or generating any data.
Subsampling, label noise and the validation split are the same for every dataset and live here.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import numpy as np
import torch

from ddescent import ConfigError
from ddescent.data import mnist1d, parallel_text, seq_synthetic
from ddescent.data import cifar10, mnist
from ddescent.data.noise import apply_label_noise

DATASETS: dict[str, ModuleType] = {"mnist1d": mnist1d, "seq_synthetic": seq_synthetic, "parallel_text": parallel_text,
                                   "mnist": mnist, "fashion_mnist": mnist, "cifar10": cifar10}


@dataclass(frozen=True)
class Pool:
    """A dataset as its loader returns it: the training pool and the test set."""

    x: np.ndarray
    y: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int  # classes of a classification task; 1 (the output dimension) for regression
    truth: dict | None = None  # what generated the data, where a dataset knows it (regression: the teacher)

    @property
    def regression(self) -> bool:
        return np.issubdtype(self.y.dtype, np.floating)


@dataclass
class Data:
    """What a training run sees. Training labels carry the noise; test labels are always clean."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int
    label_noise_effective: float
    x_val: torch.Tensor | None = None
    y_val: torch.Tensor | None = None
    truth: dict | None = None  # Pool.truth, for exact (not sampled) test risks

    @property
    def regression(self) -> bool:
        return self.y_train.is_floating_point()

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def module(cfg) -> ModuleType:
    if cfg.name not in DATASETS:
        raise ConfigError(f"data={cfg.name}: unknown dataset; choose one of: {', '.join(DATASETS)}")
    return DATASETS[cfg.name]


def n_classes(cfg) -> int:
    """Classes of the task (1 for regression): exact where the module can tell without loading."""
    mod = module(cfg)
    return mod.n_classes(cfg) if hasattr(mod, "n_classes") else mod.N_CLASSES


def check(cfg) -> None:
    """Bad input that depends on the dataset: missing files, n_train larger than the pool."""
    mod = module(cfg)
    mod.check(cfg)
    pool = mod.pool_size(cfg)
    n_val = int(round(cfg.get("val_fraction", 0.0) * pool))
    n_train = cfg.n_train if cfg.n_train is not None else pool - n_val
    if n_train + n_val > pool:
        raise ConfigError(f"n_train={n_train}: the {cfg.name} training pool has {pool} samples"
                          + (f" ({n_val} kept for validation)" if n_val else "") + f"; choose n_train <= {pool - n_val}")


def load(cfg, device: torch.device | str = "cpu") -> Data:
    """Draw the training set (and validation split) from the pool with `data_seed`, add label noise to the
    training labels only, and move everything to `device`."""
    pool = module(cfg).load(cfg)
    n_pool = len(pool.y)
    rng = np.random.default_rng(cfg.data_seed)
    order = rng.permutation(n_pool)
    n_val = int(round(cfg.get("val_fraction", 0.0) * n_pool))
    n_train = cfg.n_train if cfg.n_train is not None else n_pool - n_val
    train_idx, val_idx = order[:n_train], order[n_train:n_train + n_val]
    # The noise stream is separate from the subsampling stream, so n_train does not shift which labels flip.
    noise_rng = np.random.default_rng([cfg.data_seed, 1])
    y_clean = pool.y[train_idx]
    if pool.regression:  # real-valued targets carry the dataset's own noise; label noise is for classes
        y_noisy, y_val, target = y_clean, pool.y[val_idx], torch.float32
    else:
        y_noisy = apply_label_noise(y_clean, cfg.label_noise, pool.n_classes, cfg.noise_mode, noise_rng)
        y_val = apply_label_noise(pool.y[val_idx], cfg.label_noise, pool.n_classes, cfg.noise_mode, noise_rng)
        target = torch.long

    def tensor(a, dtype=None):
        a = np.ascontiguousarray(a)
        if dtype is None:  # features: float32, or token ids (integers) kept as long
            dtype = torch.long if np.issubdtype(a.dtype, np.integer) else torch.float32
        return torch.as_tensor(a, dtype=dtype, device=device)

    return Data(
        x_train=tensor(pool.x[train_idx]),
        y_train=tensor(y_noisy, target),
        x_test=tensor(pool.x_test),
        y_test=tensor(pool.y_test, target),
        n_classes=pool.n_classes,
        label_noise_effective=(float(np.mean((y_noisy != y_clean)[y_clean >= 0])) if n_train and not pool.regression
                               else 0.0),
        x_val=tensor(pool.x[val_idx]) if n_val else None,
        y_val=tensor(y_val, target) if n_val else None,
        truth=pool.truth,
    )
