"""analysis.reports.sections and .fit_sections: the notebooks' logic cells (03's Bayesian attribution, 04's time to
conversion, the fallback of a fit that did not converge), with stand-ins for fitted models."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from analysis.reports import ReportContext, open_report
from analysis.reports.fit_sections import (
    attribution_fallback_box,
    attribution_not_converged,
    cure_fallback_box,
    fit_or_fallback,
    show_bayesian_attribution,
    show_conversion_fit,
    show_fit_checks,
    show_time_in_stage,
    show_time_to_conversion,
)
from analysis.reports.sections import (
    attribution_identifiability,
    show_incident_scan,
    show_outcomes,
    show_touchpoint_friction,
)


class NotConverged(Exception):
    diagnostics = pd.DataFrame({"check": ["r_hat"], "ok": [False]})


class Model:
    def __init__(self, fails: bool = False, error: type[Exception] = NotConverged):
        self.fails, self.error, self.fitted = fails, error, False

    def fit_cached(self):
        if self.fails:
            raise self.error("r_hat 1.3 > 1.01")
        self.fitted = True


def _ctx(**kw):
    ts = pd.to_datetime(["2024-01-01", "2024-03-01"], utc=True)
    base = {"attention": [], "group_by": "segment", "groups": ["a"], "events": {"timestamp": ts}}
    ctx = SimpleNamespace(**(base | kw))
    ctx.note_fit = lambda what, model: ReportContext.note_fit(ctx, what, model)
    return ctx


def _kinds(shown):
    return [type(x).__name__ for x in shown]


# ------------------------------------------------------------------------------ fit_or_fallback
def test_a_converged_fit_shows_nothing_and_returns_none():
    shown, ctx, model = [], _ctx(), Model()
    assert (
        fit_or_fallback(
            model,
            NotConverged,
            on_fail="fallback",
            box=str,
            attention="x",
            ctx=ctx,
            show=shown.append,
        )
        is None
    )
    assert model.fitted and shown == [] and ctx.attention == []


def test_a_fit_that_does_not_converge_shows_the_box_and_diagnostics_and_notes_it():
    shown, ctx = [], _ctx()
    exc = fit_or_fallback(
        Model(fails=True),
        NotConverged,
        on_fail="fallback",
        box=cure_fallback_box,
        attention="time to conversion: the cure model did not converge",
        ctx=ctx,
        show=shown.append,
    )
    assert isinstance(exc, NotConverged)
    assert _kinds(shown) == ["HTML", "DataFrame"]
    assert shown[0].data.startswith('<div style="border:2px solid #b36b00')
    assert "The cure model did not converge (r_hat 1.3 &gt; 1.01)" in shown[0].data
    assert ctx.attention == ["time to conversion: the cure model did not converge"]


def test_on_fail_raise_stops_and_other_errors_are_not_caught():
    with pytest.raises(NotConverged):
        fit_or_fallback(
            Model(fails=True), NotConverged, on_fail="raise", box=str, attention="", ctx=_ctx()
        )
    with pytest.raises(ValueError):
        fit_or_fallback(
            Model(fails=True, error=ValueError),
            NotConverged,
            on_fail="fallback",
            box=str,
            attention="",
            ctx=_ctx(),
        )


def test_the_attribution_box_escapes_the_error_and_names_the_path_models():
    exc = NotConverged("<b>divergences</b>")
    assert attribution_not_converged(exc) == (
        "Bayesian attribution not shown: the sampler did not converge (<b>divergences</b>)"
    )
    box = attribution_fallback_box(exc)
    assert "&lt;b&gt;divergences&lt;/b&gt;" in box and "<b>divergences</b>" not in box
    assert "Shown instead: the path models (heuristics, Markov, Shapley)" in box


# --------------------------------------------------------------------- 03: Bayesian attribution
def test_one_channel_per_person_is_not_identifiable(tmp_path):
    csv = tmp_path / "ev.csv"
    rows = [
        {
            "event_id": f"e{i}",
            "timestamp": f"2024-01-{i + 1:02d}T10:00:00Z",
            "user_id": f"u{i % 4}",
            "channel": ["email", "search", "social", "display"][i % 4],
            "touchpoint": "purchase" if i >= 8 else "site_visit",
            "conversion": i >= 8,
        }
        for i in range(12)
    ]
    pd.DataFrame(rows).to_csv(csv, index=False)
    ctx = open_report({"segment": "all", "data_path": str(csv)})
    shown: list = []
    problem = attribution_identifiability(ctx, show=shown.append)
    assert problem.startswith("Bayesian attribution not run: channel effects are not identifiable")
    assert _kinds(shown) == ["HTML"] and "Not identifiable" in shown[0].data
    assert ctx.attention == ["attribution: channel effects are not identifiable from these paths"]


class Bayes:
    """A fitted BayesianAttributionModel's surface, as the section reads it."""

    n_visits, n_patterns, n_open, fit_seconds, fit_note = 1200, 40, 3, 12.4, "second try"
    segments = ("a", "b")
    idata = SimpleNamespace(posterior={"half_life": np.array([2.0, 3.0])})

    def __init__(self, conversions):
        self.conversions = conversions

    def check(self):
        return pd.DataFrame({"ok": [True]})

    def attribution(self, segments=None, by_segment=False, seed=None):
        t = pd.DataFrame(
            {"channel": ["email", "search"], "conversions": self.conversions, "per_1000": [5.0, 9]}
        )
        return t.assign(segment="a") if by_segment else t


