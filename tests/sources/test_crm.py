"""CRM contacts and deals, support tickets, survey feedback and offline contacts → touchpoints.

Fixtures: tests/fixtures/sources/crm/ (see its README for the public documentation each file
follows). Expected values are read off the fixture files by hand, or computed here with plain
hashlib / pandas.
"""

from __future__ import annotations

import hashlib
import inspect
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.schema import CANONICAL_COLUMNS, DataError, validate_canonical
from analysis.sources import (
    hash_email,
    hash_phone,
    read_contacts,
    read_deals,
    read_feedback,
    read_offline,
    read_support_tickets,
)
from analysis.sources.crm import ReadOptions
from analysis.sources.registry import ADAPTERS, get_adapter

FIX = Path(__file__).parents[1] / "fixtures" / "sources" / "crm"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def text_of(name: str) -> str:
    return (FIX / name).read_text(encoding="utf-8")


def write(tmp_path, name: str, text: str) -> str:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return str(p)


def assert_accounting(res, read: int, kept: int, quarantined: int) -> None:
    s = res.summary
    assert (s["rows_read"], s["rows_kept"], s["rows_quarantined"]) == (read, kept, quarantined)
    assert len(res.events) == kept and len(res.quarantine) == quarantined
    assert sum(s["reasons"].values()) >= quarantined


def assert_canonical(res) -> None:
    ev = res.events
    assert list(ev.columns[: len(CANONICAL_COLUMNS)]) == list(CANONICAL_COLUMNS)
    validate_canonical(ev)


# ---------------------------------------------------------------------------------------------
# Hashing
# ---------------------------------------------------------------------------------------------


def test_hash_email_trims_and_lowercases():
    out = hash_email(pd.Series([" Jane.Doe@Example.COM ", "jane.doe@example.com", "", None]))
    assert out.iloc[0] == out.iloc[1] == sha("jane.doe@example.com")
    assert out.iloc[2:].isna().all()


def test_hash_phone_uses_digits_only():
    out = hash_phone(["+49 30 1234567", "49-30-1234567", "n/a"])
    assert out.iloc[0] == out.iloc[1] == sha("49301234567")
    assert pd.isna(out.iloc[2])


# ---------------------------------------------------------------------------------------------
# Contacts
# ---------------------------------------------------------------------------------------------


def test_contacts_fixture_loads_with_both_identifiers_and_no_raw_email():
    res = read_contacts(FIX / "hubspot_contacts.csv")
    assert_accounting(res, 5, 5, 0)
    assert_canonical(res)
    ev = res.events.set_index("crm_id")
    # by hand from the fixture
    assert ev.loc["501", "email_hash"] == sha(
        "jane.doe@example.com"
    )  # " Jane.Doe@Example.com " trimmed
    assert pd.isna(ev.loc["504", "email_hash"])  # no e-mail: crm id only, still kept
    assert ev.loc["501", "phone_hash"] == sha("49301234567")
    assert ev["channel"].to_dict() == {
        "501": "organic_search",
        "502": "paid_search",
        "503": "crm",
        "504": "crm",
        "505": "unknown",
    }
    assert ev["online"].to_dict() == {
        "501": True,
        "502": True,
        "503": False,
        "504": False,
        "505": True,
    }
    assert set(ev["touchpoint"]) == {"lead_created"} and set(ev["stage"]) == {"Think"}
    assert not ev["conversion"].any()
    assert ev.loc["505", "lead_source"] == "Podcast"  # the raw lead source stays as an attribute
    assert any("Podcast" in n for n in res.summary["notes"])
    assert ev["timestamp"].min() == pd.Timestamp("2024-03-02 09:15", tz="UTC")
    # privacy: no raw address anywhere in the output
    for frame in (res.events, res.quarantine):
        assert not any("@" in str(v) for v in frame.to_numpy().ravel())
    assert "Email" not in res.events.columns and "Phone Number" not in res.events.columns


