"""Figures only; no model or data code. Each ``plot_*`` takes a result table, draws on ``ax``
(a new one when None) and returns the Axes."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
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


# ------------------------------------------------------------------ stage-transition model
def plot_transition_heatmap(probs: pd.DataFrame, *, segment: str | None = None, ax=None,
                            cmap: str = "Blues") -> plt.Axes:
    """Transition probabilities of one segment as a heatmap, each cell ``mean`` with its
    interval ``[lower, upper]`` below it; forbidden moves are blank.

    ``probs`` is :meth:`StageTransitionModel.transition_probabilities` (``segment, from_stage,
    to_stage, n, mean, lower, upper``); ``segment`` picks one (default: the first).
    """
    segment = segment if segment is not None else probs["segment"].iloc[0]
    t = probs[probs["segment"] == segment]
    rows = list(dict.fromkeys(t["from_stage"]))
    cols = list(dict.fromkeys(t["to_stage"]))
    mean = t.pivot(index="from_stage", columns="to_stage", values="mean").reindex(index=rows, columns=cols)
    lab = t.assign(label=[f"{m:.2f}\n[{lo:.2f}, {hi:.2f}]" for m, lo, hi in zip(t["mean"], t["lower"], t["upper"], strict=True)])
    labels = lab.pivot(index="from_stage", columns="to_stage", values="label").reindex(index=rows, columns=cols).fillna("")
    ax = _ax(ax, figsize=(1.5 * len(cols) + 2, 0.9 * len(rows) + 1.5))
    sns.heatmap(mean, annot=labels.to_numpy(), fmt="", cmap=cmap, vmin=0, vmax=1, cbar=False,
                linewidths=0.5, ax=ax, annot_kws={"fontsize": 8})
    ax.set_xlabel("to")
    ax.set_ylabel("from")
    ax.set_title(f"Transition probabilities, {segment} (mean and 90% interval)")
    return ax


def plot_conversion_forest(conv: pd.DataFrame, *, highlight: list[str] | None = None, ax=None) -> plt.Axes:
    """Forest plot: P(eventually convert) from each state (rows), one marker per segment with
    its 90% interval.

    ``conv`` is ``interval_table(model.conversion_probability())`` (``segment, state, mean,
    lower, upper``); ``highlight`` draws those segments bold.
    """
    states = list(dict.fromkeys(conv["state"]))
    segments = list(dict.fromkeys(conv["segment"]))
    ax = _ax(ax, figsize=(8, 0.55 * len(states) * max(len(segments), 2) / 2 + 1.5))
    palette = sns.color_palette("tab10", len(segments))
    step = 0.8 / max(len(segments), 1)
    for i, seg in enumerate(segments):
        d = conv[conv["segment"] == seg].set_index("state").reindex(states)
        y = pd.Series(range(len(states)), dtype=float) - 0.4 + step * (i + 0.5)
        bold = highlight is not None and seg in highlight
        ax.errorbar(d["mean"], y, xerr=[d["mean"] - d["lower"], d["upper"] - d["mean"]], fmt="o",
                    color=palette[i], label=seg, lw=2.5 if bold else 1.2, ms=7 if bold else 4)
    ax.set_yticks(range(len(states)), states)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("probability of converting (90% interval)")
    ax.set_title("Conversion probability from each stage")
    ax.legend(loc="lower right", fontsize=8)
    return ax


def plot_friction(friction: pd.DataFrame, *, segment: str | None = None, ax=None) -> plt.Axes:
    """Gain in conversion probability if each stage's drop-off fell (bars with 90% intervals),
    annotated with the probability that the stage is the worst.

    ``friction`` is :meth:`StageTransitionModel.friction` (``segment, stage, mean, lower, upper,
    p_worst, rank``).
    """
    segment = segment if segment is not None else friction["segment"].iloc[0]
    f = friction[friction["segment"] == segment].sort_values("mean")
    ax = _ax(ax, figsize=(7, 0.5 * len(f) + 1.5))
    colors = ["#e76f51" if r == 1 else "#8d99ae" for r in f["rank"]]
    ax.barh(f["stage"], f["mean"], xerr=[f["mean"] - f["lower"], f["upper"] - f["mean"]], color=colors, capsize=3)
    for y, (m, pw) in enumerate(zip(f["upper"], f["p_worst"], strict=True)):
        ax.text(m, y, f"  P(worst) = {pw:.0%}", va="center", fontsize=8)
    ax.set_xlabel("gain in P(convert) if the stage's drop-off fell (90% interval)")
    ax.set_title(f"Friction points, {segment}")
    ax.margins(x=0.3)
    return ax


def plot_dwell_curves(survival: pd.DataFrame, *, segment: str | None = None, empirical: pd.DataFrame | None = None,
                      ax=None) -> plt.Axes:
    """P(still in the stage after t days) per stage: model mean with its 90% band and, if given,
    the empirical Kaplan-Meier curve (dashed) as a check.

    ``survival`` is :meth:`DwellTimeModel.survival`; ``empirical`` has ``segment, stage, days,
    survival`` (:func:`analysis.models.transitions.kaplan_meier`).
    """
    segment = segment if segment is not None else survival["segment"].iloc[0]
    s = survival[survival["segment"] == segment]
    ax = _ax(ax, figsize=(8, 4.5))
    palette = dict(zip(dict.fromkeys(s["stage"]), sns.color_palette("tab10"), strict=False))
    for stage, d in s.groupby("stage", sort=False):
        ax.plot(d["days"], d["mean"], color=palette[stage], label=stage)
        ax.fill_between(d["days"], d["lower"], d["upper"], color=palette[stage], alpha=0.2)
        if empirical is not None:
            e = empirical[(empirical["segment"] == segment) & (empirical["stage"] == stage)]
            ax.step(e["days"], e["survival"], where="post", color=palette[stage], ls="--", lw=1)
    ax.set_xlabel("days in stage")
    ax.set_ylabel("P(still in stage)")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"Time in stage, {segment} (model with 90% band; dashed: Kaplan-Meier)")
    ax.legend()
    return ax


def plot_ppc(ppc: pd.DataFrame, *, ax=None) -> plt.Axes:
    """Posterior predictive check: the observed statistic (cross) against its predictive 90%
    interval (bar), per segment; one panel per statistic, side by side (on ``ax``'s figure).

    ``ppc`` is :meth:`StageTransitionModel.posterior_predictive`.
    """
    stats = list(dict.fromkeys(ppc["statistic"]))
    if ax is None:
        _, axes = plt.subplots(1, len(stats), figsize=(5 * len(stats), 0.5 * ppc["segment"].nunique() + 1.8),
                               sharey=True)
    else:
        axes = [ax] if len(stats) == 1 else ax.figure.subplots(1, len(stats))
    axes = list(getattr(axes, "flat", axes))
    for a, stat in zip(axes, stats, strict=True):
        d = ppc[ppc["statistic"] == stat]
        y = range(len(d))
        a.hlines(y, d["predicted_lower"], d["predicted_upper"], color="#457b9d", lw=6, alpha=0.5, label="predicted 90%")
        a.plot(d["observed"], y, "x", color="#e63946", ms=9, mew=2, label="observed")
        a.set_yticks(list(y), d["segment"])
        a.set_title(stat)
        a.margins(y=0.15)
    axes[0].legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=8, frameon=False)
    axes[0].figure.suptitle("Posterior predictive check: observed (x) vs predicted 90% interval")
    axes[0].figure.tight_layout()
    return axes[0]


# ------------------------------------------------------------------ attribution
def plot_attribution_comparison(table: pd.DataFrame, *, ax=None, top: int | None = None) -> plt.Axes:
    """Attributed conversions per channel (rows), one colour per model, side by side; models
    with intervals (``lower/upper``) get error bars. Channels are sorted by their mean over the
    models, largest at the top.

    ``table`` is :func:`analysis.models.attribution.compare_attribution` (``channel, model,
    conversions, lower, upper, share``); ``top`` keeps that many channels.
    """
    models = list(dict.fromkeys(table["model"]))
    order = table.groupby("channel")["conversions"].mean().sort_values(ascending=False)
    channels = list(order.index[:top] if top else order.index)
    ax = _ax(ax, figsize=(8, min(0.12 * len(channels) * max(len(models), 2) + 1.5, 14)))
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
            ax.errorbar(d["conversions"], y, xerr=xerr, fmt="o", color=palette[i], label=f"{model} (90% interval)", ms=5, capsize=2, lw=1.2)
        else:
            ax.plot(d["conversions"], y, "o", color=palette[i], label=model, ms=5)
    ax.axvline(0, color="grey", lw=0.8)
    for y in np.arange(len(channels) - 1) + 0.5:  # separate the channels' groups
        ax.axhline(y, color="lightgrey", lw=0.6)
    ax.set_yticks(range(len(channels)), channels)
    ax.set_ylim(len(channels) - 0.5, -0.5)
    ax.set_xlabel("attributed conversions")
    ax.set_title("Attributed conversions by model" + (f" (top {len(channels)} channels)" if top else ""))
    ax.legend(loc="lower right", fontsize=8)
    return ax
