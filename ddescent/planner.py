"""Planning a sweep: expand the jobs, validate all of them, name their folders, skip the finished, estimate
their work, and cut the pending ones into packs. Nothing here writes anything."""

from __future__ import annotations

import functools
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from omegaconf import OmegaConf

from ddescent import checkpoint, data, extension, models, packing, store
from ddescent.errors import ConfigError
from ddescent.config import (compose, compose_all, expand, expand_one, hydra_quote, split_overrides, take_search_path,
                             validate)
from ddescent.accel import resolve_device
from ddescent.machine import available_memory_bytes
from ddescent.spec import RECORDED_AXES, RunSpec, hyperparameters, put

GROUP_CHOICES = ("data", "model", "optim", "regularizer")


@dataclass
class Job:
    """A planned run: its spec, whether it is already done (a damaged result file counts as not done), and the
    label the sweep reports it by."""

    spec: RunSpec
    done: bool
    label: str = ""
    damaged: str | None = None  # what is wrong with a result file that exists but does not read back whole
    overrides: list[str] = field(default_factory=list)
    extension: extension.Extension | None = None  # a shorter run it continues, or why it cannot

    @property
    def extends(self) -> bool:
        """Continues the kept final state of a shorter run (ddescent.extension)."""
        return self.extension is not None and bool(self.extension.together)

    @functools.cached_property
    def flops(self) -> float:
        """Training arithmetic of this run (see training_flops); computed once, packing asks often."""
        return training_flops(self.spec.config)

    @functools.cached_property
    def steps(self) -> int:
        c = self.spec.config
        return c["epochs"] * math.ceil(_n_train(c) / c["train"]["batch_size"])

    @functools.cached_property
    def packable(self) -> bool:
        """Can share a batched computation with runs that differ only in width and seed (ddescent.packing)."""
        return packing.packable(self.spec, self.accelerator)

    @functools.cached_property
    def accelerator(self) -> bool:
        """Trains on a GPU (or MPS) rather than the CPU."""
        return resolve_device(self.spec.config["train"]["device"]).type != "cpu"


def plan(overrides: list[str], results: str | None = None, *, memory_check: bool = True,
         one_run: bool = False) -> list[Job]:
    """Every job of the sweep (with `one_run`: the one run the overrides name, as Hydra's RUN mode composes it),
    validated (ConfigError on the first bad one), with its run_id and status. Nothing is written."""
    root = check_results(results) if results else None
    extra = [f"results={hydra_quote(str(root))}"] if root else []
    overrides = take_search_path(overrides)
    lines = (expand_one if one_run else expand)(overrides + extra)
    named = any(o.split("=", 1)[0].lstrip("+~") == "name" for o in overrides)
    jobs: dict[str, Job] = {}
    fingerprints: dict[str, str | None] = {}
    for line, cfg in zip(lines, compose_all(lines)):
        if not named:
            _name_after_groups(cfg, overrides)
        config = _neutral(validate(cfg))
        config["results"] = str(check_results(config["results"]))
        data_key = json.dumps(config["data"], sort_keys=True)
        if data_key not in fingerprints:
            fingerprints[data_key] = data.fingerprint(cfg.data)
        spec = RunSpec.of(config, fingerprints[data_key])
        if spec.run_id not in jobs:  # width=8,8 or an axis that does not change the numbers: one run
            problem = store.check_run(store.run_path(spec.folder, spec.run_id), spec.run_id)
            jobs[spec.run_id] = Job(spec, problem is None, damaged=None if problem in (None, "missing") else problem,
                                    overrides=line)
    if not jobs:
        raise ConfigError(f"the sweep {' '.join(split_overrides(overrides)[0])} has no jobs")
    planned = list(jobs.values())
    if memory_check:
        check_memory(planned)
    _label(planned)
    for job_id, ext in extension.plan(planned).items():
        jobs[job_id].extension = ext
    return planned


def _neutral(config: dict) -> dict:
    """The family's settings its solver does not read, at their neutral value (Family.neutral)."""
    family = models.family(config["model"]["name"])
    for key, value in (family.neutral(config) if family.neutral is not None else {}).items():
        put(config, key, value)
    return config


def check_results(path: str | Path) -> Path:
    """The results root as an absolute path that can be written (created if need be): ConfigError before any
    work when it is a file, or not writable."""
    root = Path(os.path.expanduser(str(path))).absolute()
    existing = root
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"--results {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"--results {path}: {existing} is not writable")
    return root


@functools.lru_cache(maxsize=64)
def _preset_groups(experiment: str) -> dict[str, set[str]]:
    """The group options a preset trains: its defaults and the choices its own sweep goes through."""
    cfg = compose([f"experiment={experiment}"], hydra=True)
    params = OmegaConf.select(cfg, "hydra.sweeper.params") or {}
    return {g: {cfg[g].get("name"), *str(params.get(g, "")).split(",")} - {"", None} for g in GROUP_CHOICES}


def _name_after_groups(cfg, user: list[str]) -> None:
    """Runs of a preset with group choices it does not train (model=cnn1d on fig9_9) go to their own folder,
    <preset>-<choices> (fig9_9-cnn1d), so that they neither share the preset's folder nor its figures."""
    chosen = [g for g in GROUP_CHOICES if any(o.split("=", 1)[0] == g for o in user)]
    if not chosen:
        return
    experiment = next((o.split("=", 1)[1] for o in user if o.startswith("experiment=")), cfg.name)
    try:
        preset = _preset_groups(experiment)
    except ConfigError:
        return
    changed = [cfg[g].get("name") for g in chosen if cfg[g].get("name") not in preset[g]]
    if None in changed:  # a group file without a name: config.validate says so
        return
    if changed:
        cfg.name = "-".join([cfg.name, *changed])


