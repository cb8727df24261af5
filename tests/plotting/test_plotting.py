from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import pytest

from analysis import plotting
from analysis.journeys import channel_stage_counts


def test_plot_channel_stage_draws_every_cell(synth_small):
    ev, _ = synth_small
    counts = channel_stage_counts(ev)
    ax = plotting.plot_channel_stage(counts)
    assert len(ax.texts) == counts.size  # one annotation per cell
    assert [t.get_text() for t in ax.get_xticklabels()] == list(counts.columns)
    plt.close("all")


def test_plot_top_paths_limits_and_shortens_labels():
    paths = pd.DataFrame(
        {
            "path": ["a > b", "c", "x" * 80, "d"],
            "conversions": [5, 1, 2, 0],
            "nulls": [1, 9, 2, 1],
        }
    )
    ax = plotting.plot_top_paths(paths, n=3)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == 3 and "d" not in labels
    assert any("…" in lab and len(lab) == 60 for lab in labels)  # start … end, 60 characters
    plt.close("all")


def test_plot_top_paths_keeps_paths_that_share_a_long_prefix_apart():
    """15 distinct paths sharing their first 60 characters: 15 bars, 15 distinct labels (a cut
    at 57 characters gave them one label and matplotlib one bar)."""
    prefix = " > ".join(["paid_search", "email", "display", "social", "organic_search"])  # 60 chars
    prefix = (prefix + " > direct")[:60]
    assert len(prefix) == 60
    paths = pd.DataFrame(
        {
            "path": [f"{prefix} > step{i:02d} > end" for i in range(15)],
            "conversions": range(15),
            "nulls": [3] * 15,
        }
    )
    ax = plotting.plot_top_paths(paths, n=15)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == len(set(labels)) == 15
    assert all(len(lab) <= 60 for lab in labels)
    assert (
        len(ax.patches) == 2 * 15
    )  # converted + not converted per path, none stacked onto another
    widths = sorted(p.get_width() for p in ax.patches[:15])
    assert widths == list(range(15))  # each path's own conversions, not a sum over merged labels
    # the same ends, different middles: the counter keeps them apart
    same_ends = pd.DataFrame(
        {
            "path": [f"{prefix} > {m} > {prefix}" for m in ("a", "b", "c")],
            "conversions": [1, 2, 3],
            "nulls": [0, 0, 0],
        }
    )
    labels = [t.get_text() for t in plotting.plot_top_paths(same_ends, n=3).get_yticklabels()]
    assert len(set(labels)) == 3 and sum(lab.endswith(("(2)", "(3)")) for lab in labels) == 2
    plt.close("all")


def test_short_times_are_drawn_in_hours_or_minutes():
    surv = pd.DataFrame(
        {
            "segment": "a",
            "stage": "See",
            "days": [0.01, 0.1, 0.2],
            "mean": [0.9, 0.5, 0.1],
            "lower": [0.8, 0.4, 0.0],
            "upper": [1.0, 0.6, 0.2],
        }
    )
    ax = plotting.plot_dwell_curves(surv)
    assert ax.get_xlabel() == "hours in stage"
    assert list(ax.lines[0].get_xdata()) == pytest.approx([0.24, 2.4, 4.8])
    ax = plotting.plot_dwell_curves(surv.assign(days=surv["days"] / 100))
    assert ax.get_xlabel() == "minutes in stage"
    ax = plotting.plot_dwell_curves(surv.assign(days=surv["days"] * 100))
    assert ax.get_xlabel() == "days in stage"  # not triggered: times of days stay in days
    km = pd.DataFrame({"days": [0.01, 0.02], "at_risk": [4, 2], "survival": [0.75, 0.5]})
    ax = plotting.plot_time_to_conversion(km)
    assert ax.get_xlabel() == "minutes since the journey's first touch"
    assert list(ax.lines[0].get_xdata()) == pytest.approx([0.0, 14.4, 28.8])
    plt.close("all")


def _conjugate_model(synth_small):
    import analysis
    from analysis.models.transitions import StageTransitionModel

    ev, _ = synth_small
    jr = analysis.build_journeys(analysis.stitch_identities(ev))
    m = StageTransitionModel(jr.stage_transitions(by="segment"), model_config={"pooling": "none"})
    m.fit(method="conjugate", draws=200)
    return m


