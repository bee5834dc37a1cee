"""A sweep: expand the jobs, validate all of them, skip the finished, pack the rest, launch.

The local default runs packs on this machine, one single-threaded worker process per core (one pack: in this
process). Any Hydra launcher (`--jobs N` picks joblib, or
`hydra/launcher=submitit_slurm`, `submitit_local`, ...) gets one Hydra job per pack through Hydra's own
multirun; each job reads its pack from a manifest written beside the results.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from ddescent import ConfigError, data, models, store, workers as local_workers
from ddescent.config import compose_all, expand, run_config, run_id, split_overrides, validate
from ddescent.runner import can_pack, execute, pack_key
from ddescent.workers import usable_cores

# Time model of a pack's training step, in FLOP-equivalents at the ~55 GFLOP/s one CPU core reaches on these
# small batched matmuls and the element-wise work around them (fitted to the measured steps of 15 MLP packs
# of fig9_9, from 1 to 16 members): a fixed ~0.28 ms per step (Python and op dispatch) plus ~0.05 ms per
# member, plus the padded arithmetic. Small models are all overhead.
STEP_OVERHEAD_FLOP = 15e6
MEMBER_OVERHEAD_FLOP = 2.75e6
# On a GPU a step of these models costs a fixed ~0.2-0.3 ms of kernel launches at ~20 TFLOP/s: padding is
# nearly free, so the packable runs of a sweep share packs, trained one after another by the one process that
# owns the device.
ACCELERATOR_STEP_OVERHEAD_FLOP = 5e9
PACK_MAX = 64


@dataclass
class Job:
    overrides: list[str]
    config: dict
    run_id: str
    done: bool

    @functools.cached_property
    def flops(self) -> float:
        """Training arithmetic of this run (see training_flops); computed once, packing asks often."""
        return training_flops(self.config)

    @functools.cached_property
    def steps(self) -> int:
        c = self.config
        return c["epochs"] * math.ceil(_n_train(c) / c["train"]["batch_size"])

    @functools.cached_property
    def accelerator(self) -> bool:
        """Trains on a GPU (or MPS) rather than the CPU."""
        from ddescent.train import resolve_device

        return resolve_device(self.config["train"]["device"]).type != "cpu"

    @property
    def label(self) -> str:
        c = self.config
        return (f"{c['model']['name']} width={c['width']:g} n_train={c['n_train']} noise={c['label_noise']:g} "
                f"λ={c['reg_strength']:g} seed={c['seed']} epochs={c['epochs']}")


def plan(overrides: list[str], results: str | None = None) -> list[Job]:
    """Every job of the sweep, validated (ConfigError on the first bad one), with its run_id and status."""
    extra = [f"results={Path(results).resolve()}"] if results else []
    job_overrides, _ = split_overrides(overrides)
    jobs: dict[str, Job] = {}
    lines = expand(overrides + extra)
    for line, cfg in zip(lines, compose_all(lines)):
        validate(cfg)
        config = run_config(cfg)
        config["results"] = str(Path(config["results"]).resolve())
        rid = run_id(config)
        if rid not in jobs:  # width=8,8 or an axis that does not change the numbers: one run
            jobs[rid] = Job(line, config, rid, store.is_done(config["results"], config["name"], rid))
    if not jobs:
        raise ConfigError(f"the sweep {' '.join(job_overrides)} has no jobs")
    return list(jobs.values())


def training_flops(config: dict) -> float:
    """About 6 FLOPs per parameter per training sample (forward and backward of a dense network)."""
    mod = data.module(_node(config["data"]))
    n = _n_train(config)
    shape, classes = mod.input_shape(_node(config["data"])), data.n_classes(_node(config["data"]))
    fam = models.family(_node(config["model"]))
    return 6.0 * fam.n_params(_node(config["model"]), shape, classes) * n * config["epochs"]


def _node(d: dict):
    from omegaconf import OmegaConf

    return OmegaConf.create(d)


def packs(jobs: list[Job], workers: int | None = None) -> list[list[Job]]:
    """Group pending jobs into packs, each trained as one batched computation. Only jobs with the same pack key
    (same data, family and recipe; width and seed differ) can share a pack, and members are padded to the
    widest, so a pack is a run of consecutive widths. Each width-sorted group is cut into the runs of least
    total time (padding arithmetic against the per-step overhead it saves, see pack_time) with no pack above a
    size limit; a few limits are tried so that the packs also spread over `workers` processes, and the cut
    whose estimated finish is soonest wins."""
    workers = processes(jobs, workers)
    groups: dict[str, list[Job]] = {}
    alone: list[list[Job]] = []
    for job in jobs:
        if can_pack(job.config):
            groups.setdefault(pack_key(job.config), []).append(job)
        else:
            alone.append([job])
    for members in groups.values():
        members.sort(key=lambda j: j.config["width"])
    total = sum(pack_time([j]) for j in jobs)
    limits = [math.inf] if workers == 1 else [total / (k * workers) for k in range(1, 9)]
    cuts = [alone + [p for members in groups.values() for p in _cut(members, limit)] for limit in limits]
    return min(cuts, key=lambda c: finish_time(c, workers))


def processes(jobs: list[Job], workers: int | None = None) -> int:
    """How many local processes train these jobs: one where they train on a GPU (it owns the device), else
    `workers`, by default one per usable core."""
    return 1 if any(j.accelerator for j in jobs) else workers or usable_cores()


def _cut(members: list[Job], limit: float) -> list[list[Job]]:
    """The width-sorted members cut into consecutive packs of least total pack_time, each at most PACK_MAX
    members and `limit` (a single member may exceed it): dynamic programming over the cut points."""
    n = len(members)
    best, cut = [0.0] + [math.inf] * n, [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(max(0, j - PACK_MAX), j):
            t = pack_time(members[i:j])
            if (t <= limit or j - i == 1) and best[i] + t < best[j]:
                best[j], cut[j] = best[i] + t, i
    out, j = [], n
    while j:
        out.append(members[cut[j]:j])
        j = cut[j]
    return out[::-1]


def finish_time(pack_list: list[list[Job]], workers: int) -> float:
    """When the last of `workers` processes would finish, taking the costliest pack first (as run_local does)."""
    loads = [0.0] * workers
    for t in sorted((pack_time(p) for p in pack_list), reverse=True):
        loads[loads.index(min(loads))] += t
    return max(loads)


def pack_time(pack: list[Job]) -> float:
    """A pack's training time in FLOP-equivalents: padded arithmetic plus per-step overhead."""
    steps = pack[0].steps
    member = max(j.flops for j in pack) + steps * MEMBER_OVERHEAD_FLOP
    return len(pack) * member + steps * (ACCELERATOR_STEP_OVERHEAD_FLOP if pack[0].accelerator else STEP_OVERHEAD_FLOP)


