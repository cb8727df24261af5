"""Figures of forecasts: reliability with intervals, cumulative gains, scores per group.

Each figure takes tables the forecast code or the report computed (no model here):
:func:`plot_reliability` (the reliability tables of :func:`analysis.predict.calibration_table`),
:func:`plot_gains` (cumulative gains of forecasts against outcomes)
and :func:`plot_score_distribution` (P(convert) of the journeys open now, per group).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from analysis.plotting._axes import new_ax, unique_short

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["plot_gains", "plot_reliability", "plot_score_distribution"]

_COLOURS = ("#1d3557", "#e76f51", "#2a9d8f", "#8d99ae")


def _text(value: object) -> str:
    """Return a label from data that matplotlib shows as it is (a ``$`` starts no formula)."""
    return str(value).replace("$", r"\$")


def plot_reliability(
    tables: dict[str, pd.DataFrame], *, prob: float = 0.9, ax: Axes | None = None
) -> Axes:
    """Draw the reliability curve of each forecast: mean forecast against the observed rate.

    One line per forecast (``tables``: name → :func:`analysis.predict.calibration_table`:
    ``forecast, observed, observed_low, observed_high, n``), each bin a dot sized by its
    journeys with the ``prob`` interval of its observed rate; the diagonal is a calibrated
    forecast. The forecasts are shifted a little sideways so that their intervals do not hide
    each other.
    """
    ax = new_ax(ax, figsize=(6.5, 5.5))
    top = 0.0
    for i, (name, t) in enumerate(tables.items()):
        if t.empty:
            continue
        colour = _COLOURS[i % len(_COLOURS)]
        x = t["forecast"].to_numpy(float) + (i - (len(tables) - 1) / 2) * 0.006
        y = t["observed"].to_numpy(float)
        err = np.vstack(
            [
                np.clip(y - t["observed_low"].to_numpy(float), 0, None),
                np.clip(t["observed_high"].to_numpy(float) - y, 0, None),
            ]
        )
        ax.errorbar(x, y, yerr=err, fmt="none", ecolor=colour, alpha=0.7, capsize=2, lw=1)
        sizes = 12 + 80 * np.sqrt(t["n"].to_numpy(float) / max(float(t["n"].max()), 1.0))
        ax.plot(x, y, "-", color=colour, lw=1, alpha=0.8)
        ax.scatter(
            x, y, s=sizes, color=colour, label=f"{_text(name)} ({int(t['n'].sum()):,} journeys)"
        )
        top = max(top, float(np.nanmax(t["observed_high"])), float(np.nanmax(x)))
    top = min(1.0, max(top * 1.05, 0.05))
    ax.plot([0, top], [0, top], "--", color="#555", lw=0.8, label="calibrated")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel("forecast P(convert within the horizon), mean of the bin")
    ax.set_ylabel(f"observed share converted ({prob:.0%} interval)")
    ax.set_title("Reliability: forecast against what happened")
    ax.legend(loc="upper left", fontsize=8)
    return ax


def plot_gains(
    forecasts: dict[str, tuple[Any, Any]],
    *,
    lift: dict[str, float] | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Draw cumulative gains: the share of conversions among the journeys ranked highest.

    ``forecasts``: name → ``(p, y)``, forecasts and outcomes (1 converted, 0 not). Journeys
    ranked by ``p``, highest first (ties in their order): the share of them contacted against
    the share of all conversions among them; the diagonal is a random ranking, a dotted line
    marks the top decile. ``lift`` (name → top-decile lift) goes into the legend.
    """
    ax = new_ax(ax, figsize=(6.5, 5.5))
    for i, (name, (p, y)) in enumerate(forecasts.items()):
        prob, out = np.asarray(p, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
        hits = np.concatenate([[0.0], np.cumsum(out[np.argsort(-prob, kind="stable")])])
        if hits[-1] <= 0:
            continue
        label = _text(name)
        if lift and name in lift and np.isfinite(lift[name]):
            label += f" (top decile: {lift[name]:.1f}× the average rate)"
        share = np.arange(len(prob) + 1) / max(len(prob), 1)
        ax.plot(share, hits / hits[-1], color=_COLOURS[i % len(_COLOURS)], lw=1.5, label=label)
    ax.plot([0, 1], [0, 1], "--", color="#555", lw=0.8, label="random ranking")
    ax.axvline(0.1, color="#999", lw=0.8, ls=":")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("share of journeys contacted, highest forecast first")
    ax.set_ylabel("share of the conversions among them")
    ax.set_title("Cumulative gains (lift chart)")
    ax.legend(loc="lower right", fontsize=8)
    return ax


def plot_score_distribution(
    table: pd.DataFrame,
    *,
    by: str = "segment",
    score: str = "p_convert",
    threshold: float = 0.5,
    ax: Axes | None = None,
) -> Axes:
    """Draw the forecasts of the journeys open now, one box per group, with every journey a dot.

    ``table`` has one row per open journey (``by``, ``score``); each group's label gives its
    journeys and the share at or above ``threshold`` (a dotted line). Groups sorted by their
    median forecast, highest on top. When nine in ten forecasts are under 0.1 (rare
    conversions), the axis is logarithmic.
    """
    t = table[[by, score]].dropna()
    groups = t.groupby(by, observed=True)[score]
    order = groups.median().sort_values().index.tolist()
    ax = new_ax(ax, figsize=(8, 0.55 * max(len(order), 1) + 1.8))
    data = [t.loc[t[by] == g, score].to_numpy(float) for g in order]
    if data:
        ax.boxplot(
            data,
            orientation="horizontal",
            widths=0.6,
            showfliers=False,
            medianprops={"color": "#e76f51"},
        )
        rng = np.random.default_rng(0)
        for i, d in enumerate(data, start=1):
            ax.scatter(d, i + rng.uniform(-0.18, 0.18, len(d)), s=4, color="#1d3557", alpha=0.35)
    labels = [
        f"{_text(name)} ({len(d):,}; {np.mean(d >= threshold) if len(d) else 0:.0%} ≥ {threshold:.0%})"
        for name, d in zip(unique_short(order, 40), data, strict=True)
    ]
    ax.set_yticks(np.arange(1, len(order) + 1), labels, fontsize=8)
    ax.axvline(threshold, color="#555", lw=0.8, ls=":")
    low = t[score].to_numpy(float)
    low = low[low > 0]
    if len(low) and np.quantile(low, 0.9) < 0.1:  # rare conversions: a log axis shows them apart
        ax.set_xscale("log")
        ax.set_xlim(max(float(low.min()) * 0.8, 1e-5), 1)
        xlabel = "forecast P(convert within the horizon), log scale"
    else:
        ax.set_xlim(0, 1)
        xlabel = "forecast P(convert within the horizon)"
    ax.set_xlabel(xlabel)
    ax.set_title("Open journeys' forecasts per group")
    return ax
