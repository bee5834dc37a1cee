"""ddescent: train families of models over sweeps and plot double descent (Bishop & Bishop §9.3.2).

From Python: ddescent.sweep(...), ddescent.run(...), ddescent.load(path), ddescent.plot(df, figure),
ddescent.finals(df), ddescent.report(path, "report.html") (see ddescent.api). Importing ddescent itself loads nothing heavy: the API is imported on
first use.
"""

from ddescent.errors import ConfigError, RunsFailed
from ddescent.version import __version__

API = ("sweep", "run", "load", "plot", "finals", "report")
__all__ = ["ConfigError", "RunsFailed", "__version__", *API]


def __getattr__(name: str):
    if name in API:
        import importlib

        return getattr(importlib.import_module("ddescent.api"), name)
    raise AttributeError(f"module 'ddescent' has no attribute {name!r}")


def __dir__():  # tab completion in a notebook shows the API, not only what is imported yet
    return sorted(set(globals()) | set(__all__))
