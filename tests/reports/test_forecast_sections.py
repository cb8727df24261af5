"""analysis.reports.forecast_sections (notebook 06's cells), its figures, and the index's forecast
cell: the backtest's cut-offs, the verdict on log-loss against scikit-learn's, the at-risk rule
against a hand count, the scored CSV (where it goes, what it holds), and escaping."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import matplotlib.pyplot as plt
import mistune
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from sklearn.metrics import log_loss

from analysis.plotting.forecast import (
    plot_gains,
    plot_reliability,
    plot_score_distribution,
)
from analysis.predict.periods import PeriodSpread
from analysis.predict.scores import calibration_table, forecast_scores
from analysis.reports import forecast_sections as fs
from analysis.reports.render import forecast_cell, headline_cells, render_index
from analysis.text import md_code

IMG = "<img src=x onerror=alert(1)>"
LINK = "[x](javascript:alert(1))"
H = pd.Timedelta(days=14)


def _ctx(start="2024-01-01", end="2024-06-30", **kw):
    ts = pd.date_range(start, end, periods=50, tz="UTC")
    base = {
        "events": pd.DataFrame({"timestamp": ts, "segment": "a"}),
        "data_end": ts.max(),
        "params": {"inactivity_days": 30.0, "journey_by": "inactivity", "max_links": 3},
        "group_by": "segment",
        "groups": ["a"],
        "stage_map": SimpleNamespace(stages=("See", "Think", "Do", "Care")),
        "conversion_stage": "Do",
        "attention": [],
        "note_fit": lambda what, model: None,
    }
    return SimpleNamespace(**(base | kw))


# ------------------------------------------------------------------------------------ the plan
def test_cutoffs_are_one_horizon_apart_and_leave_a_full_horizon_before_the_end():
    ctx = _ctx()
    plan = fs.forecast_plan(
        ctx, horizon_days=14, backtest_cutoffs=3, train_origins=4, time_to_event=True
    )
    assert plan.cutoffs == [ctx.data_end - 3 * H, ctx.data_end - 2 * H, ctx.data_end - H]
    assert plan.origins == 4 and not plan.backtest_note and not plan.forecast_note
    assert plan.options["horizon_days"] == 14 and plan.options["max_links"] == 3


def test_a_short_history_gets_fewer_training_moments_then_no_backtest_then_no_forecast():
    start = pd.Timestamp("2024-01-01", tz="UTC")
    # 50 days: cut-offs at end−28 and end−14 days; the first one's training moments one horizon
    # apart after the start: 22 − 14 = 8 > 0, 22 − 28 < 0, so one
    ctx = _ctx(end=str((start + pd.Timedelta(days=50)).date()))
    plan = fs.forecast_plan(
        ctx, horizon_days=14, backtest_cutoffs=2, train_origins=4, time_to_event=True
    )
    first = plan.cutoffs[0]
    assert plan.origins == max(k for k in range(1, 5) if first - k * H > start)
    # 20 days: no cut-off has a training moment after the start, but the forecast has one
    ctx = _ctx(end=str((start + pd.Timedelta(days=20)).date()))
    plan = fs.forecast_plan(
        ctx, horizon_days=14, backtest_cutoffs=2, train_origins=4, time_to_event=True
    )
    assert plan.cutoffs == [] and "No backtest" in plan.backtest_note and not plan.forecast_note
    ctx = _ctx(end=str((start + pd.Timedelta(days=10)).date()))
    plan = fs.forecast_plan(
        ctx, horizon_days=14, backtest_cutoffs=2, train_origins=4, time_to_event=True
    )
    assert "less than one horizon" in plan.forecast_note and plan.backtest_note


def test_nominal_timestamps_skip_the_backtest_and_the_forecast_and_say_so():
    plan = fs.forecast_plan(
        _ctx(), horizon_days=14, backtest_cutoffs=2, train_origins=4, time_to_event=False
    )
    assert plan.cutoffs == [] and "nominal" in plan.backtest_note
    assert "nominal" in plan.forecast_note
    shown = []
    assert fs.show_backtest(None, {}, plan, show=shown.append) == {}
    assert "nominal" in shown[0].data
    sf = fs.segment_forecast(None, _ctx(), plan)
    assert sf.rows.empty and "nominal" in sf.note and "`" not in sf.note
    assert fs.show_reliability({}, show=shown.append) == {} and "see above" in shown[-1].data
    assert fs.forecast_headline(sf)["forecast_note"] == sf.note


def test_forecast_events_set_segment_to_the_groups_compared():
    ev = pd.DataFrame({"timestamp": [1, 2], "platform": ["web", 7], "segment": ["x", "y"]})
    out = fs.forecast_events(SimpleNamespace(events=ev, group_by="platform"))
    assert list(out["segment"]) == ["web", "7"] and list(ev["segment"]) == ["x", "y"]


# ------------------------------------------------------------------------------- the backtest
def _backtest(seed=0, n=4000, cuts=2):
    """A backtest's ``keep`` and scores: the truth, a noisy copy of it and the base rate."""
    rng = np.random.default_rng(seed)
    kept, rows = {}, []
    for c in range(cuts):
        cut = pd.Timestamp("2024-05-01", tz="UTC") + c * H
        x = rng.normal(size=n)
        truth = 1 / (1 + np.exp(-(-2.0 + 1.5 * x)))
        y = (rng.random(n) < truth).astype(int)
        noisy = 1 / (1 + np.exp(-(-2.0 + 1.5 * x + rng.normal(0, 1.0, n))))
        for name, p in [
            (fs.BASE_RATE, np.full(n, y.mean())),
            (fs.BOOSTED, noisy),
            (fs.BAYES, truth),
        ]:
            kept[(cut, name)] = (p, y)
            rows.append({"cutoff": cut, "method": name, **forecast_scores(p, y), "seconds": 1.0})
            rows[-1]["decile_coverage"] = np.nan
    return kept, pd.DataFrame(rows)


