"""logger=tensorboard: TensorBoard event files, one folder per run. Needs pip install "ddescent[tensorboard]"."""

from __future__ import annotations

import math
import time

from ddescent.loggers.base import Logger, logs_dir, params_of, run_name, tracked


class _TensorBoard:
    """One event folder per run, `<results>/<experiment>/_logs/tensorboard/<name>-<run_id>/`, named by what a sweep
    varies (mlp-w47-n4000-s0-8f517dc0b9cd: see run_name; the run id keeps two runs out of one folder).
    `tensorboard --logdir <results>/<experiment>/_logs/tensorboard` shows every run. Scalars are logged against the
    epoch, not the optimizer step: runs of one experiment differ in n_train, so only epochs line up across them
    (and Fig 9.10 is epoch-wise); the records' `step` is the scalar `gd_step`. The HPARAMS tab: each run is a
    session whose hparams are the run's parameters (params_of: no plumbing; scalars and strings only), its run_id
    and n_params, and whose metrics are the last value of each scalar; the summary values are logged at the last
    epoch."""

    def __init__(self, settings: dict, run: dict):
        from torch.utils.tensorboard import SummaryWriter

        root = logs_dir(run, "tensorboard")
        if root.is_dir():  # a rerun replaces the run's earlier events instead of doubling every point
            for old in [root / run["run_id"], *root.glob(f"*-{run['run_id']}")]:
                for events in old.glob("events.out.tfevents.*"):
                    events.unlink()
                if old.is_dir() and not any(old.iterdir()):
                    old.rmdir()
        self.folder = root / f"{run_name(run.get('config') or {})}-{run['run_id']}"
        self.writer = SummaryWriter(log_dir=str(self.folder))
        self.last = 0
        self.hparams = {"run_id": run["run_id"]}
        self.hparams.update({k: v for k, v in params_of(run.get("config") or {}).items()
                             if isinstance(v, (bool, int, float, str))
                             and not (isinstance(v, float) and not math.isfinite(v))})
        self.started = False

    def describe(self, facts: dict) -> None:
        self.hparams.update(facts)
        self._start()

    def _start(self) -> None:
        """The hparams session start, once (TensorBoard reads the first one only): when the models are built
        (describe, with n_params), else before the first scalar. Only the session start: with no experiment
        summary, TensorBoard's hparams view infers the metrics from the scalars every run logged, so runs with
        different columns (validation, extras) still line up."""
        if self.started:
            return
        from torch.utils.tensorboard.summary import hparams

        _, start, _ = hparams(self.hparams, {})
        self.writer.file_writer.add_summary(start)
        self.writer.flush()
        self.started = True

    def log(self, row: dict, step: int) -> None:
        self._start()
        for key, value in tracked(row).items():
            self.writer.add_scalar(key, value, global_step=step)
        self.last = max(self.last, step)
        self.writer.flush()

    def close(self, status: str, summary: dict) -> None:
        self._start()
        for key, value in tracked(summary).items():
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


LOGGER = Logger("tensorboard", open=_TensorBoard, extra="tensorboard")
