"""Each epoch's training batches of every member of a batched net: x [G, B, ...], y [G, B, ...].

Data stay on the device; every member has its own batch order (and its own augmentation draws), from its own
seed, so a run's numbers do not depend on what it was trained beside. Batches are slices of the epoch's samples
gathered a block at a time: no DataLoader, and one indexing operation per block instead of two per step (a step
of a small model costs only a few dozen operations).
"""

from __future__ import annotations

from typing import Iterator

import torch

from ddescent.data import Data
from ddescent.metrics import IGNORE_INDEX
from ddescent.seeds import AUGMENT_STREAM, ORDER_STREAM, generator

GATHER_BYTES = 1 << 25  # training inputs gathered at once into batch order (32 MB)


def sequence_lengths(y: torch.Tensor) -> torch.Tensor | None:
    """Length of each sample up to its last target token (targets are [n, T] with IGNORE_INDEX padding);
    None for one target per sample."""
    if y.dim() < 2:
        return None
    positions = torch.arange(1, y.shape[1] + 1, device=y.device)
    return ((y != IGNORE_INDEX) * positions).amax(1)


def bucketed_batches(perm: torch.Tensor, lengths: torch.Tensor, batch_size: int, per_bucket: int,
                     generator: torch.Generator) -> list[torch.Tensor]:
    """Length bucketing: within each run of `per_bucket` batches of the shuffled order, sort samples by length,
    cut into batches, then shuffle the batches. Batches hold similar lengths, so little padding is computed
    (the model cuts each batch to its longest sample). One batch order serves every member."""
    block = torch.arange(perm.shape[1], device=perm.device) // (per_bucket * batch_size)
    key = block * (int(lengths.max()) + 1) + lengths[perm]
    ordered = perm.gather(1, torch.argsort(key, dim=1, stable=True))
    batches = list(ordered.split(batch_size, dim=1))
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


def gathered_batches(x: torch.Tensor, y: torch.Tensor, perm: torch.Tensor, batch_size: int):
    """(x, y) batches [G, B, ...] of every member in the order `perm` [G, n], sliced from blocks gathered once."""
    G, n = perm.shape
    per_batch = G * batch_size * x[:1].numel() * x.element_size()
    block = batch_size * max(1, GATHER_BYTES // per_batch)
    for start in range(0, n, block):
        idx = perm[:, start:start + block]
        xb, yb = x[idx], y[idx]
        for i in range(0, idx.shape[1], batch_size):
            yield xb[:, i:i + batch_size], yb[:, i:i + batch_size]


class Batches:
    """The training batches of G members (one seed each), epoch after epoch; its state (the generators) is
    checkpointed with the run, so a resumed run draws exactly the batches an uninterrupted one would."""

    def __init__(self, data: Data, seeds: list[int], batch_size: int, length_buckets: int = 0):
        self.data, self.batch_size, self.length_buckets = data, batch_size, length_buckets
        device = data.x_train.device
        self.orders = [generator(s, ORDER_STREAM) for s in seeds]
        self.augmenters = [generator(s, AUGMENT_STREAM, device) for s in seeds] if data.augment else []
        self.lengths = sequence_lengths(data.y_train) if length_buckets else None

    def epoch(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        data, n = self.data, len(self.data.y_train)
        perm = torch.stack([torch.randperm(n, generator=g) for g in self.orders]).to(data.x_train.device,
                                                                                      non_blocking=True)
        if self.lengths is None:
            batches = gathered_batches(data.x_train, data.y_train, perm, self.batch_size)
        else:
            batches = ((data.x_train[i], data.y_train[i]) for i in
                       bucketed_batches(perm, self.lengths, self.batch_size, self.length_buckets, self.orders[0]))
        for x, y in batches:
            if self.augmenters:  # each member's batch with its own generator
                x = torch.stack([data.augment(x[g], gen) for g, gen in enumerate(self.augmenters)])
            yield x, y

    def state_dict(self) -> dict:
        return {"generators": [g.get_state() for g in self.orders + self.augmenters]}

    def load_state_dict(self, state: dict) -> None:
        gens = self.orders + self.augmenters
        if len(state["generators"]) != len(gens):
            raise ValueError(f"{len(state['generators'])} generator states for {len(gens)} generators")
        for g, s in zip(gens, state["generators"]):
            g.set_state(s)