def test_transition_model_figures(synth_small):
    from analysis.models.base import interval_table

    m = _conjugate_model(synth_small)
    probs = m.transition_probabilities()
    seg = m.segments[0]
    ax = plotting.plot_transition_heatmap(probs, segment=seg)
    assert len(ax.texts) == int((probs.segment == seg).sum())  # one label per allowed cell
    assert seg in ax.get_title()
    conv = interval_table(m.conversion_probability())
    ax = plotting.plot_conversion_forest(conv, highlight=[seg])
    assert [t.get_text() for t in ax.get_yticklabels()] == m.from_states
    assert len(ax.get_legend().get_texts()) == len(m.segments)
    fr = m.friction()
    ax = plotting.plot_friction(fr, segment=seg)
    assert len(ax.patches) == len(m.stages)
    assert sum("P(worst)" in t.get_text() for t in ax.texts) == len(m.stages)
    ppc = m.posterior_predictive(n_draws=20)
    ax = plotting.plot_ppc(ppc)
    assert len(ax.figure.axes) == 2
    plt.close("all")


def test_plot_dwell_curves_draws_model_and_kaplan_meier():
    days = [0.5, 1.0, 2.0]
    surv = pd.DataFrame(
        {
            "segment": "a",
            "stage": ["See"] * 3 + ["Do"] * 3,
            "days": days * 2,
            "mean": [0.9, 0.6, 0.3] * 2,
            "lower": [0.8, 0.5, 0.2] * 2,
            "upper": [1.0, 0.7, 0.4] * 2,
        }
    )
    km = pd.DataFrame(
        {"segment": "a", "stage": ["See", "See"], "days": [0.7, 1.5], "survival": [0.8, 0.4]}
    )
    ax = plotting.plot_dwell_curves(surv, empirical=km)
    assert len(ax.lines) == 2 + 2  # a model line per stage, a KM step per stage (the Do one empty)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["See", "Do"]
    plt.close("all")


def test_plot_conversion_rates_sorts_by_posterior_and_shows_raw_rates():
    from matplotlib.container import ErrorbarContainer

    rates = pd.DataFrame(
        {
            "channel": ["a", "b", "c", "d"],
            "n": [100, 3, 50, 10],
            "conversions": [10, 3, 20, 1],
            "raw_rate": [0.1, 1.0, 0.4, 0.1],
            "mean": [0.11, 0.3, 0.38, 0.12],
            "lower": [0.06, 0.1, 0.28, 0.05],
            "upper": [0.17, 0.6, 0.5, 0.25],
        }
    )
    ax = plotting.plot_conversion_rates(rates, "channel", overall=0.2)
    # highest posterior mean on top (matplotlib counts y upwards): c, b, d, a
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a (100)", "d (10)", "b (3)", "c (50)"]
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == 1
    raw = next(ln for ln in ax.lines if ln.get_label().startswith("raw rate"))

    assert list(raw.get_xdata()) == [0.1, 0.1, 1.0, 0.4]  # in the rows' order, not pulled
    assert any(ln.get_label() == "overall" for ln in ax.lines)
    ax = plotting.plot_conversion_rates(rates, "channel", top=2)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a (100)", "c (50)"]
    assert "2 largest" in ax.get_title()
    plt.close("all")


