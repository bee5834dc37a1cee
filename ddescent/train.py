"""The training loop, read top to bottom.

One call trains G models in lockstep (G = 1 for a single run; more when a sweep packs several seeds or widths
into one batched computation). The net maps x [G, B, ...] -> logits [G, B, ..., classes]; every member has its
own batch order, its own loss and its own evaluation records. Data stays on the device and batches are drawn
by slicing the epoch's samples gathered in batch order: no DataLoader, and one host-device sync per epoch (the
divergence check).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.sgd import sgd

from ddescent.data import Data

IGNORE_INDEX = -100  # targets with this value (padding in sequence tasks) count in neither loss nor error
ORDER_STREAM = 1  # the seed's stream for batch order; stream 0 initialises the model
AUGMENT_STREAM = 2
CODEBOOK_STREAM = 3  # batch order of the codebook fine-tuning after quantization


def derive_seed(seed: int, stream: int) -> int:
    """Independent, reproducible seeds for the separate random choices of one run."""
    return int(np.random.SeedSequence([seed, stream]).generate_state(1)[0])


def eval_epochs(epochs: int, n_points: int) -> list[int]:
    """Log-spaced evaluation epochs, plus epoch 0 (initialisation) and the last epoch."""
    grid = np.round(np.geomspace(1, epochs, max(n_points, 1))).astype(int)
    return sorted({0, epochs, *grid.tolist()})


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(name)


def make_schedule(optimizer: torch.optim.Optimizer, cfg) -> torch.optim.lr_scheduler.LambdaLR | None:
    """Learning-rate schedule per step: `constant` (optionally after a linear warm-up) or `inverse_sqrt`
    (linear warm-up to the base rate over warmup_steps, then decay as 1/sqrt(step), as in fairseq)."""
    kind, warmup = cfg.get("schedule", "constant"), int(cfg.get("warmup_steps", 0))
    if kind == "constant" and warmup == 0:
        return None
    if kind == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup))
    if kind == "inverse_sqrt":
        w = max(warmup, 1)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min((s + 1) / w, math.sqrt(w / (s + 1))))
    raise ValueError(f"optim.schedule {kind!r}: expected constant or inverse_sqrt")


def make_optimizer(params, cfg) -> torch.optim.Optimizer:
    """SGD or Adam; the fused implementations update each parameter tensor in one kernel (measured ~5% faster
    per step than foreach for the small packed MLPs on a CPU)."""
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.get("nesterov", False),
                               weight_decay=cfg.weight_decay, fused=True)
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps,
                                weight_decay=cfg.weight_decay, fused=True)
    raise ValueError(f"optimizer {cfg.name!r}")


def lean_update(optimizer: torch.optim.Optimizer) -> tuple[Callable[[], None], Callable[[], None]]:
    """(zero_grad, step) for the training loop. For SGD these skip torch.optim's per-call wrappers (profiler
    ranges, hooks, grad-mode guards: ~0.1 ms a step on a CPU, as much as a small model's whole update) and call
    the same functional update torch's SGD.step calls, on the optimizer's own state, so the numbers, the
    state_dict and checkpoints are unchanged. Other optimizers use their own methods."""
    if type(optimizer) is not torch.optim.SGD or any(g.get("differentiable") for g in optimizer.param_groups):
        return (lambda: optimizer.zero_grad(set_to_none=True)), optimizer.step
    params = [p for g in optimizer.param_groups for p in g["params"]]

    def zero_grad() -> None:
        for p in params:
            p.grad = None

    @torch.no_grad()
    def step() -> None:
        for g in optimizer.param_groups:
            ps = [p for p in g["params"] if p.grad is not None]
            bufs = [optimizer.state[p].get("momentum_buffer") for p in ps] if g["momentum"] else []
            sgd(ps, [p.grad for p in ps], bufs, foreach=g["foreach"], fused=g["fused"],
                weight_decay=g["weight_decay"], momentum=g["momentum"], lr=g["lr"], dampening=g["dampening"],
                nesterov=g["nesterov"], maximize=g["maximize"])
            for p, buf in zip(ps, bufs):
                optimizer.state[p]["momentum_buffer"] = buf

    return zero_grad, step


def per_model_loss(logits: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy of each member, [G]; targets equal to IGNORE_INDEX are left out."""
    G, C = logits.shape[0], logits.shape[-1]
    losses = F.cross_entropy(logits.reshape(-1, C), y.reshape(-1), reduction="none", ignore_index=IGNORE_INDEX,
                             label_smoothing=label_smoothing)
    if y.dim() == 2:  # one label per sample: nothing to ignore
        return losses.view(G, -1).mean(1)
    valid = (y.reshape(G, -1) != IGNORE_INDEX).sum(1).clamp_min(1)
    return losses.view(G, -1).sum(1) / valid


