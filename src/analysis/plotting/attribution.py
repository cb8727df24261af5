"""Figures of channel paths and attribution: the top paths, credit per channel by model."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import seaborn as sns

from analysis.plotting._axes import new_ax

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def plot_top_paths(paths: pd.DataFrame, *, n: int = 10, ax: Axes | None = None, **kwargs) -> Axes:
    """Draw horizontal bars of the ``n`` most frequent paths, split into conversions and nulls.

    ``paths`` has the columns ``path, conversions, nulls`` (as :meth:`Journeys.channel_paths`).
    One bar per row: repeats are written once with a count (:func:`analysis.text.compact_path`),
    long labels keep their start and end (:func:`analysis.text.short_labels`) and stay
    distinct, so paths that share a long prefix are never merged.
    """
    from analysis.text import compact_path, short_labels

    top = paths.assign(total=paths["conversions"] + paths["nulls"]).nlargest(n, "total")
    top = top.iloc[::-1]
    ax = new_ax(ax, figsize=(9, 0.4 * len(top) + 1.5))
    labels = short_labels(
        [compact_path(p) for p in top["path"]], 60
    )  # "direct ×14", not 14 repeats
    ys = np.arange(len(top))
    ax.barh(ys, top["conversions"], color="#2a9d8f", label="converted", **kwargs)
    ax.barh(ys, top["nulls"], left=top["conversions"], color="#e9c46a", label="not converted")
    ax.set_yticks(ys, labels)
    ax.set_xlabel("journeys")
    ax.set_title(f"Top {len(top)} channel paths")
    ax.legend(loc="lower right")
    return ax


def plot_attribution_comparison(
    table: pd.DataFrame, *, ax: Axes | None = None, top: int | None = None
) -> Axes:
    """Draw attributed conversions per channel (rows), one colour per model, side by side.

    Models with intervals (``lower/upper``) get error bars. Channels are sorted by their mean
    over the models, largest at the top.

    ``table`` is :func:`analysis.models.attribution.compare_attribution` (``channel, model,
    conversions, lower, upper, share``); ``top`` keeps that many channels.
    """
    models = list(dict.fromkeys(table["model"]))
    order = table.groupby("channel")["conversions"].mean().sort_values(ascending=False)
    channels = list(order.index[:top] if top else order.index)
    ax = new_ax(ax, figsize=(8, min(0.12 * len(channels) * max(len(models), 2) + 1.5, 14)))
    palette = sns.color_palette("tab10" if len(models) <= 10 else "tab20", len(models))
    step = 0.8 / max(len(models), 1)
    for i, model in enumerate(models):
        d = table[table["model"] == model].set_index("channel").reindex(channels)
        y = np.arange(len(channels)) - 0.4 + step * (i + 0.5)
        has_iv = {"lower", "upper"} <= set(d.columns) and d["lower"].notna().any()
        if has_iv:
            lo = d["lower"].fillna(d["conversions"])
            hi = d["upper"].fillna(d["conversions"])
            xerr = [(d["conversions"] - lo).clip(lower=0), (hi - d["conversions"]).clip(lower=0)]
            ax.errorbar(
                d["conversions"],
                y,
                xerr=xerr,
                fmt="o",
                color=palette[i],
                label=f"{model} (90% interval)",
                ms=5,
                capsize=2,
                lw=1.2,
            )
        else:
            ax.plot(d["conversions"], y, "o", color=palette[i], label=model, ms=5)
    ax.axvline(0, color="grey", lw=0.8)
    for y in np.arange(len(channels) - 1) + 0.5:  # separate the channels' groups
        ax.axhline(y, color="lightgrey", lw=0.6)
    ax.set_yticks(range(len(channels)), channels)
    ax.set_ylim(len(channels) - 0.5, -0.5)
    ax.set_xlabel("attributed conversions")
    ax.set_title(
        "Attributed conversions by model" + (f" (top {len(channels)} channels)" if top else "")
    )
    ax.legend(loc="lower right", fontsize=8)
    return ax
