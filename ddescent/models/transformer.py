"""Decoder-only transformers for translation, with the source as a prefix: `width` = d_model.

Why decoder-only: the training loop sees one integer tensor x [B, T] and one target tensor y [B, T] (the
tool's sequence contract), and a single causal stack reads that layout directly. A sample is

    x = [s_1 .. s_n, SEP, t_1 .. t_m, PAD ..]        (source, separator, target shifted right)
    y = [-100 .. -100, t_1, t_2 .. t_m, EOS, -100 ..]  (next target token; -100 is left out of loss and error)

Position n (SEP) predicts t_1, position n+k predicts t_(k+1), the last target position predicts EOS, so the
loss is the teacher-forced token cross-entropy on target tokens and the error is the token error rate. Every
target position sees the whole source, as an encoder-decoder's cross-attention would; the difference is that
the source is read causally and both halves share one stack of weights. Attention is causal and padding keys
are masked; padding sits only at the end, so no real position ever attends to padding, and trailing padding
columns of a batch are cut off before the stack (their logits come back as zeros, ignored by y = -100).

Blocks are pre-LayerNorm (stable with Adam and no warm-up at small widths): x + Attn(LN(x)), x + FF(LN(x)),
FF = Linear(d, ff_mult * d) -> ReLU -> Linear, a final LayerNorm, and an untied output layer. Dropout is off
by default, as in Nakkiran et al. (2019). Label smoothing belongs to the loss, which the training loop owns.

Parameters (V = vocabulary = n_classes, T = sequence length, f = ff_mult * d, L = layers):
    V d  [+ T d with learned positions]  +  L (4 d^2 + 2 d f + f + 9 d)  +  2 d  +  d V + V
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ddescent.checks import NONNEG_INT, POSITIVE_INT, RATE, ConfigError, one_of
from ddescent.models.base import Family, init_default

POSITIONS = ("learned", "sinusoidal")
RULES = {
    "model.width": POSITIVE_INT,
    "model.heads": POSITIVE_INT,
    "model.layers": POSITIVE_INT,
    "model.ff_mult": POSITIVE_INT,
    "model.positions": one_of(*POSITIONS),
    "model.dropout": RATE,
    "model.pad_id": NONNEG_INT,
}


def _dims(cfg) -> tuple[int, int, int, int]:
    d = int(cfg.width)
    return d, int(cfg.heads), int(cfg.layers), int(cfg.ff_mult) * d


def n_params(cfg, input_shape: tuple[int, ...], n_classes: int) -> int:
    d, _, L, f = _dims(cfg)
    V, T = n_classes, input_shape[0]
    embed = V * d + (T * d if cfg.positions == "learned" else 0)
    block = (3 * d * d + 3 * d) + (d * d + d) + (d * f + f) + (f * d + d) + 4 * d  # qkv, out, ff1, ff2, 2 norms
    return embed + L * block + 2 * d + (d * V + V)


def check(cfg) -> None:
    if float(cfg.width) != int(cfg.width):
        raise ConfigError(f"model.width={cfg.width}: d_model must be a whole number")
    if int(cfg.width) % int(cfg.heads):
        raise ConfigError(f"model.width={cfg.width}: d_model must be divisible by model.heads={cfg.heads}")
    if cfg.positions not in POSITIONS:
        raise ConfigError(f"model.positions={cfg.positions!r}: choose one of: {', '.join(POSITIONS)}")


def sinusoidal(T: int, d: int) -> torch.Tensor:
    """The fixed encodings of Vaswani et al. (2017): sin on even, cos on odd channels."""
    pos = torch.arange(T, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    table = torch.zeros(T, d)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)[:, : d // 2]
    return table


class Block(nn.Module):
    """Pre-LayerNorm block: h + Attn(LN(h)), then h + FF(LN(h))."""

    def __init__(self, d: int, heads: int, f: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.out = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.ff1, self.ff2 = nn.Linear(d, f), nn.Linear(f, d)
        self.drop = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        B, T, d = h.shape
        q, k, v = self.qkv(self.norm1(h)).view(B, T, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        h = h + self.drop(self.out(a.transpose(1, 2).reshape(B, T, d)))
        return h + self.drop(self.ff2(self.drop(torch.relu(self.ff1(self.norm2(h))))))


class Transformer(nn.Module):
    """x [B, T] token ids -> logits [B, T, vocab]; position t sees tokens <= t that are not padding."""

    def __init__(self, vocab: int, max_len: int, d: int, heads: int, layers: int, f: int,
                 positions: str = "learned", dropout: float = 0.0, pad_id: int = 0):
        super().__init__()
        self.pad_id = pad_id
        self.tokens = nn.Embedding(vocab, d)
        if positions == "learned":
            self.positions = nn.Embedding(max_len, d)
        else:
            self.positions = None
            self.register_buffer("table", sinusoidal(max_len, d), persistent=False)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(d, heads, f, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T = x.shape
        real = x != self.pad_id
        # Padding only trails, and causal attention never looks ahead: cutting the batch's trailing padding
        # columns changes no real position's output and saves the attention and FF work on them.
        keep = int(real.sum(1).max())
        x, real = x[:, :keep], real[:, :keep]
        pos = self.positions.weight[:keep] if self.positions is not None else self.table[:keep]
        h = self.drop(self.tokens(x) + pos)
        causal = torch.ones(keep, keep, dtype=torch.bool, device=x.device).tril()
        # The open diagonal only matters for a sample that is all padding: its rows keep a key, so no NaN.
        mask = (causal & real[:, None, None, :]) | torch.eye(keep, dtype=torch.bool, device=x.device)
        for block in self.blocks:
            h = block(h, mask)
        logits = self.head(self.norm(h))
        return F.pad(logits, (0, 0, 0, T - keep))


def build(cfg, input_shape, n_classes, generator):
    d, heads, L, f = _dims(cfg)
    model = Transformer(n_classes, input_shape[0], d, heads, L, f, positions=cfg.positions,
                        dropout=float(cfg.get("dropout", 0.0)), pad_id=int(cfg.get("pad_id", 0)))
    return init_default(model, generator)


FAMILY = Family("transformer", build=build, n_params=n_params, check=check, rules=RULES)
