"""Figures only; no model or data code. Each ``plot_*`` takes a result table, draws on ``ax``
(a new one when None) and returns the Axes."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns


def _ax(ax, figsize=(8, 4.5)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def plot_channel_stage(counts: pd.DataFrame, *, ax=None, cmap: str = "Blues", **kwargs) -> plt.Axes:
    """Heatmap of touchpoints by channel (rows) × stage (columns).

    ``counts`` is the wide table of :func:`analysis.journeys.channel_stage_counts`.
    """
    ax = _ax(ax, figsize=(1.4 * max(len(counts.columns), 3) + 3, 0.45 * len(counts) + 1.5))
    sns.heatmap(counts, annot=True, fmt=",.0f", cmap=cmap, cbar=False, linewidths=0.5, ax=ax, **kwargs)
    ax.set_xlabel("stage")
    ax.set_ylabel("channel")
    ax.set_title("Touchpoints by channel and stage")
    return ax


def plot_top_paths(paths: pd.DataFrame, *, n: int = 10, ax=None, **kwargs) -> plt.Axes:
    """Horizontal bars of the ``n`` most frequent paths, split into conversions and nulls.

    ``paths`` has the columns ``path, conversions, nulls`` (as :meth:`Journeys.channel_paths`).
    """
    top = paths.assign(total=paths["conversions"] + paths["nulls"]).nlargest(n, "total")
    top = top.iloc[::-1]
    ax = _ax(ax, figsize=(9, 0.4 * len(top) + 1.5))
    labels = [p if len(p) <= 60 else p[:57] + "…" for p in top["path"]]
    ax.barh(labels, top["conversions"], color="#2a9d8f", label="converted", **kwargs)
    ax.barh(labels, top["nulls"], left=top["conversions"], color="#e9c46a", label="not converted")
    ax.set_xlabel("journeys")
    ax.set_title(f"Top {len(top)} channel paths")
    ax.legend(loc="lower right")
    return ax


def plot_outcomes(journeys: pd.DataFrame, *, ax=None) -> plt.Axes:
    """Journeys by outcome (converted / dropoff / open)."""
    ax = _ax(ax, figsize=(5, 3))
    order = [o for o in ("converted", "dropoff", "open") if o in set(journeys["outcome"])]
    sns.countplot(data=journeys, y="outcome", order=order, ax=ax, color="#457b9d")
    ax.set_title("Journeys by outcome")
    return ax
