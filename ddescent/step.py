"""One optimizer step of every member of a batched net, chosen once before the loop. Every speed trick of the
training step lives here, each measured against the plain way in the README's Performance section:

- a net that writes its own backward pass for the data term (`ManualBackward`, the packed MLP: 1.2-1.45x per
  step on a CPU) skips autograd for it; the penalty, if any, still goes through autograd;
- SGD without a schedule updates through torch's functional SGD on the optimizer's own state, skipping
  `Optimizer.step`'s per-call wrappers (~0.1 ms a step on a CPU, as much as a small model's whole update); the
  numbers, the state_dict and checkpoints are unchanged (a test compares).
"""

from __future__ import annotations

import torch
from torch import nn

from ddescent.metrics import per_model_loss
from ddescent.models import ManualBackward
from ddescent.optim import lean_update
from ddescent.regularizers import Penalty


class Step:
    """step(x, y, epoch): zero the gradients, add the data term of every member (summed: each member's
    parameters receive only their own part) and the scheduled penalty, backward, update, advance the schedule.
    Its state (optimizer, schedule, the regularizer's own parameters) is checkpointed with the run."""

    def __init__(self, net: nn.Module, optimizer: torch.optim.Optimizer, schedule=None, penalty: Penalty | None = None,
                 label_smoothing: float = 0.0, class_per_sample: bool = True):
        self.net, self.optimizer, self.schedule, self.penalty = net, optimizer, schedule, penalty
        self.regularizer = penalty.regularizer if penalty is not None else None
        self.label_smoothing = label_smoothing
        # The hand-written backward covers one class label per sample (not sequences, not regression).
        self.by_hand = isinstance(net, ManualBackward) and class_per_sample
        # A schedule counts torch's own step calls, so with one the loop keeps them.
        self.zero_grad, self.update = (lean_update(optimizer) if schedule is None
                                       else (lambda: optimizer.zero_grad(set_to_none=True), optimizer.step))

    def __call__(self, x: torch.Tensor, y: torch.Tensor, epoch: int) -> None:
        term = self.penalty(epoch) if self.penalty is not None else None
        self.zero_grad()
        if self.by_hand:
            self.net.backward_by_hand(x, y, self.label_smoothing)
            if term is not None:
                term.backward()
        else:
            objective = per_model_loss(self.net(x), y, self.label_smoothing).sum()
            (objective if term is None else objective + term).backward()
        self.update()
        if self.schedule is not None:
            self.schedule.step()

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(),
                "schedule": self.schedule.state_dict() if self.schedule is not None else None,
                "regularizer": self.regularizer.state_dict() if self.regularizer is not None else None}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        for group in self.optimizer.param_groups:  # Optimizer.load_state_dict does not check the buffers' shapes
            for p in group["params"]:
                for name, value in self.optimizer.state.get(p, {}).items():
                    if torch.is_tensor(value) and value.dim() and value.shape != p.shape:
                        raise ValueError(f"optimizer state {name} has shape {tuple(value.shape)}, its parameter "
                                         f"{tuple(p.shape)}")
        if (state["schedule"] is None) != (self.schedule is None):
            raise ValueError("the checkpoint's learning-rate schedule does not match the run's")
        if self.schedule is not None:
            self.schedule.load_state_dict(state["schedule"])
        if (state["regularizer"] is None) != (self.regularizer is None):
            raise ValueError("the checkpoint's regularizer does not match the run's")
        if self.regularizer is not None:
            self.regularizer.load_state_dict(state["regularizer"])
