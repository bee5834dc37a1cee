"""A heat strip of the final train error over width."""

import matplotlib.pyplot as plt
import numpy as np

from ddescent import analysis
from ddescent.figures.base import Figure


def draw(df, ax=None, eps=0.01, widths=None):
    stats = analysis.seed_stats(analysis.final(df), "width", ["train_error"])
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 1.6))
    ax.imshow(np.atleast_2d(stats["train_error_mean"].to_numpy()), aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(stats)), [f"{w:g}" for w in stats["width"]])
    ax.set_yticks([])
    ax.set_title("final train error by width")
    return fig


def needs(rows):
    return None if rows["width"].nunique() >= 2 else "needs at least 2 widths"


FIGURE = Figure("train-strip", draw=draw, needs=needs, summary="final train error over width as a heat strip")
