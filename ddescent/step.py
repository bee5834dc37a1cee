"""One optimizer step of every member of a batched net, chosen once before the loop. Every speed trick of the
training step lives behind this door, each measured against the plain way (README, Performance and GPUs):

- a net that writes its own backward pass for the data term (`ManualBackward`, the packed MLP: 1.2-1.45x per
  step on a CPU) skips autograd for it, in eager fp32/tf32; the penalty, if any, still goes through autograd;
- SGD without a schedule updates through torch's functional SGD on the optimizer's own state, skipping
  `Optimizer.step`'s per-call wrappers (~0.1 ms a step on a CPU, as much as a small model's whole update); the
  numbers, the state_dict and checkpoints are unchanged (a test compares);
- `train.compile` (make_step):
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
- `train.precision` (bf16 autocast around forward and loss; see ddescent.accel).
"""

from __future__ import annotations

import functools
from typing import Callable

import torch
from torch import nn

from ddescent.accel import autocast, check
from ddescent.metrics import per_model_loss
from ddescent.models import ManualBackward
from ddescent.optim import lean_update
from ddescent.regularizers import Penalty


class Step:
    """step(x, y, epoch): zero the gradients, add the data term of every member (summed: each member's
    parameters receive only their own part) and the scheduled penalty, backward, update, advance the schedule.
    Its state (optimizer, schedule, the regularizer's own parameters) is checkpointed with the run."""

    def __init__(self, net: nn.Module, optimizer: torch.optim.Optimizer, schedule=None, penalty: Penalty | None = None,
                 label_smoothing: float = 0.0, class_per_sample: bool = True, precision: str = "fp32",
                 compile: str = "none"):
        self.net, self.optimizer, self.schedule, self.penalty = net, optimizer, schedule, penalty
        self.regularizer = penalty.regularizer if penalty is not None else None
        self.epoch = 0
        # The hand-written backward covers one class label per sample (not sequences, not regression).
        by_hand = isinstance(net, ManualBackward) and class_per_sample
        # A schedule counts torch's own step calls, so with one the loop keeps them.
        zero_grad, update = (lean_update(optimizer) if schedule is None
                             else (lambda: optimizer.zero_grad(set_to_none=True), optimizer.step))
        self.engine = make_step(
            net, lambda out, y: per_model_loss(out, y, label_smoothing).sum(), optimizer, compile=compile,
            precision=precision, penalty=(lambda: penalty(self.epoch)) if penalty is not None else None,
            backward=(lambda x, y: net.backward_by_hand(x, y, label_smoothing)) if by_hand else None,
            zero_grad=zero_grad, update=update)

    def __call__(self, x: torch.Tensor, y: torch.Tensor, epoch: int) -> None:
        self.epoch = epoch
        self.engine(x, y)
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


class Engine:
    """One training step, engine(x, y) -> None, eager, compiled or captured; see make_step."""

    def __init__(self, net: nn.Module, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                 optimizer: torch.optim.Optimizer, *, compile: str = "none", precision: str = "fp32",
                 penalty: Callable[[], torch.Tensor | None] | None = None,
                 backward: Callable[[torch.Tensor, torch.Tensor], None] | None = None,
                 zero_grad: Callable[[], None] | None = None, update: Callable[[], None] | None = None,
                 warmup: int = 3, compile_options: dict | None = None):
        self.device = next(net.parameters()).device
        check(precision, compile, self.device, penalty=penalty is not None)
        self.net, self.loss_fn, self.optimizer = net, loss_fn, optimizer
        self.mode, self.precision, self.penalty, self.warmup = compile, precision, penalty, warmup
        # Hand-written gradients (the packed MLP) are fp32 code: used eagerly in fp32/tf32 only.
        self.backward = backward if compile == "none" and precision != "bf16" else None
        self.zero_grad = zero_grad or (lambda: optimizer.zero_grad(set_to_none=True))
        self.update = update or optimizer.step
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

    def _forward_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with self._autocast():
            return self.loss_fn(self.net(x), y)

    def _backward(self, loss: torch.Tensor) -> None:
        term = self.penalty() if self.penalty is not None else None
        (loss if term is None else loss + term).backward()

    def _eager(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.zero_grad()
        if self.backward is not None:
            self.backward(x, y)
            term = self.penalty() if self.penalty is not None else None
            if term is not None:
                term.backward()
        else:
            self._backward(self._forward_loss(x, y))
        self.update()

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        if self.shape is None:
            self.shape = x.shape
        if self.mode == "none":
            return self._eager(x, y)
        if self.mode == "graphs":
            return self._graph_step(x, y)
        if x.shape != self.shape:
            self.eager_calls += 1
            return self._eager(x, y)
        if self.mode == "reduce-overhead" and self.device.type == "cuda":
            torch.compiler.cudagraph_mark_step_begin()  # the previous step's graph outputs may be reused
        self.zero_grad()
        self._backward(self._compiled(x, y))
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
                    self._eager(x, y)
                torch.cuda.current_stream(self.device).wait_stream(side)
                return
            self._capture(x, y)
        if x.shape != self._x.shape:
            self.eager_calls += 1
            for p, grad in zip(self._params, self._grads):  # accumulate into the graph's own gradient buffers
                if grad is not None:
                    grad.zero_()
                    p.grad = grad
            with self._autocast():
                loss = self.loss_fn(self.net(x), y)
            loss.backward()
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


def make_step(net: nn.Module, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
              optimizer: torch.optim.Optimizer, *, compile: str = "none", precision: str = "fp32",
              penalty: Callable[[], torch.Tensor | None] | None = None,
              backward: Callable[[torch.Tensor, torch.Tensor], None] | None = None,
              zero_grad: Callable[[], None] | None = None, update: Callable[[], None] | None = None,
              warmup: int = 3, compile_options: dict | None = None) -> Engine:
    """A training step step(x, y) -> None: zero_grad, forward + loss_fn(logits, y) (a scalar; under bf16 autocast),
    plus penalty() when given (an already-scaled regularization term, or None while it is off), backward, update.

    `zero_grad` and `update` default to the optimizer's (pass optim.lean_update's pair to keep the loop's lean
    SGD); `backward(x, y)` writes the gradients by hand instead of forward + autograd (the packed MLP), used in
    eager fp32/tf32 only. `compile` is one of COMPILE_MODES (module docstring); graphs needs CUDA, no penalty and
    a constant learning rate, and captures after `warmup` eager steps; `compile_options` go to torch.compile (e.g.
    {"backend": "aot_eager"} to check the graph capture without code generation). Build the step after the net is on its
    device, in its memory format, and after a checkpoint's optimizer state is loaded."""
    return Engine(net, loss_fn, optimizer, compile=compile, precision=precision, penalty=penalty, backward=backward,
                zero_grad=zero_grad, update=update, warmup=warmup, compile_options=compile_options)
