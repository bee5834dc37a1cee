"""Experiment tracking: each run's evaluation rows streamed, as they are measured, to a CSV file, TensorBoard,
MLflow or Weights & Biases (the config group `logger`, default `none`).

The parquet records stay the source of truth; a tracker is a live view of them. So a tracker never fails a run:
a backend that cannot work (not installed, server unreachable, disk full) warns once, in one line naming the
backend and the reason, and every later call on it does nothing.

    logger = open_logger(cfg.logger, {"run_id": ..., "experiment": ..., "config": {...}, "results": ...,
                                      "label": "width=47 seed=0"})
    logger.log(row, step=row["epoch"])         # one evaluation point; numbers only, NaN/inf and lists skipped
    logger.close("complete", summary)          # complete | diverged | failed | interrupted

Loggers of several runs may be open at once (a pack trains its runs together): no backend uses a global
"active run". Files go under a path component starting with `_` (`<results>/<experiment>/_logs/...`,
`<results>/_mlflow/`), which pyarrow's dataset discovery skips, so they never mix with the run files.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import numbers
import os
import socket
import time
from pathlib import Path
from typing import Any, Mapping, Protocol
from urllib.parse import urlparse

from ddescent.checks import ConfigError, Rule, one_of

log = logging.getLogger("ddescent")

BACKENDS = ("none", "csv", "tensorboard", "mlflow", "wandb")
EXTRA = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}  # pip extra that installs each

_optional_text = Rule(lambda v: v is None or (isinstance(v, str) and v.strip() != ""), "null or a non-empty string")
# Keys of every backend (a backend's config has only its own keys; an absent key is not checked). Unknown keys
# are refused by Hydra itself: the group's files are the schema.
RULES: dict[str, Rule] = {
    "logger.name": one_of(*BACKENDS),
    "logger.tracking_uri": _optional_text,
    "logger.mode": Rule(lambda v: v in (None, "online", "offline", "disabled"), "null, online, offline or disabled"),
    "logger.entity": _optional_text,
    "logger.project": _optional_text,
}


def check(cfg_logger: Mapping | None) -> None:
    """Raise ConfigError (one line) for a bad value in the logger group."""
    for key, rule in RULES.items():
        field = key.split(".", 1)[1]
        if cfg_logger is not None and field in cfg_logger and not rule.check(cfg_logger[field]):
            raise ConfigError(f"{key}={cfg_logger[field]!r}: expected {rule.allowed}")


class Logger(Protocol):
    def log(self, row: dict, step: int) -> None: ...

    def close(self, status: str = "complete", summary: dict | None = None) -> None: ...


class NullLogger:
    def log(self, row: dict, step: int) -> None:
        pass

    def close(self, status: str = "complete", summary: dict | None = None) -> None:
        pass


def open_logger(cfg_logger: Mapping | None, run: dict) -> Logger:
    """A logger for one run. `run` holds run_id, experiment, config (the resolved config, a plain nested dict),
    results (the results root) and optionally label (a short human name such as "width=47 seed=0")."""
    name = cfg_logger.get("name", "none") if cfg_logger is not None else "none"
    if name in (None, "none"):
        return NullLogger()
    if name not in _OPENERS:
        raise ConfigError(f"logger={name}: choose one of: {', '.join(BACKENDS)}")
    settings = {k: v for k, v in dict(cfg_logger).items() if k != "name"}
    return _Guarded(name, lambda: _OPENERS[name](settings, run))


def run_info(spec) -> dict:
    """What open_logger needs, from a RunSpec (run_id, name, config, label)."""
    return {"run_id": spec.run_id, "experiment": spec.name, "config": spec.config,
            "results": spec.config["results"], "label": spec.label}


class Trackers:
    """The loggers of one training (one per run of a pack), fed by the runner's events:

        trackers = Trackers(specs)                      # before training
        trackers("epoch", {"rows": {run_id: row}})      # an events listener: logs each row as it is recorded
        trackers.close(run_id, history)                 # after the run's file is written
        trackers.close_all("failed")                    # on an exception, for the runs not closed yet

    At close, rows the events did not carry are logged first, in order: a closed-form solve records all its rows
    at once, and a run resumed from a checkpoint brings the rows recorded before it (which the new process's
    logger has not seen)."""

    def __init__(self, specs):
        self.loggers = {s.run_id: open_logger(s.config.get("logger"), run_info(s)) for s in specs}
        self.logged: dict[str, set[int]] = {s.run_id: set() for s in specs}

    def log(self, run_id: str, row: dict) -> None:
        step = int(row["epoch"])
        self.loggers[run_id].log(row, step)
        self.logged[run_id].add(step)

    def __call__(self, kind: str, payload: dict) -> None:
        if kind == "epoch":
            for run_id, row in (payload.get("rows") or {}).items():
                if run_id in self.loggers:
                    self.log(run_id, row)

    def close(self, run_id: str, history) -> None:
        for row in sorted(history.rows, key=lambda r: r["epoch"]):
            if row["epoch"] not in self.logged.get(run_id, ()):
                self.log(run_id, row)
        logger = self.loggers.pop(run_id, None)
        if logger is not None:
            logger.close(history.status, history.summary)

    def close_all(self, status: str) -> None:
        for run_id in list(self.loggers):
            self.loggers.pop(run_id).close(status, {})


# ----------------------------------------------------------------------------- failure policy

_warned: set[str] = set()  # backends that have warned in this process: one line each, however many runs fail


def _reason(name: str, exc: BaseException) -> str:
    if isinstance(exc, ImportError):
        return f'not installed; pip install "ddescent[{EXTRA.get(name, name)}]"'
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


class _Guarded:
    """Runs a backend; the first exception (at open, log or close) warns once and turns it into a no-op."""

    def __init__(self, name: str, make):
        self.name = name
        self.impl = None
        try:
            self.impl = make()
        except Exception as exc:  # any failure of a tracker: the run goes on without it
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        impl, self.impl = self.impl, None
        if self.name not in _warned:
            _warned.add(self.name)
            log.warning("logger=%s: %s; the run goes on without it", self.name, _reason(self.name, exc))
        if impl is not None and hasattr(impl, "abandon"):
            try:
                impl.abandon()
            except Exception:
                pass

    def log(self, row: dict, step: int) -> None:
        values = numbers_of(row)
        if self.impl is not None and values:
            try:
                self.impl.log(values, int(step))
            except Exception as exc:
                self._fail(exc)

    def close(self, status: str = "complete", summary: dict | None = None) -> None:
        if self.impl is not None:
            impl, self.impl = self.impl, None
            try:
                impl.close(status, numbers_of(summary or {}))
            except Exception as exc:
                self.impl = impl
                self._fail(exc)


# ----------------------------------------------------------------------------- helpers


def numbers_of(row: Mapping) -> dict[str, int | float]:
    """The finite real numbers of a row, as Python ints and floats (numpy scalars included; bools, strings,
    lists, None, NaN and inf left out: a missing validation split is NaN, not a measurement)."""
    out: dict[str, int | float] = {}
    for key, value in row.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            continue
        if isinstance(value, numbers.Integral):
            out[str(key)] = int(value)
        elif math.isfinite(float(value)):
            out[str(key)] = float(value)
    return out


def flatten(config: Mapping, prefix: str = "") -> dict[str, Any]:
    """{"optim": {"lr": 0.01}} -> {"optim.lr": 0.01}; lists stay lists."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def logs_dir(run: dict, backend: str) -> Path:
    return Path(run["results"]) / run["experiment"] / "_logs" / backend


