"""Figures of journey patterns as TraMineR draws sequences (issue 20).

Each figure takes tables (no model here) and draws one panel per pattern with the same colour
for a state in every panel and one legend for the figure, as TraMineR's ``seqplot(group=)``:

- :func:`plot_state_distribution` (TraMineR's ``seqdplot``, a chronogram): at each position of
  the sequence, the share of the pattern's journeys in each state, stacked; journeys that have
  ended by then are the grey part on top (TraMineR draws missing positions grey);
- :func:`plot_sequence_index` (``seqIplot``): one row per journey, one cell per position
  coloured by its state, rows sorted from the first state on; a random sample of rows where a
  pattern has more than ``max_rows`` journeys (the panel says so);
- :func:`plot_representatives` (``seqrplot``): each pattern's representative sequences, a
  row's height proportional to the journeys it stands for;
- :func:`plot_pattern_shares`: the share of each pattern in each segment (rows sum to 1), with
  its interval written in the cell.

The sequence tables hold distinct sequences with a count (``weight``), so a million journeys
with a few hundred distinct stage sequences draw as fast as a few hundred.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import matplotlib.colors
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from analysis.plotting._axes import new_ax, unique_short
from analysis.schema import PATH_SEP

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "ENDED",
    "plot_pattern_shares",
    "plot_representatives",
    "plot_sequence_index",
    "plot_state_distribution",
    "state_colours",
]

#: The grey part of a state distribution: journeys that have ended before the position.
ENDED = "(ended)"
_ENDED_COLOUR = "#e0e0e0"
# RColorBrewer's Accent (TraMineR's default palette up to 8 states), then Set3
_ACCENT = ("#7fc97f", "#beaed4", "#fdc086", "#ffff99", "#386cb0", "#f0027f", "#bf5b17", "#666666")
_SET3 = (
    "#8dd3c7",
    "#ffffb3",
    "#bebada",
    "#fb8072",
    "#80b1d3",
    "#fdb462",
    "#b3de69",
    "#fccde5",
    "#d9d9d9",
    "#bc80bd",
    "#ccebc5",
    "#ffed6f",
)


def _text(value: object) -> str:
    """Return a label from data that matplotlib shows as it is (a ``$`` starts no formula)."""
    return str(value).replace("$", r"\$")


def state_colours(states: Sequence[Any]) -> dict[str, str]:
    """Return a colour per state, in the order given (the same in every panel and figure).

    TraMineR's defaults: RColorBrewer's Accent up to 8 states, Set3 up to 12, else tab20.
    """
    names = [str(s) for s in states]
    if len(names) <= len(_ACCENT):
        pal: Sequence[str] = _ACCENT
    elif len(names) <= len(_SET3):
        pal = _SET3
    else:
        cmap = plt.get_cmap("tab20")
        pal = [matplotlib.colors.to_hex(cmap(i % 20)) for i in range(len(names))]
    return {s: pal[i] for i, s in enumerate(names)}


def _prepare(
    sequences: pd.DataFrame,
    pattern: str,
    sequence: str,
    weight: str | None,
    states: Sequence[Any] | None,
) -> tuple[pd.DataFrame, list[str]]:
    need = [c for c in (pattern, sequence, weight) if c and c not in sequences.columns]
    if need:
        raise ValueError(
            f"pattern figures need column(s) {need}; the table has {list(sequences.columns)}"
        )
    t = pd.DataFrame(
        {
            "pattern": sequences[pattern].to_numpy(),
            "tokens": [
                [] if pd.isna(s) or s == "" else str(s).split(PATH_SEP) for s in sequences[sequence]
            ],
            "weight": sequences[weight].to_numpy(float) if weight else 1.0,
        }
    )
    seen = list(dict.fromkeys(tok for toks in t["tokens"] for tok in toks))
    order = [str(s) for s in states] if states is not None else []
    order += [s for s in seen if s not in order]
    return t, order


def _positions(t: pd.DataFrame, given: int | None, *, quantile: float = 0.9) -> int:
    """Return the positions to draw: ``given``, else the ``quantile`` of the journeys' lengths.

    Between 5 and 30 positions (weighted by journeys): long tails do not squeeze the figure.
    """
    if given is not None:
        return max(int(given), 1)
    lengths = np.array([len(x) for x in t["tokens"]], dtype=float)
    w = t["weight"].to_numpy(float) * np.ones(len(t))
    if not len(lengths) or w.sum() <= 0:
        return 5
    order = np.argsort(lengths)
    cum = np.cumsum(w[order]) / w.sum()
    at = lengths[order][min(int(np.searchsorted(cum, quantile - 1e-12)), len(order) - 1)]
    return int(min(max(at, 5), 30))


def _empty(what: str) -> Figure:
    """Return a figure that says there is nothing to draw (no journey has a sequence)."""
    fig, ax = plt.subplots(figsize=(6, 1.2))
    ax.text(0.5, 0.5, f"No {what}: no journey has a sequence.", ha="center", va="center")
    ax.axis("off")
    return fig


def _panels(
    patterns: Sequence[Any], ncols: int, height: float, *, sharey: bool = False
) -> tuple[Figure, list[Axes]]:
    k = max(len(patterns), 1)
    cols = min(ncols, k)
    rows = math.ceil(k / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(4.2 * cols, height * rows + 0.9), squeeze=False, sharey=sharey
    )
    flat = list(axes.ravel())
    for ax in flat[k:]:
        ax.set_visible(False)
    return fig, flat[:k]


def _wrap(label: str, width: int = 38) -> str:
    """Return ``label`` on at most two lines of ``width`` characters (start … end beyond)."""
    import textwrap

    text = unique_short([label], 2 * width - 6)[0]  # slack: words rarely fill a line
    return _text("\n".join(textwrap.wrap(text, width, break_on_hyphens=False)[:2]))


def _share(x: float) -> str:
    """Return a share as a percentage; "<1%" rather than a misleading "0%"."""
    return "<1%" if 0 < x < 0.005 else f"{x:.0%}"


def _title(label: str, n: float, total: float) -> str:
    return f"{_wrap(label)}\nn={n:,.0f} ({_share(n / max(total, 1e-12))})"


def _legend(
    fig: Figure, colours: Mapping[str, Any], extra: Mapping[str, Any] | None = None
) -> None:
    items = {**colours, **(extra or {})}
    handles = [
        Patch(facecolor=c, edgecolor="#555", lw=0.5, label=_text(s)) for s, c in items.items()
    ]
    fig.legend(
        handles=handles,
        loc="lower center",
        ncol=min(len(handles), 8),
        frameon=False,
        fontsize=9,
        bbox_to_anchor=(0.5, 0.0),
    )
    fig.tight_layout(rect=(0, 0.08, 1, 1))


def plot_state_distribution(
    sequences: pd.DataFrame,
    *,
    pattern: str = "pattern",
    sequence: str = "sequence",
    weight: str | None = None,
    states: Sequence[Any] | None = None,
    labels: Mapping[Any, str] | None = None,
    max_positions: int | None = None,
    ncols: int = 3,
    position_label: str = "position in the journey (stage runs)",
) -> Figure:
    """Draw each pattern's state distribution (TraMineR's ``seqdplot``), one panel per pattern.

    ``sequences``: one row per journey (or per distinct sequence with its count in ``weight``):
    the ``pattern`` and the ``sequence`` (states joined by " > "). At each position 1 …
    ``max_positions`` (default: 90% of the journeys are no longer; 5 to 30) a bar stacks the share of the pattern's journeys in each state, and the
    share that has ended before it (grey, :data:`ENDED`). Panel titles: the pattern's label
    (``labels``), its journeys and their share of all. ``states`` fixes the order and colours
    (:func:`state_colours`; states not listed follow in order of appearance).
    """
    t, order = _prepare(sequences, pattern, sequence, weight, states)
    max_positions = _positions(t, max_positions)
    colours = state_colours(order)
    pats = sorted(pd.unique(t["pattern"]), key=str) if labels is None else _ordered(t, labels)
    if not pats:
        return _empty("sequences to draw")
    fig, axes = _panels(pats, ncols, 3.0, sharey=True)
    total = float(t["weight"].sum())
    x = np.arange(1, max_positions + 1)
    code = {s: i for i, s in enumerate(order)}
    for ax, p in zip(axes, pats, strict=True):
        mine = t[t["pattern"] == p]
        n = float(mine["weight"].sum())
        counts = np.zeros((len(order), max_positions))
        for toks, w in zip(mine["tokens"], mine["weight"], strict=True):
            for pos, tok in enumerate(toks[:max_positions]):
                counts[code[tok], pos] += w
        share = counts / max(n, 1e-12)
        bottom = np.zeros(max_positions)
        for i, s in enumerate(order):
            ax.bar(
                x, share[i], bottom=bottom, width=1.0, color=colours[s], edgecolor="#555",
                lw=0.3, label=s,
            )  # fmt: skip
            bottom += share[i]
        ax.bar(
            x, np.clip(1 - bottom, 0, 1), bottom=bottom, width=1.0, color=_ENDED_COLOUR,
            edgecolor="#bbb", lw=0.3, label=ENDED,
        )  # fmt: skip
        ax.set_xlim(0.5, max_positions + 0.5)
        ax.set_ylim(0, 1)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=10))
        ax.set_title(_title(_label(labels, p), n, total), fontsize=10)
        ax.set_xlabel(position_label, fontsize=8)
    axes[0].set_ylabel("share of the pattern's journeys")
    _legend(fig, colours, {ENDED: _ENDED_COLOUR})
    return fig


def _label(labels: Mapping[Any, str] | None, p: Any) -> str:
    return str((labels or {}).get(p, p))


def _ordered(t: pd.DataFrame, labels: Mapping[Any, str]) -> list[Any]:
    """Return the patterns in the order of ``labels``, then any others."""
    present = list(pd.unique(t["pattern"]))
    first = [p for p in labels if p in present]
    return first + sorted((p for p in present if p not in first), key=str)


def plot_sequence_index(
    sequences: pd.DataFrame,
    *,
    pattern: str = "pattern",
    sequence: str = "sequence",
    weight: str | None = None,
    states: Sequence[Any] | None = None,
    labels: Mapping[Any, str] | None = None,
    max_positions: int | None = None,
    max_rows: int = 300,
    ncols: int = 3,
    seed: int = 0,
    position_label: str = "position in the journey (stage runs)",
) -> Figure:
    """Draw each pattern's journeys one row each (TraMineR's ``seqIplot``), one panel per pattern.

    A row's cells are its states at positions 1 … ``max_positions`` (blank after it ends; default
    as :func:`plot_state_distribution`); rows
    are sorted by their states from the first position on. A pattern with more than
    ``max_rows`` journeys shows a random sample of ``max_rows`` (drawn in proportion to
    ``weight``), and its y label says so.
    """
    t, order = _prepare(sequences, pattern, sequence, weight, states)
    max_positions = _positions(t, max_positions)
    colours = state_colours(order)
    pats = sorted(pd.unique(t["pattern"]), key=str) if labels is None else _ordered(t, labels)
    if not pats:
        return _empty("sequences to draw")
    fig, axes = _panels(pats, ncols, 3.2)
    total = float(t["weight"].sum())
    code = {s: i for i, s in enumerate(order)}
    cmap = ListedColormap([colours[s] for s in order] + ["#ffffff"])
    rng = np.random.default_rng(seed)
    for ax, p in zip(axes, pats, strict=True):
        mine = t[t["pattern"] == p].reset_index(drop=True)
        w = mine["weight"].to_numpy(float)
        n = float(w.sum())
        if n > max_rows:
            rows = rng.choice(len(mine), size=max_rows, p=w / n)
            sampled = True
        else:
            rows = np.repeat(np.arange(len(mine)), np.round(w).astype(int))
            sampled = False
        grid = np.full((len(rows), max_positions), len(order))
        for r, i in enumerate(rows):
            toks = mine["tokens"].iloc[i][:max_positions]
            grid[r, : len(toks)] = [code[tok] for tok in toks]
        if len(grid):
            grid = grid[np.lexsort(grid.T[::-1])]
        ax.imshow(
            grid,
            aspect="auto",
            interpolation="nearest",
            cmap=cmap,
            vmin=-0.5,
            vmax=len(order) + 0.5,
            extent=(0.5, max_positions + 0.5, len(grid), 0),
        )
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=10))
        ax.set_title(_title(_label(labels, p), n, total), fontsize=10)
        ax.set_xlabel(position_label, fontsize=8)
        ax.set_ylabel(
            f"{len(grid):,} of {n:,.0f} journeys (random sample)" if sampled else "journeys",
            fontsize=8,
        )
    _legend(fig, colours)
    return fig


def plot_representatives(
    representatives: pd.DataFrame,
    *,
    pattern: str = "pattern",
    sequence: str = "sequence",
    journeys: str = "journeys",
    coverage: str | None = None,
    totals: Mapping[Any, float] | None = None,
    states: Sequence[Any] | None = None,
    labels: Mapping[Any, str] | None = None,
    max_positions: int | None = None,
    ncols: int = 3,
    position_label: str = "position in the journey (stage runs)",
) -> Figure:
    """Draw each pattern's representative sequences (TraMineR's ``seqrplot``).

    ``representatives``: one row per representative sequence: its ``pattern``, ``sequence`` and
    the journeys it stands for (column ``journeys``: e.g. the typology's ``density``, the
    journeys in its neighbourhood, as TraMineR's bar heights); rows are drawn in the table's
    order (most representative on top), each as tall as its journeys. ``coverage``: a column of
    the cumulative share of the pattern's journeys the representatives so far cover (the
    typology's ``coverage``; the title gives the last); else, with ``totals`` (the pattern's
    journeys), the title gives the representatives' journeys as a share of them.
    """
    t, order = _prepare(representatives, pattern, sequence, journeys, states)
    if coverage is not None:
        if coverage not in representatives.columns:
            raise ValueError(f"plot_representatives: no column {coverage!r}")
        t["coverage"] = representatives[coverage].to_numpy(float)
    max_positions = _positions(t, max_positions, quantile=1.0)
    colours = state_colours(order)
    pats = list(pd.unique(t["pattern"])) if labels is None else _ordered(t, labels)
    if not pats:
        return _empty("sequences to draw")
    fig, axes = _panels(pats, ncols, 2.6)
    for ax, p in zip(axes, pats, strict=True):
        mine = t[t["pattern"] == p]
        top = 0.0
        for toks, w in zip(mine["tokens"], mine["weight"], strict=True):
            for pos, tok in enumerate(toks[:max_positions]):
                ax.broken_barh(
                    [(pos + 0.5, 1.0)], (top, w), facecolors=colours[tok], edgecolor="#555", lw=0.4
                )
            top += w
        n = float(totals[p]) if totals is not None and totals.get(p) else None
        of_n = f" of n={n:,.0f}" if n else ""
        if coverage is not None:
            said = f"cover {_share(float(mine['coverage'].iloc[-1]))}{of_n}"
        elif n:
            said = f"{_share(float(mine['weight'].sum()) / n)}{of_n}"
        else:
            said = f"of {float(mine['weight'].sum()):,.0f} journeys"
        ax.set_title(
            f"{_wrap(_label(labels, p))}\n{len(mine)} representative(s) {said}", fontsize=10
        )
        ax.set_xlim(0.5, max_positions + 0.5)
        ax.set_ylim(max(top, 1.0), 0)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=10))
        ax.set_xlabel(position_label, fontsize=8)
    axes[0].set_ylabel(
        "journeys in each one's neighbourhood" if coverage is not None else "journeys represented"
    )
    _legend(fig, colours)
    return fig


def plot_pattern_shares(
    shares: pd.DataFrame,
    *,
    by: str = "segment",
    pattern: str = "archetype",
    labels: Mapping[Any, str] | None = None,
    prob: float = 0.9,
    ax: Axes | None = None,
) -> Axes:
    """Draw the share of each pattern in each group (rows) as a heat map, intervals in the cells.

    ``shares``: ``by``, ``pattern``, ``mean``, ``lower``, ``upper`` (``JourneyPatterns.shares``).
    A cell reads "42%" over "[35–49%]" (the ``prob`` interval).
    """
    need = [c for c in (by, pattern, "mean", "lower", "upper") if c not in shares.columns]
    if need:
        raise ValueError(f"plot_pattern_shares needs column(s) {need}")
    mean = shares.pivot(index=by, columns=pattern, values="mean")
    lo = shares.pivot(index=by, columns=pattern, values="lower").reindex_like(mean)
    hi = shares.pivot(index=by, columns=pattern, values="upper").reindex_like(mean)
    ax = new_ax(ax, figsize=(1.6 + 1.5 * mean.shape[1], 0.9 + 0.55 * mean.shape[0]))
    ax.imshow(mean.to_numpy(float), cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for i in range(mean.shape[0]):
        for j in range(mean.shape[1]):
            m = mean.iat[i, j]
            if pd.isna(m):
                continue
            ax.text(
                j,
                i,
                f"{m:.0%}\n[{lo.iat[i, j]:.0%}–{hi.iat[i, j]:.0%}]",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if m > 0.55 else "#222",
            )
    ax.set_xticks(range(mean.shape[1]))
    ax.set_xticklabels([_wrap(_label(labels, c), 22) for c in mean.columns], fontsize=8)
    ax.set_yticks(range(mean.shape[0]))
    ax.set_yticklabels([_text(r) for r in mean.index])
    ax.set_xlabel("pattern")
    ax.set_ylabel(_text(by))
    ax.set_title(f"Share of each pattern per {_text(by)} ({prob:.0%} interval)")
    return ax
