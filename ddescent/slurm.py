"""SLURM: the launcher behind `hydra/launcher=slurm` (and slurm_cpu), and what `ddescent status` reads.

The launcher is Hydra's submitit launcher with four changes:
- a `setup` line that fails stops the job (its exit code, a line naming it in the job's log);
- an sbatch refusal is reported as "not submitted: <sbatch's message>", nothing waited for;
- each pack's job id is recorded in `<experiment>/.sweep/jobs/<pack key>.json` (beside the pack files, which say
  what is pending), so `ddescent status` can ask SLURM about them, from any shell, while the sweep runs;
- while it waits it asks SLURM (sacct, or squeue) about its jobs: a line on every requeue, and a job that ends
  without a result is reported at once with the path of its log.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import re
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any, Sequence

from hydra_plugins.hydra_submitit_launcher import submitit_launcher

from ddescent import checkpoint, store
from ddescent.packfile import read_pack

log = logging.getLogger("ddescent")

# The states in which a job (one array task) has ended for good; a requeued one goes back to PENDING.
# GONE: left squeue's list, which is all that can be known of it without accounting.
GONE = "ENDED"
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "DEADLINE",
         "PREEMPTED", "REVOKED", GONE}
WHY = {"PREEMPTED": "after preemption", "TIMEOUT": "at its time limit", "NODE_FAIL": "after its node failed",
       "REQUEUED": "", "BOOT_FAIL": "after its node failed to boot"}


# ----------------------------------------------------------------------------- job records


def record_path(pack: str | Path) -> Path:
    """`<experiment>/.sweep/jobs/<key>.json` for the pack file `<experiment>/.sweep/packs/<key>.json`."""
    pack = Path(pack)
    return pack.parent.parent / "jobs" / pack.name


def write_record(pack: str | Path, **fields) -> None:
    blob = json.dumps({"pack": str(pack), **fields}, sort_keys=True).encode()
    store.write_atomic(record_path(pack), lambda f: f.write(blob))


def read_record(pack: str | Path) -> dict | None:
    try:
        blob = json.loads(record_path(pack).read_text())
    except (OSError, ValueError):
        return None
    return blob if isinstance(blob, dict) else None


def update_record(pack: str | Path, **fields) -> None:
    write_record(pack, **{**{k: v for k, v in (read_record(pack) or {}).items() if k != "pack"}, **fields})


# ----------------------------------------------------------------------------- asking SLURM


@dataclasses.dataclass
class JobState:
    """One job (an array task) as SLURM sees it: its state now, how many times it has started (1 + requeues, None
    when unknown), when its current start began (epoch seconds, None when not started) and why each earlier start
    ended."""

    state: str
    starts: int | None = None
    since: float | None = None
    before: tuple = ()


def _time(text: str) -> float | None:
    try:
        return time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%S"))
    except (ValueError, OverflowError):
        return None


def _task_ids(job_id: str) -> list[str]:
    """'12_[0-2,5%4]' -> ['12_0', '12_1', '12_2', '12_5'] (sacct and squeue list pending array tasks so)."""
    m = re.fullmatch(r"(\d+)_\[([\d,\-]+)(%\d+)?\]", job_id)
    if not m:
        return [job_id]
    out = []
    for part in m.group(2).split(","):
        lo, _, hi = part.partition("-")
        out += [f"{m.group(1)}_{i}" for i in range(int(lo), int(hi or lo) + 1)]
    return out


def _run(cmd: list[str]) -> str | None:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout if r.returncode == 0 else None


def _sacct(arrays: list[str]) -> dict[str, JobState] | None:
    out = _run(["sacct", "-D", "-X", "-n", "-P", "-o", "JobID,State,Start", "-j", ",".join(arrays)])
    if out is None:  # no sacct, or no accounting ("accounting storage is disabled")
        return None
    rows: dict[str, list] = {}
    for line in out.splitlines():
        parts = line.split("|")
        if len(parts) != 3:
            continue
        for task in _task_ids(parts[0]):
            rows.setdefault(task, []).append((parts[1].split()[0] if parts[1] else "UNKNOWN", _time(parts[2])))
    return {task: JobState(attempts[-1][0], len(attempts), attempts[-1][1] if attempts[-1][0] != "PENDING" else None,
                           tuple(a[0] for a in attempts[:-1]))
            for task, attempts in rows.items()}


def _squeue(arrays: list[str]) -> dict[str, JobState] | None:
    out = _run(["squeue", "-h", "-r", "-o", "%i|%T|%S", "-j", ",".join(arrays)])
    if out is None:
        return None
    states = {}
    for line in out.splitlines():
        parts = line.split("|")
        if len(parts) == 3:
            for task in _task_ids(parts[0]):
                states[task] = JobState(parts[1], None, _time(parts[2]) if parts[1] != "PENDING" else None)
    return states


def query(job_ids: Sequence[str]) -> tuple[dict[str, JobState], str] | None:
    """({job_id: JobState}, source) for the jobs SLURM knows of, from sacct (every start, finished jobs too) or,
    without accounting, squeue (jobs still queued or running); None when neither answers (no SLURM here)."""
    arrays = sorted({j.split("_")[0] for j in job_ids})
    if not arrays:
        return {}, "none"
    states = _sacct(arrays)
    if states is not None:
        return states, "sacct"
    states = _squeue(arrays)
    return (states, "squeue") if states is not None else None


# ----------------------------------------------------------------------------- checkpoints


@dataclasses.dataclass
class Progress:
    epoch: int           # the last checkpointed epoch
    elapsed: float       # training time up to it, over every start (seconds)
    written: float       # when the checkpoint was written (epoch seconds)


def checkpointed(folder: Path) -> dict[str, Progress]:
    """{run_id: Progress} of the runs of an experiment that have a checkpoint (read without loading the tensors)."""
    import torch

    out = {}
    for runs in checkpoint.pending_groups(folder):
        pt = store.checkpoints_dir(folder) / f"{checkpoint.key(runs)}.pt"
        try:
            written = pt.stat().st_mtime
            state = torch.load(pt, map_location="cpu", weights_only=True, mmap=True)
            recorder = state["parts"]["recorder"]
            progress = Progress(int(state["epoch"]), float(recorder["elapsed"]), written)
        except Exception:  # noqa: BLE001  (removed as we read it, or not one we can read: no progress to show)
            continue
        out.update({r: progress for r in runs})
    return out


def epochs_of(config: dict) -> int | None:
    """The epochs a run trains, when its config says so in epochs (a budget of steps depends on the data)."""
    train = config.get("train", {})
    return None if train.get("steps") else int(train.get("epochs") or config.get("epochs") or 0) or None


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


def time_left(progress: Progress | None, epochs: int | None, job: JobState | None, now: float) -> float | None:
    """Training time left, from the speed the run trained at up to its checkpoint; None when it cannot be told. A
    running job has trained since its checkpoint (or its start, if later) too."""
    if progress is None or not epochs or progress.epoch <= 0 or progress.elapsed <= 0:
        return None
    left = progress.elapsed / progress.epoch * (epochs - progress.epoch)
    if job is not None and job.state == "RUNNING":
        left -= now - max(progress.written, job.since or progress.written)
    return max(left, 0.0)


# ----------------------------------------------------------------------------- the launcher


def checked_setup(lines: list[str] | None) -> list[str] | None:
    """The setup lines, each followed by a check of its exit status: the first that fails ends the job with its
    exit code and a line in the job's log (sbatch runs them without `set -e`: a `module load` that fails would
    otherwise go unnoticed). A line that continues on the next (ending in \\, |, && or ||) is checked with it."""
    if not lines:
        return lines
    out = []
    for line in lines:
        out.append(line)
        if str(line).rstrip().endswith(("\\", "|", "&&")):
            continue
        said = shlex.quote(f"ddescent: the setup line {line!r} failed with exit code ")
        out.append(f'__ddescent_rc=$?; if [ "$__ddescent_rc" -ne 0 ]; then echo {said}"$__ddescent_rc" >&2; '
                   f'exit "$__ddescent_rc"; fi')
    return out


def _pack_of(overrides: Sequence[str]) -> str:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    for override in overrides:
        if override.lstrip("+").startswith("launch.pack="):
            return str(OverridesParser.create().parse_override(override).value())
    raise ValueError(f"no +launch.pack among the job's overrides {list(overrides)}")


def _one_line(text: str) -> str:
    return "; ".join(line.strip() for line in str(text).splitlines() if line.strip())


def _names(pack: str) -> str:

    try:
        labels = read_pack(pack)[1]
    except (OSError, ValueError, KeyError, TypeError):
        return Path(pack).stem
    return labels[0] + (f" and {len(labels) - 1} more" if len(labels) > 1 else "")


def _setup_failure(log_path: Path) -> str:
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    said = [line for line in lines if line.startswith("ddescent: the setup line ")]
    return said[-1][len("ddescent: "):] if said else ""


def _result(job, submitted: float) -> bool:
    """Whether the job has written its result (a file older than the submission is another job's: job ids restart
    when a SLURM's state is wiped)."""
    try:
        return job.paths.result_pickle.stat().st_mtime >= submitted - 1
    except OSError:
        return False


class SlurmLauncher(submitit_launcher.SlurmLauncher):
    """hydra_submitit_launcher's SlurmLauncher (one array job, one task per pack) with checked setup lines, the
    job ids recorded, requeues reported and failures explained (see the module's docstring)."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.params["setup"] = checked_setup(self.params.get("setup"))

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int):
        import submitit
        from hydra.core.singleton import Singleton
        from omegaconf import OmegaConf
        from submitit.core.utils import FailedJobError

        from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

        assert self.config is not None and job_overrides
        # the executor, as the plugin builds it
        init_keys = {"max_num_timeout", "submitit_folder"}
        executor = submitit.AutoExecutor(cluster=self._EXECUTOR, folder=self.params["submitit_folder"],
                                         **{f"{self._EXECUTOR}_max_num_timeout": self.params["max_num_timeout"]})
        baseparams = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(**{k if k in baseparams else f"{self._EXECUTOR}_{k}": v
                                      for k, v in self.params.items() if k not in init_keys})
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        packs = [_pack_of(o) for o in job_overrides]
        task = SlurmLauncher.__new__(SlurmLauncher)  # what each job unpickles: this module's class, not Hydra's name
        task.__dict__.update(self.__dict__)
        params = [(list(o), "hydra.sweep.dir", initial_job_idx + i, f"job_id_for_{initial_job_idx + i}",
                   Singleton.get_state()) for i, o in enumerate(job_overrides)]
        submitted = time.time()
        said = io.StringIO()
        try:
            with contextlib.redirect_stderr(said):  # (submitit prints sbatch's error there too)
                jobs = executor.map_array(task, *zip(*params))
        except (FailedJobError, OSError) as exc:  # sbatch refused (or is not here): nothing was submitted
            why = _one_line(str(exc) if isinstance(exc, FailedJobError) else f"cannot run sbatch: {exc}")
            why = why or _one_line(said.getvalue()) or type(exc).__name__
            for pack in packs:
                write_record(pack, job_id=None, state="NOT SUBMITTED", note=f"not submitted: {why}",
                             submitted=submitted)
            log.error("not submitted: %s", why)
            return []
        for pack, job in zip(packs, jobs):
            write_record(pack, job_id=job.job_id, submitted=submitted, log=str(job.paths.stderr),
                         folder=str(job.paths.folder))
        log.info("submitted %d job(s) as SLURM array %s (`ddescent status %s` shows them)", len(jobs),
                 jobs[0].job_id.split("_")[0], Path(packs[0]).parent.parent.parent)
        return self._wait(jobs, packs, submitted)

    def _wait(self, jobs: list, packs: list[str], submitted: float) -> list:
        """Wait for every job; returns the JobReturns of those whose task ran to its end (Hydra's sweeper raises on
        a failed one, which would lose the others: a failure is in the job's record instead)."""
        pending = dict(zip([j.job_id for j in jobs], zip(jobs, packs)))
        returns, seen, ended = {}, {}, {}
        asked, states = 0.0, {}
        while pending:
            now = time.time()
            # SLURM is asked at most every 30 s, and whenever a job has returned (a requeue before is reported)
            if any(_result(job, submitted) for job, _ in pending.values()) or \
                    now - asked >= min(30.0, max(2.0, (now - submitted) / 10)):
                asked, answer = now, query(list(pending))
                states = answer[0] if answer else {}
                if answer and answer[1] == "squeue":  # no accounting: a job squeue no longer lists has ended
                    states = {j: states.get(j, JobState(GONE)) for j in pending}
                self._report_requeues(states, pending, seen)
            for job_id, (job, pack) in list(pending.items()):
                ret = self._outcome(job, pack, states.get(job_id), submitted, ended, now)
                if ret is not None:
                    pending.pop(job_id)
                    if ret is not False:
                        returns[job_id] = ret
            if pending:
                time.sleep(1.0)
        return [returns[j.job_id] for j in jobs if j.job_id in returns]

    @staticmethod
    def _report_requeues(states: dict, pending: dict, seen: dict) -> None:
        """A line for each job that started again since SLURM was last asked (sacct counts the starts; with
        squeue only, a job seen running and then pending again was requeued)."""
    
        for job_id, (job, pack) in pending.items():
            state = states.get(job_id)
            if state is None:
                continue
            starts, running = seen.get(job_id, (1, False))
            now_starts = state.starts if state.starts is not None else starts + (running and state.state == "PENDING")
            seen[job_id] = (now_starts, state.state == "RUNNING")
            if now_starts <= starts:
                continue
            why = WHY.get(state.before[-1], "") if state.before else ""
            try:
                run_ids = {s.run_id for s in read_pack(pack)[0]}
            except (OSError, ValueError, KeyError, TypeError):
                run_ids = set()
            progress = next((p for r, p in checkpointed(Path(pack).parent.parent.parent).items() if r in run_ids), None)
            log.warning("job %s (%s) requeued%s (start %d); %s", job_id, _names(pack), f" {why}" if why else "",
                        now_starts, f"its last checkpoint is at epoch {progress.epoch}" if progress
                        else "no checkpoint yet: it starts over")

    @staticmethod
    def _outcome(job, pack: str, state: JobState | None, submitted: float, ended: dict, now: float):
        """The job's JobReturn once its task has returned; False when it ended otherwise (its record says how);
        None while it has not ended."""
        if not _result(job, submitted):
            if state is None or state.state not in FINAL:
                return None
            # ended: a result file may take a moment to show on a shared file system
            first = ended.setdefault(job.job_id, now)
            if now - first < (15.0 if state.state == "COMPLETED" else 3.0):
                return None
            log_path = job.paths.stderr
            why = _setup_failure(log_path)
            note = f"its job {job.job_id} ended {state.state}" + (f": {why}" if why else " without a result") + \
                   f"; its log: {log_path}"
            log.error("job %s (%s) ended %s%s; its log: %s", job.job_id, _names(pack), state.state,
                      f": {why}" if why else " without a result", log_path)
            update_record(pack, state=state.state, note=note)
            return False
        try:
            ret = job.results()[0]
        except Exception as exc:  # noqa: BLE001  (the task raised outside Hydra's job, or the result is unreadable)
            why = _one_line(exc)[:300]
            log.error("job %s (%s) failed: %s; its log: %s", job.job_id, _names(pack), why, job.paths.stderr)
            update_record(pack, state="FAILED", note=f"its job {job.job_id} failed: {why}; its log: {job.paths.stderr}")
            return False
        from hydra.core.utils import JobStatus

        if ret.status != JobStatus.COMPLETED:  # the task raised (ddescent.launch.hydra_task: a run failed)
            why = _one_line(ret._return_value)[:300]
            log.error("job %s (%s) failed: %s; its log: %s", job.job_id, _names(pack), why, job.paths.stderr)
            update_record(pack, state="FAILED", note=f"its job {job.job_id} failed: {why}; its log: {job.paths.stderr}")
            return False
        update_record(pack, state="COMPLETED")
        return ret


# ----------------------------------------------------------------------------- ddescent status


@dataclasses.dataclass
class Pending:
    label: str
    run_id: str
    job_id: str | None
    state: str
    epoch: int | None
    epochs: int | None
    left: float | None
    note: str = ""


def experiment_folders(results: Path) -> list[Path]:
    """The experiment folders under `results` (itself, when it is one): those with runs, and those whose sweep has
    handed packs to a launcher and written none yet."""
    results = Path(results)
    if (results / "runs").is_dir() or (results / ".sweep" / "packs").is_dir():
        return [results]
    swept = {p.parent.parent for p in results.glob("**/.sweep/packs")
             if not any(part.startswith((".", "_")) for part in p.parent.parent.relative_to(results).parts)}
    return sorted(set(store.experiment_folders(results)) | swept)


def status(folder: Path, now: float | None = None) -> tuple[list[Pending], int, str]:
    """The runs of an experiment that its sweeps handed to launchers and that are not done (their pack files say
    which), each with its job and what SLURM and its checkpoint say; the number of runs done; how SLURM was asked."""

    now = time.time() if now is None else now
    entries = []
    for pack in sorted((folder / ".sweep" / "packs").glob("*.json")):
        try:
            specs, labels = read_pack(str(pack))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        record = read_record(pack) or {}
        for spec, label in zip(specs, labels):
            if not store.is_done(spec.folder, spec.run_id):
                entries.append((spec, label, record))
    ids = sorted({r["job_id"] for _, _, r in entries if r.get("job_id")})
    answer = query(ids) if ids else ({}, "none")
    states, source = answer if answer else ({}, "none")
    progress = checkpointed(folder) if entries else {}
    out = []
    for spec, label, record in entries:
        job_id = record.get("job_id")
        job = states.get(job_id) if job_id else None
        if job is not None:
            state = job.state + (f" (start {job.starts})" if job.starts and job.starts > 1 else "")
        elif job_id:
            state = "unknown (not in the queue)" if source == "squeue" else "unknown"
        else:
            state = record.get("state", "no job recorded")  # (not submitted yet, or by another launcher)
        p = progress.get(spec.run_id)
        epochs = epochs_of(spec.config)
        alive = job is None or job.state in ("RUNNING", "PENDING")
        out.append(Pending(label, spec.run_id, job_id, state, p.epoch if p else None, epochs,
                           time_left(p, epochs, job, now) if alive else None, record.get("note", "")))
    done = len(list(store.runs_dir(folder).glob("*.parquet"))) if store.runs_dir(folder).is_dir() else 0
    return out, done, "no sacct or squeue answered" if answer is None else source


def status_lines(folder: Path, now: float | None = None) -> list[str]:
    pending, done, source = status(folder, now)
    if not pending:
        return [f"{folder}: nothing pending; {done} run(s) done"]
    jobs = {p.job_id for p in pending if p.job_id}
    lines = [f"{folder}: {len(pending)} run(s) pending in {len(jobs)} job(s), {done} done"
             + (f" (job states from {source})" if jobs else "")]
    rows = [("run", "job", "state", "checkpoint", "left")]
    for p in pending:
        epoch = "-" if p.epoch is None else f"{p.epoch}/{p.epochs}" if p.epochs else str(p.epoch)
        left = "-" if p.left is None else f"~{duration(p.left)}" + ("" if p.state.startswith("RUNNING") else " of training")
        rows.append((p.label, p.job_id or "-", p.state, epoch, left))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r[:-1], widths)) + "  " + r[-1] for r in rows]
    notes = sorted({p.note for p in pending if p.note})
    lines += [f"  {n}" for n in notes]
    return lines
