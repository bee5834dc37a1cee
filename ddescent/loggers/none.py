"""logger=none: no experiment tracking; the parquet records are all there is (the default)."""

from ddescent.loggers.base import Logger

LOGGER = Logger("none", open=None)
