"""On-disk cache of generated datasets, keyed by the generator's arguments (written atomically)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable

import numpy as np

from ddescent.files import write_atomic


def cache_dir(configured: str | None) -> Path:
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ddescent"


def cached_arrays(name: str, args: dict, directory: str | None, make: Callable[[], dict]) -> dict[str, np.ndarray]:
    """Arrays from `<cache>/<name>-<hash(args)>.npz`, made with `make()` and stored on first use."""
    key = hashlib.sha256(json.dumps(args, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir(directory) / f"{name}-{key}.npz"
    if path.exists():
        try:
            with np.load(path) as f:
                return {k: f[k] for k in f.files}
        except (OSError, ValueError, EOFError):
            pass  # damaged cache entry: make it again
    arrays = make()
    write_atomic(path, lambda f: np.savez(f, **arrays))
    return arrays