def test_contacts_lead_source_table_and_columns_can_be_overridden():
    df = pd.DataFrame(
        {
            "Kundennr": ["k1", "k2"],
            "Mail": ["a@x.de", "b@x.de"],
            "Angelegt": ["2024-01-01", "2024-01-02"],
            "Quelle": ["Podcast", "Messe"],
            "Vorname": ["A", "B"],
        }
    )
    res = read_contacts(
        df,
        columns={
            "crm_id": "Kundennr",
            "email": "Mail",
            "created": "Angelegt",
            "lead_source": "Quelle",
        },
        lead_source_channels={"Podcast": "audio", "Messe": "event"},
        drop=["Vorname"],
    )
    assert res.events["channel"].tolist() == ["audio", "event"]
    assert res.events["online"].tolist() == [True, False]  # event is an offline channel
    assert "Vorname" not in res.events.columns
    assert res.events["email_hash"].tolist() == [sha("a@x.de"), sha("b@x.de")]


def test_contacts_email_hash_passes_through():
    df = pd.DataFrame(
        {"crm_id": ["1"], "email_hash": [sha("x@y.z").upper()], "created": ["2024-01-01"]}
    )
    res = read_contacts(df)
    assert res.events["email_hash"].iloc[0] == sha("x@y.z")


def test_contacts_value_without_at_is_not_hashed_but_row_kept():
    df = pd.DataFrame(
        {"crm_id": ["1", "2"], "email": ["none given", "ok@x.io"], "created": ["2024-01-01"] * 2}
    )
    res = read_contacts(df)
    assert_accounting(res, 2, 2, 0)
    assert pd.isna(res.events["email_hash"].iloc[0])
    assert any("no '@'" in n and "rows 1" in n for n in res.summary["notes"])


def test_contacts_missing_column_is_a_clear_error(tmp_path):
    lines = text_of("hubspot_contacts.csv").splitlines()
    drop = lines[0].split(",").index("Create Date")
    cut = (
        "\n".join(",".join(v for i, v in enumerate(line.split(",")) if i != drop) for line in lines)
        + "\n"
    )
    with pytest.raises(DataError) as e:
        read_contacts(write(tmp_path, "contacts.csv", cut))
    msg = str(e.value)
    assert "created" in msg and "Create Date" in msg and "columns={'created'" in msg
    assert "contacts.csv" in msg


def test_contacts_no_identifier_column_is_a_clear_error():
    with pytest.raises(DataError, match="no identifier column"):
        read_contacts(pd.DataFrame({"created": ["2024-01-01"], "name": ["x"]}))


def test_unknown_role_suggests_the_closest():
    with pytest.raises(DataError, match="did you mean 'created'"):
        read_contacts(FIX / "hubspot_contacts.csv", columns={"create": "Create Date"})
    with pytest.raises(DataError, match="did you mean 'Create Date'"):
        read_contacts(FIX / "hubspot_contacts.csv", columns={"created": "Create Dat"})


def test_contacts_truncated_last_row_is_quarantined_naming_the_row(tmp_path):
    text = text_of("hubspot_contacts.csv").rstrip("\n")
    cut = text[: text.rindex("olu@") + 4]  # the download stopped in the middle of the last row
    res = read_contacts(write(tmp_path, "contacts.csv", cut))
    assert_accounting(res, 5, 4, 1)
    q = res.quarantine.iloc[0]
    assert q["row"] == 6 and "4 of 9 fields" in q["reason"] and "truncated" in q["reason"]
    assert res.summary["reasons"] == {"truncated row": 1}
    assert not any("olu@" in str(v) for v in res.quarantine.to_numpy().ravel())  # hashed, not raw


def test_csv_cut_inside_a_quoted_value_names_the_row(tmp_path):
    text = text_of("hubspot_contacts.csv").rstrip("\n") + '\n506,Ida,Iser,"ida@exam'
    with pytest.raises(DataError) as e:
        read_contacts(write(tmp_path, "contacts.csv", text))
    assert e.value.rows == [7] and "truncated" in str(e.value)


def test_contacts_unparseable_date_is_quarantined(tmp_path):
    text = text_of("hubspot_contacts.csv").replace("2024-03-03 11:00", "yesterday")
    res = read_contacts(write(tmp_path, "contacts.csv", text))
    assert_accounting(res, 5, 4, 1)
    assert res.quarantine["row"].tolist() == [3] and "yesterday" in res.quarantine["reason"].iloc[0]


# ---------------------------------------------------------------------------------------------
# Deals
# ---------------------------------------------------------------------------------------------


