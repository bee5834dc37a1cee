"""The teachers behind a set of runs on the teacher-student data: each theory is an expectation for one teacher,
and a curve's runs (its data seeds) average over theirs."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ddescent.data import teacher_student


def teachers(configs) -> list[tuple[dict, np.ndarray]]:
    """(config, teacher) for each distinct teacher among the configs (one per data seed or teacher seed)."""
    configs = [configs] if isinstance(configs, Mapping) else list(configs)
    seen = {}
    for c in configs:
        if c["data"]["name"] != "teacher_student":
            raise ValueError(f"theory: data={c['data']['name']}: only the teacher-student has a theory here")
        d = c["data"]
        key = (d["dim"], d["data_seed"] if d.get("teacher_seed") is None else ("t", d["teacher_seed"]),
               d.get("teacher"), d.get("alpha"))
        seen.setdefault(key, (c, teacher_student.teacher(d)))
    return list(seen.values())


def same(pairs, key: str):
    """The one value of a top-level key (n_train, width, reg_strength) across the configs, or ValueError."""
    values = {c[key] for c, _ in pairs}
    if len(values) != 1:
        raise ValueError(f"theory: the configs differ in {key} ({sorted(values)}); pass one curve's runs")
    return values.pop()


def isotropic(config) -> bool:
    """x = z ~ N(0, I): every scale of F is 1 (the setting of the random-features and ridge theories)."""
    return bool(np.all(teacher_student.scales(config["data"]) == 1.0))
