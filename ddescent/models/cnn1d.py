"""The MNIST-1D notebook's CNN (Greydanus 2020): three strided 1-D convolutions of `width` = c channels, ReLU,
then a linear classifier on the flattened feature map.

    Conv1d(1, c, 5, stride 2, pad 1) -> Conv1d(c, c, 3, s 2, p 1) -> Conv1d(c, c, 3, s 2, p 1) -> Linear(L3 c, classes)

For MNIST-1D (length 40) the map shrinks 40 -> 19 -> 10 -> 5, so n_params = 6c^2 + 58c + 10.
"""

from __future__ import annotations


from torch import nn

from ddescent.checks import POSITIVE_INT, ConfigError
from ddescent.models.base import Family, init_default
from ddescent.models.packed_conv import checked, pack

RULES = {"model.width": POSITIVE_INT}

LAYERS = ((5, 2, 1), (3, 2, 1), (3, 2, 1))  # (kernel, stride, padding) of the three convolutions


def _signal(input_shape: tuple[int, ...]) -> tuple[int, int]:
    """(channels, length) of a 1-D input: (L,) is one channel, (C, L) is C channels."""
    if len(input_shape) == 1:
        return 1, int(input_shape[0])
    if len(input_shape) == 2:
        return int(input_shape[0]), int(input_shape[1])
    raise ConfigError(f"model=cnn1d: needs 1-D inputs (length, or channels x length); "
                      f"this dataset gives {tuple(input_shape)}")


def _out_length(length: int) -> int:
    for kernel, stride, pad in LAYERS:
        length = (length + 2 * pad - kernel) // stride + 1
    if length < 1:
        raise ConfigError("model=cnn1d: the input is too short for three strided convolutions")
    return length


def n_params(cfg, input_shape: tuple[int, ...], n_classes: int) -> int:
    c_in, length = _signal(input_shape)
    c, k1, k2 = int(cfg.width), LAYERS[0][0], LAYERS[1][0]
    convs = (c_in * k1 * c + c) + 2 * (c * k2 * c + c)
    return convs + _out_length(length) * c * n_classes + n_classes


def check(cfg) -> None:
    if float(cfg.width) != int(cfg.width):
        raise ConfigError(f"model.width={cfg.width}: the cnn1d's width must be a whole number of channels")


@checked(reshapes_signal=True)
class CNN1d(nn.Module):
    def __init__(self, c_in: int, length: int, c: int, n_classes: int):
        super().__init__()
        self.c_in = c_in
        layers: list[nn.Module] = []
        for i, (kernel, stride, pad) in enumerate(LAYERS):
            layers += [nn.Conv1d(c_in if i == 0 else c, c, kernel, stride=stride, padding=pad), nn.ReLU()]
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.linear = nn.Linear(_out_length(length) * c, n_classes)

    def forward(self, x):
        return self.linear(self.features(x.reshape(x.shape[0], self.c_in, -1)))


def build(cfg, input_shape, n_classes, generator):
    c_in, length = _signal(input_shape)
    return init_default(CNN1d(c_in, length, int(cfg.width), n_classes), generator)


FAMILY = Family("cnn1d", build=build, n_params=n_params, check=check, rules=RULES, pack=pack, pack_on_cpu=False)