# The axes RunSpec.label shows; the other recorded axes (data_seed) join the hyperparameters that may vary.
LABELLED_AXES = ("width", "n_train", "label_noise", "reg_strength", "seed", "epochs")


def _label(jobs: list[Job]) -> None:
    """Each job's label: family, width, n_train, noise, λ, seed, epochs, and every other hyperparameter that
    varies within the sweep (data_seed included), so that no two jobs read alike."""
    flat = [{**hyperparameters(j.spec.config),
             **{k: j.spec.config.get(k) for k in RECORDED_AXES if k not in LABELLED_AXES}} for j in jobs]
    keys = sorted({k for f in flat for k in f})
    varying = [k for k in keys if len({json.dumps(f.get(k), sort_keys=True) for f in flat}) > 1]
    swapped = {k.split(".")[0] for k in varying if k.endswith(".name") and k.count(".") == 1}  # a group choice
    shown = [k for k in varying if k.split(".")[0] not in swapped or k.count(".") == 1 and k.endswith(".name")]
    for job, f in zip(jobs, flat):
        job.label = job.spec.label + "".join(
            f" {k[:-len('.name')]}={_text(f.get(k))}" if k.split(".")[0] in swapped else f" {k}={_text(f.get(k))}"
            for k in shown if k != "model.name")


def _text(value) -> str:
    return "null" if value is None else str(value)  # as an override would set it


def check_memory(jobs: list[Job]) -> None:
    """Refuse a run whose parameters, gradients and optimizer state alone exceed the memory its device has."""
    seen = set()
    for job in jobs:
        c = job.spec.config
        key = (json.dumps(c["model"], sort_keys=True), json.dumps(c["data"], sort_keys=True), c["optim"]["name"])
        if key in seen:
            continue
        seen.add(key)
        n = _n_params(c)
        slots = 4 if c["optim"]["name"] == "adam" else 3  # weights, gradients, momentum (and Adam's second moment)
        need = n * 4 * slots
        device = resolve_device(c["train"]["device"])
        have = available_memory(device)
        if have is not None and need > have:
            raise ConfigError(f"width={c['width']:g}: a {c['model']['name']} run needs at least {need / 1e9:.3g} GB "
                              f"({n:,} parameters x {4 * slots} bytes: weights, gradients, optimizer state), more than "
                              f"the {have / 1e9:.3g} GB available on {device}; pass --no-memory-check to try anyway")


def available_memory(device: torch.device) -> int | None:
    """Free memory of the device the runs will use, where this host can tell: not of a GPU a submitting host
    lacks (the job checks it on its node)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0] if torch.cuda.is_available() else None
    if device.type == "cpu":
        return available_memory_bytes()
    return None


def _node(d: dict):
    from omegaconf import OmegaConf

    return OmegaConf.create(d)


def _n_params(config: dict) -> int:
    d = _node(config["data"])
    return models.family(config["model"]["name"]).n_params(_node(config["model"]),
                                                            data.dataset(d).input_shape(d), data.n_classes(d))


def training_flops(config: dict) -> float:
    """About 6 FLOPs per parameter per training sample (forward and backward of a dense network)."""
    return 6.0 * _n_params(config) * _n_train(config) * config["epochs"]


def _n_train(config: dict) -> int:
    d = _node(config["data"])
    return config["n_train"] or data.dataset(d).pool_size(d)


def show_plan(jobs: list[Job], stream=None) -> None:
    stream = stream or sys.stdout
    pending = [j for j in jobs if not j.done]
    for j in jobs:
        state = "done   " if j.done else ("damaged" if j.damaged else "extend " if j.extends else "pending")
        print(f"{j.spec.run_id}  {state}  {j.label}{_extension_note(j)}", file=stream)
    flops = sum(j.flops for j in pending)
    workers = packing.processes(pending) if pending else 1
    print(f"{len(jobs)} jobs: {len(jobs) - len(pending)} done, {len(pending)} pending in "
          f"{len(packs(pending, workers)) if pending else 0} packs; about {flops / 1e12:.2f} TFLOP of training "
          "arithmetic pending", file=stream)


def _extension_note(job: Job) -> str:
    """What the plan says of a pending run with a shorter finished run (ddescent.extension)."""
    ext = job.extension
    if job.done or ext is None:
        return ""
    if ext.together:
        return f"  (extends {ext.base}: trains epochs {ext.epoch + 1}-{job.spec.config['epochs']})"
    return f"  (trained from the start: {ext.why_not})"


def packs(jobs: list[Job], workers: int | None = None, planned: list[Job] = ()) -> list[list[Job]]:
    """The pending jobs cut into packs (see ddescent.packing), keeping the runs of a checkpoint together. A checkpoint
    whose pack was killed while it wrote its runs' files holds runs that are done beside runs that are not: the
    done ones (from `planned`) ride along, so that the others resume from the checkpoint (the runner trains the
    pack whole and writes only the missing files)."""
    by_id = {j.spec.run_id: j for j in [*planned, *jobs]}
    pending = {j.spec.run_id for j in jobs}
    together, riders = [], []
    for folder in {j.spec.folder for j in jobs}:
        for runs in checkpoint.pending_groups(folder):
            if pending & set(runs) and all(r in by_id for r in runs):
                together.append(runs)
                riders += [by_id[r] for r in runs if r not in pending]
    taken = {r for runs in together for r in runs}
    for job in jobs:  # runs continuing a kept final state train in its pack, in its order
        runs = list(job.extension.together) if job.extends else []
        if runs and runs not in together and not taken & set(runs) and all(r in pending for r in runs):
            together.append(runs)
            taken |= set(runs)
    return packing.group([*jobs, *riders], packing.processes(jobs, workers), together)
