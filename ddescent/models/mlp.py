"""Fully connected ReLU networks: input -> `depth` hidden layers of `width` units -> classes, or, with
`ratios`, hidden layers of round(width * ratio) units each (LeNet-300-100 is width 300, ratios [1, 1/3]).

For MNIST-1D (40 inputs, 10 classes) and depth 2: n_params = h^2 + 52h + 10.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ddescent.checks import POSITIVE_INT, ConfigError
from ddescent.models.base import Family, ManualBackward, init_default

RULES = {"model.width": POSITIVE_INT, "model.depth": POSITIVE_INT}


def hidden(cfg) -> list[int]:
    """The hidden layers' widths."""
    ratios = cfg.get("ratios")
    if ratios is None:
        return [int(cfg.width)] * int(cfg.depth)
    return [round(float(cfg.width) * float(r)) for r in ratios]


def n_params(cfg, input_shape: tuple[int, ...], n_classes: int) -> int:
    sizes = [math.prod(input_shape), *hidden(cfg), n_classes]
    return sum(a * b + b for a, b in zip(sizes, sizes[1:]))


def check(cfg) -> None:
    if float(cfg.width) != int(cfg.width):
        raise ConfigError(f"model.width={cfg.width}: the mlp's width must be a whole number of units")
    ratios = cfg.get("ratios")
    if ratios is not None and (not ratios or any(not isinstance(r, (int, float)) or isinstance(r, bool) or r <= 0
                                                 for r in ratios)):
        raise ConfigError(f"model.ratios={list(ratios) if ratios else ratios}: expected null or a list of numbers > 0")
    if min(hidden(cfg)) < 1:
        raise ConfigError(f"model.ratios={list(ratios)}: at width {cfg.width} a hidden layer would have no units")


def build(cfg, input_shape, n_classes, generator):
    sizes = [math.prod(input_shape), *hidden(cfg)]
    layers: list[nn.Module] = [nn.Flatten()]
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    layers.append(nn.Linear(sizes[-1], n_classes))
    return init_default(nn.Sequential(*layers), generator)


class PackedMLP(ManualBackward):
    """G MLPs of one depth trained as one batched computation: x [G, B, d] -> logits [G, B, classes].

    Narrower members are zero-padded to the widest. The padding stays exactly zero under training: a padded
    unit has zero input weights and bias, so its ReLU output and every gradient through it are zero, and SGD,
    momentum, weight decay and Adam all leave a zero parameter with zero gradient at zero. Each member
    therefore computes and learns exactly what it would alone; only the summation order of floats differs.
    """

    def __init__(self, mlps: list[nn.Sequential]):
        super().__init__()
        linears = [[m for m in mlp if isinstance(m, nn.Linear)] for mlp in mlps]
        depth = len(linears[0])
        if any(len(ls) != depth for ls in linears):
            raise ValueError("PackedMLP packs MLPs of one depth")
        self.widths = [ls[0].out_features for ls in linears]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for layer in range(depth):
            fan_in = max(ls[layer].in_features for ls in linears)
            fan_out = max(ls[layer].out_features for ls in linears)
            w = torch.zeros(len(mlps), fan_in, fan_out)
            b = torch.zeros(len(mlps), 1, fan_out)
            for g, ls in enumerate(linears):
                lin = ls[layer]
                w[g, : lin.in_features, : lin.out_features] = lin.weight.detach().T
                b[g, 0, : lin.out_features] = lin.bias.detach()
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(b))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(2)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = torch.baddbmm(b, x, w)
            if i < last:
                x = torch.relu(x)
        return x

    @torch.no_grad()
    def backward_by_hand(self, x: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0) -> None:
        """Set every parameter's .grad to the gradient of the summed members' mean cross-entropy on (x, y), with
        the forward and backward passes written out. The numbers are autograd's (a test compares them); the
        point is speed: for matrices this small, autograd's bookkeeping and the generic loss cost about as much
        as the arithmetic, and this step is ~1.5x faster on a CPU (see scripts/bench.py)."""
        G, B = y.shape
        ws, bs = list(self.weights), list(self.biases)
        acts = [x.flatten(2)]
        for w, b in zip(ws[:-1], bs[:-1]):
            acts.append(torch.relu(torch.baddbmm(b, acts[-1], w)))
        # Logits as [G, classes, B]: a softmax over a middle dimension of 10 is several times faster than over
        # a last dimension of 10.
        logits = torch.baddbmm(bs[-1].transpose(1, 2), ws[-1].transpose(1, 2), acts[-1].transpose(1, 2))
        d = torch.softmax(logits, 1)  # d(loss)/d(logits) = (softmax - target) / B
        d.scatter_add_(1, y.unsqueeze(1), torch.full((G, 1, B), label_smoothing - 1.0, device=d.device))
        if label_smoothing:
            d.sub_(label_smoothing / d.shape[1])
        d = d.mul_(1.0 / B).transpose(1, 2)
        for i in reversed(range(len(ws))):
            ws[i].grad = torch.bmm(acts[i].transpose(1, 2), d)
            bs[i].grad = d.sum(1, keepdim=True)
            if i > 0:  # through the ReLU: threshold_backward is the one-op form of grad * (activation > 0)
                d = torch.ops.aten.threshold_backward(torch.bmm(d, ws[i].transpose(1, 2)), acts[i], 0)

    @torch.no_grad()
    def unpack(self, g: int, mlp: nn.Sequential) -> nn.Sequential:
        """Copy member g's trained weights back into `mlp` (built with the member's shape)."""
        for layer, lin in enumerate(m for m in mlp if isinstance(m, nn.Linear)):
            lin.weight.copy_(self.weights[layer][g, : lin.in_features, : lin.out_features].T)
            lin.bias.copy_(self.biases[layer][g, 0, : lin.out_features])
        return mlp


def pack(models: list[nn.Sequential]) -> PackedMLP:
    return PackedMLP(models)


FAMILY = Family("mlp", build=build, n_params=n_params, check=check, rules=RULES, pack=pack)
