"""Composing, expanding and validating configs.

Everything that can reject user input lives here or in the module that owns the keys (each family, dataset,
regularizer and the optimizer declare `RULES`), so a bad sweep fails in one place, before any work.
"""

from __future__ import annotations

import copy
import difflib
import logging
import re
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from ddescent import accel, component, data, models, optim
from ddescent.checks import (BOOL, NONNEG_INT, OPTIONAL_POSITIVE_INT, POSITIVE_INT, RATE, ConfigError, Rule,
                             number, one_of)
from ddescent.spec import MIRRORS, lookup

log = logging.getLogger("ddescent")

CONFIG_MODULE = "ddescent.conf"
GROUPS = ("experiment", "data", "model", "optim", "regularizer", "logger")

# The keys of the top level and of `train`; the groups' keys are declared by the modules that read them.
RULES: dict[str, Rule] = {
    "width": Rule(number(lambda v: v > 0), "a number > 0 (the family's size knob)"),
    "epochs": POSITIVE_INT,
    "n_train": OPTIONAL_POSITIVE_INT,
    "label_noise": RATE,
    "reg_strength": Rule(number(lambda v: v >= 0), "a finite number >= 0"),
    "seed": NONNEG_INT,
    "data_seed": NONNEG_INT,
    "val_fraction": RATE,
    "name": Rule(lambda v: isinstance(v, str) and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", v) is not None
                 and ".." not in v, "a plain name: letters, digits, '-', '_' and '.', starting with a letter or digit"),
    "train.patience": NONNEG_INT,
    "train.steps": OPTIONAL_POSITIVE_INT,
    "train.label_smoothing": RATE,
    "train.length_buckets": NONNEG_INT,
    "train.batch_size": POSITIVE_INT,
    "train.eval_points": POSITIVE_INT,
    "train.threshold_eps": RATE,
    "train.checkpoint_every": NONNEG_INT,
    "train.keep_checkpoints": BOOL,
    "train.keep_final": one_of("auto", True, False),
    "train.precision": one_of(*accel.PRECISIONS),
    "train.compile": one_of(*accel.COMPILE_MODES),
    "train.channels_last": BOOL,
    "train.device": Rule(lambda v: isinstance(v, str) and re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", v) is not None,
                         "auto, cpu, mps, cuda or cuda:N"),
    "progress": one_of("auto", "on", "off", True, False),
    "figures": Rule(lambda v: isinstance(v, list) and all(isinstance(f, str) for f in v),
                    "a list of figure names as text (quote the numbered ones: figures=['9.9','9.10'])"),
    "data.noise_mode": one_of("uniform", "wrong"),
    "regularizer.strength": Rule(number(lambda v: v >= 0), "a finite number >= 0"),
}


# ----------------------------------------------------------------------------- composing


def gpus_for(device: str) -> int:
    """The GPUs a job asks its node for (conf/hydra/launcher/slurm.yaml): none for train.device=cpu, enough for
    cuda:N, else one (auto trains on a GPU when the node has one)."""
    device = str(device)
    if device == "cpu":
        return 0
    return int(device.split(":", 1)[1]) + 1 if device.startswith("cuda:") else 1


OmegaConf.register_new_resolver("ddescent.gpus", gpus_for, replace=True)