def test_log_loss_difference_is_sklearns_and_its_interval_separates_a_worse_forecast():
    kept, _ = _backtest()
    pb, y = fs.pooled(kept, fs.BOOSTED)
    pt, _ = fs.pooled(kept, fs.BAYES)
    d = fs.log_loss_difference(kept, fs.BOOSTED, fs.BAYES)
    assert d["difference"] == pytest.approx(log_loss(y, pb) - log_loss(y, pt), rel=1e-9)
    assert d["n"] == len(y) == 8000 and d["lower"] > 0 and not d["within_noise"]
    same = fs.log_loss_difference(kept, fs.BAYES, fs.BAYES)
    assert same["difference"] == 0 and same["within_noise"]


def test_the_summary_pools_cutoffs_as_sklearn_scores_all_their_journeys():
    kept, scores = _backtest()
    summary = fs.backtest_summary(scores)
    for name in (fs.BASE_RATE, fs.BOOSTED, fs.BAYES):
        p, y = fs.pooled(kept, name)
        assert summary.loc[name, "log_loss"] == pytest.approx(log_loss(y, p), rel=1e-9)
    assert summary.loc[fs.BAYES, "seconds"] == 2.0
    assert list(summary.index) == [fs.BASE_RATE, fs.BOOSTED, fs.BAYES]
    # deciles: each cut-off has ten whatever its journeys (9 of 10 and 10 of 10: 95%)
    uneven = scores.copy()
    bayes = uneven.index[uneven["method"] == fs.BAYES]
    uneven.loc[bayes, "decile_coverage"] = [0.9, 1.0]
    uneven.loc[bayes[0], "n"] = 100
    assert fs.backtest_summary(uneven).loc[fs.BAYES, "decile_coverage"] == pytest.approx(0.95)


