"""The regularizer protocol (see ddescent.regularizers) and the penalty schedule every regularizer shares."""

from __future__ import annotations

import torch
from torch import nn


class Regularizer(nn.Module):
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

    def finish(self, net: nn.Module, data, cfg) -> dict:
        return {}


class Penalty:
    """The term added per step: (λ / n_train) · Ω(w), off until `start_epoch` (pretraining), then ramped in
    linearly over `ramp_epochs`."""

    def __init__(self, regularizer: Regularizer, weights: list[torch.Tensor], cfg, n_train: int):
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
