from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from analysis import plotting  # noqa: E402
from analysis.journeys import channel_stage_counts  # noqa: E402


def test_plot_channel_stage_draws_every_cell(synth_small):
    ev, _ = synth_small
    counts = channel_stage_counts(ev)
    ax = plotting.plot_channel_stage(counts)
    assert len(ax.texts) == counts.size  # one annotation per cell
    assert [t.get_text() for t in ax.get_xticklabels()] == list(counts.columns)
    plt.close("all")


def test_plot_top_paths_limits_and_shortens_labels():
    paths = pd.DataFrame({
        "path": ["a > b", "c", "x" * 80, "d"],
        "conversions": [5, 1, 2, 0],
        "nulls": [1, 9, 2, 1],
    })
    ax = plotting.plot_top_paths(paths, n=3)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == 3 and "d" not in labels
    assert any(lab.endswith("…") and len(lab) == 58 for lab in labels)
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
    surv = pd.DataFrame({"segment": "a", "stage": ["See"] * 3 + ["Do"] * 3, "days": days * 2,
                         "mean": [0.9, 0.6, 0.3] * 2, "lower": [0.8, 0.5, 0.2] * 2, "upper": [1.0, 0.7, 0.4] * 2})
    km = pd.DataFrame({"segment": "a", "stage": ["See", "See"], "days": [0.7, 1.5], "survival": [0.8, 0.4]})
    ax = plotting.plot_dwell_curves(surv, empirical=km)
    assert len(ax.lines) == 2 + 2  # a model line per stage, a KM step per stage (the Do one empty)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["See", "Do"]
    plt.close("all")


def test_plot_attribution_comparison_sorts_channels_and_draws_intervals():
    from matplotlib.container import ErrorbarContainer

    nan = float("nan")
    table = pd.DataFrame({
        "channel": ["a", "b", "c"] * 3,
        "model": ["last_touch"] * 3 + ["markov_1"] * 3 + ["bayesian"] * 3,
        "conversions": [1.0, 5.0, 3.0, 2.0, 4.0, 3.0, 1.0, 6.0, 2.0],
        "lower": [nan] * 3 + [1.0, 3.0, 2.0] + [0.5, 5.0, 1.0],
        "upper": [nan] * 3 + [3.0, 5.0, 4.0] + [1.5, 7.0, 3.0],
    })
    ax = plotting.plot_attribution_comparison(table)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["b", "c", "a"]  # by mean, largest first
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["last_touch", "markov_1 (90% interval)", "bayesian (90% interval)"]
    assert sum(isinstance(c, ErrorbarContainer) for c in ax.containers) == 2  # models with intervals
    ax = plotting.plot_attribution_comparison(table, top=2)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["b", "c"]
    assert "top 2" in ax.get_title()
    plt.close("all")
