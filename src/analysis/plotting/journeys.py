"""Figures of the journeys: channels by stage, outcomes, the journey map, the funnel, paths."""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from analysis.plotting._axes import new_ax, unique_short

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def plot_channel_stage(
    counts: pd.DataFrame, *, ax: Axes | None = None, cmap: str = "Blues", **kwargs
) -> Axes:
    """Draw a heatmap of touchpoints by channel (rows) × stage (columns).

    ``counts`` is the wide table of :func:`analysis.journeys.channel_stage_counts`.
    """
    ax = new_ax(ax, figsize=(1.4 * max(len(counts.columns), 3) + 3, 0.45 * len(counts) + 1.5))
    sns.heatmap(
        counts, annot=True, fmt=",.0f", cmap=cmap, cbar=False, linewidths=0.5, ax=ax, **kwargs
    )
    ax.set_xlabel("stage")
    ax.set_ylabel("channel")
    ax.set_title("Touchpoints by channel and stage")
    return ax


def plot_outcomes(journeys: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Draw the journeys by outcome (converted / dropoff / open)."""
    ax = new_ax(ax, figsize=(5, 3))
    order = [o for o in ("converted", "dropoff", "open") if o in set(journeys["outcome"])]
    sns.countplot(data=journeys, y="outcome", order=order, ax=ax, color="#457b9d")
    ax.set_title("Journeys by outcome")
    return ax


_MAP_CMAPS = {
    "reach": "Blues",
    "advance rate": "Greens",
    "drop-off rate": "Reds",
    "median days in stage": "Purples",
    "sentiment": "RdYlGn",
}
_LIST_ROWS = ("touchpoints", "channels", "absent channels")
_MAP_COLS = {"stage", "row", "rank", "label", "value", "n"}


def _one_group(map_table: pd.DataFrame) -> pd.DataFrame:
    """Refuse a map of several groups (``journey_map(by=…)``): the caller picks one."""
    by = [c for c in map_table.columns if c not in _MAP_COLS]
    if by and len(map_table[by].drop_duplicates()) > 1:
        raise ValueError(
            f"the map has several groups ({by}); select one, e.g. "
            f"map_table[map_table[{by[0]!r}] == …]"
        )
    return map_table


def plot_journey_map(
    map_table: pd.DataFrame,
    *,
    ax: Axes | None = None,
    max_items: int | None = None,
    title: str = "Customer journey map",
) -> Axes:
    """Draw the journey map as a grid, stages as columns.

    Rows touchpoints, channels, absent channels (grey, italic), then the KPIs, their cells shaded by value (reach blue, advance green,
    drop-off red, days purple) and sentiment coloured from red (-1) to green (+1).

    ``map_table`` is :func:`analysis.journeys.journey_map` (one group); ``max_items`` caps the
    lines of list cells.
    """
    from analysis.journeys import journey_map_grid

    m = _one_group(map_table)
    grid = journey_map_grid(m, max_items=max_items)
    stages = list(grid.columns)
    rows = list(grid.index)
    heights = [max(1, *(str(c).count("\n") + 1 for c in grid.loc[r])) for r in rows]
    total = sum(heights)
    ax = new_ax(
        ax, figsize=(2.6 * max(len(stages), 2) + 2.2, 0.32 * total + 0.45 * len(rows) + 1.2)
    )
    values = m[~m["row"].isin(_LIST_ROWS)].pivot_table(
        index="row", columns="stage", values="value", observed=False, dropna=False, aggfunc="first"
    )
    y = 0.0
    yticks = []
    for r, h in zip(rows, heights, strict=True):
        hh = h * 0.32 + 0.45
        yticks.append(y + hh / 2)
        vals = values.loc[r] if r in values.index else None
        if r == "sentiment":
            norm = plt.Normalize(-1, 1)
        elif r == "median days in stage" and vals is not None and vals.notna().any():
            norm = plt.Normalize(0, max(float(vals.max()), 1e-9))
        else:
            norm = plt.Normalize(0, 1)
        cmap = plt.get_cmap(_MAP_CMAPS[r]) if r in _MAP_CMAPS else None
        for i, s in enumerate(stages):
            face = "#f2f2f2" if r == "absent channels" else "white"
            if cmap is not None and vals is not None and pd.notna(vals.get(s)):
                shade = norm(vals[s])
                face = cmap(0.1 + 0.8 * shade) if r == "sentiment" else cmap(0.08 + 0.5 * shade)
            ax.add_patch(plt.Rectangle((i, y), 1, hh, facecolor=face, edgecolor="#9a9a9a", lw=0.8))
            ax.text(
                i + 0.5,
                y + hh / 2,
                grid.loc[r, s],
                ha="center",
                va="center",
                fontsize=9,
                color="#555555" if r == "absent channels" else "black",
                style="italic" if r == "absent channels" else "normal",
                linespacing=1.3,
            )
        y += hh
    ax.set_xlim(0, len(stages))
    ax.set_ylim(y, 0)
    ax.xaxis.tick_top()
    ax.set_xticks([i + 0.5 for i in range(len(stages))], stages, fontsize=10, fontweight="bold")
    ax.set_yticks(yticks, rows)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(title, pad=24)
    return ax


def plot_funnel(
    map_table: pd.DataFrame, *, ax: Axes | None = None, conversion_after: str | None = "Do"
) -> Axes:
    """Draw the funnel (fallout): journeys reaching each stage and the share lost between steps.

    Bars in funnel order with their share of all journeys, and between steps the share lost
    (or gained: journeys may enter at any stage).

    ``map_table`` is :func:`analysis.journeys.journey_map` (one group; its ``reach`` rows).
    ``conversion_after`` inserts a step counting converted journeys (``map_table.attrs``) after
    that stage (at the end when the stage is absent; None: no such step).
    """
    from analysis.friction import funnel_losses

    m = _one_group(map_table)
    f = funnel_losses(m, conversion_after=conversion_after)  # the steps friction_explanation reads
    steps = list(f["step"])
    counts = [int(n) for n in f["journeys"]]
    total = m.attrs.get("journeys")
    ax = new_ax(ax, figsize=(8, 0.6 * len(steps) + 1.5))
    top = max([*counts, 1])
    ys = np.arange(len(steps))
    colors = ["#2a9d8f" if s == "converted" else "#457b9d" for s in steps]
    ax.barh(ys, counts, left=[(top - c) / 2 for c in counts], color=colors, height=0.6)
    for y, c in enumerate(counts):
        share = f" ({c / total:.0%} of journeys)" if total else ""
        ax.text((top + c) / 2 + top * 0.01, y, f"{c:,}{share}", va="center", fontsize=8)
    for y in ys[1:]:
        prev, cur = counts[y - 1], counts[y]
        if prev:
            lost = 1 - cur / prev
            txt = f"−{lost:.0%} lost" if lost >= 0 else f"+{-lost:.0%} (entered here)"
            ax.text(
                -top * 0.02,
                y - 0.5,
                txt,
                va="center",
                ha="right",
                fontsize=8,
                color="#e76f51" if lost >= 0 else "#2a9d8f",
            )
    ax.set_yticks([])
    for y, s in enumerate(steps):  # step names left, the losses between them
        ax.text(-top * 0.35, y, s, va="center", ha="left", fontsize=10, fontweight="bold")
    ax.set_ylim(len(steps) - 0.5, -0.7)
    ax.set_xlim(-top * 0.35, top * 1.35)
    ax.set_xticks([])
    ax.set_xlabel("journeys reaching the step")
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title("Funnel: journeys reaching each stage, and the share lost between steps")
    return ax


def plot_outcome_paths(
    top_paths: pd.DataFrame, *, kind: str = "stage", ax: Axes | None = None
) -> Axes:
    """Draw the most frequent paths to conversion (green, top) and to drop-off (orange).

    Bars of journeys annotated with the share of their outcome's journeys.

    ``top_paths`` is :func:`analysis.journeys.top_paths_table`; ``kind`` "stage" or "channel".
    """
    t = top_paths[top_paths["kind"] == kind]
    t = pd.concat([t[t["outcome"] == "converted"], t[t["outcome"] == "dropoff"]])
    ax = new_ax(ax, figsize=(9, 0.38 * len(t) + 1.6))
    colors = ["#2a9d8f" if o == "converted" else "#e9a23b" for o in t["outcome"]]
    ys = np.arange(len(t))
    ax.barh(ys, t["journeys"], color=colors)
    for y, (n, sh) in enumerate(zip(t["journeys"], t["share"], strict=True)):
        ax.text(n, y, f" {sh:.0%}", va="center", fontsize=8)
    # distinct paths keep distinct labels within each outcome (one path may lead to both)
    outcomes = t["outcome"].to_numpy()
    labels = np.empty(len(t), dtype=object)
    for o in dict.fromkeys(outcomes):
        labels[outcomes == o] = unique_short(t["path"].to_numpy()[outcomes == o], 60)
    ax.set_yticks(ys, list(labels), fontsize=8)
    ax.set_ylim(len(t) - 0.5, -0.5)
    ax.set_xlabel("journeys (label: share of the outcome's journeys)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in ("#2a9d8f", "#e9a23b")]
    ax.legend(handles, ["to conversion", "to drop-off"], loc="lower right", fontsize=8)
    ax.set_title(f"Top {kind} paths to conversion and to drop-off")
    ax.margins(x=0.12)
    return ax
