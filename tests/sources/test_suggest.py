"""The starter column map of ``python -m analysis check --suggest-mapping``
(analysis.sources.suggest): header guesses by hand, and suggested maps that load."""

from __future__ import annotations

import re

import pandas as pd
import pytest
import yaml

from analysis import DataError, read_events
from analysis.sources import ColumnMap
from analysis.sources.suggest import guess_columns, normalise, suggest_mapping

GERMAN = (
    "Zeitpunkt;Kunde;Medium;Aktion;Kampagne;Umsatz;Online;Kundengruppe;Filiale\n"
    "08.01.2024 09:12;K-1;Instagram;Anzeige gesehen;Winter24;;ja;Privat;\n"
    "10.01.2024 17:40;K-1;Filiale;Beratung;;;nein;Privat;Hamburg\n"
    "12.01.2024 20:03;K-1;Direkt;Kauf;;129,90;ja;Privat;\n"
    "15.01.2024 11:30;K-2;Newsletter;Website besucht;NL-02;;ja;Gewerbe;\n"
    "16.01.2024 08:05;K-2;Direkt;Kauf;;1249,00;ja;Gewerbe;\n"
)


def _suggest(
    tmp_path, text: str, name: str = "export.csv", encoding: str = "utf-8"
) -> tuple[str, dict]:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    out = suggest_mapping(path)
    return out, yaml.safe_load(out) or {}


def _uncomment(text: str, key: str) -> str:
    """The suggested map with the commented block that starts at ``# key:`` switched on."""
    lines, on = [], False
    for line in text.splitlines():
        if line.startswith(f"# {key}:"):
            on = True
        elif on and not line.startswith("#   "):
            on = False
        lines.append(line[2:] if on else line)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            [
                "Zeitpunkt",
                "Kunde",
                "Medium",
                "Aktion",
                "Kampagne",
                "Umsatz",
                "Online",
                "Kundengruppe",
                "Filiale",
            ],
            {
                "timestamp": "Zeitpunkt",
                "user_id": "Kunde",
                "channel": "Medium",
                "touchpoint": "Aktion",
                "campaign": "Kampagne",
                "revenue": "Umsatz",
                "online": "Online",
                "segment": "Kundengruppe",
            },
        ),
        # utm_medium wins over utm_source for the channel; client_id is GA's cookie id
        (
            [
                "event_time",
                "client_id",
                "utm_source",
                "utm_medium",
                "utm_campaign",
                "event_name",
                "value",
            ],
            {
                "timestamp": "event_time",
                "cookie_id": "client_id",
                "channel": "utm_medium",
                "touchpoint": "event_name",
                "campaign": "utm_campaign",
                "revenue": "value",
            },
        ),
        # words of longer names, any case and punctuation
        (
            ["Order Date", "Customer ID", "Event", "Amount (EUR)", "Marketing Channel"],
            {
                "timestamp": "Order Date",
                "user_id": "Customer ID",
                "channel": "Marketing Channel",
                "touchpoint": "Event",
                "revenue": "Amount (EUR)",
            },
        ),
        (
            ["eventTime", "userId", "eventName", "utmMedium", "E-Mail"],
            {
                "timestamp": "eventTime",
                "user_id": "userId",
                "email_hash": "E-Mail",
                "channel": "utmMedium",
                "touchpoint": "eventName",
            },
        ),
        # canonical names match themselves, each column once
        (
            ["timestamp", "user_id", "channel", "touchpoint", "source"],
            {
                "timestamp": "timestamp",
                "user_id": "user_id",
                "channel": "channel",
                "touchpoint": "touchpoint",
            },
        ),
        # nothing that only looks like an id: a bare id is rarely unique per event
        (["id", "order_id", "product", "quantity"], {}),
    ],
)
def test_guess_columns_by_name(header, expected):
    assert guess_columns(header) == expected


def test_normalise_spells_names_one_way():
    assert normalise("  Customer ID ") == "customer_id"
    assert normalise("eventTime") == "event_time"
    assert normalise("Gerät-ID") == "geraet_id"
    assert normalise("UTM.Medium") == "utm_medium"


def test_suggested_map_for_a_german_export_loads_every_row(tmp_path):
    text, d = _suggest(tmp_path, GERMAN)
    cmap = ColumnMap.from_dict(d)
    assert cmap.delimiter == ";" and cmap.decimal == ","
    assert cmap.columns == {
        "timestamp": "Zeitpunkt",
        "user_id": "Kunde",
        "channel": "Medium",
        "touchpoint": "Aktion",
        "campaign": "Kampagne",
        "revenue": "Umsatz",
        "online": "Online",
        "segment": "Kundengruppe",
    }
    assert cmap.timestamp_format == "%d.%m.%Y %H:%M"
    assert (
        cmap.timezone == "UTC" and "# timezone: Europe/Berlin" in text
    )  # the zone is left to the user
    assert "ja" in cmap.true_values and "nein" in cmap.false_values
    res = read_events(tmp_path / "export.csv", cmap)
    assert res.summary["rows_read"] == 5 and res.summary["rows_quarantined"] == 0
    assert res.events["revenue"].dropna().tolist() == [129.9, 1249.0]
    assert res.events["online"].tolist() == [True, False, True, True, True]
    assert "'Filiale' is not mapped" in text
    # every line says what it means
    for line in text.splitlines():
        assert line.startswith("#") or "  # " in line, line


