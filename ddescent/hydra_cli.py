"""Hydra's own command-line habits for ddescent's commands: --config-dir (and hydra.searchpath), --cfg job|hydra|all
with -p, --info, and what `ddescent config` and `ddescent presets` print. ddescent parses its command line with
typer and composes with Hydra's API, so these flags are given the meaning Hydra gives them."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from omegaconf import OmegaConf, open_dict

from ddescent.config import (SEARCH_PATH, compose, expand, expand_one, hydra_app, hydra_message, split_overrides,
                             take_search_path, use_config_dirs, validate)
from ddescent.errors import ConfigError

CFG_PARTS = ("job", "hydra", "all")


def overrides_with_search_path(overrides: list[str] | None, config_dirs: list | None) -> list[str]:
    """--config-dir folders and hydra.searchpath=[...] become folders searched before the packaged configs;
    returns the other overrides."""
    use_config_dirs([str(d) for d in config_dirs or []])
    return take_search_path(list(overrides or []))


def show(overrides: list[str], cfg: str | None, package: str | None, info: str | None, one_run: bool = False) -> str:
    """What `--cfg PART [-p KEY]` or `--info [WHAT]` prints for these overrides (the first job of a sweep; with
    `one_run`, the one run of `ddescent run`, whose preset's sweep axes do not apply)."""
    if cfg is not None and cfg not in CFG_PARTS:
        raise ConfigError(f"--cfg {cfg}: choose one of: {', '.join(CFG_PARTS)}")
    lines = (expand_one if one_run else expand)(overrides)  # (a bad override fails here, in one line)
    first = lines[0] + split_overrides(overrides)[1]
    note = f"# the config of job 1 of {len(lines)}; the sweep axes are under hydra.sweeper.params\n" \
        if len(lines) > 1 else ""
    if cfg is None:
        import contextlib
        import io

        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                hydra_app().hydra.show_info(info or "all", config_name="config", overrides=first)
        except Exception as exc:  # Hydra's own errors: one line
            raise ConfigError(hydra_message(exc)) from exc
        return out.getvalue()
    return note + _cfg(first, cfg, package, sweep_axes(overrides))


def _cfg(overrides: list[str], part: str, package: str | None, axes: dict[str, str]) -> str:
    """What Hydra's --cfg prints, with the sweep axes the command line makes (not only the preset's)."""
    node = compose(overrides, hydra=True)
    with open_dict(node):
        node.hydra.sweeper.params = axes
    body = OmegaConf.to_container(node, resolve=False)
    if part == "job":
        body.pop("hydra")
    elif part == "hydra":
        body = {"hydra": body["hydra"]}
    if package:
        selected = OmegaConf.select(OmegaConf.create(body), package)
        if selected is None:
            raise ConfigError(f"--package {package}: no such key in the {part} config")
        body = OmegaConf.to_container(selected) if OmegaConf.is_config(selected) else selected
        return f"# @package {package}\n" + (OmegaConf.to_yaml(body) if isinstance(body, (dict, list)) else str(body))
    return OmegaConf.to_yaml(body)


def sweep_axes(overrides: list[str]) -> dict[str, str]:
    """The sweep axes of these overrides: the preset's, replaced key by key by the command line's."""
    job, hydra_overrides = split_overrides(overrides)
    single = [o for o in job if "," not in o.split("=", 1)[-1]]
    params = dict(OmegaConf.select(compose(single + hydra_overrides, hydra=True), "hydra.sweeper.params") or {})
    params.update({o.split("=", 1)[0]: o.split("=", 1)[1] for o in job if "," in o.split("=", 1)[-1]})
    return {k: str(v) for k, v in params.items()}


def config_text(overrides: list[str], check_data: bool = False) -> str:
    """`ddescent config`: the composed config of the first job, then the sweep's axes and its launcher."""
    lines = expand(overrides)
    cfg = compose(lines[0] + split_overrides(overrides)[1], hydra=True)
    validate(cfg, data_files=check_data)
    launcher = cfg.hydra.launcher
    body = OmegaConf.to_container(cfg, resolve=False)
    body.pop("hydra")
    axes = "; ".join(f"{k}={v}" for k, v in sweep_axes(overrides).items())
    settings = ", ".join(f"{k}={v}" for k, v in OmegaConf.to_container(launcher, resolve=False).items()
                         if k != "_target_" and v not in (None, {}, []))
    return (OmegaConf.to_yaml(body) + f"\n# sweep: {len(lines)} job(s) over {axes}\n"
            f"# launcher: {launcher._target_.rsplit('.', 1)[-1]} ({settings})")


def group_options(group: str) -> list[tuple[str, str]]:
    """(option, its description) of a config group, from every folder on the search path: the comment lines at
    the head of its YAML file, joined (a description may span several lines)."""
    folders = [Path(p[len("file://"):]) for p in SEARCH_PATH if p.startswith("file://")]
    folders.append(Path(str(importlib.resources.files("ddescent.conf"))))
    out = []
    for name in hydra_app().config_loader().get_group_options(group):
        path = next((f / group / f"{name}.yaml" for f in folders if (f / group / f"{name}.yaml").is_file()), None)
        out.append((name, describe(path) if path else ""))
    return out


def describe(path: Path) -> str:
    """The comment block at the head of a YAML file as one paragraph (Hydra's `@package` line left out)."""
    text = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            if text or line.strip():
                break
            continue
        body = line[1:].strip()
        if not body.startswith("@package"):
            text.append(body)
    return " ".join(t for t in text if t)