def hydra_message(exc: BaseException) -> str:
    """Hydra's errors span several lines; keep what names the key and the allowed values."""
    text = str(exc).strip()
    missing = re.search(r"Could not find '([^']+)/([^']+)'", text)
    if missing:
        group, option = missing.groups()
        options = re.findall(r"^\s+(\S+)$", text.split("Available options", 1)[-1], flags=re.M) if "Available options" in text else []
        allowed = ", ".join(options) if options else "see `ddescent presets`"
        return f"{group}={option}: no such {group}; choose one of: {allowed}"
    # `override /model` in a file Hydra did not read as `# @package _global_`: a placement error, not a missing key
    misplaced = re.search(r"In '([^']+)': Could not override '([^'@]+)@[^']*'", text)
    if misplaced:
        where, group = misplaced.groups()
        return (f"{where}: its defaults list overrides /{group}, which only a `# @package _global_` file can do; "
                "make `# @package _global_` the file's first line")
    not_struct = re.search(r"Key '([^']+)' is not in struct", text) or re.search(r"Could not override '([^']+)'", text)
    if not_struct:
        return f"{not_struct.group(1)}: unknown key (check the spelling; `ddescent config` shows the keys)"
    return " ".join(line.strip() for line in text.splitlines() if line.strip())[:300] or type(exc).__name__


# Users' folders of presets and groups (--config-dir, hydra.searchpath), searched before the packaged configs, so a
# preset of one's own can also shadow a packaged one.
SEARCH_PATH: list[str] = []


def use_config_dirs(paths: list[str]) -> None:
    """Search these folders (or pkg:// / file:// paths) before the packaged configs from now on."""
    from hydra.core.global_hydra import GlobalHydra

    found = []
    for path in paths:
        if "://" not in path:
            folder = Path(path).expanduser().absolute()
            if not folder.is_dir():
                raise ConfigError(f"--config-dir {path}: no such folder")
            check_headers(folder, path)
            path = f"file://{folder}"
        elif path.startswith("file://"):
            check_headers(Path(path[len("file://"):]), path[len("file://"):])
        found.append(path)
    if found != SEARCH_PATH:
        SEARCH_PATH[:] = found
        GlobalHydra.instance().clear()


def check_headers(folder: Path, given: str) -> None:
    """Refuse a YAML file whose `# @package` line Hydra does not read: Hydra takes the header only from the leading
    `# @` lines, so a comment above it leaves the file in its group's package (a preset's `override /model` then
    fails, and its values land under `experiment.`)."""
    from hydra.plugins.config_source import ConfigSource

    # where Hydra looks: config.yaml, <group>/<option>.yaml, <group>/<subgroup>/<option>.yaml (not a whole tree)
    found = [f for pattern in ("*.yaml", "*/*.yaml", "*/*/*.yaml") for f in folder.glob(pattern)]
    for path in sorted(f for f in found if not any(part.startswith(".") for part in f.relative_to(folder).parts)):
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError):
            continue  # Hydra names an unreadable file itself, if it is used
        header = next((ln.strip() for ln in text.splitlines() if re.match(r"\s*#\s*@package\b", ln)), None)
        try:
            unread = header is not None and ConfigSource._get_header_dict(text)["package"] is None
        except ValueError:  # a malformed header: Hydra's own error says so when the file is used
            continue
        if unread:
            shown = Path(given) / path.relative_to(folder)
            raise ConfigError(f"{shown}: `{header}` must be the file's first line (Hydra reads it only above any "
                              "other line, comments included)")


def hydra_app():
    """Hydra's global state, initialised once per process on the packaged configs and the user's folders.
    Kept: composing a thousand-job sweep stays quick."""
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_config_search_path
    from hydra.core.config_search_path import SearchPathQuery
    from hydra.core.global_hydra import GlobalHydra

    if not GlobalHydra.instance().is_initialized():
        search_path = create_config_search_path(f"pkg://{CONFIG_MODULE}")
        for path in SEARCH_PATH:
            search_path.prepend(provider="ddescent --config-dir", path=path, anchor=SearchPathQuery(provider="main"))
        for package in component.conf_packages():  # installed plugins' group YAMLs, after ddescent's own
            search_path.append(provider="ddescent plugin", path=f"pkg://{package}",
                               anchor=SearchPathQuery(provider="main"))
        Hydra.create_main_hydra2(task_name="ddescent", config_search_path=search_path)
    return GlobalHydra.instance()


