"""Heavier versions of the stitching and journey checks (``make test-slow``)."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis import synth
from analysis.identity import stitch_identities
from analysis.journeys import build_journeys
from tests.journeys.test_journeys import assert_journeys_match_truth

pytestmark = pytest.mark.slow


def test_fifty_thousand_persons_recovered_exactly():
    events, truth = synth.generate(n_persons=50_000, seed=21)
    ev = stitch_identities(events)
    assert ev.attrs["stitching"]["persons"] == len(truth.persons)
    jr = build_journeys(ev, as_of=truth.end, inactivity_days=truth.inactivity_days)
    assert_journeys_match_truth(ev, truth, jr)


def test_spark_equals_duckdb_on_three_thousand_persons(spark_available):
    events, truth = synth.generate(n_persons=3000, seed=22)
    a_ev = stitch_identities(events)
    b_ev = stitch_identities(events, engine="spark")
    pd.testing.assert_series_equal(a_ev["person_id"], b_ev["person_id"])
    a = build_journeys(a_ev, as_of=truth.end)
    b = build_journeys(a_ev, as_of=truth.end, engine="spark")
    pd.testing.assert_frame_equal(a.journeys, b.journeys)
    pd.testing.assert_frame_equal(a.stage_transitions(), b.stage_transitions())
    pd.testing.assert_frame_equal(a.channel_paths(by="segment"), b.channel_paths(by="segment"))
    pd.testing.assert_frame_equal(a.stage_durations(), b.stage_durations())
