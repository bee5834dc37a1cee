"""L2 regularization (Bishop eq 9.1): Omega(w) = 1/2 w^T w, so lambda * Omega = lambda/2 w^T w.

This is a term of the objective, scaled like every regularizer by lambda / n_train per step (see
ddescent.regularizers); it is not the optimizer's weight_decay, which acts on the update (and for Adam is not
even equivalent to a penalty).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from ddescent.checks import NONNEG_INT
from ddescent.regularizers.base import Regularizer, RegularizerModule

RULES = {"regularizer.start_epoch": NONNEG_INT, "regularizer.ramp_epochs": NONNEG_INT}


class L2(RegularizerModule):
    def __init__(self, include_biases: bool = False):
        super().__init__()
        self.include_biases = bool(include_biases)

    def penalty(self, weights: Iterable[torch.Tensor]) -> torch.Tensor:
        """1/2 sum of squares over every element of every tensor (not multiplied by lambda)."""
        squares = [w.square().sum() for w in weights]
        return 0.5 * torch.stack(squares).sum() if squares else torch.zeros(())

    def extra_repr(self) -> str:
        return f"include_biases={self.include_biases}"


def build(cfg) -> L2:
    return L2(include_biases=bool(cfg.get("include_biases", False)))


REGULARIZER = Regularizer("l2", build=build, rules=RULES)
