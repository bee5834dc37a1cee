"""What a model family is (`Family`), the batched interface every trained net has (`Batched`), and what every
family shares: exact parameter counts and PyTorch's default initialisation drawn from an explicit generator."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ddescent.component import Component


@dataclass(frozen=True, kw_only=True)
class Family(Component):
    """A model family: one size knob (`width`) and an exact parameter count. A module of ddescent.models (or a
    plugin's, see ddescent.component) that sets `FAMILY = Family("name", build=..., n_params=...)` is one.

    build(cfg, input_shape, n_classes, generator) -> nn.Module   initialised from `generator` alone; cfg is the
                                                                 model's config node (cfg.width, ...)
    n_params(cfg, input_shape, n_classes) -> int                 the closed form; raise ConfigError for a shape
                                                                 the family cannot take (planning calls it)
    pack(models) -> Batched                                      optional: G members of one architecture (widths
                                                                 may differ) as one batched net that trains each
                                                                 member exactly as alone; such runs can share one
                                                                 computation (see ddescent.packing)
    pack_on_cpu                                                  False where packing pays only on a GPU (grouped
                                                                 convolutions are slow on a CPU: measured in
                                                                 scripts/measure_pack_costs.py)
    solve(model, data, cfg) -> [row]                             optional: closed-form solvers, for the
    closed_form                                                  `model.solver` values listed here; rows are the
                                                                 run's evaluation points (epoch, step, *_error,
                                                                 *_loss); cfg is the run's whole config
    squared_loss                                                 True when the family is fitted by least squares
                                                                 (it interpolates where its train MSE reaches 0)
    neutral(config) -> {key: value}                              optional: settings of the run's config (a dict)
                                                                 its solver does not read, at their neutral value;
                                                                 the planner sets them before the run id is taken,
                                                                 so they neither split runs nor mislead the records
    """

    build: Callable
    n_params: Callable
    pack: Callable[[list[nn.Module]], nn.Module] | None = None
    pack_on_cpu: bool = True
    solve: Callable | None = None
    closed_form: tuple[str, ...] = ()
    squared_loss: bool = False
    neutral: Callable | None = None


class Batched(nn.Module):
    """The interface the training loop drives: G members at once, x [G, B, ...] -> outputs [G, B, ..., classes]."""

    def to_channels_last(self, example_input: torch.Tensor) -> None:
        """Put a net with 2-D convolutions into channels-last layout (NHWC: tensor cores prefer it), given a
        training batch [G, B, C, H, W]; nets without them, or other inputs, stay as they are. Conv weights are
        converted in place (call it before the optimizer's first step, whose state copies the weights' layout),
        and the first convolution's input is converted once per forward. The numbers are the same up to
        summation order."""
        convs = [m for m in self.modules() if isinstance(m, nn.Conv2d)]
        if example_input.dim() != 5 or not convs:
            return
        self.to(memory_format=torch.channels_last)
        convs[0].register_forward_pre_hook(
            lambda module, args: (args[0].contiguous(memory_format=torch.channels_last), *args[1:]))


class ManualBackward(Batched):
    """A batched net that writes its own backward pass for the data term (the packed MLP): the training step
    calls `backward_by_hand(x, y, label_smoothing)` instead of autograd on the loss, for speed. It must set
    every parameter's .grad to exactly what autograd would (each such net has a test that compares)."""

    def backward_by_hand(self, x: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0) -> None:
        raise NotImplementedError


class Single(Batched):
    """Gives a plain model the batched interface [G=1, B, ...] -> [1, B, ..., classes]."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x[0]).unsqueeze(0)


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
