"""Trained quantization (Han, Mao & Dally 2016): a short fine-tuning loop of its own, after soft weight sharing has
snapped a net to its codebook. It is not the training loop (ddescent.train): the weights are tied to codebook
entries, so each step sums their gradients per entry and writes the entries back into the weights."""

from __future__ import annotations

import torch
from omegaconf import OmegaConf
from torch import nn

from ddescent.batches import gathered_batches
from ddescent.metrics import per_model_loss
from ddescent.optim import make_optimizer
from ddescent.seeds import CODEBOOK_STREAM, generator


def tune_codebook(net: nn.Module, weights: list[torch.Tensor], assignments: list[torch.Tensor],
                  codebook: torch.Tensor, frozen: torch.Tensor, data, *, epochs: int, batch_size: int, lr: float,
                  optim_cfg, seed: int) -> None:
    """Fine-tune a quantized net on the training set, keeping it quantized (the "trained quantization" of weight
    sharing, Han et al. 2016): weight i stays codebook[assignments[i]], and codebook value j moves by the sum of
    the gradients of the weights assigned to it; entries marked `frozen` (a pinned zero) do not move. Every other
    parameter of the net (the biases) trains freely, with the run's optimizer at rate `lr`. Only the training set
    is used, with its own batch order."""
    weight_ids = {id(w) for w in weights}
    free = [p for p in net.parameters() if id(p) not in weight_ids]
    codebook = codebook.detach().clone().requires_grad_(True)
    groups = [{"params": [codebook]}] + ([{"params": free}] if free else [])
    opt = make_optimizer(groups, OmegaConf.merge(optim_cfg, {"lr": lr}))
    order = generator(seed, CODEBOOK_STREAM)
    n, device = len(data.y_train), data.x_train.device
    for _ in range(epochs):
        perm = torch.randperm(n, generator=order).to(device)[None]
        for x, y in gathered_batches(data.x_train, data.y_train, perm, batch_size):
            for p in (codebook, *weights, *free):
                p.grad = None
            per_model_loss(net(x), y).sum().backward()
            with torch.no_grad():
                grad = torch.zeros_like(codebook)
                for w, idx in zip(weights, assignments):
                    grad.index_add_(0, idx, w.grad.reshape(-1))
                codebook.grad = grad.masked_fill_(frozen, 0.0)
            opt.step()
            with torch.no_grad():
                for w, idx in zip(weights, assignments):
                    w.copy_(codebook[idx].reshape(w.shape))