def test_stage_map_block_lists_every_touchpoint_value_once(tmp_path):
    text, _ = _suggest(tmp_path, GERMAN)
    listed = re.findall(r"^#     (.+): (TODO|See|Think|Do|Care)", text, flags=re.M)
    assert [v for v, _ in listed] == ["Anzeige gesehen", "Beratung", "Kauf", "Website besucht"]
    assert "# conversion_touchpoints: [TODO]" in text
    on = _uncomment(text, "stage_map").replace(": TODO", ": Think")
    on = on.replace("# conversion_touchpoints: [TODO]", "conversion_touchpoints: [Kauf]")
    res = read_events(tmp_path / "export.csv", ColumnMap.from_dict(yaml.safe_load(on)))
    assert res.events["stage"].notna().all()
    assert res.events["conversion"].sum() == 2
    # left as TODO, the stage map is refused with the stage named
    with pytest.raises(DataError, match="TODO"):
        ColumnMap.from_dict(yaml.safe_load(_uncomment(text, "stage_map")))


def test_known_touchpoints_need_no_stage_map_and_iso_times_no_format(tmp_path):
    text, d = _suggest(
        tmp_path,
        "time,user,medium,event\n"
        "2024-03-01T10:00:00+01:00,u1,email,site_visit\n"
        "2024-03-02T10:00:00Z,u1,direct,purchase\n",
    )
    assert "stage_map" not in text and "conversion_touchpoints" not in text
    assert "timestamp" not in d  # offsets given: neither format nor zone
    res = read_events(tmp_path / "export.csv", d)
    assert res.summary["rows_kept"] == 2 and res.events["conversion"].tolist() == [False, True]


def test_naive_iso_times_leave_format_and_zone_commented(tmp_path):
    text, d = _suggest(
        tmp_path, "date,customer,channel,action\n2024-03-01 10:00:00,c1,email,site_visit\n"
    )
    assert "timestamp" not in d
    assert "#   timezone: Europe/Berlin" in text
    assert (
        ColumnMap.from_dict(yaml.safe_load(_uncomment(text, "timestamp"))).timezone
        == "Europe/Berlin"
    )


def test_missing_required_columns_are_todo_and_loading_names_them(tmp_path):
    _text, d = _suggest(tmp_path, "when,what,amount\n2024-03-01,visit,3\n")
    assert d["columns"]["channel"] == "TODO" and d["columns"]["user_id"] == "TODO"
    with pytest.raises(DataError) as exc:
        read_events(tmp_path / "export.csv", d)
    assert "'TODO'" in str(exc.value) and "channel" in str(exc.value)


def test_raw_email_addresses_are_not_mapped_unhashed(tmp_path):
    text, d = _suggest(
        tmp_path, "ts,email,channel,event\n2024-03-01T10:00:00Z,a@example.com,email,site_visit\n"
    )
    assert "email_hash" not in d["columns"]
    assert "WARNING: 'email' holds e-mail addresses" in text
    assert (
        d["columns"]["user_id"] == "TODO"
    )  # no other identifier: the map does not load until one is named
    text, d = _suggest(
        tmp_path,
        "ts,email_sha256,channel,event\n2024-03-01T10:00:00Z," + "ab" * 32 + ",email,site_visit\n",
        name="hashed.csv",
    )
    assert d["columns"]["email_hash"] == "email_sha256" and "user_id" not in d["columns"]


def test_sentiment_scale_and_latin1_file(tmp_path):
    _text, d = _suggest(
        tmp_path,
        "Datum;Kunde;Kanal;Ereignis;Bewertung\n"
        "01.03.2024 10:00;Müller;E-Mail;survey;5\n"
        "02.03.2024 10:00;Jäger;E-Mail;survey;1\n",
        encoding="cp1252",
    )
    assert d["read"]["encoding"] == "cp1252"
    assert d["sentiment"] == {"scale": [1, 5]}
    res = read_events(tmp_path / "export.csv", d)
    assert res.events["sentiment"].tolist() == [1.0, -1.0]
    assert res.events["user_id"].tolist() == ["Müller", "Jäger"]


def test_parquet_with_typed_columns(tmp_path):
    df = pd.DataFrame(
        {
            "event_time": pd.to_datetime(["2024-03-01 10:00", "2024-03-02 11:00"], utc=True),
            "visitor_id": ["v1", "v2"],
            "utm_medium": ["cpc", "email"],
            "action": ["ad_impression", "purchase"],
            "revenue": [None, 12.5],
        }
    )
    df.to_parquet(tmp_path / "ex.parquet")
    out = suggest_mapping(tmp_path / "ex.parquet")
    d = yaml.safe_load(out)
    assert "read" not in d and "timestamp" not in d
    assert d["columns"] == {
        "timestamp": "event_time",
        "cookie_id": "visitor_id",
        "channel": "utm_medium",
        "touchpoint": "action",
    }
    assert read_events(tmp_path / "ex.parquet", d).summary["rows_kept"] == 2


def test_unreadable_inputs_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        suggest_mapping(tmp_path / "nope.csv")
    (tmp_path / "x.xlsx").write_text("x")
    with pytest.raises(DataError, match="unsupported file type"):
        suggest_mapping(tmp_path / "x.xlsx")
