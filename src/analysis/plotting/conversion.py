"""Figures of conversion: rates per group (partially pooled) and time to conversion."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import seaborn as sns

from analysis.plotting._axes import new_ax, unique_short

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def plot_conversion_rates(
    rates: pd.DataFrame,
    by: str,
    *,
    top: int | None = None,
    overall: float | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Draw a forest plot of conversion rates per group.

    The partially pooled posterior mean with its interval (dot and bar) beside the raw rate
    (open circle), groups sorted by posterior mean, highest on top, each labelled with its
    trials.

    ``rates`` is :meth:`ConversionModel.rates` (``<by>, n, conversions, raw_rate, mean, lower,
    upper``); ``top`` keeps the groups with the most trials; ``overall`` draws a dashed line at
    that rate.

    Examples
    --------
    >>> plot_conversion_rates(model.rates("first_channel"), "first_channel")  # doctest: +SKIP
    """
    r = rates.nlargest(top, "n") if top is not None and len(rates) > top else rates
    r = r.sort_values(["mean", "n"], ascending=[True, True])
    ax = new_ax(ax, figsize=(8, 0.4 * len(r) + 1.6))
    labels = [f"{g} ({n:,})" for g, n in zip(unique_short(r[by], 40), r["n"], strict=True)]
    y = np.arange(len(r))
    ax.errorbar(
        r["mean"],
        y,
        xerr=[r["mean"] - r["lower"], r["upper"] - r["mean"]],
        fmt="o",
        color="#1d3557",
        capsize=3,
        label="posterior mean, 90% interval (partially pooled)",
    )
    ax.plot(
        r["raw_rate"],
        y,
        "o",
        mfc="none",
        mec="#e76f51",
        ms=7,
        label="raw rate (conversions / journeys)",
    )
    if overall is not None:
        ax.axvline(overall, color="grey", ls="--", lw=1, label="overall")
    ax.set_yticks(y, labels)
    ax.set_xlim(left=0)
    ax.set_xlabel("conversion rate")
    ax.set_ylabel(f"{by} (journeys)")
    ax.set_title(
        f"Conversion rate by {by}" + (f" (the {len(r)} largest)" if len(r) < len(rates) else "")
    )
    ax.legend(loc="lower right", fontsize=8)
    return ax


def plot_time_to_conversion(
    km: pd.DataFrame,
    *,
    by: str | None = None,
    model: pd.DataFrame | None = None,
    top: int = 8,
    max_days: float | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Draw the share of journeys converted by ``t`` days after their first touch.

    ``1 - S(t)`` of the Kaplan–Meier curve per group (steps; journeys not converted are censored, so the curve is
    not the share of the journeys seen), and, if given, a model's share at a few horizons (dots
    with their 90% interval, same colour).

    ``km`` is :func:`analysis.survival.kaplan_meier` (``[by], days, at_risk, …, survival``);
    ``model`` is :meth:`CureTimeModel.closed_by` (``group, days, mean, lower, upper``; with
    ``by=None`` its single group). ``top`` keeps the groups with the most journeys;
    ``max_days`` ends the axis there (and leaves out the model's dots beyond it).

    Examples
    --------
    >>> plot_time_to_conversion(kaplan_meier(tt, by="first_channel"), by="first_channel")  # doctest: +SKIP
    """
    from analysis.text import time_unit

    groups = (
        km.groupby(by, sort=False)["at_risk"].max().sort_values(ascending=False).head(top)
        if by
        else pd.Series({"all": int(km["at_risk"].max()) if len(km) else 0})
    )
    ax = new_ax(ax, figsize=(8, 4.5))
    palette = sns.color_palette("tab10", max(len(groups), 1))
    # journeys that convert within hours (sessions): the axis in hours or minutes, not 0.0 days
    k, unit = time_unit(
        max_days if max_days is not None else float(km["days"].max()) if len(km) else 1.0
    )
    names = unique_short(groups.index, 30)
    for i, ((g, n), name) in enumerate(zip(groups.items(), names, strict=True)):
        d = km[km[by] == g] if by else km
        x = np.r_[0.0, d["days"].to_numpy(float)] * k
        yv = np.r_[0.0, 1 - d["survival"].to_numpy(float)]
        ax.step(x, yv, where="post", color=palette[i], label=f"{name} ({int(n):,})")
        if model is not None:
            m = model[model["group"] == g] if by else model
            if max_days is not None:
                m = m[m["days"] <= max_days]
            if len(m):
                ax.errorbar(
                    m["days"] * k,
                    m["mean"],
                    yerr=[m["mean"] - m["lower"], m["upper"] - m["mean"]],
                    fmt="o",
                    color=palette[i],
                    ms=4,
                    capsize=2,
                )
    if max_days is not None:
        ax.set_xlim(0, max_days * k)
    ax.set_ylim(bottom=0)
    ax.set_xlabel(f"{unit} since the journey's first touch")
    ax.set_ylabel("share converted")
    shown = f", the {len(groups)} largest" if by and km[by].nunique() > len(groups) else ""
    dots = "; dots: model, 90% interval" if model is not None else ""
    ax.set_title(f"Time to conversion (Kaplan–Meier{dots}{shown})")
    ax.legend(
        fontsize=8,
        title=f"{by} (journeys)" if by else None,
        loc="upper left",
        bbox_to_anchor=(1.01, 1),
    )
    return ax