def test_hubspot_deals_snapshot_becomes_dated_stage_touchpoints():
    res = read_deals(FIX / "hubspot_deals.csv")
    # by hand: 9001 created + qualified + won; 9002 created + lost; 9003 created + qualified
    # (open: its close date is only expected); 9004 created + qualified (its current stage)
    assert_accounting(res, 9, 9, 0)
    assert_canonical(res)
    assert res.summary["deals"] == 4
    ev = res.events
    got = ev.groupby("deal_id")["touchpoint"].apply(list).to_dict()
    assert got == {
        "9001": ["deal_created", "deal_qualified", "deal_won"],
        "9002": ["deal_created", "deal_lost"],
        "9003": ["deal_created", "deal_qualified"],
        "9004": ["deal_created", "deal_qualified"],
    }
    conv = ev[ev["conversion"]]
    assert conv["deal_id"].tolist() == ["9001"] and conv["revenue"].tolist() == [1200.0]
    assert conv["timestamp"].iloc[0] == pd.Timestamp("2024-03-20", tz="UTC")
    assert ev.loc[ev["touchpoint"] == "deal_lost", "revenue"].isna().all()
    assert ev.loc[ev["deal_id"] == "9004", "crm_id"].unique().tolist() == [
        "505"
    ]  # first of "505;504"
    q = ev[(ev["deal_id"] == "9001") & (ev["touchpoint"] == "deal_qualified")]
    assert q["timestamp"].iloc[0] == pd.Timestamp("2024-03-08 14:00", tz="UTC")
    assert set(ev["stage"]) == {"Think", "Do"} and not ev["online"].any()
    assert ev["event_id"].is_unique


def test_salesforce_opportunities_with_iswon_and_isclosed():
    res = read_deals(FIX / "salesforce_opportunities.csv")
    assert_accounting(res, 5, 5, 0)
    ev = res.events
    assert ev.groupby("crm_id")["touchpoint"].apply(list).to_dict() == {
        "0035g00000JANE1AAA": ["deal_created", "deal_won"],
        "0035g00000ALI01AAA": ["deal_created", "deal_lost"],
        "0035g00000CHEN1AAA": ["deal_created"],
    }
    assert ev["revenue"].sum() == 1200.0
    assert ev["timestamp"].iloc[0] == pd.Timestamp("2024-03-05 10:00", tz="UTC")  # "...+0000"


def test_outcome_column_overrides_stage_names_and_isclosed_marks_lost():
    df = pd.DataFrame(
        {
            "deal_id": ["d1", "d2", "d3"],
            "crm_id": ["c1", "c2", "c3"],
            "stage": ["Signed", "Negotiation/Review", "Proposal"],
            "amount": ["500", "200", "100"],
            "created": ["2024-01-01"] * 3,
            "closed": ["2024-02-01"] * 3,
            "IsWon": ["true", "false", "false"],
            "IsClosed": ["true", "true", "false"],
        }
    )
    res = read_deals(df)
    cur = res.events[res.events["deal_event"] == "current"].set_index("deal_id")
    assert cur["touchpoint"].to_dict() == {
        "d1": "deal_won",
        "d2": "deal_lost",
    }  # d3 open: no dated stage
    assert cur.loc["d1", "deal_stage"] == "Signed" and cur.loc["d1", "revenue"] == 500.0
    assert any("Signed" in n for n in res.summary["notes"])  # not in the stage table: noted


def test_custom_stage_table():
    df = pd.DataFrame(
        {
            "deal_id": ["d1"],
            "crm_id": ["c1"],
            "stage": ["Unterschrieben"],
            "amount": ["9"],
            "created": ["2024-01-01"],
            "closed": ["2024-01-09"],
        }
    )
    res = read_deals(df, deal_stages={"Unterschrieben": "deal_won"})
    assert res.events["conversion"].tolist() == [False, True]
    assert res.events["revenue"].iloc[1] == 9.0


def test_deal_history_layout_quarantines_repeated_stages():
    res = read_deals(FIX / "salesforce_opportunity_history.csv", layout="history")
    # by hand: line 4 repeats "Proposal/Price Quote" (an amount change) → quarantined
    assert_accounting(res, 6, 5, 1)
    assert res.quarantine["row"].tolist() == [4]
    assert res.summary["reasons"] == {"repeated stage": 1}
    ev = res.events
    assert ev["touchpoint"].tolist() == [
        "deal_qualified",
        "deal_proposal",
        "deal_won",
        "deal_qualified",
        "deal_lost",
    ]
    assert ev["deal_id"].nunique() == 2 and ev["conversion"].sum() == 1
    assert ev.loc[ev["conversion"], "revenue"].tolist() == [1200.0]


