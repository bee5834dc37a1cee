"""Fashion-MNIST (Xiao et al. 2017) from its IDX files under data.root; `ddescent data fetch fashion_mnist`
downloads them."""

from ddescent.data import idx

DATASET = idx.dataset("fashion_mnist")
