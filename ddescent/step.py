"""One optimizer step of every member of a batched net: `Step`, chosen once before the loop. Every speed trick of
the training step lives behind this door, each measured against the plain way (README, Performance and GPUs):

- `backward`: a net that writes its own backward pass for the data term (the packed MLP: 1.2-1.45x per step on a
  CPU) skips autograd for it, in eager fp32/tf32 only (it is fp32 code); the penalty, if any, still goes through
  autograd. Where compile or bf16 switch it off, the log says so once.
- `lean`: SGD without a schedule updates through torch's functional SGD on the optimizer's own state, skipping
  `Optimizer.step`'s per-call wrappers (~0.1 ms a step on a CPU, as much as a small model's whole update); the
  numbers, the state_dict and checkpoints are unchanged (a test compares).
- `compile` (train.compile):
    none             eager.
    default          torch.compile of forward + loss (AOTAutograd compiles the matching backward); the
                     optimizer update stays eager (it is already one fused kernel per parameter group).
    reduce-overhead  the same with mode="reduce-overhead": CUDA graphs of forward and backward on a GPU (on a CPU
                     it is `default`).
    graphs           a manual torch.cuda.CUDAGraph of the whole step (forward, loss, backward and optimizer update)
                     with static input buffers, captured after `warmup` eager steps and replayed after. CUDA only.
  Static shapes: compiled code and graphs are specialised to the batch shape of the first step. A batch of another
  shape (the last, partial batch of an epoch) runs eagerly, on the same parameters and optimizer state (and, in
  graphs mode, gradient buffers). Nothing is dropped or padded; the numbers are those of the eager loop up to
  float rounding. The cost is one eager step per epoch and no recompilation.
- `precision` (train.precision: bf16 autocast around forward and loss; see ddescent.accel).
"""

from __future__ import annotations

import functools
import logging
from typing import Callable

import torch
from torch import nn

from ddescent.accel import autocast, check
from ddescent.optim import lean_update

log = logging.getLogger("ddescent")
_said: set[str] = set()  # what the log has been told once in this process


