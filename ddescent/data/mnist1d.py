"""MNIST-1D (Greydanus 2020), generated locally by the `mnist1d` package; nothing is downloaded."""

from __future__ import annotations

import functools
import json
import random

import numpy as np
import torch

from ddescent.checks import POSITIVE_INT, Rule, number
from ddescent.data.base import Dataset, Pool
from ddescent.data.cache import cached_arrays

RULES = {
    "data.num_samples": POSITIVE_INT,
    "data.train_split": Rule(number(lambda v: 0 < v < 1), "a number in (0, 1)"),
    "data.final_seq_length": POSITIVE_INT,
    "data.shift": Rule(lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0),
                       "null or a whole number of samples >= 0 (the largest random circular shift)"),
}

GENERATOR_KEYS = ("num_samples", "train_split", "template_len", "padding", "scale_coeff", "max_translation",
                  "corr_noise_scale", "iid_noise_scale", "shear_scale", "shuffle_seq", "final_seq_length")


def generator_args(cfg) -> dict:
    args = {k: cfg[k] for k in GENERATOR_KEYS}
    args["padding"] = list(args["padding"])
    args["seed"] = cfg.generator_seed
    return args


N_CLASSES = 10


def input_shape(cfg) -> tuple[int, ...]:
    return (int(cfg.final_seq_length),)


def pool_size(cfg) -> int:
    return int(cfg.num_samples // 10 * 10 * cfg.train_split)


def load(cfg):
    args = generator_args(cfg)
    arrays = _generate(json.dumps(args, sort_keys=True), cfg.get("cache_dir"))
    return Pool(arrays["x"], arrays["y"], arrays["x_test"], arrays["y_test"], n_classes=N_CLASSES)


@functools.lru_cache(maxsize=4)
def _generate(args_json: str, cache: str | None) -> dict[str, np.ndarray]:
    args = json.loads(args_json)
    return cached_arrays("mnist1d", args, cache, lambda: _make(args))


def _make(args: dict) -> dict[str, np.ndarray]:
    from mnist1d.data import get_dataset_args, make_dataset

    dataset_args = get_dataset_args()
    for key, value in args.items():
        setattr(dataset_args, key, value)
    # make_dataset seeds NumPy's and Python's global generators: keep the caller's state intact.
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        d = make_dataset(dataset_args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return {"x": d["x"].astype(np.float32), "y": d["y"].astype(np.int64),
            "x_test": d["x_test"].astype(np.float32), "y_test": d["y_test"].astype(np.int64)}


def shift(x: torch.Tensor, generator: torch.Generator, most: int) -> torch.Tensor:
    """Each training signal of a batch x [..., L] rolled circularly by its own offset, uniform in [-most, most]:
    the augmentation that delays memorisation of noisy labels (Nakkiran et al.'s augmented runs; our notes in
    docs/experiments/fig9_10_cnn1d.md). One gather; the offsets come from `generator` alone."""
    shape = x.shape
    x = x.reshape(-1, shape[-1])
    n, length = x.shape
    offsets = torch.randint(-most, most + 1, (n, 1), generator=generator, device=generator.device).to(x.device)
    index = (torch.arange(length, device=x.device) - offsets) % length  # out[t] = x[t - offset]
    return x.gather(1, index).reshape(shape)


def augmentation(cfg):
    """`data.shift: s` (s > 0) rolls every training signal by a random offset in [-s, s]."""
    return functools.partial(shift, most=int(cfg.shift)) if cfg.get("shift") else None


# Generated from its config alone: no files, nothing to check before generating.
DATASET = Dataset("mnist1d", load=load, input_shape=input_shape, pool_size=pool_size,
                  n_classes=lambda cfg: N_CLASSES, rules=RULES, augment=augmentation)
