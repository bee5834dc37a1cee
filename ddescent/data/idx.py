"""Datasets of IDX files (MNIST, Fashion-MNIST) under `data.root` (gzip or raw); nothing is downloaded.

Both datasets use the same four file names and format; `dataset(name)` makes the spec of either (data/mnist.py
and data/fashion_mnist.py are one line each). Files are looked for in `<root>/<name>/` (`mnist/`, `fashion_mnist/`), in `<root>` itself,
and in torchvision's layout (`<root>/MNIST/raw`, `<root>/FashionMNIST/raw`), so one data folder holds every
dataset and an existing torchvision download works as is.

IDX format: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions, each dimension as a
big-endian uint32, then the values in C order.
"""

from __future__ import annotations

import functools
import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from ddescent.errors import ConfigError
from ddescent.files import stamp
from ddescent.data import images
from ddescent.data.base import Dataset, Pool, data_root

N_CLASSES = 10
RULES = images.RULES
FILES = {"x": "train-images-idx3-ubyte", "y": "train-labels-idx1-ubyte",
         "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
SOURCES = {"mnist": ("MNIST", "https://ossci-datasets.s3.amazonaws.com/mnist/"),
           "fashion_mnist": ("FashionMNIST", "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/ or "
                             "https://github.com/zalandoresearch/fashion-mnist (data/fashion/)")}
UBYTE = 0x08


def input_shape(cfg) -> tuple[int, ...]:
    return (1, 28, 28)


def pool_size(cfg) -> int:
    """The training pool's size, from the label file's header (8 bytes)."""
    try:
        with _open(_find(cfg, FILES["y"])) as f:
            header = f.read(8)
    except (EOFError, OSError, zlib.error) as exc:
        raise ConfigError(f"data.root: {_find(cfg, FILES['y'])} is truncated or damaged ({exc})") from exc
    if len(header) < 8 or header[:4] != bytes([0, 0, UBYTE, 1]):
        raise ConfigError(f"data.root: {_find(cfg, FILES['y'])} is not an IDX label file")
    return struct.unpack(">I", header[4:])[0]


def files(cfg) -> list[Path]:
    return [_find(cfg, name) for name in FILES.values()]


def check(cfg) -> None:
    """The four files exist and their headers agree (a full read, once per content, checks the rest)."""
    files(cfg)
    images.check(cfg, channels=1)
    pool_size(cfg)


def load(cfg):
    paths = [_find(cfg, FILES[key]) for key in FILES]
    arrays = _read(tuple(map(str, paths)), tuple(tuple(stamp(p)) for p in paths))
    x, y, x_test, y_test = (arrays[key] for key in FILES)
    return Pool(images.to_float(x[:, None], cfg), y.astype(np.int64),
                images.to_float(x_test[:, None], cfg), y_test.astype(np.int64), n_classes=N_CLASSES)


def _find(cfg, name: str) -> Path:
    root = data_root(cfg.root)
    folder, source = SOURCES[cfg.name]
    for directory in (root / cfg.name, root, root / folder / "raw"):
        for candidate in (directory / name, directory / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    expected = ", ".join(f"{n}[.gz]" for n in FILES.values())
    raise ConfigError(f"data.root={root}: {cfg.name} needs {expected} in {root / cfg.name} or {root} "
                      f"(missing {name}); run `ddescent data fetch {cfg.name}` or get them once from {source}")


def _open(path: Path):
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


def _bytes(path: Path) -> bytes:
    """The whole (uncompressed) file; a truncated or corrupted gzip is a ConfigError naming it."""
    try:
        with _open(path) as f:
            return f.read()
    except (EOFError, OSError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise ConfigError(f"data.root: {path} is truncated or damaged ({exc or type(exc).__name__}); "
                          "replace it (ddescent data fetch)") from exc


@functools.lru_cache(maxsize=2)
def _read(paths: tuple[str, ...], stamps: tuple = ()) -> dict[str, np.ndarray]:
    """The four arrays as uint8, checked for consistency; kept in memory for the next run of a sweep. `stamps`
    (ddescent.files.stamp of each file) only keys that copy: a file edited in place is read again."""
    arrays = dict(zip(FILES, (read_idx(Path(p)) for p in paths)))
    for split in ("", "_test"):
        x, y = arrays["x" + split], arrays["y" + split]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ConfigError(f"data.root: the IDX files disagree: images {x.shape}, labels {y.shape}")
        if y.size and y.max() >= N_CLASSES:
            raise ConfigError(f"data.root: labels must lie in 0..{N_CLASSES - 1}; found {int(y.max())}")
    return arrays


def read_idx(path: Path) -> np.ndarray:
    """One IDX file of unsigned bytes, gzip-compressed or not."""
    raw = _bytes(path)
    if len(raw) < 4 or raw[:3] != bytes([0, 0, UBYTE]):
        raise ConfigError(f"data.root: {path} is not an IDX file of unsigned bytes")
    ndim = raw[3]
    body = 4 + 4 * ndim
    dims = struct.unpack(f">{ndim}I", raw[4:body]) if len(raw) >= body else None
    if dims is None or len(raw) - body != int(np.prod(dims, dtype=np.int64)):
        raise ConfigError(f"data.root: {path} is truncated or damaged (its header and size disagree)")
    return np.frombuffer(raw, np.uint8, offset=body).reshape(dims)


def dataset(name: str) -> Dataset:
    return Dataset(name, load=load, input_shape=input_shape, pool_size=pool_size, n_classes=lambda cfg: N_CLASSES,
                   check=check, files=files, rules=RULES, augment=images.augmentation)
