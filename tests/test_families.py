"""The issue-3 model families: exact parameter counts, generator-only initialisation, and the random-features
closed forms (minimum-norm least squares and ridge)."""

import pytest
import torch
from omegaconf import OmegaConf

from ddescent import ConfigError
from ddescent.config import compose
from ddescent.data import Data, load
from ddescent.models import build, check, cnn1d, count_params, family, random_features
from ddescent.packing import Single
from ddescent.metrics import evaluate, per_model_loss
from ddescent.optim import make_optimizer

SHAPES = {"cnn1d": [(40,), (2, 64)], "cnn5": [(3, 32, 32), (1, 28, 28)], "resnet18": [(3, 32, 32), (1, 28, 28)],
          "random_features": [(40,), (1, 28, 28)]}


def _cfg(name, width, **extra):
    return OmegaConf.create({"name": name, "width": width, "features": "relu", "solver": "lstsq", **extra})


def _build(name, width, shape, seed=0, n_classes=10, **extra):
    cfg = _cfg(name, width, **extra)
    return build(cfg, shape, n_classes, torch.Generator().manual_seed(seed)), cfg


@pytest.mark.parametrize("name", list(SHAPES))
@pytest.mark.parametrize("width", [1, 3, 10])
def test_n_params_formula_matches_the_trainable_parameters(name, width):
    for shape in SHAPES[name]:
        model, cfg = _build(name, width, shape)
        assert count_params(model) == family(name).n_params(cfg, shape, 10), (name, width, shape)
        assert model(torch.randn(2, *shape)).shape == (2, 10)


def test_closed_forms_of_the_reference_networks():
    # ResNet18 at k = 64 is the standard pre-activation network (11.17M); cnn1d on MNIST-1D is 6c^2 + 58c + 10.
    resnet, cfg = _build("resnet18", 64, (3, 32, 32))
    assert count_params(resnet) == family("resnet18").n_params(cfg, (3, 32, 32), 10) == 11_172_170
    cnn5, cfg = _build("cnn5", 64, (3, 32, 32))
    assert count_params(cnn5) == family("cnn5").n_params(cfg, (3, 32, 32), 10) == 1_558_026
    for c in (2, 18, 95):
        assert cnn1d.n_params(_cfg("cnn1d", c), (40,), 10) == 6 * c * c + 58 * c + 10
    assert random_features.n_params(_cfg("random_features", 700), (40,), 10) == 7000


@pytest.mark.parametrize("name", list(SHAPES))
def test_init_depends_on_the_generator_only(name):
    shape = SHAPES[name][0]
    a, _ = _build(name, 3, shape, seed=5)
    torch.manual_seed(123)  # the global RNG must not matter
    b, _ = _build(name, 3, shape, seed=5)
    c, _ = _build(name, 3, shape, seed=6)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa if sa[k].is_floating_point())


@pytest.mark.parametrize("name", ["cnn1d", "cnn5", "resnet18"])
def test_gradient_step_lowers_the_loss_through_the_packed_interface(name):
    shape = SHAPES[name][0]
    model, _ = _build(name, 8 if name == "cnn1d" else 4, shape)  # a narrower cnn1d can start with every unit dead
    net = Single(model)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(1, 16, *shape, generator=gen), torch.randint(0, 10, (1, 16), generator=gen)
    opt = make_optimizer(net.parameters(), OmegaConf.create({"name": "adam", "lr": 1e-2, "betas": [0.9, 0.999],
                                                            "eps": 1e-8, "weight_decay": 0.0}))
    first = per_model_loss(net(x), y).sum()
    for _ in range(40):
        opt.zero_grad()
        per_model_loss(net(x), y).sum().backward()
        opt.step()
    assert per_model_loss(net(x), y).item() < 0.5 * first.item()


def test_checks_refuse_fractional_widths_and_unknown_options():
    for name in SHAPES:
        with pytest.raises(ConfigError, match="model.width=2.5"):
            check(_cfg(name, 2.5))
    with pytest.raises(ConfigError, match="model.features='sigmoid'"):
        check(_cfg("random_features", 8, features="sigmoid"))
    with pytest.raises(ConfigError, match="model.solver='adam'"):
        check(_cfg("random_features", 8, solver="adam"))
    with pytest.raises(ConfigError, match="needs images"):
        _build("resnet18", 2, (40,))


