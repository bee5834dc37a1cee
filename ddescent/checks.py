"""Rules for config values: one line of what is allowed, and the test. Modules that own config keys (the
families, datasets and regularizers) declare their rules with these; `ddescent.config` gathers them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from ddescent.errors import ConfigError

__all__ = ["ConfigError", "Rule", "whole", "number", "POSITIVE_INT", "NONNEG_INT", "NONNEG", "POSITIVE", "RATE",
           "OPTIONAL_POSITIVE_INT", "BOOL", "one_of"]


@dataclass(frozen=True)
class Rule:
    check: Callable[[Any], bool]
    allowed: str


def whole(pred: Callable[[int], bool]) -> Callable[[Any], bool]:
    """An int (not a bool) that satisfies pred; at most 2**63 - 1, what a parquet int64 column holds."""
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and abs(v) < 2 ** 63 and pred(v)


def number(pred: Callable[[float], bool]) -> Callable[[Any], bool]:
    """A finite int or float (not a bool) that satisfies pred: inf and nan are never a valid setting."""
    return lambda v: (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))
                      and pred(float(v)))


def one_of(*choices) -> Rule:
    return Rule(lambda v: v in choices, ", ".join(map(str, choices[:-1])) + f" or {choices[-1]}" if len(choices) > 1
                else str(choices[0]))


POSITIVE_INT = Rule(whole(lambda v: v > 0), "a positive integer")
NONNEG_INT = Rule(whole(lambda v: v >= 0), "an integer >= 0")
NONNEG = Rule(number(lambda v: v >= 0), "a finite number >= 0")
POSITIVE = Rule(number(lambda v: v > 0), "a finite number > 0")
RATE = Rule(number(lambda v: 0 <= v < 1), "a number in [0, 1)")
OPTIONAL_POSITIVE_INT = Rule(lambda v: v is None or POSITIVE_INT.check(v), "a positive integer or null (all)")
BOOL = Rule(lambda v: isinstance(v, bool), "true or false")
