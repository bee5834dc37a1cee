"""ddescent: train families of models over sweeps and plot double descent (Bishop & Bishop §9.3.2).

From Python: ddescent.sweep(...), ddescent.run(...), ddescent.load(path), ddescent.plot(df, figure) (see
ddescent.api); importing ddescent itself loads nothing heavy.
"""

__version__ = "0.2.0"

__all__ = ["ConfigError", "RunsFailed", "load", "plot", "run", "sweep", "__version__"]


class ConfigError(ValueError):
    """Bad input: reported as one line naming the key and what is allowed, exit code 2."""


def __getattr__(name: str):
    if name in ("sweep", "run", "load", "plot", "RunsFailed"):
        from ddescent import api

        return getattr(api, name)
    raise AttributeError(f"module 'ddescent' has no attribute {name!r}")