def test_the_verdict_names_the_lowest_log_loss_and_whether_the_gap_is_noise():
    kept, scores = _backtest()
    plan = SimpleNamespace(horizon_days=14.0, origins=4, backtest_note="")
    shown = []
    verdict = fs.show_backtest(scores, kept, plan, show=shown.append)
    assert verdict["best"] == fs.BAYES and verdict["compared"] == fs.BOOSTED
    assert (
        "beyond noise" in shown[-1].data and "the Bayesian model forecast better" in shown[-1].data
    )
    assert "01 May 2024 (4,000 open journeys" in shown[0].data
    # the model a little worse than the truth: same journeys, log-loss gap within noise
    kept2 = {
        k: (v[0] if k[1] != fs.BAYES else np.clip(v[0] * 1.01, 0, 1), v[1]) for k, v in kept.items()
    }
    kept2 = {k: v for k, v in kept2.items() if k[1] != fs.BOOSTED}
    kept2 |= {(k[0], fs.BOOSTED): kept[(k[0], fs.BAYES)] for k in kept if k[1] == fs.BAYES}
    rows = [
        {"cutoff": c, "method": m, **forecast_scores(*kept2[(c, m)]), "seconds": 1.0}
        for (c, m) in kept2
    ]
    shown, attention = [], []
    verdict = fs.show_backtest(
        pd.DataFrame(rows), kept2, plan, attention=attention, show=shown.append
    )
    assert verdict["best"] == fs.BOOSTED and verdict["within_noise"] and attention == []
    assert "within noise" in shown[-1].data and "Bayesian model's is" in shown[-1].data
    # beaten beyond noise: said, and noted for the index page
    swapped = {
        (c, {fs.BAYES: fs.BOOSTED, fs.BOOSTED: fs.BAYES}.get(m, m)): v for (c, m), v in kept.items()
    }
    rows = [
        {"cutoff": c, "method": m, **forecast_scores(*v), "seconds": 1.0}
        for (c, m), v in swapped.items()
    ]
    verdict = fs.show_backtest(
        pd.DataFrame(rows), swapped, plan, attention=attention, show=shown.append
    )
    assert verdict["best"] == fs.BOOSTED and not verdict["within_noise"]
    assert "beyond noise, boosted trees forecast better here" in shown[-1].data
    assert attention == ["forecast: in the backtest, boosted trees beat the Bayesian model"]


def test_reliability_and_gains_figures_draw_the_tables_they_are_given():
    kept, _ = _backtest()
    shown, drawn = [], []
    tables = fs.show_reliability(kept, show=shown.append, plt_show=lambda: drawn.append(plt.gca()))
    p, y = fs.pooled(kept, fs.BAYES)
    pd.testing.assert_frame_equal(tables[fs.BAYES], calibration_table(p, y, strategy="quantile"))
    ax = drawn[0]
    dots = [c for c in ax.collections if isinstance(c, PathCollection)]
    np.testing.assert_allclose(
        np.sort(np.asarray(dots[0].get_offsets())[:, 1]),
        np.sort(tables[fs.BAYES]["observed"].to_numpy()),
    )
    lifts = fs.show_gains(kept, show=shown.append, plt_show=lambda: drawn.append(plt.gca()))
    line = drawn[1].get_lines()[0]
    order = np.argsort(-p, kind="stable")
    k = len(p) // 10
    assert line.get_ydata()[k] == pytest.approx(y[order][:k].sum() / y.sum())
    assert line.get_xdata()[0] == 0 and line.get_ydata()[-1] == pytest.approx(1)
    assert lifts[fs.BAYES] == pytest.approx(
        y[order][: int(np.ceil(0.1 * len(p)))].mean() / y.mean()
    )
    plt.close("all")
    assert fs.show_gains({}, show=shown.append) == {} and shown == []  # no backtest: said above
    none = {k: (p, np.zeros_like(y)) for k, (p, y) in kept.items()}
    assert fs.show_gains(none, show=shown.append) == {} and "No lift chart" in shown[-1].data


# ---------------------------------------------------------------------- the journeys open now
def _table(seed=1, n=60):
    rng = np.random.default_rng(seed)
    p = np.sort(rng.uniform(0.01, 0.95, n))[::-1]
    return pd.DataFrame(
        {
            "person_id": [f"p{i}" for i in range(n)],
            "journey_id": [f"p{i}-0" for i in range(n)],
            "segment": rng.choice(["a", "b", "c"], n),
            "stage": rng.choice(["(start)", "See", "Think", "Do", "Care"], n),
            "days_quiet": rng.uniform(0, 20, n),
            "touches": rng.integers(1, 9, n),
            "p_convert": p,
            "p_lower": p * 0.8,
            "p_upper": np.minimum(p * 1.2, 1),
            "top_reasons": "last stage Do",
        }
    )


