"""Components register themselves. Every component kind has one spec shape (a dataclass deriving from
`Component`), one module per component, and a registry built by discovery, never by hand:

    kind          package (one module per component)   the module's spec     config group   entry-point group
    model         ddescent.models                       FAMILY = Family(...)   conf/model/    ddescent.models
    data          ddescent.data                         DATASET = Dataset(...) conf/data/     ddescent.data
    regularizer   ddescent.regularizers                 REGULARIZER = ...      conf/regularizer/  ddescent.regularizers
    logger        ddescent.loggers                      LOGGER = Logger(...)   conf/logger/   ddescent.loggers
    figure        ddescent.figures                      FIGURE = Figure(...)   (--figure)     ddescent.figures

A module of the package that has no such spec (a base class, a shared helper) is not a component. An installed
package adds components without touching ddescent: an entry point in one of the groups above names its spec
(`mypkg.lasso:REGULARIZER`) or its module (`mypkg.lasso`, whose spec attribute is read), and an entry point in the
group `ddescent.conf` names a package whose folders hold its group YAMLs (`mypkg.conf` with model/, data/, ...),
searched after ddescent's own configs.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import logging
import pkgutil
import types
from dataclasses import dataclass, field
from typing import Callable

from ddescent.checks import Rule
from ddescent.errors import ConfigError

log = logging.getLogger("ddescent")


@dataclass(frozen=True)
class Component:
    """What every component has: its name (the config group option, or the figure's name), the rules of its own
    config keys ({"model.depth": Rule}, checked before any work) and a check of what the rules cannot see
    (check(cfg) raises ConfigError), given the component's config node."""

    name: str
    rules: dict[str, Rule] = field(default_factory=dict, kw_only=True)
    check: Callable | None = field(default=None, kw_only=True)


@dataclass(frozen=True)
class Kind:
    name: str  # the config group (model, data, ...), and the noun of its messages
    package: str
    attr: str
    noun: str  # "model family", ...

    @property
    def entry_points(self) -> str:
        return self.package  # ddescent.models, ddescent.data, ...


KINDS = {k.name: k for k in (
    Kind("model", "ddescent.models", "FAMILY", "model family"),
    Kind("data", "ddescent.data", "DATASET", "dataset"),
    Kind("regularizer", "ddescent.regularizers", "REGULARIZER", "regularizer"),
    Kind("logger", "ddescent.loggers", "LOGGER", "logger"),
    Kind("figure", "ddescent.figures", "FIGURE", "figure"),
)}
CONF_ENTRY_POINTS = "ddescent.conf"


@functools.cache
def registry(kind: str) -> dict[str, Component]:
    """{name: spec} of every component of a kind: ddescent's own modules, then installed packages' entry points
    (which may not replace one of ddescent's)."""
    k = KINDS[kind]
    package = importlib.import_module(k.package)
    found: dict[str, Component] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{k.package}.{info.name}")
        spec = module.__dict__.get(k.attr)
        if isinstance(spec, Component):
            _add(found, spec, f"{k.package}.{info.name}", k)
    for ep in importlib.metadata.entry_points(group=k.entry_points):
        try:
            loaded = ep.load()
        except Exception as exc:  # a broken plugin names itself and is left out; ddescent's own still work
            log.warning("entry point %s = %s (%s) could not be loaded: %s", ep.name, ep.value, k.entry_points, exc)
            continue
        spec = loaded.__dict__.get(k.attr) if isinstance(loaded, types.ModuleType) else loaded
        if not isinstance(spec, Component):
            log.warning("entry point %s = %s (%s) is not a %s spec; left out", ep.name, ep.value, k.entry_points,
                        k.noun)
            continue
        if spec.name in found:
            log.warning("entry point %s = %s: ddescent already has a %s named %r; left out", ep.name, ep.value,
                        k.noun, spec.name)
            continue
        _add(found, spec, ep.value, k)
    return found


def _add(found: dict, spec: Component, where: str, kind: Kind) -> None:
    if spec.name in found:
        raise RuntimeError(f"{where}: a second {kind.noun} named {spec.name!r}")
    found[spec.name] = spec


def get(kind: str, name: str) -> Component:
    """The spec of one component, or ConfigError (one line) naming the choices."""
    found = registry(kind)
    if name not in found:
        what = f"--figure {name}" if kind == "figure" else f"{kind}={name}"
        raise ConfigError(f"{what}: no such {KINDS[kind].noun}; choose one of: {', '.join(found)}")
    return found[name]


def names(kind: str) -> list[str]:
    return list(registry(kind))


def conf_packages() -> list[str]:
    """Packages of installed plugins that hold group YAMLs (entry-point group ddescent.conf)."""
    out = []
    for ep in importlib.metadata.entry_points(group=CONF_ENTRY_POINTS):
        out.append(ep.value.split(":", 1)[0])
    return out
