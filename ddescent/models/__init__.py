"""Model families. Each has one size knob (`width`) and an exact parameter count.

A family module provides `build(cfg, input_shape, n_classes, generator) -> nn.Module` (initialised from
`generator` alone, never the global RNG), `n_params(cfg, input_shape, n_classes) -> int` (the closed
form), and optionally `check(cfg)` for impossible shapes.
"""

from __future__ import annotations

import math
from types import ModuleType

import torch
from torch import nn

from ddescent import ConfigError
from ddescent.models import mlp, transformer
from ddescent.models import cnn1d, cnn5, random_features, resnet18

FAMILIES: dict[str, ModuleType] = {"mlp": mlp, "transformer": transformer, "cnn1d": cnn1d, "cnn5": cnn5,
                                    "resnet18": resnet18, "random_features": random_features}


def family(cfg) -> ModuleType:
    if cfg.name not in FAMILIES:
        raise ConfigError(f"model={cfg.name}: unknown family; choose one of: {', '.join(FAMILIES)}")
    return FAMILIES[cfg.name]


def check(cfg) -> None:
    mod = family(cfg)
    if hasattr(mod, "check"):
        mod.check(cfg)


def build(cfg, input_shape: tuple[int, ...], n_classes: int, generator: torch.Generator) -> nn.Module:
    return family(cfg).build(cfg, input_shape, n_classes, generator)


def count_params(model: nn.Module) -> int:
    """Trainable parameters, counted from the module itself."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@torch.no_grad()
def init_default(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """PyTorch's default initialisation (kaiming-uniform weights, fan-in-uniform biases, unit norms),
    drawn from `generator` so that a run's seed alone decides its starting point."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
            if m.bias is not None:
                fan_in = m.weight[0].numel()
                bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
                nn.init.uniform_(m.bias, -bound, bound, generator=generator)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)):
            if getattr(m, "weight", None) is not None:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, generator=generator)
    return model
