"""L1 regularization: Omega(w) = sum |w| (the lasso's penalty)."""

import torch

from ddescent.regularizers.base import Regularizer, RegularizerModule


class L1(RegularizerModule):
    def penalty(self, weights):
        return torch.stack([w.abs().sum() for w in weights]).sum()


REGULARIZER = Regularizer("l1", build=lambda cfg: L1())
