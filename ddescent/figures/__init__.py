"""The book's figures, drawn from the records alone (Bishop & Bishop §9.3.2): one module per figure (see `Figure`
in ddescent.figures.base), found by discovery (ddescent.component); what they share is ddescent.figures.style.
A newcomer adds a figure as a module with `FIGURE = Figure(...)`."""

from ddescent.figures.base import (FORMATS, Figure, availability, available, choose, code_hash, draw, figure,
                                   figures, filename, render)
from ddescent.figures.style import STYLES

__all__ = ["FORMATS", "STYLES", "Figure", "availability", "available", "choose", "code_hash", "draw", "figure",
           "figures", "filename", "render"]