def test_deal_with_non_numeric_amount_is_quarantined_with_all_its_touchpoints(tmp_path):
    text = text_of("hubspot_deals.csv").replace(",Closed Lost,300,", ",Closed Lost,abc,")
    res = read_deals(write(tmp_path, "deals.csv", text))
    assert_accounting(res, 9, 7, 2)  # deal 9002 gave 2 touchpoints
    assert res.quarantine["row"].tolist() == [3, 3]
    assert res.quarantine["reason"].str.contains("amount 'abc'").all()
    assert res.summary["reasons"] == {"non-numeric amount": 2}


def test_deal_close_date_that_does_not_parse_quarantines_that_touchpoint(tmp_path):
    text = text_of("hubspot_deals.csv").replace("2024-03-20,Sam", "20/13/2024,Sam")
    res = read_deals(write(tmp_path, "deals.csv", text))
    assert_accounting(res, 9, 8, 1)
    q = res.quarantine.iloc[0]
    assert q["row"] == 2 and "20/13/2024" in q["reason"] and q["date_column"] == "Close Date"
    assert not res.events["conversion"].any()  # the won row is the one quarantined


def test_deals_truncated_file_quarantines_the_cut_row(tmp_path):
    text = text_of("hubspot_deals.csv").rstrip("\n")
    cut = text[: text.rindex(",1200,") + 5]  # last row cut after the amount
    res = read_deals(write(tmp_path, "deals.csv", cut))
    assert res.summary["reasons"] == {
        "truncated row": 1
    }  # one touchpoint (created) from the cut record
    assert res.quarantine["row"].tolist() == [5]
    assert res.summary["rows_read"] == res.summary["rows_kept"] + res.summary["rows_quarantined"]


def test_deal_snapshot_with_repeated_ids_points_to_history_layout():
    df = pd.DataFrame(
        {
            "deal_id": ["d1", "d1"],
            "crm_id": ["c", "c"],
            "stage": ["Qualified", "Won"],
            "created": ["2024-01-01", "2024-01-02"],
        }
    )
    with pytest.raises(DataError, match="layout='history'"):
        read_deals(df)


def test_closed_deals_without_a_close_date_column_are_an_error():
    df = pd.DataFrame(
        {"deal_id": ["d1"], "crm_id": ["c"], "stage": ["Closed Won"], "created": ["2024-01-01"]}
    )
    with pytest.raises(DataError, match="close date"):
        read_deals(df)


# ---------------------------------------------------------------------------------------------
# Support tickets
# ---------------------------------------------------------------------------------------------


def test_zendesk_tickets():
    res = read_support_tickets(FIX / "zendesk_tickets.csv")
    assert_accounting(res, 4, 3, 1)  # ticket 104 has no requester: quarantined, not dropped
    assert_canonical(res)
    assert (
        res.quarantine["row"].tolist() == [5]
        and "no identifier" in res.quarantine["reason"].iloc[0]
    )
    ev = res.events.set_index("ticket_id")
    assert ev["channel"].to_dict() == {"101": "email", "102": "call_center", "103": "chat"}
    assert ev["online"].to_dict() == {"101": True, "102": False, "103": True}
    assert ev["sentiment"].iloc[:2].tolist() == [1.0, -1.0] and pd.isna(
        ev.loc["103", "sentiment"]
    )  # offered
    assert set(ev["stage"]) == {"Care"} and set(ev["touchpoint"]) == {"support_ticket"}
    assert ev.loc["101", "email_hash"] == sha("jane.doe@example.com")


