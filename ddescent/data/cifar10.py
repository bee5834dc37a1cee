"""CIFAR-10 from the python batches under `<data.root>/cifar-10-batches-py/`; nothing is downloaded.

The batches are pickles (written by Python 2's cPickle): a dict with bytes keys holding the images as a NumPy
uint8 array [10000, 3072] (b'data', each row the red, green and blue 32x32 planes) and the labels as a list of
ints (b'labels'). A pickle can run any code it names, so they are read by an unpickler that resolves exactly the
three globals a genuine batch needs (numpy's _reconstruct, ndarray and a uint8 dtype) and refuses every other:
a forged batch fails before anything in it runs. The result is then checked for the expected shapes and types.
"""

from __future__ import annotations

import functools
import io
import pickle
from pathlib import Path

import numpy as np

from ddescent.errors import ConfigError
from ddescent.files import stamp
from ddescent.data import images
from ddescent.data.base import Dataset, Pool, data_root

N_CLASSES = 10
RULES = images.RULES
FOLDER = "cifar-10-batches-py"
TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST = "test_batch"
META = "batches.meta"
SOURCE = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz (unpack it into data.root)"
PIXELS = 3 * 32 * 32


def input_shape(cfg) -> tuple[int, ...]:
    return (3, 32, 32)


def pool_size(cfg) -> int:
    """Five training batches of `num_cases_per_batch` images, as batches.meta (a few hundred bytes) says."""
    meta = _unpickle(_folder(cfg) / META)
    per_batch = _get(meta, "num_cases_per_batch")
    if not isinstance(per_batch, int) or per_batch < 0:
        raise ConfigError(f"data.root: {_folder(cfg) / META} has no valid num_cases_per_batch")
    return len(TRAIN) * per_batch


def files(cfg) -> list[Path]:
    folder = _folder(cfg)
    return [folder / name for name in (*TRAIN, TEST, META)]


def check(cfg) -> None:
    """The files exist and batches.meta reads (a full read, once per content, checks the batches)."""
    _folder(cfg)
    images.check(cfg, channels=3)
    pool_size(cfg)


def load(cfg):
    folder = _folder(cfg)
    x, y, x_test, y_test = _read(str(folder), pool_size(cfg) // len(TRAIN),
                                 tuple(tuple(stamp(folder / name)) for name in (*TRAIN, TEST)))
    return Pool(images.to_float(x, cfg), y, images.to_float(x_test, cfg), y_test, n_classes=N_CLASSES)


def _folder(cfg) -> Path:
    root = data_root(cfg.root)
    folder = root / FOLDER
    missing = [name for name in (*TRAIN, TEST, META) if not (folder / name).is_file()]
    if missing:
        gap = "it is missing or empty" if len(missing) == len(TRAIN) + 2 else f"missing {', '.join(missing)}"
        raise ConfigError(f"data.root={root}: cifar10 needs {FOLDER}/ with {', '.join(TRAIN)}, {TEST} and {META} "
                          f"there ({gap}); run `ddescent data fetch cifar10` or get them once from {SOURCE}")
    return folder


@functools.lru_cache(maxsize=1)
def _read(folder: str, per_batch: int, stamps: tuple = ()) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train images, train labels, test images, test labels): uint8 [N, 3, 32, 32] and int64 [N]; `stamps`
    (ddescent.files.stamp of each file) only keys the in-memory copy."""
    train = [_batch(Path(folder) / name, per_batch) for name in TRAIN]
    x_test, y_test = _batch(Path(folder) / TEST, None)
    return (np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]), x_test, y_test)


def _batch(path: Path, expected: int | None) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle(path)
    data, labels = _get(batch, "data"), _get(batch, "labels")
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == PIXELS):
        raise ConfigError(f"data.root: {path} holds no uint8 image array of {PIXELS} values per row")
    if not (isinstance(labels, list) and len(labels) == len(data)
            and all(isinstance(v, int) and 0 <= v < N_CLASSES for v in labels)):
        raise ConfigError(f"data.root: {path} holds no list of {len(data)} labels in 0..{N_CLASSES - 1}")
    if expected is not None and len(data) != expected:
        raise ConfigError(f"data.root: {path} has {len(data)} images; batches.meta says {expected}")
    return data.reshape(-1, 3, 32, 32), np.asarray(labels, dtype=np.int64)


def _get(d, key: str):
    """A field of a batch dict: bytes keys (Python 2 pickles read as bytes), or str keys if re-pickled."""
    if not isinstance(d, dict):
        return None
    return d.get(key.encode(), d.get(key))


# ----------------------------------------------------------------------------- the restricted unpickler

# NumPy pickles an array as _reconstruct(ndarray, (0,), b'b') followed by __setstate__ with the raw bytes.
# The function's module moved (numpy.core -> numpy._core in NumPy 2); take it from an array's own reduction.
_NUMPY_RECONSTRUCT = np.empty(0).__reduce__()[0]


def _reconstruct(subtype, shape, typecode):
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError("_reconstruct may only build a plain ndarray")
    return _NUMPY_RECONSTRUCT(subtype, shape, typecode)


def _uint8(spec, align=False, copy=True):
    if spec not in ("u1", b"u1"):
        raise pickle.UnpicklingError(f"dtype {spec!r} refused: CIFAR-10 images are uint8")
    # A fresh dtype object (copy=True): the pickle's BUILD step then sets the state of this copy, never of
    # NumPy's shared uint8 dtype.
    return np.dtype("u1", align=bool(align), copy=True)


ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _uint8,
}


class BatchUnpickler(pickle.Unpickler):
    """Resolves only the globals in ALLOWED; everything else (os.system, builtins.eval, ...) is refused."""

    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR-10 batch")
        return ALLOWED[(module, name)]

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("persistent ids are not allowed in a CIFAR-10 batch")


def _unpickle(path: Path):
    try:
        return BatchUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except Exception as exc:  # a forged or damaged file can fail in many ways; all of them mean "not a batch"
        raise ConfigError(f"data.root: {path} is not a genuine CIFAR-10 batch, refused: {exc}") from exc


DATASET = Dataset("cifar10", load=load, input_shape=input_shape, pool_size=pool_size,
                  n_classes=lambda cfg: N_CLASSES, check=check, files=files, rules=RULES, augment=images.augmentation)
