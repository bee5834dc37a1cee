"""GPU check: the tool's training loop against a plain data-on-device PyTorch loop, side by side.

    python scripts/gpu_smoke.py                          # cuda if available, else cpu (use --samples to keep it short)
    python scripts/gpu_smoke.py --samples 5000 --device cpu

Prints samples/s for
(1) one epoch of pre-activation ResNet18 k=64 (11.2M parameters, batch 128, Adam, crop+flip augmentation):
    ddescent.train.train (the loop every sweep uses) against a hand-written loop of the same model, optimizer
    and augmentation with the data already on the device;
(2) one epoch of the 19 fig9_9 MLPs (batch 100, SGD): all widths packed into one batched computation by the
    tool's loop, against training them one after another with a hand-written loop.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from ddescent.data import Data
from ddescent.data.images import augment
from ddescent.models import build, mlp
from ddescent.train import make_optimizer, resolve_device, train

WIDTHS = [2, 3, 4, 5, 7, 9, 12, 16, 21, 27, 36, 47, 61, 80, 104, 135, 177, 230, 300]
ADAM = {"name": "adam", "lr": 1e-4, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0}
SGD = {"name": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 0.0}


def _data(n: int, shape: tuple[int, ...], device) -> Data:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, *shape, generator=g).to(device)
    y = torch.randint(0, 10, (n,), generator=g).to(device)
    return Data(x, y, x[:256], y[:256], n_classes=10, label_noise_effective=0.0)


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _Stamps:
    """A progress sink that notes when each epoch ends (after the loop's once-per-epoch sync)."""

    def __init__(self):
        self.times = []

    def update(self, n=1):
        self.times.append(time.perf_counter())


def tool_epoch(net, data, seeds, batch, optim, aug=None) -> float:
    """Seconds of the second of three epochs of ddescent's loop: evaluations fall on epochs 0, 1 and 3, so
    epoch 2 is pure training, and the first epoch has paid for any warm-up."""
    opt = make_optimizer(net.parameters(), OmegaConf.create(optim))
    stamps = _Stamps()
    train(net, data, seeds=seeds, epochs=3, batch_size=batch, eval_points=1, optimizer=opt, augment=aug,
          progress=stamps)
    return stamps.times[1] - stamps.times[0]


def hand_epoch(model, data, batch, optim, aug=False) -> float:
    """Seconds of the second of two epochs of the ordinary loop: permute on the device, index, step."""
    opt = make_optimizer(model.parameters(), OmegaConf.create(optim))
    x, y, n = data.x_train, data.y_train, len(data.y_train)
    g = torch.Generator(x.device).manual_seed(0)
    times = []
    for _ in range(2):
        _sync(x.device)
        start = time.perf_counter()
        perm = torch.randperm(n, device=x.device)
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            xb = augment(x[idx], g) if aug else x[idx]
            loss = F.cross_entropy(model(xb), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        _sync(x.device)
        times.append(time.perf_counter() - start)
    return times[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--samples", type=int, default=50000, help="CIFAR-shaped training samples in the timed epoch")
    args = ap.parse_args()
    device = resolve_device(args.device)
    print(f"device: {device}" + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))

    from ddescent.packing import Single

    def resnet():
        cfg = OmegaConf.create({"name": "resnet18", "width": 64})
        return build(cfg, (3, 32, 32), 10, torch.Generator().manual_seed(0)).to(device)

    data = _data(args.samples, (3, 32, 32), device)
    tool = tool_epoch(Single(resnet()), data, [0], 128, ADAM, aug=augment)
    hand = hand_epoch(resnet(), data, 128, ADAM, aug=True)
    n = args.samples
    print(f"ResNet18 k=64, one epoch of {n} samples: ddescent {tool:.2f} s = {n / tool:,.0f} samples/s; "
          f"hand loop {hand:.2f} s = {n / hand:,.0f} samples/s; ratio {hand / tool:.2f}")

    def mlps():
        return [build(OmegaConf.create({"name": "mlp", "width": w, "depth": 2}), (40,), 10,
                      torch.Generator().manual_seed(i)) for i, w in enumerate(WIDTHS)]

    data = _data(4000, (40,), device)
    check = [mlp.pack(mlps()).to(device) for _ in range(2)]
    x, y = data.x_train[:100].expand(len(WIDTHS), 100, 40), data.y_train[:100].expand(len(WIDTHS), 100)
    F.cross_entropy(check[0](x).flatten(0, 1), y.flatten(), reduction="sum").div(100).backward()
    check[1].backward_by_hand(x, y)
    gap = max(((a.grad - b.grad).abs().max() / a.grad.abs().max().clamp_min(1e-12)).item()
              for a, b in zip(check[0].parameters(), check[1].parameters()))
    print(f"packed MLP: hand-written backward vs autograd on {device}: largest relative difference {gap:.1e}")
    tool = tool_epoch(mlp.pack(mlps()).to(device), data, list(range(len(WIDTHS))), 100, SGD)
    hand = sum(hand_epoch(m.to(device), data, 100, SGD) for m in mlps())
    total = len(WIDTHS) * 4000
    print(f"fig9_9 MLPs, 19 widths, one epoch of 4000 samples each: ddescent (packed) {tool * 1e3:.0f} ms = "
          f"{total / tool:,.0f} model-samples/s; hand loop (one model at a time) {hand * 1e3:.0f} ms = "
          f"{total / hand:,.0f} model-samples/s; ratio {hand / tool:.1f}")


if __name__ == "__main__":
    main()
