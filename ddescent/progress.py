"""What a sweep tells the person or the log file watching it.

On a terminal: a bar over the sweep's runs and one per pack in training, with live metrics; in Jupyter the same as
widgets where ipywidgets is installed. Otherwise (a batch job, `| tee log`, a notebook without ipywidgets): log
lines. Either way, one line per finished run (what it was, its final train and test error, its time, the sweep's
done/total and an ETA); with `-v` a line per evaluation point too; with `--quiet` nothing but errors. Everything
goes through the `ddescent` logger, so a Hydra job's own logging catches it.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import time

from tqdm.std import tqdm

log = logging.getLogger("ddescent")

QUIET, NORMAL, VERBOSE = logging.ERROR, logging.INFO, logging.DEBUG


class _Stderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a line is logged (a notebook or a test may swap it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


class _TqdmHandler(_Stderr):
    """Log lines written around the bars instead of through them."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=self.stream)
        except Exception:  # noqa: BLE001  (logging must never take the run down)
            self.handleError(record)


def setup_logging(level: int = NORMAL) -> None:
    """The `ddescent` logger writes to stderr: bare messages on a terminal, time-stamped lines in a log file."""
    terminal = sys.stderr.isatty()
    handler = _TqdmHandler() if terminal else _Stderr()
    handler.setFormatter(logging.Formatter("%(message)s" if terminal else "%(asctime)s %(message)s",
                                           "%Y-%m-%d %H:%M:%S"))
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False


def in_notebook() -> bool:
    """Running in a Jupyter kernel (where stderr is no terminal, and text bars are not what is wanted)."""
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def _widgets() -> bool:
    return importlib.util.find_spec("ipywidgets") is not None


def bars_wanted(setting, stream=None) -> bool:
    """`progress`: auto (bars on a terminal, or in a notebook that can draw them), on, off. A notebook without
    ipywidgets gets log lines, on or auto: tqdm would only warn "IProgress not found" there."""
    if setting in ("off", False):
        return False
    if in_notebook():
        return _widgets()
    return setting in ("on", True) or (stream or sys.stderr).isatty()


def _bar_class():
    """tqdm's widget bar in a notebook (bars_wanted asked for ipywidgets), its text bar elsewhere."""
    if in_notebook() and _widgets():
        from tqdm.notebook import tqdm as notebook_tqdm

        return notebook_tqdm
    return tqdm


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