def _ctx_without_fit_box(ctx):
    ctx.note_fit = lambda *a, **k: ""
    return ctx


def _fc(table, note=""):
    opened = table[["segment"]].copy()
    train_open = pd.DataFrame(
        {
            "converted_next": [1, 0, 0, 1, 0],
            "stages": ["See > Do", "Do", "Think", "See > Think", "See > Think"],
        }
    )
    return SimpleNamespace(
        table=table if not note else pd.DataFrame(),
        split=SimpleNamespace(open=opened),
        train=SimpleNamespace(open=train_open),
        settings={"train_origins": 4},
        note=note,
        as_of=pd.Timestamp("2024-06-30", tz="UTC"),
        model=None,
    )


def test_at_risk_takes_the_conversion_stage_ranked_by_p_convert_then_by_p_dropoff():
    t = _table()
    stages = ("See", "Think", "Do", "Care")
    ranked, count, rule = fs.at_risk(t, stages, "Do")
    at_do = t[t["stage"] == "Do"]
    assert set(ranked["journey_id"]) == set(at_do["journey_id"])
    assert list(ranked["p_convert"]) == sorted(at_do["p_convert"])
    assert count == int((at_do["p_convert"] < 0.5).sum()) and "Do" in rule
    # with the stage's usual rate: at risk when the whole 90% interval lies below it
    ranked, count, rule = fs.at_risk(t, stages, "Do", {"Do": 0.3, "Think": 0.9})
    assert count == int((at_do["p_upper"] < 0.3).sum()) and "30.0%" in rule
    assert 0 < count < len(at_do)
    t["p_dropoff"] = np.random.default_rng(3).uniform(0, 1, len(t))
    t.loc[t["stage"] == "Do", "p_dropoff"] = np.where(
        t.loc[t["stage"] == "Do", "touches"] > 4, 1.0, 0.2
    )
    ranked, count, rule = fs.at_risk(t, stages, "Do", {"Do": 0.3})
    at_do = t[t["stage"] == "Do"]
    assert list(ranked["p_dropoff"]) == sorted(at_do["p_dropoff"], reverse=True)
    sure = ranked[ranked["p_dropoff"] == 1.0]  # ties: the lowest P(convert) first
    assert list(sure["p_convert"]) == sorted(sure["p_convert"])
    assert count == int((at_do["p_dropoff"] >= 0.5).sum()) and "drop off" in rule


def test_without_journeys_in_the_conversion_stage_the_furthest_stage_is_taken():
    t = _table()
    t = t[t["stage"].isin(["(start)", "See", "Think"])]
    ranked, count, rule = fs.at_risk(t, ("See", "Think", "Do", "Care"), "Do")
    assert set(ranked["stage"]) == {"Think"} and len(ranked) == (t["stage"] == "Think").sum()
    assert "furthest stage" in rule
    none, count, _ = fs.at_risk(t[t["stage"] == "(start)"], ("See", "Think"), None)
    assert none.empty and count == 0


