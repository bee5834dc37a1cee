"""MNIST (LeCun et al. 1998) from its IDX files under data.root; `ddescent data fetch mnist` downloads them."""

from ddescent.data import idx

DATASET = idx.dataset("mnist")
