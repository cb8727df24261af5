"""Headline rules (issue 15, item 5): each rule with a case that triggers it and one that does not."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analysis import text
from analysis.friction import funnel_losses
from analysis.reports import headline as hl
from analysis.reports import render_index
from analysis.reports.render import headline_cells

EVIL = "<script>alert(1)</script>[x](http://e.vil) *b* _i_ `c`"


# ------------------------------------------------------------------------------------ top channel
def _bayes(means, lowers, uppers, channels=None):
    channels = channels or [f"ch{i}" for i in range(len(means))]
    return pd.DataFrame(
        {
            "channel": channels,
            "conversions": means,
            "conversions_lower": lowers,
            "conversions_upper": uppers,
            "per_1000": np.asarray(means) * 2.0,
        }
    )


def test_top_channel_bayesian_named_only_when_its_interval_excludes_zero():
    named = hl.top_channel_headline(
        {"bayesian": _bayes([40.0, 10.0], [12.0, -5.0], [70.0, 25.0], ["email", "tv"])},
        converged=True,
    )
    assert named == {
        "top_channel": "email",
        "top_channel_model": "bayesian",
        "top_channel_conversions": 40.0,
        "top_channel_lower": 12.0,
        "top_channel_upper": 70.0,
    }
    # the largest straddles zero: nothing named, and how large an effect the data could show
    # (half-widths 50 and 20: their median 35)
    h = hl.top_channel_headline(
        {"bayesian": _bayes([40.0, 10.0], [-10.0, -10.0], [90.0, 30.0], ["email", "tv"])}
    )
    assert "top_channel" not in h and h["top_channel_model"] == "bayesian"
    assert h["top_channel_note"].startswith(
        "no channel stands out: the largest effect, email 40 conversions"
    )
    assert "includes zero" in h["top_channel_note"]
    assert h["top_channel_note"].endswith(
        "the data could have shown an effect of about 35 conversions"
    )
    # every effect negative: nothing named either
    h = hl.top_channel_headline({"bayesian": _bayes([-3.0, -8.0], [-6.0, -12.0], [-1.0, -4.0])})
    assert "top_channel" not in h and "no channel has a positive effect" in h["top_channel_note"]


def test_top_channel_needs_a_converged_usable_bayesian_fit():
    bayes = _bayes([40.0, 10.0], [12.0, -5.0], [70.0, 25.0], ["email", "tv"])
    h = hl.top_channel_headline({"bayesian": bayes}, converged=False)
    assert "top_channel" not in h and "did not converge" in h["top_channel_note"]
    markov = pd.DataFrame(
        {
            "channel": ["email", "social"],
            "conversions": [30.0, 10.0],
            "conversions_lower": [25.0, 6.0],
            "conversions_upper": [35.0, 14.0],
        }
    )
    h = hl.top_channel_headline({"bayesian": bayes, "markov_1": markov}, converged=False)
    assert h["top_channel"] == "email" and h["top_channel_model"] == "markov_1"
    h = hl.top_channel_headline(
        {"bayesian": bayes, "markov_1": markov}, bayesian_problem="one channel per person"
    )
    assert h["top_channel_model"] == "markov_1"
    assert hl.top_channel_headline({}) == {}


def test_top_channel_markov_needs_a_lead_over_the_runner_up():
    sep = pd.DataFrame(
        {
            "channel": ["email", "social", "tv"],
            "conversions": [30.0, 10.0, 5.0],
            "conversions_lower": [25.0, 6.0, 2.0],
            "conversions_upper": [35.0, 14.0, 8.0],
        }
    )
    assert hl.top_channel_headline({"markov_1": sep})["top_channel"] == "email"
    overlap = sep.assign(conversions_lower=[12.0, 6.0, 2.0])
    h = hl.top_channel_headline({"markov_1": overlap})
    assert "top_channel" not in h and "overlap" in h["top_channel_note"]
    # half-widths 11.5 (email) and 4 (social): a lead of about 15.5 could have been resolved
    assert h["top_channel_note"].endswith(
        "the data could have shown a lead of about 16 conversions"
    )
    # point estimates only (no draws): no interval, no claim
    h = hl.top_channel_headline({"markov_1": sep[["channel", "conversions"]]})
    assert "top_channel" not in h and "no 90% intervals" in h["top_channel_note"]
    h = hl.top_channel_headline({"markov_1": sep.iloc[:1]})
    assert "top_channel" not in h and "single channel" in h["top_channel_note"]


def test_index_shows_a_dash_and_the_note_when_no_channel_is_named():
    note = hl.top_channel_headline(
        {"bayesian": _bayes([40.0, 10.0], [-10.0, -10.0], [90.0, 30.0], [EVIL, "tv"])}
    )
    cells = headline_cells(note)
    assert cells[3].startswith("– <span class=small>no channel stands out")
    assert "<script" not in cells[3] and "&lt;script&gt;" in cells[3]
    named = headline_cells(
        {
            "top_channel": "email",
            "top_channel_model": "bayesian",
            "top_channel_conversions": 40.0,
            "top_channel_lower": 12.0,
            "top_channel_upper": 70.0,
        }
    )
    assert named[3] == "email <span class=small>(bayesian, 40 [12–70] conversions)</span>"
    manifest = {
        "run_id": "r",
        "parameters": {
            "notebooks": ["03_attribution.ipynb"],
            "data_path": "d",
            "segments": {"all": {}},
        },
        "segments": {"all": {"status": "ok", "notebooks": {}}},
        "headline": {"all": note},
    }
    page = render_index(manifest)
    assert (
        "no channel stands out" in page and "top_channel_note" not in page
    )  # in its column, not under "other"


# ------------------------------------------------------------------------------------ identifiability
def _paths(rows):
    return pd.DataFrame(rows, columns=["path", "conversions", "nulls"]).assign(value=0.0)


def test_attribution_unidentifiable_when_every_path_repeats_one_channel():
    ok, why = hl.attribution_identifiable(
        _paths([("email > email > email", 30, 70), ("social > social", 10, 90), ("(none)", 5, 50)])
    )
    assert not ok and "every path is a repeat of one channel" in why
    few = _paths([("email > email", 300, 700), ("social", 100, 900), ("email > social", 1, 2)])
    ok, why = hl.attribution_identifiable(few)
    assert not ok and "only 3 of 2,003 journeys" in why
    ok, why = hl.attribution_identifiable(
        _paths([("email > social", 30, 70), ("social", 10, 90), ("email", 5, 20)])
    )
    assert ok and why == ""


def test_attribution_unidentifiable_when_each_person_has_one_channel():
    events = pd.DataFrame(
        {
            "person_id": ["p1", "p1", "p2", "p2", "p3"],
            "channel": ["email", "email", "social", "store", "social"],
            "conversion": [False, False, False, True, False],
        }
    )  # p2's store row: the purchase
    mixed = _paths([("email > social", 30, 70), ("social", 10, 90)])
    ok, why = hl.attribution_identifiable(mixed, events)
    assert not ok and "every person's touches share one channel (3 persons" in why
    events.loc[1, "channel"] = "social"  # p1 now met two channels
    assert hl.attribution_identifiable(mixed, events) == (True, "")


def test_attribution_plausibility_after_a_fit():
    # session-level clickstream: every channel large, tight and negative, -620 in all against 470
    t = _bayes([-300.0, -200.0, -120.0], [-340.0, -230.0, -150.0], [-260.0, -170.0, -90.0])
    ok, why = hl.attribution_plausible(t, 470)
    assert not ok and "add up to -620 conversions against 470 observed" in why
    ok, why = hl.attribution_plausible(t.assign(conversions=[-30.0, -20.0, -12.0]), 470)
    assert not ok and "every channel's effect is negative" in why
    ok, why = hl.attribution_plausible(_bayes([40.0, -5.0], [12.0, -15.0], [70.0, 4.0]), 470)
    assert ok and why == ""
    ok, why = hl.attribution_plausible(
        _bayes([500.0, -400.0], [450.0, -450.0], [550.0, -350.0]), 470
    )
    assert not ok and "larger than the 470 observed" in why  # the sum (100) hides one absurd effect


# ------------------------------------------------------------------------------------ time beyond the data
def test_times_beyond_the_data_span_are_marked_as_extrapolation():
    ttc = pd.DataFrame(
        {
            "segment": "all",
            "state": ["(start)", "See", "Do", "Care"],
            "mean": [2249.0, 12.0, 40.0, np.nan],
            "lower": [1251.0, 5.0, 20.0, np.nan],
            "upper": [3690.0, 30.0, 400.0, np.nan],
        }
    )
    out = text.mark_extrapolation(ttc, 182.0)
    assert list(out["extrapolated"]) == [True, False, True, False]
    assert out["display"][0] == "> 182 d (the data's span): extrapolation"
    assert out["display"][1] == "12.0 [5.0–30.0] d"
    assert out["display"][2] == "40.0 [20.0– > 182 d] (upper bound beyond the data)"
    assert out["display"][3] == "–"
    assert list(ttc.columns) == [
        "segment",
        "state",
        "mean",
        "lower",
        "upper",
    ]  # the input is left alone
    cure = pd.DataFrame(
        {
            "group": ["a", "b"],
            "median_days": [750.0, 3.0],
            "median_lower": [600.0, 2.0],
            "median_upper": [900.0, 4.0],
        }
    )
    out = text.mark_extrapolation(
        cure, 182.0, mean="median_days", lower="median_lower", upper="median_upper"
    )
    assert list(out["extrapolated"]) == [True, False]


def test_a_time_beyond_the_span_is_never_a_headline():
    assert text.time_headline("median_days_to_conversion", 12.5, 182.0) == {
        "median_days_to_conversion": 12.5
    }
    h = text.time_headline("median_days_to_conversion", 750.0, 182.0)
    assert "median_days_to_conversion" not in h
    assert "beyond the data's span of 182 d" in h["median_days_to_conversion_note"]
    assert "median_days_to_conversion" not in text.time_headline(
        "median_days_to_conversion", 20.0, 182.0, upper=900.0
    )
    assert text.time_headline("x", float("nan"), 10.0) == {}
    ts = pd.Series(pd.to_datetime(["2024-01-01", "2024-07-01", "2024-03-01"], utc=True))
    assert text.data_span_days(ts) == 182.0
    assert text.data_span_days(pd.DataFrame({"timestamp": ts})) == 182.0


def test_conversion_headline_leaves_out_a_median_beyond_the_span():
    from analysis.models.conversion import conversion_headline
    from tests.models.test_conversion import _headline_model

    m, _ = _headline_model()
    journeys = pd.DataFrame(
        {"converted": [True, True, False, True], "duration_days": [2.0, 10.0, 99.0, 4.0]}
    )
    assert conversion_headline(m, journeys, span_days=30.0)["median_days_to_conversion"] == 4.0
    h = conversion_headline(m, journeys, span_days=3.0)
    assert (
        "median_days_to_conversion" not in h
        and "extrapolation" in h["median_days_to_conversion_note"]
    )


def test_durations_below_a_day_and_cells_without_data():
    assert text.format_days(0.25) == "6.0 h" and text.format_days(0.002) == "2.9 min"
    assert (
        text.format_days(3.04) == "3.0 d"
        and text.format_days(np.nan) == "–"
        and text.format_days(None) == "–"
    )
    assert text.format_interval_days(0.1, 0.05, 0.2) == "2.4 [1.2–4.8] h"
    summary = pd.DataFrame(
        {
            "segment": "a",
            "stage": ["See", "Think", "Do"],
            "median_days": [0.01, 2.0, 1.5],
            "median_lower": [0.005, 1.5, 0.1],
            "median_upper": [0.02, 2.5, 30.0],
            "mean_days": [0.02, 3.0, 2.0],
            "mean_lower": [0.01, 2.0, 0.2],
            "mean_upper": [0.04, 4.0, 40.0],
            "uncensored": [120, 40, 0],
            "censored": [3, 2, 7],
        }
    )
    d = text.dwell_display(summary)
    assert list(d.columns) == ["segment", "stage", "median", "mean", "uncensored", "censored"]
    assert d["median"].tolist() == [
        "14 [7.2–29] min",
        "2.0 [1.5–2.5] d",
        "–",
    ]  # Do: no completed visit
    assert "0.0 d" not in " ".join(d["median"]) + " ".join(d["mean"])
    # a mean beyond the data's span is an extrapolation, an upper bound beyond it is said so
    summary.loc[1, ["mean_days", "mean_upper"]] = [400.0, 900.0]
    summary.loc[0, "mean_upper"] = 200.0
    d = text.dwell_display(summary, span_days=182)
    assert d["mean"].tolist()[:2] == [
        "29 min [upper bound beyond the data's span]",
        "> 182 d (the data's span): extrapolation",
    ]
    assert d["median"].tolist() == [
        "14 [7.2–29] min",
        "2.0 [1.5–2.5] d",
        "–",
    ]  # within the span: as before


# ------------------------------------------------------------------------------------ posterior predictive
def test_ppc_misfits_flags_p_values_near_0_or_1():
    ppc = pd.DataFrame(
        {
            "segment": ["a", "a", "b", "b"],
            "statistic": ["conversion rate", "visits per journey"] * 2,
            "observed": [0.2, 1.5, 0.3, 2.0],
            "predicted_mean": [0.2, 1.5, 0.25, 2.4],
            "predicted_lower": [0.15, 1.3, 0.2, 2.2],
            "predicted_upper": [0.25, 1.7, 0.3, 2.6],
            "p_value": [0.5, 0.3, 0.04, 1.0],
        }
    )
    bad, msg = hl.ppc_misfits(ppc)
    assert list(zip(bad["segment"], bad["statistic"], strict=True)) == [
        ("b", "conversion rate"),
        ("b", "visits per journey"),
    ]
    assert "b, visits per journey: observed 2, p = 1.000" in msg.replace(
        " (predicted 90%: 2.2 to 2.6)", ""
    )
    bad, msg = hl.ppc_misfits(ppc.iloc[:2])
    assert bad.empty and msg == ""
    assert "&lt;script&gt;" in text.warning_html(f"{EVIL}: misfit")


# ------------------------------------------------------------------------------------ labels
def test_short_labels_stay_distinct():
    prefix = "x" * 60
    labels = text.short_labels([f"{prefix} > {i}" for i in range(15)], 40)
    assert len(set(labels)) == 15 and all(len(x) <= 40 for x in labels)
    assert text.short_labels(["a > b", "a > b"], 40) == [
        "a > b",
        "a > b",
    ]  # equal paths keep one label
    same_ends = text.short_labels([prefix + m + prefix for m in "abc"], 20)
    assert same_ends[1:] == [same_ends[0] + " (2)", same_ends[0] + " (3)"]
    assert text.short_labels(["short", "also short"]) == ["short", "also short"]  # not triggered


# ------------------------------------------------------------------------------------ friction
def test_friction_stage_named_only_when_p_worst_is_high(hand_chain):
    from analysis.reports import transition_headline

    model = hand_chain()
    a, b = transition_headline(model, ["a"]), transition_headline(model, ["b"])
    # a (100 journeys): Do has the largest mean gain, but in only ~80% of draws: not named
    assert (
        a["friction_candidate"] == "Do"
        and a["friction_p_worst"] < 0.9
        and "friction_stage" not in a
    )
    assert a["friction_note"].startswith(
        "no stage stands out: Do has the largest gain in conversion if its drop-off fell 20% in"
    )
    assert f"P(worst) {a['friction_p_worst']:.2f} < 0.9" in a["friction_note"]
    # b (300 journeys): See in every draw
    assert (
        b["friction_stage"] == "See" and b["friction_p_worst"] >= 0.9 and "friction_note" not in b
    )
    assert b["friction_question"] == "largest gain in conversion if its drop-off fell 20%"
    cells = headline_cells(b)
    assert cells[2] == (
        "See <span class=small>(largest gain in conversion if its drop-off fell 20%; "
        "P(worst) 1.00)</span>"
    )
    assert headline_cells(a)[2].startswith("– <span class=small>no stage stands out: Do")


def _funnel(reach, converted, journeys):
    t = pd.DataFrame({"stage": list(reach), "row": "reach", "n": list(reach.values())})
    t["stage"] = pd.Categorical(t["stage"], categories=list(reach), ordered=True)
    t.attrs = {"journeys": journeys, "converted": converted}
    return t


def test_friction_explanation_against_the_funnel():
    named = {"friction_stage": "Do", "friction_candidate": "Do", "friction_p_worst": 0.97}
    # the funnel loses most after See (1000 -> 300), the model names Do: explained
    funnel = _funnel({"See": 1000, "Think": 300, "Do": 250}, converted=150, journeys=1000)
    text = hl.friction_explanation(named, funnel)
    assert text.startswith(
        "The model names Do (largest gain in conversion if its drop-off fell 20%, P(worst) 0.97)"
    )
    assert (
        "largest share of journeys after See (70%: 700 of 1,000 reached See but not Think)" in text
    )
    assert "different questions" in text and "how many journeys pass through it" in text
    # the funnel's biggest loss is at Do too (250 -> 50): they agree, no explanation needed
    agree = hl.friction_explanation(
        named, _funnel({"See": 1000, "Think": 800, "Do": 700}, converted=100, journeys=1000)
    )
    assert (
        agree.startswith("The funnel agrees with the model") and "different questions" not in agree
    )
    # journeys are cut at conversion: Care after the converted step is no loss (not triggered)
    after = _funnel(
        {"See": 1000, "Think": 800, "Do": 700, "Care": 10}, converted=100, journeys=1000
    )
    assert hl.friction_explanation(named, after).startswith("The funnel agrees with the model")
    # nothing named: say so, with the P
    vague = hl.friction_explanation({"friction_candidate": "Do", "friction_p_worst": 0.6}, funnel)
    assert (
        vague.startswith("No stage stands out in the model (Do has the largest gain")
        and "60%" in vague
    )


def test_friction_explanation_reads_the_model_and_the_plotted_funnel(mapped, hand_chain):
    """With the model's friction table and journey_map: the same steps as plot_funnel draws."""
    _, _, m = mapped
    steps = funnel_losses(m)
    reach = m[m["row"] == "reach"].sort_values("stage")
    expected = [str(s) for s in reach["stage"]]
    expected.insert(expected.index("Do") + 1, "converted")
    assert list(steps["step"]) == expected
    assert math.isnan(steps["lost_share"].iloc[-1])
    model = hand_chain()
    text = hl.friction_explanation(model.friction(0.2), m, segment="b")
    assert "See" in text and "P(worst)" in text
    with pytest.raises(ValueError, match="several segments"):
        hl.friction_explanation(model.friction(0.2), m)


