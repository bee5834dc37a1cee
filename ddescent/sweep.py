"""A sweep: expand the jobs, validate all of them, skip the finished, pack the rest, launch.

The local default trains packs on this machine, one single-threaded worker process per core (one pack, or a
GPU: in this process). Any Hydra launcher (`--jobs N` picks joblib, or `hydra/launcher=slurm`, `submitit_local`,
...) gets one Hydra job per pack through Hydra's own multirun; each job reads its pack from a file of its own,
which only that job deletes, once its runs are written.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from omegaconf import OmegaConf

from ddescent import ConfigError, checkpoint, data, models, packing, store
from ddescent.config import compose, compose_all, expand, hydra_quote, split_overrides, validate
from ddescent.runner import Outcome, execute, resolve_device
from ddescent.spec import RunSpec, hyperparameters
from ddescent.workers import Pool, Task, die_with_process, usable_cores

log = logging.getLogger("ddescent")
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

    @functools.cached_property
    def flops(self) -> float:
        """Training arithmetic of this run (see training_flops); computed once, packing asks often."""
        return training_flops(self.spec.config)

    @functools.cached_property
    def steps(self) -> int:
        c = self.spec.config
        return c["epochs"] * math.ceil(_n_train(c) / c["train"]["batch_size"])

    @functools.cached_property
    def accelerator(self) -> bool:
        """Trains on a GPU (or MPS) rather than the CPU."""
        return resolve_device(self.spec.config["train"]["device"]).type != "cpu"


def plan(overrides: list[str], results: str | None = None, *, memory_check: bool = True) -> list[Job]:
    """Every job of the sweep, validated (ConfigError on the first bad one), with its run_id and status. Nothing
    is written."""
    root = check_results(results) if results else None
    extra = [f"results={hydra_quote(str(root))}"] if root else []
    lines = expand(overrides + extra)
    named = any(o.split("=", 1)[0].lstrip("+~") == "name" for o in overrides)
    jobs: dict[str, Job] = {}
    fingerprints: dict[str, str | None] = {}
    for line, cfg in zip(lines, compose_all(lines)):
        if not named:
            _name_after_groups(cfg, overrides)
        config = validate(cfg)
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
    return planned


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
    return {g: {cfg[g].name, *str(params.get(g, "")).split(",")} - {""} for g in GROUP_CHOICES}


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
    changed = [cfg[g].name for g in chosen if cfg[g].name not in preset[g]]
    if changed:
        cfg.name = "-".join([cfg.name, *changed])


def _label(jobs: list[Job]) -> None:
    """Each job's label: family, width, n_train, noise, λ, seed, epochs, and every other hyperparameter that
    varies within the sweep."""
    flat = [hyperparameters(j.spec.config) for j in jobs]
    keys = sorted({k for f in flat for k in f})
    varying = [k for k in keys if len({json.dumps(f.get(k), sort_keys=True) for f in flat}) > 1]
    swapped = {k.split(".")[0] for k in varying if k.endswith(".name") and k.count(".") == 1}  # a group choice
    shown = [k for k in varying if k.split(".")[0] not in swapped or k.count(".") == 1 and k.endswith(".name")]
    for job, f in zip(jobs, flat):
        job.label = job.spec.label + "".join(
            f" {k[:-len('.name')]}={f.get(k)}" if k.split(".")[0] in swapped else f" {k}={f.get(k)}"
            for k in shown if k != "model.name")


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
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type == "cpu":
        try:
            with open("/proc/meminfo") as f:
                info = dict(line.split(":", 1) for line in f)
            return int(info["MemAvailable"].split()[0]) * 1024
        except (OSError, KeyError, ValueError):
            return None
    return None


def _node(d: dict):
    from omegaconf import OmegaConf

    return OmegaConf.create(d)


def _n_params(config: dict) -> int:
    d = _node(config["data"])
    return models.FAMILIES[config["model"]["name"]].n_params(_node(config["model"]),
                                                            data.dataset(d).input_shape(d), data.n_classes(d))


def training_flops(config: dict) -> float:
    """About 6 FLOPs per parameter per training sample (forward and backward of a dense network)."""
    return 6.0 * _n_params(config) * _n_train(config) * config["epochs"]


def _n_train(config: dict) -> int:
    d = _node(config["data"])
    return config["n_train"] or data.dataset(d).pool_size(d)


def show_plan(jobs: list[Job], stream=sys.stdout) -> None:
    pending = [j for j in jobs if not j.done]
    for j in jobs:
        state = "done   " if j.done else ("damaged" if j.damaged else "pending")
        print(f"{j.spec.run_id}  {state}  {j.label}", file=stream)
    flops = sum(j.flops for j in pending)
    workers = packing.processes(pending) if pending else 1
    print(f"{len(jobs)} jobs: {len(jobs) - len(pending)} done, {len(pending)} pending in "
          f"{len(packs(pending, workers)) if pending else 0} packs; about {flops / 1e12:.2f} TFLOP of training "
          "arithmetic pending", file=stream)


def packs(jobs: list[Job], workers: int | None = None) -> list[list[Job]]:
    """The pending jobs cut into packs (see ddescent.packing), keeping the runs of a checkpoint together."""
    together = [runs for folder in {j.spec.folder for j in jobs} for runs in checkpoint.pending_groups(folder)]
    return packing.group(jobs, packing.processes(jobs, workers), together)


def prepare(jobs: list[Job]) -> None:
    """Before training: remove what writers that died left behind (temporary files, locks), set damaged result
    files aside, and drop checkpoints whose runs are all done."""
    removed = 0
    for folder in {j.spec.folder for j in jobs}:
        for sub in (store.runs_dir(folder), store.checkpoints_dir(folder), folder / ".sweep" / "packs"):
            removed += store.clean_stale(sub)
        removed += checkpoint.remove_finished(folder)
        removed += _remove_finished_packs(folder)
    if removed:
        log.info("removed %d temporary file(s), lock(s) and checkpoint(s) left by processes that ended", removed)
    for job in jobs:
        if job.damaged:
            store.set_aside_if_damaged(job.spec.folder, job.spec.run_id)


# ----------------------------------------------------------------------------- training on this machine


def run_local(pack_list: list[list[Job]], events, workers: int | None = None, force: bool = False) -> list[Outcome]:
    """Train packs on this machine. Small models are bound by per-step overhead, which threads do not share
    well: with several packs, each core runs its own worker process with one thread (see ddescent.workers),
    the costliest packs first so the workers finish together. A single pack, or packs that train on a GPU, run
    here (on every core)."""
    order = sorted(pack_list, key=packing.pack_time, reverse=True)
    workers = max(1, min(packing.processes([j for pack in order for j in pack], workers), len(order)))
    if workers == 1:
        return [o for pack in order for o in execute([j.spec for j in pack], events, force)]
    pool = Pool(workers, max(1, usable_cores() // workers))
    try:
        return pool.run([Task([j.spec for j in pack], [j.label for j in pack]) for pack in order], events, force)
    finally:
        pool.close()  # after an error or an interrupt too: no worker goes on alone


# ----------------------------------------------------------------------------- Hydra launchers


def write_packs(pack_list: list[list[Job]]) -> list[Path]:
    """One file per pack, `<experiment>/.sweep/packs/<key>.json`: the work its job needs. Only that job removes
    it, once its runs are written, so an interrupted submitter or a requeued job never finds it gone."""
    paths = []
    for pack in pack_list:
        blob = json.dumps({"runs": [{"config": j.spec.config, "fingerprint": j.spec.fingerprint} for j in pack],
                           "labels": [j.label for j in pack]}, sort_keys=True)
        path = pack[0].spec.folder / ".sweep" / "packs" / f"{checkpoint.key([j.spec.run_id for j in pack])}.json"
        store.write_atomic(path, lambda f, blob=blob: f.write(blob.encode()))
        paths.append(path)
    return paths


def _remove_finished_packs(folder: Path) -> int:
    removed = 0
    for path in (folder / ".sweep" / "packs").glob("*.json"):
        try:
            runs = [RunSpec.of(r["config"], r["fingerprint"]) for r in json.loads(path.read_text())["runs"]]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if all(store.is_done(s.folder, s.run_id) for s in runs):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def planned_runs(path: str | Path) -> dict[str, str]:
    """{run_id: label} of the runs that sweeps under `path` handed to launchers and that are not done yet (their
    pack files are removed once their runs are written)."""
    out = {}
    for pack in Path(path).rglob(".sweep/packs/*.json"):
        try:
            specs, labels = read_pack(str(pack))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        out.update({s.run_id: label for s, label in zip(specs, labels) if not store.is_done(s.folder, s.run_id)})
    return out


def read_pack(path: str) -> tuple[list[RunSpec], list[str]]:
    blob = json.loads(Path(path).read_text())
    return [RunSpec.of(r["config"], r["fingerprint"]) for r in blob["runs"]], blob["labels"]


PREEMPTION_SIGNALS = (signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM)


def _checkpoint_on_preemption() -> dict:
    """In a cluster job: the signals SLURM sends before it ends a job (preemption, the time limit, a requeue) ask
    the training to checkpoint at the end of its current epoch and stop. Returns {"signal": ..., "previous":
    {signal: handler}}, filled in as signals arrive."""
    state = {"signal": None, "previous": {}}

    def handler(signum, frame):
        state["signal"] = signum
        checkpoint.request()

    for sig in PREEMPTION_SIGNALS:
        state["previous"][sig] = signal.getsignal(sig)
        signal.signal(sig, handler)
    return state


def hydra_task(cfg) -> list[dict]:
    """The task function Hydra launches: one pack, from its file. Module-level so launchers can pickle it.
    Raises when a run fails, so that Hydra records the job as failed. Under SLURM a preempted job checkpoints,
    then is requeued (by submitit for its own signal, by SLURM otherwise) and resumes from there."""
    from ddescent.report import Reporter

    launch = cfg.launch
    if launch.get("parent"):  # a joblib worker of a local sweep: it must not outlive the sweep
        die_with_process(str(launch.parent))
    preemption = _checkpoint_on_preemption() if os.environ.get("SLURM_JOB_ID") else None
    torch.set_num_threads(int(launch.get("threads") or usable_cores()))
    specs, labels = read_pack(launch.pack)
    reporter = Reporter(dict(zip([s.run_id for s in specs], labels)))
    try:
        outcomes = execute(specs, reporter, bool(launch.get("force", False)))
    except checkpoint.Interrupted:
        sig = preemption["signal"] if preemption else None
        previous = preemption["previous"].get(sig) if preemption else None
        if callable(previous):  # submitit's own: it requeues the job and exits
            previous(sig, None)
        logging.shutdown()
        os._exit(128 + (sig or signal.SIGTERM))  # no result file: the requeued job writes it
    finally:
        reporter.close()
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        raise RuntimeError("; ".join(f"{o.label}: {o.note}" for o in failed))
    if all(store.is_done(s.folder, s.run_id) for s in specs):
        Path(launch.pack).unlink(missing_ok=True)
    return [{"run_id": o.run_id, "status": o.status} for o in outcomes]


def run_hydra(pack_list: list[list[Job]], hydra_overrides: list[str], n_jobs: int, force: bool = False) -> list:
    """Launch one Hydra job per pack with the chosen launcher; returns when all jobs have ended, with Hydra's
    JobReturn of each (in the order of pack_list)."""
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    paths = write_packs(pack_list)
    first = pack_list[0][0].spec
    overrides = list(hydra_overrides)
    launcher = next((o.split("=", 1)[1] for o in overrides if o.startswith("hydra/launcher=")), None)
    if n_jobs > 1 and launcher is None:
        launcher = "joblib"
        overrides += ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={n_jobs}"]
    local = launcher in (None, "basic", "joblib")
    overrides += [f"name={first.name}", f"results={hydra_quote(first.config['results'])}", "hydra.sweeper.params=null",
                  "+launch.pack=" + ",".join(hydra_quote(str(p)) for p in paths), f"+launch.force={force}"]
    if local:  # on this machine: share its cores, and never outlive the sweep
        overrides += [f"+launch.threads={max(1, usable_cores() // max(n_jobs, 1))}",
                      f"+launch.parent={store.process_token()}"]
    GlobalHydra.instance().clear()
    returns = []
    try:
        with initialize_config_module("ddescent.conf", version_base="1.3"):
            returns = GlobalHydra.instance().hydra.multirun(config_name="config", task_function=hydra_task,
                                                            overrides=overrides)
    except Exception as exc:  # a job the scheduler killed (scancel, out of memory) ends the launcher's wait
        log.error("the launcher stopped waiting: %s", " ".join(str(exc).split())[:300])
    finally:
        GlobalHydra.instance().clear()
    flat = [r for batch in (returns or []) for r in (batch if isinstance(batch, list) else [batch])]
    by_pack = {str(Path(r.cfg.launch.pack)): r for r in flat}
    return [by_pack.get(str(p)) for p in paths]
