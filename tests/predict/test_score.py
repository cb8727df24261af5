"""The scored table of the journeys open today: every open journey once, no future leak."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.predict import cutoff_split, forecast_open_journeys


@pytest.fixture(scope="module")
def events():
    from analysis import synth

    events, _ = synth.generate(1200, seed=7)
    return events


@pytest.fixture(scope="module")
def forecast(events):
    return forecast_open_journeys(events, horizon_days=14, train_origins=2)


def test_every_open_journey_is_scored_once_with_its_interval(events, forecast):
    ts = pd.to_datetime(events["timestamp"], utc=True)
    f = forecast
    t = f.table
    assert f.note == "" and f.as_of == ts.max()
    opened = cutoff_split(events, ts.max(), outcomes=False).open
    assert sorted(t["journey_id"]) == sorted(opened["journey_id"])
    assert t["journey_id"].is_unique
    assert ((t["p_lower"] <= t["p_convert"]) & (t["p_convert"] <= t["p_upper"])).all()
    assert t["p_convert"].is_monotonic_decreasing
    # the journeys in the stage where people buy are the likeliest to buy next
    by_stage = t.groupby("stage")["p_convert"].mean()
    assert by_stage.idxmax() == "Do"
    assert t["top_reasons"].str.len().gt(0).mean() > 0.5
    # the chain's next steps: its probabilities add up, its next stage is a state it knows
    assert (t["chain_p_convert"] + t["p_dropoff"] <= 1 + 1e-9).all()
    assert set(t["next_stage"]) <= {"See", "Think", "Do", "Care", "(conversion)", "(dropoff)"}
    assert f.settings == {"horizon_days": 14.0, "train_origins": 2, "method": "laplace"}


def test_events_after_the_forecast_change_nothing(events):
    ts = pd.to_datetime(events["timestamp"], utc=True)
    as_of = pd.Timestamp("2024-05-20", tz="UTC")
    before = forecast_open_journeys(events[(ts <= as_of).to_numpy()], as_of=as_of, train_origins=2)
    after = forecast_open_journeys(events, as_of=as_of, train_origins=2)
    pd.testing.assert_frame_equal(before.table, after.table)


def test_too_little_to_forecast_is_said_not_guessed(events):
    quiet = events.assign(conversion=False)
    f = forecast_open_journeys(quiet, train_origins=1)
    assert f.table.empty and f.model is None
    assert "too little to forecast: 0 of" in f.note


def test_a_split_cache_shared_with_the_backtest_changes_no_figure(events, forecast):
    from analysis.predict import run_backtest

    ts = pd.to_datetime(events["timestamp"], utc=True)
    as_of = ts.max()
    cut = (as_of - pd.Timedelta(days=14)).normalize()
    plain = forecast
    cache: dict = {}
    bt = run_backtest(events, [cut], splits=cache, data_end=as_of)
    n_before = len(cache)
    shared = forecast_open_journeys(events, train_origins=2, splits=cache)
    pd.testing.assert_frame_equal(plain.table, shared.table)
    assert len(cache) > n_before > 0  # the forecast added its own splits to the backtest's
    again = run_backtest(events, [cut], data_end=as_of)
    pd.testing.assert_frame_equal(bt.drop(columns="seconds"), again.drop(columns="seconds"))