class Reporter:
    """Hears the runner's events (directly, or forwarded by the workers) and reports them.

    `labels` names each run_id as the sweep plans it; `costs` are the runs' estimated training times, which
    weight the ETA (a wide model takes longer than a narrow one)."""

    def __init__(self, labels: dict[str, str], costs: dict[str, float] | None = None, bars: bool = False):
        self.labels, self.costs = labels, costs or {}
        self.total, self.done, self.start = len(labels), 0, time.perf_counter()
        self.cost_total = sum(self.costs.get(r, 1.0) for r in labels) or 1.0
        self.cost_done = 0.0
        self.bars = bars and log.isEnabledFor(logging.INFO)
        self.bar = _bar_class() if self.bars else tqdm
        # No bar at all without bars: tqdm makes a multiprocessing lock even for a disabled one, a semaphore that a
        # joblib worker killed on Ctrl-C leaves for the resource tracker to warn about ("leaked semaphore objects").
        self.overall = self.bar(total=self.total, desc="sweep", unit="run", position=0, dynamic_ncols=True) \
            if self.bars else None
        self.packs: dict[tuple, tqdm] = {}
        self.finished: set[str] = set()
        self.seen: set[tuple] = set()  # packs that reported an epoch: the first report says where training began

    def __call__(self, kind: str, payload: dict) -> None:
        getattr(self, f"_{kind}")(payload)

    def _start(self, payload: dict) -> None:
        if self.bars:
            runs = tuple(payload["runs"])
            name = self.labels.get(runs[0], runs[0]) + (f" +{len(runs) - 1}" if len(runs) > 1 else "")
            self.packs[runs] = self.bar(total=payload["epochs"], desc=name[:48], unit="epoch", leave=False,
                                        position=len(self.packs) + 1, dynamic_ncols=True)

    def _epoch(self, payload: dict) -> None:
        runs = tuple(payload["runs"])
        bar = self.packs.get(runs)
        rows = payload["rows"]
        if runs not in self.seen:
            self.seen.add(runs)
            if payload["epoch"] > 0:  # (in a worker the checkpoint's own log line goes nowhere: say it here)
                name = self.labels.get(runs[0], runs[0]) + (f" and {len(runs) - 1} more" if len(runs) > 1 else "")
                if payload["epoch"] == payload["epochs"]:
                    log.info("%s: trained to the end before, its files not all written: writing them from its kept "
                             "final state (epoch %d of %d), without training", name, payload["epoch"], payload["epochs"])
                elif payload.get("extends"):
                    log.info("%s: extends %s (%d epochs): training epochs %d-%d only", name,
                             _ids(payload["extends"]), payload["epoch"], payload["epoch"] + 1, payload["epochs"])
                else:
                    log.info("%s: resumed from its checkpoint at epoch %d of %d", name, payload["epoch"],
                             payload["epochs"])
        if bar is not None:
            bar.n = payload["epoch"]
            if rows:
                row = next(iter(rows.values()))
                bar.set_postfix(train=f"{row['train_error']:.3f}", test=f"{row['test_error']:.3f}", refresh=False)
            bar.refresh()
        if log.isEnabledFor(logging.DEBUG):
            for run_id, row in rows.items():
                log.debug("%s  epoch %d: train error %.4f (loss %.4f), test error %.4f (loss %.4f)%s",
                          self.labels.get(run_id, run_id), row["epoch"], row["train_error"], row["train_loss"],
                          row["test_error"], row["test_loss"],
                          f", val error {row['val_error']:.4f}" if "val_error" in row else "")

    def _run(self, payload: dict) -> None:
        outcome = payload["outcome"]
        if outcome.run_id in self.finished:  # each run counts once: a report of a run already reported (a pack
            return  # that failed after some of its runs were stored) is no news, and no failure of what is stored
        self.done += 1
        self.total = max(self.total, self.done)
        self.cost_done += self.costs.get(outcome.run_id, 1.0)
        self.finished.add(outcome.run_id)
        for runs in [r for r in self.packs if set(r) <= self.finished]:
            self.packs.pop(runs).close()
        if self.overall is not None:
            self.overall.update(1)
        elapsed = time.perf_counter() - self.start
        eta = max(0.0, elapsed * (self.cost_total - self.cost_done) / self.cost_done) if self.cost_done else 0.0
        label = self.labels.get(outcome.run_id, outcome.label)
        where = f"[{self.done}/{self.total}, {_duration(elapsed)} elapsed, ETA {_duration(eta)}]"
        if outcome.status in ("complete", "diverged"):
            final = outcome.final
            nan = float("nan")
            log.info("%s %s: %s, train error %.4f, test error %.4f, %.1f s", where, label, outcome.status,
                     nan if final.get("train_error") is None else final["train_error"],
                     nan if final.get("test_error") is None else final["test_error"], outcome.seconds)
        elif outcome.status == "failed":
            log.error("%s %s: FAILED: %s", where, label, outcome.note)
        elif outcome.status == "held":
            log.warning("%s %s: not trained: %s", where, label, outcome.note)
        else:
            log.info("%s %s: already done", where, label)

    def close(self) -> None:
        for bar in self.packs.values():
            bar.close()
        if self.overall is not None:
            self.overall.close()


def _ids(run_ids: list[str]) -> str:
    return ", ".join(run_ids) if len(run_ids) <= 2 else f"{run_ids[0]} and {len(run_ids) - 1} more"