def test_segment_forecast_keeps_this_segments_groups_and_counts_them():
    t = _table()
    ctx = _ctx(groups=["a", "c"], group_by="platform")
    plan = SimpleNamespace(horizon_days=14.0, forecast_note="")
    sf = fs.segment_forecast(_fc(t), ctx, plan)
    mine = t[t["segment"].isin(["a", "c"])]
    assert sf.open_journeys == len(mine) and set(sf.rows["platform"]) == {"a", "c"}
    assert sf.likely == int((mine["p_convert"] >= 0.5).sum())
    assert list(sf.rows["p_convert"]) == sorted(mine["p_convert"], reverse=True)
    assert sf.train == {"journeys": 5, "converted": 2, "origins": 4}
    # the training journeys' rate per last stage: Do 1 of 2, Think 1 of 3
    usual = {"Do": 0.5, "Think": 1 / 3}
    h = fs.forecast_headline(sf)
    assert h == {
        "forecast_likely": sf.likely,
        "forecast_at_risk": fs.at_risk(mine, ctx.stage_map.stages, "Do", usual)[1],
        "forecast_horizon": 14.0,
        "forecast_open": len(mine),
        "forecast_note": "",
    }
    shown = []
    fs.show_open_forecast(sf, ctx, show=shown.append)
    assert f"**{len(mine):,}** journeys" in shown[0].data and "30 Jun 2024" in shown[0].data
    assert "Between those moments" not in shown[0].data  # no model: nothing said of periods
    # with a model, what the spread between the training moments says is said
    spread = PeriodSpread(0.45, pd.DataFrame({"period": ["1", "2", "3", "4"]}))
    model = SimpleNamespace(period_spread=spread)
    fc = SimpleNamespace(model=model)
    said = []
    fs.show_open_forecast(sf, _ctx_without_fit_box(ctx), fc, show=said.append)
    assert "Between those moments, conversion moved by ±0.45" in said[-1].data
    likely, risk = fs.show_top_journeys(sf, n=10, show=shown.append)
    assert list(likely.index) == list(mine["journey_id"].head(10))
    assert list(risk.index) == list(sf.risk["journey_id"].head(10))
    heading = shown[-2].data  # the at-risk list's heading: it says when none meets the rule
    assert ("none meets that rule" in heading) == (sf.at_risk_count == 0)
    assert "90% interval" in likely.columns and "P(drop off)" not in likely.columns
    top = mine.iloc[0]
    assert likely["P(convert)"].iloc[0] == f"{top['p_convert']:.0%}"
    assert likely["90% interval"].iloc[0] == f"{top['p_lower']:.0%} – {top['p_upper']:.0%}"


def test_a_forecast_without_the_chains_next_steps_is_kept_and_says_what_is_missing():
    t = _table()
    fc = _fc(t)
    fc.note = "next steps not forecast: semi-Markov forecast: no stage transition\nfix: later"
    sf = fs.segment_forecast(fc, _ctx(), SimpleNamespace(horizon_days=14.0))
    assert len(sf.rows) == (t["segment"] == "a").sum() and sf.note == "" and sf.caveat == fc.note
    assert fs.forecast_headline(sf)["forecast_note"] == ""
    shown = []
    fs.show_open_forecast(sf, _ctx(), show=shown.append)
    assert "*Not shown:* next steps not forecast" in shown[0].data and "\n" not in shown[0].data


def test_the_chains_columns_join_the_tables_when_present():
    t = _table().assign(
        p_dropoff=0.3, next_stage="(conversion)", next_stage_p=0.61, expected_days=4.26
    )
    sf = fs.segment_forecast(_fc(t), _ctx(), SimpleNamespace(horizon_days=14.0))
    likely, _ = fs.show_top_journeys(sf, show=lambda x: None)
    row = likely.iloc[0]
    assert row["P(drop off)"] == "30%" and row["likely next step"] == "convert 61%"
    assert row["expected days to convert"] == 4.3


def test_too_little_to_forecast_is_said_and_nothing_is_drawn_or_written(tmp_path):
    note = "too little to forecast: 3 of 100 training journeys converted"
    t = _table()
    sf = fs.segment_forecast(_fc(t, note=note), _ctx(), SimpleNamespace(horizon_days=14.0))
    assert sf.rows.empty and sf.note == note and sf.open_journeys == (t["segment"] == "a").sum()
    shown, drawn = [], []
    fs.show_open_forecast(sf, _ctx(), show=shown.append)
    fs.show_score_distribution(sf, show=shown.append, plt_show=lambda: drawn.append(1))
    fs.show_top_journeys(sf, show=shown.append)
    path = fs.save_forecast_table(sf, tmp_path / "x.csv", show=shown.append)
    assert path is None and not (tmp_path / "x.csv").exists() and drawn == []
    assert (
        "too little to forecast" in shown[0].data
    )  # why, once; the sections after say "see above"
    assert len(shown) == 2 and "see above" in shown[1].data
    assert "forecast_note" in fs.forecast_headline(sf)


def test_the_score_distribution_has_one_box_per_group_with_its_counts():
    t = _table()
    ax = plot_score_distribution(t, by="segment")
    labels = [x.get_text() for x in ax.get_yticklabels()]
    for g, n in t["segment"].value_counts().items():
        share = (t.loc[t["segment"] == g, "p_convert"] >= 0.5).mean()
        assert f"{g} ({n:,}; {share:.0%} ≥ 50%)" in labels
    plt.close("all")


