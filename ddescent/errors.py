"""The errors ddescent raises on purpose: bad input (one line, exit code 2) and runs that did not finish."""

from __future__ import annotations


class ConfigError(ValueError):
    """Bad input: reported as one line naming the key and what is allowed, exit code 2."""


class RunsFailed(RuntimeError):
    """Some runs of a sweep failed or were left to another live process; `outcomes` says which and why. The
    runs that finished are stored."""

    def __init__(self, message: str, outcomes: list):
        super().__init__(message)
        self.outcomes = outcomes
