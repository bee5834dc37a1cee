"""Theory drawn over the measurements: expected risks computed in numpy, one module per model.

    linear             the linear teacher-student (Belkin, Hsu & Xu 2019; gradient descent along its path)
    random_features    random-features ridge regression (Mei & Montanari 2019), its ridgeless limit
    ridge              ridge with isotropic features: exact finite-n risk by Monte Carlo, the Marchenko-Pastur limit
                       (Dobriban & Wager 2018; Hastie et al. 2019) and the optimal lambda (Nakkiran et al. 2020)
"""

from ddescent.linalg import gd_kwargs, gd_path, risk
from ddescent.schedule import eval_steps
from ddescent.theory import linear, random_features, ridge
from ddescent.theory.linear import epochwise, expected_gd_risk, gd_settings, min_norm_risk, modelwise, samplewise

__all__ = ["linear", "random_features", "ridge", "epochwise", "eval_steps", "expected_gd_risk", "gd_kwargs", "gd_path", "gd_settings", "min_norm_risk",
           "modelwise", "risk", "samplewise"]
