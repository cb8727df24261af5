"""The fast path (engine="polars", the default) gives the engine path's (ibis on DuckDB) results.

Property tests on random event tables: shared and placeholder identifiers, missing values,
ties in timestamps, hostile channel names (the path separator, quotes, unicode), missing stages
and segments. Stitching: the person of every row, the summary and the identities table.
Journeys: the summary, the journeys table, stage transitions and durations (with ``by`` and
``mature_days``), channel paths (with ``by`` and open journeys), and the tables the fast path
hands to the engine (stage exposures, touchpoint steps, time to conversion, maturity).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import analysis
from analysis.identity import stitch

CHANNELS = [
    "email",
    "paid>search",
    "paid›search",
    "<b>social</b>",
    'say "hi"',
    "café ☕",
    "直接",
    "a > b",
    "x",
]
STAGES = ["See", "Think", "Do", "Care", None]
IDS: dict[str, list[str | None]] = {
    "device_id": ["d1", "d2", "d3", "kiosk", "unknown", "", "N/A", "dév-ü"],
    "user_id": ["u1", "u2", "u3", "u4", "0", "ユーザー"],
    "email_hash": ["e1", "e2", "e3", "e4", "#NV"],
    "crm_id": ["c1", "c2", None],
}


@st.composite
def event_tables(draw: st.DrawFn) -> pd.DataFrame:
    """A small event table with the traps of real data."""
    n = draw(st.integers(1, 60))
    rows = []
    base = pd.Timestamp("2024-03-01", tz="UTC")
    for i in range(n):
        ids = {c: draw(st.sampled_from([None, None, *vals])) for c, vals in IDS.items()}
        if all(v is None for v in ids.values()):
            ids["device_id"] = draw(st.sampled_from(IDS["device_id"]))
        # few distinct seconds: ties in time, within and across persons
        t = base + pd.Timedelta(days=draw(st.integers(0, 90)) * draw(st.sampled_from([0, 1])))
        t += pd.Timedelta(microseconds=draw(st.sampled_from([0, 0, 1, 999_999])))
        conv = draw(st.booleans())
        rows.append(
            {
                "event_id": draw(st.sampled_from(["e", "é", "E", "z"])) + f"{i:03d}",
                "timestamp": t,
                **ids,
                "channel": draw(st.sampled_from(CHANNELS)),
                "stage": draw(st.sampled_from(STAGES)),
                "conversion": conv,
                "revenue": draw(st.sampled_from([None, 0.0, 10.5, 99.99])) if conv else None,
                "sentiment": draw(st.sampled_from([None, None, 0.5])),
                "segment": draw(st.sampled_from(["a", "b", "ü", None])),
                "region": draw(st.sampled_from(["north", "south"])),
            }
        )
    ev = pd.DataFrame(rows)
    ev["timestamp"] = ev["timestamp"].astype("datetime64[us, UTC]")
    for c in ["event_id", *IDS, "channel", "stage", "segment", "region"]:
        ev[c] = ev[c].astype("str").where(ev[c].notna(), None).astype("str")
    ev["revenue"] = ev["revenue"].astype("float64")
    ev["sentiment"] = ev["sentiment"].astype("float64")
    return ev


def _same_stitch(ev: pd.DataFrame, **kw) -> pd.DataFrame:
    a = stitch(ev, engine="duckdb", **kw)
    b = stitch(ev, engine="polars", **kw)
    pd.testing.assert_series_equal(a.events["person_id"], b.events["person_id"])
    drop = {"engine"}
    assert {k: v for k, v in a.summary.items() if k not in drop} == {
        k: v for k, v in b.summary.items() if k not in drop
    }
    pd.testing.assert_frame_equal(a.identities, b.identities)
    return b.events


ALL_BY = ("segment", None, ["segment", "region"])


def _same_journeys(st_ev: pd.DataFrame, inactivity_days: float = 30.0, bys=ALL_BY) -> None:
    a = analysis.build_journeys(st_ev, engine="duckdb", inactivity_days=inactivity_days)
    b = analysis.build_journeys(st_ev, engine="polars", inactivity_days=inactivity_days)
    assert b.summary.pop("engine") == "polars"
    a.summary.pop("engine")
    assert a.summary == b.summary
    pd.testing.assert_frame_equal(a.journeys, b.journeys)
    for by in bys:
        for mature in (None, 20.0):
            pd.testing.assert_frame_equal(
                a.stage_transitions(by=by, mature_days=mature),
                b.stage_transitions(by=by, mature_days=mature),
            )
            pd.testing.assert_frame_equal(
                a.stage_durations(by=by, mature_days=mature),
                b.stage_durations(by=by, mature_days=mature),
            )
        for include_open in (False, True):
            pd.testing.assert_frame_equal(
                a.channel_paths(by=by, include_open=include_open),
                b.channel_paths(by=by, include_open=include_open),
                check_exact=False,
                rtol=1e-12,
            )


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ev=event_tables())
def test_fast_path_equals_engine_path(ev):
    st_ev = _same_stitch(ev)
    if st_ev["person_id"].notna().any():
        _same_journeys(st_ev, bys=(None, ["segment", "region"]))


@pytest.mark.slow
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ev=event_tables(), days=st.sampled_from([1.0, 30.0]), max_links=st.sampled_from([1, 3]))
def test_fast_path_equals_engine_path_many(ev, days, max_links):
    st_ev = _same_stitch(ev, max_links=max_links)
    if st_ev["person_id"].notna().any():
        _same_journeys(st_ev, inactivity_days=days)


def test_fast_path_equals_engine_path_on_synthetic_data(synth_small):
    """300 synthetic persons: every table, the ones the fast path hands to DuckDB too."""
    ev, _ = synth_small
    st_ev = _same_stitch(ev)
    _same_journeys(st_ev)
    a = analysis.build_journeys(st_ev, engine="duckdb")
    b = analysis.build_journeys(st_ev)
    pd.testing.assert_frame_equal(a.stage_exposures(), b.stage_exposures())
    pd.testing.assert_frame_equal(
        a.channel_paths(exposures_only=True), b.channel_paths(exposures_only=True)
    )
    pd.testing.assert_frame_equal(
        a.time_to_conversion(by="first_channel"), b.time_to_conversion(by="first_channel")
    )
    pd.testing.assert_frame_equal(
        a.touchpoint_steps(by="segment", events=st_ev),
        b.touchpoint_steps(by="segment", events=st_ev),
    )
    assert a.maturity().mature_days == b.maturity().mature_days


def test_fast_path_keeps_rows_without_person_out():
    """Rows whose only identifiers are placeholders have no person and no journey."""
    ev = pd.DataFrame(
        {
            "event_id": ["a", "b", "c", "d"],
            "timestamp": pd.to_datetime(
                ["2024-01-01", "2024-01-02", "2024-01-02", "2024-03-01"], utc=True
            ).astype("datetime64[us, UTC]"),
            "device_id": ["d1", "unknown", "d1", "d2"],
            "channel": ["email", "x", "y>z", "email"],
            "stage": ["See", None, "Do", "Think"],
            "conversion": [False, False, True, False],
            "revenue": [np.nan, np.nan, 5.0, np.nan],
            "region": ["n", "n", "s", "s"],
        }
    )
    st_ev = _same_stitch(ev)
    assert st_ev["person_id"].isna().sum() == 1
    b = analysis.build_journeys(st_ev)
    assert b.summary["events_without_person"] == 1
    assert b.summary["channels_renamed"] == ["y>z"]
    assert b.journeys["channels"].tolist() == ["email > y›z", "email"]
    _same_journeys(st_ev)


def test_fast_path_orders_by_time_when_the_sort_key_needs_a_shift():
    """Times over three centuries and 2,000 persons do not fit one 63-bit key with every µs."""
    rng = np.random.default_rng(1)
    n = 4000
    base = pd.Timestamp("1900-01-01", tz="UTC").value // 1000
    us = base + rng.integers(0, 300 * 365 * 86_400 * 10**6, n)
    us[: n - 1 : 7] = us[1::7]  # exact ties
    us[3::11] = us[3::11] // 4 * 4  # times a few µs apart
    ev = pd.DataFrame(
        {
            "event_id": [f"e{i:07d}" for i in rng.integers(0, 10**6, n)],
            "timestamp": pd.to_datetime(us, unit="us", utc=True).astype("datetime64[us, UTC]"),
            "device_id": [f"d{i}" for i in rng.integers(0, 2000, n)],
            "channel": rng.choice(["a", "b", "c"], n),
            "stage": rng.choice(np.array(["See", "Think", "Do", None], dtype=object), n),
            "conversion": rng.random(n) < 0.1,
        }
    )
    st_ev = analysis.stitch_identities(ev)
    # sparse person numbers (stitching's 1..P would take the counting sort, not the packed key)
    st_ev["person_id"] = st_ev["person_id"] * 1_000_000
    bits = int(st_ev["person_id"].max()).bit_length() + int(us.max() - us.min()).bit_length()
    assert bits > 63
    a = analysis.build_journeys(st_ev, engine="duckdb", inactivity_days=3000)
    b = analysis.build_journeys(st_ev, inactivity_days=3000)
    pd.testing.assert_frame_equal(a.journeys, b.journeys)
    pd.testing.assert_frame_equal(a.stage_durations(), b.stage_durations())


def _events(**cols) -> pd.DataFrame:
    """A small event table: one row per value of ``cols``, a day apart, no conversion."""
    n = len(next(iter(cols.values())))
    base = {
        "event_id": [f"e{i}" for i in range(n)],
        "timestamp": pd.date_range("2024-01-01", periods=n, freq="D", tz="UTC").astype(
            "datetime64[us, UTC]"
        ),
        "stage": ["See"] * n,
        "conversion": [False] * n,
        "revenue": [np.nan] * n,
        "segment": ["a"] * n,
        "region": ["n"] * n,
    }
    return pd.DataFrame({**base, **cols})


def test_fast_path_with_no_person_at_all_gives_empty_tables():
    """Every identifier a placeholder: no person, no journey; the engine path's empty tables."""
    ev = _events(device_id=["unknown", "N/A", "unknown"], channel=["email", "x", "a>b"])
    ev.loc[1, ["conversion", "revenue"]] = [True, 3.0]
    st_ev = analysis.stitch_identities(ev)  # engine="duckdb" stitching fails here (guards)
    assert st_ev["person_id"].isna().all()
    a = analysis.build_journeys(st_ev, engine="duckdb")
    assert a.journeys.empty and a.stage_durations().shape == (0, 7)
    assert a.channel_paths().shape == (0, 4)
    _same_journeys(st_ev)


