"""The linear teacher-student: a regression task whose generating process is known, so a student's test risk
is computed exactly rather than sampled. Embedded and seeded; nothing is downloaded.

    z ~ N(0, I_d),   x = F z   (F diagonal, in blocks of equal scale),   y = z^T w + sigma * eps

The teacher (`data.teacher`): null (isotropic), w ~ N(0, I/d), so ||w||^2 ~ 1; or powerlaw, w_j proportional to
j^(-alpha) with random signs, normalised to ||w|| = 1, so the first coordinates carry most of the signal and a
student on the first p of them first gains from more features (a U in p before the peak at p = n: Belkin, Hsu & Xu's
expected risk holds for any fixed w, through ||w_{<=p}||^2 and ||w_{>p}||^2). F comes from `data.blocks`, a list of [size, scale] whose sizes
add up to `data.dim`, or, when that is null, from two blocks: `dim - slow` "fast" coordinates at `scale` and
`slow` coordinates at `scale / kappa` (kappa = 1: isotropic; kappa = 10: a slow block that gradient descent
learns ten-squared times later, the two time scales of Heckel & Yilmaz 2021 and Pezeshki et al. 2022).

Seeds: one seed decides everything a run sees, `data_seed` (as ddescent.data.load subsamples with it too),
in separate streams for the teacher, the pool and the test sample, so that changing the pool's size keeps the
teacher. `data.teacher_seed` (null by default) draws the teacher from its own seed instead, to hold it fixed
while data_seed varies.

The pool (`pool_size` samples) carries noisy targets; the test sample (`test_size`) has clean targets
y = z^T w, so its mean squared error estimates the excess risk ||w - F v||^2 without sigma^2. `Pool.truth`
({"teacher": w, "scales": diag F, "noise": sigma, "blocks": ((size, scale), ...)}) lets a solver compute the
exact risk instead; ddescent.models.linear does.
"""

from __future__ import annotations

import functools

import numpy as np

from ddescent.errors import ConfigError
from ddescent.checks import NONNEG_INT, POSITIVE, POSITIVE_INT, Rule, number
from ddescent.data.base import Dataset, Pool

N_CLASSES = 1  # regression: one real-valued output
MAX_SCALE = 1e6  # of data.noise and data.scale (see RULES)
TEACHER_STREAM, POOL_STREAM, TEST_STREAM = 10, 11, 12  # distinct from load's subsampling and noise streams


def _blocks_ok(v) -> bool:
    if v is None:
        return True
    try:
        return len(v) > 0 and all(len(b) == 2 and POSITIVE_INT.check(b[0]) and POSITIVE.check(b[1])
                                  and b[1] <= MAX_SCALE for b in v)
    except TypeError:
        return False


RULES = {
    "data.dim": POSITIVE_INT,
    "data.kappa": POSITIVE,
    "data.scale": Rule(number(lambda v: 0 < v <= MAX_SCALE), "a number in (0, 1e6]"),
    "data.slow": NONNEG_INT,
    # The signal's scale is 1 (||w|| ~ 1): noise or feature scales far beyond it only overflow the float32 pool and
    # its squares (data.noise=1e300 made the exact risk's sigma^2 an OverflowError, data.scale=1e300 the SVD fail).
    "data.noise": Rule(number(lambda v: 0 <= v <= MAX_SCALE), "a number in [0, 1e6]"),
    "data.blocks": Rule(_blocks_ok, "null or a list of [size, scale] pairs (size a positive integer, 0 < scale <= 1e6) "
                                    "whose sizes add up to data.dim"),
    "data.pool_size": POSITIVE_INT,
    "data.test_size": POSITIVE_INT,
    "data.teacher_seed": Rule(lambda v: v is None or NONNEG_INT.check(v), "null (use data_seed) or an integer >= 0"),
    "data.teacher": Rule(lambda v: v in (None, "isotropic", "powerlaw"), "null (isotropic), isotropic or powerlaw"),
    "data.alpha": Rule(lambda v: v is None or POSITIVE.check(v), "null or a number > 0 (powerlaw: w_j ~ j^-alpha)"),
    # A regression task has no labels to flip: its noise is data.noise.
    "label_noise": Rule(lambda v: v == 0, "0 with data=teacher_student (a regression task; set its target noise "
                                          "with data.noise)"),
}


def input_shape(cfg) -> tuple[int, ...]:
    return (int(cfg["dim"]),)


