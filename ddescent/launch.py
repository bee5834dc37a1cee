"""Launching a planned sweep: on this machine (one worker process per core, or in this process), or through
any Hydra launcher (`--jobs N` picks joblib; `hydra/launcher=slurm`, `submitit_local`, ...), one Hydra job per
pack. Each job reads its pack from a file of its own, which only that job deletes once its runs are written, so an
interrupted submitter or a requeued job never finds its work gone."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
from pathlib import Path

import torch

from ddescent import checkpoint, packing, preemption, store
from ddescent.config import check_device, hydra_app, hydra_quote
from ddescent.packfile import read_pack
from ddescent.planner import Job
from ddescent.progress import Reporter
from ddescent.runner import Outcome, execute
from ddescent.spec import RunSpec
from ddescent.store import folder_format
from ddescent.workers import Pool, Task, die_with_process, pack_threads, reaped_children

log = logging.getLogger("ddescent")


def prepare(jobs: list[Job]) -> None:
    """Before training: refuse a folder of a newer format and mark the others as this version's
    (store.folder_format), remove what writers that died left behind (temporary files, locks), set damaged result
    files aside, and drop checkpoints whose runs are all done."""
    folders = sorted({j.spec.folder for j in jobs})
    for folder in folders:  # all of them before anything is written to any
        folder_format.check(folder)
    for folder in folders:
        folder_format.use(folder)
    removed = 0
    for folder in folders:
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
    here. torch's threads, here and in each worker, are ddescent.machine.torch_threads' choice (1 for small
    steps; never more cores than are free), and this process's own setting comes back afterwards."""
    order = sorted(pack_list, key=packing.pack_time, reverse=True)
    workers = max(1, min(packing.processes([j for pack in order for j in pack], workers), len(order)))
    threads = pack_threads(order, workers, ceiling=torch.get_num_threads())  # see ddescent.machine.torch_threads
    if workers == 1:
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            return [o for pack in order for o in execute([j.spec for j in pack], events, force)]
        finally:
            torch.set_num_threads(previous)
    pool = Pool(workers, threads)
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
        path = pack_path(pack)
        store.write_atomic(path, lambda f, blob=blob: f.write(blob.encode()))
        slurm_record(path).unlink(missing_ok=True)  # a job of an earlier sweep had it: not this one
        paths.append(path)
    return paths


def pack_path(pack: list[Job]) -> Path:
    return pack[0].spec.folder / ".sweep" / "packs" / f"{checkpoint.key([j.spec.run_id for j in pack])}.json"


def _remove_finished_packs(folder: Path) -> int:
    removed = 0
    for path in (folder / ".sweep" / "packs").glob("*.json"):
        try:
            runs = [RunSpec.of(r["config"], r["fingerprint"]) for r in json.loads(path.read_text())["runs"]]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if all(store.is_done(s.folder, s.run_id) for s in runs):
            path.unlink(missing_ok=True)
            slurm_record(path).unlink(missing_ok=True)  # the job that had it (ddescent.slurm)
            removed += 1
    return removed


def slurm_record(pack: Path) -> Path:
    from ddescent import slurm

    return slurm.record_path(pack)


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


PREEMPTION_SIGNALS = (signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM)


def _checkpoint_on_preemption() -> dict:
    """In a cluster job: the signals SLURM sends before it ends a job (preemption, the time limit, a requeue) ask
    the training to checkpoint at the end of its current epoch and stop. Returns {"signal": ..., "previous":
    {signal: handler}}, filled in as signals arrive."""
    state = {"signal": None, "previous": {}}

    def handler(signum, frame):
        state["signal"] = signum
        preemption.request()

    for sig in PREEMPTION_SIGNALS:
        state["previous"][sig] = signal.getsignal(sig)
        signal.signal(sig, handler)
    return state


def hydra_task(cfg) -> list[dict]:
    """The task function Hydra launches: one pack, from its file. Module-level so launchers can pickle it.
    Raises when a run fails, so that Hydra records the job as failed. Under SLURM a preempted job checkpoints,
    then is requeued (by submitit for its own signal, by SLURM otherwise) and resumes from there."""
    launch = cfg.launch
    if launch.get("parent"):  # a joblib worker of a local sweep: it must not outlive the sweep
        die_with_process(str(launch.parent))
    preemption_state = _checkpoint_on_preemption() if os.environ.get("SLURM_JOB_ID") else None
    specs, labels = read_pack(launch.pack)
    for device in sorted({s.config["train"]["device"] for s in specs}):
        check_device(device)  # here, on the node that runs the job: the submitter may have none of it
    torch.set_num_threads(int(launch.get("threads") or pack_threads([[Job(s, False) for s in specs]], 1)))
    reporter = Reporter(dict(zip([s.run_id for s in specs], labels)))
    try:
        outcomes = execute(specs, reporter, bool(launch.get("force", False)))
    finally:
        reporter.close()
    if any(o.status == "interrupted" for o in outcomes):  # checkpointed on SLURM's signal: requeue, resume there
        _requeue(preemption_state)
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        raise RuntimeError("; ".join(f"{o.label}: {o.note}" for o in failed))
    if all(store.is_done(s.folder, s.run_id) for s in specs):
        Path(launch.pack).unlink(missing_ok=True)
    return [{"run_id": o.run_id, "status": o.status} for o in outcomes]