def test_ticket_csat_scores_map_linearly_and_out_of_scale_is_quarantined():
    df = pd.DataFrame(
        {
            "ticket_id": list("abcd"),
            "crm_id": list("wxyz"),
            "created": ["2024-01-01"] * 4,
            "channel": ["phone", "Email", "fax", None],
            "csat": ["1", "3", "5", "6"],
        }
    )
    res = read_support_tickets(df)
    assert_accounting(res, 4, 3, 1)
    assert res.events["sentiment"].tolist() == [-1.0, 0.0, 1.0]
    assert res.events["channel"].tolist() == ["call_center", "email", "unknown"]
    assert (
        res.quarantine["row"].tolist() == [4]
        and "outside the scale [1, 5]" in res.quarantine["reason"].iloc[0]
    )


# ---------------------------------------------------------------------------------------------
# Feedback
# ---------------------------------------------------------------------------------------------


def test_nps_feedback_with_scale():
    res = read_feedback(FIX / "delighted_nps.csv", scale=(0, 10))
    assert_accounting(res, 4, 3, 1)
    assert_canonical(res)
    # by hand: NPS 9 → 0.8, 3 → -0.4, 5 → 0.0; 11 is outside [0, 10]: quarantined, not clipped
    assert res.events["sentiment"].tolist() == pytest.approx([0.8, -0.4, 0.0])
    q = res.quarantine.iloc[0]
    assert (
        q["row"] == 4
        and "'11' is outside the scale [0, 10]" in q["reason"]
        and "not clipped" in q["reason"]
    )
    assert set(res.events["touchpoint"]) == {"survey"} and set(res.events["stage"]) == {"Care"}


def test_feedback_without_scale_asks_for_it():
    with pytest.raises(DataError, match=r"scale=\(0, 10\)"):
        read_feedback(FIX / "delighted_nps.csv")


def test_feedback_labels_and_csat():
    df = pd.DataFrame(
        {
            "crm_id": list("abcde"),
            "date": ["2024-01-01"] * 5,
            "label": ["Positive", "neutral", "NEGATIVE", "meh", "delighted"],
        }
    )
    res = read_feedback(df, labels={"delighted": 1.0})
    assert_accounting(res, 5, 4, 1)
    assert res.events["sentiment"].tolist() == [1.0, 0.0, -1.0, 1.0]
    assert res.quarantine["row"].tolist() == [4] and "'meh'" in res.quarantine["reason"].iloc[0]
    csat = read_feedback(
        pd.DataFrame({"crm_id": ["a", "b"], "date": ["2024-01-01"] * 2, "csat": [1, 4]}),
        scale=(1, 5),
    )
    assert csat.events["sentiment"].tolist() == [-1.0, 0.5]


# ---------------------------------------------------------------------------------------------
# Offline
# ---------------------------------------------------------------------------------------------


def test_offline_contacts():
    res = read_offline(FIX / "offline_contacts.csv", timezone="Europe/Berlin")
    assert_accounting(res, 5, 5, 0)
    assert_canonical(res)
    ev = res.events.set_index("visit_id")
    assert ev["touchpoint"].to_dict() == {
        "v1": "store_visit",
        "v2": "purchase",
        "v3": "call",
        "v4": "event_attendance",
        "v5": "showroom",
    }
    assert ev["channel"].to_dict() == {
        "v1": "store",
        "v2": "store",
        "v3": "call_center",
        "v4": "event",
        "v5": "unknown",
    }
    assert not ev["online"].any()
    assert ev["conversion"].tolist() == [False, True, False, False, False]
    assert ev.loc["v2", "revenue"] == pytest.approx(89.90)
    assert ev.loc["v1", "timestamp"] == pd.Timestamp("2024-03-15 16:30", tz="UTC")  # 17:30 CET
    assert ev.loc["v3", "phone_hash"] == sha("49407654321")
    assert any("showroom" in n for n in res.summary["notes"])


def test_offline_needs_a_kind():
    df = pd.DataFrame({"loyalty_id": ["L1"], "timestamp": ["2024-01-01"]})
    with pytest.raises(DataError, match="kind='store_visit'"):
        read_offline(df)
    res = read_offline(df, kind="store_visit")
    assert res.events["touchpoint"].tolist() == ["store_visit"] and res.events[
        "channel"
    ].tolist() == ["store"]


# ---------------------------------------------------------------------------------------------
# Registry and file-level problems
# ---------------------------------------------------------------------------------------------


def test_adapters_are_registered():
    for name, fn in [
        ("crm_contacts", read_contacts),
        ("crm_deals", read_deals),
        ("support_tickets", read_support_tickets),
        ("feedback", read_feedback),
        ("offline", read_offline),
    ]:
        assert name in ADAPTERS and get_adapter(name) is fn


