"""logger=mlflow: one MLflow run per ddescent run, nested under one parent run per experiment folder (the sweep's:
its figures are its artifacts). Needs pip install "ddescent[mlflow]".

Deadline: a tracking server that accepts connections and never answers costs a process MLFLOW_TIMEOUT_S x
(MLFLOW_RETRIES + 1) = 20 s, once (MLflow's own defaults, 120 s per request and 7 retries with back-off, would hold a
sweep for many minutes); the user's MLFLOW_HTTP_REQUEST_TIMEOUT and MLFLOW_HTTP_REQUEST_MAX_RETRIES win where set.
After such a failure the process does not ask that server again for SILENT_FOR_S: the runs go on, stored, without
it (one warning, see ddescent.loggers.base).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import socket
import time
from pathlib import Path
from urllib.parse import urlparse

from ddescent.checks import Rule
from ddescent.loggers.base import Logger, params_of, run_name, tracked

# MLflow servers before 1.27 refused parameter values over 500 characters (newer ones take 6000): cut there, so
# any server takes them. A flattened config's values are short; a long list is the rare case.
MLFLOW_PARAM_CHARS = 500
MLFLOW_BATCH = 100  # params per log_batch call (the API's limit)
MLFLOW_METRICS_BATCH = 1000  # metrics per log_batch call (the API's limit)
# Metrics are sent at most this often (and at close): one call costs ~25 ms on a local SQLite store, more on a
# server, and the log-spaced evaluation points come many at once early in training, for every run of a pack.
MLFLOW_FLUSH_SECS = 5.0
MLFLOW_TIMEOUT_S = 10  # per HTTP request (MLflow's MLFLOW_HTTP_REQUEST_TIMEOUT, default 120)
MLFLOW_RETRIES = 1  # per request (MLFLOW_HTTP_REQUEST_MAX_RETRIES, default 7)
SILENT_FOR_S = 600.0  # how long a server that did not answer is left alone
_silent: dict[str, tuple[float, str]] = {}  # tracking URI -> (when it did not answer, why)


def _deadlines() -> None:
    """MLflow reads its HTTP settings from the environment at each request: set ours where the user has not."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(MLFLOW_TIMEOUT_S))
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", str(MLFLOW_RETRIES))


def _no_answer(exc: BaseException) -> bool:
    """Whether a failure (or what it wraps) is the network's: a timeout or a broken connection."""
    import requests

    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, (requests.exceptions.RequestException, OSError)):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


@contextlib.contextmanager
def _answering(uri: str):
    """Around calls to the store at `uri`: a server that once did not answer is not asked again by this process
    (each run of a pack would otherwise wait out the deadline in turn)."""
    if _is_silent(uri):
        raise ConnectionError(_silent[uri][1])
    try:
        yield
    except Exception as exc:
        if urlparse(uri).scheme not in ("http", "https") or not _no_answer(exc):
            raise
        why = (f"tracking server {uri} did not answer within {os.environ.get('MLFLOW_HTTP_REQUEST_TIMEOUT')} s and "
               f"{os.environ.get('MLFLOW_HTTP_REQUEST_MAX_RETRIES')} retries (MLFLOW_HTTP_REQUEST_TIMEOUT, "
               "MLFLOW_HTTP_REQUEST_MAX_RETRIES)")
        _silent[uri] = (time.monotonic(), why)
        raise ConnectionError(why) from exc


@contextlib.contextmanager
def _hushed():
    """Around calls into MLflow: when ddescent prints nothing but warnings (-q; a worker process, whose lines the
    sweep prints), neither does MLflow: its INFO lines ("Creating initial MLflow database tables...") and the
    "View run ... at: <url>" it writes to stdout when a run ends on a tracking server
    (MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT, which the user's own setting overrides)."""
    if logging.getLogger("ddescent").getEffectiveLevel() <= logging.INFO:
        yield
        return
    mlflow_log = logging.getLogger("mlflow")
    level, env = mlflow_log.level, os.environ.get("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT")
    mlflow_log.setLevel(max(level, logging.WARNING))
    if env is None:
        os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    try:
        yield
    finally:
        mlflow_log.setLevel(level)
        if env is None:
            os.environ.pop("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", None)


def _is_silent(uri: str) -> bool:
    return uri in _silent and time.monotonic() - _silent[uri][0] < SILENT_FOR_S


