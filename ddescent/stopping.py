"""Early stopping on the validation split, never on the test set."""

from __future__ import annotations

import math

from torch import nn

from ddescent.data import Data
from ddescent.history import Recorder
from ddescent.metrics import evaluate


class EarlyStopping:
    """With a validation split and `patience` > 0: measure the validation loss after every epoch; each member's
    best epoch by validation loss (and the test error there, reported, never used to choose) goes into its
    summary, and training stops once no member still alive has improved for `patience` epochs."""

    def __init__(self, net: nn.Module, data: Data, G: int, patience: int, recorder: Recorder):
        self.net, self.data, self.G, self.patience = net, data, G, patience
        self.recorder = recorder  # the choice goes into each member's History summary
        self.enabled = patience > 0 and data.x_val is not None
        self.best = [math.inf] * G
        self.waited = [0] * G

    def update(self, epoch: int, alive: list[int]) -> bool:
        """True when every member still alive has run out of patience."""
        if not self.enabled or not alive:
            return False
        val_loss = evaluate(self.net, self.data.x_val, self.data.y_val, self.G)[1].tolist()
        improved = [g for g in alive if val_loss[g] < self.best[g]]
        if improved:
            error, loss = evaluate(self.net, self.data.x_test, self.data.y_test, self.G)
            noise = self.data.test_noise  # the full risk for regression, as the records (Data.test_noise)
            test_error, test_loss = (error + noise).tolist(), (loss + noise / 2).tolist()
        for g in alive:
            if g in improved:
                self.best[g], self.waited[g] = val_loss[g], 0
                self.recorder.histories[g].summary.update({"best_epoch": epoch, "best_val_loss": val_loss[g],
                                                  "early_stopped_test_error": test_error[g],
                                                  "early_stopped_test_loss": test_loss[g]})
            else:
                self.waited[g] += 1
        return all(self.waited[g] >= self.patience for g in alive)

    def state_dict(self) -> dict:
        return {"best": list(self.best), "waited": list(self.waited)}

    def load_state_dict(self, state: dict) -> None:
        if len(state["best"]) != self.G or len(state["waited"]) != self.G:
            raise ValueError("early-stopping state of another number of runs")
        self.best, self.waited = list(state["best"]), list(state["waited"])