def test_rare_conversions_get_a_log_axis_in_the_score_distribution():
    t = _table()
    assert plot_score_distribution(t).get_xscale() == "linear"
    rare = t.assign(p_convert=t["p_convert"] / 50)
    ax = plot_score_distribution(rare)
    assert ax.get_xscale() == "log" and ax.get_xlim()[0] <= rare["p_convert"].min()
    plt.close("all")


def test_figures_show_a_dollar_in_a_name_as_text():
    t = _table().assign(segment="$x$ club")
    ax = plot_score_distribution(t, by="segment")
    ax.figure.canvas.draw()
    assert ax.get_yticklabels()[0].get_text().startswith(r"\$x\$ club")
    kept, _ = _backtest(n=200, cuts=1)
    p, y = next(iter(kept.values()))
    plot_reliability({"$a$": calibration_table(p, y)}).figure.canvas.draw()
    plot_gains({"$a$": (p, y)}).figure.canvas.draw()
    plt.close("all")


# -------------------------------------------------------------------------- the scored table
def test_the_scored_table_is_written_where_the_runner_says_or_under_reports(tmp_path):
    assert fs.forecast_csv_path(str(tmp_path), "x") == tmp_path / fs.FORECAST_FILE
    by_hand = fs.forecast_csv_path("", "small_business", reports_dir=tmp_path)
    assert by_hand == tmp_path.resolve() / "forecasts" / "small_business" / fs.FORECAST_FILE
    for evil in ("../../etc", "a/b", "..", IMG):
        with pytest.raises(ValueError, match="not allowed"):
            fs.forecast_csv_path("", evil, reports_dir=tmp_path)


def test_the_csv_holds_every_row_of_the_segment_and_no_spreadsheet_formula(tmp_path):
    t = _table()
    t.loc[0, "person_id"] = '=HYPERLINK("http://x")'
    t.loc[1, "top_reasons"] = "@SUM(A1)"
    t.loc[2, "person_id"] = "-12"  # a number stays a number
    sf = fs.segment_forecast(
        _fc(t), _ctx(groups=["a", "b", "c"]), SimpleNamespace(horizon_days=14.0)
    )
    shown = []
    path = fs.save_forecast_table(sf, tmp_path / "seg" / fs.FORECAST_FILE, show=shown.append)
    back = pd.read_csv(path, dtype={"person_id": str})
    assert len(back) == len(t) and list(back.columns) == list(sf.rows.columns)
    np.testing.assert_allclose(back["p_convert"], sf.rows["p_convert"])
    first = back.set_index("journey_id")
    assert first.loc["p0-0", "person_id"] == '\'=HYPERLINK("http://x")'
    assert first.loc["p1-0", "top_reasons"] == "'@SUM(A1)"
    assert first.loc["p2-0", "person_id"] == "-12"
    assert not list(path.parent.glob(".*tmp*")) and md_code(path) in shown[0].data
    assert "](" not in shown[0].data  # no link: not known to be beside the report
    fs.save_forecast_table(sf, path, link=True, show=shown.append)
    assert f"]({fs.FORECAST_FILE})" in shown[-1].data


# --------------------------------------------------------------------------------- escaping
def test_names_from_the_data_stay_text_in_the_sections():
    t = _table()
    t["segment"] = t["segment"].replace({"a": IMG})
    t["stage"] = t["stage"].replace({"Do": LINK})
    ctx = _ctx(
        groups=[IMG, "b"], conversion_stage=LINK, stage_map=SimpleNamespace(stages=("See", LINK))
    )
    sf = fs.segment_forecast(_fc(t), ctx, SimpleNamespace(horizon_days=14.0))
    assert len(sf.risk) and set(sf.risk["stage"]) == {LINK}
    shown = []
    fs.show_open_forecast(sf, ctx, show=shown.append)
    fs.show_top_journeys(sf, show=shown.append)
    markdowns = [x.data for x in shown if hasattr(x, "data")]
    tables = [x.to_html() for x in shown if isinstance(x, pd.DataFrame)]
    assert len(tables) == 2 and any(IMG in x or "&lt;img" in x for x in markdowns + tables)
    for page in [mistune.html(m) for m in markdowns] + tables:
        assert "<img" not in page and "<a " not in page, page
    assert any("&lt;img" in t for t in tables)  # the group column shows the name as text


