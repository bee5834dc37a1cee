"""Model families (see `Family` in ddescent.models.base: the protocol, with its optional packing and closed-form
hooks). A newcomer adds a family as a module with a `FAMILY = Family(...)` and one line in FAMILIES below."""

from __future__ import annotations

import torch
from torch import nn

from ddescent import ConfigError
from ddescent.models import cnn1d, cnn5, linear, mlp, random_features, resnet18, transformer
from ddescent.models.base import Family, ManualBackward, count_params, init_default

FAMILIES: dict[str, Family] = {f.name: f for f in (
    mlp.FAMILY, transformer.FAMILY, cnn1d.FAMILY, cnn5.FAMILY, resnet18.FAMILY, random_features.FAMILY,
    linear.FAMILY,
)}

__all__ = ["FAMILIES", "Family", "ManualBackward", "build", "check", "count_params", "family", "init_default"]


def family(cfg) -> Family:
    if cfg.name not in FAMILIES:
        raise ConfigError(f"model={cfg.name}: unknown family; choose one of: {', '.join(FAMILIES)}")
    return FAMILIES[cfg.name]


def check(cfg) -> None:
    fam = family(cfg)
    if fam.check is not None:
        fam.check(cfg)


def build(cfg, input_shape: tuple[int, ...], n_classes: int, generator: torch.Generator) -> nn.Module:
    return family(cfg).build(cfg, input_shape, n_classes, generator)