def test_a_plausible_bayesian_table_joins_the_comparison():
    shown, ctx, tables = [], _ctx(), {}
    problem = show_bayesian_attribution(
        Bayes([10.0, 30.0]), ctx, tables, 100, seed=0, show=shown.append
    )
    assert problem == "" and list(tables) == ["bayesian"] and ctx.attention == []
    assert _kinds(shown) == [
        "Markdown",
        "DataFrame",
        "Markdown",
        "DataFrame",
        "Markdown",
        "DataFrame",
        "Markdown",
    ]
    assert shown[0].data.startswith(
        "1,200 settled stage visits in 40 exposure patterns, 2 group(s)"
    )
    assert (
        "; 3 open visits not modelled. Sampled in 12 s (second try); convergence:" in shown[0].data
    )
    assert list(shown[3].index) == ["search", "email"], "sorted by conversions"
    assert shown[-1].data.startswith("Carry-over half-life: 2.50 days")


def test_an_implausible_bayesian_table_is_shown_but_not_used():
    shown, ctx, tables = [], _ctx(), {}
    problem = show_bayesian_attribution(
        Bayes([80.0, 90.0]), ctx, tables, 100, seed=0, show=shown.append
    )
    assert problem.startswith("Bayesian attribution implausible: the channels' incremental effects")
    assert tables == {} and _kinds(shown)[2] == "HTML" and "Implausible" in shown[2].data
    assert ctx.attention == ["attribution: the Bayesian effects are implausible and not used"]


# ----------------------------------------------------------------------- 04: time to conversion
def _tt():
    rng = np.random.default_rng(0)
    n = 60
    return pd.DataFrame(
        {
            "duration_days": rng.exponential(20, n).round(1) + 0.5,
            "censored": rng.random(n) < 0.4,
            "first_channel": np.where(np.arange(n) % 2 == 0, "email", "search"),
        }
    )


class Cure:
    fit_seconds, fit_note = 4.0, ""

    def closed_by(self, days):
        return pd.DataFrame(
            [
                {"group": g, "days": d, "mean": 0.3, "lower": 0.2, "upper": 0.4}
                for g in ("email", "search")
                for d in days
            ]
        )

    def summary(self):
        return pd.DataFrame(
            {
                "group": ["email", "search"],
                "median_days": [10.0, 900.0],
                "median_lower": [8.0, 500.0],
                "median_upper": [12.0, 1500.0],
            }
        )

    def check(self):
        return pd.DataFrame({"ok": [True, True]})


def test_time_to_conversion_without_a_cure_model_shows_kaplan_meier_alone():
    shown, plots = [], []
    show_time_to_conversion(
        _tt(),
        "first_channel",
        None,
        [7, 30],
        _ctx(),
        by="first_channel",
        show=shown.append,
        plt_show=lambda: plots.append(1),
    )
    assert plots == [1] and _kinds(shown) == ["Markdown", "DataFrame"]
    assert shown[0].data.startswith("**Kaplan–Meier summary**")
    assert list(shown[1].index) == ["email", "search", "(all)"]
    assert {"share_by_7d", "share_by_30d"} <= set(shown[1].columns)


