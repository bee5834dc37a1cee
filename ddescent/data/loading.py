"""What is the same for every dataset: subsampling n_train from the pool, label noise on training labels only,
the validation split, the content fingerprint of file datasets (part of each run's identity) and the check of
their content. Datasets as tensors on the training device: a pool to draw training samples from, and a clean
test set."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from ddescent import component
from ddescent.data.base import Data, Dataset
from ddescent.data.cache import cache_dir
from ddescent.data.noise import apply_label_noise
from ddescent.errors import ConfigError
from ddescent.files import stamp as file_stamp, write_text_atomic


def datasets() -> dict[str, Dataset]:
    return component.registry("data")


def dataset(cfg_or_name) -> Dataset:
    return component.get("data", cfg_or_name if isinstance(cfg_or_name, str) else cfg_or_name.name)


def n_classes(cfg) -> int:
    """Classes of the task (1 for regression)."""
    return dataset(cfg).n_classes(cfg)


def check(cfg) -> None:
    """Bad input that depends on the dataset: missing or damaged files, n_train larger than the pool."""
    ds = dataset(cfg)
    if ds.check is not None:
        ds.check(cfg)
    verify_content(cfg)
    pool = ds.pool_size(cfg)
    fraction = cfg.get("val_fraction", 0.0)
    n_val = int(round(fraction * pool))
    n_train = cfg.n_train if cfg.n_train is not None else pool - n_val
    if n_train < 1 and n_val:  # n_train=null and a split that takes the whole pool: nothing to train on
        raise ConfigError(f"val_fraction={fraction}: keeps {n_val} of the {pool} samples of the {cfg.name} training "
                          f"pool for validation and none for training; choose val_fraction <= {(pool - 1) / pool:.4g}")
    if n_train + n_val > pool:
        raise ConfigError(f"n_train={n_train}: the {cfg.name} training pool has {pool} samples"
                          + (f" ({n_val} kept for validation)" if n_val else "") + f"; choose n_train <= {pool - n_val}"
                          + (" or n_train=null (what is left after validation)" if n_val else ""))


# ----------------------------------------------------------------------------- content of file datasets


def _hashes_path() -> Path:
    return cache_dir(None) / "file-hashes.json"


def _read_hashes() -> dict:
    try:
        return json.loads(_hashes_path().read_text())
    except (OSError, ValueError):
        return {}


def _write_hashes(table: dict) -> None:
    try:
        write_text_atomic(_hashes_path(), json.dumps(table))
    except OSError:
        pass  # a read-only cache costs a rehash next time, nothing else


def _file_hash(path: Path, table: dict) -> str:
    """SHA-256 of a file's bytes, cached by (size, mtime, inode, ctime): the second look costs a stat. ctime is
    there because an edit in place can restore size, inode and mtime (os.utime), but not ctime."""
    stamp = file_stamp(path)
    key = str(path.resolve())
    if table.get(key, {}).get("stamp") == stamp:
        return table[key]["sha256"]
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    table[key] = {"stamp": stamp, "sha256": digest.hexdigest()}
    return table[key]["sha256"]


def fingerprint(cfg) -> str | None:
    """What a file dataset holds, independent of where it lies: a hash of its files' names and contents (None for
    data generated from the config). Moving the files keeps it; editing one changes it."""
    ds = dataset(cfg)
    if ds.files is None:
        return None
    table = _read_hashes()
    parts = sorted(f"{p.name}:{_file_hash(p, table)}" for p in ds.files(cfg))
    _write_hashes(table)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def verify_content(cfg) -> None:
    """Read a file dataset whole once per content (the loader checks shapes, counts and values), so that a
    damaged file is reported before any work; the verdict is cached by fingerprint."""
    ds = dataset(cfg)
    if ds.files is None:
        return
    key = f"{cfg.name}:{fingerprint(cfg)}"
    table = _read_hashes()
    if key in table.get("verified", []):
        return
    try:
        ds.load(cfg)
    except ConfigError:
        raise
    except Exception as exc:  # whatever a damaged file makes a reader raise
        raise ConfigError(f"data.root: {cfg.name} under {cfg.root} cannot be read: {exc}") from exc
    table = _read_hashes()
    table["verified"] = sorted(set(table.get("verified", [])) | {key})
    _write_hashes(table)


# ----------------------------------------------------------------------------- what a run sees


def load(cfg, device: torch.device | str = "cpu") -> Data:
    """Draw the training set (and validation split) from the pool with `data_seed`, add label noise to the
    training labels only, and move everything to `device`."""
    ds = dataset(cfg)
    pool = ds.load(cfg)
    n_pool = len(pool.y)
    rng = np.random.default_rng(cfg.data_seed)
    order = rng.permutation(n_pool)
    n_val = int(round(cfg.get("val_fraction", 0.0) * n_pool))
    n_train = cfg.n_train if cfg.n_train is not None else n_pool - n_val
    train_idx, val_idx = order[:n_train], order[n_train:n_train + n_val]
    # The noise stream is separate from the subsampling stream, so n_train does not shift which labels flip.
    noise_rng = np.random.default_rng([cfg.data_seed, 1])
    noise_mode = cfg.get("noise_mode") or "uniform"  # a dataset's YAML may leave it out
    y_clean = pool.y[train_idx]
    if pool.regression:  # real-valued targets carry the dataset's own noise; label noise is for classes
        y_noisy, y_val, target = y_clean, pool.y[val_idx], torch.float32
    else:
        y_noisy = apply_label_noise(y_clean, cfg.label_noise, pool.n_classes, noise_mode, noise_rng)
        y_val = apply_label_noise(pool.y[val_idx], cfg.label_noise, pool.n_classes, noise_mode, noise_rng)
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
        augment=ds.augment(cfg) if ds.augment else None,
    )
