"""No regularization: the objective is the data term alone."""

from ddescent.regularizers.base import Regularizer

# Whether Omega splits exactly across the members of a batched net (zero padding adds nothing to it).
PACKABLE = True
RULES: dict = {}


class Nothing(Regularizer):
    pass


def build(cfg) -> Nothing:
    return Nothing()