def test_time_to_conversion_sets_the_cure_model_beside_kaplan_meier_and_flags_extrapolation():
    shown = []
    show_time_to_conversion(
        _tt(),
        "first_channel",
        Cure(),
        [7, 30],
        _ctx(),
        by="first_channel",
        show=shown.append,
        plt_show=lambda: None,
    )
    assert _kinds(shown) == [
        "Markdown",
        "DataFrame",
        "Markdown",
        "DataFrame",
        "HTML",
        "Markdown",
        "DataFrame",
    ]
    assert shown[2].data == "**Cure model** (sampled in 4 s; convergence ok):"
    assert (
        "The median time to conversion of search lies beyond the data&#x27;s span" in shown[4].data
    )
    side = shown[-1]
    assert list(side.columns) == ["7 days", "30 days"] and list(side.index) == ["email", "search"]
    assert side.loc["email", "7 days"].endswith("| 30.0% [20.0%, 40.0%]")


# --------------------------------------------------------------------------- 02: time in stage
class Dwell:
    """A fitted DwellTimeModel's surface, as the section reads it (the figure is recorded)."""

    def survival(self):
        return "survival curves"

    def kaplan_meier(self):
        return "empirical curves"

    def summary(self):
        return pd.DataFrame(
            {
                "segment": ["a", "a", "b"],
                "stage": ["See", "Do", "See"],
                "median_days": [2.0, 5.0, 3.0],
                "median_lower": [1.0, 4.0, 2.0],
                "median_upper": [3.0, 6.0, 4.0],
                "uncensored": [10, 8, 9],
                "censored": [1, 2, 0],
            }
        )


def test_time_in_stage_shows_curves_per_group_tables_and_flags_extrapolation(monkeypatch):
    from analysis import plotting

    drawn = []
    monkeypatch.setattr(
        plotting, "plot_dwell_curves", lambda surv, segment, empirical: drawn.append(segment)
    )
    ttc = pd.DataFrame(
        {
            "segment": ["a", "a", "b"],
            "state": ["See", "Do", "See"],
            "mean": [20.0, 90.0, 10.0],
            "lower": [10.0, 50.0, 5.0],
            "upper": [30.0, 120.0, 15.0],
        }
    )
    steps = ttc.assign(mean=[3.0, 2.0, 4.0], lower=[2.0, 1.0, 3.0], upper=[4.0, 3.0, 5.0])
    shown, plots = [], []
    show_time_in_stage(
        Dwell(), ttc, steps, ["a"], _ctx(), show=shown.append, plt_show=lambda: plots.append(1)
    )
    assert drawn == ["a"] and plots == [1]
    assert _kinds(shown) == ["DataFrame", "Markdown", "DataFrame", "HTML"]
    assert list(shown[0].index) == [("a", "See"), ("a", "Do")]
    assert shown[1].data.startswith("**Expected time and stage visits to conversion**")
    table = shown[2]
    assert list(table.columns) == [
        "time to conversion",
        "extrapolated",
        "visits",
        "visits_lower",
        "visits_upper",
    ]
    assert table.loc[("a", "Do"), "extrapolated"] and not table.loc[("a", "See"), "extrapolated"]
    assert "Extrapolation" in shown[3].data


def test_time_in_stage_within_the_span_shows_no_warning(monkeypatch):
    from analysis import plotting

    monkeypatch.setattr(plotting, "plot_dwell_curves", lambda *a, **k: None)
    ttc = pd.DataFrame(
        {"segment": ["a"], "state": ["See"], "mean": [5.0], "lower": [4.0], "upper": [6.0]}
    )
    shown = []
    show_time_in_stage(Dwell(), ttc, ttc, ["a"], _ctx(), show=shown.append, plt_show=lambda: None)
    assert _kinds(shown) == ["DataFrame", "Markdown", "DataFrame"]


