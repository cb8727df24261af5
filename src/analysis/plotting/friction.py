"""Figures of friction: conversions lost per touchpoint, a step's conversion over time."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from analysis.plotting._axes import new_ax

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def plot_touchpoint_friction(funnel: pd.DataFrame, *, n: int = 12, ax: Axes | None = None) -> Axes:
    """Draw conversions lost per touchpoint, the ``n`` compared touchpoints that lose most.

    Posterior mean (bar) and 90% interval (whisker), for one segment (filter ``funnel`` first).

    ``funnel`` is :func:`analysis.friction.touchpoint_funnel`: ``touchpoint, compared_at, lost,
    lost_low, lost_high, compared``. Red: the interval excludes zero (a loss the data support).
    """
    from analysis.text import short_labels

    t = funnel[funnel["compared"].astype(bool)].nlargest(n, "lost").iloc[::-1]
    ax = new_ax(ax, figsize=(8, 0.4 * max(len(t), 1) + 1.6))
    ys = np.arange(len(t))
    sure = (t["lost_low"] > 0).to_numpy()
    ax.barh(ys, t["lost"], color=np.where(sure, "#e76f51", "#8d99ae"))
    err = np.vstack(
        [(t["lost"] - t["lost_low"]).clip(lower=0), (t["lost_high"] - t["lost"]).clip(lower=0)]
    )
    ax.errorbar(t["lost"], ys, xerr=err, fmt="none", ecolor="black", capsize=3, lw=1)
    labels = [f"{tp}  (at {at})" for tp, at in zip(t["touchpoint"], t["compared_at"], strict=True)]
    ax.set_yticks(ys, short_labels(labels, 50), fontsize=8)
    ax.axvline(0, color="#555", lw=0.8)
    ax.set_xlabel(
        "conversions lost (vs journeys that reached the same step without it; 90% interval)"
    )
    ax.set_title("Friction by touchpoint")
    return ax


def plot_step_series(
    series: pd.DataFrame,
    *,
    step: str,
    segment: str = "all",
    level: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Draw the conversion over time of the journeys that reached ``step`` (one segment).

    Each bin's rate (dots), the baseline and its band (the range a bin of that size shows
    without an incident), incident bins shaded.

    ``series`` is :func:`analysis.friction.incidents.step_series` (``step, segment, bin, rate,
    baseline, band_low, band_high, incident, mature``); ``level`` ("stage" or "touchpoint") tells a
    stage from a touchpoint of the same name.
    """
    keep = (series["step"].astype(str) == str(step)) & (
        series["segment"].astype(str) == str(segment)
    )
    if level is not None and "level" in series:
        keep &= series["level"].astype(str) == str(level)
    s = series[keep]
    s = s.sort_values("bin")
    ax = new_ax(ax, figsize=(9, 3.6))
    if s.empty:
        ax.text(0.5, 0.5, "no scored bins", ha="center", va="center", transform=ax.transAxes)
        return ax
    x = pd.to_datetime(s["bin"])
    ax.fill_between(
        x,
        s["band_low"],
        s["band_high"],
        color="#a8dadc",
        alpha=0.6,
        step="mid",
        label="expected range (90%)",
    )
    ax.plot(x, s["baseline"], color="#457b9d", lw=1.2, label="baseline")
    inc = s["incident"].astype(bool).to_numpy()
    ax.scatter(x[~inc], s["rate"][~inc], color="#1d3557", s=14, label="conversion", zorder=3)
    if inc.any():
        ax.scatter(
            x[inc], s["rate"][inc], color="#e63946", s=22, label="during the incident", zorder=4
        )
        width = (x.diff().median() or pd.Timedelta(days=1)) / 2
        for b in x[inc]:
            ax.axvspan(b - width, b + width, color="#e63946", alpha=0.08, lw=0)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("conversion after reaching it")
    ax.set_title(f"{step}: conversion over time, {segment}")
    ax.legend(fontsize=8, loc="lower left")
    fig = ax.get_figure()
    assert fig is not None  # an Axes drawn on is in a figure
    fig.autofmt_xdate()

    return ax
