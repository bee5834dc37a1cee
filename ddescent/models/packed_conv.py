"""G convolutional networks of one family (cnn5, resnet18, cnn1d), possibly of different widths, trained as one
batched computation: x [G, B, *input_shape] -> logits [G, B, classes].

Layout. Members sit side by side along the channel axis. Member g owns channels [g c_max, (g+1) c_max) of every
layer, where c_max is that layer's widest member; its first c_g channels are real, the rest are zero padding.
The input [G, B, C, *spatial] is rearranged once into [B, G C, *spatial], so every member reads its own images
(its own batch order in training, the same data in evaluation). Then

    Conv(c_in -> c_out)  becomes  Conv(G c_in_max -> G c_out_max, groups=G)   (block-diagonal across members)
    BatchNorm(c)         becomes  BatchNorm(G c_max)                           (statistics are per channel)
    Linear(f -> classes) becomes  a batched matmul [G, B, f_max] x [G, f_max, classes]
    ReLU, max-pools, average pools, flatten, residual additions: unchanged (they act channel by channel)

Members do not mix: a grouped convolution reads only its own group's input channels, BatchNorm, ReLU, the pools
and the residual additions act on one channel at a time (a pool only over space), and the head reads member g's
block of features only. Member g's real channels therefore compute exactly what the plain network computes on
x[g]; the only difference is the order in which floats are summed (the convolution algorithm may differ).

Why the padding stays exactly zero. Every padded entry starts at 0.0: the weights into a padded channel and
from a padded channel, a padded channel's conv bias, its BatchNorm gamma (weight) and beta (bias), its
running_mean and running_var, and the head's rows that read padded features. By induction over the layers of
the forward pass, every padded activation is exactly 0.0:
  - conv: a padded output channel has all-zero weights and zero bias, so it is 0; a real output channel reads
    padded input channels through zero weights, adding exact zeros;
  - BatchNorm, train mode: a constant-zero channel has batch mean 0 and variance 0, so it normalises to
    0 * (1 / sqrt(eps)) = 0, then gamma * 0 + beta = 0 (gamma = beta = 0); its running_mean and running_var
    move to (1 - m) * 0 + m * 0 = 0 and stay 0. Eval mode: (0 - 0) / sqrt(0 + eps) * 0 + 0 = 0;
  - ReLU(0) = 0; a max-pool or average pool of zeros is 0; ResNet's identity shortcut carries the block input,
    0 in padded channels, and its 1x1 projection shortcut has zero weights into padded channels, so the sum is 0;
    pre-activation order (BN -> ReLU -> conv) changes nothing: each of the three maps zero channels to zero.
Backward, by induction from the loss down: the head's rows for padded features are zero, so the gradient
reaching a padded feature is 0. Going down, the gradient reaching a padded channel's output is a sum of
(weight from that channel) x (gradient above) = 0, plus, through an identity shortcut, the gradient of the
block's padded output channel, which is 0 by the same induction. BatchNorm backward of a channel with output
gradient dy = 0: d(beta) = sum(dy) = 0, d(gamma) = sum(dy * xhat) = 0, dx = gamma / sigma * (dy - mean(dy) -
xhat mean(dy xhat)) = 0. ReLU and the pools pass a zero gradient as zero. Hence every padded parameter's
gradient is exactly 0: a weight into a padded channel multiplies a zero output gradient, a weight from a padded
channel multiplies a zero activation. An optimizer leaves a zero parameter with zero gradient at zero: SGD
(weight decay adds wd * 0, momentum buffers stay 0) and Adam (m = v = 0, update lr * 0 / (sqrt(0) + eps) = 0,
decoupled or L2 weight decay scale or add 0). These are exact float identities (0 * finite = 0, sums of zeros
are 0), whatever the convolution algorithm, and under TF32 or bf16 too (zero rounds to zero). The one way to
break them is a non-finite value (0 * inf = NaN), which only a diverged member produces, inside its own block.
tests/test_packed_conv.py checks all of it: outputs and gradients equal the members' own, members do not mix,
and every padded parameter, buffer, optimizer state entry, gradient and activation is 0.0 after SGD and Adam
steps.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ddescent.models.base import Batched

CONVS = (nn.Conv1d, nn.Conv2d)
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
# Modules whose forward acts channel by channel (or only wires their children): the only ones a packed network
# may contain besides the convolutions, norms and the one linear head.
CHANNELWISE = (nn.Sequential, nn.ReLU, nn.MaxPool1d, nn.MaxPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
               nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AvgPool2d, nn.Flatten, nn.Identity)


# The families' own containers, registered by their modules (`@checked()`) once their forward was checked against
# the argument above: class -> whether its forward reshapes each sample to [c_in, L] (a 1-D signal, `c_in`).
CHECKED: dict[type, bool] = {}


def checked(reshapes_signal: bool = False):
    def register(cls: type) -> type:
        CHECKED[cls] = reshapes_signal
        return cls
    return register


class PackedLinear(nn.Module):
    """The members' linear heads: features [B, G f_max] (member g's block of f_max, real ones first) -> [G, B, out]."""

    def __init__(self, linears: list[nn.Linear]):
        super().__init__()
        G, f_max, out = len(linears), max(lin.in_features for lin in linears), linears[0].out_features
        if any(lin.out_features != out or lin.bias is None for lin in linears):
            raise ValueError("packed heads need one number of classes and a bias")
        w, b = torch.zeros(G, f_max, out), torch.zeros(G, 1, out)
        for g, lin in enumerate(linears):
            w[g, : lin.in_features] = lin.weight.detach().T
            b[g, 0] = lin.bias.detach()
        self.weight, self.bias = nn.Parameter(w), nn.Parameter(b)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        G, f_max = self.weight.shape[:2]
        z = z.reshape(z.shape[0], G, f_max).transpose(0, 1)
        return torch.baddbmm(self.bias, z, self.weight)


def _packed_conv(convs: list[nn.Module]) -> nn.Module:
    c = convs[0]
    for m in convs:
        if (type(m) is not type(c) or m.groups != 1 or m.padding_mode != "zeros" or
                (m.kernel_size, m.stride, m.padding, m.dilation) != (c.kernel_size, c.stride, c.padding, c.dilation)
                or (m.bias is None) != (c.bias is None)):
            raise ValueError("packed convolutions need one shape of kernel, stride, padding and bias")
    G = len(convs)
    c_in, c_out = max(m.in_channels for m in convs), max(m.out_channels for m in convs)
    out = type(c)(G * c_in, G * c_out, c.kernel_size, stride=c.stride, padding=c.padding, dilation=c.dilation,
                  groups=G, bias=c.bias is not None)
    with torch.no_grad():
        out.weight.zero_()
        for g, m in enumerate(convs):
            out.weight[g * c_out: g * c_out + m.out_channels, : m.in_channels] = m.weight
        if out.bias is not None:
            out.bias.zero_()
            for g, m in enumerate(convs):
                out.bias[g * c_out: g * c_out + m.out_channels] = m.bias
    return out


def _packed_norm(norms: list[nn.Module]) -> nn.Module:
    n = norms[0]
    if any(type(m) is not type(n) or (m.eps, m.momentum, m.affine, m.track_running_stats) !=
           (n.eps, n.momentum, n.affine, n.track_running_stats) for m in norms) or not n.affine:
        raise ValueError("packed BatchNorms need one eps, momentum and affine setting")
    G, c = len(norms), max(m.num_features for m in norms)
    out = type(n)(G * c, eps=n.eps, momentum=n.momentum, affine=True, track_running_stats=n.track_running_stats)
    with torch.no_grad():
        for name in ("weight", "bias") + (("running_mean", "running_var") if n.track_running_stats else ()):
            full = getattr(out, name)
            full.zero_()  # padded gamma, beta, running_mean AND running_var are 0 (see the module docstring)
            for g, m in enumerate(norms):
                full[g * c: g * c + m.num_features] = getattr(m, name)
        if n.track_running_stats:
            out.num_batches_tracked.copy_(max(m.num_batches_tracked for m in norms))
    return out


class PackedConvNet(Batched):
    """See the module docstring. Built by `pack`; `unpack(g, model)` copies member g back into a plain model."""

    def __init__(self, models: list[nn.Module]):
        super().__init__()
        first = models[0]
        if type(first) is not nn.Sequential and type(first) not in CHECKED:
            raise ValueError(f"packed_conv packs cnn5, resnet18 and cnn1d networks, not {type(first).__name__}")
        names = [[(n, type(m)) for n, m in model.named_modules()] for model in models]
        if any(ns != names[0] for ns in names):
            raise ValueError("packed networks must have one structure (same family and depth)")
        linears = [n for n, m in first.named_modules() if isinstance(m, nn.Linear)]
        if len(linears) != 1:
            raise ValueError("packed networks end in one linear head")
        for n, m in first.named_modules():
            if not isinstance(m, CONVS + NORMS + (nn.Linear,) + CHANNELWISE + tuple(CHECKED)):
                raise ValueError(f"packed_conv cannot pack {n} ({type(m).__name__}): it may mix channels")
        self.G = len(models)
        self.head_name = linears[0]
        self.body = copy.deepcopy(first)
        # Real channels of each member at every conv / norm output and at the head's input, for unpack and for
        # the padding masks.
        self.real: dict[str, list[int]] = {}
        self.leaf_types: dict[str, str] = {}
        for name, m in first.named_modules():
            parts = [model.get_submodule(name) for model in models]
            if isinstance(m, CONVS):
                new = _packed_conv(parts)
                self.real[name] = [p.out_channels for p in parts]
                self.real[name + ".in"] = [p.in_channels for p in parts]
                kind = "conv"
            elif isinstance(m, NORMS):
                new = _packed_norm(parts)
                self.real[name] = [p.num_features for p in parts]
                kind = "norm"
            elif isinstance(m, nn.Linear):
                new = PackedLinear(parts)
                self.real[name] = [p.in_features for p in parts]
                kind = "head"
            else:
                continue
            self.leaf_types[name] = kind
            parent, _, attr = name.rpartition(".")
            setattr(self.body.get_submodule(parent) if parent else self.body, attr, new)
        signal = CHECKED.get(type(self.body), False)
        if signal:
            self.body.c_in *= self.G  # its forward reshapes to [B, c_in, L]: here G members' channels
        self.c_in = self.body.c_in // self.G if signal else None
        self.memory_format = torch.contiguous_format  # to_channels_last switches the input layout too

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        G, B = x.shape[:2]
        if self.c_in is not None:  # 1-D signals: (L,) or (C, L) per sample
            x = x.reshape(G, B, self.c_in, -1)
        if self.memory_format is torch.channels_last and x.dim() == 5:
            # [G, B, C, H, W] -> [B, H, W, G C] in one copy, viewed as [B, G C, H, W] with channels-last strides
            x = x.permute(1, 3, 4, 0, 2).reshape(B, x.shape[3], x.shape[4], -1).permute(0, 3, 1, 2)
        else:
            x = x.transpose(0, 1).reshape(B, -1, *x.shape[3:])
        return self.body(x)

    def to_channels_last(self, example_input: torch.Tensor) -> None:
        """Channels-last weights, and the input rearranged straight into that layout in forward (one copy)."""
        if example_input.dim() == 5 and any(isinstance(m, nn.Conv2d) for m in self.modules()):
            self.to(memory_format=torch.channels_last)
            self.memory_format = torch.channels_last

    @torch.no_grad()
    def unpack(self, g: int, model: nn.Module) -> nn.Module:
        """Copy member g's trained parameters and BatchNorm buffers into `model` (the plain network, built with
        member g's width)."""
        for name, kind in self.leaf_types.items():
            src, dst = self.body.get_submodule(name), model.get_submodule(name)
            if kind == "conv":
                c_out = src.out_channels // self.G
                rows = slice(g * c_out, g * c_out + dst.out_channels)
                dst.weight.copy_(src.weight[rows, : dst.in_channels])
                if dst.bias is not None:
                    dst.bias.copy_(src.bias[rows])
            elif kind == "norm":
                c = src.num_features // self.G
                rows = slice(g * c, g * c + dst.num_features)
                for attr in ("weight", "bias", "running_mean", "running_var"):
                    if getattr(dst, attr) is not None:
                        getattr(dst, attr).copy_(getattr(src, attr)[rows])
                if dst.num_batches_tracked is not None:
                    dst.num_batches_tracked.copy_(src.num_batches_tracked)
            else:
                dst.weight.copy_(src.weight[g, : dst.in_features].T)
                dst.bias.copy_(src.bias[g, 0])
        return model

    def channel_mask(self, name: str) -> torch.Tensor:
        """Bool [G c_max], True at the padded output channels of conv / norm `name` (for the head: padded
        features)."""
        real = self.real[name]
        width = {"conv": lambda m: m.out_channels, "norm": lambda m: m.num_features,
                 "head": lambda m: m.weight.shape[0] * m.weight.shape[1]}[self.leaf_types[name]]
        per = width(self.body.get_submodule(name)) // self.G
        return torch.arange(per).expand(self.G, per) >= torch.tensor(real)[:, None]

    def padding_masks(self) -> dict[str, torch.Tensor]:
        """state_dict name -> bool mask of its padded entries (True: must stay exactly 0.0), for every parameter
        and BatchNorm buffer that has padding."""
        out = {}
        for name, kind in self.leaf_types.items():
            m, key = self.body.get_submodule(name), f"body.{name}"
            out_mask = self.channel_mask(name).reshape(-1)
            if kind == "conv":
                c_in = m.in_channels // self.G
                in_mask = torch.arange(c_in).expand(self.G, c_in) >= torch.tensor(self.real[name + ".in"])[:, None]
                in_rows = in_mask.repeat_interleave(m.out_channels // self.G, dim=0)  # [G c_out, c_in]
                mask = (out_mask[:, None] | in_rows).reshape(m.out_channels, c_in, *[1] * (m.weight.dim() - 2))
                out[f"{key}.weight"] = mask.expand_as(m.weight)
                if m.bias is not None:
                    out[f"{key}.bias"] = out_mask
            elif kind == "norm":
                for attr in ("weight", "bias", "running_mean", "running_var"):
                    if getattr(m, attr) is not None:
                        out[f"{key}.{attr}"] = out_mask
            else:
                out[f"{key}.weight"] = out_mask.reshape(self.G, -1, 1).expand_as(m.weight)
        return out


def pack(models: list[nn.Module]) -> PackedConvNet:
    """G plain networks of one family (built by the family's `build`, widths may differ) as one packed network;
    their current parameters and BatchNorm buffers are copied in."""
    return PackedConvNet(models)
