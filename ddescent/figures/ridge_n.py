"""Optimal ridge against the training-set size n at a fixed number of features p (ddescent.figures.ridge_lines)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from ddescent.figures import ridge_lines
from ddescent.figures.base import Figure


def draw(df: pd.DataFrame, eps: float = 0.01, widths: list[float] | None = None, ax=None) -> plt.Figure:
    """Test risk against n, a line per lambda, at the width p closest to the median of the sweep's (or each of
    `widths`)."""
    return ridge_lines.draw(df, "width", "n_train", widths, ax)


FIGURE = Figure("ridge-n", draw=draw, needs=lambda rows: ridge_lines.needs(rows, "width", "n_train"), order=8,
                summary="ridge risk vs n at fixed p, a line per λ (0, fixed, optimal λ*), theory over each")
