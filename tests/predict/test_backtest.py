"""The backtest's cut-off: nothing after it leaks into what is scored, outcomes follow persons."""

from __future__ import annotations

import pandas as pd
import pytest

import analysis
from analysis.errors import DataError
from analysis.predict.backtest import cutoff_split

EVENTS = """event_id,timestamp,cookie_id,user_id,channel,touchpoint,conversion
a1,2024-03-01 10:00,ca,,email,product_view,false
a2,2024-03-10 10:00,ca,,email,product_view,false
a3,2024-03-18 10:00,ca,,direct,purchase,true
b1,2024-03-05 10:00,cb,,social,product_view,false
b2,2024-04-05 10:00,cb,,direct,purchase,true
c1,2024-01-01 10:00,cc,,display,product_view,false
d1,2024-03-12 10:00,cd,,search,product_view,false
e1,2024-03-13 10:00,ce,,search,product_view,false
e2,2024-03-20 10:00,ce,ue,search,login,false
e3,2024-03-21 10:00,ke,ue,direct,purchase,true
z1,2024-05-01 10:00,cz,,direct,product_view,false
"""


@pytest.fixture
def events(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text(EVENTS)
    return analysis.load_events(path)


def _outcomes(split) -> dict[str, int]:
    """Return each open journey's outcome by the cookie of its first known event."""
    first = split.known.sort_values("timestamp").groupby("person_id")["cookie_id"].first()
    return dict(zip(first[split.open["person_id"]], split.open["converted_next"], strict=True))


def test_outcomes_follow_the_person_past_the_cut_off(events):
    split = cutoff_split(events, "2024-03-15", horizon_days=14)
    # a converts 3 days later; b after 21 days (past the horizon); c went quiet in January (not
    # open); d never converts; e's cookie is tied by a later login to a purchase on another device
    assert _outcomes(split) == {"ca": 1, "cb": 0, "cd": 0, "ce": 1}
    assert split.base_rate == 0.5
    assert sorted(split.known["event_id"]) == ["a1", "a2", "b1", "c1", "d1", "e1"]


def test_events_after_the_cut_off_change_nothing_that_is_scored(events):
    """Appending later events (even one that would merge two persons) leaves the known events,
    the persons and the open journeys as they were; only outcomes may change."""
    before = cutoff_split(events, "2024-03-15", horizon_days=14)
    later = pd.DataFrame(
        {
            "event_id": ["x1", "x2"],
            "timestamp": pd.to_datetime(["2024-03-16 09:00", "2024-03-16 10:00"], utc=True),
            "cookie_id": ["ca", "cd"],
            "user_id": [
                "shared",
                "shared",
            ],  # a login joining a's and d's cookies, after the cut-off
            "channel": ["direct", "direct"],
            "touchpoint": ["login", "purchase"],
            "conversion": [False, True],
        }
    )
    more = pd.concat([events, later], ignore_index=True)[events.columns]
    for c in events.columns:
        more[c] = more[c].astype(events[c].dtype)
    after = cutoff_split(more, "2024-03-15", horizon_days=14)
    pd.testing.assert_frame_equal(before.known, after.known)
    keep = [c for c in before.open.columns if c != "converted_next"]
    pd.testing.assert_frame_equal(before.open[keep], after.open[keep])
    # d is now tied to a purchase within the horizon: its outcome (and only that) changes
    assert _outcomes(after) == {"ca": 1, "cb": 0, "cd": 1, "ce": 1}


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"cutoff": "2024-04-25"}, "before the horizon after the cut-off"),
        ({"cutoff": "soon"}, "is not a date"),
        ({"cutoff": "2024-03-15", "horizon_days": 0}, "give a positive number of days"),
    ],
)
def test_bad_cut_offs_are_explained(events, kwargs, says):
    with pytest.raises(DataError, match=says):
        cutoff_split(events, **kwargs)


def test_event_ids_must_be_unique(events):
    twice = pd.concat([events, events.iloc[:1]], ignore_index=True)
    with pytest.raises(DataError, match="unique event_id"):
        cutoff_split(twice, "2024-03-15")


def test_outcomes_equal_the_generators_truth():
    """On synthetic data, each open journey's outcome is what its true person did: a purchase
    within the horizon after the cut-off (the generator records each event's person)."""
    from analysis import synth

    ev, truth = synth.generate(1500, seed=3)
    cut, horizon = pd.Timestamp("2024-05-01", tz="UTC"), 14
    split = cutoff_split(ev, cut, horizon_days=horizon)
    ts = pd.to_datetime(ev["timestamp"], utc=True)
    window = (ts > cut) & (ts <= cut + pd.Timedelta(days=horizon)) & ev["conversion"].astype(bool)
    buyers = set(truth.event_person.reindex(ev.loc[window, "event_id"]))
    person = split.known.assign(true=truth.event_person.reindex(split.known["event_id"]).to_numpy())
    true_person = person.groupby("person_id")["true"].agg(lambda x: x.mode().iloc[0])
    expected = true_person.reindex(split.open["person_id"]).isin(buyers).astype(int)
    assert len(split.open) > 200 and 0 < split.base_rate < 0.5
    assert (expected.to_numpy() == split.open["converted_next"].to_numpy()).mean() >= 0.99