def test_plot_time_to_conversion_steps_share_converted():
    from matplotlib.container import ErrorbarContainer

    km = pd.DataFrame(
        {
            "g": ["a", "a", "b"],
            "days": [1.0, 4.0, 2.0],
            "at_risk": [4, 2, 9],
            "events": [1, 1, 1],
            "censored": [1, 0, 0],
            "survival": [0.75, 0.375, 8 / 9],
        }
    )
    model = pd.DataFrame(
        {
            "group": ["a", "a", "b"],
            "days": [7.0, 30.0, 7.0],
            "mean": [0.5, 0.6, 0.1],
            "lower": [0.4, 0.5, 0.05],
            "upper": [0.6, 0.7, 0.2],
        }
    )
    ax = plotting.plot_time_to_conversion(km, by="g", model=model)
    steps = [ln for ln in ax.lines if not ln.get_label().startswith("_")]
    # groups by journeys (b has 9 at risk at its first time): b first; curves start at 0 converted
    assert [ln.get_label() for ln in steps] == ["b (9)", "a (4)"]
    assert list(steps[1].get_xdata()) == [0.0, 1.0, 4.0]
    assert list(steps[1].get_ydata()) == pytest.approx([0.0, 0.25, 0.625])
    assert sum(isinstance(c, ErrorbarContainer) for c in ax.containers) == 2  # a model per group
    ax = plotting.plot_time_to_conversion(km, by="g", model=model, max_days=10)
    assert ax.get_xlim() == (0, 10)
    dots = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert [len(c.lines[0].get_xdata()) for c in dots] == [1, 1]  # day 30 is beyond the axis
    ax = plotting.plot_time_to_conversion(km[km["g"] == "a"].drop(columns="g"), top=1)
    assert [ln.get_label() for ln in ax.lines if not ln.get_label().startswith("_")] == ["all (4)"]
    ax = plotting.plot_time_to_conversion(km, by="g", top=1)
    assert "the 1 largest" in ax.get_title()
    plt.close("all")


def test_plot_attribution_comparison_sorts_channels_and_draws_intervals():
    from matplotlib.container import ErrorbarContainer

    nan = float("nan")
    table = pd.DataFrame(
        {
            "channel": ["a", "b", "c"] * 3,
            "model": ["last_touch"] * 3 + ["markov_1"] * 3 + ["bayesian"] * 3,
            "conversions": [1.0, 5.0, 3.0, 2.0, 4.0, 3.0, 1.0, 6.0, 2.0],
            "lower": [nan] * 3 + [1.0, 3.0, 2.0] + [0.5, 5.0, 1.0],
            "upper": [nan] * 3 + [3.0, 5.0, 4.0] + [1.5, 7.0, 3.0],
        }
    )
    ax = plotting.plot_attribution_comparison(table)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["b", "c", "a"]  # by mean, largest first
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["last_touch", "markov_1 (90% interval)", "bayesian (90% interval)"]
    assert (
        sum(isinstance(c, ErrorbarContainer) for c in ax.containers) == 2
    )  # models with intervals
    ax = plotting.plot_attribution_comparison(table, top=2)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["b", "c"]
    assert "top 2" in ax.get_title()
    plt.close("all")


# ------------------------------------------------------------------ journey map, flows, paths
EVIL = "<script>alert(1)</script>"


def test_plot_journey_map_draws_a_cell_per_row_and_stage(mapped):
    from analysis.journeys import journey_map_grid

    _, _, m = mapped
    grid = journey_map_grid(m)
    ax = plotting.plot_journey_map(m)
    assert [t.get_text() for t in ax.get_xticklabels()] == list(grid.columns)
    assert [t.get_text() for t in ax.get_yticklabels()] == list(grid.index)
    assert len(ax.patches) == grid.size
    texts = [t.get_text() for t in ax.texts]
    assert texts == [grid.loc[r, s] for r in grid.index for s in grid.columns]
    # sentiment: the most positive stage is greener than the most negative one
    sent = m[m["row"] == "sentiment"].dropna(subset=["value"]).set_index("stage")["value"]
    if len(sent) >= 2 and sent.max() > sent.min():
        stages = list(grid.columns)
        faces = {
            s: ax.patches[list(grid.index).index("sentiment") * len(stages) + i].get_facecolor()
            for i, s in enumerate(stages)
        }
        hi, lo = faces[sent.idxmax()], faces[sent.idxmin()]
        assert hi[1] - hi[0] > lo[1] - lo[0]  # green minus red
    plt.close("all")


def test_plot_journey_map_refuses_several_groups(synth_small):
    import analysis
    from analysis.journeys import journey_map

    ev, _ = synth_small
    ev = analysis.stitch_identities(ev)
    jr = analysis.build_journeys(ev)
    m = journey_map(jr, ev, by="segment")
    with pytest.raises(ValueError, match="several groups"):
        plotting.plot_journey_map(m)
    one = m[m["segment"] == m["segment"].iloc[0]]
    plotting.plot_journey_map(one)
    plt.close("all")