def test_the_index_shows_the_forecast_cell_with_and_without_its_figures():
    h = {
        "forecast_likely": 312,
        "forecast_open": 1040,
        "forecast_at_risk": 95,
        "forecast_horizon": 14.0,
        "forecast_note": "",
    }
    assert forecast_cell(h) == (
        "312 of 1,040 open journeys ≥ 50% likely to convert within 14 days; 95 at risk"
    )
    assert headline_cells(h)[5] == forecast_cell(h) and headline_cells({})[5] == "–"
    note = forecast_cell({"forecast_open": 3, "forecast_note": f"too little {IMG}"})
    assert note.startswith("– <span class=small>too little &lt;img") and "<img" not in note
    manifest = {
        "run_id": "r1",
        "complete": True,
        "parameters": {"data_path": "d.csv", "notebooks": ["06_forecast.ipynb"], "segments": {}},
        "segments": {
            "all": {"status": "ok", "notebooks": {"06_forecast.ipynb": {"status": "ok"}}},
            IMG: {"status": "ok", "notebooks": {}},
        },
        "headline": {"all": h, IMG: {"forecast_note": f"not forecast {IMG}"}},
    }
    page = render_index(manifest)
    assert "<th>open journeys forecast</th>" in page
    assert forecast_cell(h) in page and "forecast_likely" not in page  # a known key, in its cell
    assert "<img" not in page and "not forecast &lt;img" in page


# ---------------------------------------------------------------------------------- the runner
def test_the_runner_gives_a_notebook_that_declares_output_dir_its_segment_folder(
    tmp_path, monkeypatch
):
    import nbformat

    from analysis.reports import Segment, run_reports

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('segment: str = "all"  # s\noutput_dir: str = ""  # o')
    params.metadata["tags"] = ["parameters"]
    write = "from pathlib import Path\nPath(output_dir, 'here.txt').write_text(segment)"
    nb.cells = [params, nbformat.v4.new_code_cell(write)]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path = tmp_path / "w.ipynb"
    nbformat.write(nb, path)
    data = tmp_path / "events.csv"
    data.write_text(
        "event_id,timestamp,user_id,channel,touchpoint\n"
        "e1,2024-01-01T10:00:00Z,u1,display,ad_impression\n"
    )
    monkeypatch.setattr("analysis.config.CACHE_DIR", tmp_path / "cache")
    res = run_reports(
        data,
        [Segment("b", {"channel": "display"})],
        notebooks=[path],
        reports_dir=tmp_path / "reports",
        parameters={"output_dir": str(tmp_path)},  # the runner's folder wins
        heartbeat=0,
        log=lambda m: None,
    )
    assert not res.failed, res.failed
    assert (res.run_dir / "b" / "here.txt").read_text() == "b"
    assert not (Path(tmp_path) / "here.txt").exists()


def test_purchase_only_data_gets_no_backtest_and_no_forecast_with_the_reason():
    """CDNOW-like data: every touchpoint a conversion, so no journey is ever open to learn from
    (the model raised "no training journeys" before)."""
    ts = pd.date_range("2024-01-01", "2024-06-30", periods=50, tz="UTC")
    ev = pd.DataFrame({"timestamp": ts, "segment": "a", "conversion": True})
    plan = fs.forecast_plan(
        _ctx(events=ev), horizon_days=14, backtest_cutoffs=2, train_origins=1, time_to_event=True
    )
    assert plan.cutoffs == [] and "every touchpoint" in plan.forecast_note
    assert plan.backtest_note.startswith("No backtest")
    # one touchpoint that is not a conversion is enough to plan a backtest
    ev.loc[3, "conversion"] = False
    plan = fs.forecast_plan(
        _ctx(events=ev), horizon_days=14, backtest_cutoffs=2, train_origins=1, time_to_event=True
    )
    assert plan.cutoffs and not plan.forecast_note
