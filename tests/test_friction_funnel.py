"""The step table (Journeys.touchpoint_steps) and the touchpoint funnel (analysis.friction.funnel)."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.journeys import build_journeys
from analysis.schema import DataError


@pytest.fixture
def tiny(make_events):
    rows = [
        dict(person_id=1, timestamp="2024-01-01T00:00Z", touchpoint="ad", stage="See", segment="a"),
        dict(person_id=1, timestamp="2024-01-02T00:00Z", touchpoint="visit", stage=None, segment="b"),
        dict(person_id=1, timestamp="2024-01-03T00:00Z", touchpoint="buy", stage="Do", conversion=True,
             segment="b"),
        dict(person_id=1, timestamp="2024-01-04T00:00Z", touchpoint="ad", stage="See", segment="b"),
        dict(person_id=1, timestamp="2024-03-30T00:00Z", touchpoint="visit", stage="Think", segment="b"),
        dict(person_id=2, timestamp="2024-01-05T00:00Z", touchpoint="cart", stage="Think", segment="c"),
        dict(person_id=2, timestamp="2024-01-05T01:00Z", touchpoint="pay", stage="Do", segment="c"),
        dict(person_id=None, timestamp="2024-01-05T00:00Z", touchpoint="visit", stage="Think", segment="c"),
    ]
    ev = make_events(rows)
    ev["person_id"] = ev["person_id"].astype("Int64")
    return ev, build_journeys(ev, as_of="2024-04-01")


def test_touchpoint_steps_by_hand(tiny):
    ev, jr = tiny
    s = jr.touchpoint_steps(by="segment", events=ev)
    assert list(s.columns) == [
        "segment", "person_id", "journey_index", "pos", "timestamp", "touchpoint", "stage",
        "conversion", "converted", "outcome", "journey_start", "n_touchpoints",
    ]
    assert s.attrs["touchpoint_from"] == "touchpoint"
    assert s["person_id"].tolist() == [1, 1, 1, 1, 1, 2, 2]
    assert s["journey_index"].tolist() == [0, 0, 0, 1, 2, 0, 0]
    assert s["pos"].tolist() == [1, 2, 3, 1, 1, 1, 2], "pos restarts at 1 in every journey"
    assert s["touchpoint"].tolist() == ["ad", "visit", "buy", "ad", "visit", "cart", "pay"]
    assert s["stage"].isna().tolist() == [False, True, False, False, False, False, False]
    assert s["conversion"].tolist() == [False, False, True, False, False, False, False]
    assert s["converted"].tolist() == [True, True, True, False, False, False, False]
    assert s["outcome"].tolist() == ["converted"] * 3 + ["dropoff", "open", "dropoff", "dropoff"]
    assert s["segment"].tolist() == ["a", "a", "a", "b", "b", "c", "c"], "the journey's first value"
    assert s["n_touchpoints"].tolist() == [3, 3, 3, 1, 1, 2, 2]
    assert str(s["timestamp"].dt.tz) == "UTC"
    assert s["timestamp"].iloc[6] == pd.Timestamp("2024-01-05T01:00Z")
    assert (s["journey_start"].iloc[:3] == pd.Timestamp("2024-01-01T00:00Z")).all()
    assert s["journey_start"].iloc[6] == pd.Timestamp("2024-01-05T00:00Z")


def test_touchpoint_steps_without_events_uses_the_channel(tiny):
    ev, jr = tiny
    s = jr.touchpoint_steps()
    assert s.attrs["touchpoint_from"] == "channel"
    assert (s["touchpoint"] == "display").all()
    assert "segment" not in s.columns
    with pytest.raises(DataError):
        jr.touchpoint_steps(events=ev.iloc[:-2])
