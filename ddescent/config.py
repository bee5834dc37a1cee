"""Composing, expanding and validating configs; the identity (run_id) of a run.

Everything that can reject user input lives here, so a bad sweep fails in one place, before any work.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf

from ddescent import ConfigError

CONFIG_MODULE = "ddescent.conf"
GROUPS = ("experiment", "data", "model", "optim", "regularizer")
# Keys that never change the numbers of a run, so they stay out of its identity.
NOT_IDENTITY = ("name", "results", "progress", "plot", "figures", "train.device", "train.checkpoint_every",
                "train.keep_checkpoints", "data.cache_dir", "data.root", "hydra", "launch")


# ----------------------------------------------------------------------------- composing


def _hydra_message(exc: BaseException) -> str:
    """Hydra's errors span several lines; keep what names the key and the allowed values."""
    text = str(exc).strip()
    missing = re.search(r"Could not find '([^']+)/([^']+)'", text)
    if missing:
        group, option = missing.groups()
        options = re.findall(r"^\s+(\S+)$", text.split("Available options", 1)[-1], flags=re.M) if "Available options" in text else []
        allowed = ", ".join(options) if options else "see `ddescent config --help`"
        return f"{group}={option}: no such {group}; choose one of: {allowed}"
    not_struct = re.search(r"Key '([^']+)' is not in struct", text) or re.search(r"Could not override '([^']+)'", text)
    if not_struct:
        return f"{not_struct.group(1)}: unknown key (prefix it with + to add a new key, or check the spelling)"
    return " ".join(line.strip() for line in text.splitlines() if line.strip())[:300]


def compose(overrides: list[str], hydra: bool = False) -> DictConfig:
    """The config of one run for these overrides (no sweeps), as Hydra composes it."""
    from hydra import compose as hydra_compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    try:
        if not GlobalHydra.instance().is_initialized():
            # Initialised once per process and kept: composing a thousand-job sweep stays quick.
            initialize_config_module(CONFIG_MODULE, version_base="1.3")
        return hydra_compose("config", overrides=overrides, return_hydra_config=hydra)
    except Exception as exc:  # Hydra raises several unrelated exception types for bad input
        raise ConfigError(_hydra_message(exc)) from exc


def compose_all(lines: list[list[str]]) -> list[DictConfig]:
    """[compose(line) for line in lines], quickly. Hydra rebuilds the defaults tree on every call (~75 ms), so each
    distinct set of group choices is composed once, and a line's plain `key=value` overrides are applied to a
    copy the way Hydra applies command-line overrides after composing (OmegaConf.update with merge). Lines
    with anything else, or whose overrides do not apply, go through compose (and its error messages)."""
    import copy

    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    bases: dict[tuple[str, ...], DictConfig] = {}
    out = []
    for line in lines:
        try:
            parsed = parser.parse_overrides(line)
        except Exception:
            out.append(compose(line))
            continue
        plain = [o for o in parsed if _plain(o)]
        structure = tuple(o.input_line for o in parsed if not _plain(o))
        if structure not in bases:
            bases[structure] = compose(list(structure))
        cfg = copy.deepcopy(bases[structure])
        try:
            for o in plain:
                OmegaConf.update(cfg, o.key_or_group, o.value(), merge=True)
        except Exception:
            cfg = compose(line)
        out.append(cfg)
    return out


def _plain(override) -> bool:
    """A `key=value` assignment to an existing key (not a group choice, addition, deletion or sweep)."""
    key = override.key_or_group
    return (override.package is None and not override.is_add() and not override.is_force_add()
            and not override.is_delete() and not override.is_sweep_override() and key not in GROUPS
            and "/" not in key and not key.startswith("hydra"))


def split_overrides(overrides: list[str]) -> tuple[list[str], list[str]]:
    """(job overrides, hydra.* overrides): the latter configure launchers, never a run."""
    job = [o for o in overrides if not o.lstrip("+~").startswith("hydra.") and not o.startswith("hydra/")]
    return job, [o for o in overrides if o not in job]