def pool_size(cfg) -> int:
    return int(cfg["pool_size"])


def n_classes(cfg) -> int:
    return N_CLASSES


def blocks(cfg) -> list[tuple[int, float]]:
    """The [size, scale] blocks of F (ConfigError for a spec that does not add up to data.dim)."""
    d = int(cfg["dim"])
    if cfg.get("blocks") is not None:
        spec = [(int(size), float(scale)) for size, scale in cfg["blocks"]]
        total = sum(size for size, _ in spec)
        if total != d:
            raise ConfigError(f"data.blocks={[list(b) for b in spec]}: the block sizes add up to {total}, not "
                              f"data.dim={d}; give [size, scale] pairs whose sizes add up to data.dim")
        return spec
    slow, scale = int(cfg["slow"]), float(cfg["scale"])
    if slow > d:
        raise ConfigError(f"data.slow={slow}: the slow block cannot exceed data.dim={d}; choose 0 <= slow <= {d}")
    spec = [(d - slow, scale), (slow, scale / float(cfg["kappa"]))]
    return [b for b in spec if b[0] > 0]


def scales(cfg) -> np.ndarray:
    """diag F, one scale per input coordinate."""
    return np.concatenate([np.full(size, scale) for size, scale in blocks(cfg)])


def check(cfg) -> None:
    """What the per-key RULES (applied by ddescent.config.validate) cannot see: blocks that add up to data.dim, and
    a power-law teacher's alpha."""
    blocks(cfg)
    if cfg.get("teacher") == "powerlaw" and cfg.get("alpha") is None:
        raise ConfigError("data.alpha=None: data.teacher=powerlaw needs its decay, a number > 0 (w_j ~ j^-alpha)")


def teacher(cfg) -> np.ndarray:
    """The teacher w of a data config (data.teacher), from data.teacher_seed or else data_seed."""
    return _teacher(int(cfg["dim"]), int(cfg["data_seed"]), cfg.get("teacher_seed"), cfg.get("teacher"),
                    cfg.get("alpha"))


def _teacher(d: int, data_seed: int, teacher_seed: int | None, kind: str | None = None,
             alpha: float | None = None) -> np.ndarray:
    rng = np.random.default_rng([data_seed if teacher_seed is None else int(teacher_seed), TEACHER_STREAM])
    if kind == "powerlaw":
        w = rng.choice([-1.0, 1.0], d) * np.arange(1, d + 1) ** -float(alpha)
        return w / np.linalg.norm(w)
    return rng.standard_normal(d) / np.sqrt(d)


def draw(w: np.ndarray, f: np.ndarray, sigma: float, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n samples (x = F z, y = z^T w + sigma eps), float64."""
    z = rng.standard_normal((n, len(w)))
    y = z @ w + sigma * rng.standard_normal(n)
    return z * f, y


def load(cfg):
    a = _generate(int(cfg.dim), tuple(map(tuple, blocks(cfg))), float(cfg.noise), int(cfg.pool_size),
                  int(cfg.test_size), int(cfg.data_seed), cfg.get("teacher_seed"), cfg.get("teacher"),
                  None if cfg.get("alpha") is None else float(cfg.alpha))
    return Pool(a["x"], a["y"], a["x_test"], a["y_test"], n_classes=N_CLASSES, truth=a["truth"])


@functools.lru_cache(maxsize=8)
def _generate(d, spec, sigma, n_pool, n_test, data_seed, teacher_seed, kind, alpha) -> dict:
    f = np.concatenate([np.full(size, scale) for size, scale in spec])
    w = _teacher(d, data_seed, teacher_seed, kind, alpha)
    x, y = draw(w, f, sigma, n_pool, np.random.default_rng([data_seed, POOL_STREAM]))
    x_test, y_test = draw(w, f, 0.0, n_test, np.random.default_rng([data_seed, TEST_STREAM]))
    out = {"x": x, "y": y, "x_test": x_test, "y_test": y_test}
    out = {k: v.astype(np.float32) for k, v in out.items()}
    for a in (w, f):
        a.flags.writeable = False  # the truth is shared by every run of this process
    out["truth"] = {"teacher": w, "scales": f, "noise": sigma, "blocks": spec}
    return out


# Generated from its config alone (no files); regression, so its one "class" is the output.
DATASET = Dataset("teacher_student", load=load, input_shape=input_shape, pool_size=pool_size,
                  n_classes=n_classes, check=check, rules=RULES)
