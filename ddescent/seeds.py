"""Every random choice of a run comes from its `seed` (model, batch order, augmentation) or `data_seed`
(subsampling, label noise), split into independent streams so that one choice never shifts another."""

from __future__ import annotations

import numpy as np
import torch

INIT_STREAM = 0  # the model's initial weights
ORDER_STREAM = 1  # the batch order of each epoch
AUGMENT_STREAM = 2  # random crops and flips
CODEBOOK_STREAM = 3  # batch order of the codebook fine-tuning after quantization


def derive_seed(seed: int, stream: int) -> int:
    """Independent, reproducible seeds for the separate random choices of one run."""
    return int(np.random.SeedSequence([seed, stream]).generate_state(1)[0])


def generator(seed: int, stream: int, device: torch.device | str = "cpu") -> torch.Generator:
    return torch.Generator(device).manual_seed(derive_seed(seed, stream))
