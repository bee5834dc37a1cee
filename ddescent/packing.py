"""Packing: runs that differ only in width and seed train as one batched computation (a "pack"), every member
zero-padded to the widest, each with its own batch order, loss and records.

Small models are bound by per-step overhead (Python, op dispatch, kernel launches), which a pack pays once for
all its members; padding costs arithmetic. The planner groups runs by `key`, sorts each group by width and cuts
it into consecutive packs of least estimated time, by dynamic programming over a step-time model whose constants
are measured per device kind (pack_costs.json, from scripts/measure_pack_costs.py, with the machine they came
from; set DDESCENT_PACK_COSTS to a file measured on yours).

Which runs can pack: those of a family with a `pack` (see ddescent.models.base.Family) under a regularizer that
is `packable`, and only runs whose configs differ in nothing but width and seed: `key` (what must be equal) and
`shared` (the config the members share, checked) are that contract, in this one place. A checkpoint of runs
packed together keeps them together on a rerun, so that an interrupted pack resumes exactly.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from torch import nn

from ddescent import models, regularizers
from ddescent.machine import usable_cores
from ddescent.models.base import Single
from ddescent.spec import RunSpec, drop

PACK_MAX = 64
COSTS_FILE = Path(__file__).with_name("pack_costs.json")


def _costs() -> dict:
    return json.loads(Path(os.environ.get("DDESCENT_PACK_COSTS") or COSTS_FILE).read_text())


COSTS = _costs()


def packable(spec: RunSpec, accelerator: bool = False) -> bool:
    config = spec.config
    family = models.family(config["model"]["name"])
    return (family.pack is not None and (family.pack_on_cpu or accelerator)
            and regularizers.regularizer(config["regularizer"]["name"]).packable)


# What may differ between the members of a pack: each member's model is built from its own width, and its init,
# batch order and augmentation come from its own seed. Everything else is read once, from `shared`.
MEMBER_KEYS = ("width", "seed", "model.width", "train.seed")


def key(spec: RunSpec) -> str:
    """Runs with equal keys can share a pack: same data, family and recipe; only MEMBER_KEYS differ."""
    common = json.loads(json.dumps(spec.config))
    for dotted in MEMBER_KEYS:
        drop(common, dotted)
    return json.dumps(common, sort_keys=True)


def shared(specs: list[RunSpec]):
    """The config the members of a pack share (the first's, as a read-only node), after checking that they differ
    in MEMBER_KEYS only; a pack of anything else is a bug of the planner, refused here."""
    first = key(specs[0])
    for spec in specs[1:]:
        if key(spec) != first:
            raise ValueError(f"runs {specs[0].run_id} and {spec.run_id} differ in more than width and seed: they "
                             "cannot train in one pack")
    return specs[0].cfg


def batched(family: models.Family, members: list[nn.Module]) -> nn.Module:
    """The members as one batched net: the family's pack, or a single model behind the same interface (a family
    whose pack pays only on a GPU trains a lone run as the plain model)."""
    if family.pack is not None and (len(members) > 1 or family.pack_on_cpu):
        return family.pack(members)
    if len(members) != 1:
        raise ValueError(f"model={family.name} cannot train {len(members)} runs together")
    return Single(members[0])


# ----------------------------------------------------------------------------- the plan


def group(jobs: list, workers: int, together: list[list[str]] = ()) -> list[list]:
    """Cut pending jobs into packs. Runs named together in `together` (the runs of a checkpoint) stay one pack
    when all of them are pending; the rest are grouped by key, and each width-sorted group is cut into the runs of
    least total time (pack_time) with no pack above a size limit; a few limits are tried so that the packs also
    spread over `workers` processes, and the cut whose estimated finish is soonest wins."""
    by_id = {j.spec.run_id: j for j in jobs}
    fixed = [[by_id[r] for r in runs] for runs in together if runs and all(r in by_id for r in runs)]
    taken = {j.spec.run_id for pack in fixed for j in pack}
    groups: dict[str, list] = {}
    alone: list[list] = []
    for job in jobs:
        if job.spec.run_id in taken:
            continue
        if job.packable:
            groups.setdefault(key(job.spec), []).append(job)
        else:
            alone.append([job])
    for members in groups.values():
        members.sort(key=lambda j: j.spec.config["width"])
    total = sum(pack_time([j]) for j in jobs)
    limits = [math.inf] if workers == 1 else [total / (k * workers) for k in range(1, 9)]
    cuts = [fixed + alone + [p for members in groups.values() for p in _cut(members, limit)] for limit in limits]
    return min(cuts, key=lambda c: finish_time(c, workers))


def _cut(members: list, limit: float) -> list[list]:
    """The width-sorted members cut into consecutive packs of least total pack_time, each at most PACK_MAX
    members and `limit` (a single member may exceed it): dynamic programming over the cut points."""
    n = len(members)
    best, cut = [0.0] + [math.inf] * n, [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(max(0, j - PACK_MAX), j):
            t = pack_time(members[i:j])
            if (t <= limit or j - i == 1) and best[i] + t < best[j]:
                best[j], cut[j] = best[i] + t, i
    out, j = [], n
    while j:
        out.append(members[cut[j]:j])
        j = cut[j]
    return out[::-1]


def finish_time(pack_list: list[list], workers: int) -> float:
    """When the last of `workers` processes would finish, taking the costliest pack first (as the local pool
    does)."""
    loads = [0.0] * workers
    for t in sorted((pack_time(p) for p in pack_list), reverse=True):
        loads[loads.index(min(loads))] += t
    return max(loads)


def pack_time(pack: list) -> float:
    """Estimated seconds to train a pack: its padded arithmetic at the device's rate, plus per-step overheads
    (one per step, and one per member per step)."""
    c = COSTS["accelerator" if pack[0].accelerator else "cpu"]
    steps = pack[0].steps
    per_member = max(j.flops for j in pack) / c["flops_per_s"] + steps * c["member_overhead_s"]
    return len(pack) * per_member + steps * c["step_overhead_s"]


def processes(jobs: list, workers: int | None = None) -> int:
    """How many local processes train these jobs: one where they train on a GPU (it owns the device), else
    `workers`, by default one per usable core."""
    return 1 if any(j.accelerator for j in jobs) else workers or usable_cores()