def test_fast_path_counts_a_renamed_channel_and_its_twin_as_one():
    """ "a>b" is renamed "a›b": where "a›b" is there too, the two are one channel in paths."""
    channels = ["a>b", "a›b", "x", "a›b", "a>b", "x", "a>b", "a›b"]
    ev = _events(device_id=["d1", "d1", "d2", "d2", "d3", "d3", "d4", "d5"], channel=channels)
    st_ev = _same_stitch(ev)
    b = analysis.build_journeys(st_ev)
    assert b.summary["channels_renamed"] == ["a>b"]
    paths = b.channel_paths(include_open=True)["path"].tolist()
    assert len(paths) == len(set(paths)) == 4, paths  # a›b > a›b, x > a›b, a›b > x, a›b
    _same_journeys(st_ev)


def test_fast_journeys_without_attributes_skip_the_first_attributes(monkeypatch):
    """No attribute: the journeys table takes no first attributes (nor hides their failure)."""
    from analysis.journeys import fast_tables
    from analysis.journeys.fast import FastJourneys

    ev = _events(device_id=["d1", "d1", "d2"], channel=["email", "x", "x"])
    b = analysis.build_journeys(_same_stitch(ev))
    want = b.journeys.drop(columns=["segment", "region"])
    calls = []
    monkeypatch.setattr(FastJourneys, "first_attributes", property(calls.append))
    b.attributes = []  # build_journeys always has one (segment): a FastJourneys made without
    pd.testing.assert_frame_equal(fast_tables.journey_table(b), want)
    assert calls == []


@pytest.mark.parametrize("by", [[], ["segment"], ["segment", "region"]])
def test_unsorted_path_counts_are_the_engine_paths_rows(synth_small, by):
    """``fast_tables.path_counts`` (the streaming buckets' table) holds channel_paths' rows."""
    from analysis.journeys import fast_tables

    st_ev = _same_stitch(synth_small[0])
    want = analysis.build_journeys(st_ev, engine="duckdb").channel_paths(by=by or None)
    got = fast_tables.path_counts(analysis.build_journeys(st_ev), by).to_pandas()
    assert list(got.columns) == [*by, "path", "conversions", "nulls", "value"]
    keys = [*by, "path"]
    got = got.sort_values(keys).reset_index(drop=True)
    want = want.sort_values(keys).reset_index(drop=True)
    assert len(want) > 10
    pd.testing.assert_frame_equal(got, want, check_dtype=False, check_exact=False, rtol=1e-12)
