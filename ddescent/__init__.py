"""ddescent: train families of models over sweeps and plot double descent (Bishop & Bishop §9.3.2)."""

__version__ = "0.1.0"


class ConfigError(ValueError):
    """Bad input: reported as one line naming the key and what is allowed, exit code 2."""
