"""logger=csv: one CSV file per run, a row per evaluation as it is measured. No extra package."""

from __future__ import annotations

import csv
import json

from ddescent.files import write_text_atomic
from ddescent.loggers.base import Logger, logs_dir


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
        write_text_atomic(self.meta, json.dumps({"run_id": self.run["run_id"], "status": status, "summary": summary}))

    def abandon(self) -> None:
        self.file.close()


LOGGER = Logger("csv", open=_Csv)
