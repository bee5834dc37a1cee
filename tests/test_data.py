import random

import numpy as np
import pytest

from ddescent.config import compose
from ddescent.data import load
from ddescent.data.noise import apply_label_noise


def test_uniform_noise_resamples_exact_count_and_about_nine_tenths_change():
    y = np.arange(20000) % 10
    noisy = apply_label_noise(y, 0.15, 10, "uniform", np.random.default_rng(0))
    changed = np.mean(noisy != y)
    # 15% resampled uniformly over 10 classes: about 13.5% end up wrong (design §5)
    assert 0.125 < changed < 0.145


def test_wrong_noise_changes_exactly_the_requested_fraction():
    y = np.arange(1000) % 10
    noisy = apply_label_noise(y, 0.2, 10, "wrong", np.random.default_rng(1))
    assert np.sum(noisy != y) == 200


def test_noise_is_deterministic_in_its_seed_and_varies_across_seeds():
    y = np.arange(1000) % 10
    a = apply_label_noise(y, 0.3, 10, "uniform", np.random.default_rng(5))
    b = apply_label_noise(y, 0.3, 10, "uniform", np.random.default_rng(5))
    c = apply_label_noise(y, 0.3, 10, "uniform", np.random.default_rng(6))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_sequence_noise_leaves_padding_alone():
    y = np.full((50, 8), -100)
    y[:, :4] = np.arange(4)
    noisy = apply_label_noise(y, 0.5, 10, "wrong", np.random.default_rng(0))
    assert np.all(noisy[:, 4:] == -100)
    assert np.sum(noisy != y) == 100


def _data(data_cache, *overrides):
    return load(compose(["data.num_samples=1000", *overrides]).data)


def test_noise_only_on_training_labels_and_recorded(data_cache):
    clean = _data(data_cache, "label_noise=0")
    noisy = _data(data_cache, "label_noise=0.4", "data.noise_mode=wrong")
    assert np.array_equal(clean.y_test.numpy(), noisy.y_test.numpy())  # test labels untouched
    assert np.array_equal(clean.x_train.numpy(), noisy.x_train.numpy())  # same samples drawn
    frac = np.mean(clean.y_train.numpy() != noisy.y_train.numpy())
    assert frac == pytest.approx(0.4) and noisy.label_noise_effective == pytest.approx(frac)
    assert clean.label_noise_effective == 0


def test_n_train_subsamples_with_data_seed(data_cache):
    a = _data(data_cache, "n_train=100", "data_seed=0")
    b = _data(data_cache, "n_train=100", "data_seed=0")
    c = _data(data_cache, "n_train=100", "data_seed=1")
    assert a.x_train.shape == (100, 40) and a.x_test.shape == (750, 40)
    assert np.array_equal(a.x_train.numpy(), b.x_train.numpy())
    assert not np.array_equal(a.x_train.numpy(), c.x_train.numpy())


def test_generation_leaves_global_rng_alone(data_cache, tmp_path):
    np.random.seed(123)
    random.seed(123)
    _data(data_cache, "data.num_samples=200", f"data.cache_dir={tmp_path}")  # not cached yet: generates
    assert np.random.randint(1 << 30) == np.random.RandomState(123).randint(1 << 30)
    assert random.random() == random.Random(123).random()
    assert list(tmp_path.glob("mnist1d-*.npz"))  # and caches the arrays for the next run


def test_mnist1d_shift_rolls_each_training_signal_within_its_range_from_the_generator_alone(data_cache):
    import torch

    from ddescent.data.mnist1d import shift

    plain, shifted = _data(data_cache), _data(data_cache, "data.shift=4")
    assert plain.augment is None and np.array_equal(plain.x_train.numpy(), shifted.x_train.numpy())
    x = shifted.x_train[:64]
    out = shifted.augment(x, torch.Generator().manual_seed(0))
    again = shifted.augment(x, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    offsets = []
    for row, rolled in zip(x, out):  # each row is a circular roll of its own signal, by at most 4 samples
        offsets.append([s for s in range(-4, 5) if torch.equal(torch.roll(row, s), rolled)][0])
    assert len(set(offsets)) > 4 and max(map(abs, offsets)) <= 4
    packed = shift(x.reshape(2, 32, 40), torch.Generator().manual_seed(1), most=2)  # [members, batch, length]
    assert packed.shape == (2, 32, 40) and torch.equal(packed.sort(-1).values, x.reshape(2, 32, 40).sort(-1).values)


def test_mnist1d_shift_trains_differently_reproducibly_and_refuses_a_negative_range(tiny, tmp_path):
    from conftest import cli
    from ddescent import load as load_records

    for name in ("a", "b"):
        assert cli("sweep", "width=8", "data.shift=3", *tiny, "--results", str(tmp_path / name), "--no-plot").returncode == 0
    assert cli("sweep", "width=8", *tiny, "--results", str(tmp_path / "c"), "--no-plot").returncode == 0
    a, b, c = (load_records(tmp_path / name) for name in "abc")
    assert a["test_loss"].tolist() == b["test_loss"].tolist() and a["test_loss"].tolist() != c["test_loss"].tolist()
    r = cli("sweep", "data.shift=-1", *tiny, "--results", str(tmp_path / "d"))
    assert r.returncode == 2 and r.stderr.startswith("ddescent: error: data.shift=-1") and not (tmp_path / "d").exists()
