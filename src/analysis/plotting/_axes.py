"""The shared ground of the figures: a new Axes when none is given, short distinct labels."""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt

if TYPE_CHECKING:
    from collections.abc import Iterable

    from matplotlib.axes import Axes


def new_ax(ax: Axes | None, figsize: tuple[float, float] = (8, 4.5)) -> Axes:
    """Return ``ax``, or the Axes of a new figure of ``figsize`` when it is None."""
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def unique_short(labels: Iterable, width: int = 60) -> list[str]:
    """Return labels of at most ``width`` characters that stay distinct (start … end, then a counter)."""
    from analysis.text import short_labels

    return short_labels([str(x) for x in labels], width)
