"""Figures only; no model or data code. Each ``plot_*`` takes a result table, draws on ``ax``
(a new one when None) and returns the Axes.
"""

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
    sns.heatmap(
        counts, annot=True, fmt=",.0f", cmap=cmap, cbar=False, linewidths=0.5, ax=ax, **kwargs
    )
    ax.set_xlabel("stage")
    ax.set_ylabel("channel")
    ax.set_title("Touchpoints by channel and stage")
    return ax


def plot_top_paths(paths: pd.DataFrame, *, n: int = 10, ax=None, **kwargs) -> plt.Axes:
    """Horizontal bars of the ``n`` most frequent paths, split into conversions and nulls.

    ``paths`` has the columns ``path, conversions, nulls`` (as :meth:`Journeys.channel_paths`).
    One bar per row: repeats are written once with a count (:func:`analysis.text.compact_path`),
    long labels keep their start and end (:func:`analysis.text.short_labels`) and stay
    distinct, so paths that share a long prefix are never merged.
    """
    from analysis.text import compact_path, short_labels

    top = paths.assign(total=paths["conversions"] + paths["nulls"]).nlargest(n, "total")
    top = top.iloc[::-1]
    ax = _ax(ax, figsize=(9, 0.4 * len(top) + 1.5))
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


def plot_outcomes(journeys: pd.DataFrame, *, ax=None) -> plt.Axes:
    """Journeys by outcome (converted / dropoff / open)."""
    ax = _ax(ax, figsize=(5, 3))
    order = [o for o in ("converted", "dropoff", "open") if o in set(journeys["outcome"])]
    sns.countplot(data=journeys, y="outcome", order=order, ax=ax, color="#457b9d")
    ax.set_title("Journeys by outcome")
    return ax