def test_plot_funnel_steps_and_losses(mapped):
    _, _, m = mapped
    ax = plotting.plot_funnel(m)
    reach = m[m["row"] == "reach"].sort_values("stage")
    steps = [str(s) for s in reach["stage"]]
    steps.insert(steps.index("Do") + 1, "converted")
    texts = [t.get_text() for t in ax.texts]
    assert [t for t in texts if t in steps] == steps
    assert len(ax.patches) == len(steps)
    assert sum(("lost" in t) or ("entered" in t) for t in texts) == len(steps) - 1
    n_do = int(reach.loc[reach["stage"] == "Do", "n"].iloc[0])
    assert any(t.startswith(f"{n_do:,} (") for t in texts)
    plt.close("all")


def test_plot_stage_sankey_nodes_and_links_are_the_transitions(mapped):
    jr, _, _ = mapped
    t = jr.stage_transitions(by=None)
    fig = plotting.plot_stage_sankey(t)
    s = fig.data[0]
    states = set(t["from_stage"]) | set(t["to_stage"])
    assert len(s.node.label) == len(states) and set(s.node.label) == states
    assert len(s.link.value) == len(t)
    assert sum(s.link.value) == t["n"].sum()
    pairs = {
        (s.node.label[a], s.node.label[b]): v
        for a, b, v in zip(s.link.source, s.link.target, s.link.value, strict=True)
    }
    assert pairs == {
        (f, to): n for f, to, n in t[["from_stage", "to_stage", "n"]].itertuples(index=False)
    }
    assert s.node.label[0] == "(start)"
    # grouped counts are summed
    fig2 = plotting.plot_stage_sankey(jr.stage_transitions(by="segment"))
    assert list(fig2.data[0].link.value) == list(s.link.value)


def test_plot_stage_sankey_escapes_names_from_data():
    t = pd.DataFrame(
        {
            "from_stage": ["(start)", EVIL, EVIL],
            "to_stage": [EVIL, "(conversion)", "(dropoff)"],
            "n": [3, 1, 2],
        }
    )
    fig = plotting.plot_stage_sankey(t)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in fig.data[0].node.label
    html = fig.to_html(include_plotlyjs=False)
    assert EVIL not in html and "<script>alert" not in html
    assert "alert(1)" in html  # the name is still shown, as text


def test_plot_stage_flow_nodes_links_and_columns(mapped):
    from analysis.journeys import stage_flow

    jr, _, _ = mapped
    flow = stage_flow(jr.journeys, max_steps=3)
    s = plotting.plot_stage_flow(flow).data[0]
    nodes = list(zip(s.node.x, s.node.label, strict=True))
    got = {
        (nodes[a], nodes[b]): v
        for a, b, v in zip(s.link.source, s.link.target, s.link.value, strict=True)
    }
    assert len(got) == len(flow) and sum(s.link.value) == flow["n"].sum()
    # one column per step, left to right; each link goes one column to the right
    xs = sorted(set(s.node.x))
    assert len(xs) == flow["to_step"].max() and xs[0] < 0.01 and xs[-1] > 0.99
    col = {x: i + 1 for i, x in enumerate(xs)}
    exp = {((f, a), (t, b)): n for f, a, t, b, n in flow.itertuples(index=False)}
    assert {((col[x1], a), (col[x2], b)): v for ((x1, a), (x2, b)), v in got.items()} == exp
    # within a column, stages in funnel order above the outcomes
    second = sorted(
        (y, label)
        for x, y, label in zip(s.node.x, s.node.y, s.node.label, strict=True)
        if x == xs[1]
    )
    col2 = [label for _, label in second]
    stages = [x for x in col2 if not x.startswith("(")]
    assert stages == [x for x in ["See", "Think", "Do", "Care"] if x in stages]
    assert col2[: len(stages)] == stages


def test_plot_stage_flow_escapes_names_from_data():
    from analysis.journeys import stage_flow

    flow = stage_flow(pd.DataFrame({"stages": [f"See > {EVIL}"], "outcome": ["dropoff"]}))
    fig = plotting.plot_stage_flow(flow, title=EVIL)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in fig.data[0].node.label
    html = fig.to_html(include_plotlyjs=False)
    assert EVIL not in html and "alert(1)" in html


