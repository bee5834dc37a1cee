"""What a model family is (`Family`), and what every family shares: exact parameter counts and PyTorch's default
initialisation drawn from an explicit generator."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from ddescent.checks import Rule


@dataclass(frozen=True)
class Family:
    """A model family: one size knob (`width`) and an exact parameter count.

    build(cfg, input_shape, n_classes, generator) -> nn.Module   initialised from `generator` alone
    n_params(cfg, input_shape, n_classes) -> int                 the closed form; raise ConfigError for a shape
                                                                 the family cannot take (planning calls it)
    check(cfg)                                                   impossible settings, as ConfigError
    rules                                                        {"model.key": Rule} for its config keys
    pack(models) -> nn.Module                                    optional: G members of one architecture (widths
                                                                 may differ) as one batched net [G, B, ...] ->
                                                                 [G, B, ..., classes] that trains each member exactly
                                                                 as alone; such runs can share one computation
    pack_on_cpu                                                  False where packing pays only on a GPU (grouped
                                                                 convolutions are slow on a CPU: measured in
                                                                 scripts/measure_pack_costs.py)
    solve(model, data, cfg) -> [row]                             optional: closed-form solvers, for the
    closed_form                                                  `model.solver` values listed here; rows are the
                                                                 run's evaluation points (epoch, step, *_error,
                                                                 *_loss)
    """

    name: str
    build: Callable
    n_params: Callable
    check: Callable | None = None
    rules: dict[str, Rule] = field(default_factory=dict)
    pack: Callable[[list[nn.Module]], nn.Module] | None = None
    pack_on_cpu: bool = True
    solve: Callable | None = None
    closed_form: tuple[str, ...] = ()


class ManualBackward(nn.Module):
    """A batched net that writes its own backward pass for the data term (the packed MLP): the training step
    calls `backward_by_hand(x, y, label_smoothing)` instead of autograd on the loss, for speed. It must set
    every parameter's .grad to exactly what autograd would (each such net has a test that compares)."""

    def backward_by_hand(self, x: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0) -> None:
        raise NotImplementedError


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
