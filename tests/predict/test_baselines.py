"""The backtest's baselines and runner: features by hand, no future leak, and baselines that rank."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest

import analysis
from analysis.predict import (
    bayes_forecast,
    boosted_forecast,
    cutoff_split,
    journey_features,
    run_backtest,
)
from tests.predict.test_backtest import EVENTS


@pytest.fixture(scope="module")
def synthetic():
    from analysis import synth

    events, _ = synth.generate(3000, seed=4)
    return events


def test_journey_features_by_hand(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text(EVENTS)
    split = cutoff_split(analysis.load_events(path), "2024-03-15", horizon_days=14)
    f = journey_features(split).set_index(
        split.open["person_id"].map(split.known.groupby("person_id")["cookie_id"].first())
    )
    a = f.loc["ca"]  # touches on 1 and 10 March at 10:00, cut-off 15 March 00:00
    assert a["age_days"] == pytest.approx(13 + 14 / 24)
    assert a["recency_days"] == pytest.approx(4 + 14 / 24)
    assert a["touches"] == 2 and a["ch_email"] == 2 and a["ch_search"] == 0
    assert f.loc["cd", "ch_search"] == 1
    assert set(f["last_stage"].astype(str)) == {"(start)"}  # no touchpoint of this file has a stage
    kept = journey_features(split, channels=["email", "tv"])
    assert [c for c in kept if c.startswith("ch_")] == ["ch_email", "ch_tv"]


def test_scores_do_not_change_when_later_events_are_dropped(synthetic):
    """At each cut-off the runner sees only what was known then and the horizon's outcomes:
    the events after the last horizon change nothing."""
    cut, horizon = pd.Timestamp("2024-05-01", tz="UTC"), 14
    methods = {
        "boosted": boosted_forecast,
        "bayes": functools.partial(bayes_forecast, method="laplace"),
    }
    opts = {"horizon_days": horizon, "methods": methods}
    full = run_backtest(synthetic, [cut], **opts)
    ts = pd.to_datetime(synthetic["timestamp"], utc=True)
    cropped = synthetic[(ts <= cut + pd.Timedelta(days=horizon)).to_numpy()]
    end = cut + pd.Timedelta(days=horizon)  # the cropped data are complete until the horizon's end
    again = run_backtest(cropped, [cut], data_end=end, **opts)
    pd.testing.assert_frame_equal(full.drop(columns="seconds"), again.drop(columns="seconds"))


def test_baselines_rank_journeys_and_the_base_rate_does_not(synthetic):
    table = run_backtest(synthetic, ["2024-04-15"], horizon_days=14).set_index("method")
    assert list(table.index) == ["base rate", "markov", "boosted"]
    assert (table["n"] > 500).all() and (table["train_journeys"] > 500).all()
    assert table.loc["base rate", "auc"] == 0.5
    # the stage a journey is in, and what it touched, rank who converts next
    assert table.loc["markov", "auc"] > 0.65 and table.loc["boosted", "auc"] > 0.65
    assert table.loc["boosted", "brier"] < table.loc["base rate", "brier"]
    # the chain's eventual-conversion probability ignores the horizon: it overstates it
    assert table.loc["markov", "ece"] > table.loc["base rate", "ece"]
    assert np.isfinite(table["log_loss"]).all()
