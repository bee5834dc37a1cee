"""Measure the planner's pack cost model on this machine and write it as JSON (the format of
ddescent/pack_costs.json, read by ddescent.packing: an entry per device kind, "cpu" or "accelerator").

    python scripts/measure_pack_costs.py costs.json                       # cuda if available, else cpu
    python scripts/measure_pack_costs.py costs.json --merge               # replace only this kind's entry
    python scripts/measure_pack_costs.py costs.json --device cpu --quick  # under a minute on a CPU (smoke test)

For every packable family it times one training step (the loop's step: forward, loss, backward, optimizer
update, and crop+flip of every member's batch for image families) of packs of G members of width w, for several
G and w, and fits by least squares, per family,

    step time = step_overhead + G * member_overhead + G * flop(w) / rate

where flop(w) = 6 x n_params(w) x batch is the arithmetic the planner counts for one member's step
(ddescent.planner.training_flops per sample, times the batch). The fit weighs every point by 1 / its time (relative
errors), and drops a coefficient that comes out negative. Written per family: step_overhead_s, member_overhead_s,
flops_per_s (and the same overheads in FLOP-equivalents, STEP_OVERHEAD_FLOP = step_overhead x rate and
MEMBER_OVERHEAD_FLOP = member_overhead x rate); the entry's top level repeats the MLP's. A convolution does much
more arithmetic per parameter than 6 x batch (it slides over the image), so each family has its own rate: a rate
in the planner's units, not the device's FLOP/s. flops_per_s is null where the arithmetic was too small to see.

Members of a pack share one width here (a pack costs its widest member's arithmetic G times). On a CPU the steps
run on one thread, as the sweep's worker processes do (--threads to change).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from ddescent import accel
from ddescent.data.images import augment
from ddescent.metrics import per_model_loss
from ddescent.models import build, family, mlp, packed_conv

from ddescent.step import Step

# family -> (input shape, batch, optimizer, widths, member counts), as its presets train it
FULL = {
    "mlp": ((40,), 100, "sgd", [8, 47, 135, 300], [1, 4, 16, 64]),
    "cnn1d": ((40,), 100, "adam", [4, 16, 64, 100], [1, 4, 16, 64]),
    "cnn5": ((3, 32, 32), 128, "adam", [2, 8, 16, 32, 64], [1, 2, 4, 8, 16]),
    "resnet18": ((3, 32, 32), 128, "adam", [2, 8, 16, 32, 64], [1, 2, 4, 8]),
}
QUICK = {
    "mlp": ((40,), 100, "sgd", [8, 64, 300], [1, 4, 16]),
    "cnn1d": ((40,), 100, "adam", [4, 32], [1, 4, 8]),
    "cnn5": ((3, 32, 32), 32, "adam", [1, 4], [1, 2, 4]),
    "resnet18": ((3, 32, 32), 32, "adam", [1, 2], [1, 2, 3]),
}
MAX_CHANNELS = 512  # image families: G x width at most, which keeps packs of ResNet18s within one GPU's memory


def _config(name: str, width: int):
    return OmegaConf.create({"name": name, "width": width, "depth": 2})


def _pack(name: str, width: int, G: int, shape, device):
    members = [build(_config(name, width), shape, 10, torch.Generator().manual_seed(i)) for i in range(G)]
    return (mlp.pack(members) if name == "mlp" else packed_conv.pack(members)).to(device)


def step_time(name: str, width: int, G: int, spec, device, args) -> float:
    """Seconds of one training step: the fastest of `args.repeats` runs of `args.steps` steps, after warm-up (on
    a shared machine other work only ever adds time)."""
    shape, batch, optim = spec[0], spec[1], spec[2]
    net = _pack(name, width, G, shape, device)
    if optim == "sgd":
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, fused=True)
    else:
        opt = torch.optim.Adam(net.parameters(), lr=1e-4, fused=True)
    by_hand = (lambda x, y: net.backward_by_hand(x, y)) if name == "mlp" else None
    step = Step(net, opt, lambda out, y: per_model_loss(out, y).sum(), compile=args.compile,
                precision=args.precision, backward=by_hand, lean=True)  # the loop's own lean SGD update
    g = torch.Generator().manual_seed(0)
    x = torch.randn(G, batch, *shape, generator=g).to(device)
    y = torch.randint(0, 10, (G, batch), generator=g).to(device)
    gens = [torch.Generator(device).manual_seed(i) for i in range(G)]
    image = len(shape) == 3

    def one() -> None:
        xb = torch.stack([augment(x[i], gens[i]) for i in range(G)]) if image else x
        step(xb, y)

    for _ in range(args.warmup):
        one()
    times = []
    for _ in range(args.repeats):
        sync(device)
        start = time.perf_counter()
        for _ in range(args.steps):
            one()
        sync(device)
        times.append((time.perf_counter() - start) / args.steps)
    return min(times)


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def fit(points: list[dict]) -> dict:
    """Relative least squares of t = c0 + c1 G + c2 G flop, each coefficient >= 0 (a negative one is dropped)."""
    t = np.array([p["step_s"] for p in points])
    cols = np.array([[1.0, p["members"], p["members"] * p["member_flop"]] for p in points])
    keep = [0, 1, 2]
    while True:
        A = cols[:, keep] / t[:, None]
        coef, *_ = np.linalg.lstsq(A, np.ones_like(t), rcond=None)
        if (coef >= 0).all() or len(keep) == 1:
            break
        keep.pop(int(np.argmin(coef)))
    c = np.zeros(3)
    c[keep] = np.maximum(coef, 0)
    pred = cols @ c
    rate = 1.0 / c[2] if c[2] > 0 else None  # None: arithmetic too small to see at these widths
    return {"step_overhead_s": float(c[0]), "member_overhead_s": float(c[1]), "flops_per_s": rate,
            "STEP_OVERHEAD_FLOP": float(c[0]) * rate if rate else None,
            "MEMBER_OVERHEAD_FLOP": float(c[1]) * rate if rate else None,
            "rms_relative_error": float(np.sqrt(np.mean((pred / t - 1) ** 2))),
            "max_relative_error": float(np.max(np.abs(pred / t - 1)))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="JSON file to write")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--quick", action="store_true", help="small packs, short timings: a smoke test (~1 min on CPU)")
    ap.add_argument("--families", default="mlp,cnn1d,cnn5,resnet18")
    ap.add_argument("--precision", default="fp32", choices=accel.PRECISIONS)
    ap.add_argument("--compile", default="none", choices=accel.COMPILE_MODES)
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (the sweep's workers use one each)")
    ap.add_argument("--merge", action="store_true",
                    help="keep the other device kind's entry of an existing OUT (replace only this kind's)")
    args = ap.parse_args()
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    specs = QUICK if args.quick else FULL
    args.warmup, args.steps, args.repeats = (3, 5, 5) if args.quick else (5, 20, 5)
    if args.compile != "none":
        args.warmup += 3  # compilation and graph capture happen in the first steps
    names = [n for n in args.families.split(",") if n]
    families = {}
    with accel.precision_context(args.precision, device):
        for name in names:
            spec = specs[name]
            shape, batch = spec[0], spec[1]
            points = []
            for width in spec[3]:
                flop = 6.0 * family(name).n_params(_config(name, width), shape, 10) * batch
                for G in spec[4]:
                    if len(shape) == 3 and G * width > MAX_CHANNELS and G > 1:
                        continue
                    t = step_time(name, width, G, spec, device, args)
                    points.append({"width": width, "members": G, "member_flop": flop, "step_s": t})
                    print(f"{name:9s} width {width:4d} x {G:3d} members: {t * 1e3:9.3f} ms a step", flush=True)
            model = fit(points)
            model.update({"input_shape": list(shape), "batch": batch, "optimizer": spec[2],
                          "augment": len(shape) == 3, "points": points})
            families[name] = model
            rate = (f"rate {model['flops_per_s'] / 1e9:.1f} GFLOP-eq/s (STEP_OVERHEAD_FLOP "
                    f"{model['STEP_OVERHEAD_FLOP']:.3g}, MEMBER_OVERHEAD_FLOP {model['MEMBER_OVERHEAD_FLOP']:.3g})"
                    if model["flops_per_s"] else "arithmetic not measurable at these widths")
            print(f"{name}: step overhead {model['step_overhead_s'] * 1e3:.3f} ms, per member "
                  f"{model['member_overhead_s'] * 1e3:.3f} ms, {rate}; fit error rms "
                  f"{model['rms_relative_error']:.1%}, max {model['max_relative_error']:.1%}", flush=True)
    # The planner's file (ddescent/pack_costs.json): one entry per device kind; its top-level constants are the
    # MLP's (or the first family measured), and every family's own fit is under "families".
    info = machine(device)
    top = families.get("mlp") or next(iter(families.values()))
    entry = {key: top[key] for key in ("step_overhead_s", "member_overhead_s", "flops_per_s")}
    entry.update({
        "measured_on": f"{info['device_name']}, torch {info['torch']}, {info['cores']} cores, "
                       f"{info['threads']} thread(s), {info['date'][:10]}",
        "how": f"scripts/measure_pack_costs.py{' --quick' if args.quick else ''}: relative least squares of one "
               f"training step's time (precision {args.precision}, compile {args.compile}) of packs of G members "
               f"x widths; top level: {'mlp' if 'mlp' in families else names[0]}; each family under families",
        "machine": info, "precision": args.precision, "compile": args.compile, "quick": args.quick,
        "arithmetic": "6 * n_params(width) * batch per member and step (ddescent.planner.training_flops per sample)",
        "families": families})
    kind = "cpu" if device.type == "cpu" else "accelerator"
    out = Path(args.out)
    result = json.loads(out.read_text()) if args.merge and out.exists() else {}
    result[kind] = entry
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote the {kind} entry of {out}")


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def machine(device) -> dict:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    return {"device": str(device), "device_name": name, "torch": torch.__version__,
            "cuda": torch.version.cuda, "cores": os.cpu_count(), "threads": torch.get_num_threads(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


if __name__ == "__main__":
    main()
