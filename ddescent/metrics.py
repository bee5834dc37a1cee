"""What a member's predictions score: its training objective's data term and the error rate (for regression,
the squared error), computed for every member of a batched net at once."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

IGNORE_INDEX = -100  # targets with this value (padding in sequence tasks) count in neither loss nor error
EVAL_LOGITS = 1 << 25  # logits held at once while evaluating (128 MB of float32)


def per_model_loss(out: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean data loss of each member, [G]: cross-entropy on class targets (IGNORE_INDEX left out), half the
    squared error on real-valued targets (outputs [G, B, 1])."""
    G = out.shape[0]
    if y.is_floating_point():
        return 0.5 * (out.reshape(G, -1) - y.reshape(G, -1)).square().mean(1)
    C = out.shape[-1]
    losses = F.cross_entropy(out.reshape(-1, C), y.reshape(-1), reduction="none", ignore_index=IGNORE_INDEX,
                             label_smoothing=label_smoothing)
    if y.dim() == 2:  # one label per sample: nothing to ignore
        return losses.view(G, -1).mean(1)
    valid = (y.reshape(G, -1) != IGNORE_INDEX).sum(1).clamp_min(1)
    return losses.view(G, -1).sum(1) / valid


def members_finite(net: nn.Module, G: int) -> list[bool]:
    """Per member: are all its parameters still finite? (A non-finite loss makes them NaN through the gradient.)
    A batched net holds member g's parameters at index g of their first dimension (G = 1: all of them)."""
    with torch.no_grad():
        return torch.stack([p.reshape(G, -1).isfinite().all(1) for p in net.parameters()]).all(0).tolist()


@torch.no_grad()
def evaluate(net: nn.Module, x: torch.Tensor, y: torch.Tensor, G: int):
    """(error [G], mean loss [G]) of every member on one dataset, in as few batches as fit: a chunk holds at most
    EVAL_LOGITS outputs (a sequence model's [tokens x vocabulary] per sample is large). Error is the 0-1 error
    rate (token error rate for sequences), or the mean squared error for real-valued targets."""
    was_training = net.training
    net.eval()
    per_sample = net(x[:1].expand(G, *x[:1].shape)).numel() // G
    chunk = max(1, min(8192, EVAL_LOGITS // max(1, G * per_sample)))
    wrong = torch.zeros(G, device=x.device)
    loss = torch.zeros(G, device=x.device)
    count = torch.zeros(G, device=x.device)
    for i in range(0, len(x), chunk):
        xb = x[i:i + chunk].expand(G, *x[i:i + chunk].shape)
        yb = y[i:i + chunk].expand(G, *y[i:i + chunk].shape)
        out = net(xb).float()
        if y.is_floating_point():
            squared = (out.reshape(G, -1) - yb.reshape(G, -1)).square().sum(1)
            wrong += squared
            loss += 0.5 * squared
            count += yb[0].numel()
            continue
        C = out.shape[-1]
        valid = (yb != IGNORE_INDEX).reshape(G, -1)
        loss += F.cross_entropy(out.reshape(-1, C), yb.reshape(-1), reduction="none",
                                ignore_index=IGNORE_INDEX).view(G, -1).sum(1)
        wrong += ((out.argmax(-1) != yb).reshape(G, -1) & valid).sum(1)
        count += valid.sum(1)
    net.train(was_training)
    count = count.clamp_min(1)
    return wrong / count, loss / count
