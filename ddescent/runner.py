"""One training run (or a pack of runs trained together): data -> models -> train loop -> records -> store."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import time
from pathlib import Path

import pandas as pd
import torch
from omegaconf import OmegaConf

import ddescent
from ddescent import data as datasets
from ddescent import models, regularizers, store
from ddescent.config import run_id
from ddescent.data.images import augment
from ddescent.train import (History, derive_seed, evaluate, make_optimizer, make_schedule, resolve_device,
                            train, tune_codebook)

INIT_STREAM = 0


class Single(torch.nn.Module):
    """Gives a plain model the packed interface [G=1, B, ...] -> [1, B, ..., classes]."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x[0]).unsqueeze(0)


def pack_key(config: dict) -> str:
    """Runs with equal keys can train as one pack: same data, family, recipe; only seed and width differ."""
    shared = json.loads(json.dumps(config))
    for key in ("width", "seed"):
        shared.pop(key, None)
    shared["model"].pop("width", None)
    shared["train"].pop("seed", None)
    return json.dumps(shared, sort_keys=True)


def can_pack(config: dict) -> bool:
    fam = models.FAMILIES.get(config["model"]["name"])
    return hasattr(fam, "pack") and config["regularizer"]["name"] in regularizers.PACKABLE


def execute(configs: list[dict], progress=None, force: bool = False) -> list[str]:
    """Train the runs of one pack (see pack_key) and write one parquet file per run. Returns their statuses.

    Runs already finished (unless `force`), or being trained by another live sweep, are left out; a checkpoint
    of this pack from an interrupted attempt is resumed."""
    with contextlib.ExitStack() as stack:
        todo = []
        for config in configs:
            rid = run_id(config)
            claimed = stack.enter_context(store.claim(store.runs_dir(config["results"], config["name"]), rid))
            if claimed and (force or not store.is_done(config["results"], config["name"], rid)):
                todo.append(config)
        return _train_and_store(todo, progress) if todo else []


def _checkpoint_path(configs: list[dict]) -> Path:
    key = hashlib.sha256(",".join(sorted(run_id(c) for c in configs)).encode()).hexdigest()[:12]
    return Path(configs[0]["results"]) / configs[0]["name"] / "checkpoints" / f"{key}.pt"


def _train_and_store(configs: list[dict], progress) -> list[str]:
    cfgs = [OmegaConf.create(c) for c in configs]
    first = cfgs[0]
    device = resolve_device(first.train.device)
    data = datasets.load(first.data, device)
    fam = models.family(first.model)
    members = [models.build(c.model, data.input_shape, data.n_classes,
                            torch.Generator().manual_seed(derive_seed(c.train.seed, INIT_STREAM))) for c in cfgs]
    if first.model.get("solver") in getattr(fam, "CLOSED_FORM", ()):
        histories = _solve(fam, cfgs, members, data)
    else:
        histories = _train(fam, configs, cfgs, members, data, device, progress)
    statuses = []
    for config, cfg, member, history in zip(configs, cfgs, members, histories):
        frame = records(config, cfg, member, data, history, device)
        store.write_run(frame, store.run_path(cfg.results, cfg.name, frame["run_id"].iloc[0]))
        statuses.append(history.status)
    return statuses


def _solve(fam, cfgs, members, data) -> list[History]:
    """Families with closed-form solvers (`CLOSED_FORM` and `solve`) give their evaluation rows directly."""
    histories = []
    for cfg, member in zip(cfgs, members):
        start = time.perf_counter()
        rows = fam.solve(member.to(data.x_train.device), data, cfg)
        for row in rows:
            row.setdefault("wall_time_s", time.perf_counter() - start)
        finite = all(math.isfinite(v) for row in rows for k, v in row.items() if isinstance(v, float))
        histories.append(History(rows, "complete" if finite else "diverged"))
    return histories


