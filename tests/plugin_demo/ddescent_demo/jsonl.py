"""A logger that appends each evaluation row to <results>/<experiment>/_logs/jsonl/<run_id>.jsonl."""

import json

from ddescent.loggers.base import Logger, logs_dir


class _Jsonl:
    def __init__(self, settings, run):
        folder = logs_dir(run, "jsonl")
        folder.mkdir(parents=True, exist_ok=True)
        self.file = open(folder / f"{run['run_id']}.jsonl", "w")

    def log(self, row, step):
        self.file.write(json.dumps({"step": step, **row}) + "\n")

    def close(self, status, summary):
        self.file.write(json.dumps({"status": status}) + "\n")
        self.file.close()


LOGGER = Logger("jsonl", open=_Jsonl)
