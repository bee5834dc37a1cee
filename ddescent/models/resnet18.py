"""Pre-activation ResNet18 (He et al. 2016, "Identity mappings") with stage widths [k, 2k, 4k, 8k]; `width` = k.

The CIFAR variant used by Nakkiran et al. (2019): a 3x3 stem convolution (no pooling), four stages of two
BN-ReLU-Conv basic blocks with strides [1, 2, 2, 2], a 1x1 convolution on the shortcut where the shape changes,
a final BN-ReLU (the pre-activation design's last activation), global average pooling and a linear layer.
Convolutions have no bias (BatchNorm follows each). k = 64 on 3x32x32 with 10 classes is 11,172,170 parameters.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from ddescent.checks import POSITIVE_INT, ConfigError
from ddescent.models.base import Family, init_default
from ddescent.models.packed_conv import checked, pack

RULES = {"model.width": POSITIVE_INT}

STAGES = ((1, 1), (2, 2), (4, 2), (8, 2))  # (width multiplier, stride of the stage's first block)
BLOCKS = 2  # per stage: [2, 2, 2, 2] is ResNet18


def _channels(input_shape: tuple[int, ...]) -> int:
    if len(input_shape) != 3:
        raise ConfigError(f"model=resnet18: needs images (channels x height x width); "
                          f"this dataset gives {tuple(input_shape)}")
    return int(input_shape[0])


def _block_params(c_in: int, c_out: int, stride: int) -> int:
    shortcut = c_in * c_out if (stride != 1 or c_in != c_out) else 0
    return 2 * c_in + 9 * c_in * c_out + 2 * c_out + 9 * c_out * c_out + shortcut


def n_params(cfg, input_shape: tuple[int, ...], n_classes: int) -> int:
    k = int(cfg.width)
    total, c_in = 9 * _channels(input_shape) * k, k
    for mult, stride in STAGES:
        for b in range(BLOCKS):
            total += _block_params(c_in, mult * k, stride if b == 0 else 1)
            c_in = mult * k
    return total + 2 * c_in + c_in * n_classes + n_classes


def check(cfg) -> None:
    if float(cfg.width) != int(cfg.width):
        raise ConfigError(f"model.width={cfg.width}: the resnet18's width must be a whole number of channels")


@checked()
class PreActBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.shortcut = (nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)
                         if stride != 1 or c_in != c_out else None)

    def forward(self, x):
        out = F.relu(self.bn1(x))
        # A projection shortcut reads the activated input; an identity shortcut keeps x itself untouched.
        skip = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv2(F.relu(self.bn2(self.conv1(out))))
        return out + skip


@checked()
class PreActResNet18(nn.Module):
    def __init__(self, c_in: int, k: int, n_classes: int):
        super().__init__()
        self.stem = nn.Conv2d(c_in, k, 3, padding=1, bias=False)
        blocks, c = [], k
        for mult, stride in STAGES:
            for b in range(BLOCKS):
                blocks.append(PreActBlock(c, mult * k, stride if b == 0 else 1))
                c = mult * k
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(c)
        self.linear = nn.Linear(c, n_classes)

    def forward(self, x):
        out = F.relu(self.bn(self.blocks(self.stem(x))))
        return self.linear(out.mean(dim=(2, 3)))  # global average pool (4x4 -> 1 on CIFAR)


def build(cfg, input_shape, n_classes, generator):
    return init_default(PreActResNet18(_channels(input_shape), int(cfg.width), n_classes), generator)


FAMILY = Family("resnet18", build=build, n_params=n_params, check=check, rules=RULES, pack=pack,
                pack_on_cpu=False)