# ----------------------------------------------------------------------------- csv


class _Csv:
    """`<results>/<experiment>/_logs/csv/<run_id>.csv`: a row per evaluation, flushed as written; at close a
    `<run_id>.json` beside it with the status and the run's summary (so a complete CSV can be told apart from
    one of a run still training or killed). A rerun of the run replaces both."""

    def __init__(self, settings: dict, run: dict):
        folder = logs_dir(run, "csv")
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{run['run_id']}.csv"
        self.meta = folder / f"{run['run_id']}.json"
        self.meta.unlink(missing_ok=True)
        self.run = run
        self.columns: list[str] = []
        self.file = open(self.path, "w", newline="")
        self.writer = None

    def log(self, row: dict, step: int) -> None:
        row = {"epoch": step, **row} if "epoch" not in row else row
        new = [k for k in row if k not in self.columns]
        if new and self.columns:  # a column that appears late: write the file again with the wider header
            self.file.close()
            with open(self.path, newline="") as f:
                old = list(csv.DictReader(f))
            self.columns += new
            self.file = open(self.path, "w", newline="")
            self.writer = csv.DictWriter(self.file, self.columns)
            self.writer.writeheader()
            self.writer.writerows(old)
        elif new:
            self.columns = list(row)
            self.writer = csv.DictWriter(self.file, self.columns)
            self.writer.writeheader()
        self.writer.writerow(row)
        self.file.flush()

    def close(self, status: str, summary: dict) -> None:
        self.file.close()
        tmp = self.meta.with_name(f".{self.meta.name}")
        tmp.write_text(json.dumps({"run_id": self.run["run_id"], "status": status, "summary": summary}))
        os.replace(tmp, self.meta)

    def abandon(self) -> None:
        self.file.close()