def take_search_path(overrides: list[str]) -> list[str]:
    """`hydra.searchpath=[...]` overrides become folders searched before the packaged configs (as --config-dir);
    returns the other overrides."""
    rest = []
    for o in overrides:
        if o.split("=", 1)[0].lstrip("+") == "hydra.searchpath":
            try:
                value = _parser().parse_override(o).value()
            except Exception as exc:
                raise ConfigError(hydra_message(exc)) from exc
            use_config_dirs([str(v) for v in (value if isinstance(value, list) else [value])] + SEARCH_PATH)
        else:
            rest.append(o)
    return rest


def compose(overrides: list[str], hydra: bool = False) -> DictConfig:
    """The config of one run for these overrides (no sweeps), as Hydra composes it."""
    from hydra import compose as hydra_compose

    try:
        hydra_app()
        return hydra_compose("config", overrides=overrides, return_hydra_config=hydra)
    except Exception as exc:  # Hydra raises several unrelated exception types for bad input
        raise ConfigError(hydra_message(exc)) from exc


def _parser():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create(config_loader=hydra_app().config_loader())  # the loader lets glob() list options


def compose_all(lines: list[list[str]]) -> list[DictConfig]:
    """[compose(line) for line in lines], quickly. Hydra rebuilds the defaults tree on every call (~75 ms), so each
    distinct set of group choices is composed once, and a line's plain `key=value` overrides are applied to a
    copy the way Hydra applies command-line overrides after composing (OmegaConf.update with merge). Lines
    with anything else, or whose overrides do not apply, go through compose (and its error messages)."""
    parser = _parser()
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

    job_overrides, hydra_overrides = split_overrides(overrides)
    try:
        parser = _parser()
        parsed = parser.parse_overrides(job_overrides)
        # Group choices may be swept too (model=mlp,cnn1d): each choice can bring its own preset axes.
        group_sweeps = [o for o in parsed if o.is_sweep_override() and o.key_or_group in GROUPS]
        fixed = [o.input_line for o in parsed if o not in group_sweeps]
        single = [o.input_line for o in parsed if not o.is_sweep_override()]
        choices = BasicSweeper.split_arguments(group_sweeps, None)[0] if group_sweeps else [[]]
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(hydra_message(exc)) from exc
    _refuse_deletions(parsed)
    _launching(hydra_overrides)
    structure = [o.input_line for o in parsed if _is_group(o) and not o.is_sweep_override()]
    jobs: list[list[str]] = []
    for choice in choices:
        base = _compose_checked(parsed, single + choice + hydra_overrides, structure + choice, hydra=True)
        _check_output_dirs(base)
        params = OmegaConf.select(base, "hydra.sweeper.params") or {}
        lines = [f"{k}={v}" for k, v in params.items()] + fixed + choice  # later lines replace earlier keys
        try:
            jobs.extend(BasicSweeper.split_arguments(parser.parse_overrides(lines), None)[0])
        except Exception as exc:
            raise ConfigError(hydra_message(exc)) from exc
    return jobs


def expand_one(overrides: list[str]) -> list[list[str]]:
    """The one job of `ddescent run`: the command line's overrides, single values only. As in Hydra's RUN mode,
    the preset's sweep axes (hydra.sweeper.params) do not apply: its config values do."""
    job_overrides, hydra_overrides = split_overrides(overrides)
    try:
        parsed = _parser().parse_overrides(job_overrides)
    except Exception as exc:
        raise ConfigError(hydra_message(exc)) from exc
    swept = [o for o in parsed if o.is_sweep_override()]
    if swept:
        raise ConfigError(f"{swept[0].input_line}: `ddescent run` trains one run, with single values; use "
                          "`ddescent sweep` for more than one")
    _refuse_deletions(parsed)
    _launching(hydra_overrides)
    if any(o.is_add() and not _is_group(o) for o in parsed):
        _compose_checked(parsed, job_overrides, [o.input_line for o in parsed if _is_group(o)])
    return [job_overrides]


