"""What a regularizer is (`Regularizer`, its spec), the module that computes its term (`RegularizerModule`), and
the penalty schedule every regularizer shares (`Penalty`).

Convention (used everywhere): the data term is the loss averaged over a batch, so the penalty is added per step
as (λ / n_train) · Ω(w). This is the book's objective Σₙ Eₙ(w) + λ Ω(w) divided by n_train, so λ means the same
thing whatever the batch or training-set size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ddescent.component import Component


@dataclass(frozen=True, kw_only=True)
class Regularizer(Component):
    """A regularizer: a module of ddescent.regularizers (or a plugin's) that sets `REGULARIZER = Regularizer(...)`.

    build(cfg) -> RegularizerModule     its term, from its config node (cfg.strength, ...)
    finish(module, net, data, cfg)      optional: extra per-run results once training is over (soft weight
                                        sharing's quantization); cfg is the run's whole config; returns a dict of
                                        columns
    packable                            True when Ω splits exactly across the members of a batched net (zero
                                        padding adds nothing to it) and the regularizer keeps no state of its own
                                        per run, so that runs differing in width and seed can share one computation.
                                        A regularizer with a `finish` is never packed (finish sees one run's net).
    """

    build: Callable
    finish: Callable | None = None
    packable: bool = True

    def __post_init__(self):
        if self.packable and self.finish is not None:
            raise ValueError(f"regularizer {self.name}: a regularizer with a finish step cannot be packable "
                             "(finish sees one run's net)")


class RegularizerModule(nn.Module):
    """Ω and its own learnable parameters (an nn.Module: they are checkpointed with the run). All optional but
    `penalty`:

        penalty(weights) -> Tensor | None   Ω (not multiplied by λ); None: nothing to add
        regularized(net) -> [Parameter]     the weights Ω covers (by default every parameter but the biases)
        param_groups(lr) -> [dict]          optimizer groups of its own learnable parameters
        switch_on(weights)                  called once, when the penalty starts (after `start_epoch`)
        columns() -> dict                   extra columns recorded at every evaluation
    """

    include_biases = False

    def penalty(self, weights: list[torch.Tensor]) -> torch.Tensor | None:
        return None

    def regularized(self, net: nn.Module) -> list[nn.Parameter]:
        """The parameters of `net` to penalise: those whose name lacks "bias" unless include_biases."""
        return [p for name, p in net.named_parameters() if self.include_biases or "bias" not in name]

    def param_groups(self, lr: float) -> list[dict]:
        return []

    def switch_on(self, weights: list[torch.Tensor]) -> None:
        pass

    def columns(self) -> dict:
        return {}


class Penalty:
    """The term added per step: (λ / n_train) · Ω(w), off until `start_epoch` (pretraining), then ramped in
    linearly over `ramp_epochs`."""

    def __init__(self, regularizer: RegularizerModule, weights: list[torch.Tensor], cfg, n_train: int):
        self.regularizer, self.weights = regularizer, weights
        self.scale = float(cfg.strength) / n_train
        self.start, self.ramp = int(cfg.get("start_epoch") or 0), int(cfg.get("ramp_epochs") or 0)
        self.switched_on = False

    def __call__(self, epoch: int) -> torch.Tensor | None:
        if epoch <= self.start or self.scale == 0:
            return None
        if epoch == self.start + 1 and not self.switched_on:  # (a resumed run past this point keeps its state)
            self.regularizer.switch_on(self.weights)
            self.switched_on = True
        omega = self.regularizer.penalty(self.weights)
        if omega is None:
            return None
        ramp = min(1.0, (epoch - self.start) / self.ramp) if self.ramp else 1.0
        return (self.scale * ramp) * omega
