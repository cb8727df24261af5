"""Interactive figures (plotly): journeys between stages, step by step; showing them offline."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    import plotly.graph_objects as go


def _funnel_order(states) -> list[str]:
    from analysis.schema import CONVERSION, DEFAULT_STAGES, DROPOFF, OPEN, START

    outcomes = [CONVERSION, DROPOFF, OPEN]
    stages = [s for s in DEFAULT_STAGES if s in states]
    stages += sorted(s for s in states if s not in {START, *outcomes, *stages})
    return [s for s in [START, *stages, *outcomes] if s in states]


def _link_colors(targets) -> list[str]:
    """Return Sankey link colours by where the link goes: conversion, drop-off, anything else."""
    from analysis.schema import CONVERSION, DROPOFF

    return [
        "rgba(42,157,143,0.35)"
        if s == CONVERSION
        else "rgba(231,111,81,0.3)"
        if s == DROPOFF
        else "rgba(120,120,120,0.2)"
        for s in targets
    ]


def plot_stage_sankey(
    transitions: pd.DataFrame, *, title: str = "Journeys between stages"
) -> go.Figure:
    """Draw a Sankey of stage-visit moves (a plotly Figure).

    ``(start)`` → stages → ``(conversion)``, ``(dropoff)``, ``(open)``; one node per state, one link per move with a count (summed over any grouping
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


def _stacked(
    cols: dict[int, list[tuple[int, str]]], size: pd.Series
) -> dict[tuple[int, str], float]:
    """Return the vertical centre of every node, each column stacked top-down in its order.

    One scale for all columns, as plotly draws node heights (the fullest column fills the
    height); centres in (0, 1).
    """
    gap = 0.03
    scale = min((1 - gap * (len(c) - 1)) / (sum(size[k] for k in c) or 1.0) for c in cols.values())
    ys = {}
    for col in cols.values():
        top = 0.0
        for k in col:
            h = size[k] * scale
            ys[k] = min(max(top + h / 2, 0.001), 0.999)
            top += h + gap
    return ys


def plot_stage_flow(flow: pd.DataFrame, *, title: str = "Journeys step by step") -> go.Figure:
    """Draw a Sankey of journeys step by step (a plotly Figure).

    Columns are the 1st, 2nd, … stage of a journey, then ``(later stages)``; a journey's
    outcome is drawn in the column after its last stage. It has no loops, unlike
    :func:`plot_stage_sankey`. Within a column, stages are in funnel order, then the outcomes.

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
    cols = {st: [k for k in keys if k[0] == st] for st in steps}
    ys = _stacked(cols, size)
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


def show_interactive(fig: go.Figure, *, embed_plotlyjs: bool | None = None) -> None:
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
