"""What a dataset is (`Dataset`), what its loader returns (`Pool`) and what a training run sees (`Data`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from ddescent.component import Component
from ddescent.errors import ConfigError

if TYPE_CHECKING:  # the tensors' type only: readers of pools and theory (numpy) need no torch
    import torch


@dataclass(frozen=True, kw_only=True)
class Dataset(Component):
    """A dataset: a module of ddescent.data (or a plugin's) that sets `DATASET = Dataset("name", load=..., ...)`:
    how to load it and what planning may ask of it before loading. cfg is the dataset's config node.

    load(cfg) -> Pool              the training pool and the test set, as numpy arrays
    input_shape(cfg), pool_size(cfg), n_classes(cfg)
                                   answered at planning time from the config, or from headers and small files
                                   (a text corpus must be read once: its vocabulary decides the shape)
    check(cfg)                     what can be wrong before training (missing, truncated or damaged files, bad
                                   settings), as ConfigError; cheap, and cached by content where it reads
    files(cfg) -> [Path]           for data read from files: the files, whose content (not path) is part of every
                                   run's identity; None for data generated from the config alone
    augment(cfg) -> fn or None     the training-batch augmentation its config asks for: fn(x, generator) -> x,
                                   drawing only from `generator` (never from evaluation data)
    """

    load: Callable
    input_shape: Callable
    pool_size: Callable
    n_classes: Callable
    files: Callable | None = None
    augment: Callable | None = None


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
    # augment(x, generator) transforms a training batch (image datasets with `augment: true`); never evaluation
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None

    @property
    def regression(self) -> bool:
        return self.y_train.is_floating_point()

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def test_noise(self) -> float:
        """What a test MSE on this test set misses of the full risk: a regression dataset that knows its generator
        (truth) samples clean test targets, so the target noise sigma^2 of a fresh sample is added back. The
        convention for regression, every family alike: test_error is the full risk E (f(x) - y)^2, sigma^2
        included (Belkin, Hsu & Xu's quantity), test_loss half of it."""
        return float(self.truth["noise"]) ** 2 if self.regression and self.truth is not None else 0.0


def data_root(value, key: str = "data.root") -> Path:
    """A data folder setting (data.root, `--root`) as an absolute path; one that cannot be resolved (a symlink loop)
    is a one-line ConfigError naming the setting, and $DDESCENT_DATA when the value came from it."""
    try:
        return Path(str(value)).expanduser().resolve()
    except (RuntimeError, OSError) as exc:  # Python < 3.13 raises RuntimeError on a loop, later ones OSError
        origin = " (from $DDESCENT_DATA)" if str(value) == os.environ.get("DDESCENT_DATA") else ""
        raise ConfigError(f"{key}={value}{origin}: {exc}; point it at a folder") from exc