# ----------------------------------------------------------------------------- checking the command line's keys


def _is_group(override) -> bool:
    """A config group choice (model=cnn1d, +extra=mine, hydra/launcher=slurm, model@pkg=...), not a key."""
    key = override.key_or_group
    return (override.package is not None or key in GROUPS or "/" in key
            or hydra_app().config_loader().repository.group_exists(key))


def _refuse_deletions(parsed) -> None:
    """`~group` and `~key`: every group and key of a run's config is read, so removing one fails later, deep in
    the training code. `~experiment` stays (no preset: config.yaml's values, with a name of one's own)."""
    for o in parsed:
        if not o.is_delete() or o.key_or_group == "experiment":
            continue
        key = o.key_or_group
        if key in GROUPS:
            options = hydra_app().config_loader().get_group_options(key)
            instead = f"choose {key}=none instead" if "none" in options else f"choose {key}=OPTION instead"
            raise ConfigError(f"{o.input_line}: every run needs a {key} config; {instead} "
                              f"(options: {', '.join(options)})")
        if not _is_group(o):
            raise ConfigError(f"{o.input_line}: ddescent reads every key of its config, so none can be removed; "
                              f"set {key}=... instead")


def _compose_checked(parsed, line: list[str], structure: list[str], hydra: bool = False) -> DictConfig:
    """compose(line), having refused first a `+key` that no component reads (a misspelt key added, the run
    trained with a column nobody reads), and naming the closest keys when Hydra refuses a misspelt `key=`. The keys
    are checked against the config of the group choices alone."""
    additions = any(o.is_add() and not _is_group(o) for o in parsed)
    error = None
    if not additions:
        try:
            return compose(line, hydra=hydra)
        except ConfigError as exc:  # perhaps a misspelt key: say which keys are close, if so
            error = exc
    check_keys([o for o in parsed if not _is_group(o) and not o.is_delete() and not o.is_force_add()],
               compose(structure))
    if error is not None:
        raise error
    return compose(line, hydra=hydra)


def check_keys(overrides, cfg: DictConfig) -> None:
    """ConfigError (one line: the key, what is close, the keys there are) for an override whose key is not in the
    composed config `cfg`. A `+key` is accepted where a component's rules declare it (its YAML may leave it out);
    `++key` (not checked) is how a user adds a key of their own."""
    tree = OmegaConf.to_container(cfg, resolve=False)
    tree.pop("hydra", None)
    try:
        declared = set(rules_for(cfg))
    except ConfigError:  # a group without a known component: validate says so
        declared = set(RULES) | set(optim.RULES)
    for o in overrides:
        key = o.key_or_group
        parts = key.split(".")
        node, depth = tree, 0
        while depth < len(parts) and isinstance(node, dict) and parts[depth] in node:
            node, depth = node[parts[depth]], depth + 1
        if depth == len(parts) or not isinstance(node, dict):
            continue  # there already, or under a value (Hydra's message names it)
        named = o.input_line.split("=", 1)[0]
        if any(d == key or d.startswith(key + ".") for d in declared):
            if o.is_add():
                continue
            raise ConfigError(f"{named}: its component reads {key}, which its config file leaves out; add it with "
                              f"+{o.input_line}")
        parent, missing = ".".join(parts[:depth]), parts[depth]
        close = difflib.get_close_matches(missing, list(node), n=1)
        hint = f" (did you mean {'.'.join([*parts[:depth], close[0]])}?)" if close else ""
        where = f"{parent} has no key {missing}" if parent else f"there is no top-level key {missing}"
        mine = f"; if it is a key of your own, add it with ++{o.input_line.lstrip('+')}" if o.is_add() else ""
        raise ConfigError(f"{named}: {where}{hint}; {'its' if parent else 'the'} keys: {', '.join(node)}{mine}")


