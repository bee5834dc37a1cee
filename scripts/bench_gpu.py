"""GPU benchmark of the tool's speed pieces against a plain PyTorch loop, on CIFAR-shaped synthetic data made on
the device (no downloads): 50,000 training and 10,000 test images [3, 32, 32], 10 classes, each image a smooth
class pattern under pixel noise, so a net can learn it; 15% of the training labels are redrawn at random (as in the
presets), so a long enough run also memorises noise.

    python scripts/bench_gpu.py --out bench.json                  # everything: over 10 minutes on one GPU
    python scripts/bench_gpu.py --out a.json --parts a            # (a) only; --parts b,c and --parts d likewise
    python scripts/bench_gpu.py --out a.json --parts a --modes plain,fp32,fp32-graphs,bf16-cl-graphs
    python scripts/bench_gpu.py --out smoke.json --quick          # tiny sizes: a smoke test that runs on a CPU

A part or a row of (a) that fails (a capture error, out of memory) is reported and the rest still runs; the JSON
is rewritten after every part.

(a) ResNet18 k=64, batch 128, Adam lr 1e-4, random crop + flip (ddescent.data.images.augment): samples/s of one
    epoch for a plain loop (fp32 with TF32 off, and PyTorch's defaults, which run cuDNN convolutions in TF32)
    against the tool's step (ddescent.step.Step, one model behind the packed interface) at each precision,
    layout and compile mode. Each row first runs warm-up steps (compilation, graph capture), then one timed epoch
    including its last partial batch.
(b) One epoch of every width of the fig9_9_cifar10_resnet18 and fig9_9_cifar10_cnn5 presets: one model after
    another, then packed (ddescent.models.packed_conv, each member its own batch order and augmentation). Packs
    are consecutive widths chosen by dynamic programming over a cost model made from the measured one-at-a-time
    epochs: a pack of G members of widest width w costs o + G (a(w) + m), o = the fastest single epoch (the
    fixed cost of a step), a(w) = its excess at width w (padding makes every member cost the widest's
    arithmetic), m = the per-member overhead measured on a pack of 4 narrowest members; G x w <= 512 channels.
(c) Projected GPU-hours of every CIFAR-10 preset (conf/experiment/*.yaml with ResNet18 or the 5-layer CNN):
    epochs x (sum of its runs' measured epoch times), one after another and packed (runs that differ only in
    width and seed share packs; the cost model of (b), scaled by (b)'s measured / predicted time of its
    multi-member packs, and unscaled). Evaluation passes are not counted (a few dozen over 60,000 images per run,
    against thousands of epochs).
(d) A 20-epoch learning curve (test error after every epoch), plain loop vs the tool (the seeds packed into one
    net), S seeds each. Agreement: at each epoch |mean tool - mean plain| <= the plain seeds' range (max - min)
    at that epoch, or twice the binomial standard error of a test error sqrt(p (1 - p) / n_test) when the seeds
    happen to agree more closely than that; the table shows both and the fraction of epochs that agree.

Prints readable tables and writes everything as JSON to --out.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import nn

from ddescent import accel
from ddescent.data.images import augment
from ddescent.models import build, packed_conv
from ddescent.models import Single
from ddescent.step import Step

EXPERIMENTS = Path(__file__).resolve().parents[1] / "conf" / "experiment"
SIGNAL = 0.5  # class pattern amplitude against unit pixel noise
LABEL_NOISE = 0.15  # training labels redrawn at random, as in the presets (test labels stay clean)
MAX_CHANNELS = 512
MODES = {  # (a): name -> (loop, precision or None for PyTorch's defaults, compile, channels_last)
    "plain": ("plain", "fp32", "none", False),
    "plain-defaults": ("plain", None, "none", False),
    "fp32": ("tool", "fp32", "none", False),
    "fp32-default": ("tool", "fp32", "default", False),
    "fp32-reduce-overhead": ("tool", "fp32", "reduce-overhead", False),
    "fp32-graphs": ("tool", "fp32", "graphs", False),
    "tf32": ("tool", "tf32", "none", False),
    "tf32-graphs": ("tool", "tf32", "graphs", False),
    "bf16-cl": ("tool", "bf16", "none", True),
    "bf16-cl-default": ("tool", "bf16", "default", True),
    "bf16-cl-graphs": ("tool", "bf16", "graphs", True),
}


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def synthetic(n: int, n_test: int, device, seed: int = 0):
    """(x, y, x_test, y_test): noise + SIGNAL x a smooth random pattern of the image's class."""
    g = torch.Generator(device).manual_seed(seed)
    patterns = F.interpolate(torch.randn(10, 3, 8, 8, generator=g, device=device), size=(32, 32), mode="bilinear")
    patterns = patterns / patterns.std()

    def draw(m, noise):
        y = torch.randint(0, 10, (m,), generator=g, device=device)
        x = torch.randn(m, 3, 32, 32, generator=g, device=device) + SIGNAL * patterns[y]
        redraw = torch.rand(m, generator=g, device=device) < noise
        return x, torch.where(redraw, torch.randint(0, 10, (m,), generator=g, device=device), y)

    return (*draw(n, LABEL_NOISE), *draw(n_test, 0.0))