def expand(overrides: list[str]) -> list[list[str]]:
    """Every job of a sweep as its list of overrides: the preset's `hydra.sweeper.params`, replaced key by key
    by the command line, expanded as Hydra's basic sweeper does."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    job_overrides, hydra_overrides = split_overrides(overrides)
    parser = OverridesParser.create()
    try:
        parsed = parser.parse_overrides(job_overrides)
    except Exception as exc:
        raise ConfigError(_hydra_message(exc)) from exc
    # Group choices may be swept too (model=mlp,cnn1d): each choice can bring its own preset axes.
    group_sweeps = [o for o in parsed if o.is_sweep_override() and o.key_or_group in GROUPS]
    fixed = [o.input_line for o in parsed if o not in group_sweeps]
    single = [o.input_line for o in parsed if not o.is_sweep_override()]
    jobs: list[list[str]] = []
    for choice in BasicSweeper.split_arguments(group_sweeps, None)[0] if group_sweeps else [[]]:
        base = compose(single + choice + hydra_overrides, hydra=True)
        params = OmegaConf.select(base, "hydra.sweeper.params") or {}
        lines = [f"{k}={v}" for k, v in params.items()] + fixed + choice  # later lines replace earlier keys
        try:
            jobs.extend(BasicSweeper.split_arguments(parser.parse_overrides(lines), None)[0])
        except Exception as exc:
            raise ConfigError(_hydra_message(exc)) from exc
    return jobs


# ----------------------------------------------------------------------------- validating


@dataclass(frozen=True)
class Rule:
    check: Callable[[Any], bool]
    allowed: str


def _int(pred: Callable[[int], bool]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and pred(v)


def _num(pred: Callable[[float], bool]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and pred(float(v))


POSITIVE_INT = Rule(_int(lambda v: v > 0), "a positive integer")
NONNEG_INT = Rule(_int(lambda v: v >= 0), "an integer >= 0")
NONNEG = Rule(_num(lambda v: v >= 0), "a number >= 0")
POSITIVE = Rule(_num(lambda v: v > 0), "a number > 0")
RATE = Rule(_num(lambda v: 0 <= v < 1), "a number in [0, 1)")
OPTIONAL_POSITIVE_INT = Rule(lambda v: v is None or POSITIVE_INT.check(v), "a positive integer or null (all)")

# One table for every key a user may set; families and datasets add their own in RULES_BY_GROUP.
RULES: dict[str, Rule] = {
    "width": Rule(_num(lambda v: v > 0), "a number > 0 (the family's size knob)"),
    "epochs": POSITIVE_INT,
    "n_train": OPTIONAL_POSITIVE_INT,
    "label_noise": RATE,
    "reg_strength": NONNEG,
    "seed": NONNEG_INT,
    "data_seed": NONNEG_INT,
    "val_fraction": RATE,
    "train.patience": NONNEG_INT,
    "train.steps": OPTIONAL_POSITIVE_INT,
    "train.label_smoothing": RATE,
    "train.length_buckets": NONNEG_INT,
    "optim.schedule": Rule(lambda v: v in ("constant", "inverse_sqrt"), "constant or inverse_sqrt"),
    "optim.warmup_steps": NONNEG_INT,
    "train.batch_size": POSITIVE_INT,
    "train.eval_points": POSITIVE_INT,
    "train.threshold_eps": RATE,
    "train.checkpoint_every": NONNEG_INT,
    "train.device": Rule(lambda v: isinstance(v, str) and re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", v) is not None,
                         "auto, cpu, mps, cuda or cuda:N"),
    "progress": Rule(lambda v: v in ("auto", "on", "off", True, False), "auto, on or off"),
    "optim.lr": POSITIVE,
    "optim.weight_decay": NONNEG,
    "optim.momentum": Rule(_num(lambda v: 0 <= v < 1), "a number in [0, 1)"),
    "data.noise_mode": Rule(lambda v: v in ("uniform", "wrong"), "uniform or wrong"),
    "regularizer.strength": NONNEG,
}
RULES_BY_GROUP: dict[str, dict[str, Rule]] = {
    "data/mnist1d": {
        "data.num_samples": POSITIVE_INT,
        "data.train_split": Rule(_num(lambda v: 0 < v < 1), "a number in (0, 1)"),
        "data.final_seq_length": POSITIVE_INT,
    },
    "model/mlp": {"model.width": POSITIVE_INT, "model.depth": POSITIVE_INT},
    "model/transformer": {
        "model.width": POSITIVE_INT,
        "model.heads": POSITIVE_INT,
        "model.layers": POSITIVE_INT,
        "model.ff_mult": POSITIVE_INT,
        "model.positions": Rule(lambda v: v in ("learned", "sinusoidal"), "learned or sinusoidal"),
        "model.dropout": RATE,
        "model.pad_id": NONNEG_INT,
    },
    "data/seq_synthetic": {
        **{f"data.{k}": POSITIVE_INT for k in ("determiners", "adjectives", "nouns", "verbs", "adverbs",
                                               "pool_size", "test_size")},
        "data.max_adjectives": NONNEG_INT,
        "data.noise": RATE,
        "data.generator_seed": NONNEG_INT,
        "data.val_fraction": RATE,
    },
    "data/parallel_text": {
        "data.src": Rule(lambda v: isinstance(v, str) and v != "", "a file suffix such as de"),
        "data.tgt": Rule(lambda v: isinstance(v, str) and v != "", "a file suffix such as en"),
        "data.vocab_size": POSITIVE_INT,
        "data.max_len": POSITIVE_INT,
        "data.val_fraction": RATE,
    },
    **{f"data/{image_dataset}": {
        "data.root": Rule(lambda v: isinstance(v, str) and v.strip() != "", "a path to the folder holding the files"),
        "data.normalize": Rule(lambda v: isinstance(v, bool), "true or false"),
        "data.augment": Rule(lambda v: isinstance(v, bool), "true or false (random crop + horizontal flip)"),
        "data.mean": Rule(lambda v: OmegaConf.is_list(v) and all(_num(lambda x: True)(x) for x in v),
                          "a list of numbers, one per channel"),
        "data.std": Rule(lambda v: OmegaConf.is_list(v) and all(_num(lambda x: x > 0)(x) for x in v),
                         "a list of numbers > 0, one per channel"),
    } for image_dataset in ("mnist", "fashion_mnist", "cifar10")},
    **{f"model/{conv_family}": {"model.width": POSITIVE_INT} for conv_family in ("cnn1d", "cnn5", "resnet18")},
    **{f"regularizer/{name}": {"regularizer.start_epoch": NONNEG_INT, "regularizer.ramp_epochs": NONNEG_INT}
       for name in ("l2", "sws")},
    "regularizer/sws": {
        "regularizer.n_components": POSITIVE_INT,
        "regularizer.pi_zero": Rule(lambda v: v is None or _num(lambda x: 0 < x < 1)(v), "null or a number in (0, 1)"),
        "regularizer.init_sigma": POSITIVE,
        "regularizer.init_means": Rule(lambda v: v in ("weights", "range"), "weights or range"),
        "regularizer.start_epoch": NONNEG_INT,
        "regularizer.ramp_epochs": NONNEG_INT,
        "regularizer.codebook_epochs": Rule(lambda v: v is None or NONNEG_INT.check(v), "null or a whole number >= 0"),
        "regularizer.codebook_lr": Rule(lambda v: v is None or _num(lambda x: x > 0)(v), "null or a number > 0"),
    },
    "model/random_features": {
        "model.width": POSITIVE_INT,
        "model.features": Rule(lambda v: v in ("relu", "fourier"), "relu or fourier"),
        "model.solver": Rule(lambda v: v in ("lstsq", "ridge", "gd"), "lstsq, ridge or gd"),
    },
}


def _choice(cfg: DictConfig, group: str) -> str | None:
    node = OmegaConf.select(cfg, f"{group}.name")
    return f"{group}/{node}" if node is not None else None


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError (one line: key, value, what is allowed) for the first invalid value."""
    from ddescent import data, models, regularizers

    try:
        resolved = OmegaConf.to_container(cfg, resolve=True)
    except Exception as exc:
        raise ConfigError(_hydra_message(exc)) from exc
    plain = OmegaConf.create({k: v for k, v in resolved.items() if k != "hydra"})
    rules = dict(RULES)
    for group in ("data", "model", "regularizer"):
        rules.update(RULES_BY_GROUP.get(_choice(plain, group) or "", {}))
    # Modules that own their keys declare them (RULES = {"model.kappa": Rule(...)}).
    for owner in (data.DATASETS.get(plain.data.name), models.FAMILIES.get(plain.model.name)):
        rules.update(getattr(owner, "RULES", {}))
    for key, rule in rules.items():
        value = OmegaConf.select(plain, key, default="<absent>")
        if value == "<absent>":
            continue
        if not rule.check(value):
            raise ConfigError(f"{key}={value!r}: expected {rule.allowed}")
    if plain.get("name") in (None, "???"):
        raise ConfigError("name: the experiment has no name; set name=... or choose experiment=...")
    if plain.model.name not in models.FAMILIES:
        raise ConfigError(f"model={plain.model.name}: unknown family; choose one of: {', '.join(models.FAMILIES)}")
    if plain.regularizer.name not in regularizers.REGULARIZERS:
        raise ConfigError(f"regularizer={plain.regularizer.name}: choose one of: {', '.join(regularizers.REGULARIZERS)}")
    if plain.optim.name not in ("sgd", "adam"):
        raise ConfigError(f"optim={plain.optim.name}: choose one of: sgd, adam")
    data.check(plain.data)  # dataset roots, n_train against the pool size
    models.check(plain.model)
    mod = data.module(plain.data)  # a family may refuse a shape it cannot take (a linear model wider than its input)
    models.family(plain.model).n_params(plain.model, mod.input_shape(plain.data), data.n_classes(plain.data))


# ----------------------------------------------------------------------------- identity


def run_config(cfg: DictConfig) -> dict:
    """The resolved config of a run, without Hydra's own node."""
    container = OmegaConf.to_container(cfg, resolve=True)
    container.pop("hydra", None)
    return container


def identity(config: dict) -> dict:
    """The part of a run's config that can change its numbers. A key set to null counts as absent, so a new
    optional key (null by default) leaves the run ids of existing results, and their skipping, unchanged."""
    ident = json.loads(json.dumps(config))
    for key in NOT_IDENTITY:
        node, *rest = key.split(".")
        if not rest:
            ident.pop(node, None)
        elif isinstance(ident.get(node), dict):
            ident[node].pop(rest[0], None)
    return _without_nulls(ident)


def _without_nulls(node):
    if isinstance(node, dict):
        return {k: _without_nulls(v) for k, v in node.items() if v is not None}
    return node


def run_id(config: dict) -> str:
    """Short, stable hash of the result-affecting config: the same job always maps to the same file."""
    blob = json.dumps(identity(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]