# Where the jobs of the sweep being expanded train. A launcher that sends them to other machines (SLURM) leaves
# their device to be checked where they run (launch.hydra_task); expand() and expand_one() set it from the command
# line, which is also what picks the launcher (orchestrate.is_local).
LAUNCHER: dict = {"elsewhere": False, "warned": set()}
LOCAL_LAUNCHERS = ("basic", "joblib", "submitit_local")


def runs_elsewhere(hydra_overrides: list[str]) -> bool:
    """Whether these hydra overrides choose a launcher that runs the jobs on other machines."""
    chosen = [o.split("=", 1)[1] for o in hydra_overrides if o.startswith("hydra/launcher=")]
    return bool(chosen) and chosen[-1] not in LOCAL_LAUNCHERS


def _launching(hydra_overrides: list[str]) -> None:
    LAUNCHER.update(elsewhere=runs_elsewhere(hydra_overrides), warned=set())


def _check_output_dirs(cfg: DictConfig) -> None:
    """hydra.sweep.dir and hydra.run.dir: the launcher makes each job's folder under them after planning; a path
    through a file can never hold one, so it is refused now, in one line, before anything is written."""
    for key in ("hydra.sweep.dir", "hydra.run.dir"):
        try:
            value = OmegaConf.select(cfg, key)
        except Exception:  # noqa: BLE001  (an interpolation only the launcher resolves: its own check then)
            continue
        if not value:
            continue
        path = Path(str(value)).expanduser()
        for part in (path, *path.parents):
            if part.is_dir():
                break
            if part.exists() or part.is_symlink():
                raise ConfigError(f"{key}={value}: {part} is {'a file' if part.is_file() else 'not a folder'}; "
                                  f"{key} must be a folder (or not exist yet): each job's folder is made under it")


def hydra_quote(text: str) -> str:
    """`text` as a quoted Hydra override value that reads back exactly, whatever it holds (commas, quotes, `${`,
    backslashes, non-ASCII): a path given on the command line is never split, interpolated or misparsed."""
    # OmegaConf: a literal "${" needs an odd number of backslashes before it (k literal ones become 2k + 1).
    text = re.sub(r"(\\*)\$\{", lambda m: "\\" * (2 * len(m.group(1)) + 1) + "${", text)
    # Hydra's quoted strings: backslashes before a quote (escaped or closing) are halved.
    text = re.sub(r"(\\*)'", lambda m: "\\" * (2 * len(m.group(1)) + 1) + "'", text)
    text = re.sub(r"(\\+)$", lambda m: "\\" * (2 * len(m.group(1))), text)
    return f"'{text}'"


# ----------------------------------------------------------------------------- validating


COMPONENT_GROUPS = ("data", "model", "regularizer", "logger")  # config groups whose options are components


def rules_for(plain: DictConfig) -> dict[str, Rule]:
    """Every rule that applies to this config: the top level's and those of the chosen components."""
    rules = dict(RULES)
    rules.update(optim.RULES)
    for group in COMPONENT_GROUPS:
        rules.update(component.get(group, plain[group].name).rules)
    return rules