# ------------------------------------------------------------------------- 05: incident scan
def test_the_incident_scan_is_skipped_for_nominal_timestamps():
    shown = []
    got = show_incident_scan(
        None, None, _ctx(), grain="", seed=0, time_to_event=False, show=shown.append
    )
    assert got == (None, None) and _kinds(shown) == ["Markdown"]
    assert shown[0].data.startswith("Skipped (`time_to_event = False`)")


def test_the_incident_scan_says_there_is_nothing_to_scan_when_every_touchpoint_converts():
    """Purchase-only data (CDNOW): no step comes before a conversion; time_index raised."""
    steps = pd.DataFrame(
        {
            "person_id": ["p1", "p2"],
            "journey_index": [0, 0],
            "pos": [0, 0],
            "timestamp": pd.to_datetime(["2024-01-01", "2024-02-01"], utc=True),
            "touchpoint": ["purchase", "purchase"],
            "stage": ["Do", "Do"],
            "conversion": [True, True],
            "segment": ["all", "all"],
        }
    )
    shown = []
    here, nothing = show_incident_scan(
        steps, steps, _ctx(), grain="", seed=0, time_to_event=True, show=shown.append
    )
    assert here.empty and nothing["text"].startswith("Nothing to scan")
    assert _kinds(shown) == ["Markdown"]


def test_the_incident_scan_names_a_planted_incident_and_says_what_it_could_see_without_one(
    tmp_path, monkeypatch
):
    """A payment error planted for three weeks is found; on the same shop without it the scan
    finds none and says how large a drop it could have seen."""
    from analysis import plotting, synth

    monkeypatch.setattr(plotting, "plot_step_series", lambda *a, **k: None)
    events, _ = synth.generate(n_persons=800, seed=2, incidents=[synth.SAMPLE_INCIDENT])
    csv = tmp_path / "ev.csv"
    events.to_csv(csv, index=False)
    ctx = open_report({"segment": "all", "data_path": str(csv)})
    steps = ctx.journeys("all").touchpoint_steps(by=ctx.group_by, events=ctx.events)
    shown = []
    here, nothing = show_incident_scan(
        steps,
        steps,
        ctx,
        grain="",
        seed=0,
        time_to_event=True,
        show=shown.append,
        plt_show=lambda: None,
    )
    assert nothing is None and len(here) and "payment_error" in str(here["touchpoint"].tolist())
    assert _kinds(shown)[0] == "Markdown" and shown[0].data.startswith("- **")
    assert _kinds(shown)[-1] == "DataFrame"

    calm, _ = synth.generate(n_persons=800, seed=2)  # the same shop without the incident
    calm.to_csv(csv, index=False)
    ctx = open_report({"segment": "all", "data_path": str(csv)})
    steps = ctx.journeys("all").touchpoint_steps(by=ctx.group_by, events=ctx.events)
    shown = []
    here, nothing = show_incident_scan(
        steps,
        steps,
        ctx,
        grain="",
        seed=0,
        time_to_event=True,
        show=shown.append,
        plt_show=lambda: None,
    )
    assert not len(here) and nothing["text"].startswith("No incident found:")
    assert _kinds(shown)[0] == "Markdown" and shown[0].data.startswith("**No incident found:**")


# ------------------------------------------------------------------------ 01: journey outcomes
def test_outcomes_count_journeys_and_name_the_settings_the_data_suggest(tmp_path, monkeypatch):
    from analysis import plotting, synth

    drawn = []
    monkeypatch.setattr(plotting, "plot_outcomes", lambda journeys: drawn.append(len(journeys)))
    events, _ = synth.generate(n_persons=200, seed=4)
    csv = tmp_path / "ev.csv"
    events.to_csv(csv, index=False)
    ctx = open_report({"segment": "all", "data_path": str(csv)})
    jr = ctx.journeys()
    sm = jr.summary
    shown, plots = [], []
    show_outcomes(
        jr,
        ctx,
        journey_by="session",
        inactivity_days=7,
        show=shown.append,
        plt_show=lambda: plots.append(1),
    )
    assert drawn == [sm["journeys"]] and plots == [1] and _kinds(shown) == ["Markdown"] * 2
    assert shown[0].data.startswith(
        f"**{len(ctx.mine):,}** touchpoints of **{sm['persons']:,}** persons form "
        f"**{sm['journeys']:,}** journeys: **{sm['converted']:,}** converted"
    )
    assert shown[1].data.startswith(
        "**How journeys are cut:** journey_by=session, inactivity_days=7. "
    )
    assert "(set with `--param journey_by=" in shown[1].data, "settings other than the suggested"


