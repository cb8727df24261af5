"""Figures of the stage-transition and dwell-time models.

Transitions, conversion, friction, time in stage, the posterior predictive check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from analysis.plotting._axes import new_ax

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def plot_transition_heatmap(
    probs: pd.DataFrame, *, segment: str | None = None, ax: Axes | None = None, cmap: str = "Blues"
) -> Axes:
    """Draw the transition probabilities of one segment as a heatmap.

    Each cell ``mean`` with its interval ``[lower, upper]`` below it; forbidden moves are blank.

    ``probs`` is :meth:`StageTransitionModel.transition_probabilities` (``segment, from_stage,
    to_stage, n, mean, lower, upper``); ``segment`` picks one (default: the first).
    """
    segment = segment if segment is not None else probs["segment"].iloc[0]
    t = probs[probs["segment"] == segment]
    rows = list(dict.fromkeys(t["from_stage"]))
    cols = list(dict.fromkeys(t["to_stage"]))
    mean = t.pivot(index="from_stage", columns="to_stage", values="mean").reindex(
        index=rows, columns=cols
    )
    lab = t.assign(
        label=[
            f"{m:.2f}\n[{lo:.2f}, {hi:.2f}]"
            for m, lo, hi in zip(t["mean"], t["lower"], t["upper"], strict=True)
        ]
    )
    labels = (
        lab.pivot(index="from_stage", columns="to_stage", values="label")
        .reindex(index=rows, columns=cols)
        .fillna("")
    )
    ax = new_ax(ax, figsize=(1.5 * len(cols) + 2, 0.9 * len(rows) + 1.5))
    sns.heatmap(
        mean,
        annot=labels.to_numpy(),
        fmt="",
        cmap=cmap,
        vmin=0,
        vmax=1,
        cbar=False,
        linewidths=0.5,
        ax=ax,
        annot_kws={"fontsize": 8},
    )
    ax.set_xlabel("to")
    ax.set_ylabel("from")
    ax.set_title(f"Transition probabilities, {segment} (mean and 90% interval)")
    return ax


def plot_conversion_forest(
    conv: pd.DataFrame, *, highlight: list[str] | None = None, ax: Axes | None = None
) -> Axes:
    """Draw a forest plot of P(eventually convert) from each state (rows).

    One marker per segment with its 90% interval.

    ``conv`` is ``interval_table(model.conversion_probability())`` (``segment, state, mean,
    lower, upper``); ``highlight`` draws those segments bold.
    """
    states = list(dict.fromkeys(conv["state"]))
    segments = list(dict.fromkeys(conv["segment"]))
    ax = new_ax(ax, figsize=(8, 0.55 * len(states) * max(len(segments), 2) / 2 + 1.5))
    palette = sns.color_palette("tab10", len(segments))
    step = 0.8 / max(len(segments), 1)
    for i, seg in enumerate(segments):
        d = conv[conv["segment"] == seg].set_index("state").reindex(states)
        y = pd.Series(range(len(states)), dtype=float) - 0.4 + step * (i + 0.5)
        bold = highlight is not None and seg in highlight
        ax.errorbar(
            d["mean"],
            y,
            xerr=[d["mean"] - d["lower"], d["upper"] - d["mean"]],
            fmt="o",
            color=palette[i],
            label=seg,
            lw=2.5 if bold else 1.2,
            ms=7 if bold else 4,
        )
    ax.set_yticks(range(len(states)), states)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("probability of converting (90% interval)")
    ax.set_title("Conversion probability from each stage")
    ax.legend(loc="lower right", fontsize=8)
    return ax


def plot_friction(
    friction: pd.DataFrame, *, segment: str | None = None, ax: Axes | None = None
) -> Axes:
    """Draw the gain in conversion probability if each stage's drop-off fell.

    Bars with 90% intervals, annotated with the probability that the stage is the worst.

    ``friction`` is :meth:`StageTransitionModel.friction` (``segment, stage, mean, lower, upper,
    p_worst, rank``).
    """
    segment = segment if segment is not None else friction["segment"].iloc[0]
    f = friction[friction["segment"] == segment].sort_values("mean")
    ax = new_ax(ax, figsize=(7, 0.5 * len(f) + 1.5))
    colors = ["#e76f51" if r == 1 else "#8d99ae" for r in f["rank"]]
    ax.barh(
        f["stage"],
        f["mean"],
        xerr=[f["mean"] - f["lower"], f["upper"] - f["mean"]],
        color=colors,
        capsize=3,
    )
    for y, (m, pw) in enumerate(zip(f["upper"], f["p_worst"], strict=True)):
        ax.text(m, y, f"  P(worst) = {pw:.0%}", va="center", fontsize=8)
    ax.set_xlabel("gain in P(convert) if the stage's drop-off fell (90% interval)")
    ax.set_title(f"Friction points, {segment}")
    ax.margins(x=0.3)
    return ax


def plot_dwell_curves(
    survival: pd.DataFrame,
    *,
    segment: str | None = None,
    empirical: pd.DataFrame | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Draw P(still in the stage after t days) per stage.

    Model mean with its 90% band and, if given, the empirical Kaplan-Meier curve (dashed) as a
    check.

    ``survival`` is :meth:`DwellTimeModel.survival`; ``empirical`` has ``segment, stage, days,
    survival`` (:func:`analysis.models.transitions.kaplan_meier`).
    """
    from analysis.text import time_unit

    segment = segment if segment is not None else survival["segment"].iloc[0]
    s = survival[survival["segment"] == segment]
    ax = new_ax(ax, figsize=(8, 4.5))
    # times below a day in hours (below an hour in minutes): not a curve squeezed against 0 days
    k, unit = time_unit(float(s["days"].max()) if len(s) else 1.0)
    palette = dict(zip(dict.fromkeys(s["stage"]), sns.color_palette("tab10"), strict=False))
    for stage, d in s.groupby("stage", sort=False):
        ax.plot(d["days"] * k, d["mean"], color=palette[stage], label=stage)
        ax.fill_between(d["days"] * k, d["lower"], d["upper"], color=palette[stage], alpha=0.2)
        if empirical is not None:
            e = empirical[(empirical["segment"] == segment) & (empirical["stage"] == stage)]
            ax.step(e["days"] * k, e["survival"], where="post", color=palette[stage], ls="--", lw=1)
    ax.set_xlabel(f"{unit} in stage")
    ax.set_ylabel("P(still in stage)")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"Time in stage, {segment} (model with 90% band; dashed: Kaplan-Meier)")
    ax.legend()
    return ax


