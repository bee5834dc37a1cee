"""Small, deterministic stand-ins for the file datasets (MNIST IDX, CIFAR-10 batches, parallel text), in their
real formats, so that tests and every preset's plan can run without the real downloads. The same seed always
writes the same bytes."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np

from ddescent.data import cifar10
from ddescent.data import idx as mnist

# ----------------------------------------------------------------------------- MNIST IDX


def write_idx(path, array: np.ndarray, gz: bool) -> None:
    """IDX as LeCun's files: 0, 0, type 0x08 (ubyte), ndim, big-endian uint32 dims, then the bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    blob = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(blob, mtime=0) if gz else blob)


def write_mnist(folder, n_train=12, n_test=5, gz=True, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {"x": rng.integers(0, 256, (n_train, 28, 28)), "y": rng.integers(0, 10, n_train),
              "x_test": rng.integers(0, 256, (n_test, 28, 28)), "y_test": rng.integers(0, 10, n_test)}
    folder.mkdir(parents=True, exist_ok=True)
    for key, name in mnist.FILES.items():
        write_idx(folder / (name + (".gz" if gz else "")), arrays[key], gz)
    return arrays



# ----------------------------------------------------------------------------- CIFAR-10 python batches


def _string(b: bytes) -> bytes:
    """A Python 2 str, as cPickle writes it (SHORT_BINSTRING or BINSTRING); read back as bytes."""
    if len(b) < 256:
        return pickle.SHORT_BINSTRING + bytes([len(b)]) + b
    return pickle.BINSTRING + struct.pack("<i", len(b)) + b


def _int(v: int) -> bytes:
    return pickle.BININT1 + bytes([v]) if 0 <= v < 256 else pickle.BININT + struct.pack("<i", v)


def _value(v) -> bytes:
    if isinstance(v, bytes):
        return _string(v)
    if isinstance(v, int):
        return _int(v)
    if isinstance(v, list):
        return pickle.EMPTY_LIST + pickle.MARK + b"".join(_value(x) for x in v) + pickle.APPENDS
    if isinstance(v, np.ndarray):  # exactly what NumPy 1.x under Python 2 wrote for a C-ordered uint8 array
        assert v.dtype == np.uint8 and v.ndim == 2
        dtype = (pickle.GLOBAL + b"numpy\ndtype\n" + _string(b"u1") + _int(0) + _int(1) + pickle.TUPLE3 + pickle.REDUCE
                 + pickle.MARK + _int(3) + _string(b"|") + pickle.NONE * 3 + pickle.BININT + struct.pack("<i", -1)
                 + pickle.BININT + struct.pack("<i", -1) + _int(0) + pickle.TUPLE + pickle.BUILD)
        return (pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n" + pickle.GLOBAL + b"numpy\nndarray\n"
                + _int(0) + pickle.TUPLE1 + _string(b"b") + pickle.TUPLE3 + pickle.REDUCE
                + pickle.MARK + _int(1) + _int(v.shape[0]) + _int(v.shape[1]) + pickle.TUPLE2 + dtype
                + pickle.NEWFALSE + _string(v.tobytes()) + pickle.TUPLE + pickle.BUILD)
    raise TypeError(type(v))


def py2_pickle(d: dict) -> bytes:
    """A dict with str keys pickled as Python 2's cPickle.dump(d, f, 2) wrote the CIFAR-10 batches."""
    items = b"".join(_string(k.encode()) + _value(v) for k, v in d.items())
    return pickle.PROTO + bytes([2]) + pickle.EMPTY_DICT + pickle.MARK + items + pickle.SETITEMS + pickle.STOP


def write_cifar(root, per_batch=4, n_test=3, seed=0):
    rng = np.random.default_rng(seed)
    folder = root / cifar10.FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    batches = {}
    for i, name in enumerate((*cifar10.TRAIN, cifar10.TEST)):
        n = n_test if name == cifar10.TEST else per_batch
        batch = {"batch_label": f"batch {i + 1} of 5".encode(), "labels": rng.integers(0, 10, n).tolist(),
                 "data": rng.integers(0, 256, (n, cifar10.PIXELS), dtype=np.uint8),
                 "filenames": [f"img_{i}_{j}.png".encode() for j in range(n)]}
        (folder / name).write_bytes(py2_pickle(batch))
        batches[name] = batch
    meta = {"num_cases_per_batch": per_batch, "label_names": [b"airplane", b"automobile"], "num_vis": cifar10.PIXELS}
    (folder / cifar10.META).write_bytes(py2_pickle(meta))
    return batches



# ----------------------------------------------------------------------------- parallel text


def write_parallel_text(folder: Path, n_train=20, n_test=5, src="de", tgt="en", seed=0) -> None:
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(30)]
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        for side in (src, tgt):
            lines = [" ".join(rng.choice(words, rng.integers(1, 8))) for _ in range(n)]
            (folder / f"{split}.{side}").write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_all(root: Path) -> Path:
    """Every file dataset a preset reads, under one DDESCENT_DATA root."""
    write_mnist(root / "mnist", n_train=200, n_test=50, seed=1)
    write_mnist(root / "fashion_mnist", n_train=200, n_test=50, seed=2)
    write_cifar(root, per_batch=20, n_test=10, seed=3)
    write_parallel_text(root / "iwslt14.tokenized.de-en", n_train=18500, n_test=20, seed=4)
    return root
