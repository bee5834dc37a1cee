"""Regularizers, one module each (see `Regularizer` in ddescent.regularizers.base: the spec, the module that
computes λΩ(w), and the penalty schedule), found by discovery (ddescent.component): a newcomer adds one as a
module with `REGULARIZER = Regularizer(...)` and conf/regularizer/<name>.yaml."""

from __future__ import annotations

from ddescent import component
from ddescent.regularizers.base import Penalty, Regularizer, RegularizerModule

__all__ = ["Penalty", "Regularizer", "RegularizerModule", "build", "regularizer", "regularizers"]


def regularizers() -> dict[str, Regularizer]:
    return component.registry("regularizer")


def regularizer(cfg_or_name) -> Regularizer:
    return component.get("regularizer", cfg_or_name if isinstance(cfg_or_name, str) else cfg_or_name.name)


def build(cfg) -> RegularizerModule:
    return regularizer(cfg).build(cfg)
