"""GPU smoke test: time the tool's own training loop on CIFAR-shaped random data and on a packed MLP sweep.

    python scripts/gpu_smoke.py                 # cuda if available, else cpu (then use --samples to keep it short)
    python scripts/gpu_smoke.py --samples 5000 --device cpu

Prints samples/s for (1) one epoch of pre-activation ResNet18 k=64 (11.2M parameters, batch 128, Adam,
crop+flip augmentation) and (2) one epoch of the fig9_9 MLP sweep with all 19 widths packed into one
batched computation (batch 100), each through ddescent.train.train, the loop every sweep uses.
"""

from __future__ import annotations

import argparse
import time

import torch
from omegaconf import OmegaConf

from ddescent.data import Data
from ddescent.data.images import augment
from ddescent.models import build, mlp
from ddescent.train import make_optimizer, resolve_device, train

WIDTHS = [2, 3, 4, 5, 7, 9, 12, 16, 21, 27, 36, 47, 61, 80, 104, 135, 177, 230, 300]


def _data(n: int, shape: tuple[int, ...], device) -> Data:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, *shape, generator=g).to(device)
    y = torch.randint(0, 10, (n,), generator=g).to(device)
    return Data(x, y, x[:256], y[:256], n_classes=10, label_noise_effective=0.0)


class _Stamps:
    """A progress sink that notes when each epoch ends (after the loop's once-per-epoch sync)."""

    def __init__(self):
        self.times = []

    def update(self, n=1):
        self.times.append(time.perf_counter())


def _time(net, data, seeds, batch, optim, aug=None) -> float:
    """Seconds of the second of three epochs: evaluations fall on epochs 0, 1 and 3, so epoch 2 is pure
    training, and the first epoch has paid for any warm-up."""
    opt = make_optimizer(net.parameters(), OmegaConf.create(optim))
    stamps = _Stamps()
    train(net, data, seeds=seeds, epochs=3, batch_size=batch, eval_points=1, optimizer=opt, augment=aug,
          progress=stamps)
    return stamps.times[1] - stamps.times[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--samples", type=int, default=50000, help="CIFAR-shaped training samples in the timed epoch")
    args = ap.parse_args()
    device = resolve_device(args.device)
    print(f"device: {device}" + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))

    from ddescent.runner import Single

    resnet = build(OmegaConf.create({"name": "resnet18", "width": 64}), (3, 32, 32), 10, torch.Generator().manual_seed(0))
    data = _data(args.samples, (3, 32, 32), device)
    secs = _time(Single(resnet).to(device), data, [0], 128, {"name": "adam", "lr": 1e-4, "betas": [0.9, 0.999],
                                                             "eps": 1e-8, "weight_decay": 0.0}, aug=augment)
    print(f"ResNet18 k=64: one epoch of {args.samples} samples in {secs:.1f} s = {args.samples / secs:,.0f} samples/s")

    members = [build(OmegaConf.create({"name": "mlp", "width": w, "depth": 2}), (40,), 10,
                     torch.Generator().manual_seed(i)) for i, w in enumerate(WIDTHS)]
    data = _data(4000, (40,), device)
    secs = _time(mlp.pack(members).to(device), data, list(range(len(WIDTHS))), 100,
                 {"name": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 0.0})
    print(f"MLP sweep, 19 widths packed: one epoch of 4000 samples each in {secs * 1e3:.0f} ms = "
          f"{len(WIDTHS) * 4000 / secs:,.0f} model-samples/s")


if __name__ == "__main__":
    main()