def plot_ppc(ppc: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Draw the posterior predictive check, one panel per statistic.

    The observed statistic (cross) against its predictive 90% interval (bar), per segment; the
    panels side by side (on ``ax``'s figure).

    ``ppc`` is :meth:`StageTransitionModel.posterior_predictive`.
    """
    stats = list(dict.fromkeys(ppc["statistic"]))
    if ax is None:
        _, axes = plt.subplots(
            1,
            len(stats),
            figsize=(5 * len(stats), 0.5 * ppc["segment"].nunique() + 1.8),
            sharey=True,
        )
    else:
        axes = [ax] if len(stats) == 1 else ax.figure.subplots(1, len(stats))
    axes = list(getattr(axes, "flat", axes))
    for a, stat in zip(axes, stats, strict=True):
        d = ppc[ppc["statistic"] == stat]
        y = range(len(d))
        a.hlines(
            y,
            d["predicted_lower"],
            d["predicted_upper"],
            color="#457b9d",
            lw=6,
            alpha=0.5,
            label="predicted 90%",
        )
        a.plot(d["observed"], y, "x", color="#e63946", ms=9, mew=2, label="observed")
        a.set_yticks(list(y), d["segment"])
        a.set_title(stat)
        a.margins(y=0.15)
    axes[0].legend(
        loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=8, frameon=False
    )
    axes[0].figure.suptitle("Posterior predictive check: observed (x) vs predicted 90% interval")
    axes[0].figure.tight_layout()
    return axes[0]
