"""Optimal ridge against the number of features p at a fixed training-set size n (ddescent.figures.ridge_lines)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from ddescent.figures import ridge_lines
from ddescent.figures.base import Figure


def draw(df: pd.DataFrame, eps: float = 0.01, widths: list[float] | None = None, ax=None) -> plt.Figure:
    """Test risk against p, a line per lambda, at the n_train closest to the median of the sweep's (`widths`:
    these n_train values instead)."""
    return ridge_lines.draw(df, "n_train", "width", widths, ax)


FIGURE = Figure("ridge-p", draw=draw, needs=lambda rows: ridge_lines.needs(rows, "n_train", "width"), order=9,
                summary="ridge risk vs p at fixed n, a line per λ (0, fixed, optimal λ*), theory over each")
