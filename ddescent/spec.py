"""What a run is: its resolved config, the identity that names its result file, and the frozen spec that the
planner builds once and the runner, the loop and the store read.

Identity is an allow-list: the fields below are the ones that can change a run's numbers, and only they go into
its run_id. Everything else (paths, progress, plotting, analysis thresholds, the device, checkpoint cadence,
tracking) can change without retraining anything.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

# Whole groups (data, model, optim, regularizer) count, but for the paths below; `data_fingerprint` is the content
# of a dataset read from files (the path says where the data are, the fingerprint says what they are).
IDENTITY = (
    "width", "epochs", "n_train", "label_noise", "reg_strength", "seed", "data_seed", "val_fraction",
    "data", "model", "optim", "regularizer",
    "train.epochs", "train.batch_size", "train.eval_points", "train.seed", "train.steps", "train.label_smoothing",
    "train.length_buckets", "train.patience", "train.precision",
    "data_fingerprint",
)
NOT_IDENTITY = ("data.root", "data.cache_dir")
# A knob added later is left out of the hash while it has the value that reproduces the old behaviour (as a null
# is), so the run ids of stored results stay valid.
NEUTRAL = {"train.precision": "fp32"}
# Runs stored before identity became an allow-list hashed the analysis threshold at its default; it is hashed at
# that constant, so their ids stay valid while changing the threshold retrains nothing.
LEGACY = {"train.threshold_eps": 0.01}


def _mirrors() -> dict[str, str]:
    """Group keys that follow a sweep axis ({"model.width": "width", ...}): the keys conf/config.yaml sets to
    `${axis}`, read from that file so that there is one source of truth (config.validate refuses a group key set
    to anything else)."""
    import importlib.resources

    from omegaconf import OmegaConf

    with importlib.resources.files("ddescent.conf").joinpath("config.yaml").open() as f:
        root = OmegaConf.to_container(OmegaConf.load(f), resolve=False)
    return {f"{group}.{key}": value[2:-1] for group, node in root.items() if isinstance(node, dict)
            for key, value in node.items()
            if isinstance(value, str) and value.startswith("${") and value.endswith("}") and "." not in value}


MIRRORS = _mirrors()


def lookup(tree: dict, key: str, default=None):
    """tree["a"]["b"] for key "a.b"; `default` when a part is missing."""
    node = tree
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def put(tree: dict, key: str, value) -> None:
    """tree["a"]["b"] = value for key "a.b" (missing parents are made)."""
    *parents, last = key.split(".")
    for part in parents:
        tree = tree.setdefault(part, {})
    tree[last] = value


def drop(tree: dict, key: str) -> None:
    """Remove tree["a"]["b"] for key "a.b", if it is there."""
    *parents, last = key.split(".")
    for part in parents:
        tree = tree.get(part)
        if not isinstance(tree, dict):
            return
    tree.pop(last, None)


def _without_nulls(node):
    if isinstance(node, dict):
        return {k: _without_nulls(v) for k, v in node.items() if v is not None}
    return node


def identity(config: dict, fingerprint: str | None = None) -> dict:
    """The part of a run's config that can change its numbers (see IDENTITY). A key set to null counts as absent,
    so a new optional key (null by default) leaves the run ids of existing results unchanged."""
    ident: dict = {}
    for key in IDENTITY:
        value = fingerprint if key == "data_fingerprint" else lookup(config, key)
        if value is not None and NEUTRAL.get(key, object()) != value:
            put(ident, key, json.loads(json.dumps(value)))
    for key in NOT_IDENTITY:
        drop(ident, key)
    for key, value in LEGACY.items():
        put(ident, key, value)
    return _without_nulls(ident)


def run_id(config: dict, fingerprint: str | None = None) -> str:
    """Short, stable hash of the result-affecting config: the same job always maps to the same file."""
    blob = json.dumps(identity(config, fingerprint), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


# Axes that are columns of the records table under their own name (results contract).
RECORDED_AXES = ("width", "n_train", "label_noise", "reg_strength", "seed", "data_seed")


def flat(config, prefix: str = "") -> dict:
    """A run's whole config (a dict or its JSON text) as dotted keys: {"optim.lr": 0.01, "model.depth": 2, ...};
    null stays null and a list stays one value."""
    node = json.loads(config) if isinstance(config, str) else config
    out = {}
    for key, value in node.items():
        if isinstance(value, dict) and value:
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def hyperparameters(config: dict) -> dict:
    """The identity as flat columns ("optim.lr": 0.01, "model.depth": 2, "epochs": 500, ...) for the records
    table, so that pandas can group runs without parsing JSON. Axes that have columns of their own and the group
    keys that mirror them are left out; lists become JSON text (a cell holds one scalar)."""
    flat: dict = {}

    def walk(node, prefix):
        for k, v in node.items():
            key = f"{prefix}{k}"
            if isinstance(v, dict):
                walk(v, f"{key}.")
            elif key not in MIRRORS and key not in RECORDED_AXES:
                flat[key] = json.dumps(v) if isinstance(v, list) else v

    ident = identity(config)
    for key in LEGACY:
        drop(ident, key)
    walk(ident, "")
    return flat


@dataclass(frozen=True)
class RunSpec:
    """One run, decided at plan time: the resolved config (a plain dict, JSON-able, recorded as is), its run_id and
    the fingerprint of its data. Treat it as read-only; `cfg` is the same config as a read-only OmegaConf node for
    the modules that read attributes (cfg.model.width)."""

    config: dict
    run_id: str
    fingerprint: str | None = None

    @classmethod
    def of(cls, config: dict, fingerprint: str | None = None) -> RunSpec:
        return cls(config, run_id(config, fingerprint), fingerprint)

    @functools.cached_property
    def cfg(self) -> DictConfig:
        node = OmegaConf.create(self.config)
        OmegaConf.set_readonly(node, True)
        return node

    @property
    def name(self) -> str:
        return self.config["name"]

    @property
    def folder(self) -> Path:
        """<results>/<experiment>: the experiment's folder."""
        return Path(self.config["results"]) / self.name

    @property
    def label(self) -> str:
        c = self.config
        return (f"{c['model']['name']} width={c['width']:g} n_train={c['n_train']} noise={c['label_noise']:g} "
                f"λ={c['reg_strength']:g} seed={c['seed']} epochs={c['epochs']}")