def test_plot_outcome_paths_and_matplotlib_text_keep_names(make_events):
    paths = pd.DataFrame(
        {
            "kind": ["stage"] * 3 + ["channel"] * 2,
            "outcome": ["dropoff", "converted", "converted", "converted", "dropoff"],
            "rank": [1, 1, 2, 1, 1],
            "path": ["See", "See > Do", "Do", f"{EVIL} > direct", "x" * 80],
            "journeys": [9, 5, 3, 4, 2],
            "share": [1.0, 0.625, 0.375, 1.0, 1.0],
        }
    )
    ax = plotting.plot_outcome_paths(paths)
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "See > Do",
        "Do",
        "See",
    ]  # conversions first
    assert [t.get_text() for t in ax.texts] == [" 62%", " 38%", " 100%"]
    ax = plotting.plot_outcome_paths(paths, kind="channel")
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0] == f"{EVIL} > direct" and "…" in labels[1] and len(labels[1]) == 60
    plt.close("all")


def test_show_interactive_embeds_plotlyjs_once_and_loads_nothing_from_the_network(monkeypatch):
    import re

    import plotly.graph_objects as go

    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj.data))
    monkeypatch.setattr(plotting.flows, "_PLOTLYJS_EMBEDDED", False)  # the kernel's first figure

    t = pd.DataFrame(
        {"from_stage": ["(start)", EVIL], "to_stage": [EVIL, "(conversion)"], "n": [3, 1]}
    )
    plotting.show_interactive(plotting.plot_stage_sankey(t))
    plotting.show_interactive(go.Figure(go.Bar(x=["a"], y=[1])))
    plotting.show_interactive(go.Figure(go.Bar(x=["b"], y=[2])), embed_plotlyjs=True)
    bundle = "* plotly.js v"  # the library's licence header, once per copy
    assert [html.count(bundle) for html in shown] == [1, 0, 1]
    for html in shown:
        assert not re.search(r"<script[^>]*\bsrc=", html), (
            "no script from a CDN (plotly.js, MathJax)"
        )
        assert "Plotly.newPlot" in html
    assert EVIL not in shown[0] and "alert(1)" in shown[0]


def test_friction_plots_rank_lost_conversions_and_shade_incident_bins():
    funnel = pd.DataFrame(
        {
            "touchpoint": ["payment_error", "chat", "wishlist"],
            "compared_at": ["payment", "cart", "product"],
            "lost": [80.0, 5.0, -3.0],
            "lost_low": [60.0, -2.0, -9.0],
            "lost_high": [95.0, 11.0, 2.0],
            "compared": [True, True, False],
        }
    )
    ax = plotting.plot_touchpoint_friction(funnel, n=5)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [
        "chat  (at cart)",
        "payment_error  (at payment)",
    ]  # not compared: left out; largest on top
    reds = [
        p
        for p in ax.patches
        if p.get_facecolor()[:3] == pytest.approx((0.906, 0.435, 0.318), abs=0.01)
    ]
    assert len(reds) == 1  # only the loss whose interval excludes zero
    bins = pd.date_range("2024-01-01", periods=6, freq="D", tz="UTC")
    series = pd.DataFrame(
        {
            "level": "stage",
            "step": "Do",
            "segment": "all",
            "bin": bins,
            "rate": 0.5,
            "baseline": 0.5,
            "band_low": 0.4,
            "band_high": 0.6,
            "mature": True,
            "incident": [False, False, True, True, False, False],
        }
    )
    other = series.assign(level="touchpoint", rate=0.9)  # a touchpoint of the same name
    ax = plotting.plot_step_series(pd.concat([series, other]), step="Do", level="stage")
    dots = [c for c in ax.collections if c.get_offsets().shape[0] in (2, 4)]
    assert sorted(c.get_offsets().shape[0] for c in dots) == [2, 4]  # 2 incident bins, 4 others
    assert all(abs(y - 0.5) < 1e-9 for c in dots for _, y in c.get_offsets())