# ----------------------------------------------------------------------------- random features


def _tiny_problem(n=12, d=5, classes=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen)
    y = torch.randint(0, classes, (n,), generator=gen)
    return Data(x_train=x, y_train=y, x_test=x[:2], y_test=y[:2], n_classes=classes, label_noise_effective=0.0)


@pytest.mark.parametrize("features", ["relu", "fourier"])
def test_random_features_are_fixed_buffers_and_the_readout_alone_trains(features):
    model, _ = _build("random_features", 30, (5,), features=features, n_classes=3)
    assert [name for name, _ in model.named_parameters()] == ["readout.weight"]
    assert model.readout.bias is None and count_params(model) == 90
    assert {"weight", "phase"} <= set(dict(model.named_buffers()))
    assert torch.count_nonzero(model.readout.weight) == 0  # gd starts from zero
    assert model.weight.std().item() == pytest.approx(1 / 5 ** 0.5, rel=0.2)  # N(0, 1/d)


@pytest.mark.parametrize("features", ["relu", "fourier"])
def test_lstsq_gives_the_minimum_norm_interpolating_readout_when_p_exceeds_n(features):
    data = _tiny_problem()
    model, _ = _build("random_features", 40, (5,), features=features, n_classes=3)
    random_features.fit(model, data, "lstsq", 0.0)
    phi = model.features(data.x_train).double()
    targets = torch.nn.functional.one_hot(data.y_train, 3).double()
    W = model.readout.weight.double().T  # [p, classes]
    # interpolates the one-hot targets ...
    torch.testing.assert_close(phi @ W, targets, atol=1e-4, rtol=0)
    # ... with the pseudo-inverse solution, which lies in the row space of phi (hence has the least norm) ...
    torch.testing.assert_close(W, torch.linalg.pinv(phi) @ targets, atol=1e-5, rtol=1e-4)
    projector = torch.linalg.pinv(phi) @ phi
    torch.testing.assert_close(projector @ W, W, atol=1e-5, rtol=1e-4)
    # ... and any other interpolating readout (add a null-space direction) is longer.
    other = W + (torch.eye(40, dtype=torch.float64) - projector) @ torch.randn(40, 3, dtype=torch.float64)
    torch.testing.assert_close(phi @ other, targets, atol=1e-6, rtol=0)
    assert other.norm() > W.norm()
    train_error, _ = evaluate(Single(model), data.x_train, data.y_train, 1)
    assert train_error.item() == 0
    assert random_features.scores(model, data.x_train, data.y_train, 3)[1] < 1e-8  # the squared error


def test_ridge_matches_its_normal_equations_and_tends_to_lstsq():
    data = _tiny_problem(n=20)
    model, _ = _build("random_features", 8, (5,), n_classes=3)  # p < n: the ridge system is well posed
    phi = model.features(data.x_train).double()
    targets = torch.nn.functional.one_hot(data.y_train, 3).double()
    for lam in (0.1, 3.0):
        random_features.fit(model, data, "ridge", lam)
        expected = torch.linalg.solve(phi.T @ phi + lam * torch.eye(8, dtype=torch.float64), phi.T @ targets)
        torch.testing.assert_close(model.readout.weight.double().T, expected, atol=1e-5, rtol=1e-4)
    random_features.fit(model, data, "ridge", 0.0)
    ridge0 = model.readout.weight.clone()
    random_features.fit(model, data, "lstsq", 0.0)
    torch.testing.assert_close(ridge0, model.readout.weight)
    with pytest.raises(ValueError, match="not a closed form"):
        random_features.fit(model, data, "gd", 0.0)


def test_random_relu_features_peak_at_p_equal_n_on_mnist1d(data_cache):
    """Double descent in miniature (design §5 at a tenth of the scale): n = 200, p = 40, 200, 1000."""
    cfg = compose(["model=random_features", "data.num_samples=2000", "n_train=200"])
    data = load(cfg.data)
    errors = []
    for p in (40, 200, 1000):
        model, _ = _build("random_features", p, data.input_shape)
        random_features.fit(model, data, "lstsq", 0.0)
        errors.append(evaluate(Single(model), data.x_test, data.y_test, 1)[0].item())
    low, peak, high = errors
    assert peak > 0.85 and peak > low + 0.05 and peak > high + 0.05, errors
