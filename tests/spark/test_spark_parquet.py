"""The Spark path read from Parquet gives what the default DuckDB path gives (issue 22, item 3).

The in-memory path (``analysis.stitch_identities`` + ``analysis.build_journeys``) is the
independent truth: the Spark path shares none of its expressions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import analysis
from analysis.schema import DataError

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def built(synth_small, spark, tmp_path_factory):
    """The small synthetic sample written to Parquet, built on both paths."""
    from analysis.spark import build_journeys_spark

    events, truth = synth_small
    path = tmp_path_factory.mktemp("spark") / "events.parquet"
    events.to_parquet(path, index=False)
    st = analysis.stitch_identities(events)
    a = analysis.build_journeys(st, as_of=truth.end)
    b = build_journeys_spark(str(path), as_of=truth.end, spark=spark)
    return st, a, b


def test_sample_from_parquet_gives_the_duckdb_tables(built, same_tables):
    _, a, b = built
    same_tables(a, b, bys=("segment", ["segment", "region"]))
    kw = {"by": None, "mature_days": 45.0}
    pd.testing.assert_frame_equal(a.stage_transitions(**kw), b.stage_transitions(**kw))
    pd.testing.assert_frame_equal(
        a.channel_paths(include_open=True, exposures_only=True),
        b.channel_paths(include_open=True, exposures_only=True),
    )


def test_sample_summary_and_person_partition_match(built, partition):
    st, a, b = built
    keys = ("events", "events_used", "persons", "journeys", "converted", "dropoff", "open")
    assert {k: a.summary[k] for k in keys} == {k: b.summary[k] for k in keys}
    v = b.summary["validation"]
    assert v["rows_read"] == len(st) == v["rows_kept"] + v["rows_quarantined"]
    got = b.events.select("event_id", "person_id").toPandas()
    assert partition(st["event_id"], st["person_id"]) == partition(
        got["event_id"], got["person_id"]
    )
    # persons are numbered by their smallest identifier, as in memory: the labels agree too
    merged = got.merge(st[["event_id", "person_id"]], on="event_id", suffixes=("_s", "_d"))
    assert (merged["person_id_s"] == merged["person_id_d"]).all()


def test_sources_are_read_lazily_and_bad_ones_named(spark, synth_small):
    from analysis.spark import read_source

    events, _ = synth_small
    path = _parquet(events, spark)
    sdf = read_source(spark, str(path))
    assert read_source(spark, sdf) is sdf
    sdf.createOrReplaceTempView("cjl_touchpoints")
    assert read_source(spark, "cjl_touchpoints").columns == sdf.columns
    assert read_source(spark, str(path.parent / "*.parquet")).count() == len(events)
    with pytest.raises(DataError, match="no table named"):
        read_source(spark, "no_such_table")
    with pytest.raises(DataError, match="no Parquet file"):
        read_source(spark, "/no/such/dir/events.parquet")


def _parquet(events: pd.DataFrame, spark, name: str = "ev.parquet"):
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp(prefix="cjl_spark_")) / name
    events.to_parquet(path, index=False)
    return path


def _hostile(rng: np.random.Generator) -> tuple[pd.DataFrame, dict[str, int]]:
    """A few hundred touchpoints with every kind of trouble, and the rows each rule must catch.

    Long chains of devices and cookies (one person, many large/small-star rounds), null and
    empty identifiers, placeholders, a super-node device, a chain of logins bridged by shared
    devices (the chain guard), equal timestamps (ties broken by event_id), a '>' in a channel,
    and rows that break the schema's rules.
    """
    rows = []
    t0 = pd.Timestamp("2024-01-01", tz="UTC")

    def add(n: int, **ids):
        for _ in range(n):
            rows.append(ids)

    perm = rng.permutation(80)  # codes in scrambled order along the chain
    for i in range(79):  # cookie_i - device_i - cookie_{i+1}: one person, 159 identifiers
        add(1, cookie_id=f"c{perm[i]:03d}", device_id=f"d{perm[i]:03d}")
        add(1, cookie_id=f"c{perm[i + 1]:03d}", device_id=f"d{perm[i]:03d}")
    for u in range(30):
        add(3, user_id=f"u{u:02d}", email_hash=None if u % 3 else f"m{u:02d}")
        add(2, user_id=f"u{u:02d}", device_id="unknown")  # placeholder: links nothing
        add(1, user_id=f"u{u:02d}", cookie_id="")  # empty: missing
    add(4, device_id="kiosk", user_id=None)
    for u in range(5):  # a super-node: one device, five logins
        add(1, device_id="kiosk", user_id=f"k{u}")
    for u in range(6):  # a chain of logins: u-dev-u-dev-…, each device shared by two
        add(2, user_id=f"ch{u}", device_id=f"cd{u}")
        add(1, user_id=f"ch{u + 1}", device_id=f"cd{u}")
    df = pd.DataFrame(rows)
    n = len(df)
    channels = np.array(["display", "email", "search", "a>b", "store"])
    stages = np.array(["See", "Think", "Do", "Care", None], dtype=object)
    df["event_id"] = [f"e{i:05d}" for i in range(n)]
    days = rng.integers(0, 200, n)
    days[: n // 4] = 5  # many equal timestamps
    df["timestamp"] = (t0 + pd.to_timedelta(days, unit="D")).astype("datetime64[us, UTC]")
    df["channel"] = channels[rng.integers(0, len(channels), n)]
    df["touchpoint"] = "site_visit"
    df["online"] = True
    df["stage"] = stages[rng.integers(0, len(stages), n)]
    df["conversion"] = rng.random(n) < 0.1
    df["revenue"] = np.where(df["conversion"], rng.integers(1, 100, n).astype(float), np.nan)
    df["sentiment"] = np.where(rng.random(n) < 0.05, 0.5, np.nan)
    df["segment"] = np.where(rng.random(n) < 0.5, "a", "b")
    for c in ("device_id", "cookie_id", "user_id", "email_hash"):
        df[c] = df[c].astype("str") if c in df else pd.Series([None] * n, dtype="str")
    good = df.copy()
    # rows that break a rule (appended, so the good rows keep their positions)
    bad = good.sample(12, random_state=1).copy()
    bad["event_id"] = [f"x{i:02d}" for i in range(12)]
    bad.loc[bad.index[0:2], "timestamp"] = pd.NaT
    bad.loc[bad.index[2:4], "channel"] = " "
    bad.loc[bad.index[4:5], "stage"] = "(start)"
    bad.loc[bad.index[5:7], "revenue"] = -5.0
    bad.loc[bad.index[7:8], "sentiment"] = 3.0
    bad.loc[bad.index[8:10], ["device_id", "cookie_id", "user_id", "email_hash"]] = None
    dup = good.iloc[:2].copy()  # same event_id, later timestamp: duplicates
    dup["timestamp"] = dup["timestamp"] + pd.Timedelta(days=400)
    expect = {
        "missing timestamp": 2,
        "empty channel": 2,
        "reserved name": 1,
        "negative revenue": 2,
        "sentiment out of range": 1,
        "no identifier": 2,
        "duplicate event_id": 2,
    }
    out = pd.concat([good, bad.iloc[:10], dup], ignore_index=True)
    return out, {**expect, "_good": len(good)}


def test_hostile_parquet_quarantines_and_matches_duckdb(spark, same_tables, partition):
    from analysis.spark import build_journeys_spark

    rng = np.random.default_rng(7)
    df, expect = _hostile(rng)
    good = df.iloc[: expect.pop("_good")]
    path = _parquet(df, spark)
    b = build_journeys_spark(str(path), as_of="2024-08-01", spark=spark)
    v = b.summary["validation"]
    assert v["rows_read"] == len(df) == v["rows_kept"] + v["rows_quarantined"]
    assert v["rows_quarantined"] == len(df) - len(good)
    assert v["reasons"] == expect
    assert b.quarantine.count() == v["rows_quarantined"]

    st = analysis.stitch_identities(good)
    a = analysis.build_journeys(st, as_of="2024-08-01")
    same_tables(a, b)
    s = b.summary["stitching"]
    assert s["blocked_by_reason"] == st.attrs["stitching"]["blocked_by_reason"]
    assert s["blocked_by_reason"]["chain bridge"] > 0 and s["blocked_by_reason"]["super-node"] > 0
    assert s["persons"] == st.attrs["stitching"]["persons"]
    got = b.events.select("event_id", "person_id").toPandas()
    assert partition(st["event_id"], st["person_id"]) == partition(
        got["event_id"], got["person_id"]
    )
    assert b.summary["channels_renamed"] == ["a>b"]


@pytest.mark.slow
def test_a_table_with_other_column_names_through_a_column_map(spark, synth_small):
    from analysis.spark import build_journeys_spark

    events, truth = synth_small
    renamed = events.rename(columns={"timestamp": "ts", "user_id": "customer"})
    spark.read.parquet(str(_parquet(renamed, spark))).createOrReplaceTempView("cjl_renamed")
    columns = {"timestamp": "ts", "user_id": "customer"}
    with pytest.raises(DataError, match="text files"):
        build_journeys_spark(
            "cjl_renamed", mapping={"columns": columns, "read": {"delimiter": ";"}}, spark=spark
        )
    b = build_journeys_spark(
        "cjl_renamed", mapping={"columns": columns}, as_of=truth.end, spark=spark
    )
    a = analysis.build_journeys(analysis.stitch_identities(events), as_of=truth.end)
    pd.testing.assert_frame_equal(a.stage_transitions(), b.stage_transitions())
    pd.testing.assert_frame_equal(a.channel_paths(), b.channel_paths())
