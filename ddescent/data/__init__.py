"""Datasets, one module each (see `Dataset` in ddescent.data.base), found by discovery (ddescent.component): a
newcomer adds a dataset as a module with `DATASET = Dataset(...)` and conf/data/<name>.yaml. What every dataset
shares (subsampling, label noise, validation split, content fingerprints) is ddescent.data.loading."""

from ddescent.data.base import Data, Dataset, Pool

_LOADING = ("check", "dataset", "datasets", "fingerprint", "load", "n_classes")
__all__ = ["Data", "Dataset", "Pool", *_LOADING]


def __getattr__(name: str):
    """ddescent.data.loading's functions, imported on first use: it needs torch (a Data holds tensors), and the
    numpy-only readers of a dataset module (the theory, `ddescent plot`) should not pay for importing it."""
    if name in _LOADING:
        from ddescent.data import loading

        return getattr(loading, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
