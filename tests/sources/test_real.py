"""Adapters for the real public data (Olist funnel, UCI online shoppers): fixtures, malformed
variants, and the real files' headline figures checked against plain pandas on the raw CSVs.

Expected values come from the fixtures by hand or from independent pandas code written here
(never from the adapters, journeys or models under test).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import analysis
from analysis import config
from analysis.models.conversion import conversion_counts
from analysis.reports import select_events
from analysis.schema import DataError, validate_canonical
from analysis.sources import read_events, read_olist, read_uci_online_shoppers
from analysis.sources.olist import JOURNEY_SETTINGS, OUTCOME_COLUMNS
from analysis.sources.registry import get_adapter
from analysis.sources.uci import journey_settings
from analysis.survival import time_to_event_summary

FIXTURES = Path(__file__).parents[1] / "fixtures" / "sources"
OLIST = config.EXTERNAL_DIR / "olist_marketing_funnel"
UCI = config.EXTERNAL_DIR / "uci_online_shoppers"
LEADS_CSV = OLIST / "olist_marketing_qualified_leads_dataset.csv"
DEALS_CSV = OLIST / "olist_closed_deals_dataset.csv"
UCI_CSV = UCI / "online_shoppers_intention.csv"

#: sha256 of the files as released (../shared/data/SHA256SUMS), recorded in the LICENSE.md files.
SHA256 = {
    "cdnow/CDNOW_master.txt": "eff6889ed364c5199d6eacbbeb7a6d559971df4406ac876f322c373f00a072ef",
    "cdnow/CDNOW_sample.txt": "6fae10155c0b0ba363c2c386e30f77990d22328220efd862a5edd1443420d94a",
    "olist_marketing_funnel/olist_closed_deals_dataset.csv": "1433f402d8fff00ca167579de641d9525f6e846368958c166f699ef1b0c31f3d",
    "olist_marketing_funnel/olist_marketing_qualified_leads_dataset.csv": "5537753b7549ce4068e52e2402c29f2773c5375fc0575520ae8f3f301f666573",
    "uci_online_shoppers/online_shoppers_intention.csv": "b3055ee355f59134d851d32641183cb4a8b45def7124d2f50442a042f358e0d9",
}


def accounting(res) -> tuple[int, int, int]:
    s = res.summary
    assert s["rows_read"] == s["rows_kept"] + s["rows_quarantined"]
    assert len(res.events) == s["rows_kept"] and len(res.quarantine) == s["rows_quarantined"]
    return s["rows_read"], s["rows_kept"], s["rows_quarantined"]


# ------------------------------------------------------------------------------- the copies
@pytest.mark.parametrize("name", sorted(SHA256))
def test_copies_are_byte_identical(name):
    path = config.EXTERNAL_DIR / name
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SHA256[name]
    assert (path.parent / "LICENSE.md").read_text().count(SHA256[name]) == 1


def test_adapters_are_registered():
    assert get_adapter("olist") is read_olist
    assert get_adapter("uci_online_shoppers") is read_uci_online_shoppers


# ---------------------------------------------------------------------------- Olist fixture
def test_olist_fixture_rows_and_quirks():
    res = read_olist(FIXTURES / "olist")
    # 5 leads + 4 deals read; m4's lead (bad date) and the deals of m4 and m9 quarantined
    assert accounting(res) == (9, 6, 3)
    assert res.summary["files"] == {
        "olist_marketing_qualified_leads_dataset.csv": 5,
        "olist_closed_deals_dataset.csv": 4,
    }
    ev = res.events.set_index("event_id")
    validate_canonical(res.events)
    assert sorted(ev.index) == sorted(
        [
            "olist:m1:1:lead",
            "olist:m2:1:lead",
            "olist:m3:1:lead",
            "olist:m5:1:lead",
            "olist:m1:2:deal",
            "olist:m2:2:deal",
        ]
    )
    assert ev.loc["olist:m2:1:lead", "channel"] == "direct"  # direct_traffic in the vocabulary
    assert ev.loc["olist:m3:1:lead", "channel"] == "unknown" and pd.isna(
        ev.loc["olist:m3:1:lead", "origin"]
    )
    assert (
        ev.loc["olist:m1:2:deal", "channel"] == "paid_search"
    )  # the deal keeps its lead's channel
    assert ev.loc["olist:m1:2:deal", "timestamp"] == pd.Timestamp("2018-01-20 12:00", tz="UTC")
    assert (
        ev.loc["olist:m1:1:lead", "landing_page_id"]
        == ev.loc["olist:m1:2:deal", "landing_page_id"]
        == "lp1"
    )
    # stages, conversions, online
    assert ev.loc[ev.touchpoint == "marketing_qualified_lead", "stage"].eq("Think").all()
    assert ev.loc[ev.touchpoint == "closed_deal", "stage"].eq("Do").all()
    assert (
        ev["conversion"].sum() == 2 and ev.loc[ev.conversion, "touchpoint"].eq("closed_deal").all()
    )
    # outcome-only columns exist on deal rows only
    leads = ev[ev.touchpoint == "marketing_qualified_lead"]
    assert leads[list(OUTCOME_COLUMNS)].isna().all().all()
    assert ev.loc["olist:m2:2:deal", "business_segment"] == "car_accessories"
    # the deal won the day before its first contact: moved to the first contact, flagged, noted
    assert ev.loc["olist:m2:2:deal", "timestamp"] == pd.Timestamp("2018-01-12", tz="UTC")
    assert "before the lead's first contact" in ev.loc["olist:m2:2:deal", "adjustment"]
    assert ev["adjustment"].notna().sum() == 1
    assert any("moved to the first contact" in n for n in res.summary["notes"])
    # quarantine: file, line and reason for each
    q = res.quarantine.set_index(["file", "row"])
    assert "timestamp" in q.loc[("olist_marketing_qualified_leads_dataset.csv", 5), "reason"]
    assert (
        "was quarantined (leads file row 5)"
        in q.loc[("olist_closed_deals_dataset.csv", 4), "reason"]
    )
    assert "not in the leads file" in q.loc[("olist_closed_deals_dataset.csv", 5), "reason"]
    assert res.summary["reasons"]["deal without a lead"] == 2


def test_olist_fixture_quarantine_option():
    res = read_olist(FIXTURES / "olist", deal_before_contact="quarantine")
    assert accounting(res) == (9, 5, 4)
    q = res.quarantine
    early = q[q["reason"].str.contains("before the lead's first contact")]
    assert early["row"].tolist() == [3] and early["mql_id"].tolist() == ["m2"]
    assert res.summary["reasons"]["deal before first contact"] == 1
    assert res.events["conversion"].sum() == 1


def test_olist_malformed(tmp_path):
    with pytest.raises(DataError, match=r"lacks olist_closed_deals_dataset\.csv"):
        shutil.copy(FIXTURES / "olist" / "olist_marketing_qualified_leads_dataset.csv", tmp_path)
        read_olist(tmp_path)
    # a missing column (and a truncated deals file) are reported together
    (tmp_path / "olist_closed_deals_dataset.csv").write_text("mql_id,seller_id\nm1,s1\n")
    leads = tmp_path / "olist_marketing_qualified_leads_dataset.csv"
    leads.write_text(leads.read_text().replace("origin", "source"))
    with pytest.raises(DataError) as e:
        read_olist(tmp_path)
    assert "origin" in str(e.value) and "won_date" in str(e.value) and "2 problems" in str(e.value)
    with pytest.raises(DataError, match="folder not found"):
        read_olist(tmp_path / "nope")
    with pytest.raises(ValueError, match="deal_before_contact"):
        read_olist(FIXTURES / "olist", deal_before_contact="keep")


# ------------------------------------------------------------------------------ UCI fixture
def test_uci_fixture_rows():
    res = read_uci_online_shoppers(FIXTURES / "uci")
    # 7 sessions: 4 good (2 bought → 6 touchpoints) and 3 quarantined sessions (1 touchpoint each)
    assert accounting(res) == (9, 6, 3)
    assert res.summary["sessions"] == 7
    q = res.quarantine.set_index("row")  # CSV lines (header = 1)
    assert "Month 'Jnue'" in q.loc[5, "reason"]
    assert "Revenue 'maybe'" in q.loc[6, "reason"]
    assert "TrafficType 'x'" in q.loc[7, "reason"]
    ev = res.events.set_index("event_id")
    assert list(ev.index) == [
        "uci-s00001:1:visit",
        "uci-s00002:1:visit",
        "uci-s00002:2:purchase",
        "uci-s00003:1:visit",
        "uci-s00007:1:visit",
        "uci-s00007:2:purchase",
    ]
    assert ev.loc["uci-s00002:1:visit", "channel"] == "traffic_type_2"
    assert ev.loc["uci-s00007:1:visit", "channel"] == "traffic_type_20"
    assert ev.loc["uci-s00002:1:visit", "segment"] == "New_Visitor"
    # June (spelled out) is month 6; the purchase follows after the session's page time (600 s)
    assert ev.loc["uci-s00002:1:visit", "timestamp"] == pd.Timestamp("2016-06-01", tz="UTC")
    assert ev.loc["uci-s00002:2:purchase", "timestamp"] == pd.Timestamp(
        "2016-06-01 00:10", tz="UTC"
    )
    # the second Feb session is one second after the first; the repeated row is its own session
    assert ev.loc["uci-s00003:1:visit", "timestamp"] == pd.Timestamp(
        "2016-02-01 00:00:01", tz="UTC"
    )
    assert ev.loc["uci-s00003:1:visit", "cookie_id"] != ev.loc["uci-s00001:1:visit", "cookie_id"]
    assert ev["conversion"].sum() == 2 and ev.loc[ev.conversion, "stage"].eq("Do").all()
    assert "Revenue" not in ev.columns  # the outcome is the purchase row, not an attribute
    assert (
        read_uci_online_shoppers(FIXTURES / "uci", year=2020)
        .events["timestamp"]
        .dt.year.eq(2020)
        .all()
    )


def test_uci_malformed(tmp_path):
    bad = tmp_path / "online_shoppers_intention.csv"
    bad.write_text(
        (FIXTURES / "uci" / "online_shoppers_intention.csv")
        .read_text()
        .replace("TrafficType", "Traffic")
    )
    with pytest.raises(DataError, match="missing column"):
        read_uci_online_shoppers(tmp_path)
    with pytest.raises(DataError, match="file not found"):
        read_uci_online_shoppers(tmp_path / "other.csv")
    bad.write_text("")
    with pytest.raises(DataError, match="empty"):
        read_uci_online_shoppers(bad)


# ------------------------------------------------------------------- the trap: outcome columns
def test_select_events_refuses_outcome_only_columns(tmp_path):
    res = read_olist(FIXTURES / "olist")
    ev = res.events
    with pytest.raises(DataError, match="only on conversion rows") as e:
        select_events(ev, {"business_segment": "pet"})
    assert e.value.column == "business_segment" and "outcome" in str(e.value)
    assert len(select_events(ev, {"channel": "paid_search"})) == 2  # known before the outcome: fine
    # the same after the CSV round trip the report notebooks make
    path = tmp_path / "olist.csv"
    ev.to_csv(path, index=False)
    back = read_events(path).events
    with pytest.raises(DataError, match="only on conversion rows"):
        select_events(back, {"lead_type": ["industry", "online_medium"]})
    assert len(select_events(back, {"landing_page_id": "lp1"})) == 4


# ---------------------------------------------------- real files: headline figures, independently
@pytest.fixture(scope="module")
def olist_raw():
    leads = pd.read_csv(LEADS_CSV)
    deals = pd.read_csv(DEALS_CSV)
    return leads, deals


@pytest.fixture(scope="module")
def olist_journeys():
    res = read_olist(OLIST)
    ev = analysis.stitch_identities(res.events)
    return res, analysis.build_journeys(ev, **JOURNEY_SETTINGS)


def test_olist_converted_leads_per_origin(olist_raw, olist_journeys):
    leads, deals = olist_raw
    res, jr = olist_journeys
    assert accounting(res) == (8842, 8842, 0)
    # plain pandas: leads and won leads per origin, origin spelled as the adapter documents it
    origin = leads["origin"].fillna("unknown").replace({"direct_traffic": "direct"})
    expected = pd.DataFrame(
        {"first_channel": origin, "converted": leads["mql_id"].isin(deals["mql_id"])}
    )
    expected = expected.groupby("first_channel")["converted"].agg(n="size", conversions="sum")
    assert expected["conversions"].sum() == 842 and expected["n"].sum() == 8000
    got = conversion_counts(jr.journeys, "first_channel").set_index("first_channel")
    pd.testing.assert_frame_equal(
        got[["n", "conversions"]], expected.astype("int64"), check_names=False
    )
    assert jr.summary["journeys"] == 8000 and jr.summary["converted"] == 842
    # per landing page too (495 pages)
    pages = pd.DataFrame(
        {
            "landing_page_id": leads["landing_page_id"],
            "converted": leads["mql_id"].isin(deals["mql_id"]),
        }
    ).groupby("landing_page_id")
    got_pages = conversion_counts(jr.journeys, "landing_page_id").set_index("landing_page_id")
    assert len(got_pages) == 495
    assert (got_pages["conversions"] == pages["converted"].sum()).all()
    assert (got_pages["n"] == pages.size()).all()


def test_olist_median_days_to_close(olist_raw, olist_journeys):
    leads, deals = olist_raw
    _, jr = olist_journeys
    both = deals.merge(leads, on="mql_id")
    days = (
        pd.to_datetime(both["won_date"]) - pd.to_datetime(both["first_contact_date"])
    ) / pd.Timedelta(days=1)
    expected_median = days.median()
    assert int(expected_median) == 14  # the data README's figure (whole days)
    last = max(
        pd.to_datetime(leads["first_contact_date"]).max(), pd.to_datetime(deals["won_date"]).max()
    )
    dur = jr.stage_durations(by=None)
    think = dur[dur["stage"] == "Think"]
    summary = time_to_event_summary(think, horizons=(30, 180)).iloc[0]
    assert summary["events"] == 842 and summary["censored"] == 8000 - 842
    # the deal dated 1.2 days before its first contact counts as 0 days: below the median either way
    assert summary["median_days_events"] == pytest.approx(expected_median, abs=1e-9)
    # leads without a deal are censored at the end of the data (the last date in either file)
    open_days = last - pd.to_datetime(
        leads.loc[~leads["mql_id"].isin(deals["mql_id"]), "first_contact_date"]
    )
    assert np.sort(think.loc[think["censored"], "duration_days"].to_numpy()) == pytest.approx(
        np.sort((open_days / pd.Timedelta(days=1)).to_numpy())
    )
    # Kaplan-Meier share closed by 30 days: every lead has >= 167 days of follow-up, so no lead is
    # censored before day 30 and the KM share equals the plain share
    assert summary["share_by_30d"] == pytest.approx((days.clip(lower=0) <= 30).sum() / len(leads))
    assert np.isnan(summary["km_median_days"])  # most leads never close: no KM median


def test_uci_conversions_by_visitor_and_traffic_type():
    raw = pd.read_csv(UCI_CSV)
    res = read_uci_online_shoppers(UCI)
    assert accounting(res) == (12330 + 1908, 12330 + 1908, 0)
    ev = analysis.stitch_identities(res.events)
    jr = analysis.build_journeys(ev, **journey_settings(ev))
    assert jr.summary["journeys"] == 12330 and jr.summary["open"] == 0
    assert raw["Revenue"].sum() == 1908
    by_visitor = conversion_counts(jr.journeys, "segment").set_index("segment")
    exp = raw.groupby("VisitorType")["Revenue"].agg(n="size", conversions="sum")
    assert (by_visitor["n"] == exp["n"]).all() and (
        by_visitor["conversions"] == exp["conversions"]
    ).all()
    by_traffic = conversion_counts(jr.journeys, "first_channel").set_index("first_channel")
    exp = raw.groupby("TrafficType")["Revenue"].agg(n="size", conversions="sum")
    exp.index = "traffic_type_" + exp.index.astype(str)
    assert len(by_traffic) == 20
    assert (by_traffic.loc[exp.index, "n"] == exp["n"]).all()
    assert (by_traffic.loc[exp.index, "conversions"] == exp["conversions"]).all()
    # the months as spelled in the file, each on the first of its month
    month_of = ev.loc[ev["touchpoint"] == "site_visit"].groupby("Month")["timestamp"].min().dt.month
    assert month_of.to_dict() == {
        "Aug": 8,
        "Dec": 12,
        "Feb": 2,
        "Jul": 7,
        "June": 6,
        "Mar": 3,
        "May": 5,
        "Nov": 11,
        "Oct": 10,
        "Sep": 9,
    }