# ------------------------------------------------------------------ stage-transition model
def plot_transition_heatmap(
    probs: pd.DataFrame, *, segment: str | None = None, ax=None, cmap: str = "Blues"
) -> plt.Axes:
    """Transition probabilities of one segment as a heatmap, each cell ``mean`` with its
    interval ``[lower, upper]`` below it; forbidden moves are blank.

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
    ax = _ax(ax, figsize=(1.5 * len(cols) + 2, 0.9 * len(rows) + 1.5))
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
    conv: pd.DataFrame, *, highlight: list[str] | None = None, ax=None
) -> plt.Axes:
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
    ax=None,
) -> plt.Axes:
    """P(still in the stage after t days) per stage: model mean with its 90% band and, if given,
    the empirical Kaplan-Meier curve (dashed) as a check.

    ``survival`` is :meth:`DwellTimeModel.survival`; ``empirical`` has ``segment, stage, days,
    survival`` (:func:`analysis.models.transitions.kaplan_meier`).
    """
    from analysis.text import time_unit

    segment = segment if segment is not None else survival["segment"].iloc[0]
    s = survival[survival["segment"] == segment]
    ax = _ax(ax, figsize=(8, 4.5))
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


def plot_ppc(ppc: pd.DataFrame, *, ax=None) -> plt.Axes:
    """Posterior predictive check: the observed statistic (cross) against its predictive 90%
    interval (bar), per segment; one panel per statistic, side by side (on ``ax``'s figure).

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


# ------------------------------------------------------------------ conversion and time to conversion
def plot_conversion_rates(
    rates: pd.DataFrame, by: str, *, top: int | None = None, overall: float | None = None, ax=None
) -> plt.Axes:
    """Forest plot of conversion rates per group: the partially pooled posterior mean with its
    interval (dot and bar) beside the raw rate (open circle), groups sorted by posterior mean,
    highest on top, each labelled with its trials.

    ``rates`` is :meth:`ConversionModel.rates` (``<by>, n, conversions, raw_rate, mean, lower,
    upper``); ``top`` keeps the groups with the most trials; ``overall`` draws a dashed line at
    that rate.

    Examples
    --------
    >>> plot_conversion_rates(model.rates("first_channel"), "first_channel")  # doctest: +SKIP
    """
    r = rates.nlargest(top, "n") if top is not None and len(rates) > top else rates
    r = r.sort_values(["mean", "n"], ascending=[True, True])
    ax = _ax(ax, figsize=(8, 0.4 * len(r) + 1.6))
    labels = [f"{g} ({n:,})" for g, n in zip(_unique_short(r[by], 40), r["n"], strict=True)]
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
    ax=None,
) -> plt.Axes:
    """Share of journeys converted by ``t`` days after their first touch: ``1 - S(t)`` of the
    Kaplan–Meier curve per group (steps; journeys not converted are censored, so the curve is
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
    ax = _ax(ax, figsize=(8, 4.5))
    palette = sns.color_palette("tab10", max(len(groups), 1))
    # journeys that convert within hours (sessions): the axis in hours or minutes, not 0.0 days
    k, unit = time_unit(
        max_days if max_days is not None else float(km["days"].max()) if len(km) else 1.0
    )
    names = _unique_short(groups.index, 30)
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


# ------------------------------------------------------------------ attribution
def plot_attribution_comparison(
    table: pd.DataFrame, *, ax=None, top: int | None = None
) -> plt.Axes:
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


# ------------------------------------------------------------------ journey map, flows, paths
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


def _unique_short(labels, width: int = 60) -> list[str]:
    """Labels of at most ``width`` characters that stay distinct (start … end, then a counter)."""
    from analysis.text import short_labels

    return short_labels([str(x) for x in labels], width)


def plot_journey_map(
    map_table: pd.DataFrame,
    *,
    ax=None,
    max_items: int | None = None,
    title: str = "Customer journey map",
) -> plt.Axes:
    """The journey map as a grid: stages as columns; rows touchpoints, channels, absent channels
    (grey, italic), then the KPIs, their cells shaded by value (reach blue, advance green,
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
    ax = _ax(ax, figsize=(2.6 * max(len(stages), 2) + 2.2, 0.32 * total + 0.45 * len(rows) + 1.2))
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


def _funnel_order(states) -> list[str]:
    from analysis.schema import CONVERSION, DEFAULT_STAGES, DROPOFF, OPEN, START

    outcomes = [CONVERSION, DROPOFF, OPEN]
    stages = [s for s in DEFAULT_STAGES if s in states]
    stages += sorted(s for s in states if s not in {START, *outcomes, *stages})
    return [s for s in [START, *stages, *outcomes] if s in states]


def _link_colors(targets) -> list[str]:
    """Sankey link colours by where the link goes: conversion, drop-off, anything else."""
    from analysis.schema import CONVERSION, DROPOFF

    return [
        "rgba(42,157,143,0.35)"
        if s == CONVERSION
        else "rgba(231,111,81,0.3)"
        if s == DROPOFF
        else "rgba(120,120,120,0.2)"
        for s in targets
    ]


def plot_stage_sankey(transitions: pd.DataFrame, *, title: str = "Journeys between stages"):
    """Sankey of stage-visit moves: ``(start)`` → stages → ``(conversion)``, ``(dropoff)``,
    ``(open)``; one node per state, one link per move with a count (summed over any grouping
    columns). Returns a plotly Figure (interactive).

    ``transitions`` is :meth:`Journeys.stage_transitions` (``from_stage, to_stage, n``). Labels
    come from data, so they are HTML-escaped: plotly treats label text as HTML-like markup.
    """
    import plotly.graph_objects as go

    from analysis.schema import CONVERSION, DROPOFF, OPEN, START
    from analysis.text import escape

    t = transitions.groupby(["from_stage", "to_stage"], as_index=False)["n"].sum()
    t = t[t["n"] > 0]
    nodes = _funnel_order(set(t["from_stage"]) | set(t["to_stage"]))
    idx = {s: i for i, s in enumerate(nodes)}
    special = {START: "#8d99ae", CONVERSION: "#2a9d8f", DROPOFF: "#e76f51", OPEN: "#bdbdbd"}
    colors = [special.get(s, "#457b9d") for s in nodes]
    labels = [escape(s) for s in nodes]
    fig = go.Figure(
        go.Sankey(
            arrangement="snap",
            node={
                "label": labels,
                "color": colors,
                "pad": 18,
                "thickness": 16,
                "hovertemplate": "%{label}: %{value:,} journeys<extra></extra>",
            },
            link={
                "source": [idx[s] for s in t["from_stage"]],
                "target": [idx[s] for s in t["to_stage"]],
                "value": t["n"].astype(int).tolist(),
                "color": _link_colors(t["to_stage"]),
                "hovertemplate": "%{source.label} → %{target.label}: %{value:,}<extra></extra>",
            },
        )
    )
    fig.update_layout(title_text=escape(title), font_size=12, height=450)
    return fig


def _ordinal(k: int) -> str:
    return f"{k}{'th' if 10 <= k % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(k % 10, 'th')}"


def plot_stage_flow(flow: pd.DataFrame, *, title: str = "Journeys step by step"):
    """Sankey of journeys step by step: columns are the 1st, 2nd, … stage of a journey, then
    ``(later stages)``; a journey's outcome is drawn in the column after its last stage. It has
    no loops, unlike :func:`plot_stage_sankey`. Within a column, stages are in funnel order,
    then the outcomes. Returns a plotly Figure.

    ``flow`` is :func:`analysis.journeys.stage_flow` (``from_step, from_stage, to_step,
    to_stage, n``). Stage names come from data and are HTML-escaped.
    """
    import plotly.graph_objects as go

    from analysis.journeys import LATER_STAGES
    from analysis.schema import CONVERSION, DROPOFF, OPEN
    from analysis.text import escape

    f = flow[flow["n"] > 0]
    # a node's size: journeys through it, in or out (step 1 has no inflow, outcomes no outflow)
    inflow = f.groupby(["to_step", "to_stage"])["n"].sum().rename_axis(["step", "stage"])
    outflow = f.groupby(["from_step", "from_stage"])["n"].sum().rename_axis(["step", "stage"])
    size = pd.concat([inflow, outflow], axis=1).fillna(0).max(axis=1)
    order = {s: i for i, s in enumerate(_funnel_order(set(size.index.get_level_values("stage"))))}
    keys = sorted(size.index, key=lambda k: (k[0], order.get(k[1], len(order)), k[1]))
    idx = {k: i for i, k in enumerate(keys)}
    steps = sorted({k[0] for k in keys})
    last = steps[-1]
    x = {st: 0.001 + 0.998 * i / max(len(steps) - 1, 1) for i, st in enumerate(steps)}
    # stack each column top-down in funnel order; one scale for all columns, as plotly draws
    # node heights (the fullest column fills the height), centres in (0, 1)
    cols = {st: [k for k in keys if k[0] == st] for st in steps}
    gap = 0.03
    scale = min((1 - gap * (len(c) - 1)) / (sum(size[k] for k in c) or 1.0) for c in cols.values())
    ys = {}
    for col in cols.values():
        top = 0.0
        for k in col:
            h = size[k] * scale
            ys[k] = min(max(top + h / 2, 0.001), 0.999)
            top += h + gap
    special = {CONVERSION: "#2a9d8f", DROPOFF: "#e76f51", OPEN: "#bdbdbd"}
    colors = [special.get(k[1], "#8d99ae" if k[1].startswith("(") else "#457b9d") for k in keys]

    def heading(st: int) -> str:
        col = {k[1] for k in cols[st]}
        if not col - set(special):
            return "outcome"
        return "later stages" if LATER_STAGES in col else f"{_ordinal(st)} stage"

    head = {st: heading(st) for st in steps}
    fig = go.Figure(
        go.Sankey(
            arrangement="snap",
            node={
                "label": [escape(k[1]) for k in keys],
                "color": colors,
                "pad": 12,
                "thickness": 16,
                "x": [x[k[0]] for k in keys],
                "y": [ys[k] for k in keys],
                "customdata": [
                    escape(
                        f"ended after {k[0] - 1} stage{'s' if k[0] > 2 else ''}"
                        if k[1] in special
                        else head[k[0]]
                    )
                    for k in keys
                ],
                "hovertemplate": "%{customdata}: %{label}, %{value:,} journeys<extra></extra>",
            },
            link={
                "source": [
                    idx[(a, s)] for a, s in zip(f["from_step"], f["from_stage"], strict=True)
                ],
                "target": [idx[(b, s)] for b, s in zip(f["to_step"], f["to_stage"], strict=True)],
                "value": f["n"].astype(int).tolist(),
                "color": _link_colors(f["to_stage"]),
                "hovertemplate": "%{source.label} → %{target.label}: %{value:,} journeys<extra></extra>",
            },
        )
    )
    for st in steps:
        fig.add_annotation(
            x=x[st],
            y=1.06,
            xref="paper",
            yref="paper",
            showarrow=False,
            text=escape(head[st]),
            font={"size": 11, "color": "#555"},
            xanchor="left" if st == steps[0] else "right" if st == last else "center",
        )
    fig.update_layout(title_text=escape(title), font_size=12, height=480, margin={"t": 90})
    return fig


_PLOTLYJS_EMBEDDED = False  # plotly.js already in this kernel's outputs (see show_interactive)


def show_interactive(fig, *, embed_plotlyjs: bool | None = None) -> None:
    """Display a plotly figure in the notebook so that its report page is self-contained.

    The figure is an HTML output that nbconvert keeps as it is: plotly.js (~4.8 MB) is embedded
    with the first figure of the kernel (``embed_plotlyjs=None``; True / False to force), and
    nothing is loaded from the network. plotly's own ``"notebook"`` renderer also fetches MathJax
    from a CDN with every figure, which stalls the page where a firewall drops the request and
    tells a third party each time a report is opened.
    """
    global _PLOTLYJS_EMBEDDED
    from IPython.display import HTML, display

    embed = (not _PLOTLYJS_EMBEDDED) if embed_plotlyjs is None else embed_plotlyjs
    html = fig.to_html(
        full_html=False,
        include_plotlyjs=bool(embed),
        include_mathjax=False,
        default_width="100%",
        config={"displaylogo": False},
    )
    _PLOTLYJS_EMBEDDED = _PLOTLYJS_EMBEDDED or bool(embed)
    display(HTML(html))


def plot_funnel(
    map_table: pd.DataFrame, *, ax=None, conversion_after: str | None = "Do"
) -> plt.Axes:
    """Funnel / fallout: journeys reaching each stage (bars, funnel order) with their share of
    all journeys, and between steps the share lost (or gained: journeys may enter at any stage).

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
    ax = _ax(ax, figsize=(8, 0.6 * len(steps) + 1.5))
    top = max([*counts, 1])
    ys = np.arange(len(steps))
    colors = ["#2a9d8f" if s == "converted" else "#457b9d" for s in steps]
    ax.barh(ys, counts, left=[(top - c) / 2 for c in counts], color=colors, height=0.6)
    for y, c in zip(ys, counts, strict=True):
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
    for y, s in zip(ys, steps, strict=True):  # step names left, the losses between them
        ax.text(-top * 0.35, y, s, va="center", ha="left", fontsize=10, fontweight="bold")
    ax.set_ylim(len(steps) - 0.5, -0.7)
    ax.set_xlim(-top * 0.35, top * 1.35)
    ax.set_xticks([])
    ax.set_xlabel("journeys reaching the step")
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title("Funnel: journeys reaching each stage, and the share lost between steps")
    return ax


def plot_outcome_paths(top_paths: pd.DataFrame, *, kind: str = "stage", ax=None) -> plt.Axes:
    """The most frequent paths to conversion (green, top) and to drop-off (orange), as bars of
    journeys annotated with the share of their outcome's journeys.

    ``top_paths`` is :func:`analysis.journeys.top_paths_table`; ``kind`` "stage" or "channel".
    """
    t = top_paths[top_paths["kind"] == kind]
    t = pd.concat([t[t["outcome"] == "converted"], t[t["outcome"] == "dropoff"]])
    ax = _ax(ax, figsize=(9, 0.38 * len(t) + 1.6))
    colors = ["#2a9d8f" if o == "converted" else "#e9a23b" for o in t["outcome"]]
    ys = np.arange(len(t))
    ax.barh(ys, t["journeys"], color=colors)
    for y, (n, sh) in enumerate(zip(t["journeys"], t["share"], strict=True)):
        ax.text(n, y, f" {sh:.0%}", va="center", fontsize=8)
    # distinct paths keep distinct labels within each outcome (one path may lead to both)
    outcomes = t["outcome"].to_numpy()
    labels = np.empty(len(t), dtype=object)
    for o in dict.fromkeys(outcomes):
        labels[outcomes == o] = _unique_short(t["path"].to_numpy()[outcomes == o], 60)
    ax.set_yticks(ys, list(labels), fontsize=8)
    ax.set_ylim(len(t) - 0.5, -0.5)
    ax.set_xlabel("journeys (label: share of the outcome's journeys)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in ("#2a9d8f", "#e9a23b")]
    ax.legend(handles, ["to conversion", "to drop-off"], loc="lower right", fontsize=8)
    ax.set_title(f"Top {kind} paths to conversion and to drop-off")
    ax.margins(x=0.12)
    return ax


# ------------------------------------------------------------------ friction: where and when
def plot_touchpoint_friction(funnel: pd.DataFrame, *, n: int = 12, ax=None) -> plt.Axes:
    """Conversions lost per touchpoint (posterior mean, bar; 90% interval, whisker), the ``n``
    compared touchpoints that lose most, for one segment (filter ``funnel`` first).

    ``funnel`` is :func:`analysis.friction.touchpoint_funnel`: ``touchpoint, compared_at, lost,
    lost_low, lost_high, compared``. Red: the interval excludes zero (a loss the data support).
    """
    from analysis.text import short_labels

    t = funnel[funnel["compared"].astype(bool)].nlargest(n, "lost").iloc[::-1]
    ax = _ax(ax, figsize=(8, 0.4 * max(len(t), 1) + 1.6))
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
    series: pd.DataFrame, *, step: str, segment: str = "all", level: str | None = None, ax=None
) -> plt.Axes:
    """Conversion over time of the journeys that reached ``step`` (one segment): each bin's rate
    (dots), the baseline and its band (the range a bin of that size shows without an incident),
    incident bins shaded.

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
    ax = _ax(ax, figsize=(9, 3.6))
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
    fig.autofmt_xdate()
    return ax
