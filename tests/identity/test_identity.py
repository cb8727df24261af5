from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.identity import DEFAULT_PLACEHOLDERS, stitch, stitch_identities
from analysis.schema import IDENTIFIER_COLUMNS, DataError


def _identifier_persons(events: pd.DataFrame) -> pd.DataFrame:
    """(identifier_type, identifier, person_id) for every identifier on a row with a person."""
    cols = [c for c in IDENTIFIER_COLUMNS if c in events.columns]
    long = (
        events[[*cols, "person_id"]]
        .melt(id_vars="person_id", var_name="identifier_type", value_name="identifier")
        .dropna()
    )
    return long.drop_duplicates()


def test_stitching_recovers_every_true_person(synth_data):
    events, truth = synth_data
    res = stitch(events)
    ids = truth.identities
    personal = ids[~ids["shared"]]
    got = res.identities.merge(personal, on=["identifier_type", "identifier"], how="inner")
    assert len(got) == len(personal), "every personal identifier gets a stitched person"
    assert got["person_id"].notna().all()
    # one stitched person per true person and one true person per stitched person
    assert (got.groupby("person")["person_id"].nunique() == 1).all(), "a true person was split"
    assert (got.groupby("person_id")["person"].nunique() == 1).all(), "two true persons were merged"
    assert res.summary["persons"] == truth.persons["person"].nunique()
    # every row's person is its true person (through the 1-1 map)
    ev_true = truth.event_person.reindex(res.events["event_id"]).to_numpy()
    pairs = pd.DataFrame({"stitched": res.events["person_id"].to_numpy(), "true": ev_true})
    assert pairs["stitched"].notna().all()
    assert (pairs.groupby("stitched")["true"].nunique() == 1).all()


def test_shared_devices_and_placeholders_are_blocked_not_linked(synth_data):
    events, truth = synth_data
    res = stitch(events)
    shared = truth.identities[truth.identities["shared"]]
    blocked = res.blocked.merge(shared, on=["identifier_type", "identifier"])
    assert len(blocked) == len(shared), "every kiosk and placeholder is blocked"
    assert blocked["person_id"].isna().all()
    assert res.summary["blocked"] >= len(shared)
    reasons = set(res.blocked["reason"].str.split(" ").str[0])
    assert {"placeholder", "seen"} <= reasons


def test_naive_stitching_would_merge_people(synth_data):
    """The trap is real: without blocking, kiosks and 'unknown' glue different people together."""
    events, truth = synth_data
    naive = stitch(events, max_links=10**9, placeholders=set())
    assert naive.summary["blocked"] == 0
    ev_true = truth.event_person.reindex(naive.events["event_id"]).to_numpy()
    pairs = pd.DataFrame({"stitched": naive.events["person_id"].to_numpy(), "true": ev_true})
    assert pairs.groupby("stitched")["true"].nunique().max() > 10
    assert naive.summary["persons"] < truth.persons["person"].nunique()


def test_rows_with_only_blocked_identifiers_get_no_person_and_are_counted(make_events):
    ev = make_events(
        [
            {"timestamp": "2024-01-01", "device_id": "d1", "user_id": "u1"},
            {"timestamp": "2024-01-02", "device_id": "d2", "user_id": "u1"},
            {"timestamp": "2024-01-03", "email_hash": "unknown"},
            {"timestamp": "2024-01-04", "email_hash": "UNKNOWN", "crm_id": "c9"},
            {"timestamp": "2024-01-05", "device_id": "d3"},
        ]
    )
    res = stitch(ev)
    p = res.events["person_id"]
    assert p.iloc[0] == p.iloc[1]
    assert pd.isna(p.iloc[2])
    assert p.iloc[3] != p.iloc[0] and pd.notna(p.iloc[3])
    assert p.nunique() == 3
    assert res.summary["rows_without_person"] == 1
    assert res.summary["merges"] == 2  # d1, d2, u1 → 1 person: 2 identifiers merged into it
    assert set(res.blocked["identifier"]) == {"unknown", "UNKNOWN"}


def test_super_node_threshold_is_configurable_and_reported(make_events):
    rows = [
        {"timestamp": f"2024-01-{i + 1:02d}", "device_id": "kiosk", "user_id": f"u{i}"}
        for i in range(6)
    ]
    ev = make_events(rows)
    assert stitch(ev, max_links=10).summary["persons"] == 1  # below threshold: one (wrong) person
    res = stitch(ev, max_links=5)
    assert res.summary["persons"] == 6
    b = res.blocked
    assert list(b["identifier"]) == ["kiosk"]
    assert "6 distinct user_id" in b["reason"].iloc[0] and "max_links=5" in b["reason"].iloc[0]


def test_person_ids_do_not_depend_on_row_order(synth_small):
    events, _ = synth_small
    a = stitch(events).events.set_index("event_id")["person_id"]
    shuffled = events.sample(frac=1.0, random_state=3).reset_index(drop=True)
    b = stitch(shuffled).events.set_index("event_id")["person_id"]
    pd.testing.assert_series_equal(a.sort_index(), b.sort_index())


def test_stitch_identities_keeps_rows_and_order(synth_small):
    events, _ = synth_small
    out = stitch_identities(events)
    assert len(out) == len(events)
    assert (out["event_id"].to_numpy() == events["event_id"].to_numpy()).all()
    assert out.attrs["stitching"]["persons"] == out["person_id"].nunique()
    assert str(out["person_id"].dtype) == "Int64"


def test_no_identifier_column_is_a_clear_error():
    ev = pd.DataFrame({"event_id": ["a"], "timestamp": pd.to_datetime(["2024-01-01"], utc=True)})
    with pytest.raises(DataError, match="no identifier column"):
        stitch(ev)


def test_hash_of_an_empty_email_links_nobody(make_events):
    import hashlib

    empty = hashlib.sha256(b"").hexdigest()
    assert empty in DEFAULT_PLACEHOLDERS
    ev = make_events(
        [
            {"timestamp": "2024-01-01", "crm_id": "c1", "email_hash": empty},
            {"timestamp": "2024-01-02", "crm_id": "c2", "email_hash": empty},
        ]
    )
    res = stitch(ev)
    assert res.summary["persons"] == 2
    assert list(res.blocked["reason"]) == ["placeholder value"]


@pytest.mark.spark
def test_spark_stitching_equals_duckdb(synth_small, spark_available):
    events, _ = synth_small
    a = stitch(events, engine="duckdb")
    b = stitch(events, engine="spark")
    pd.testing.assert_series_equal(a.events["person_id"], b.events["person_id"])
    pd.testing.assert_frame_equal(a.identities, b.identities)
    assert {k: v for k, v in a.summary.items() if k != "engine"} == {
        k: v for k, v in b.summary.items() if k != "engine"
    }
    assert np.all(a.events["event_id"] == b.events["event_id"])


def test_hash_mapping_equals_exact_join(synth_small, monkeypatch):
    """Rows reach their identifier combination by hash, or by the exact join after a collision."""
    import analysis.identity.stitching as stitching

    events, _ = synth_small
    fast = stitch(events)
    monkeypatch.setattr(stitching, "_HASH_JOIN", False)
    exact = stitch(events)
    pd.testing.assert_series_equal(fast.events["person_id"], exact.events["person_id"])
    assert fast.summary == exact.summary
