"""MNIST-1D (Greydanus 2020), generated locally by the `mnist1d` package; nothing is downloaded."""

from __future__ import annotations

import functools
import json
import random

import numpy as np

from ddescent.checks import POSITIVE_INT, Rule, number
from ddescent.data.base import Dataset, Pool
from ddescent.data.cache import cached_arrays

RULES = {
    "data.num_samples": POSITIVE_INT,
    "data.train_split": Rule(number(lambda v: 0 < v < 1), "a number in (0, 1)"),
    "data.final_seq_length": POSITIVE_INT,
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


# Generated from its config alone: no files, nothing to check before generating.
DATASET = Dataset("mnist1d", load, input_shape, pool_size, lambda cfg: N_CLASSES, rules=RULES)
