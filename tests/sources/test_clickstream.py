"""Generic clickstream adapter: the CSV fixture (and the same log as Parquet and NDJSON) →
touchpoints, column options, stitching, malformed logs. Expected values are read off
tests/fixtures/sources/clickstream/clicks.csv by hand."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from analysis import stitch_identities
from analysis.schema import CANONICAL_COLUMNS, DataError, validate_canonical
from analysis.sources import read_clickstream
from analysis.sources.registry import get_adapter

CSV = Path(__file__).parents[1] / "fixtures" / "sources" / "clickstream" / "clicks.csv"

TOUCHPOINTS = Counter(
    {
        "page_view": 5,
        "product_view": 3,
        "add_to_cart": 3,
        "search": 1,
        "click_banner": 1,
        "purchase": 2,
        "sign_up": 1,
    }
)
SESSION_CHANNELS = {
    "s1": "paid_search",
    "s2": "direct",
    "s3": "email",
    "s4": "social",
    "s5": "organic_search",
}


def raw() -> pd.DataFrame:
    return pd.read_csv(CSV, dtype=str, keep_default_na=False)


def assert_accounting(res, read, kept, quarantined):
    s = res.summary
    assert (s["rows_read"], s["rows_kept"], s["rows_quarantined"]) == (read, kept, quarantined)
    assert len(res.events) == kept and len(res.quarantine) == quarantined


def as_parquet(tmp_path) -> Path:
    df = raw()
    df["revenue"] = pd.to_numeric(df["revenue"])
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True)  # typed, as Parquet exports are
    p = tmp_path / "clicks.parquet"
    df.replace("", None).to_parquet(p)
    return p


def as_ndjson(tmp_path) -> Path:
    """The same log as NDJSON with epoch milliseconds and nested context, empty fields left out."""
    df = raw()
    epoch = pd.Timestamp("1970-01-01", tz="UTC")
    ms = (
        (pd.to_datetime(df["timestamp"], utc=True) - epoch) // pd.Timedelta(milliseconds=1)
    ).tolist()
    recs = []
    for r, t in zip(df.to_dict("records"), ms, strict=True):
        rec = {k: v for k, v in r.items() if v != "" and k not in ("timestamp", "page")}
        rec["timestamp"] = t
        rec["context"] = {"page": r["page"]}
        recs.append(rec)
    p = tmp_path / "clicks.ndjson"
    p.write_text("\n".join(json.dumps(r) for r in recs) + "\n", encoding="utf-8")
    return p


@pytest.fixture(scope="module")
def res():
    return read_clickstream(CSV)


def test_fixture_loads_into_valid_touchpoints(res):
    ev = res.events
    assert_accounting(res, 16, 16, 0)
    assert list(ev.columns[: len(CANONICAL_COLUMNS)]) == list(CANONICAL_COLUMNS)
    validate_canonical(ev)
    assert Counter(ev["touchpoint"]) == TOUCHPOINTS
    assert ev["event_name"].tolist() == raw()["event"].tolist()  # as given, "Purchase" included
    assert ev["event_id"].tolist() == [f"clicks:{i}" for i in range(2, 18)]  # CSV lines
    assert ev["timestamp"].tolist() == list(pd.to_datetime(raw()["timestamp"], utc=True))


def test_identifiers_sessions_and_attributes(res):
    ev = res.events
    assert Counter(ev["user_id"]) == {"u-1": 5, "u-2": 7, "u-3": 4}
    assert ev["email_hash"].notna().sum() == 2 and set(ev["email_hash"].dropna()) == {"h-ann"}
    assert ev["session_id"].tolist() == raw()["session_id"].tolist()
    assert ev["page"].tolist() == raw()["page"].tolist()  # extra columns stay as attributes


def test_channels_hold_for_the_session(res):
    ev = res.events
    got = ev.groupby("session_id")["channel"].agg(set).to_dict()
    assert got == {k: {v} for k, v in SESSION_CHANNELS.items()}
    assert ev.groupby("session_id")["source_from"].first().to_dict() == {
        "s1": "event",
        "s2": "none",
        "s3": "event",
        "s4": "event",
        "s5": "event",
    }
    assert set(ev.loc[ev["session_id"] == "s1", "campaign"]) == {"brand_2024"}


def test_conversions_and_revenue(res):
    ev = res.events
    conv = ev[ev["conversion"]]
    assert conv["user_id"].tolist() == ["u-1", "u-2"]
    assert conv["revenue"].sum() == pytest.approx(120.50 + 35.00)


def test_stitching(res):
    st = stitch_identities(res.events)
    assert st["person_id"].nunique() == 2  # u-1 and u-3 share the e-mail hash
    person = st.groupby("user_id")["person_id"].first()
    assert person["u-1"] == person["u-3"] != person["u-2"]


@pytest.mark.parametrize("fmt", ["parquet", "ndjson"])
def test_other_formats_give_the_same_touchpoints(tmp_path, res, fmt):
    p = as_parquet(tmp_path) if fmt == "parquet" else as_ndjson(tmp_path)
    other = read_clickstream(p)
    assert_accounting(other, 16, 16, 0)
    cols = [
        "timestamp",
        "user_id",
        "email_hash",
        "channel",
        "touchpoint",
        "campaign",
        "conversion",
        "revenue",
        "session_id",
        "stage",
    ]
    pd.testing.assert_frame_equal(other.events[cols], res.events[cols])
    if fmt == "ndjson":
        assert other.events["context.page"].tolist() == raw()["page"].tolist()
        assert any("epoch ms" in n for n in other.summary["notes"])


def test_named_columns_identifier_and_event_map(tmp_path):
    df = raw().rename(
        columns={
            "user_id": "visitor",
            "session_id": "visit",
            "event": "action_name",
            "timestamp": "when",
        }
    )
    p = tmp_path / "log.csv"
    df.to_csv(p, index=False)
    ev = read_clickstream(
        p,
        user="visitor",
        session="visit",
        event="action_name",
        timestamp="when",
        identifier="cookie_id",
        event_map={"click_banner": "ad_click"},
    ).events
    assert ev["cookie_id"].tolist() == raw()["user_id"].tolist()
    assert ev["user_id"].isna().all()
    assert (ev["touchpoint"] == "ad_click").sum() == 1
    assert ev["session_id"].tolist() == raw()["session_id"].tolist()


def test_channel_column_and_default_channel(tmp_path):
    df = raw().drop(columns=["utm_source", "utm_medium", "utm_campaign"])
    df["channel"] = ["web"] * 8 + ["app"] * 8
    p = tmp_path / "log.csv"
    df.to_csv(p, index=False)
    assert read_clickstream(p).events["channel"].tolist() == df["channel"].tolist()
    df.drop(columns=["channel"]).to_csv(p, index=False)
    with pytest.raises(DataError, match="no channel, source or medium column"):
        read_clickstream(p)
    ev = read_clickstream(p, mapping={"defaults": {"channel": "web"}}).events
    assert set(ev["channel"]) == {"web"}


def test_epoch_units(tmp_path):
    df = raw()
    seconds = (
        pd.to_datetime(df["timestamp"], utc=True) - pd.Timestamp("1970-01-01", tz="UTC")
    ).dt.total_seconds()
    df["timestamp"] = seconds.astype("int64").astype(str)
    p = tmp_path / "log.csv"
    df.to_csv(p, index=False)
    expected = list(pd.to_datetime(raw()["timestamp"], utc=True))
    assert read_clickstream(p).events["timestamp"].tolist() == expected  # inferred: seconds
    df["timestamp"] = (seconds * 1000).astype("int64").astype(str)
    df.to_csv(p, index=False)
    assert read_clickstream(p, timestamp_unit="ms").events["timestamp"].tolist() == expected


def test_column_errors(tmp_path):
    p = tmp_path / "log.csv"
    raw().drop(columns=["user_id"]).to_csv(p, index=False)
    with pytest.raises(DataError, match="the user column: no column found") as exc:
        read_clickstream(p)
    assert "user=" in str(exc.value)
    with pytest.raises(DataError, match="did you mean 'session_id'"):
        read_clickstream(CSV, session="sesion_id")
    assert get_adapter("clickstream") is read_clickstream


# ---------------------------------------------------------------------------------------------
# Malformed logs
# ---------------------------------------------------------------------------------------------


def test_bad_timestamps_are_quarantined(tmp_path):
    df = raw()
    df.loc[3, "timestamp"] = "sometime"  # CSV line 5
    p = tmp_path / "log.csv"
    df.to_csv(p, index=False)
    res = read_clickstream(p)
    assert_accounting(res, 16, 15, 1)
    assert res.quarantine.loc[0, "row"] == 5 and "sometime" in res.quarantine.loc[0, "reason"]
    # line 5 carried s3's source; channels are assigned before validation, so the session's
    # other events still have it
    assert set(res.events.loc[res.events["session_id"] == "s3", "channel"]) == {"email"}


def test_epoch_text_is_quarantined(tmp_path):
    p = as_ndjson(tmp_path)
    recs = [json.loads(x) for x in p.read_text().splitlines()]
    recs[2]["timestamp"] = "abc"
    p.write_text("\n".join(json.dumps(r) for r in recs) + "\n", encoding="utf-8")
    res = read_clickstream(p)
    assert_accounting(res, 16, 15, 1)
    assert (
        res.quarantine.loc[0, "row"] == 3
        and "'abc' is not a number" in res.quarantine.loc[0, "reason"]
    )


def test_missing_field_in_a_record(tmp_path):
    p = as_ndjson(tmp_path)
    recs = [json.loads(x) for x in p.read_text().splitlines()]
    del recs[6]["event"]
    p.write_text("\n".join(json.dumps(r) for r in recs) + "\n", encoding="utf-8")
    res = read_clickstream(p)
    assert_accounting(res, 16, 15, 1)
    assert res.quarantine.loc[0, "row"] == 7 and res.summary["reasons"] == {"empty touchpoint": 1}


def test_truncated_csv_last_row_is_quarantined(tmp_path):
    text = CSV.read_text(encoding="utf-8").rstrip("\n")
    p = tmp_path / "log.csv"
    p.write_text(text[: text.rindex(",/checkout/done")], encoding="utf-8")  # cut in the last row
    res = read_clickstream(p)
    assert_accounting(res, 16, 15, 1)
    q = res.quarantine.iloc[0]
    assert q["row"] == 17 and "cut off" in q["reason"]


def test_truncated_ndjson_and_parquet(tmp_path):
    p = as_ndjson(tmp_path)
    text = p.read_text()
    p.write_text(text[: len(text) // 2], encoding="utf-8")
    with pytest.raises(DataError, match="truncated") as exc:
        read_clickstream(p)
    assert exc.value.rows and str(p) in str(exc.value)
    q = as_parquet(tmp_path)
    data = q.read_bytes()
    q.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError) as exc:
        read_clickstream(q)
    assert str(q) in str(exc.value) and "Parquet" in str(exc.value)