EVAL_LOGITS = 1 << 25  # logits held at once while evaluating (128 MB of float32)


def sequence_lengths(y: torch.Tensor) -> torch.Tensor | None:
    """Length of each sample up to its last target token (targets are [n, T] with IGNORE_INDEX padding);
    None for one label per sample."""
    if y.dim() < 2:
        return None
    positions = torch.arange(1, y.shape[1] + 1, device=y.device)
    return ((y != IGNORE_INDEX) * positions).amax(1)


def bucketed_batches(perm: torch.Tensor, lengths: torch.Tensor, batch_size: int, per_bucket: int,
                     generator: torch.Generator) -> list[torch.Tensor]:
    """Length bucketing: within each run of `per_bucket` batches of the shuffled order, sort samples by length,
    cut into batches, then shuffle the batches. Batches hold similar lengths, so little padding is computed
    (the model cuts each batch to its longest sample). One batch order serves every member of a pack."""
    block = torch.arange(perm.shape[1], device=perm.device) // (per_bucket * batch_size)
    key = block * (int(lengths.max()) + 1) + lengths[perm]
    ordered = perm.gather(1, torch.argsort(key, dim=1, stable=True))
    batches = list(ordered.split(batch_size, dim=1))
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


GATHER_BYTES = 1 << 25  # training inputs gathered at once into batch order (32 MB)