def _requeue(state: dict | None) -> None:
    """Leave the job so that it is requeued: submitit's own handler of the signal requeues and exits; for any other
    signal SLURM requeues the job itself. No result file is written: the requeued job writes it."""
    sig = state["signal"] if state else None
    previous = state["previous"].get(sig) if state else None
    if callable(previous):
        previous(sig, None)
    logging.shutdown()
    os._exit(128 + (sig or signal.SIGTERM))


def run_hydra(pack_list: list[list[Job]], hydra_overrides: list[str], n_jobs: int, force: bool = False,
              events=None, retried: bool = False) -> list:
    """Launch one Hydra job per pack with the chosen launcher; returns when all jobs have ended, with Hydra's
    JobReturn of each (in the order of pack_list; None for a job that failed or never ran). With a launcher that
    runs the jobs elsewhere (SLURM, submitit_local), each run is reported to `events` as its file appears, while
    the launcher waits. `retried`: what the launcher loses will be launched once more (a warning, not an error)."""
    paths = write_packs(pack_list)
    first = pack_list[0][0].spec
    overrides = list(hydra_overrides)
    launcher = next((o.split("=", 1)[1] for o in overrides if o.startswith("hydra/launcher=")), None)
    if n_jobs > 1 and launcher is None:
        launcher = "joblib"
        overrides += ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={n_jobs}"]
    local = launcher in (None, "basic", "joblib")
    # the launcher's settings may read the device (slurm.yaml asks for no GPU when it is cpu)
    devices = {j.spec.config["train"]["device"] for pack in pack_list for j in pack}
    device = next((d for d in sorted(devices) if d != "cpu"), "cpu")
    overrides += [f"name={first.name}", f"results={hydra_quote(first.config['results'])}", "hydra.sweeper.params=null",
                  f"train.device={device}",
                  "+launch.pack=" + ",".join(hydra_quote(str(p)) for p in paths), f"+launch.force={force}"]
    if local:  # on this machine: share its cores, and never outlive the sweep
        overrides += [f"+launch.threads={pack_threads(pack_list, max(n_jobs, 1))}",
                      f"+launch.parent={store.process_token()}"]
    returns = []
    watch = None if local or events is None else RunWatch(pack_list, events)
    try:
        with reaped_children() if local else contextlib.nullcontext():  # workers here die with the sweep
            returns = hydra_app().hydra.multirun(config_name="config", task_function=hydra_task, overrides=overrides)
    except Exception as exc:  # a job the scheduler killed (scancel, out of memory) ends the launcher's wait
        log.log(logging.WARNING if retried else logging.ERROR, "the launcher stopped waiting: %s",
                " ".join(str(exc).split())[:300])
    finally:
        if watch is not None:
            watch.stop()
    flat = [r for batch in (returns or []) for r in (batch if isinstance(batch, list) else [batch])]
    by_pack = {str(Path(r.cfg.launch.pack)): r for r in flat}
    return [by_pack.get(str(p)) for p in paths]


class RunWatch:
    """While a launcher waits for jobs that run elsewhere: every few seconds, each run of the sweep whose file has
    appeared is reported to `events` (a "run" event, as the runner's), so the run lines come as runs finish."""

    def __init__(self, pack_list: list[list[Job]], events, every: float = 2.0):
        import threading

        self.jobs = [j for pack in pack_list for j in pack]
        self.events, self.every, self.reported = events, every, set()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="ddescent-run-watch", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stopping.wait(self.every):
            self.scan()

    def scan(self) -> None:
        for job in self.jobs:
            if job.spec.run_id not in self.reported and store.run_path(job.spec.folder, job.spec.run_id).exists():
                outcome = stored_outcome(job)
                if outcome is not None:
                    self.reported.add(job.spec.run_id)
                    self.events("run", {"outcome": outcome})

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()


def stored_outcome(job: Job) -> Outcome | None:
    """The outcome of a run read back from its file (None while it has none that reads whole): its status, final
    errors and its training time (the recorded wall time at its last evaluation, over every start)."""
    path = store.run_path(job.spec.folder, job.spec.run_id)
    if store.check_run(path, job.spec.run_id) is not None:
        return None
    try:
        last = store.load(path).sort_values("epoch").iloc[-1]
    except (OSError, ValueError, KeyError, IndexError):
        return None
    seconds = float(last.get("wall_time_s", float("nan")))
    return Outcome(job.spec.run_id, job.label, str(last["status"]), seconds,
                   final={k: float(last[k]) for k in ("train_error", "test_error")})


def hydra_outcomes(pack_list: list[list[Job]], returns: list) -> list[Outcome]:
    """What the launcher's jobs did, read back from the store (the source of truth), Hydra's job returns and, for
    jobs that failed or were never submitted, what the SLURM launcher recorded of them (ddescent.slurm)."""
    from hydra.core.utils import JobStatus

    from ddescent import slurm

    outcomes = []
    for pack, ret in zip(pack_list, returns):
        error = ""
        if ret is None or ret.status != JobStatus.COMPLETED:
            error = (slurm.read_record(pack_path(pack)) or {}).get("note") or (
                "its job did not complete" if ret is None else f"its job failed: {ret._return_value}")
        for job in pack:
            outcome = stored_outcome(job)
            outcomes.append(outcome or Outcome(job.spec.run_id, job.label, "failed",
                                               note=error or "its job ended without writing it"))
    return outcomes