# ------------------------------------------------------------------------------------ escaping
def test_md_escape_keeps_data_from_becoming_markup():
    import mistune

    out = mistune.html(f"Top channel: {text.md_escape(EVIL)} and {text.md_escape('a_b_c')}")
    for tag in ("<script", "<a ", "<em>", "<strong>", "<code>"):
        assert tag not in out
    assert "[x](http://e.vil)" in out and "a_b_c" in out and "*b*" in out
    assert text.md_escape("O'Brien & Co") == "O&#x27;Brien &amp; Co"  # entities left intact
    assert (
        mistune.html(text.md_escape("O'Brien & Co")).strip() == "<p>O'Brien &amp; Co</p>"
    )  # shown as typed
    assert text.md_escape("plain words") == "plain words"  # not triggered


def test_compact_path_writes_runs_once_with_their_count_and_keeps_paths_distinct():
    paths = [
        "direct > " * 13 + "direct",
        "direct > " * 12 + "direct",
        "email > email > direct > email",
    ]
    got = [text.compact_path(p) for p in paths]
    assert got == ["direct ×14", "direct ×13", "email ×2 > direct > email"]
    assert text.compact_path("search") == "search"


def test_index_names_the_highest_rate_channel_only_with_its_figures_or_says_why_not():
    from analysis.reports.render import headline_cells

    named = {
        "highest_rate_channel": "<b>web</b>",
        "highest_rate_channel_rate": 0.3,
        "highest_rate_channel_lower": 0.25,
        "highest_rate_channel_upper": 0.35,
        "highest_rate_channel_p_best": 0.95,
    }
    cell = headline_cells(named)[3]
    assert (
        "&lt;b&gt;web&lt;/b&gt; <span class=small>(highest conversion rate, 30.0% [25.0%–35.0%], P(best) 0.95)"
        in cell
    )
    note = headline_cells(
        {
            "highest_rate_channel_candidate": "web",
            "highest_rate_channel_note": "no channel stands out: web …",
        }
    )[3]
    assert note.startswith("– ") and "no channel stands out" in note and "candidate" not in note
    assert headline_cells({})[3] == "–"


def test_index_shows_the_top_incident_or_what_the_scan_could_have_seen():
    from analysis.reports.render import headline_cells

    found = headline_cells(
        {
            "top_incident": "Do stage (<i>payment_error</i> events), every segment: "
            "conversion 51% → 29% from 3 Mar to 23 Mar 2024"
        }
    )[4]
    assert found.startswith("Do stage (&lt;i&gt;payment_error") and "<i>" not in found
    none = headline_cells({"incident_note": "No incident found: … could have shown a fall … −40%"})[
        4
    ]
    assert none.startswith("– <span class=small>No incident found")
    assert headline_cells({})[4] == "–"