def gathered_batches(x: torch.Tensor, y: torch.Tensor, perm: torch.Tensor, batch_size: int):
    """(x, y) batches [G, B, ...] of every member in the order `perm` [G, n]. Samples are gathered a block of
    batches at a time and each batch is a slice of its block: one indexing operation per block instead of two
    per step (a step of a small model costs only a few dozen operations)."""
    G, n = perm.shape
    per_batch = G * batch_size * x[:1].numel() * x.element_size()
    block = batch_size * max(1, GATHER_BYTES // per_batch)
    for start in range(0, n, block):
        idx = perm[:, start:start + block]
        xb, yb = x[idx], y[idx]
        for i in range(0, idx.shape[1], batch_size):
            yield xb[:, i:i + batch_size], yb[:, i:i + batch_size]


def members_finite(net: nn.Module, G: int) -> list[bool]:
    """Per member: are all its parameters still finite? (A non-finite loss makes them NaN through the gradient.)
    A packed net holds member g's parameters at index g of their first dimension (G = 1: all of them)."""
    with torch.no_grad():
        return torch.stack([p.reshape(G, -1).isfinite().all(1) for p in net.parameters()]).all(0).tolist()


@torch.no_grad()
def evaluate(net: nn.Module, x: torch.Tensor, y: torch.Tensor, G: int):
    """(error rate [G], mean loss [G]) of every member on one dataset, in as few batches as fit: a chunk holds
    at most EVAL_LOGITS logits (a sequence model's [tokens x vocabulary] per sample is large)."""
    was_training = net.training
    net.eval()
    per_sample = net(x[:1].expand(G, *x[:1].shape)).numel() // G
    chunk = max(1, min(8192, EVAL_LOGITS // max(1, G * per_sample)))
    wrong = torch.zeros(G, device=x.device)
    loss = torch.zeros(G, device=x.device)
    count = torch.zeros(G, device=x.device)
    for i in range(0, len(x), chunk):
        xb = x[i:i + chunk].expand(G, *x[i:i + chunk].shape)
        yb = y[i:i + chunk].expand(G, *y[i:i + chunk].shape)
        logits = net(xb).float()
        C = logits.shape[-1]
        valid = (yb != IGNORE_INDEX).reshape(G, -1)
        loss += F.cross_entropy(logits.reshape(-1, C), yb.reshape(-1), reduction="none",
                                ignore_index=IGNORE_INDEX).view(G, -1).sum(1)
        wrong += ((logits.argmax(-1) != yb).reshape(G, -1) & valid).sum(1)
        count += valid.sum(1)
    net.train(was_training)
    count = count.clamp_min(1)
    return wrong / count, loss / count


@dataclass
class History:
    """What one member's run recorded: a row per evaluation point, and how it ended."""

    rows: list[dict] = field(default_factory=list)
    status: str = "complete"
    summary: dict = field(default_factory=dict)  # per-run values, e.g. the early-stopping choice


def train(
    net: nn.Module,
    data: Data,
    *,
    seeds: list[int],
    epochs: int,
    batch_size: int,
    eval_points: int,
    optimizer: torch.optim.Optimizer,
    penalty: Callable[[int], torch.Tensor | None] | None = None,
    extras: Callable[[], list[dict]] | None = None,
    progress=None,
    checkpoint_every: int = 0,
    save: Callable[[dict], None] | None = None,
    resume: dict | None = None,
    patience: int = 0,
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    state_modules: dict[str, nn.Module] | None = None,
    schedule: torch.optim.lr_scheduler.LRScheduler | None = None,
    label_smoothing: float = 0.0,
    length_buckets: int = 0,
) -> list[History]:
    """Train the G = len(seeds) members of `net` for `epochs` epochs and return each member's History.

    For sequence targets and `length_buckets` > 0, batches are bucketed by length (see bucketed_batches).

    `schedule` steps the learning rate after every optimizer step; `label_smoothing` enters the training
    objective only (the recorded losses are plain cross-entropy).

    `augment(x, generator)`, when given, transforms each member's training batch with the member's own
    generator (so a run's numbers do not depend on what it was packed with); evaluation never augments.

    `penalty(epoch)` returns the regularization term already scaled, or None while it is off (summed over
    members; each member's parameters receive only their own part of it). `state_modules` (a learned prior)
    are checkpointed with the net. `extras()` adds columns per member at each evaluation.
    A member whose parameters become NaN/inf (a NaN/inf loss makes them so through its gradient) is recorded as
    diverged at the end of that epoch and stops being recorded; training ends early once every member has
    diverged.

    With a validation split and `patience` > 0, the validation loss is measured every epoch; each member's
    best epoch by validation loss (and the test error there, reported, never used to choose) goes into its
    summary, and training stops once no member has improved for `patience` epochs.

    Every `checkpoint_every` epochs the whole state (weights, optimizer, batch-order generators, records) goes
    to `save(state)`; passing that state back as `resume` continues with exactly the numbers an uninterrupted
    run would have produced.
    """
    G, n = len(seeds), len(data.y_train)
    device = data.x_train.device
    orders = [torch.Generator().manual_seed(derive_seed(s, ORDER_STREAM)) for s in seeds]
    augmenters = [torch.Generator(device).manual_seed(derive_seed(s, AUGMENT_STREAM)) for s in seeds]
    evals = set(eval_epochs(epochs, eval_points))
    steps_per_epoch = math.ceil(n / batch_size)
    lengths = sequence_lengths(data.y_train) if length_buckets else None
    histories = [History() for _ in seeds]
    start = time.perf_counter()

    def record(epoch: int, members: list[int]) -> None:
        measured = [evaluate(net, data.x_train, data.y_train, G), evaluate(net, data.x_test, data.y_test, G)]
        names = ["train", "test"]
        if data.x_val is not None:
            measured.append(evaluate(net, data.x_val, data.y_val, G))
            names.append("val")
        values = {f"{name}_{kind}": t.tolist() for name, pair in zip(names, measured)
                  for kind, t in zip(("error", "loss"), pair)}
        more = extras() if extras is not None else [{} for _ in seeds]
        wall = time.perf_counter() - start
        for g in members:
            row = {"epoch": epoch, "step": epoch * steps_per_epoch, "wall_time_s": wall}
            row.update({k: v[g] for k, v in values.items()})
            row.update(more[g])
            histories[g].rows.append(row)

    early = patience > 0 and data.x_val is not None
    best = [math.inf] * G
    waited = [0] * G

    def early_stopping(epoch: int) -> bool:
        """Track each member's best epoch by validation loss; True when every member has run out of patience."""
        val_loss = evaluate(net, data.x_val, data.y_val, G)[1].tolist()
        improved = [g for g in alive if val_loss[g] < best[g]]
        if improved:
            test_error, test_loss = (t.tolist() for t in evaluate(net, data.x_test, data.y_test, G))
        for g in alive:
            if g in improved:
                best[g], waited[g] = val_loss[g], 0
                histories[g].summary = {"best_epoch": epoch, "best_val_loss": val_loss[g],
                                        "early_stopped_test_error": test_error[g],
                                        "early_stopped_test_loss": test_loss[g]}
            else:
                waited[g] += 1
        return all(waited[g] >= patience for g in alive)

    def state(epoch: int) -> dict:
        return {"epoch": epoch, "net": net.state_dict(), "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict() if schedule is not None else None,
                "modules": {k: m.state_dict() for k, m in (state_modules or {}).items()},
                "generators": [gen.get_state() for gen in orders + augmenters],
                "alive": alive, "best": best, "waited": waited,
                "histories": [{"rows": h.rows, "status": h.status, "summary": h.summary} for h in histories],
                "elapsed": time.perf_counter() - start}

    net.train()
    if resume is None:
        first_epoch, alive = 1, list(range(G))
        record(0, alive)
    else:
        net.load_state_dict(resume["net"])
        for k, m in (state_modules or {}).items():
            m.load_state_dict(resume["modules"][k])
        optimizer.load_state_dict(resume["optimizer"])
        if schedule is not None:
            schedule.load_state_dict(resume["schedule"])
        for gen, s in zip(orders + augmenters, resume["generators"]):
            gen.set_state(s)
        histories = [History(h["rows"], h["status"], h["summary"]) for h in resume["histories"]]
        first_epoch, alive = resume["epoch"] + 1, list(resume["alive"])
        best[:], waited[:] = resume["best"], resume["waited"]
        start -= resume["elapsed"]
        if progress is not None:
            progress.update(resume["epoch"])
    # A net that writes its own backward pass (the packed MLP) skips autograd for the data term.
    by_hand = getattr(net, "backward_by_hand", None) if data.y_train.dim() == 1 else None
    # (A schedule counts torch's own step calls, so with one the loop keeps them.)
    zero_grad, step = lean_update(optimizer) if schedule is None else (optimizer.zero_grad, optimizer.step)
    for epoch in range(first_epoch, epochs + 1):
        perm = torch.stack([torch.randperm(n, generator=gen) for gen in orders]).to(device, non_blocking=True)
        if lengths is None:
            batches = gathered_batches(data.x_train, data.y_train, perm, batch_size)
        else:
            batches = ((data.x_train[i], data.y_train[i])
                       for i in bucketed_batches(perm, lengths, batch_size, length_buckets, orders[0]))
        for x, y in batches:
            if augment is not None:
                x = torch.stack([augment(x[g], augmenters[g]) for g in range(G)])
            term = penalty(epoch) if penalty is not None else None
            zero_grad()
            if by_hand is not None:
                by_hand(x, y, label_smoothing)
                if term is not None:
                    term.backward()
            else:
                objective = per_model_loss(net(x), y, label_smoothing).sum()
                (objective if term is None else objective + term).backward()
            step()
            if schedule is not None:
                schedule.step()
        finite = members_finite(net, G)  # the epoch's one sync
        diverged = [g for g in alive if not finite[g]]
        for g in diverged:
            histories[g].status = "diverged"
        alive_before = alive
        alive = [g for g in alive if finite[g]]
        patience_out = early and alive and early_stopping(epoch)
        if diverged or patience_out or epoch in evals:
            record(epoch, alive_before)
        if progress is not None:
            progress.update(1)
        if not alive or patience_out:
            break
        if save is not None and checkpoint_every and epoch % checkpoint_every == 0 and epoch < epochs:
            save(state(epoch))
    return histories


def tune_codebook(net: nn.Module, weights: list[torch.Tensor], assignments: list[torch.Tensor],
                  codebook: torch.Tensor, frozen: torch.Tensor, data: Data, *, epochs: int, batch_size: int,
                  optimizer: Callable[[list[dict]], torch.optim.Optimizer], seed: int) -> None:
    """Fine-tune a quantized net on the training set, keeping it quantized (the "trained quantization" of weight
    sharing, Han et al. 2016): weight i stays codebook[assignments[i]], and codebook value j moves by the sum of
    the gradients of the weights assigned to it; entries marked `frozen` (a pinned zero) do not move. Every other
    parameter of the net (the biases) trains freely. Only the training set is used, with its own batch order."""
    weight_ids = {id(w) for w in weights}
    free = [p for p in net.parameters() if id(p) not in weight_ids]
    codebook = codebook.detach().clone().requires_grad_(True)
    opt = optimizer([{"params": [codebook]}] + ([{"params": free}] if free else []))
    order = torch.Generator().manual_seed(derive_seed(seed, CODEBOOK_STREAM))
    n, device = len(data.y_train), data.x_train.device
    for _ in range(epochs):
        perm = torch.randperm(n, generator=order).to(device)[None]
        for x, y in gathered_batches(data.x_train, data.y_train, perm, batch_size):
            for p in (codebook, *weights, *free):
                p.grad = None
            per_model_loss(net(x), y).sum().backward()
            with torch.no_grad():
                grad = torch.zeros_like(codebook)
                for w, idx in zip(weights, assignments):
                    grad.index_add_(0, idx, w.grad.reshape(-1))
                codebook.grad = grad.masked_fill_(frozen, 0.0)
            opt.step()
            with torch.no_grad():
                for w, idx in zip(weights, assignments):
                    w.copy_(codebook[idx].reshape(w.shape))
