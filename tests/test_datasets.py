"""Image datasets read from tiny files written in the exact MNIST IDX and CIFAR-10 python formats, the restricted
unpickler against forged batches, and the on-device augmentation."""

import os
import pickle

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from ddescent import ConfigError
from ddescent.config import compose, validate
from ddescent.data import cifar10, images, load
from ddescent.data import idx as mnist
from fake_data import write_cifar, write_mnist

# ----------------------------------------------------------------------------- MNIST IDX


def mnist_cfg(root, name="mnist", normalize=False):
    return OmegaConf.create({"name": name, "root": str(root), "normalize": normalize, "mean": [0.5], "std": [0.25],
                             "augment": False})


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_idx_files_read_back_exactly(tmp_path, gz):
    arrays = write_mnist(tmp_path / "mnist", gz=gz)
    cfg = mnist_cfg(tmp_path)
    mnist.check(cfg)
    assert mnist.pool_size(cfg) == 12
    pool = mnist.load(cfg)
    assert pool.x.shape == (12, 1, 28, 28) and pool.x.dtype == np.float32
    np.testing.assert_array_equal(np.rint(pool.x[:, 0] * 255), arrays["x"])
    np.testing.assert_array_equal(pool.y, arrays["y"])
    np.testing.assert_array_equal(np.rint(pool.x_test[:, 0] * 255), arrays["x_test"])
    np.testing.assert_array_equal(pool.y_test, arrays["y_test"])


def test_mnist_normalisation_and_torchvision_layout(tmp_path):
    arrays = write_mnist(tmp_path / "FashionMNIST" / "raw")
    pool = mnist.load(mnist_cfg(tmp_path, name="fashion_mnist", normalize=True))
    np.testing.assert_allclose(pool.x[:, 0], (arrays["x"] / 255 - 0.5) / 0.25, atol=1e-5)


def test_mnist_missing_or_truncated_files_are_one_line_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"train-images-idx3-ubyte\[\.gz\].*ossci-datasets") as err:
        mnist.check(mnist_cfg(tmp_path))
    assert "\n" not in str(err.value)
    write_mnist(tmp_path / "mnist", gz=False, seed=1)
    path = tmp_path / "mnist" / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-7])
    mnist._read.cache_clear()
    with pytest.raises(ConfigError, match="truncated"):
        mnist.load(mnist_cfg(tmp_path))


def test_mnist_through_config_subsampling_and_noise(tmp_path, data_cache):
    write_mnist(tmp_path / "mnist", n_train=40, seed=2)
    cfg = compose(["data=mnist", f"data.root={tmp_path}", "n_train=30", "label_noise=0.5", "model=cnn5", "width=2"])
    validate(cfg)
    data = load(cfg.data)
    assert data.x_train.shape == (30, 1, 28, 28) and data.y_test.shape == (5,)
    assert 0 < data.label_noise_effective < 1
    with pytest.raises(ConfigError, match="n_train=41"):
        validate(compose(["data=mnist", f"data.root={tmp_path}", "n_train=41"]))


# ----------------------------------------------------------------------------- CIFAR-10 python batches


def cifar_cfg(root, normalize=False):
    return OmegaConf.create({"name": "cifar10", "root": str(root), "normalize": normalize,
                             "mean": [0.1, 0.2, 0.3], "std": [0.5, 0.5, 0.25], "augment": False})


def test_py2_writer_matches_what_the_cifar_page_recipe_reads(tmp_path):
    batches = write_cifar(tmp_path)
    # The recipe on the CIFAR page: pickle.load(fo, encoding='bytes') gives a dict with bytes keys.
    with open(tmp_path / cifar10.FOLDER / "data_batch_2", "rb") as f:
        plain = pickle.load(f, encoding="bytes")
    assert set(plain) == {b"batch_label", b"labels", b"data", b"filenames"}
    np.testing.assert_array_equal(plain[b"data"], batches["data_batch_2"]["data"])