def resnet(width: int, seed: int, device, family: str = "resnet18") -> nn.Module:
    cfg = OmegaConf.create({"name": family, "width": width})
    return build(cfg, (3, 32, 32), 10, torch.Generator().manual_seed(seed)).to(device)




def loss_fn(out, y):  # the loop's objective: the members' mean cross-entropies, summed
    G, C = out.shape[0], out.shape[-1]
    return F.cross_entropy(out.reshape(-1, C), y.reshape(-1), reduction="none").view(G, -1).mean(1).sum()


class Plain:
    """The ordinary loop: permute on the device, index, augment, forward, loss, backward, Adam."""

    def __init__(self, model, x, y, batch, lr, seed):
        self.model, self.x, self.y, self.batch = model, x, y, batch
        self.opt = torch.optim.Adam(model.parameters(), lr=lr)
        self.gen = torch.Generator(x.device).manual_seed(seed)

    def epoch(self, max_steps=None):
        n = len(self.y)
        perm = torch.randperm(n, device=self.x.device, generator=self.gen)
        for i, start in enumerate(range(0, n, self.batch)):
            if max_steps is not None and i >= max_steps:
                return
            idx = perm[start:start + self.batch]
            loss = F.cross_entropy(self.model(augment(self.x[idx], self.gen)), self.y[idx])
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()


class Tool:
    """The tool's pieces: G members (a packed net, or one model as Single), each with its own batch order and
    augmentation generator, batches gathered on the device, one accel step per batch."""

    def __init__(self, net, G, x, y, batch, lr, seeds, precision="fp32", compile="none", layout=False):
        self.net, self.G, self.x, self.y, self.batch = net, G, x, y, batch
        device = x.device
        if layout:
            net.to_channels_last(x[:1].expand(G, 1, *x.shape[1:]))
        opt = torch.optim.Adam(net.parameters(), lr=lr, fused=device.type != "mps")
        self.step = Step(net, opt, loss_fn, compile=compile, precision=precision)
        self.orders = [torch.Generator().manual_seed(1000 + s) for s in seeds]
        self.augmenters = [torch.Generator(device).manual_seed(2000 + s) for s in seeds]

    def epoch(self, max_steps=None):
        n, device = len(self.y), self.x.device
        perm = torch.stack([torch.randperm(n, generator=g) for g in self.orders]).to(device)
        for i, start in enumerate(range(0, n, self.batch)):
            if max_steps is not None and i >= max_steps:
                return
            idx = perm[:, start:start + self.batch]
            xb = self.x[idx]
            xb = torch.stack([augment(xb[g], self.augmenters[g]) for g in range(self.G)])
            self.step(xb, self.y[idx])


def timed(device, fn) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


