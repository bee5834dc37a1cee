"""Regularizers: the λΩ(w) term added to the data loss (Bishop eq 9.23), and whatever else a regularizer does
over a run's life.

Convention (used everywhere): the data term is the loss averaged over a batch, so the penalty is added per step
as (λ / n_train) · Ω(w). This is the book's objective Σₙ Eₙ(w) + λ Ω(w) divided by n_train, so λ means the same
thing whatever the batch or training-set size.

A regularizer is a `Regularizer` (an nn.Module: its own parameters are checkpointed with the run). Its module
provides `build(cfg) -> Regularizer`, `RULES` for its config keys and `PACKABLE`. The protocol, all of it optional but
`penalty`:

    penalty(weights) -> Tensor | None   Ω (not multiplied by λ); None: nothing to add
    regularized(net) -> [Parameter]     the weights Ω covers (by default every parameter but the biases)
    param_groups(lr) -> [dict]          optimizer groups of its own learnable parameters
    switch_on(weights)                  called once, when the penalty starts (after `start_epoch`)
    columns() -> dict                   extra columns recorded at every evaluation
    finish(net, data, cfg) -> dict      extra per-run results once training is over (a report, a quantization)

and its module declares `PACKABLE`: True when Ω splits exactly across the members of a batched net (zero padding
adds nothing to it), so that runs differing in width and seed can share one computation.
"""

from __future__ import annotations

from types import ModuleType

from ddescent.regularizers import l2, none, sws
from ddescent.regularizers.base import Penalty, Regularizer
from ddescent.regularizers.sws import SoftWeightSharing

REGULARIZERS: dict[str, ModuleType] = {"none": none, "l2": l2, "sws": sws}

__all__ = ["REGULARIZERS", "Regularizer", "SoftWeightSharing", "Penalty", "build"]


def build(cfg) -> Regularizer:
    return REGULARIZERS[cfg.name].build(cfg)