# ----------------------------------------------------------------------------- tensorboard


class _TensorBoard:
    """One event folder per run, `<results>/<experiment>/_logs/tensorboard/<run_id>/` (`tensorboard --logdir` on
    the experiment's folder shows every run). Scalars are logged against the epoch, not the optimizer step:
    runs of one experiment differ in n_train, so only epochs line up across them (and Fig 9.10 is epoch-wise).
    The flattened config's scalar values are the run's hparams; the summary values are logged at the last epoch."""

    def __init__(self, settings: dict, run: dict):
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams

        folder = logs_dir(run, "tensorboard") / run["run_id"]
        if folder.is_dir():  # a rerun replaces the run's earlier events instead of doubling every point
            for old in folder.glob("events.out.tfevents.*"):
                old.unlink()
        self.writer = SummaryWriter(log_dir=str(folder))
        self.last = 0
        values = {"run_id": run["run_id"], "label": run.get("label") or run["run_id"]}
        values.update({k: v for k, v in flatten(run.get("config") or {}).items()
                       if isinstance(v, (bool, int, float, str)) and not (isinstance(v, float) and not math.isfinite(v))})
        # Only the session start: with no experiment summary, TensorBoard's hparams view infers the metrics from
        # the scalars every run logged, so runs with different columns (validation, extras) still line up.
        _, start, _ = hparams(values, {})
        self.writer.file_writer.add_summary(start)
        self.writer.flush()

    def log(self, row: dict, step: int) -> None:
        for key, value in row.items():
            self.writer.add_scalar(key, value, global_step=step)
        self.last = max(self.last, step)
        self.writer.flush()

    def close(self, status: str, summary: dict) -> None:
        for key, value in summary.items():
            self.writer.add_scalar(key, value, global_step=self.last)
        self.writer.file_writer.add_summary(_session_end(status))
        self.writer.close()

    def abandon(self) -> None:
        self.writer.close()


def _session_end(status: str):
    from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    code = {"complete": "STATUS_SUCCESS", "diverged": "STATUS_SUCCESS", "failed": "STATUS_FAILURE"}.get(
        status, "STATUS_ABORTED")
    content = plugin_data_pb2.HParamsPluginData(
        session_end_info=plugin_data_pb2.SessionEndInfo(status=api_pb2.Status.Value(code), end_time_secs=time.time()),
        version=metadata.PLUGIN_DATA_VERSION)
    meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name=metadata.PLUGIN_NAME,
                                                                  content=content.SerializeToString()))
    return Summary(value=[Summary.Value(tag=metadata.SESSION_END_INFO_TAG, metadata=meta)])


# ----------------------------------------------------------------------------- mlflow

