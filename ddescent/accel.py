"""Speed settings of the training step: numeric precision (`train.precision`), memory layout and compilation
(`train.compile`). Each keeps the meaning of a step: zero the gradients, forward, loss, backward, update.

precision (`precision_context(name, device)`, entered once around a run):
    fp32  IEEE fp32 everywhere: TF32 off for matmuls AND convolutions. PyTorch's own defaults are mixed:
          matmuls in fp32 (torch.backends.cuda.matmul.allow_tf32 = False) but cuDNN convolutions in TF32
          (torch.backends.cudnn.allow_tf32 = True), so a "plain" PyTorch ResNet on an A100/H100 already runs its
          convolutions in TF32. Here fp32 means fp32.
    tf32  TF32 tensor cores for fp32 matmuls and convolutions (10-bit mantissa products, fp32 accumulation).
    bf16  torch.autocast(device_type, dtype=bfloat16) around forward and loss (see `autocast`); backward runs in
          the dtypes autocast chose, parameters, gradients and optimizer state stay fp32; TF32 off for what
          autocast leaves in fp32.
    The TF32 flags are process-wide: they are set on entry and restored on exit, whatever they were. On a CPU they
    have no effect (bf16 autocast does).

channels_last(net, example_input): NHWC layout of 4-D image activations and conv weights (tensor cores prefer it).

make_step(net, loss_fn, optimizer, compile=...) -> Step, a callable step(x, y) -> None:
    none             eager.
    default          torch.compile of forward + loss (AOTAutograd compiles the matching backward); the
                     optimizer update stays eager (it is already one fused kernel per parameter group).
    reduce-overhead  the same with mode="reduce-overhead": CUDA graphs of forward and backward on a GPU (on a CPU
                     it is `default`).
    graphs           a manual torch.cuda.CUDAGraph of the whole step (forward, loss, backward and optimizer update)
                     with static input buffers, captured after `warmup` eager steps and replayed after. CUDA only:
                     elsewhere `check` and make_step refuse it (ConfigError), they do not fall back.

Static shapes: graphs and compiled code are specialised to the batch shape of the first step. A batch of another
shape (the last, partial batch of an epoch) runs eagerly, on the same parameters, optimizer state (and, in graphs
mode, gradient buffers). Nothing is dropped or padded, so every epoch still sees every sample once and the numbers
are those of the eager loop up to float rounding (compiled kernels may fuse and reorder sums); the cost is one
eager step per epoch (1 of 391 steps for CIFAR-10 at batch 128) and no recompilation.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Callable, ContextManager, Iterator

import torch
from torch import nn

from ddescent import ConfigError

PRECISIONS = ("fp32", "tf32", "bf16")
COMPILE_MODES = ("none", "default", "reduce-overhead", "graphs")


def check(precision: str, compile: str, device: torch.device | str, *, schedule: bool = False,
          penalty: bool = False, by_hand: bool = False) -> None:
    """Refuse, as one line naming the key, the settings this device or run cannot have."""
    device = torch.device(device)
    if precision not in PRECISIONS:
        raise ConfigError(f"train.precision={precision!r}: choose one of: {', '.join(PRECISIONS)}")
    if compile not in COMPILE_MODES:
        raise ConfigError(f"train.compile={compile!r}: choose one of: {', '.join(COMPILE_MODES)}")
    if compile == "graphs":
        if device.type != "cuda":
            raise ConfigError(f"train.compile=graphs: CUDA graphs need a CUDA device, this run trains on "
                              f"{device.type} (use none, default or reduce-overhead)")
        if schedule:  # a captured optimizer step bakes in the learning rate it saw
            raise ConfigError("train.compile=graphs: a learning-rate schedule changes the rate every step, which a "
                              "captured graph cannot see; use train.compile=default or a constant rate")
        if penalty:
            raise ConfigError("train.compile=graphs: a regularizer's penalty switches on and ramps by epoch; use "
                              "train.compile=default with regularizer=none|l2|sws")


# --------------------------------------------------------------------------------------------- precision


def _tf32_state() -> tuple[bool, bool]:
    return torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32


def _set_tf32(matmul: bool, cudnn: bool) -> None:
    # The flags PyTorch has had since 1.7, which every version up to 2.x reads; mixing them with the per-backend
    # fp32_precision strings of 2.9+ makes PyTorch refuse to read either, so only these are used.
    torch.backends.cuda.matmul.allow_tf32 = matmul
    torch.backends.cudnn.allow_tf32 = cudnn


def autocast(name: str, device: torch.device | str, *, cache_enabled: bool = True) -> ContextManager:
    """The context around forward and loss: bf16 autocast, or nothing for fp32 and tf32."""
    if name == "bf16":
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, cache_enabled=cache_enabled)
    return contextlib.nullcontext()


@contextlib.contextmanager
def precision_context(name: str, device: torch.device | str) -> Iterator[Callable[[], ContextManager]]:
    """Set the run's precision (see the module docstring) and yield the forward context factory
    (`autocast(name, device)`); the TF32 flags are restored on exit, also after an error."""
    check(name, "none", device)
    saved = _tf32_state()
    _set_tf32(name == "tf32", name == "tf32")
    try:
        yield functools.partial(autocast, name, device)
    finally:
        _set_tf32(*saved)


# --------------------------------------------------------------------------------------------- layout


def channels_last(net: nn.Module, example_input: torch.Tensor) -> nn.Module:
    """Put a net with 2-D convolutions into channels-last layout, given a training batch of the packed interface
    ([G, B, C, H, W]); any other net or input is returned unchanged. Conv weights are converted in place (the
    Parameter objects stay; call it before the optimizer's first step, whose state copies the weights' layout, and
    before make_step), and the first convolution's input is converted once per forward (a packed conv net
    rearranges its input straight into that layout). The numbers are the same up to summation order."""
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    if example_input.dim() != 5 or not convs:
        return net
    net.to(memory_format=torch.channels_last)
    if hasattr(net, "memory_format"):  # a PackedConvNet
        net.memory_format = torch.channels_last
    else:
        convs[0].register_forward_pre_hook(
            lambda module, args: (args[0].contiguous(memory_format=torch.channels_last), *args[1:]))
    return net


# --------------------------------------------------------------------------------------------- the step


class Step:
    """One training step, step(x, y) -> None; see make_step."""

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
              warmup: int = 3, compile_options: dict | None = None) -> Step:
    """A training step step(x, y) -> None: zero_grad, forward + loss_fn(logits, y) (a scalar; under bf16 autocast),
    plus penalty() when given (an already-scaled regularization term, or None while it is off), backward, update.

    `zero_grad` and `update` default to the optimizer's (pass train.lean_update's pair to keep the loop's lean
    SGD); `backward(x, y)` writes the gradients by hand instead of forward + autograd (the packed MLP), used in
    eager fp32/tf32 only. `compile` is one of COMPILE_MODES (module docstring); graphs needs CUDA, no penalty and
    a constant learning rate, and captures after `warmup` eager steps; `compile_options` go to torch.compile (e.g.
    {"backend": "aot_eager"} to check the graph capture without code generation). Build the step after the net is on its
    device, in its memory format, and after a checkpoint's optimizer state is loaded."""
    return Step(net, loss_fn, optimizer, compile=compile, precision=precision, penalty=penalty, backward=backward,
                zero_grad=zero_grad, update=update, warmup=warmup, compile_options=compile_options)