def test_file_not_found_suggests_close_names():
    with pytest.raises(DataError, match=r"hubspot_contacts\.csv"):
        read_contacts(FIX / "hubspot_contact.csv")


def test_every_reader_keeps_row_accounting_on_parquet(tmp_path):
    df = pd.read_csv(FIX / "hubspot_contacts.csv", dtype=str, keep_default_na=False)
    path = tmp_path / "contacts.parquet"
    df.to_parquet(path)
    res = read_contacts(path)
    assert_accounting(res, 5, 5, 0)
    assert res.events["email_hash"].iloc[0] == sha("jane.doe@example.com")
    assert np.array_equal(res.events["crm_id"].to_numpy(), df["Record ID"].to_numpy())


def test_truncation_check_lines_up_with_blank_lines_and_quoted_newlines(tmp_path):
    text = 'crm_id,created,email,note\n1,2024-01-01,a@x.io,"two\nlines"\n\n2,2024-01-02,b@x.io,ok\n3,2024-01-03,c@x\n'
    res = read_contacts(write(tmp_path, "c.csv", text))
    assert_accounting(res, 3, 2, 1)
    assert res.events["crm_id"].tolist() == ["1", "2"]
    assert (
        res.quarantine["row"].tolist() == [5]
        and "3 of 4 fields" in res.quarantine["reason"].iloc[0]
    )
    assert res.summary["blank_rows"] == 1


@pytest.mark.parametrize(
    ("reader", "name", "options"),
    [
        (read_contacts, "hubspot_contacts.csv", {}),
        (read_deals, "hubspot_deals.csv", {}),
        (read_deals, "salesforce_opportunities.csv", {}),
        (read_deals, "salesforce_opportunity_history.csv", {"layout": "history"}),
        (read_support_tickets, "zendesk_tickets.csv", {}),
        (read_feedback, "delighted_nps.csv", {"scale": (0, 10)}),
        (read_offline, "offline_contacts.csv", {}),
    ],
)
def test_every_reader_quarantines_a_row_cut_short(tmp_path, reader, name, options):
    lines = text_of(name).rstrip("\n").split("\n")
    lines[-1] = ",".join(lines[-1].split(",")[:2])  # the file ends two fields into its last row
    full = reader(FIX / name, **options)
    res = reader(write(tmp_path, name, "\n".join(lines)), **options)
    s = res.summary
    assert s["reasons"].get("truncated row", 0) >= 1
    assert s["rows_read"] == s["rows_kept"] + s["rows_quarantined"]
    truncated = res.quarantine[res.quarantine["reason"].str.contains("truncated")]
    assert set(truncated["row"]) == {len(lines)}  # the last line, as a spreadsheet numbers it
    # the rows of every other record come out as from the intact file
    from_last = full.events["event_id"].str.contains(rf":{len(lines)}(?::|$)", regex=True)
    assert (
        res.events["event_id"].tolist() == full.events.loc[~from_last, "event_id"].tolist()
    )  # same file name


# ---------------------------------------------------------------------------------------------
# Documentation at run time
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reader", "what"),
    [
        (read_contacts, "contacts"),
        (read_deals, "deals"),
        (read_support_tickets, "tickets"),
        (read_feedback, "survey"),
        (read_offline, "offline contacts"),
    ],
)
def test_every_reader_has_a_docstring_naming_its_file(reader, what):
    """Each reader has a real docstring at run time, naming its files and the shared options.

    A docstring built with ``+`` is an expression Python drops, so ``help()`` showed nothing.
    """
    doc = reader.__doc__
    assert doc and doc.strip(), f"{reader.__name__} has no docstring at run time"
    assert what in doc.lower()
    assert "CSV" in doc and "Parquet" in doc
    sig = inspect.signature(reader).parameters
    for option in ReadOptions.__dataclass_fields__:
        assert option in sig, f"{reader.__name__} lacks the shared option {option!r}"
        assert f"{option} :" in doc or f"{option}," in doc, (
            f"{reader.__name__}'s docstring does not document {option!r}"
        )
    for section in ("Parameters\n", "Returns\n", "Examples\n"):
        assert section in doc