def validate(cfg: DictConfig, data_files: bool = True, device_here: bool | None = None) -> dict:
    """Raise ConfigError (one line: key, value, what is allowed) for the first invalid value; return the resolved
    config of the run (run_config). data_files=False leaves out what needs the dataset itself (its files, the pool
    size, the shapes), for showing a config on a machine without the data. device_here=False leaves the device to
    the machine that runs the job (None: as the launcher of the last expand() says)."""
    resolved = run_config(cfg)
    plain = OmegaConf.create(resolved)
    if plain.get("name") in (None, "???"):
        raise ConfigError("name: the experiment has no name; set name=... or choose experiment=...")
    for group in (*COMPONENT_GROUPS, "optim"):
        if not isinstance(plain.get(group), DictConfig) or plain[group].get("name") in (None, "???"):
            raise ConfigError(f"{group}: the {group} config has no `name` (a file of conf/{group}/ must set "
                              "`name:` to its component's name)")
    for group in COMPONENT_GROUPS:
        component.get(group, plain[group].name)  # one line naming the choices when no component has that name
    if plain.optim.name not in optim.NAMES:
        raise ConfigError(f"optim={plain.optim.name}: choose one of: {', '.join(optim.NAMES)}")
    absent = object()
    for key, rule in rules_for(plain).items():  # (group names were checked first: rules_for reads them)
        value = lookup(resolved, key, absent)
        if value is not absent and not rule.check(value):
            raise ConfigError(f"{key}={value!r}: expected {rule.allowed}")
    for key, axis in MIRRORS.items():
        value = lookup(resolved, key, absent)
        if value is not absent and value != plain[axis]:
            raise ConfigError(f"{key}={value!r}: {key} follows the sweep axis `{axis}` ({plain[axis]!r} here); "
                              f"set {axis}={value} instead")
    if plain.train.patience and not plain.val_fraction:
        raise ConfigError(f"train.patience={plain.train.patience}: early stopping needs a validation split; "
                          "set val_fraction > 0 (e.g. val_fraction=0.1) or train.patience=0")
    if device_here if device_here is not None else not LAUNCHER["elsewhere"]:
        check_device(plain.train.device)
    else:
        _warn_device(plain.train.device)
    accel.check(plain.train.precision, plain.train.compile, accel.resolve_device(plain.train.device),
                schedule=plain.optim.get("schedule", "constant") != "constant" or bool(plain.optim.get("warmup_steps")),
                penalty=plain.regularizer.name != "none" and bool(plain.regularizer.strength))
    for group in ("model", "regularizer", "logger"):
        spec = component.get(group, plain[group].name)
        if spec.check is not None:
            spec.check(plain[group])
    if data_files:
        data.check(plain.data)  # dataset roots and content, n_train against the pool size
        # a family may refuse a shape it cannot take (a linear model wider than its input)
        models.family(plain.model).n_params(plain.model, data.dataset(plain.data).input_shape(plain.data),
                                            data.n_classes(plain.data))
    return resolved


def _warn_device(name: str) -> None:
    try:
        check_device(name)
    except ConfigError as exc:
        if name not in LAUNCHER["warned"]:
            LAUNCHER["warned"].add(name)
            log.warning("%s; each job checks it on the node that runs it", str(exc).split(";", 1)[0])


def check_device(name: str) -> None:
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"train.device={name}: CUDA is not available here (torch {torch.__version__}); "
                              "use train.device=auto or cpu")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(f"train.device={name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("train.device=mps: MPS is not available here; use train.device=auto or cpu")


def run_config(cfg: DictConfig) -> dict:
    """The resolved config of a run, without Hydra's own node."""
    try:
        if "hydra" not in cfg:  # (composed without Hydra's node: no copy needed)
            resolved = OmegaConf.to_container(cfg, resolve=True)
        else:
            resolved = OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]),
                                              resolve=True)
    except Exception as exc:  # an interpolation that does not resolve
        raise ConfigError(hydra_message(exc)) from exc
    return _absolute_data_paths(resolved)


def _absolute_data_paths(resolved: dict) -> dict:
    """data.root and data.cache_dir as absolute paths, from the folder the command was given in: a job may run
    elsewhere (hydra.job.chdir=true moves it into its output folder; a cluster job starts where it likes), and a
    relative path would name another folder there. Neither is part of a run's identity (spec.NOT_IDENTITY)."""
    node = resolved.get("data")
    if isinstance(node, dict):
        for key in ("root", "cache_dir"):
            value = node.get(key)
            if isinstance(value, str) and value not in ("", "???") and not value.startswith("~") \
                    and not Path(value).is_absolute():
                node[key] = str(Path(value).absolute())
    return resolved
