"""What a logger is (`Logger`, its spec), the object that logs one run (`RunLogger`), and the policy every logger
shares: the parquet records stay the source of truth; a tracker is a live view of them, so a tracker never fails
a run. A backend that cannot work (not installed, server unreachable, disk full) warns once, in one line naming
the backend and the reason, and every later call on it does nothing.

    logger = open_logger(cfg.logger, {"run_id": ..., "experiment": ..., "config": {...}, "results": ...,
                                      "label": "width=47 seed=0"})
    logger.describe({"n_params": 1234})        # once the models are built (the runner's "start" event)
    logger.log(row, step=row["epoch"])         # one evaluation point; numbers only, NaN/inf and lists skipped
    logger.close("complete", summary)          # complete | diverged | failed | interrupted

Loggers of several runs may be open at once (a pack trains its runs together): no backend uses a global
"active run". Files go under a path component starting with `_` (`<results>/<experiment>/_logs/...`,
`<results>/_mlflow/`), which pyarrow's dataset discovery skips, so they never mix with the run files.
"""

from __future__ import annotations

import logging
import math
import numbers
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

from ddescent import component
from ddescent.component import Component

log = logging.getLogger("ddescent")


@dataclass(frozen=True, kw_only=True)
class Logger(Component):
    """A logger (the config group `logger`): a module of ddescent.loggers (or a plugin's) that sets
    `LOGGER = Logger("name", open=...)`.

    open(settings, run) -> RunLogger   the logger of one run; settings: the logger's config without its name;
                                       run: see `open_logger`. None: the runs are not tracked (logger=none).
    finish(settings, sweep, figures, failed)
                                       optional, at the end of a sweep (see `finish_sweep`): what the tracker keeps
                                       of the sweep as a whole (MLflow: the parent run, with the figures)
    extra                              the pip extra that installs what it needs (pip install "ddescent[extra]")
    """

    open: Callable | None
    finish: Callable | None = None
    extra: str | None = None


class RunLogger(Protocol):
    def describe(self, facts: dict) -> None: ...

    def log(self, row: dict, step: int) -> None: ...

    def close(self, status: str = "complete", summary: dict | None = None) -> None: ...


class NullLogger:
    def describe(self, facts: dict) -> None:
        pass

    def log(self, row: dict, step: int) -> None:
        pass

    def close(self, status: str = "complete", summary: dict | None = None) -> None:
        pass


def open_logger(cfg_logger: Mapping | None, run: dict) -> RunLogger:
    """A logger for one run. `run` holds run_id, experiment, config (the resolved config, a plain nested dict),
    results (the results root) and optionally label (a short human name such as "width=47 seed=0")."""
    name = cfg_logger.get("name", "none") if cfg_logger is not None else "none"
    spec = component.get("logger", name or "none")
    if spec.open is None:
        return NullLogger()
    settings = {k: v for k, v in dict(cfg_logger).items() if k != "name"}
    return _Guarded(spec, lambda: spec.open(settings, run))


def finish_sweep(config: Mapping, figures: list | None = None, failed: bool = False) -> None:
    """At the end of a sweep (its first run's `config`): the logger's `finish`, with the figure files drawn and
    whether some runs failed. Under the same policy as a run's logger: a failure warns once and the sweep goes on."""
    cfg_logger = config.get("logger")
    name = cfg_logger.get("name", "none") if cfg_logger is not None else "none"
    spec = component.get("logger", name or "none")
    if spec.open is None or spec.finish is None:
        return
    settings = {k: v for k, v in dict(cfg_logger).items() if k != "name"}
    sweep = {"experiment": config["name"], "results": config["results"], "config": dict(config)}
    _Guarded(spec, lambda: spec.finish(settings, sweep, [str(f) for f in figures or []], failed))  # (no run logger)


def run_info(spec) -> dict:
    """What open_logger needs, from a RunSpec (run_id, name, config, label)."""
    return {"run_id": spec.run_id, "experiment": spec.name, "config": spec.config,
            "results": spec.config["results"], "label": spec.label}


