"""Device settings of a run: the device, its numeric precision (`train.precision`) and what each device can run.
The step that uses them (compilation, CUDA graphs) is ddescent.step.

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

The memory layout (`train.channels_last`) is the model's to set: ddescent.models.base.Batched.to_channels_last.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Callable, ContextManager, Iterator

import torch

from ddescent.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """The device a `train.device` setting means on this machine (auto: CUDA, then MPS, then the CPU)."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(name)


PRECISIONS = ("fp32", "tf32", "bf16")
COMPILE_MODES = ("none", "default", "reduce-overhead", "graphs")


def check(precision: str, compile: str, device: torch.device | str, *, schedule: bool = False,
          penalty: bool = False) -> None:
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
                              "train.compile=default")


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
