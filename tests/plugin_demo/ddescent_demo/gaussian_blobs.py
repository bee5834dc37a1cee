"""Classes as Gaussian blobs around random centres in `dim` dimensions."""

import numpy as np

from ddescent.checks import POSITIVE_INT
from ddescent.data.base import Dataset, Pool


def load(cfg):
    rng = np.random.default_rng(int(cfg.generator_seed))
    centres = rng.standard_normal((int(cfg.classes), int(cfg.dim)))

    def draw(n):
        y = rng.integers(0, int(cfg.classes), n)
        return (centres[y] + float(cfg.spread) * rng.standard_normal((n, int(cfg.dim)))).astype(np.float32), y

    x, y = draw(int(cfg.pool_size))
    x_test, y_test = draw(int(cfg.test_size))
    return Pool(x, y, x_test, y_test, n_classes=int(cfg.classes))


DATASET = Dataset("gaussian_blobs", load=load, input_shape=lambda cfg: (int(cfg.dim),),
                  pool_size=lambda cfg: int(cfg.pool_size), n_classes=lambda cfg: int(cfg.classes),
                  rules={"data.dim": POSITIVE_INT, "data.classes": POSITIVE_INT})