class Trackers:
    """The loggers of one training (one per run of a pack), fed by the runner's events:

        trackers = Trackers(specs)                      # before training
        trackers("start", {"n_params": {run_id: n}})    # the models are built
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
        if kind == "start":  # the models are built: what a run's config alone does not say (n_params)
            for run_id, n in (payload.get("n_params") or {}).items():
                if run_id in self.loggers:
                    self.loggers[run_id].describe({"n_params": int(n)})
        elif kind == "epoch":
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


def _reason(spec: Logger, exc: BaseException) -> str:
    if isinstance(exc, ImportError):
        return f'not installed; pip install "ddescent[{spec.extra or spec.name}]"'
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


class _Guarded:
    """Runs a backend; the first exception (at open, log or close) warns once and turns it into a no-op."""

    def __init__(self, spec: Logger, make):
        self.spec, self.name = spec, spec.name
        self.impl = None
        try:
            self.impl = make()
        except Exception as exc:  # any failure of a tracker: the run goes on without it
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        impl, self.impl = self.impl, None
        if self.name not in _warned:
            _warned.add(self.name)
            log.warning("logger=%s: %s; the run goes on without it", self.name, _reason(self.spec, exc))
        if impl is not None and hasattr(impl, "abandon"):
            try:
                impl.abandon()
            except Exception:
                pass

    def describe(self, facts: dict) -> None:
        if self.impl is not None and hasattr(self.impl, "describe"):
            try:
                self.impl.describe(facts)
            except Exception as exc:
                self._fail(exc)

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


def logs_dir(run: dict, backend: str) -> Path:
    return Path(run["results"]) / run["experiment"] / "_logs" / backend


# ----------------------------------------------------------------------------- what trackers show

# ddescent's own bookkeeping: where files go, bars, plotting, the tracker itself, checkpoint cadence. None of it
# changes a run's numbers (see ddescent.spec), and a tracker's parameter table is for what does.
PLUMBING = ("name", "results", "progress", "plot", "figures", "logger", "hydra", "data.cache_dir",
            "train.checkpoint_every", "train.keep_checkpoints", "train.keep_final")
# Metrics renamed in trackers that have a step of their own (MLflow, TensorBoard): the records' `step` (optimizer
# steps taken) would sit beside, and be taken for, the tracker's step axis (which is the epoch).
RENAMED = {"step": "gd_step"}


def _is_plumbing(key: str) -> bool:
    return any(key == p or key.startswith(p + ".") for p in PLUMBING)


def params_of(config: Mapping) -> dict[str, Any]:
    """A run's hyperparameters as a tracker shows them: the flattened config without ddescent's plumbing
    (PLUMBING) and without the group keys that only repeat a sweep axis (model.width is width, train.seed is
    seed), so each knob appears once."""
    from ddescent.spec import MIRRORS, flat

    return {k: v for k, v in flat(dict(config)).items() if not _is_plumbing(k) and k not in MIRRORS}


def tracked(row: Mapping) -> dict:
    """A row's metrics under the names trackers with a step axis show (RENAMED)."""
    return {RENAMED.get(k, k): v for k, v in row.items()}


def run_name(config: Mapping) -> str:
    """A short name for a run from the axes a sweep varies: mlp-w47-n4000-s0; the regularizer and its lambda
    (l2=0.001), a model's solver and a data seed other than 0 when there are. Not unique (a label-noise sweep
    gives its runs one name): trackers keep the run id beside it."""
    from ddescent.spec import lookup

    def get(key, default=None):
        return lookup(dict(config), key, default)

    def num(value) -> str:
        return f"{value:g}" if isinstance(value, float) else str(value)

    parts = [str(get("model.name", "run"))]
    if get("model.solver") is not None:
        parts.append(str(get("model.solver")))
    if get("width") is not None:
        parts.append(f"w{num(get('width'))}")
    if get("n_train") is not None:
        parts.append(f"n{num(get('n_train'))}")
    regularizer = get("regularizer.name", "none")
    if regularizer not in (None, "none"):
        parts.append(f"{regularizer}={num(float(get('reg_strength', get('regularizer.strength', 0)) or 0))}")
    if get("data_seed") not in (None, 0):
        parts.append(f"d{num(get('data_seed'))}")
    if get("seed") is not None:
        parts.append(f"s{num(get('seed'))}")
    return re.sub(r"[^A-Za-z0-9_.=+-]", "_", "-".join(parts))