def _train(fam, configs, cfgs, members, data, device, progress) -> list[History]:
    first = cfgs[0]
    net = (fam.pack(members) if hasattr(fam, "pack") else Single(members[0])).to(device)
    regularizer = regularizers.build(first.regularizer)
    params = [{"params": list(net.parameters())}]
    penalty = extras = None
    if regularizer is not None:
        regularizer = regularizer.to(device)
        weights = regularizer.regularized(net)
        penalty = regularizers.Penalty(regularizer, weights, first.regularizer, len(data.y_train))
        if hasattr(regularizer, "param_groups"):  # a learned prior: its own learning rates
            params += regularizer.param_groups(first.optim.lr)
        if hasattr(regularizer, "mixture"):
            extras = lambda: [dict(zip(("sws_pi", "sws_mu", "sws_sigma"), regularizer.mixture()))]  # noqa: E731
    optimizer = make_optimizer(params, first.optim)
    schedule = make_schedule(optimizer, first.optim)

    ckpt = _checkpoint_path(configs)
    resume = None
    if ckpt.exists():
        try:
            resume = torch.load(ckpt, map_location=device, weights_only=True)
        except Exception:  # a checkpoint from another version or a damaged one: start over
            resume = None

    def save(state: dict) -> None:
        store.write_atomic(ckpt, lambda f: torch.save(state, f))

    epochs = first.train.epochs
    if first.train.get("steps"):  # a budget of optimizer steps (the same at every n_train), in whole epochs
        epochs = math.ceil(first.train.steps / math.ceil(len(data.y_train) / first.train.batch_size))
    histories = train(net, data, seeds=[c.train.seed for c in cfgs], epochs=epochs,
                      batch_size=first.train.batch_size, eval_points=first.train.eval_points,
                      optimizer=optimizer, penalty=penalty, progress=progress,
                      checkpoint_every=first.train.checkpoint_every, save=save, resume=resume,
                      patience=first.train.patience, augment=augment if first.data.get("augment") else None,
                      extras=extras, state_modules={"regularizer": regularizer} if regularizer is not None else None,
                      schedule=schedule, label_smoothing=float(first.train.get("label_smoothing", 0.0)),
                      length_buckets=int(first.train.get("length_buckets", 0)))
    if first.regularizer.get("quantize") and histories[0].status == "complete":
        histories[0].summary.update(_quantize(net, regularizer, data, first))
    if not first.train.keep_checkpoints:
        ckpt.unlink(missing_ok=True)
    return histories


WEIGHT_HIST_BINS = 200


def _quantize(net, prior, data, cfg) -> dict:
    """Snap the weights to their component means (soft weight sharing's compression) and evaluate again; with
    `regularizer.codebook_epochs`, then fine-tune the codebook on the training set and evaluate once more
    (`quantized_tuned_*`). A histogram of the weights before snapping is kept for the `sws` figure (the weights
    themselves are not)."""
    weights = prior.regularized(net)
    flat = torch.cat([w.detach().reshape(-1) for w in weights]).float().cpu()
    lo, hi = flat.min().item(), flat.max().item()
    counts = torch.histc(flat, bins=WEIGHT_HIST_BINS, min=lo, max=hi if hi > lo else lo + 1e-6)
    hist = {"weight_hist_range": [lo, hi], "weight_hist_counts": counts.tolist()}
    assignments = prior.assign(weights)
    stats = prior.quantize_(weights, assignments)
    out = {f"quantized_{k}": v for k, v in stats.items() if not k.startswith("compression")}
    out.update({k: v for k, v in stats.items() if k.startswith("compression")})
    out.update(_scores(net, data, "quantized"))
    epochs = int(cfg.regularizer.get("codebook_epochs") or 0)
    if epochs:
        optim = OmegaConf.merge(cfg.optim, {"lr": cfg.regularizer.get("codebook_lr") or cfg.optim.lr})
        tune_codebook(net, weights, assignments, prior.means(), ~prior.free, data, epochs=epochs,
                      batch_size=cfg.train.batch_size, optimizer=lambda groups: make_optimizer(groups, optim),
                      seed=cfg.train.seed)
        out.update(_scores(net, data, "quantized_tuned"))
    return {**hist, **out}


def _scores(net, data, prefix: str) -> dict:
    out = {}
    for name, x, y in (("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test)):
        error, loss = evaluate(net, x, y, 1)
        out[f"{prefix}_{name}_error"], out[f"{prefix}_{name}_loss"] = error.item(), loss.item()
    return out


def records(config: dict, cfg, member: torch.nn.Module, data, history, device) -> pd.DataFrame:
    """The long-format rows of one run (results contract, design §4)."""
    frame = pd.DataFrame(history.rows)
    meta = {
        "run_id": run_id(config),
        "experiment": cfg.name,
        "status": history.status,
        "dataset": cfg.data.name,
        "model": cfg.model.name,
        "optimizer": cfg.optim.name,
        "regularizer": cfg.regularizer.name,
        "width": float(cfg.width),
        "n_params": models.count_params(member),
        "n_train": len(data.y_train),
        "n_test": len(data.y_test),
        "label_noise": float(cfg.label_noise),
        "label_noise_effective": data.label_noise_effective,
        "reg_strength": float(cfg.regularizer.strength),
        "seed": int(cfg.train.seed),
        "data_seed": int(cfg.data.data_seed),
        "config": json.dumps(config, sort_keys=True),
        "ddescent_version": ddescent.__version__,
        "torch_version": torch.__version__,
        "device": str(device),
    }
    for key, value in {**meta, **history.summary}.items():
        frame[key] = [value] * len(frame) if isinstance(value, list) else value  # a list is one cell, per row
    for col in ("val_error", "val_loss"):
        if col not in frame:
            frame[col] = float("nan")
    first = [c for c in store.COLUMNS if c in frame]
    return frame[first + [c for c in frame.columns if c not in first]]
