"""A deep linear network: input -> `depth` linear layers of `width` units (no activation) -> classes."""

import math

from torch import nn

from ddescent.checks import POSITIVE_INT
from ddescent.models.base import Family, init_default


def n_params(cfg, input_shape, n_classes):
    sizes = [math.prod(input_shape), *[int(cfg.width)] * int(cfg.depth), n_classes]
    return sum(a * b + b for a, b in zip(sizes, sizes[1:]))


def build(cfg, input_shape, n_classes, generator):
    sizes = [math.prod(input_shape), *[int(cfg.width)] * int(cfg.depth), n_classes]
    layers = [nn.Flatten(), *(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))]
    return init_default(nn.Sequential(*layers), generator)


FAMILY = Family("deep_linear", build=build, n_params=n_params, rules={"model.depth": POSITIVE_INT})
