"""logger=tensorboard: TensorBoard event files, one folder per run. Needs pip install "ddescent[tensorboard]"."""

from __future__ import annotations

import math
import time

from ddescent.loggers.base import Logger, flatten, logs_dir


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


LOGGER = Logger("tensorboard", open=_TensorBoard, extra="tensorboard")
