"""What runs record while they train: a row per evaluation point for every member, and how each ended."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from torch import nn

from ddescent.data import Data
from ddescent.metrics import evaluate, members_finite
from ddescent.schedule import eval_epochs  # noqa: F401  (train.py's import; torch-free for the theory)

STATUSES = ("complete", "diverged")
ROW_KEYS = ("epoch", "step", "wall_time_s")


@dataclass
class History:
    """What one member's run recorded: a row per evaluation point, and how it ended."""

    rows: list[dict] = field(default_factory=list)
    status: str = "complete"
    summary: dict = field(default_factory=dict)  # per-run values, e.g. the early-stopping choice


class Recorder:
    """Evaluates the G members of a batched net on every split at the evaluation points and keeps their
    Histories; tracks which members are still alive (a member whose parameters turn NaN/inf is recorded as
    diverged at the end of that epoch and no longer recorded). `extras()` adds columns (a regularizer's)."""

    def __init__(self, net: nn.Module, data: Data, G: int, steps_per_epoch: int,
                 extras: Callable[[], dict] | None = None):
        self.net, self.data, self.G, self.steps_per_epoch, self.extras = net, data, G, steps_per_epoch, extras
        self.histories = [History() for _ in range(G)]
        self.alive = list(range(G))
        self.epoch = 0  # the last epoch trained (and checked)
        self.start = time.perf_counter()

    def record(self, epoch: int, members: list[int]) -> dict[int, dict]:
        """Evaluate and append a row for `members`; returns {member: row}."""
        data, G = self.data, self.G
        splits = [("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test)]
        if data.x_val is not None:
            splits.append(("val", data.x_val, data.y_val))
        values = {}
        for name, x, y in splits:
            error, loss = evaluate(self.net, x, y, G)
            noise = data.test_noise if name == "test" else 0.0  # the full risk for regression (Data.test_noise)
            values[f"{name}_error"], values[f"{name}_loss"] = (error + noise).tolist(), (loss + noise / 2).tolist()
        more = self.extras() if self.extras is not None else {}
        wall = time.perf_counter() - self.start
        rows = {}
        for g in members:
            row = {"epoch": epoch, "step": epoch * self.steps_per_epoch, "wall_time_s": wall}
            row.update({k: v[g] for k, v in values.items()})
            row.update(more)
            self.histories[g].rows.append(row)
            rows[g] = row
        return rows

    def check(self, epoch: int) -> list[int]:
        """After each epoch (its one host-device sync): mark members whose parameters are no longer finite as
        diverged; returns them."""
        finite = members_finite(self.net, self.G)
        diverged = [g for g in self.alive if not finite[g]]
        for g in diverged:
            self.histories[g].status = "diverged"
        self.alive = [g for g in self.alive if finite[g]]
        self.epoch = epoch
        return diverged

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "alive": list(self.alive), "elapsed": time.perf_counter() - self.start,
                "histories": [{"rows": h.rows, "status": h.status, "summary": h.summary} for h in self.histories]}

    def load_state_dict(self, state: dict) -> None:
        histories = state["histories"]
        if len(histories) != self.G:
            raise ValueError(f"records of {len(histories)} runs, expected {self.G}")
        epoch = state["epoch"]
        for h in histories:
            epochs = [row.get("epoch") for row in h["rows"]]
            if not h["rows"] and epoch == 0:  # the state before training: nothing recorded yet
                continue
            if not h["rows"] or epochs[0] != 0 or epochs != sorted(set(epochs)) or epochs[-1] > epoch:
                raise ValueError(f"records at epochs {epochs[:3]}...{epochs[-1:]} do not lead up to epoch {epoch}")
            if any(not all(k in row for k in ROW_KEYS + ("train_error", "test_error")) for row in h["rows"]):
                raise ValueError("a record lacks its columns")
            if h["status"] not in STATUSES:
                raise ValueError(f"status {h['status']!r}")
        alive = list(state["alive"])
        if any(g not in range(self.G) or histories[g]["status"] != "complete" for g in alive):
            raise ValueError(f"alive members {alive} do not match the statuses")
        self.histories = [History(h["rows"], h["status"], h["summary"]) for h in histories]
        self.alive, self.epoch = alive, epoch
        self.start = time.perf_counter() - float(state["elapsed"])
