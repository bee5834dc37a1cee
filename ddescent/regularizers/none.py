"""No regularization: the objective is the data term alone."""

from ddescent.regularizers.base import Regularizer, RegularizerModule


class Nothing(RegularizerModule):
    pass


def build(cfg) -> Nothing:
    return Nothing()


REGULARIZER = Regularizer("none", build=build)
