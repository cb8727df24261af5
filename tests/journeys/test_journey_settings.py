"""suggest_journey_settings: by session or by inactivity, measured on tiny hand-made tables."""

from __future__ import annotations

import pytest

from analysis.identity import stitch_identities
from analysis.journeys import suggest_journey_settings
from analysis.schema import DataError


def _events(make_events, rows):
    return stitch_identities(
        make_events(
            [dict(zip(("user_id", "timestamp", "session_id"), r, strict=False)) for r in rows]
        )
    )


CLICKS = [  # u1: two sessions a day apart, u2: one session
    ("u1", "2024-05-06 09:00", "s1"),
    ("u1", "2024-05-06 09:02", "s1"),
    ("u1", "2024-05-06 09:05", "s1"),
    ("u1", "2024-05-07 10:00", "s2"),
    ("u1", "2024-05-07 10:03", "s2"),
    ("u2", "2024-05-06 12:00", "s3"),
    ("u2", "2024-05-06 12:10", "s3"),
]


def test_clickstream_like_data_is_cut_by_session(make_events):
    # gaps: 2, 3, 3, 10 minutes and 24 h 55 min → median 3 min, 4 of 5 under an hour
    s = suggest_journey_settings(_events(make_events, CLICKS))
    assert (s["journey_by"], s["inactivity_days"], s["kind"]) == ("session", 0.5, "clickstream")
    assert (s["persons"], s["gaps"]) == (2, 5)
    assert s["median_gap_hours"] == pytest.approx(3 / 60)
    assert s["share_gaps_under_1h"] == pytest.approx(0.8)
    assert s["events_per_person"] == 3.5 and s["sessions_per_person"] == 1.5
    assert s["text"].splitlines() == [
        "journeys (how to cut them):",
        "  gaps between a person's consecutive events: 5, median 3 min, 80% under 1 hour",
        "  per person: 3.5 events (median), 1.5 sessions (mean)",
        "  suggested: journey_by=session, inactivity_days=0.5",
        f"  why: {s['reason']}",
    ]
    # the same clicks without sessions: half a day of inactivity
    s = suggest_journey_settings(_events(make_events, [r[:2] for r in CLICKS]))
    assert (s["journey_by"], s["inactivity_days"], s["sessions_per_person"]) == (
        "inactivity",
        0.5,
        None,
    )
    assert "no session_id values" in s["text"]


def test_lead_like_data_gets_a_long_inactivity(make_events):
    # gaps of 21, 35, 30 and 150 days: median 32.5 days; 90% quantile 115.5 days → 120 (4 x 30)
    s = suggest_journey_settings(
        _events(
            make_events,
            [
                ("l1", "2024-01-01"),
                ("l1", "2024-01-22"),
                ("l1", "2024-02-26"),
                ("l2", "2024-01-10"),
                ("l2", "2024-02-09"),
                ("l2", "2024-07-08"),
                ("l3", "2024-03-01"),
            ],
        )
    )
    assert (s["journey_by"], s["inactivity_days"], s["kind"]) == ("inactivity", 120.0, "leads")
    assert s["median_gap_hours"] == pytest.approx(32.5 * 24)
    assert s["gap_q90_days"] == pytest.approx(115.5)
    assert (s["share_gaps_under_1h"], s["events_per_person"]) == (0.0, 3.0)
    assert "median 32.5 days, 0% under 1 hour" in s["text"]
    # short lead histories: never less than 90 days
    s = suggest_journey_settings(_events(make_events, [("l1", "2024-01-01"), ("l1", "2024-01-15")]))
    assert (s["kind"], s["inactivity_days"]) == ("leads", 90.0)


def test_omnichannel_and_unmeasurable_data_keep_the_default(make_events):
    s = suggest_journey_settings(
        _events(
            make_events,
            [("o1", "2024-01-01 10:00"), ("o1", "2024-01-02 18:00"), ("o1", "2024-01-05 09:00")],
        )
    )
    assert (s["journey_by"], s["inactivity_days"], s["kind"]) == ("inactivity", 30.0, "omnichannel")
    assert "inactivity_days=30 (the default)" in s["text"]
    s = suggest_journey_settings(_events(make_events, [("o1", "2024-01-01"), ("o2", "2024-01-02")]))
    assert (s["kind"], s["gaps"], s["median_gap_hours"], s["inactivity_days"]) == (
        "unknown",
        0,
        None,
        30.0,
    )
    with pytest.raises(DataError, match="person_id"):
        suggest_journey_settings(make_events([{"timestamp": "2024-01-01", "user_id": "u"}]))