def mlflow_uri(settings: dict, run: dict) -> str:
    """logger.tracking_uri, else MLFLOW_TRACKING_URI, else a SQLite store under <results>/_mlflow. (Current MLflow
    refuses the old ./mlruns file store unless told otherwise; SQLite needs only SQLAlchemy, which the extra
    installs.)"""
    if settings.get("tracking_uri"):
        return str(settings["tracking_uri"])
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    folder = (Path(run["results"]) / "_mlflow").resolve()
    return f"sqlite:///{folder / 'mlflow.db'}"


def _before_asking(uri: str) -> None:
    """Before this process asks a tracking server: it must be reachable (unless known silent: `_answering` then
    refuses at once) and our deadlines are set."""
    if urlparse(uri).scheme in ("http", "https"):
        if not _is_silent(uri):
            _reachable(uri)
        _deadlines()


def _reachable(uri: str, timeout: float = 5.0) -> None:
    """An http(s) tracking server that does not answer would otherwise cost minutes of the client's retries."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((parsed.hostname, port), timeout=timeout).close()
    except OSError as exc:
        raise ConnectionError(f"tracking server {parsed.scheme}://{parsed.hostname}:{port} unreachable ({exc})")


class _Lock:
    """An exclusive lock file while the local SQLite store is created or an experiment added: two processes
    starting together (parallel workers, an array job) would otherwise both run MLflow's table migrations."""

    def __init__(self, path: Path | None):
        self.path, self.fd = path, None

    def __enter__(self):
        if self.path is not None:
            import fcntl

            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            os.close(self.fd)  # closing releases the lock