def test_cifar_batches_read_back_exactly(tmp_path):
    batches = write_cifar(tmp_path)
    cfg = cifar_cfg(tmp_path)
    cifar10.check(cfg)
    assert cifar10.pool_size(cfg) == 20
    pool = cifar10.load(cfg)
    assert pool.x.shape == (20, 3, 32, 32) and pool.x_test.shape == (3, 3, 32, 32)
    train = [batches[name] for name in cifar10.TRAIN]
    raw = np.concatenate([b["data"] for b in train])
    # Each row is the red, then green, then blue 32x32 plane.
    np.testing.assert_array_equal(np.rint(pool.x * 255).reshape(20, -1), raw)
    np.testing.assert_array_equal(np.rint(pool.x[5, 1] * 255), raw[5, 1024:2048].reshape(32, 32))
    np.testing.assert_array_equal(pool.y, np.concatenate([b["labels"] for b in train]))
    np.testing.assert_array_equal(pool.y_test, batches[cifar10.TEST]["labels"])


def test_cifar_normalisation_is_per_channel(tmp_path):
    batches = write_cifar(tmp_path, seed=3)
    cifar10._read.cache_clear()
    pool = cifar10.load(cifar_cfg(tmp_path, normalize=True))
    raw = batches[cifar10.TEST]["data"].reshape(-1, 3, 32, 32) / 255
    expected = (raw - np.array([0.1, 0.2, 0.3])[:, None, None]) / np.array([0.5, 0.5, 0.25])[:, None, None]
    np.testing.assert_allclose(pool.x_test, expected, atol=1e-5)


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_forged_batch_with_a_payload_is_refused_without_running_it(tmp_path):
    write_cifar(tmp_path)
    marker = tmp_path / "pwned"
    forged = {"data": _Payload(marker), "labels": [1, 2]}
    (tmp_path / cifar10.FOLDER / "data_batch_3").write_bytes(pickle.dumps(forged, protocol=2))
    cifar10._read.cache_clear()
    with pytest.raises(ConfigError, match=r"data_batch_3 is not a genuine CIFAR-10 batch.*system is not allowed"):
        cifar10.load(cifar_cfg(tmp_path))
    assert not marker.exists()


@pytest.mark.parametrize("payload", [
    b"cbuiltins\neval\n(S'1+1'\ntR.",                    # a builtin called on a string
    b"cnumpy\ndtype\n(S'O'\nI00\nI01\ntR.",              # an allowed global asked for an object dtype
    b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x8c\x06getcwd\x93)R.",  # STACK_GLOBAL, protocol 4
])
def test_unpickler_refuses_everything_but_the_batch_globals(tmp_path, payload):
    path = tmp_path / "forged"
    path.write_bytes(payload)
    with pytest.raises(ConfigError, match="not a genuine CIFAR-10 batch"):
        cifar10._unpickle(path)


def test_cifar_incomplete_root_names_the_files_and_the_source(tmp_path):
    write_cifar(tmp_path)
    (tmp_path / cifar10.FOLDER / "test_batch").unlink()
    with pytest.raises(ConfigError, match=r"missing test_batch\).*cifar-10-python\.tar\.gz") as err:
        cifar10.check(cifar_cfg(tmp_path))
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="data.mean"):
        images.check(OmegaConf.create({"name": "cifar10", "normalize": True, "mean": [0.5], "std": [1.0]}), 3)


# ----------------------------------------------------------------------------- augmentation


def test_augment_is_a_random_padded_crop_with_flips_per_image():
    x = torch.arange(2 * 6 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 6, 3, 8, 8) + 1  # [G, B, C, H, W]
    out = images.augment(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    padded = torch.nn.functional.pad(x.reshape(12, 3, 8, 8), (4, 4, 4, 4))
    seen = set()
    for i, img in enumerate(out.reshape(12, 3, 8, 8)):
        matches = [(dy, dx, flip) for dy in range(9) for dx in range(9) for flip in (False, True)
                   if torch.equal(img, (lambda c: c.flip(-1) if flip else c)(padded[i, :, dy:dy + 8, dx:dx + 8]))]
        assert matches, f"image {i} is not a crop of its padded self"
        seen.add(matches[0])
    assert len(seen) > 6 and {flip for *_, flip in seen} == {False, True}
    again = images.augment(x, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
