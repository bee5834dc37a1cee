"""Image options shared by the image datasets: per-channel normalisation (applied once, when the pool is loaded)
and data augmentation (random crop with padding 4 and horizontal flip, applied to each training batch on the
device it lives on).

Data config keys: `normalize` (bool), `mean` and `std` (one number per channel, for pixels scaled to [0, 1]),
`augment` (bool; the training loop reads it and calls `augment` on every training batch).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ddescent.checks import BOOL, ConfigError, Rule, number

RULES = {
    "data.root": Rule(lambda v: isinstance(v, str) and v.strip() != "", "a path to the folder holding the files"),
    "data.normalize": BOOL,
    "data.augment": Rule(lambda v: isinstance(v, bool), "true or false (random crop + horizontal flip)"),
    "data.mean": Rule(lambda v: isinstance(v, (list, tuple)) and all(number(lambda x: True)(x) for x in v),
                      "a list of numbers, one per channel"),
    "data.std": Rule(lambda v: isinstance(v, (list, tuple)) and all(number(lambda x: x > 0)(x) for x in v),
                     "a list of numbers > 0, one per channel"),
}

PAD = 4  # the CIFAR recipe's crop padding (Nakkiran et al. 2019, after He et al. 2016)


def check(cfg, channels: int) -> None:
    """Normalisation statistics must give one value per channel, and a positive std."""
    if not cfg.get("normalize", False):
        return
    for key in ("mean", "std"):
        values = cfg.get(key)
        if values is None or len(values) != channels:
            raise ConfigError(f"data.{key}={_show(values)}: {cfg.name} images have {channels} channel(s); "
                              f"give one value per channel")
    if any(float(s) <= 0 for s in cfg.std):
        raise ConfigError(f"data.std={_show(cfg.std)}: every std must be > 0")


def _show(values) -> str:
    return "null" if values is None else str(list(values))


def to_float(images: np.ndarray, cfg) -> np.ndarray:
    """uint8 images [N, C, H, W] -> float32 in [0, 1], then (x - mean) / std per channel when `normalize`."""
    x = images.astype(np.float32) / np.float32(255)
    if cfg.get("normalize", False):
        shape = (1, -1, 1, 1)
        x -= np.asarray(cfg.mean, np.float32).reshape(shape)
        x /= np.asarray(cfg.std, np.float32).reshape(shape)
    return x


def augmentation(cfg):
    """`data.augment: true` asks for random crops and flips of every training batch."""
    return augment if cfg.get("augment") else None


def augment(x: torch.Tensor, generator: torch.Generator, pad: int = PAD) -> torch.Tensor:
    """A random crop (zero padding `pad` on every side, then a window of the original size) and a random
    horizontal flip (probability 1/2), drawn independently for every image of a batch x [..., C, H, W].

    The batch stays where it is: random numbers come from `generator` (on its own device) and only the few
    offsets travel. Zero padding in normalised space is padding with the dataset's mean colour. The crop and
    the flip are one gather: a flipped crop reads the crop's columns right to left.
    """
    shape = x.shape
    x = x.reshape(-1, *shape[-3:])
    n, c, h, w = x.shape
    offsets = torch.randint(0, 2 * pad + 1, (2, n), generator=generator, device=generator.device).to(x.device)
    flip = (torch.rand(n, generator=generator, device=generator.device) < 0.5).to(x.device)
    rows = offsets[0, :, None] + torch.arange(h, device=x.device)  # [n, h] rows of the padded image
    cols = offsets[1, :, None] + torch.arange(w, device=x.device)  # [n, w]
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    padded = F.pad(x, (pad, pad, pad, pad))
    out = padded[torch.arange(n, device=x.device)[:, None, None, None],
                 torch.arange(c, device=x.device)[None, :, None, None],
                 rows[:, None, :, None], cols[:, None, None, :]]
    return out.reshape(shape)
