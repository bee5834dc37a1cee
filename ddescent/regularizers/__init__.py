"""Regularizers: the lambda * Omega(w) term added to the data loss (Bishop eq 9.23).

Convention (used everywhere): the data term is the cross-entropy averaged over a batch, so the penalty is
added per step as (lambda / n_train) * Omega(w). This is the book's objective sum_n E_n(w) + lambda * Omega(w)
divided by n_train, so lambda means the same thing whatever the batch or training-set size.

A regularizer module provides `build(cfg) -> nn.Module | None`; the module has `penalty(weights) -> Tensor`
(Omega, not multiplied by lambda) and may carry learnable parameters of its own.
"""

from __future__ import annotations

from types import ModuleType

from ddescent.regularizers import none

REGULARIZERS: dict[str, ModuleType] = {"none": none}


def build(cfg):
    return REGULARIZERS[cfg.name].build(cfg)
