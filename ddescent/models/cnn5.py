"""Nakkiran et al. (2019)'s 5-layer CNN ("mCNN"): four Conv3x3-BatchNorm-ReLU layers of widths [k, 2k, 4k, 8k]
with max-pooling, then a linear layer; `width` = k.

Pooling follows the paper's code (MaxPool [1, 2, 2, 8] on 32x32 CIFAR): layers 2 and 3 halve the map and a
global max-pool ends layer 4 (8x8 -> 1x1 on CIFAR, the same as its MaxPool(2) then MaxPool(4)), so any image size
works. Convolutions keep their bias, as in the paper's code, although BatchNorm makes it redundant.

n_params = sum over layers of (9 c_in c_out + c_out) [conv] + 2 c_out [BatchNorm], plus 8k classes + classes.
"""

from __future__ import annotations

from torch import nn

from ddescent.checks import POSITIVE_INT, ConfigError
from ddescent.models.base import Family, init_default
from ddescent.models.packed_conv import pack

RULES = {"model.width": POSITIVE_INT}

MULTIPLIERS = (1, 2, 4, 8)
POOL_AFTER = (False, True, True, False)  # 2x2 max-pool after these layers; the last layer pools globally


def _channels(input_shape: tuple[int, ...]) -> int:
    if len(input_shape) != 3:
        raise ConfigError(f"model=cnn5: needs images (channels x height x width); "
                          f"this dataset gives {tuple(input_shape)}")
    return int(input_shape[0])


def n_params(cfg, input_shape: tuple[int, ...], n_classes: int) -> int:
    c_in, k = _channels(input_shape), int(cfg.width)
    total = 0
    for m in MULTIPLIERS:
        c_out = m * k
        total += 9 * c_in * c_out + c_out + 2 * c_out
        c_in = c_out
    return total + c_in * n_classes + n_classes


def check(cfg) -> None:
    if float(cfg.width) != int(cfg.width):
        raise ConfigError(f"model.width={cfg.width}: the cnn5's width must be a whole number of channels")


def build(cfg, input_shape, n_classes, generator):
    c_in, k = _channels(input_shape), int(cfg.width)
    layers: list[nn.Module] = []
    for m, pool in zip(MULTIPLIERS, POOL_AFTER):
        c_out = m * k
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=True), nn.BatchNorm2d(c_out), nn.ReLU()]
        if pool:
            layers.append(nn.MaxPool2d(2))
        c_in = c_out
    layers += [nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(c_in, n_classes)]
    return init_default(nn.Sequential(*layers), generator)


FAMILY = Family("cnn5", build=build, n_params=n_params, check=check, rules=RULES, pack=pack, pack_on_cpu=False)