# ---------------------------------------------------------------------------- 02: fit checks
class Fit:
    def __init__(self, fallback=None):
        self.fallback = fallback
        self.fit_note = "sampled twice" if fallback else None
        self.failed_checks = "divergences = 3 (threshold 0)"
        self.failed_diagnostics = pd.DataFrame({"check": ["divergences"], "ok": [False]})

    def check(self):
        return pd.DataFrame({"check": ["r_hat"], "ok": [True]})


def test_fit_checks_show_a_fallbacks_box_and_every_fits_checks():
    shown, ctx = [], _ctx()
    checks = show_fit_checks(
        {"stage transitions": Fit(), "time in stage": Fit("the exact model")}, ctx, shown.append
    )
    assert _kinds(shown) == ["HTML", "DataFrame"]
    assert "Time in stage: fallback model shown." in shown[0].data
    assert list(checks.index.get_level_values("model")) == ["stage transitions", "time in stage"]
    assert checks["ok"].tolist() == [True, False], "the fallback's checks are the failed fit's"
    assert ctx.attention == [
        "Time in stage: shown with a fallback model (the Bayesian fit failed its convergence checks)"
    ]


# ------------------------------------------------------------------------ 04: conversion fit
class Conversion:
    n = np.ones(7)
    fit_seconds, fit_note, fallback = 21.0, "target_accept raised", None

    def rates(self):
        return pd.DataFrame({"raw_rate": [0.2], "mean": [0.21], "lower": [0.18], "upper": [0.24]})

    def check(self):
        return pd.DataFrame({"ok": [True]})


def test_conversion_fit_shows_the_overall_rate_and_what_was_left_out():
    shown = []
    counts = pd.DataFrame({"n": [100, 250]})
    overall = show_conversion_fit(Conversion(), counts, ["device"], _ctx(), shown.append)
    assert float(overall["mean"].iloc[0]) == 0.21
    assert _kinds(shown) == ["HTML", "Markdown", "DataFrame"]
    assert "Conversion by channel: target_accept raised." in shown[0].data, "the fit note's box"
    assert shown[1].data == (
        "350 journeys in 7 cells; left out (one level in this segment): <code>device</code>. "
        "Overall: raw **20.0%**, posterior **21.0%** [18.0%, 24.0%]. Sampled in 21 s "
        "(target\\_accept raised); convergence:"
    )


# ------------------------------------------------------------------ 05: touchpoint friction
def test_touchpoint_friction_ranks_later_steps_and_lists_the_starting_ones(monkeypatch):
    from analysis import plotting

    drawn = []
    monkeypatch.setattr(
        plotting, "plot_touchpoint_friction", lambda ranked, n: drawn.append((len(ranked), n))
    )
    funnel = pd.DataFrame(
        {
            "touchpoint": ["ad", "cart_error", "slow_page", "faq"],
            "compared_at": ["(start)", "cart", "checkout", "cart"],
            "compared": [True, True, True, False],
            "rate_with": [0.3, 0.1, 0.2, 0.25],
            "rate_without": [0.2, 0.3, 0.25, 0.25],
            "lost": [0.0, 40.0, 10.0, 0.0],
        }
    )
    funnel.attrs = {"order": ["ad", "cart", "checkout"], "order_learned": True}
    shown = []
    ranked = show_touchpoint_friction(funnel, top_n=5, show=shown.append, plt_show=lambda: None)
    assert list(ranked["touchpoint"]) == ["cart_error", "slow_page", "faq"] and drawn == [(3, 5)]
    assert _kinds(shown) == ["Markdown", "DataFrame", "Markdown"]
    assert shown[0].data.startswith("**Step order** (learned from the data; set `step_order`")
    assert list(shown[1].index) == ["cart_error", "slow_page"], "only compared touchpoints"
    assert shown[2].data == "Starting touchpoints (not ranked): <code>ad</code> 30% vs 20% without."
