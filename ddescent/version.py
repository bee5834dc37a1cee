"""The version of ddescent, recorded in every run's provenance."""

__version__ = "0.3.0"
