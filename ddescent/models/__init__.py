"""Model families, one module each (see `Family` in ddescent.models.base), found by discovery
(ddescent.component): a newcomer adds a family as a module with `FAMILY = Family(...)` and conf/model/<name>.yaml."""

from __future__ import annotations

import torch
from torch import nn

from ddescent import component
from ddescent.models.base import Batched, Family, ManualBackward, Single, count_params, init_default

__all__ = ["Batched", "Family", "ManualBackward", "Single", "build", "check", "count_params", "family",
           "families", "init_default"]


def families() -> dict[str, Family]:
    return component.registry("model")


def family(cfg_or_name) -> Family:
    return component.get("model", cfg_or_name if isinstance(cfg_or_name, str) else cfg_or_name.name)


def check(cfg) -> None:
    fam = family(cfg)
    if fam.check is not None:
        fam.check(cfg)


def build(cfg, input_shape: tuple[int, ...], n_classes: int, generator: torch.Generator) -> nn.Module:
    return family(cfg).build(cfg, input_shape, n_classes, generator)
