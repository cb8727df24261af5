"""analysis.sources.cdnow: the CDNOW purchase files as canonical touchpoints.

Expected values come from plain pandas on the raw files written here, from the peer reader
``analysis.models.care.read_cdnow`` (its own parser) and from hand-made fixtures; never from the
adapter under test.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from analysis import config
from analysis.models.care import read_cdnow
from analysis.prepared import load
from analysis.schema import DataError, validate_canonical
from analysis.sources.cdnow import is_cdnow_file, read_cdnow_events
from analysis.sources.registry import get_adapter

CDNOW = config.EXTERNAL_DIR / "cdnow"


def _raw(path: Path, sample: bool) -> pd.DataFrame:
    names = ["customer_id", "index", "date", "cds", "value"] if sample else None
    df = pd.read_csv(
        path, sep=r"\s+", header=None if sample else 0, names=names, dtype={"customer_id": str}
    )
    if not sample:
        df.columns = ["customer_id", "date", "cds", "value"]
    return df


def test_the_sample_file_becomes_one_purchase_per_line():
    res = read_cdnow_events(CDNOW / "CDNOW_sample.txt")
    raw = _raw(CDNOW / "CDNOW_sample.txt", sample=True)
    peer = read_cdnow(CDNOW, sample=True)
    ev = res.events
    validate_canonical(ev)
    s = res.summary
    assert s["rows_read"] == s["rows_kept"] == len(raw) == len(peer) == 6919
    assert s["rows_quarantined"] == 0
    assert ev["user_id"].nunique() == raw["customer_id"].nunique() == 2357
    assert ev["conversion"].all() and (ev["stage"] == "Do").all()
    assert (ev["touchpoint"] == "purchase").all() and (ev["channel"] == "unknown").all()
    # per customer: purchases and spend as the raw file and the peer reader say
    mine = ev.groupby(ev["user_id"].str.removeprefix("cdnow-"))["revenue"].agg(["size", "sum"])
    theirs = raw.groupby("customer_id")["value"].agg(["size", "sum"])
    pd.testing.assert_frame_equal(mine.sort_index(), theirs.sort_index(), check_names=False)
    assert ev["revenue"].sum() == pytest.approx(peer["value"].sum())
    # days at 00:00 UTC, as the peer reader's dates
    assert sorted(ev["timestamp"].dt.tz_convert(None)) == sorted(peer["date"])
    assert (ev["timestamp"].dt.hour == 0).all()


def test_the_cohort_is_the_month_of_each_customers_first_purchase():
    res = read_cdnow_events(CDNOW / "CDNOW_master.txt")
    raw = _raw(CDNOW / "CDNOW_master.txt", sample=False)
    assert res.summary["rows_read"] == len(raw) == 69659
    assert res.summary["customers"] == raw["customer_id"].nunique() == 23570
    first = raw.groupby("customer_id")["date"].min().astype(str).str[:4] + "-"
    first += raw.groupby("customer_id")["date"].min().astype(str).str[4:6]
    ev = res.events
    got = ev.groupby(ev["user_id"].str.removeprefix("cdnow-"))["cohort"].agg(["nunique", "first"])
    assert (got["nunique"] == 1).all()
    assert got["first"].sort_index().tolist() == first.sort_index().tolist()
    assert set(got["first"]) == {"1997-01", "1997-02", "1997-03"}  # the first quarter of 1997


def test_unreadable_lines_are_quarantined_with_their_line_and_reason(tmp_path):
    f = tmp_path / "cdnow_bad.txt"
    f.write_text(
        " customer_id  date number_of_cds  dollar_value\n"  # line 1
        " 00001 19970101  1   11.77\n"  # 2
        " 00001 19970230  1   12.00\n"  # 3: no such day
        "\n"  # 4: blank, not read
        " 00002 19970112  1\n"  # 5: three fields
        " 00002 19970113  x   5.00\n"  # 6: count
        " 00002 19970114  1   -3.00\n"  # 7: negative value
        " 00002 19970301  2   20.00\n"  # 8
    )
    res = read_cdnow_events(f)
    s = res.summary
    assert (s["rows_read"], s["rows_kept"], s["rows_quarantined"]) == (6, 2, 4)
    q = res.quarantine.set_index("row")
    assert sorted(q.index) == [3, 5, 6, 7]
    assert "YYYYMMDD" in q.loc[3, "reason"]
    assert "3 fields" in q.loc[5, "reason"]
    assert "number_of_cds" in q.loc[6, "reason"]
    assert "dollar_value" in q.loc[7, "reason"]
    kept = res.events.sort_values("timestamp")
    assert kept["revenue"].tolist() == [11.77, 20.0]
    # 00002's rows of January are quarantined: its first kept purchase is in March
    assert kept["cohort"].tolist() == ["1997-01", "1997-03"]


def test_registry_sources_file_and_recognition(tmp_path):
    assert get_adapter("cdnow") is read_cdnow_events
    res = load(CDNOW / "sources.yml")
    assert res.summary["rows_read"] == 69659
    assert is_cdnow_file(CDNOW / "CDNOW_sample.txt") and is_cdnow_file(CDNOW / "CDNOW_master.txt")
    other = tmp_path / "x.txt"
    other.write_text("a b c\n")
    assert not is_cdnow_file(other)
    with pytest.raises(DataError, match="not found"):
        read_cdnow_events(tmp_path / "missing.txt")
    empty = tmp_path / "CDNOW_empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(DataError, match="no purchase lines"):
        read_cdnow_events(empty)
