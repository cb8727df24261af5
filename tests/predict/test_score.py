"""The scored table of the journeys open today: every open journey once, no future leak."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analysis.predict import cutoff_split, forecast_open_journeys
from analysis.predict.score import coherent_dropoff


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
    assert (t["chain_p_convert"] + t["chain_p_dropoff"] <= 1 + 1e-9).all()
    # and the P(drop off) shown beside the model's P(convert) adds up with it
    assert (t["p_convert"] + t["p_dropoff"] <= 1 + 1e-6).all()
    agree = (t["p_convert"] - t["chain_p_convert"]).abs() < 1e-3
    assert np.allclose(t.loc[agree, "p_dropoff"], t.loc[agree, "chain_p_dropoff"], atol=2e-3)
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


unit = st.floats(0.0, 1.0)


@given(p=unit, chain_convert=unit, share=unit)
def test_the_coherent_dropoff_adds_up_and_keeps_the_chains_split(p, chain_convert, share):
    chain_dropoff = (1 - chain_convert) * share  # a chain whose three outcomes add up
    d = float(coherent_dropoff([p], [chain_convert], [chain_dropoff])[0])
    assert 0.0 <= d <= 1.0 - p + 1e-12
    if chain_convert < 1 - 1e-9:  # the chain's P(drop off | no conversion) is kept
        assert abs(d - (1 - p) * share) < 1e-9
    if abs(p - chain_convert) < 1e-12:  # where the two agree, it is the chain's own
        assert abs(d - chain_dropoff) < 1e-9