class Step:
    """step(x, y, epoch): zero the gradients, the data term `loss(net(x), y)` (summed over the members: each
    member's parameters receive only their own part) plus `penalty(epoch)` (an already scaled regularization term,
    or None while it is off), backward, update, advance the schedule.

    Its state (the optimizer's, the schedule's and the state of `regularizer`, the module whose own parameters the
    step trains alongside the net) is checkpointed with the run. Build it after the net is on its device and in
    its memory format. `compile_options` go to torch.compile (e.g. {"backend": "aot_eager"} to check the graph
    capture without code generation)."""

    def __init__(self, net: nn.Module, optimizer: torch.optim.Optimizer,
                 loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], *, schedule=None,
                 penalty: Callable[[int], torch.Tensor | None] | None = None, regularizer: nn.Module | None = None,
                 backward: Callable[[torch.Tensor, torch.Tensor], None] | None = None, lean: bool = False,
                 precision: str = "fp32", compile: str = "none", warmup: int = 3,
                 compile_options: dict | None = None):
        self.device = next(net.parameters()).device
        check(precision, compile, self.device, schedule=schedule is not None, penalty=penalty is not None)
        self.net, self.optimizer, self.loss, self.schedule = net, optimizer, loss, schedule
        self.penalty, self.regularizer = penalty, regularizer
        self.mode, self.warmup = compile, warmup
        self.backward = backward if compile == "none" and precision != "bf16" else None
        if backward is not None and self.backward is None:
            _say_once(f"the hand-written backward of {type(net).__name__} is off under "
                      + (f"train.compile={compile}" if compile != "none" else "train.precision=bf16")
                      + " (it is eager fp32 code): autograd computes the same gradients")
        # A schedule counts torch's own step calls, so with one the step keeps them.
        self.zero_grad, self.update = (lean_update(optimizer) if lean and schedule is None else
                                       ((lambda: optimizer.zero_grad(set_to_none=True)), optimizer.step))
        self.shape: torch.Size | None = None
        self.eager_calls = 0  # steps that ran eagerly in a compiled / graphs mode (other shapes, warm-up)
        # Autocast's weight cache must be off inside a graph capture (cached casts would be stale replays).
        self._autocast = functools.partial(autocast, precision, self.device, cache_enabled=compile != "graphs")
        self._compiled = None
        if compile in ("default", "reduce-overhead"):
            # Dynamo caches compiled code per Python function (this method's, for every Step) and recompiles for
            # each new net shape; after its recompile limit (8) it falls back to eager. A process trains many nets
            # one after another (a sweep's packs), so each step starts from an empty cache; a Step built earlier
            # still works, it compiles again on its next call.
            torch._dynamo.reset()
            self._compiled = torch.compile(self._forward_loss, mode=None if compile == "default" else compile,
                                           dynamic=False, **(compile_options or {}))
        self._graph, self._warmed = None, 0
        if compile == "graphs":
            self._params = [p for g in optimizer.param_groups for p in g["params"]]
            for group in optimizer.param_groups:  # Adam refuses capture otherwise (and keeps its step on device)
                if "capturable" in group:
                    group["capturable"] = True
            for p in self._params:  # a resumed state may hold its step counts on the CPU
                state = optimizer.state.get(p, {})
                if torch.is_tensor(state.get("step")) and state["step"].device != p.device:
                    state["step"] = state["step"].to(p.device)

    def __call__(self, x: torch.Tensor, y: torch.Tensor, epoch: int = 0) -> None:
        if self.shape is None:
            self.shape = x.shape
        term = self.penalty(epoch) if self.penalty is not None else None
        if self.mode == "none":
            self._eager(x, y, term)
        elif self.mode == "graphs":
            self._graph_step(x, y)
        elif x.shape != self.shape:
            self.eager_calls += 1
            self._eager(x, y, term)
        else:
            if self.mode == "reduce-overhead" and self.device.type == "cuda":
                torch.compiler.cudagraph_mark_step_begin()  # the previous step's graph outputs may be reused
            self.zero_grad()
            _backward(self._compiled(x, y), term)
            self.update()
        if self.schedule is not None:
            self.schedule.step()

    def _forward_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with self._autocast():
            return self.loss(self.net(x), y)

    def _eager(self, x: torch.Tensor, y: torch.Tensor, term: torch.Tensor | None) -> None:
        self.zero_grad()
        if self.backward is not None:
            self.backward(x, y)
            if term is not None:
                term.backward()
        else:
            _backward(self._forward_loss(x, y), term)
        self.update()

    def _graph_step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        if self._graph is None:
            if x.shape != self.shape or self._warmed < self.warmup:
                # Warm-up on a side stream (lazy optimizer state, cuDNN autotuning), as PyTorch's recipe asks.
                self.eager_calls += 1
                self._warmed += x.shape == self.shape
                side = torch.cuda.Stream(self.device)
                side.wait_stream(torch.cuda.current_stream(self.device))
                with torch.cuda.stream(side):
                    self._eager(x, y, None)
                torch.cuda.current_stream(self.device).wait_stream(side)
                return
            self._capture(x, y)
        if x.shape != self._x.shape:
            self.eager_calls += 1
            for p, grad in zip(self._params, self._grads):  # accumulate into the graph's own gradient buffers
                if grad is not None:
                    grad.zero_()
                    p.grad = grad
            self._forward_loss(x, y).backward()
            self.update()
            return
        self._x.copy_(x)
        self._y.copy_(y)
        self._graph.replay()

    def _capture(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self._x, self._y = x.clone(), y.clone()
        self.optimizer.zero_grad(set_to_none=True)  # gradients are then allocated (and written) by the graph
        torch.cuda.synchronize(self.device)
        self._graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self._graph):
            self._loss = self._forward_loss(self._x, self._y)
            self._loss.backward()
            self.update()
        self._grads = [p.grad for p in self._params]
        # Capturing records the kernels without running them: the replay that follows performs this step.

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
        for part in ("schedule", "regularizer"):
            mine = getattr(self, part)
            if (state[part] is None) != (mine is None):
                raise ValueError(f"the checkpoint's {part} does not match the run's")
            if mine is not None:
                mine.load_state_dict(state[part])


def _backward(loss: torch.Tensor, term: torch.Tensor | None) -> None:
    (loss if term is None else loss + term).backward()


def _say_once(message: str) -> None:
    if message not in _said:
        _said.add(message)
        log.info("%s", message)
