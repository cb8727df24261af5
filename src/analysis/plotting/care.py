"""Figures of the Care stage: the repeat-purchase tracking plot and the P(alive) matrix.

Each figure takes a table the Care model computed (no model here):
:func:`plot_tracking` (the cumulative repeat purchases of :func:`analysis.models.care.tracking_curve`,
actual against expected, as Fader, Hardie & Lee's Figure 3) and :func:`plot_p_alive_matrix`
(the frequency × recency grid of :func:`analysis.models.care.p_alive_matrix`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from analysis.plotting._axes import new_ax

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["plot_p_alive_matrix", "plot_tracking"]

_ACTUAL, _EXPECTED = "#1d3557", "#e76f51"


def plot_tracking(
    curve: pd.DataFrame,
    *,
    weekly: bool = False,
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Draw cumulative repeat purchases per week: actual against the model's expectation.

    Parameters
    ----------
    curve : DataFrame
        ``week, period, actual, expected`` and optionally ``expected_lo, expected_hi`` (the
        interval is shaded when present and not missing); with ``weekly``, ``actual_weekly,
        expected_weekly``.
    weekly : bool
        Draw the purchases of each week instead of the cumulative count.
    title : str, optional
        Figure title.
    ax : Axes, optional
        Where to draw; a new figure when None.

    Returns
    -------
    Axes
        The end of the calibration period is the dashed vertical line.
    """
    ax = new_ax(ax)
    suffix = "_weekly" if weekly else ""
    weeks = curve["week"].to_numpy()
    ax.plot(weeks, curve["actual" + suffix], color=_ACTUAL, lw=2, label="actual")
    ax.plot(
        weeks, curve["expected" + suffix], color=_EXPECTED, lw=2, ls="--", label="model expected"
    )
    if not weekly and {"expected_lo", "expected_hi"} <= set(curve.columns):
        lo, hi = curve["expected_lo"].to_numpy(), curve["expected_hi"].to_numpy()
        if np.isfinite(lo).all() and np.isfinite(hi).all():
            ax.fill_between(weeks, lo, hi, color=_EXPECTED, alpha=0.2, label="90% interval")
    calibration = curve.loc[curve["period"] == "calibration", "week"]
    if len(calibration) and len(calibration) < len(curve):
        boundary = float(calibration.max()) + 0.5
        ax.axvline(boundary, color="grey", ls=":", lw=1.5)
        top = ax.get_ylim()[1]
        ax.text(boundary - 0.5, top * 0.97, "calibration ", ha="right", va="top", color="grey")
        ax.text(boundary + 0.5, top * 0.97, " holdout", ha="left", va="top", color="grey")
    ax.set_xlabel("week")
    ax.set_ylabel("repeat purchases per week" if weekly else "cumulative repeat purchases")
    ax.set_xlim(weeks.min(), weeks.max())
    ax.legend(loc="lower right" if not weekly else "upper right", frameon=False)
    if title:
        ax.set_title(title)
    return ax


def plot_p_alive_matrix(
    matrix: pd.DataFrame, *, title: str | None = None, ax: Axes | None = None
) -> Axes:
    """Draw P(alive) as a heat map over frequency (rows) and recency (columns).

    Parameters
    ----------
    matrix : DataFrame
        Long table ``frequency, recency, p_alive`` (and ``T``, shown in the title).
        Cells without a value (frequency 0 with recency > 0 cannot happen) are blank.
    title : str, optional
        Figure title; default names T.
    ax : Axes, optional
        Where to draw; a new figure when None.

    Returns
    -------
    Axes
        High frequency with low recency (bought often, but long ago) is dark: probably gone.
    """
    ax = new_ax(ax, figsize=(7, 5.5))
    grid = matrix.pivot_table(index="frequency", columns="recency", values="p_alive")
    freq, rec = grid.index.to_numpy(float), grid.columns.to_numpy(float)
    image = ax.imshow(
        np.ma.masked_invalid(grid.to_numpy(float)),
        origin="lower",
        aspect="auto",
        cmap="viridis",
        vmin=0,
        vmax=1,
        extent=(rec.min(), rec.max(), freq.min() - 0.5, freq.max() + 0.5),
    )
    ax.figure.colorbar(image, ax=ax, label="P(alive)")
    ax.set_xlabel("recency (time of last purchase since the first)")
    ax.set_ylabel("frequency (repeat purchases)")
    if title is None and "T" in matrix.columns:
        title = f"P(alive) of customers observed T = {float(matrix['T'].iloc[0]):.1f}"
    if title:
        ax.set_title(title)
    return ax
