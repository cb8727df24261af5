"""The report pipeline on the real public data (data/external/): the headline figures of the
index match the same figures computed here with plain pandas from the raw CSVs.

One notebook (the journey overview) and two segments per dataset keep this to ~30 s; the full
reports are ``make reports DATA=data/external/<dataset>/sources.yml SEGMENTS=reports/segments-<dataset>.yml``.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from analysis import config
from analysis.__main__ import main

OLIST = config.EXTERNAL_DIR / "olist_marketing_funnel"
UCI = config.EXTERNAL_DIR / "uci_online_shoppers"
OVERVIEW = str(config.NOTEBOOKS_DIR / "01_journey_overview.ipynb")


def _run(tmp_path, monkeypatch, data, segments, names, *params) -> dict:
    monkeypatch.setenv("CJL_CACHE_DIR", str(tmp_path / "cache"))  # the kernels' caches
    monkeypatch.setattr(config, "CACHE_DIR", tmp_path / "cache")  # this process's
    out = tmp_path / "reports"
    argv = [
        "report",
        "--data",
        str(data),
        "--segments",
        str(segments),
        "--notebook",
        OVERVIEW,
        "--out",
        str(out),
    ]
    for n in names:
        argv += ["--segment", n]
    for p in params:
        argv += ["--param", p]
    assert main(argv) == 0
    manifest = json.loads((out / "latest" / "manifest.json").read_text())
    assert manifest["complete"]
    return manifest["headline"]


def test_olist_headline_matches_the_raw_files(tmp_path, monkeypatch):
    leads = pd.read_csv(OLIST / "olist_marketing_qualified_leads_dataset.csv")
    deals = pd.read_csv(OLIST / "olist_closed_deals_dataset.csv")
    won = deals.merge(leads, on="mql_id")
    days = (
        pd.to_datetime(won["won_date"]) - pd.to_datetime(won["first_contact_date"])
    ).dt.total_seconds() / 86400
    days = days.clip(lower=0)  # the one deal dated before its first contact closes at once
    paid = won["origin"] == "paid_search"

    # journeys long enough that every deal joins its lead (427 days at most)
    headline = _run(
        tmp_path,
        monkeypatch,
        OLIST / "sources.yml",
        config.REPORTS_DIR / "segments-olist.yml",
        ["all", "paid_search"],
        "inactivity_days=600",
    )
    assert headline["all"]["journeys"] == len(leads) == 8000
    assert headline["all"]["conversions"] == len(deals) == 842
    assert headline["all"]["median_days_to_conversion"] == pytest.approx(days.median(), abs=0.01)
    assert headline["paid_search"]["journeys"] == int((leads["origin"] == "paid_search").sum())
    assert headline["paid_search"]["conversions"] == int(paid.sum())
    assert headline["paid_search"]["median_days_to_conversion"] == pytest.approx(
        days[paid].median(), abs=0.01
    )


def test_uci_headline_matches_the_raw_file(tmp_path, monkeypatch):
    raw = pd.read_csv(UCI / "online_shoppers_intention.csv")
    new = raw["VisitorType"] == "New_Visitor"
    headline = _run(
        tmp_path,
        monkeypatch,
        UCI / "sources.yml",
        config.REPORTS_DIR / "segments-uci.yml",
        ["all", "new_visitor"],
    )
    assert headline["all"]["journeys"] == len(raw) == 12330
    assert headline["all"]["conversions"] == int(raw["Revenue"].sum()) == 1908
    assert headline["new_visitor"]["journeys"] == int(new.sum())
    assert headline["new_visitor"]["conversions"] == int(raw.loc[new, "Revenue"].sum())
    # nominal timestamps (time_to_event: false in the segments file): no days-to-conversion figure
    assert headline["all"].get("median_days_to_conversion") is None