# ------------------------------------------------------------------------------------------------ (a)


def part_a(args, device, data) -> list[dict]:
    x, y = data[0], data[1]
    rows = []
    print(f"\n(a) ResNet18 k={args.width}, batch {args.batch}, Adam {args.lr:g}, crop+flip, "
          f"one epoch of {len(y)} samples")
    print(f"{'mode':22s} {'loop':5s} {'precision':10s} {'compile':16s} {'layout':13s} {'epoch s':>8s} "
          f"{'samples/s':>10s}")
    for mode in args.modes:
        loop, prec, comp, layout = MODES[mode]
        if comp == "graphs" and device.type != "cuda" or comp in ("default", "reduce-overhead") and \
                device.type != "cuda" and not args.cpu_compile:
            print(f"{mode:22s} skipped on {device.type} (graphs need CUDA; --cpu-compile runs inductor on a CPU)")
            continue
        row = {"mode": mode, "loop": loop, "precision": prec or "pytorch-defaults", "compile": comp,
               "channels_last": layout}
        try:  # one failing row (a capture error, memory) must not cost the other rows of a GPU session
            with contextlib.nullcontext() if prec is None else accel.precision_context(prec, device):
                model = resnet(args.width, 0, device)
                if loop == "plain":
                    runner = Plain(model, x, y, args.batch, args.lr, 0)
                else:
                    runner = Tool(Single(model), 1, x, y, args.batch, args.lr, [0], prec, comp, layout)
                warm = timed(device, lambda: runner.epoch(args.warmup))
                seconds = timed(device, runner.epoch)
        except Exception as e:  # noqa: BLE001 - reported in the table and the JSON
            rows.append({**row, "error": repr(e)})
            print(f"{mode:22s} FAILED: {e!r}"[:300], flush=True)
            continue
        finally:
            runner = model = None
            if device.type == "cuda":
                torch.cuda.empty_cache()
        row.update({"warmup_s": warm, "epoch_s": seconds, "samples_per_s": len(y) / seconds})
        rows.append(row)
        print(f"{mode:22s} {loop:5s} {row['precision'][:10]:10s} {comp:16s} "
              f"{'channels_last' if layout else 'contiguous':13s} {seconds:8.2f} {row['samples_per_s']:10,.0f}",
              flush=True)
    return rows


# ------------------------------------------------------------------------------------------------ (b)


def preset(name: str) -> dict:
    cfg = OmegaConf.load(EXPERIMENTS / f"{name}.yaml")
    groups = {k.split("/")[-1]: v for d in cfg.get("defaults", []) for k, v in d.items()}
    params = cfg.get("hydra", {}).get("sweeper", {}).get("params", {}) or {}

    def axis(key, default):
        value = params.get(key, cfg.get(key, default))
        return [float(v) for v in str(value).split(",")]

    return {"name": name, "model": groups.get("model"), "data": groups.get("data"), "epochs": int(cfg.epochs),
            "widths": [int(w) for w in axis("width", 64)], "seeds": [int(s) for s in axis("seed", 0)],
            "reg_strengths": axis("reg_strength", 0.0)}


