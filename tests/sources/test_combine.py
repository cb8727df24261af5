"""Combining sources into one touchpoint table; the sources file; stitching across sources.

Fixtures: tests/fixtures/sources/crm/ (README there). The persons and their rows are read off
the fixture files by hand: Jane Doe appears in every source, under a cookie, a hashed e-mail,
a CRM id, a loyalty card and a phone number.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pandas as pd
import pytest

import analysis
from analysis.schema import CANONICAL_COLUMNS, DataError, validate_canonical
from analysis.sources import (
    combine_sources,
    read_contacts,
    read_deals,
    read_events,
    read_sources,
    read_support_tickets,
    source_counts,
)

FIX = Path(__file__).parents[1] / "fixtures" / "sources" / "crm"
JANE_HASH = hashlib.sha256(b"jane.doe@example.com").hexdigest()


@pytest.fixture(scope="module")
def combined():
    return read_sources(FIX / "sources.yml")


def test_fixture_hash_is_sha256_of_the_normalised_email():
    web = pd.read_csv(FIX / "web.csv", dtype=str)
    assert set(web["email_sha256"].dropna()) == {JANE_HASH}


# ---------------------------------------------------------------------------------------------
# combine_sources
# ---------------------------------------------------------------------------------------------


def test_combine_results_counts_add_up_per_source_and_in_total():
    parts = {
        "contacts": read_contacts(FIX / "hubspot_contacts.csv"),
        "deals": read_deals(FIX / "hubspot_deals.csv"),
        "tickets": read_support_tickets(FIX / "zendesk_tickets.csv"),
    }
    res = combine_sources(parts)
    s = res.summary
    for name, r in parts.items():
        for k in ("rows_read", "rows_kept", "rows_quarantined"):
            assert s["sources"][name][k] == r.summary[k]
    # by hand: contacts 5 kept; deals 9 touchpoints kept; tickets 3 kept + 1 quarantined
    assert (s["rows_read"], s["rows_kept"], s["rows_quarantined"]) == (18, 17, 1)
    assert len(res.events) == 17 and len(res.quarantine) == 1
    assert res.events["source"].value_counts().to_dict() == {
        "deals": 9,
        "contacts": 5,
        "tickets": 3,
    }
    assert res.quarantine["source"].tolist() == ["tickets"] and res.quarantine["row"].tolist() == [
        5
    ]
    assert s["reasons"] == {"no identifier": 1}
    assert list(res.events.columns[: len(CANONICAL_COLUMNS)]) == list(CANONICAL_COLUMNS)
    assert (
        "phone_hash" in s["identifiers"] and res.events["phone_hash"].notna().sum() == 2
    )  # 2 contacts
    assert res.events.loc[res.events["source"] == "deals", "phone_hash"].isna().all()
    assert any(n.startswith("deals: ") for n in s["notes"])
    validate_canonical(res.events)
    counts = source_counts(res)
    assert counts["source"].tolist() == ["contacts", "deals", "tickets", "(total)"]
    assert counts.iloc[-1][["rows_read", "rows_kept", "rows_quarantined"]].tolist() == [18, 17, 1]


def test_colliding_event_ids_are_prefixed_with_the_source_name():
    a = read_contacts(FIX / "hubspot_contacts.csv")
    t = read_support_tickets(FIX / "zendesk_tickets.csv")
    res = combine_sources([("first", a), ("second", a), ("tickets", t)])
    ids = res.events["event_id"]
    assert ids.is_unique
    assert ids[res.events["source"] == "first"].str.startswith("first:hubspot_contacts:").all()
    assert ids[res.events["source"] == "second"].str.startswith("second:hubspot_contacts:").all()
    assert (
        ids[res.events["source"] == "tickets"].tolist() == t.events["event_id"].tolist()
    )  # no collision
    assert res.summary["sources"]["first"]["event_ids_prefixed"]
    assert not res.summary["sources"]["tickets"]["event_ids_prefixed"]


def test_combine_specs_through_the_registry():
    res = combine_sources(
        [
            ("crm_contacts", FIX / "hubspot_contacts.csv"),
            ("feedback", str(FIX / "delighted_nps.csv"), {"scale": [0, 10]}),
        ]
    )
    assert res.summary["sources"]["crm_contacts"]["adapter"] == "crm_contacts"
    assert res.summary["sources"]["feedback"]["rows_quarantined"] == 1  # the NPS 11
    assert res.quarantine["source"].tolist() == ["feedback"]


def test_a_source_column_of_the_data_is_kept_aside():
    df = pd.DataFrame(
        {
            "timestamp": ["2024-01-01"],
            "user_id": ["u"],
            "channel": ["email"],
            "touchpoint": ["site_visit"],
            "source": ["newsletter"],
        }
    )
    res = combine_sources({"web": analysis.sources.validate_events(df)})
    assert res.events["source"].tolist() == ["web"] and res.events["source_original"].tolist() == [
        "newsletter"
    ]


def test_combine_spec_problems_are_reported_together():
    with pytest.raises(DataError) as e:
        combine_sources(
            [("crm_contact", FIX / "hubspot_contacts.csv"), ("feedback", FIX / "nope.csv")]
        )
    msg = str(e.value)
    assert (
        "did you mean 'crm_contacts'" in msg
        and "path not found" in msg
        and "delighted_nps.csv" not in msg
    )
    assert len(e.value.problems) == 2


# ---------------------------------------------------------------------------------------------
# read_sources and stitching across sources
# ---------------------------------------------------------------------------------------------


def test_sources_file_loads_every_source(combined):
    per = combined.summary["sources"]
    assert list(per) == ["web", "crm_contacts", "crm_deals", "tickets", "nps", "offline"]
    # by hand from the fixtures
    assert {k: (v["rows_kept"], v["rows_quarantined"]) for k, v in per.items()} == {
        "web": (5, 0),
        "crm_contacts": (5, 0),
        "crm_deals": (9, 0),
        "tickets": (3, 1),
        "nps": (3, 1),
        "offline": (5, 0),
    }
    s = combined.summary
    assert s["rows_read"] == s["rows_kept"] + s["rows_quarantined"] == 32
    assert combined.events["conversion"].sum() == 2  # deal 9001 won, store purchase v2
    assert combined.events.loc[combined.events["conversion"], "revenue"].sum() == pytest.approx(
        1289.90
    )


def test_sources_file_paths_are_relative_to_the_yaml(tmp_path, monkeypatch):
    folder = tmp_path / "cfg"
    shutil.copytree(FIX, folder)
    monkeypatch.chdir(tmp_path)  # not the YAML's folder
    res = read_sources(folder / "sources.yml")
    assert res.summary["rows_kept"] == 30
    assert res.summary["sources"]["web"]["file"] == str(folder / "web.csv")


def test_one_person_across_web_crm_deals_tickets_feedback_and_offline(combined):
    ev = analysis.stitch_identities(combined.events)
    assert ev["person_id"].notna().all()
    jane_rows = (
        (ev["cookie_id"] == "c-111")  # web w1-w4 (anonymous, then logged in)
        | (ev["email_hash"] == JANE_HASH)  # contact, ticket 101, NPS r-1, store visit v1
        | (ev["crm_id"] == "501")  # deal 9001
        | (ev["loyalty_id"] == "L-7788")  # store visit v1 and purchase v2
    )
    jane = ev[jane_rows]
    assert jane["person_id"].nunique() == 1
    # by hand: web 4, contact 1, deal 9001 3, ticket 1, NPS 1, offline 2
    assert jane["source"].value_counts().to_dict() == {
        "web": 4,
        "crm_deals": 3,
        "offline": 2,
        "crm_contacts": 1,
        "tickets": 1,
        "nps": 1,
    }
    assert (ev["person_id"] == jane["person_id"].iloc[0]).sum() == len(jane)
    chen = ev[
        (ev["crm_id"] == "503")
        | (ev["email_hash"] == hashlib.sha256(b"chen.wei@example.net").hexdigest())
        | (ev["phone_hash"] == hashlib.sha256(b"49407654321").hexdigest())
    ]
    assert chen["person_id"].nunique() == 1 and set(chen["source"]) == {
        "crm_contacts",
        "crm_deals",
        "tickets",
        "offline",
    }
    # by hand: Jane, the anonymous c-222, Ali, Chen, Eva (504), Olu (505), the L-9999 card
    assert ev["person_id"].nunique() == 7


def test_build_journeys_runs_on_the_combined_table(combined):
    ev = analysis.stitch_identities(combined.events)
    jr = analysis.build_journeys(ev, inactivity_days=30)
    j = jr.journeys
    jane = ev.loc[ev["email_hash"] == JANE_HASH, "person_id"].iloc[0]
    mine = j[j["person_id"] == jane]
    # by hand: the store purchase (16 Mar, 89.90) ends one journey, the won deal (20 Mar, 1,200)
    # the next; the ticket and the NPS answer after it start a third
    assert sorted(mine.loc[mine["converted"], "revenue"].round(2).tolist()) == [89.9, 1200.0]
    assert len(mine) == 3
    assert j["converted"].sum() == 2
    paths = jr.channel_paths()
    assert paths["conversions"].sum() == 2


def test_sources_file_problems_are_all_reported_naming_the_entry(tmp_path):
    spec = {
        "source": [],  # typo of "sources"
        "sources": [
            {"name": "web", "adaptor": "events", "path": str(FIX / "web.csv")},
            {"name": "crm", "adapter": "crm_contact", "path": str(FIX / "hubspot_contacts.csv")},
            {"name": "deals", "adapter": "crm_deals"},
            {"name": "tickets", "adapter": "support_tickets", "path": "missing_tickets.csv"},
            {
                "name": "contacts",
                "adapter": "crm_contacts",
                "path": str(FIX / "hubspot_contacts.csv"),
                "lead_source_channel": {"Podcast": "audio"},
            },
        ],
    }
    with pytest.raises(DataError) as e:
        read_sources(spec, base_dir=tmp_path)
    msg = str(e.value)
    assert "did you mean 'sources'" in msg
    assert "'web'" in msg and "did you mean 'adapter'" in msg
    assert "'crm'" in msg and "did you mean 'crm_contacts'" in msg
    assert "'deals') has no path" in msg
    assert "'tickets'): path not found" in msg
    assert "did you mean 'lead_source_channels'" in msg
    assert len(e.value.problems) == 6


def test_loading_problems_name_the_source(tmp_path):
    spec = {
        "sources": [
            {"name": "nps", "adapter": "feedback", "path": str(FIX / "delighted_nps.csv")},
            {
                "name": "contacts",
                "adapter": "crm_contacts",
                "path": str(FIX / "hubspot_contacts.csv"),
            },
        ]
    }
    with pytest.raises(DataError) as e:
        read_sources(spec)
    assert str(e.value).startswith("source 'nps' (adapter 'feedback'): ") and "scale=" in str(
        e.value
    )


def test_duplicate_names_and_bad_yaml(tmp_path):
    spec = {
        "sources": [
            {"name": "a", "path": str(FIX / "web.csv"), "mapping": str(FIX / "web_map.yml")},
            {"name": "a", "path": str(FIX / "web.csv"), "mapping": str(FIX / "web_map.yml")},
        ]
    }
    with pytest.raises(DataError, match="both named 'a'"):
        read_sources(spec)
    bad = tmp_path / "s.yml"
    bad.write_text("sources:\n  - name: web\n   path: x.csv\n")
    with pytest.raises(DataError, match="not valid YAML"):
        read_sources(bad)


def test_events_adapter_through_a_sources_file_matches_read_events():
    res = read_sources(
        {
            "sources": [
                {"name": "web", "path": str(FIX / "web.csv"), "mapping": str(FIX / "web_map.yml")}
            ]
        }
    )
    direct = read_events(FIX / "web.csv", mapping=FIX / "web_map.yml")
    pd.testing.assert_frame_equal(
        res.events.drop(columns="source"), direct.events, check_like=True, check_dtype=False
    )
