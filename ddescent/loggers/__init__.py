"""Experiment tracking (the config group `logger`): each run's evaluation rows streamed, as they are measured, to
a CSV file, TensorBoard, MLflow or Weights & Biases. One module per logger (see `Logger` in
ddescent.loggers.base), found by discovery (ddescent.component); the policy they share is in the base module."""

from ddescent.loggers.base import Logger, NullLogger, RunLogger, Trackers, open_logger, run_info

__all__ = ["Logger", "NullLogger", "RunLogger", "Trackers", "open_logger", "run_info"]
