"""GA4 BigQuery export adapter: fixture (Parquet and NDJSON) → touchpoints, stitching, malformed
exports. Expected values are read off the fixture by hand (see
tests/fixtures/sources/ga4/build_fixtures.py for the story)."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analysis import stitch_identities
from analysis.schema import CANONICAL_COLUMNS, DataError, validate_canonical
from analysis.sources import read_ga4
from analysis.sources.ga4 import DEFAULT_GA4_EVENTS
from analysis.sources.registry import get_adapter

HERE = Path(__file__).parents[1] / "fixtures" / "sources" / "ga4"
PARQUET = HERE / "events_20240301.parquet"
NDJSON = HERE / "events_20240301.ndjson"
P1, P2, P3 = "1197596843.1709280000", "2034985721.1709290000", "3356029417.1709370000"

# by hand from the fixture
TOUCHPOINTS = Counter(
    {
        "first_visit": 3,
        "site_visit": 4,
        "page_view": 4,
        "product_view": 2,
        "add_to_cart": 1,
        "login": 2,
        "checkout": 1,
        "purchase": 1,
        "scroll": 1,
        "add_to_wishlist": 1,
    }
)
CHANNELS = {  # (cookie, session number) → channel
    (P1, 1): "paid_search",
    (P1, 2): "direct",
    (P2, 1): "email",
    (P3, 1): "paid_social",
}


def lines() -> list[str]:
    return NDJSON.read_text(encoding="utf-8").splitlines()


def records() -> list[dict]:
    return [json.loads(x) for x in lines()]


def write_lines(path: Path, rows: list, end: str = "\n") -> Path:
    path.write_text(
        "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + end, encoding="utf-8"
    )
    return path


def assert_accounting(res, read, kept, quarantined):
    s = res.summary
    assert (s["rows_read"], s["rows_kept"], s["rows_quarantined"]) == (read, kept, quarantined)
    assert len(res.events) == kept and len(res.quarantine) == quarantined


@pytest.fixture(scope="module")
def both():
    """The fixture read once per format (reading validates every row: not free)."""
    return {"parquet": read_ga4(PARQUET), "ndjson": read_ga4(NDJSON)}


@pytest.fixture(params=["parquet", "ndjson"])
def loaded(request, both):
    return both[request.param]


def test_fixture_loads_into_valid_touchpoints(loaded):
    ev = loaded.events
    assert_accounting(loaded, 20, 20, 0)
    assert list(ev.columns[: len(CANONICAL_COLUMNS)]) == list(CANONICAL_COLUMNS)
    validate_canonical(ev)
    assert Counter(ev["touchpoint"]) == TOUCHPOINTS
    assert (ev["event_name"] == "scroll").sum() == 1  # unknown event names are kept, not dropped
    assert ev["online"].all()


def test_timestamps_are_the_microseconds_of_the_export(loaded):
    expected = pd.to_datetime([int(r["event_timestamp"]) for r in records()], unit="us", utc=True)
    assert loaded.events["timestamp"].tolist() == list(expected)
    assert loaded.events["timestamp"].iloc[0] == pd.Timestamp("2024-03-01 08:00", tz="UTC")


def test_identifiers(loaded):
    ev = loaded.events
    assert ev["cookie_id"].notna().all()
    assert Counter(ev["cookie_id"]) == {P1: 10, P2: 5, P3: 5}
    logged_in = ev[ev["user_id"].notna()]
    assert set(logged_in["user_id"]) == {"U-42"}
    assert sorted(logged_in["event_name"]) == [
        "add_to_wishlist",
        "begin_checkout",
        "login",
        "login",
        "purchase",
    ]
    for c in ("device_id", "email_hash", "crm_id", "loyalty_id"):
        assert ev[c].isna().all()


def test_conversion_and_revenue(loaded):
    ev = loaded.events
    conv = ev[ev["conversion"]]
    assert len(conv) == 1
    row = conv.iloc[0]
    assert (row["touchpoint"], row["cookie_id"], row["user_id"]) == ("purchase", P1, "U-42")
    assert row["revenue"] == pytest.approx(59.9)
    assert row["transaction_id"] == "T-1001"
    assert (
        ev.loc[~ev["conversion"], "revenue"].isna().all()
    )  # add_to_cart's value param is no revenue


def test_channels_by_session(loaded):
    ev = loaded.events
    day = ev["timestamp"].dt.floor("D")  # the sessions of the fixture are on different days
    number = day.groupby(ev["cookie_id"]).rank(method="dense").astype(int)
    got = {(c, n): set(g) for (c, n), g in ev.groupby([ev["cookie_id"], number])["channel"]}
    assert got == {k: {v} for k, v in CHANNELS.items()}
    # where the source came from
    src = ev.groupby("cookie_id")["source_from"].agg(lambda s: set(s))
    assert src[P2] == {
        "first_user"
    }  # no collected source; the first-user traffic_source, first visit
    assert (
        ev.loc[(ev["cookie_id"] == P1) & (ev["channel"] == "direct"), "source_from"]
        .eq("none")
        .all()
    )
    p3 = ev[ev["cookie_id"] == P3].set_index("event_name")["source_from"]
    assert p3["session_start"] == "event" and p3["page_view"] == "event"  # cts, then event params
    assert p3["login"] == "session" and p3["first_visit"] == "session"
    assert set(ev.loc[ev["cookie_id"] == P1, "campaign"].dropna()) == {"spring_sale"}


def test_sessions_pages_devices(loaded):
    ev = loaded.events
    assert ev["session_id"].nunique() == 4
    assert set(ev.loc[ev["cookie_id"] == P1, "session_id"]) == {
        f"{P1}-1709280000",
        f"{P1}-1709452800",
    }
    assert ev["ga_session_id"].notna().all()
    assert ev["page_location"].str.startswith("https://shop.example.com/").all()
    assert dict(ev.groupby("cookie_id")["device_category"].first()) == {
        P1: "desktop",
        P2: "mobile",
        P3: "mobile",
    }
    assert ev["event_date"].iloc[0] == "20240301"


def test_event_ids_unique_and_stable(both):
    a, b = both["parquet"].events, both["ndjson"].events
    assert a["event_id"].is_unique
    assert a["event_id"].str.fullmatch(r"ga4-[0-9a-f]{16}").all()
    assert (
        a["event_id"].tolist()
        == b["event_id"].tolist()
        == read_ga4(PARQUET).events["event_id"].tolist()
    )
    # first_visit and session_start share P1's first timestamp: different ids
    assert a.loc[0, "event_id"] != a.loc[1, "event_id"]


def test_parquet_and_ndjson_agree(both):
    a, b = both["parquet"].events, both["ndjson"].events
    pd.testing.assert_frame_equal(a, b)


def test_stitching_links_the_login_across_browsers(loaded):
    st = stitch_identities(loaded.events)
    assert st["person_id"].nunique() == 2
    person = st.groupby("cookie_id")["person_id"].first()
    assert person[P1] == person[P3] != person[P2]


def test_options():
    res = read_ga4(
        PARQUET,
        events={"page_view": "site_visit"},
        mapping={
            "columns": {"segment": "device_category"},
            "conversion_touchpoints": ["purchase", "sign_up"],
        },
        params=["percent_scrolled"],
    )
    ev = res.events
    assert (ev["touchpoint"] == "site_visit").sum() == 8
    assert set(ev["segment"]) == {"desktop", "mobile"}
    assert ev.loc[ev["event_name"] == "scroll", "param_percent_scrolled"].tolist() == ["90"]
    assert ev.loc[ev["event_name"] != "scroll", "param_percent_scrolled"].isna().all()


def test_traffic_source_fallback():
    never = read_ga4(PARQUET, traffic_source_fallback="never").events
    assert set(never.loc[never["cookie_id"] == P2, "channel"]) == {"direct"}
    always = read_ga4(PARQUET, traffic_source_fallback="always").events
    # P1's direct second session now takes the first-user google / cpc
    assert set(always.loc[always["cookie_id"] == P1, "channel"]) == {"paid_search"}
    with pytest.raises(ValueError):
        read_ga4(PARQUET, traffic_source_fallback="sometimes")


def test_own_channel_groups():
    ev = read_ga4(NDJSON, channel_groups=[{"channel": "newsletter", "medium": "email"}]).events
    assert set(ev.loc[ev["cookie_id"] == P2, "channel"]) == {"newsletter"}
    assert set(ev.loc[ev["cookie_id"] != P2, "channel"]) == {"other"}


def test_registered_adapter():
    assert get_adapter("ga4") is read_ga4
    assert DEFAULT_GA4_EVENTS["purchase"] == "purchase"


def test_gzipped_ndjson(tmp_path):
    p = tmp_path / "events.ndjson.gz"
    with gzip.open(p, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines()) + "\n")
    assert_accounting(read_ga4(p), 20, 20, 0)


# ---------------------------------------------------------------------------------------------
# Malformed exports
# ---------------------------------------------------------------------------------------------


def test_missing_event_params_column(tmp_path):
    recs = [{k: v for k, v in r.items() if k != "event_params"} for r in records()]
    p = write_lines(tmp_path / "events.ndjson", recs)
    with pytest.raises(DataError) as exc:
        read_ga4(p)
    assert "event_params" in str(exc.value) and str(p) in str(exc.value)
    t = pq.read_table(PARQUET).drop_columns(["event_params"])
    pq.write_table(t, tmp_path / "events.parquet")
    with pytest.raises(DataError, match="no 'event_params' column"):
        read_ga4(tmp_path / "events.parquet")


def test_event_params_element_without_key_is_quarantined(tmp_path):
    recs = records()
    del recs[4]["event_params"][1]["key"]  # line 5, its 2nd parameter
    res = read_ga4(write_lines(tmp_path / "events.ndjson", recs))
    assert_accounting(res, 20, 19, 1)
    q = res.quarantine.iloc[0]
    assert q["row"] == 5 and q["column"] == "event_params"
    assert "element 2 has no key" in q["reason"]
    assert res.summary["reasons"] == {"event_params element without key": 1}


def test_parquet_element_key_null_or_absent(tmp_path):
    t = pq.read_table(PARQUET)
    ep = t.column("event_params").to_pylist()
    ep[5][0]["key"] = None
    pq.write_table(
        t.set_column(3, "event_params", pa.array(ep, type=t.schema.field("event_params").type)),
        tmp_path / "null_key.parquet",
    )
    res = read_ga4(tmp_path / "null_key.parquet")
    assert_accounting(res, 20, 19, 1)
    assert res.quarantine["row"].tolist() == [6]
    keyless = [[{"value": e["value"]} for e in row] for row in t.column("event_params").to_pylist()]
    pq.write_table(t.set_column(3, "event_params", pa.array(keyless)), tmp_path / "no_key.parquet")
    with pytest.raises(DataError, match="event_params elements have no 'key' field"):
        read_ga4(tmp_path / "no_key.parquet")


def test_wrong_types_are_quarantined_with_reasons(tmp_path):
    recs = records()
    recs[6]["event_timestamp"] = "yesterday"  # line 7
    recs[7]["device"] = "mobile"  # line 8: a RECORD as a plain value
    recs[2]["event_params"].append("oops")  # line 3: an element that is not an object
    recs[8]["event_timestamp"] = str(1_709_452_860)  # line 9: seconds, not microseconds
    recs[9]["ecommerce"]["purchase_revenue"] = "lots"  # line 10: the purchase's revenue
    res = read_ga4(write_lines(tmp_path / "events.ndjson", recs))
    assert_accounting(res, 20, 15, 5)
    q = res.quarantine.set_index("row")
    assert sorted(q.index) == [3, 7, 8, 9, 10]
    assert "'yesterday' is not a number" in q.loc[7, "reason"]
    assert "device is 'mobile'" in q.loc[8, "reason"]
    assert "element 4 is 'oops'" in q.loc[3, "reason"]
    assert "seconds or milliseconds" in q.loc[9, "reason"]
    assert "revenue" in q.loc[10, "reason"] and q.loc[10, "column"] == "revenue"
    assert set(res.summary["reasons"]) == {
        "unreadable event_timestamp",
        "device not a record",
        "bad event_params element",
        "implausible event_timestamp",
        "non-numeric revenue",
    }


def test_parquet_timestamp_as_text(tmp_path):
    t = pq.read_table(PARQUET)
    ts = ["abc"] + [str(x) for x in t.column("event_timestamp").to_pylist()[1:]]
    pq.write_table(t.set_column(1, "event_timestamp", pa.array(ts)), tmp_path / "e.parquet")
    res = read_ga4(tmp_path / "e.parquet")
    assert_accounting(res, 20, 19, 1)
    assert res.quarantine.loc[0, "row"] == 1 and "'abc'" in res.quarantine.loc[0, "reason"]


def test_no_usable_timestamp_is_an_error(tmp_path):
    recs = [dict(r, event_timestamp="n/a") for r in records()]
    with pytest.raises(DataError, match="no row could be used") as exc:
        read_ga4(write_lines(tmp_path / "e.ndjson", recs))
    assert exc.value.column == "event_timestamp"


def test_missing_identifier_and_duplicates_are_quarantined(tmp_path):
    recs = records()
    del recs[12]["user_pseudo_id"]  # line 13: no identifier at all
    rows = [*recs, recs[0]]  # line 21 repeats line 1 exactly
    res = read_ga4(write_lines(tmp_path / "e.ndjson", rows))
    assert_accounting(res, 21, 19, 2)
    q = res.quarantine.set_index("row")
    assert "no identifier" in q.loc[13, "reason"]
    assert "exact duplicate of row 1" in q.loc[21, "reason"]


def test_truncated_ndjson_names_the_line(tmp_path):
    ls = lines()
    p = write_lines(tmp_path / "e.ndjson", [*ls[:5], ls[5][:80]], end="")
    with pytest.raises(DataError) as exc:
        read_ga4(p)
    assert exc.value.rows == [6] and "truncated" in str(exc.value) and str(p) in str(exc.value)


def test_broken_line_in_the_middle(tmp_path):
    ls = lines()
    with pytest.raises(DataError) as exc:
        read_ga4(write_lines(tmp_path / "e.ndjson", [*ls[:3], "{not json", *ls[3:]]))
    assert exc.value.rows == [4] and "not valid JSON" in str(exc.value)


def test_truncated_parquet_names_the_file(tmp_path):
    data = PARQUET.read_bytes()
    p = tmp_path / "events_20240301.parquet"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError) as exc:
        read_ga4(p)
    msg = str(exc.value)
    assert str(p) in msg and "export" in msg and "again" in msg


def test_truncated_gzip(tmp_path):
    p = tmp_path / "e.ndjson.gz"
    with gzip.open(p, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines()) + "\n")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated"):
        read_ga4(p)


def test_file_problems(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_ga4(tmp_path / "nope.parquet")
    (tmp_path / "events.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(DataError, match="unsupported file type"):
        read_ga4(tmp_path / "events.csv")
    p = write_lines(tmp_path / "e.ndjson", [{"event_name": "x", "event_params": []}])
    with pytest.raises(DataError) as exc:
        read_ga4(p)
    assert "event_timestamp" in str(exc.value) and "user_pseudo_id" in str(exc.value)
    assert np.all(np.isin(["event_timestamp", "user_pseudo_id"], exc.value.column))
