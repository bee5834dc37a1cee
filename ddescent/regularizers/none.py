"""No regularization: the objective is the data term alone."""


def build(cfg):
    return None
