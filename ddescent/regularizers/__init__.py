"""Regularizers: the lambda * Omega(w) term added to the data loss (Bishop eq 9.23).

Convention (used everywhere): the data term is the cross-entropy averaged over a batch, so the penalty is
added per step as (lambda / n_train) * Omega(w). This is the book's objective sum_n E_n(w) + lambda * Omega(w)
divided by n_train, so lambda means the same thing whatever the batch or training-set size.

A regularizer module provides `build(cfg) -> nn.Module | None`; the module has `penalty(weights) -> Tensor`
(Omega, not multiplied by lambda), `regularized(model)` (the weights it covers) and may carry learnable
parameters of its own (`param_groups(lr)`).
"""

from __future__ import annotations

from types import ModuleType

import torch

from ddescent.regularizers import l2, none, sws
from ddescent.regularizers.sws import SoftWeightSharing

REGULARIZERS: dict[str, ModuleType] = {"none": none, "l2": l2, "sws": sws}
PACKABLE = ("none", "l2")  # penalties that split exactly across packed members (zero padding adds nothing)

__all__ = ["REGULARIZERS", "SoftWeightSharing", "Penalty", "build"]


def build(cfg):
    return REGULARIZERS[cfg.name].build(cfg)


class Penalty:
    """The term added per step: (lambda / n_train) * Omega(w), off until `start_epoch` (pretraining), then ramped
    in linearly over `ramp_epochs`. A prior with `init_means: weights` spreads its means over the weights as they
    are when it switches on."""

    def __init__(self, module, weights: list[torch.Tensor], cfg, n_train: int):
        self.module, self.weights = module, weights
        self.scale = float(cfg.strength) / n_train
        self.start, self.ramp = int(cfg.get("start_epoch", 0)), int(cfg.get("ramp_epochs", 0))
        self.init_means = cfg.get("init_means") == "weights" and hasattr(module, "init_from")

    def __call__(self, epoch: int) -> torch.Tensor | None:
        if epoch <= self.start or self.scale == 0:
            return None
        if self.init_means and epoch == self.start + 1:
            self.module.init_from(self.weights)
            self.init_means = False
        ramp = min(1.0, (epoch - self.start) / self.ramp) if self.ramp else 1.0
        return (self.scale * ramp) * self.module.penalty(self.weights)
