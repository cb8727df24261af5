"""Kaplan–Meier and the time-to-event summary against hand computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.schema import DataError
from analysis.survival import kaplan_meier, share_by, time_to_event_summary


def table():
    # group a: events at 2, 4 (tied with a censoring), 6; censored at 4 and 10
    # group b: one event at 1, three censored at 3
    return pd.DataFrame(
        {
            "g": ["a"] * 5 + ["b"] * 4,
            "duration_days": [2, 4, 4, 6, 10, 1, 3, 3, 3],
            "censored": [False, False, True, False, True, False, True, True, True],
        }
    )


def test_kaplan_meier_by_hand():
    km = kaplan_meier(table(), by="g")
    a = km[km["g"] == "a"].set_index("days")
    # at risk 5 → S = 4/5; at 4: 4 at risk, 1 event → 4/5 * 3/4 = 0.6; at 6: 2 at risk → 0.3
    assert a["at_risk"].tolist() == [5, 4, 2, 1]
    assert a["survival"].tolist() == pytest.approx([0.8, 0.6, 0.3, 0.3])
    b = km[km["g"] == "b"].set_index("days")
    assert b["survival"].tolist() == pytest.approx([0.75, 0.75])


def test_summary_by_hand():
    s = time_to_event_summary(table(), by="g", horizons=(3, 6)).set_index("g")
    assert s.loc["a", ["subjects", "events", "censored"]].tolist() == [5, 3, 2]
    assert s.loc["a", "median_days_events"] == 4.0  # among the subjects with the event
    assert s.loc["a", "km_median_days"] == 6.0  # the first time S falls to 0.5 or below
    assert s.loc["a", "share_by_3d"] == pytest.approx(0.2)
    assert s.loc["a", "share_by_6d"] == pytest.approx(0.7)
    assert np.isnan(s.loc["b", "km_median_days"])  # S never falls to one half
    assert s.loc["b", "share_by_6d"] == pytest.approx(0.25)


def test_share_by_reads_the_steps():
    km = kaplan_meier(table(), by="g")
    got = share_by(km, [6, 0.5, 4, 3.5, 100], by="g").set_index(["g", "days"])["share"]
    # a: S = 0.8 from day 2, 0.6 from 4, 0.3 from 6 on; b: 0.75 from day 1 (censorings do not step)
    assert got.loc["a"].tolist() == pytest.approx(
        [0.0, 0.2, 0.4, 0.7, 0.7]
    )  # days sorted: 0.5, 3.5, 4, 6, 100
    assert got.loc["b"].tolist() == pytest.approx([0.0, 0.25, 0.25, 0.25, 0.25])
    # the same figures as the summary's share_by_<h>d columns
    s = time_to_event_summary(table(), by="g", horizons=(4, 100)).set_index("g")
    assert got.xs(4.0, level="days").tolist() == pytest.approx(s["share_by_4d"].tolist())
    assert share_by(kaplan_meier(table()), 2)["share"].tolist() == pytest.approx(
        [2 / 9]
    )  # 1 - 8/9 * 7/8


def test_bad_input():
    with pytest.raises(DataError, match="not found"):
        kaplan_meier(table(), by="nope")
    with pytest.raises(DataError, match="negative"):
        kaplan_meier(table().assign(duration_days=-1))
