"""Datasets, one module each (see `Dataset` in ddescent.data.base), found by discovery (ddescent.component): a
newcomer adds a dataset as a module with `DATASET = Dataset(...)` and conf/data/<name>.yaml. What every dataset
shares (subsampling, label noise, validation split, content fingerprints) is ddescent.data.loading."""

from ddescent.data.base import Data, Dataset, Pool
from ddescent.data.loading import check, dataset, datasets, fingerprint, load, n_classes

__all__ = ["Data", "Dataset", "Pool", "check", "dataset", "datasets", "fingerprint", "load", "n_classes"]
