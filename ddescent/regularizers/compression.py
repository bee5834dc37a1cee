"""What soft weight sharing buys: the trained net snapped to its component means, scored again, and the bits it
takes to store, in a format one can decode.

Storage convention (Han, Mao & Dally 2016, §3; Ullrich, Meeds & Welling 2017 report their compression in the
same format): every weight tensor is stored sparse. Each stored entry holds a codebook index of ceil(log2 K) bits,
and its position is given either
  - as a relative index: the number of zeros skipped since the previous entry, in p bits; a gap longer than
    2^p - 1 zeros is bridged by a filler entry (a stored zero, costing an index too), or
  - as a bit mask of the tensor's shape (1 bit per weight), with an entry per nonzero weight only,
whichever is smaller for that tensor (p chosen per tensor, 1..16 bits; 8 bits of header per tensor name the
format). The K means are a 32-bit codebook; biases and every other parameter the prior does not cover stay
32-bit floats. compression = 32 x (all parameters) / (bits of the above).

`compression_index_only` is the smaller figure's cousin reported by earlier versions: 32 N / (nnz x index bits
+ 32 K), counting neither where the nonzero weights sit nor the biases. It overstates what a decoder needs and is
kept only for comparison.
"""

from __future__ import annotations

import torch
from torch import nn

from ddescent.metrics import evaluate
from ddescent.regularizers.codebook_tuning import tune_codebook

WEIGHT_HIST_BINS = 200  # the sws figure draws the weights before snapping from this histogram
MAX_RELATIVE_BITS = 16
HEADER_BITS = 8  # per tensor: which position format, and p


def position_bits(n: int, positions: torch.Tensor, index_bits: int) -> tuple[int, str]:
    """Bits to store one tensor of n weights whose nonzero entries sit at the sorted flat `positions`: its
    entries (codebook indices) and their positions, in the cheaper format. Returns (bits, format)."""
    nnz = len(positions)
    best = (n + nnz * index_bits, "mask")
    if nnz:
        gaps = torch.diff(positions, prepend=positions.new_tensor([-1])) - 1
        for p in range(1, MAX_RELATIVE_BITS + 1):
            entries = nnz + int(torch.div(gaps, 1 << p, rounding_mode="floor").sum())
            best = min(best, (entries * (p + index_bits), f"relative {p}-bit"))
    return best[0] + HEADER_BITS, best[1]


def storage(weights: list[torch.Tensor], n_other: int, n_components: int) -> dict:
    """The compression of snapped `weights` (plus n_other 32-bit parameters), by the convention above."""
    index_bits = max(1, (n_components - 1).bit_length())  # ceil(log2 K), and at least one bit
    n_weights = sum(w.numel() for w in weights)
    bits, formats = 32 * n_components + 32 * n_other, []
    nnz = 0
    for w in weights:
        positions = torch.nonzero(w.detach().reshape(-1)).reshape(-1).cpu()
        tensor_bits, fmt = position_bits(w.numel(), positions, index_bits)
        bits += tensor_bits
        formats.append(fmt)
        nnz += len(positions)
    return {
        "compression": 32 * (n_weights + n_other) / bits,
        "compression_formats": formats,
        "compression_index_only": 32 * n_weights / (nnz * index_bits + 32 * n_components),
        "quantized_index_bits": index_bits,
    }


def report(prior, net: nn.Module, data, cfg) -> dict:
    """Snap the weights to their component means (soft weight sharing's quantization), evaluate again and
    report the compression; with `regularizer.codebook_epochs`, then fine-tune the codebook on the training set
    and evaluate once more (`quantized_tuned_*`). A histogram of the weights before snapping is kept for the
    `sws` figure (the weights themselves are not)."""
    weights = prior.regularized(net)
    covered = {id(w) for w in weights}
    n_other = sum(p.numel() for p in net.parameters() if id(p) not in covered)
    flat = torch.cat([w.detach().reshape(-1) for w in weights]).float().cpu()
    lo, hi = flat.min().item(), flat.max().item()
    counts = torch.histc(flat, bins=WEIGHT_HIST_BINS, min=lo, max=hi if hi > lo else lo + 1e-6)
    out = {"weight_hist_range": [lo, hi], "weight_hist_counts": counts.tolist()}
    assignments = prior.assign(weights)
    out.update({f"quantized_{k}": v for k, v in prior.quantize_(weights, assignments).items()})
    out.update(storage(weights, n_other, prior.n_components))
    out.update(scores(net, data, "quantized"))
    epochs = int(cfg.regularizer.get("codebook_epochs") or 0)
    if epochs:
        lr = cfg.regularizer.get("codebook_lr") or cfg.optim.lr
        tune_codebook(net, weights, assignments, prior.means(), ~prior.free, data, epochs=epochs,
                      batch_size=cfg.train.batch_size, lr=lr, optim_cfg=cfg.optim, seed=cfg.train.seed)
        out.update(scores(net, data, "quantized_tuned"))
    return out


def scores(net: nn.Module, data, prefix: str) -> dict:
    out = {}
    for name, x, y in (("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test)):
        error, loss = evaluate(net, x, y, 1)
        out[f"{prefix}_{name}_error"], out[f"{prefix}_{name}_loss"] = error.item(), loss.item()
    return out