# MLflow servers before 1.27 refused parameter values over 500 characters (newer ones take 6000): cut there, so
# any server takes them. A flattened config's values are short; a long list is the rare case.
MLFLOW_PARAM_CHARS = 500
MLFLOW_BATCH = 100  # params per log_batch call (the API's limit)
MLFLOW_METRICS_BATCH = 1000  # metrics per log_batch call (the API's limit)
# Metrics are sent at most this often (and at close): one call costs ~25 ms on a local SQLite store, more on a
# server, and the log-spaced evaluation points come many at once early in training, for every run of a pack.
MLFLOW_FLUSH_SECS = 5.0


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
    so the loggers of a pack do not step on each other). MLflow experiment = the ddescent experiment name; params =
    the flattened resolved config; tag `ddescent.run_id`; metrics per evaluation with step = epoch, sent in
    batches (see MLFLOW_FLUSH_SECS)."""

    def __init__(self, settings: dict, run: dict):
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        uri = mlflow_uri(settings, run)
        _reachable(uri)
        local = uri.startswith("sqlite:///") and not settings.get("tracking_uri") \
            and not os.environ.get("MLFLOW_TRACKING_URI")
        store = (Path(run["results"]) / "_mlflow").resolve()
        with _Lock(store / ".lock" if local else None):
            self.client = MlflowClient(tracking_uri=uri)
            experiment = self._experiment(run["experiment"], store / "artifacts" if local else None)
            run_id = run["run_id"]
            # An attempt that was killed left its MLflow run RUNNING; this attempt starts a new one.
            stale = self.client.search_runs([experiment], f"tags.`ddescent.run_id` = '{run_id}' and "
                                            "attributes.status = 'RUNNING'")
            for old in stale:
                self.client.set_terminated(old.info.run_id, "KILLED")
        tags = {"ddescent.run_id": run_id, "ddescent.experiment": run["experiment"]}
        self.run = self.client.create_run(experiment, run_name=run.get("label") or run_id, tags=tags)
        self.id = self.run.info.run_id
        params = [Param(k, _param_text(v)) for k, v in flatten(run.get("config") or {}).items()]
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

    def log(self, row: dict, step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.pending += [Metric(k, float(v), now, step) for k, v in row.items()]
        self.last = max(self.last, step)
        if time.monotonic() - self.flushed >= MLFLOW_FLUSH_SECS:
            self.flush()

    def flush(self) -> None:
        for i in range(0, len(self.pending), MLFLOW_METRICS_BATCH):
            self.client.log_batch(self.id, metrics=self.pending[i:i + MLFLOW_METRICS_BATCH])
        self.pending, self.flushed = [], time.monotonic()

    def close(self, status: str, summary: dict) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.pending += [Metric(k, float(v), now, self.last) for k, v in summary.items()]
        self.flush()
        self.client.set_tag(self.id, "ddescent.status", status)
        mlflow_status = {"complete": "FINISHED", "diverged": "FINISHED", "failed": "FAILED"}.get(status, "KILLED")
        self.client.set_terminated(self.id, mlflow_status)
    # (No `abandon`: after a failure the store may not answer, and a remote one would retry for minutes. The run
    # stays RUNNING until the next attempt of the same ddescent run marks it KILLED.)


def _param_text(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= MLFLOW_PARAM_CHARS else text[:MLFLOW_PARAM_CHARS - 3] + "..."


# ----------------------------------------------------------------------------- wandb


def wandb_mode(settings: dict) -> str | None:
    """logger.mode if set; None (W&B's own choice) when the user configured W&B (WANDB_MODE, WANDB_API_KEY, or a
    `wandb login` in ~/.netrc); else offline, so that nothing leaves the machine by surprise."""
    if settings.get("mode"):
        return settings["mode"]
    if os.environ.get("WANDB_MODE") or os.environ.get("WANDB_API_KEY"):
        return None
    try:
        import netrc

        host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
        if host and netrc.netrc().authenticators(host):
            return None
    except (OSError, netrc.NetrcParseError):
        pass
    return "offline"


class _Wandb:
    """A W&B run per ddescent run (project = the experiment, name = run_id, config = the resolved config), created
    with reinit="create_new" so the runs of a pack are open side by side; files under
    <results>/<experiment>/_logs/wandb/."""

    def __init__(self, settings: dict, run: dict):
        import wandb

        folder = logs_dir(run, "wandb").parent
        folder.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=settings.get("project") or run["experiment"], entity=settings.get("entity"),
            name=run["run_id"], notes=run.get("label"), config=run.get("config") or {}, dir=str(folder),
            mode=wandb_mode(settings), reinit="create_new",
            # console="off": W&B would otherwise wrap sys.stdout of the whole process, once per open run
            settings=wandb.Settings(console="off", silent=True, x_disable_stats=True, disable_git=True,
                                    save_code=False))
        self.run.summary["ddescent.run_id"] = run["run_id"]

    def log(self, row: dict, step: int) -> None:
        self.run.log(row, step=step)

    def close(self, status: str, summary: dict) -> None:
        self.run.summary.update({**summary, "status": status})
        self.run.finish(exit_code=1 if status == "failed" else 0)

    def abandon(self) -> None:
        self.run.finish(exit_code=1)


_OPENERS = {"csv": _Csv, "tensorboard": _TensorBoard, "mlflow": _MLflow, "wandb": _Wandb}