class _MLflow:
    """One MLflow run per ddescent run, through MlflowClient with explicit run ids (never the global active run,
    so the loggers of a pack do not step on each other). MLflow experiment = the ddescent experiment name; run
    name = what a sweep varies (mlp-w47-n4000-s0, see run_name); tags `ddescent.run_id`, `ddescent.experiment`,
    `ddescent.label`; params = the run's parameters without ddescent's plumbing (params_of) and n_params once the
    model is built; metrics per evaluation with step = epoch (the records' `step` is `gd_step`), sent in batches
    (see MLFLOW_FLUSH_SECS). Each run is the child (tag `mlflow.parentRunId`) of its sweep's parent run, one per
    experiment folder (see `sweep_parent`): a rerun or resumed sweep finds the same parent.

    One MLflow run per ddescent run, also across reruns: a new attempt at a run (--force, a rerun after a kill or
    a failure) deletes the MLflow runs an earlier attempt left (found by the tag ddescent.run_id; deleted runs sit
    in MLflow's trash until `mlflow gc`) and logs a new one. (Resuming the old MLflow run instead would double
    every metric point the attempts share: MLflow cannot remove logged metric values.)"""

    def __init__(self, settings: dict, run: dict):
        import mlflow  # noqa: F401  (not installed: ImportError, the policy's one line)

        self.uri = uri = mlflow_uri(settings, run)
        _before_asking(uri)
        with _answering(uri), _hushed():
            self._open(settings, run, uri)

    def _open(self, settings: dict, run: dict, uri: str) -> None:
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        local = uri.startswith("sqlite:///") and not settings.get("tracking_uri") \
            and not os.environ.get("MLFLOW_TRACKING_URI")
        store = (Path(run["results"]) / "_mlflow").resolve()
        with _Lock(store / ".lock" if local else None):
            self.client = MlflowClient(tracking_uri=uri)
            experiment = self._experiment(run["experiment"], store / "artifacts" if local else None)
            run_id = run["run_id"]
            # Earlier attempts at this run (finished, failed, or left RUNNING by a kill): this one replaces them.
            for old in self.client.search_runs([experiment], f"tags.`ddescent.run_id` = '{run_id}'"):
                self.client.delete_run(old.info.run_id)
            parent = sweep_parent(self.client, experiment, run)
        tags = {"ddescent.run_id": run_id, "ddescent.experiment": run["experiment"], "mlflow.parentRunId": parent}
        if run.get("label"):
            tags["ddescent.label"] = run["label"]
        self.run = self.client.create_run(experiment, run_name=run_name(run.get("config") or {}), tags=tags)
        self.id = self.run.info.run_id
        params = [Param(k, _param_text(v)) for k, v in params_of(run.get("config") or {}).items()]
        for i in range(0, len(params), MLFLOW_BATCH):
            self.client.log_batch(self.id, params=params[i:i + MLFLOW_BATCH])
        self.last = 0
        self.pending: list = []
        self.flushed = -math.inf  # the first evaluation goes out at once: the run shows up with numbers

    def _experiment(self, name: str, artifacts: Path | None) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is None:
            try:
                return self.client.create_experiment(name, artifact_location=artifacts.as_uri() if artifacts else None)
            except Exception:  # created meanwhile by another process (a remote server has no lock of ours)
                found = self.client.get_experiment_by_name(name)
                if found is None:
                    raise
        if found.lifecycle_stage == "deleted":  # a name in MLflow's trash cannot be reused: bring it back
            self.client.restore_experiment(found.experiment_id)
        return found.experiment_id

    def describe(self, facts: dict) -> None:
        from mlflow.entities import Param

        with _answering(self.uri), _hushed():
            self.client.log_batch(self.id, params=[Param(k, _param_text(v)) for k, v in facts.items()])

    def log(self, row: dict, step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.pending += [Metric(k, float(v), now, step) for k, v in tracked(row).items()]
        self.last = max(self.last, step)
        if time.monotonic() - self.flushed >= MLFLOW_FLUSH_SECS:
            self.flush()

    def flush(self) -> None:
        with _answering(self.uri), _hushed():
            for i in range(0, len(self.pending), MLFLOW_METRICS_BATCH):
                self.client.log_batch(self.id, metrics=self.pending[i:i + MLFLOW_METRICS_BATCH])
        self.pending, self.flushed = [], time.monotonic()

    def close(self, status: str, summary: dict) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.pending += [Metric(k, float(v), now, self.last) for k, v in tracked(summary).items()]
        self.flush()
        mlflow_status = {"complete": "FINISHED", "diverged": "FINISHED", "failed": "FAILED"}.get(status, "KILLED")
        with _answering(self.uri), _hushed():
            self.client.set_tag(self.id, "ddescent.status", status)
            self.client.set_terminated(self.id, mlflow_status)
    # (No `abandon`: after a failure the store may not answer, and a remote one would retry for minutes. The run
    # stays RUNNING until the next attempt of the same ddescent run replaces it.)


SWEEP_TAG = "ddescent.sweep"  # on a sweep's parent run: a hash of its experiment folder


def _sweep_key(run: dict) -> tuple[str, str]:
    """(the tag value naming a sweep's parent run, the folder it stands for): one parent per experiment folder, so
    every sweep into the folder (a rerun, a resumed one, more seeds) nests its runs under the same parent."""
    folder = str((Path(run["results"]) / run["experiment"]).resolve())
    return hashlib.sha256(folder.encode()).hexdigest()[:16], folder


def sweep_parent(client, experiment: str, run: dict, create: bool = True) -> str | None:
    """The MLflow run id of the sweep's parent run (found by its tag; made when there is none and `create`). Two
    processes making it at once against a server: the older parent wins, the other is deleted again."""
    key, folder = _sweep_key(run)
    query = f"tags.`{SWEEP_TAG}` = '{key}'"
    order = ["attributes.start_time ASC"]
    found = client.search_runs([experiment], query, order_by=order)
    if found or not create:
        return found[0].info.run_id if found else None
    made = client.create_run(experiment, run_name=run["experiment"], tags={
        SWEEP_TAG: key, "ddescent.folder": folder, "ddescent.experiment": run["experiment"]}).info.run_id
    first = client.search_runs([experiment], query, order_by=order)[0].info.run_id
    if first != made:
        client.delete_run(made)
    return first


def finish_sweep(settings: dict, sweep: dict, figures: list, failed: bool) -> None:
    """At the end of a sweep: its figures become artifacts (figures/<file>) of its parent run, which ends FINISHED
    (FAILED when some runs failed). Nothing is made for a sweep none of whose runs MLflow tracked."""
    import mlflow  # noqa: F401

    uri = mlflow_uri(settings, sweep)
    if _is_silent(uri):
        return
    _before_asking(uri)
    from mlflow.tracking import MlflowClient

    with _answering(uri), _hushed():
        client = MlflowClient(tracking_uri=uri)
        experiment = client.get_experiment_by_name(sweep["experiment"])
        if experiment is None:
            return
        parent = sweep_parent(client, experiment.experiment_id, sweep, create=False)
        if parent is None:
            return
        for path in figures:
            client.log_artifact(parent, str(path), artifact_path="figures")
        client.set_terminated(parent, "FAILED" if failed else "FINISHED")


def _param_text(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= MLFLOW_PARAM_CHARS else text[:MLFLOW_PARAM_CHARS - 3] + "..."


_optional_text = Rule(lambda v: v is None or (isinstance(v, str) and v.strip() != ""), "null or a non-empty string")
LOGGER = Logger("mlflow", open=_MLflow, finish=finish_sweep, extra="mlflow",
                rules={"logger.tracking_uri": _optional_text})