def _n_train(config: dict) -> int:
    return config["n_train"] or data.module(_node(config["data"])).pool_size(_node(config["data"]))


def show_plan(jobs: list[Job], stream=sys.stdout) -> None:
    pending = [j for j in jobs if not j.done]
    for j in jobs:
        print(f"{j.run_id}  {'done   ' if j.done else 'pending'}  {j.label}", file=stream)
    flops = sum(j.flops for j in pending)
    print(f"{len(jobs)} jobs: {len(jobs) - len(pending)} done, {len(pending)} pending in {len(packs(pending))} packs; "
          f"about {flops / 1e12:.2f} TFLOP of training arithmetic pending", file=stream)


def clean(jobs: list[Job]) -> None:
    """Remove what writers that died left behind (temporary files, locks) in the sweep's folders."""
    for folder in {Path(j.config["results"]) / j.config["name"] for j in jobs}:
        for sub in ("runs", "checkpoints"):
            store.clean_stale(folder / sub)


def progress_enabled(setting) -> bool | None:
    """tqdm's disable flag: None turns bars off when the stream is not a terminal."""
    return {"on": False, True: False, "off": True, False: True}.get(setting, None)


def run_local(pack_list: list[list[Job]], progress="auto", workers: int | None = None,
              force: bool = False) -> list[str]:
    """Run packs on this machine. Small models are bound by per-step overhead, which threads do not share
    well: with several packs, each core runs its own worker process with one thread (see ddescent.workers),
    the costliest packs first so the workers finish together. A single pack, or packs that train on a GPU, run
    here (on every core)."""
    cores = usable_cores()
    workers = max(1, min(processes([j for pack in pack_list for j in pack], workers), len(pack_list)))
    order = sorted(pack_list, key=pack_time, reverse=True)
    disable = progress_enabled(progress)
    statuses: list[str] = []
    with tqdm(total=sum(len(p) for p in order), desc="sweep", unit="run", disable=disable, position=0) as bar:
        if workers == 1:
            for pack in order:
                widths = ",".join(f"{j.config['width']:g}" for j in pack)
                with tqdm(total=pack[0].config["epochs"], desc=f"width {widths}"[:40], unit="epoch", leave=False,
                          disable=disable, position=1) as inner:
                    statuses += execute([j.config for j in pack], progress=inner, force=force)
                bar.update(len(pack))
            return statuses
        from concurrent.futures import as_completed

        threads = max(1, cores // workers)
        pool = local_workers.pool(workers)
        try:
            futures = [pool.submit(_execute_with_threads, [j.config for j in pack], threads, force) for pack in order]
            for future in as_completed(futures):
                done = future.result()
                statuses += done
                bar.update(len(done))
            pool.shutdown()
        finally:
            local_workers.kill(pool)  # after an error or an interrupt: no worker goes on alone
    return statuses


def _execute_with_threads(configs: list[dict], threads: int, force: bool = False) -> list[str]:
    import torch

    torch.set_num_threads(threads)
    return execute(configs, force=force)


# ----------------------------------------------------------------------------- Hydra launchers


def write_manifest(pack_list: list[list[Job]]) -> Path:
    configs = [[j.config for j in pack] for pack in pack_list]
    blob = json.dumps(configs, sort_keys=True)
    first = pack_list[0][0].config
    path = Path(first["results"]) / first["name"] / ".sweep" / f"{hashlib.sha256(blob.encode()).hexdigest()[:12]}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(blob)
    os.replace(tmp, path)
    return path


def hydra_task(cfg) -> list[str]:
    """The task function Hydra launches: one pack of the manifest. Module-level so launchers can pickle it."""
    with open(cfg.launch.manifest) as f:
        configs = json.load(f)[cfg.launch.pack]
    return _execute_with_threads(configs, int(cfg.launch.get("threads") or usable_cores()),
                                 bool(cfg.launch.get("force", False)))


def run_hydra(pack_list: list[list[Job]], hydra_overrides: list[str], n_jobs: int, force: bool = False) -> None:
    """Launch one Hydra job per pack with the chosen launcher; returns when all jobs have ended."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra import initialize_config_module

    manifest = write_manifest(pack_list)
    first = pack_list[0][0].config
    overrides = list(hydra_overrides)
    if n_jobs > 1 and not any(o.startswith("hydra/launcher=") for o in overrides):
        overrides += ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={n_jobs}"]
    threads = max(1, usable_cores() // max(n_jobs, 1))
    overrides += [
        f"name={first['name']}", f"results={first['results']}", "hydra.sweeper.params=null",
        f"+launch.manifest={manifest}", f"+launch.threads={threads}", f"+launch.force={force}",
        "+launch.pack=" + ",".join(str(i) for i in range(len(pack_list))),
    ]
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module("ddescent.conf", version_base="1.3"):
            GlobalHydra.instance().hydra.multirun(config_name="config", task_function=hydra_task, overrides=overrides)
    finally:
        GlobalHydra.instance().clear()
        manifest.unlink(missing_ok=True)