def cut(widths: list[int], cost) -> list[list[int]]:
    """Sorted widths cut into consecutive packs of least total cost, G x widest <= MAX_CHANNELS."""
    n = len(widths)
    best, back = [0.0] + [math.inf] * n, [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(j - 1, -1, -1):
            pack = widths[i:j]
            if len(pack) > 1 and len(pack) * pack[-1] > MAX_CHANNELS:
                break
            if best[i] + cost(pack) < best[j]:
                best[j], back[j] = best[i] + cost(pack), i
    packs, j = [], n
    while j:
        packs.append(widths[back[j]:j])
        j = back[j]
    return packs[::-1]


def part_b(args, device, data) -> dict:
    x, y = data[0], data[1]
    out = {}
    for family, name in (("resnet18", "fig9_9_cifar10_resnet18"), ("cnn5", "fig9_9_cifar10_cnn5")):
        widths = sorted(preset(name)["widths"])[: args.pack_widths]
        print(f"\n(b) {name}: one epoch of {len(y)} samples for each of {len(widths)} widths "
              f"(precision {args.pack_precision}, compile {args.pack_compile})")
        with accel.precision_context(args.pack_precision, device):
            peaks = {}

            def epoch(ws, seeds):
                members = [resnet(w, s, device, family) for w, s in zip(ws, seeds)]
                net = Single(members[0]) if len(ws) == 1 else packed_conv.pack(members).to(device)
                tool = Tool(net, len(ws), x, y, args.batch, args.lr, seeds, args.pack_precision, args.pack_compile)
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                tool.epoch(args.warmup)
                seconds = timed(device, tool.epoch)
                if device.type == "cuda":
                    peaks[tuple(ws)] = torch.cuda.max_memory_allocated(device) / 2**30
                return seconds

            epoch([widths[0]], [0])  # untimed: the first convolutions of a process pay one-off set-up costs
            single = {w: epoch([w], [0]) for w in widths}
            for w in widths:
                print(f"  width {w:3d} alone: {single[w]:7.2f} s", flush=True)
            o = min(single.values())
            narrow = [widths[0]] * 4
            four = epoch(narrow, [0, 1, 2, 3])
            m = max((four - o) / 4 - (single[widths[0]] - o), 0.0)

            def cost(pack):
                if len(pack) == 1:
                    return single[pack[0]]
                return o + len(pack) * (max(single[pack[-1]] - o, 0.0) + m)

            packs = cut(widths, cost)
            rows = []
            for pack in packs:
                try:
                    seconds = single[pack[0]] if len(pack) == 1 else epoch(pack, list(range(len(pack))))
                except Exception as e:  # noqa: BLE001 - e.g. out of memory: reported, and the widths run alone
                    print(f"  pack {pack} FAILED: {e!r}"[:300], flush=True)
                    rows += [{"widths": [w], "predicted_s": single[w], "epoch_s": single[w], "peak_gib": None,
                              "failed_pack": pack, "error": repr(e)} for w in pack]
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
                    continue
                peak = peaks.get(tuple(pack), peaks.get((pack[0],)))
                rows.append({"widths": pack, "predicted_s": cost(pack), "epoch_s": seconds, "peak_gib": peak})
                print(f"  pack {pack}: {seconds:7.2f} s (predicted {cost(pack):.2f})"
                      + (f", peak memory {peak:.1f} GiB" if peak is not None else ""), flush=True)
        sequential, packed = sum(single.values()), sum(r["epoch_s"] for r in rows)
        multi = [r for r in rows if len(r["widths"]) > 1]  # the model's error, where it predicts
        calibration = sum(r["epoch_s"] for r in multi) / sum(r["predicted_s"] for r in multi) if multi else 1.0
        out[family] = {"preset": name, "widths": widths, "single_epoch_s": {str(w): t for w, t in single.items()},
                       "fixed_s": o, "member_overhead_s": m, "packs": rows, "sequential_s": sequential,
                       "packed_s": packed, "speedup": sequential / packed, "calibration": calibration}
        print(f"  {family}: one after another {sequential:.1f} s, packed {packed:.1f} s, "
              f"{sequential / packed:.2f}x", flush=True)
    return out


# ------------------------------------------------------------------------------------------------ (c)


def part_c(args, b: dict) -> list[dict]:
    rows = []
    print(f"\n(c) projected GPU-hours (training steps only; scaled to {args.samples} -> 50000 samples an epoch)")
    print(f"{'preset':28s} {'model':9s} {'runs':>5s} {'epochs':>6s} {'one at a time h':>16s} {'packed h':>9s} "
          f"{'(uncalibrated)':>13s}")
    scale = 50000 / args.samples
    for path in sorted(EXPERIMENTS.glob("*.yaml")):
        p = preset(path.stem)
        if p["data"] != "cifar10" or p["model"] not in b:
            continue
        m = b[p["model"]]
        single = {int(w): t for w, t in m["single_epoch_s"].items()}

        def t(w):  # nearest measured width (the quick run measures a few)
            return single[min(single, key=lambda v: (abs(v - w), v))]

        def cost(pack):
            if len(pack) == 1:
                return t(pack[0])
            return m["fixed_s"] + len(pack) * (max(t(pack[-1]) - m["fixed_s"], 0.0) + m["member_overhead_s"])

        runs = [w for w in p["widths"] for _ in p["seeds"]]  # runs of different lambda never share a pack
        sequential = len(p["reg_strengths"]) * sum(t(w) for w in runs)
        plan = cut(sorted(runs), cost)
        model = len(p["reg_strengths"]) * sum(cost(pk) for pk in plan)
        packed = len(p["reg_strengths"]) * sum(cost(pk) * (m["calibration"] if len(pk) > 1 else 1.0)
                                               for pk in plan)
        hours = p["epochs"] * scale / 3600
        row = {"preset": p["name"], "model": p["model"], "runs": len(runs) * len(p["reg_strengths"]),
               "epochs": p["epochs"], "packs": plan, "sequential_gpu_h": sequential * hours,
               "packed_gpu_h": packed * hours, "packed_uncalibrated_gpu_h": model * hours}
        rows.append(row)
        print(f"{row['preset']:28s} {row['model']:9s} {row['runs']:5d} {row['epochs']:6d} "
              f"{row['sequential_gpu_h']:16.1f} {row['packed_gpu_h']:9.1f} {row['packed_uncalibrated_gpu_h']:13.1f}")
    return rows


# ------------------------------------------------------------------------------------------------ (d)


@torch.no_grad()
def test_errors(net, G, x, y, forward) -> list[float]:
    was = net.training
    net.eval()
    wrong = torch.zeros(G, device=x.device)
    for i in range(0, len(y), 1000):
        with forward():
            out = net(x[i:i + 1000].expand(G, *x[i:i + 1000].shape))
        wrong += (out.argmax(-1) != y[i:i + 1000]).sum(1)
    net.train(was)
    return (wrong / len(y)).tolist()


def part_d(args, device, data) -> dict:
    x, y, xt, yt = data
    seeds = list(range(args.curve_seeds))
    print(f"\n(d) {args.curve_epochs}-epoch learning curves, ResNet18 k={args.curve_width}, seeds {seeds}: plain "
          f"fp32 loop (one model at a time) vs the tool ({args.curve_precision}, compile {args.curve_compile}, "
          f"seeds packed)")
    plain = {}
    with accel.precision_context("fp32", device) as forward:
        for s in seeds:
            model = resnet(args.curve_width, s, device)
            loop = Plain(model, x, y, args.batch, args.lr, s)
            plain[s] = []
            for _ in range(args.curve_epochs):
                loop.epoch()
                plain[s] += test_errors(Single(model), 1, xt, yt, forward)
    with accel.precision_context(args.curve_precision, device) as forward:
        members = [resnet(args.curve_width, s, device) for s in seeds]
        net = packed_conv.pack(members).to(device)
        tool = Tool(net, len(seeds), x, y, args.batch, args.lr, seeds, args.curve_precision, args.curve_compile)
        curve = []
        for _ in range(args.curve_epochs):
            tool.epoch()
            curve.append(test_errors(net, len(seeds), xt, yt, forward))
    rows, agree = [], 0
    print(f"{'epoch':>5s} {'plain mean':>10s} {'range':>7s} {'tool mean':>10s} {'range':>7s} {'|diff|':>7s} "
          f"{'bound':>7s} agree")
    for e in range(args.curve_epochs):
        p = [plain[s][e] for s in seeds]
        q = curve[e]
        mp, mq = statistics.mean(p), statistics.mean(q)
        bound = max(max(p) - min(p), 2 * math.sqrt(max(mp * (1 - mp), 1e-12) / len(yt)))
        ok = abs(mq - mp) <= bound
        agree += ok
        rows.append({"epoch": e + 1, "plain": p, "tool": q, "bound": bound, "agree": ok})
        print(f"{e + 1:5d} {mp:10.4f} {max(p) - min(p):7.4f} {mq:10.4f} {max(q) - min(q):7.4f} "
              f"{abs(mq - mp):7.4f} {bound:7.4f} {'yes' if ok else 'NO'}")
    print(f"agreement within seed-to-seed spread: {agree}/{args.curve_epochs} epochs")
    return {"epochs": rows, "agree_fraction": agree / args.curve_epochs, "width": args.curve_width,
            "seeds": seeds, "precision": args.curve_precision, "compile": args.curve_compile}


# ------------------------------------------------------------------------------------------------ main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="JSON file to write")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test (a few minutes on a CPU)")
    ap.add_argument("--parts", default="a,b,c,d")
    ap.add_argument("--modes", default=",".join(MODES), help="rows of (a): " + ", ".join(MODES))
    ap.add_argument("--samples", type=int, default=None, help="training samples (default 50000; quick 512)")
    ap.add_argument("--width", type=int, default=None, help="(a) ResNet18 width (default 64; quick 4)")
    ap.add_argument("--pack-precision", default="fp32", choices=accel.PRECISIONS)
    ap.add_argument("--pack-compile", default="none", choices=accel.COMPILE_MODES)
    ap.add_argument("--curve-width", type=int, default=None, help="(d) ResNet18 width (default 16; quick 2)")
    ap.add_argument("--curve-precision", default="fp32", choices=accel.PRECISIONS)
    ap.add_argument("--curve-compile", default="none", choices=accel.COMPILE_MODES)
    ap.add_argument("--cpu-compile", action="store_true", help="run (a)'s torch.compile rows on a CPU too (slow)")
    ap.add_argument("--cudnn-benchmark", action="store_true",
                    help="let cuDNN time its algorithms for each new shape (torch.backends.cudnn.benchmark)")
    args = ap.parse_args()
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    q = args.quick
    args.samples = args.samples or (512 if q else 50000)
    args.width = args.width or (4 if q else 64)
    args.curve_width = args.curve_width or (2 if q else 16)
    args.batch, args.lr = 128, 1e-4
    args.warmup = 4 if q else 30  # steps before the timed epoch: compilation, capture, cuDNN autotuning
    args.pack_widths = 4 if q else None
    args.curve_epochs, args.curve_seeds = (3, 2) if q else (20, 3)
    args.modes = [m for m in args.modes.split(",") if m]
    unknown = set(args.modes) - set(MODES)
    if unknown:
        ap.error(f"--modes: unknown {', '.join(sorted(unknown))}")
    parts = set(args.parts.split(","))
    if "c" in parts:
        parts.add("b")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device {device} ({name}), torch {torch.__version__}, {args.samples} samples")
    data = synthetic(args.samples, 2000 if q else 10000, device)
    result = {"machine": {"device": str(device), "device_name": name, "torch": torch.__version__,
                          "cuda": torch.version.cuda, "cores": os.cpu_count(),
                          "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")},
              "quick": q, "samples": args.samples, "cudnn_benchmark": args.cudnn_benchmark}
    out = Path(args.out)
    for part, key, run in (("a", "a_resnet18_step", lambda: part_a(args, device, data)),
                           ("b", "b_packing", lambda: part_b(args, device, data)),
                           ("c", "c_projection", lambda: part_c(args, result["b_packing"])),
                           ("d", "d_learning_curve", lambda: part_d(args, device, data))):
        if part not in parts:
            continue
        try:  # a part that fails is reported; the others still run, and what was measured is kept
            result[key] = run()
        except Exception as e:  # noqa: BLE001
            result[key] = {"error": repr(e)}
            print(f"part ({part}) FAILED: {e!r}", flush=True)
        out.write_text(json.dumps(result, indent=1))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
