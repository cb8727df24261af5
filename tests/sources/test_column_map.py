"""Loading user exports into the canonical table: column map, parsing, file errors, quarantine."""

from __future__ import annotations

import gzip
import textwrap

import numpy as np
import pandas as pd
import pytest

from analysis.schema import CANONICAL_COLUMNS, DataError, validate_canonical
from analysis.sources import ColumnMap, LoadResult, load_events, read_events, validate_events

HEADER = "event_id,timestamp,user_id,channel,touchpoint,revenue,sentiment"
GOOD_ROWS = [
    "e1,2024-03-01T10:00:00+01:00,u1,paid_search,ad_impression,,",
    "e2,2024-03-01T11:00:00Z,u1,email,site_visit,,0.5",
    "e3,2024-03-02T12:00:00,u2,store,purchase,19.90,",
]


def write(tmp_path, text: str, name: str = "events.csv") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return str(path)


def csv(tmp_path, *rows: str, header: str = HEADER, name: str = "events.csv") -> str:
    return write(tmp_path, "\n".join([header, *rows]) + "\n", name)


def assert_accounting(res: LoadResult, read: int, kept: int, quarantined: int) -> None:
    s = res.summary
    assert (s["rows_read"], s["rows_kept"], s["rows_quarantined"]) == (read, kept, quarantined)
    assert s["rows_read"] == s["rows_kept"] + s["rows_quarantined"]
    assert len(res.events) == kept and len(res.quarantine) == quarantined


def assert_canonical_dtypes(ev: pd.DataFrame) -> None:
    assert list(ev.columns[: len(CANONICAL_COLUMNS)]) == list(CANONICAL_COLUMNS)
    for col, (dtype, _) in CANONICAL_COLUMNS.items():
        if dtype == "str":
            assert ev[col].dtype == "str", (col, ev[col].dtype)
        else:
            assert str(ev[col].dtype) == dtype, (col, ev[col].dtype)


# ---------------------------------------------------------------------------------------------
# Good input
# ---------------------------------------------------------------------------------------------


def test_good_csv_round_trip(tmp_path):
    path = csv(
        tmp_path,
        *GOOD_ROWS,
        header=HEADER,
    )
    res = read_events(path)
    ev = res.events
    assert_accounting(res, 3, 3, 0)
    assert_canonical_dtypes(ev)
    assert isinstance(ev.index, pd.RangeIndex) and ev.index.start == 0
    assert ev["event_id"].tolist() == ["e1", "e2", "e3"]
    assert ev["timestamp"].tolist() == [
        pd.Timestamp("2024-03-01 09:00", tz="UTC"),
        pd.Timestamp("2024-03-01 11:00", tz="UTC"),
        pd.Timestamp("2024-03-02 12:00", tz="UTC"),
    ]
    # derived columns
    assert ev["online"].tolist() == [True, True, False]  # store is offline
    assert ev["stage"].tolist() == ["See", "Think", "Do"]
    assert ev["conversion"].tolist() == [False, False, True]
    assert ev["segment"].tolist() == ["all"] * 3
    assert ev["campaign"].isna().all() and ev["device_id"].isna().all()
    assert ev["revenue"].iloc[2] == pytest.approx(19.9) and np.isnan(ev["revenue"].iloc[0])
    assert ev["sentiment"].iloc[1] == 0.5
    assert res.quarantine.empty
    assert list(res.quarantine.columns[:3]) == ["row", "reason", "column"]
    assert any("without a zone read as UTC" in n for n in res.summary["notes"])
    assert res.report().empty
    validate_canonical(ev)


def test_load_events_attrs_and_generated_ids(tmp_path):
    path = csv(
        tmp_path,
        "2024-03-01T10:00:00Z,u1,social,ad_impression,DE",
        "2024-03-01T11:00:00Z,u2,call_center,call,",
        header="timestamp,user_id,channel,touchpoint,country",
        name="shop export.csv",
    )
    ev = load_events(path)
    assert ev["event_id"].tolist() == ["shop export:2", "shop export:3"]
    assert ev["online"].tolist() == [True, False]
    assert ev.columns[-1] == "country"  # extra attribute kept, after the canonical columns
    assert ev["country"].tolist()[0] == "DE" and pd.isna(ev["country"].iloc[1])
    report = ev.attrs["load_report"]
    assert report["rows_read"] == 2 and report["rows_kept"] == 2 and report["rows_quarantined"] == 0
    assert not any(isinstance(v, pd.DataFrame) for v in report.values())
    assert report["identifiers"][:1] == ["device_id"]


def test_gzip_csv(tmp_path):
    path = tmp_path / "events.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join([HEADER, *GOOD_ROWS]) + "\n")
    assert_accounting(read_events(path), 3, 3, 0)


def test_column_map_yaml_rename_timezone_dst_sentiment(tmp_path):
    mapping = write(
        tmp_path,
        """
        columns:
          timestamp: Zeit
          user_id: Kunde
          channel: Kanal
          touchpoint: Aktion
          sentiment: Bewertung
          online: digital
        timestamp:
          format: "%d.%m.%Y %H:%M"
          timezone: Europe/Berlin
        sentiment:
          scale: [1, 5]
          labels: {great: 1, meh: 0}
        booleans: {true: [ja], false: [nein]}
        defaults: {segment: b2c}
        """,
        "mapping.yml",
    )
    path = csv(
        tmp_path,
        "15.01.2024 10:00;k1;email;site_visit;1;ja",  # winter: UTC+1
        "15.07.2024 10:00;k1;email;site_visit;5;Ja",  # summer: UTC+2
        "16.07.2024 10:00;k2;store;purchase;3;nein",
        "17.07.2024 10:00;k2;store;purchase;Great;",
        "18.07.2024 10:00;k3;email;survey;MEH;",
        "31.03.2024 02:30;k3;email;survey;2;ja",  # clocks jump 02:00 → 03:00: does not exist
        "27.10.2024 02:30;k3;email;survey;4;ja",  # clocks go back 03:00 → 02:00: happens twice
        header="Zeit;Kunde;Kanal;Aktion;Bewertung;digital",
    )
    mapping_text = (tmp_path / "mapping.yml").read_text()
    (tmp_path / "mapping.yml").write_text(mapping_text + 'read: {delimiter: ";"}\n')
    res = read_events(path, mapping)
    assert_accounting(res, 7, 5, 2)
    ev = res.events
    assert_canonical_dtypes(ev)
    assert ev["timestamp"].tolist()[:2] == [
        pd.Timestamp("2024-01-15 09:00", tz="UTC"),
        pd.Timestamp("2024-07-15 08:00", tz="UTC"),
    ]
    assert ev["sentiment"].tolist() == [-1.0, 1.0, 0.0, 1.0, 0.0]
    assert ev["online"].tolist() == [True, True, False, False, True]  # empty → derived
    assert ev["user_id"].tolist() == ["k1", "k1", "k2", "k2", "k3"]
    assert (ev["segment"] == "b2c").all()
    q = res.quarantine.set_index("row")
    assert "does not exist in Europe/Berlin" in q.loc[7, "reason"]
    assert "ambiguous in Europe/Berlin" in q.loc[8, "reason"]
    assert q.loc[7, "column"] == "timestamp"
    assert q.loc[7, "Zeit"] == "31.03.2024 02:30"  # source values under source names
    assert res.summary["reasons"] == {"nonexistent local time": 1, "ambiguous local time": 1}
    assert any("read as Europe/Berlin and converted to UTC" in n for n in res.summary["notes"])
    assert res.summary["mapping"] == mapping


def test_parquet_typed_input(tmp_path):
    df = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(
                ["2024-01-15 10:00", "2024-07-15 10:00", "2024-07-16 10:00"]
            ).tz_localize("America/New_York"),
            "crm_id": [1001, 1002, 1003],
            "channel": ["email", "store", "email"],
            "touchpoint": ["site_visit", "purchase", "support_ticket"],
            "online": [True, False, True],
            "revenue": [np.nan, 120.5, -1.0],
            "sentiment": [np.nan, 4.0, 2.0],
            "visits": [3, 1, 2],
        }
    )
    path = tmp_path / "events.parquet"
    df.to_parquet(path)
    res = read_events(path, {"sentiment": {"scale": [1, 5]}})
    assert_accounting(res, 3, 2, 1)
    ev = res.events
    assert_canonical_dtypes(ev)
    assert ev["timestamp"].tolist() == [
        pd.Timestamp("2024-01-15 15:00", tz="UTC"),
        pd.Timestamp("2024-07-15 14:00", tz="UTC"),
    ]
    assert ev["crm_id"].tolist() == ["1001", "1002"]
    assert ev["sentiment"].iloc[1] == pytest.approx(0.5)
    assert ev["visits"].dtype == "int64"  # typed extras kept as they came
    q = res.quarantine
    assert q["row"].tolist() == [3]  # 1-based record number
    assert "revenue '-1.0' is negative" in q["reason"].iloc[0]
    assert q["crm_id"].iloc[0] == "1003"


def test_parquet_naive_timestamps_use_map_timezone(tmp_path):
    df = pd.DataFrame(
        {
            "ts": pd.to_datetime(["2024-01-15 10:00", "2024-03-31 02:30"]),
            "user_id": ["a", "b"],
            "channel": ["email", "email"],
            "touchpoint": ["site_visit", "site_visit"],
        }
    )
    path = tmp_path / "events.pq"
    df.to_parquet(path)
    res = read_events(
        path, {"columns": {"timestamp": "ts"}, "timestamp": {"timezone": "Europe/Berlin"}}
    )
    assert_accounting(res, 2, 1, 1)
    assert res.events["timestamp"].iloc[0] == pd.Timestamp("2024-01-15 09:00", tz="UTC")
    assert res.summary["reasons"] == {"nonexistent local time": 1}


def test_validate_events_dataframe_and_mapping_forms(tmp_path):
    raw = pd.DataFrame(
        {
            "when": ["2024-03-01T10:00:00Z", "2024-03-01T11:00:00Z"],
            "who": ["u1", ""],
            "medium": ["email", "social"],
            "what": ["site_visit", "ad_impression"],
        },
        index=[10, 20],
    )
    m = {
        "columns": {
            "timestamp": "when",
            "user_id": "who",
            "channel": "medium",
            "touchpoint": "what",
        }
    }
    for mapping in (m, ColumnMap.from_dict(m)):
        res = validate_events(raw, source="frame", mapping=mapping)
        assert_accounting(res, 2, 1, 1)
        assert res.quarantine["row"].tolist() == [2]
        assert res.quarantine["who"].tolist() == [""]
        assert res.events["event_id"].tolist() == ["frame:1"]


# ---------------------------------------------------------------------------------------------
# File-level errors: one DataError naming file, column, rows and fix
# ---------------------------------------------------------------------------------------------


def test_file_not_found_suggests_close_name(tmp_path):
    csv(tmp_path, *GOOD_ROWS)
    with pytest.raises(DataError) as exc:
        read_events(tmp_path / "event.csv")
    msg = str(exc.value)
    assert "file not found" in msg and "event.csv" in msg
    assert "did you mean 'events.csv'" in msg


def test_unsupported_extension(tmp_path):
    path = write(tmp_path, "a,b\n1,2\n", "events.xlsx")
    with pytest.raises(DataError) as exc:
        read_events(path)
    msg = str(exc.value)
    assert "unsupported file type '.xlsx'" in msg and "events.xlsx" in msg
    assert "CSV (.csv, .csv.gz) or Parquet (.parquet, .pq)" in exc.value.fix


def test_empty_file(tmp_path):
    path = tmp_path / "events.csv"
    path.write_bytes(b"")
    with pytest.raises(DataError, match=r"empty \(0 bytes\)") as exc:
        read_events(path)
    assert exc.value.file == str(path)


def test_header_only_has_no_data_rows(tmp_path):
    path = csv(tmp_path)
    with pytest.raises(DataError) as exc:
        read_events(path)
    assert "no data rows" in str(exc.value) and "events.csv" in str(exc.value)
    assert "event_id, timestamp" in str(exc.value)


@pytest.mark.parametrize(
    ("sep", "word", "shown"),
    [(";", "semicolon", '";"'), ("\t", "tab", '"\\t"'), ("|", "pipe", '"|"')],
)
def test_wrong_delimiter(tmp_path, sep, word, shown):
    path = csv(tmp_path, *(r.replace(",", sep) for r in GOOD_ROWS), header=HEADER.replace(",", sep))
    with pytest.raises(DataError) as exc:
        read_events(path)
    msg = str(exc.value)
    assert f"{word}-delimited" in msg and "events.csv" in msg
    assert exc.value.fix == f"set the delimiter in the column map: read: {{delimiter: {shown}}}"
    # and the fix works
    res = read_events(path, {"read": {"delimiter": sep}})
    assert_accounting(res, 3, 3, 0)


def test_missing_required_columns_listed_together_with_yaml_fix(tmp_path):
    path = csv(
        tmp_path,
        "2024-03-01T10:00:00Z,u1,email,x",
        header="timestamp,user_id,medium,note",
    )
    with pytest.raises(DataError) as exc:
        read_events(path)
    err = exc.value
    msg = str(err)
    assert "missing required columns: channel, touchpoint" in msg
    assert err.column == ["channel", "touchpoint"]
    assert "the file has columns: timestamp, user_id, medium, note" in msg
    assert "channel → 'medium'" in msg  # close match by meaning
    assert "columns:\n    channel: medium\n    touchpoint: <your column>" in err.fix
    assert err.file.endswith("events.csv")


def test_missing_identifier_and_mapped_column_absent(tmp_path):
    path = csv(
        tmp_path,
        "2024-03-01T10:00:00Z,c1,email,site_visit",
        header="event_time,customer_no,channel,touchpoint",
    )
    with pytest.raises(DataError) as exc:
        read_events(path, {"columns": {"timestamp": "event_tme"}})
    msg = str(exc.value)
    assert "missing required columns: timestamp, an identifier" in msg
    assert (
        "source column 'event_tme' to timestamp, but the file has no such column (did you mean 'event_time'?)"
        in msg
    )
    assert "timestamp: event_time" in exc.value.fix
    assert "user_id: customer_no" in exc.value.fix


def test_no_timestamp_parses_suggests_format(tmp_path):
    path = csv(
        tmp_path,
        "e1,15.01.2024 10:00,u1,email,site_visit,,",
        "e2,16.01.2024 11:30,u1,email,site_visit,,",
        "e3,17.01.2024 12:00,u2,email,site_visit,,",
    )
    with pytest.raises(DataError) as exc:
        read_events(path)
    err = exc.value
    msg = str(err)
    assert "no value in the timestamp column could be read as a timestamp" in msg
    assert "row 2: '15.01.2024 10:00'" in msg
    assert err.column == "timestamp" and err.rows == [2, 3, 4]
    assert 'timestamp: {format: "%d.%m.%Y %H:%M"}' in err.fix
    assert "events.csv" in msg
    # the suggested fix works
    assert_accounting(read_events(path, {"timestamp": {"format": "%d.%m.%Y %H:%M"}}), 3, 3, 0)


def test_all_file_problems_reported_together(tmp_path):
    path = csv(
        tmp_path,
        "sometime,u1,x",
        "later,u2,y",
        header="timestamp,user_id,note",
    )
    with pytest.raises(DataError) as exc:
        read_events(path)
    err = exc.value
    msg = str(err)
    assert len(err.problems) == 2
    assert msg.startswith("2 problems with the input")
    assert "missing required columns: channel, touchpoint" in msg
    assert "no value in the timestamp column could be read" in msg
    assert set(err.column) == {"channel", "touchpoint", "timestamp"}


def test_unknown_mapping_keys_all_reported(tmp_path):
    mapping = write(
        tmp_path,
        """
        colums: {timestamp: t}
        timestamp: {zone: Europe/Berlin}
        sentiment: {scale: [1, 5], lables: {good: 1}}
        """,
        "mapping.yml",
    )
    path = csv(tmp_path, *GOOD_ROWS)
    with pytest.raises(DataError) as exc:
        read_events(path, mapping)
    err = exc.value
    msg = str(err)
    assert err.file == mapping and "mapping.yml" in msg
    assert len(err.problems) == 3
    assert "unknown key 'colums' in the column map (did you mean 'columns'?)" in msg
    assert "unknown key 'timestamp.zone'" in msg and "format, timezone" in msg
    assert "unknown key 'sentiment.lables' in the column map (did you mean 'labels'?)" in msg


def test_unknown_canonical_name_in_columns():
    with pytest.raises(DataError) as exc:
        ColumnMap.from_dict({"columns": {"timestmp": "t"}, "defaults": {"segmnt": "x"}})
    msg = str(exc.value)
    assert "'columns.timestmp'" in msg and "did you mean 'timestamp'?" in msg
    assert "'defaults.segmnt'" in msg and "did you mean 'segment'?" in msg


def test_invalid_timezone(tmp_path):
    mapping = write(tmp_path, "timestamp: {timezone: Europe/Berln}\n", "map.yaml")
    with pytest.raises(DataError) as exc:
        ColumnMap.from_yaml(mapping)
    err = exc.value
    assert "unknown time zone 'Europe/Berln'" in str(err) and "'Europe/Berlin'" in str(err)
    assert err.file == mapping and err.column == "timestamp"
    assert "IANA" in err.fix


def test_mapping_yaml_syntax_error_names_line(tmp_path):
    mapping = write(tmp_path, "columns:\n  timestamp: [unclosed\n", "map.yml")
    with pytest.raises(DataError, match="not valid YAML") as exc:
        ColumnMap.from_yaml(mapping)
    assert exc.value.rows


def test_ragged_row_names_line(tmp_path):
    path = csv(tmp_path, GOOD_ROWS[0], GOOD_ROWS[1] + ",extra")
    with pytest.raises(DataError) as exc:
        read_events(path)
    assert exc.value.rows == [3]
    assert "row 3 has 8 fields but the header has 7" in str(exc.value)


# ---------------------------------------------------------------------------------------------
# Row-level problems: quarantine with a reason; rows read = kept + quarantined
# ---------------------------------------------------------------------------------------------

ROW_CASES = {
    # name: (bad row, category, column, reason substring)
    "timestamp": (
        "x1,not a date,u9,email,site_visit,,",
        "unparseable timestamp",
        "timestamp",
        "timestamp 'not a date' could not be read",
    ),
    "missing timestamp": (
        "x1,,u9,email,site_visit,,",
        "missing timestamp",
        "timestamp",
        "timestamp is missing",
    ),
    "identifier": (
        "x1,2024-03-05T10:00:00Z,,email,site_visit,,",
        "no identifier",
        None,
        "no identifier: device_id, cookie_id, user_id",
    ),
    "empty channel": (
        "x1,2024-03-05T10:00:00Z,u9,  ,site_visit,,",
        "empty channel",
        "channel",
        "channel is empty",
    ),
    "empty touchpoint": (
        "x1,2024-03-05T10:00:00Z,u9,email,,,",
        "empty touchpoint",
        "touchpoint",
        "touchpoint is empty",
    ),
    "reserved channel": (
        "x1,2024-03-05T10:00:00Z,u9,(start),site_visit,,",
        "reserved name",
        "channel",
        "channel '(start)' is a reserved name",
    ),
    "reserved touchpoint": (
        "x1,2024-03-05T10:00:00Z,u9,email,(conversion),,",
        "reserved name",
        "touchpoint",
        "touchpoint '(conversion)' is a reserved name",
    ),
    "negative revenue": (
        "x1,2024-03-05T10:00:00Z,u9,email,purchase,-5,",
        "negative revenue",
        "revenue",
        "revenue '-5' is negative",
    ),
    "non-numeric revenue": (
        "x1,2024-03-05T10:00:00Z,u9,email,purchase,12 EUR,",
        "non-numeric revenue",
        "revenue",
        "revenue '12 EUR' is not a number",
    ),
    "decimal comma": (
        'x1,2024-03-05T10:00:00Z,u9,email,purchase,"12,50",',
        "non-numeric revenue",
        "revenue",
        'set read: {decimal: ","}',
    ),
    "sentiment range": (
        "x1,2024-03-05T10:00:00Z,u9,email,survey,,4",
        "sentiment out of range",
        "sentiment",
        "set sentiment.scale: [1, 5] in the column map if these are 1–5 scores",
    ),
    "sentiment text": (
        "x1,2024-03-05T10:00:00Z,u9,email,survey,,so-so",
        "unparseable sentiment",
        "sentiment",
        "sentiment 'so-so' is neither a number nor a known label",
    ),
    "duplicate event_id": (
        "e2,2024-03-05T10:00:00Z,u9,email,survey,,",
        "duplicate event_id",
        "event_id",
        "event_id 'e2' is also used by row 3 with different content",
    ),
}


@pytest.mark.parametrize("case", list(ROW_CASES))
def test_row_problem_is_quarantined_with_reason(tmp_path, case):
    bad, category, column, text = ROW_CASES[case]
    res = read_events(csv(tmp_path, *GOOD_ROWS, bad))
    assert_accounting(res, 4, 3, 1)
    q = res.quarantine
    assert q["row"].tolist() == [5]  # header is row 1, good rows 2-4
    assert text in q["reason"].iloc[0], q["reason"].iloc[0]
    assert q["column"].iloc[0] == column
    assert res.summary["reasons"] == {category: 1}
    assert res.events["event_id"].tolist() == ["e1", "e2", "e3"]
    rep = res.report()
    assert (
        rep.loc[0, "reason"] == category
        and rep.loc[0, "rows"] == 1
        and rep.loc[0, "example_row"] == 5
    )


@pytest.mark.parametrize("column", ["online", "conversion"])
def test_unparseable_boolean(tmp_path, column):
    res = read_events(
        csv(
            tmp_path,
            "2024-03-05T10:00:00Z,u1,email,purchase,yes",
            "2024-03-05T11:00:00Z,u1,email,purchase,0",
            "2024-03-05T12:00:00Z,u1,email,purchase,",
            "2024-03-05T13:00:00Z,u1,email,purchase,maybe",
            header=f"timestamp,user_id,channel,touchpoint,{column}",
        )
    )
    assert_accounting(res, 4, 3, 1)
    assert res.events[column].tolist() == [True, False, True]  # empty → derived
    assert f"{column} 'maybe' is not a yes/no value" in res.quarantine["reason"].iloc[0]
    assert res.summary["reasons"] == {"unparseable boolean": 1}


def test_unknown_stage_quarantined_known_stage_normalised(tmp_path):
    res = read_events(
        csv(
            tmp_path,
            "2024-03-05T10:00:00Z,u1,email,site_visit,see",
            "2024-03-05T11:00:00Z,u1,email,site_visit,THINK",
            "2024-03-05T12:00:00Z,u1,email,purchase,",
            "2024-03-05T13:00:00Z,u1,email,purchase,Foo",
            header="timestamp,user_id,channel,touchpoint,stage",
        )
    )
    assert_accounting(res, 4, 3, 1)
    assert res.events["stage"].tolist() == ["See", "Think", "Do"]
    assert res.quarantine["reason"].iloc[0] == (
        "stage 'Foo' is not one of See, Think, Do, Care; add it to stage_map.stages"
    )
    assert res.summary["reasons"] == {"unknown stage": 1}


def test_unmapped_touchpoints_get_no_stage_and_a_note(tmp_path):
    res = read_events(
        csv(
            tmp_path,
            "2024-03-05T10:00:00Z,u1,email,site_visit",
            "2024-03-05T11:00:00Z,u1,email,webinar_signup",
            "2024-03-05T12:00:00Z,u2,email,webinar_signup",
            "2024-03-05T13:00:00Z,u2,email,Purchase",
            header="timestamp,user_id,channel,touchpoint",
        )
    )
    assert_accounting(res, 4, 4, 0)
    assert res.events["stage"].isna().tolist() == [False, True, True, False]
    assert res.events["conversion"].tolist() == [False, False, False, True]  # case-insensitive
    assert (
        "2 rows have no stage: touchpoints 'webinar_signup' are not in the stage map"
        in " ".join(res.summary["notes"])
    )


def test_custom_stage_map_and_conversions(tmp_path):
    mapping = {
        "stage_map": {
            "stages": ["Aware", "Buy"],
            "touchpoints": {"ad_impression": "Aware", "order": "Buy"},
        },
        "conversion_touchpoints": ["order"],
    }
    res = read_events(
        csv(
            tmp_path,
            "2024-03-05T10:00:00Z,u1,display,ad_impression",
            "2024-03-05T11:00:00Z,u1,email,order",
            header="timestamp,user_id,channel,touchpoint",
        ),
        mapping,
    )
    assert res.events["stage"].tolist() == ["Aware", "Buy"]
    assert res.events["conversion"].tolist() == [False, True]
    assert res.summary["stages"] == ["Aware", "Buy"]


def test_exact_duplicates_removed_and_counted(tmp_path):
    res = read_events(csv(tmp_path, *GOOD_ROWS, GOOD_ROWS[0], GOOD_ROWS[2], GOOD_ROWS[0]))
    assert_accounting(res, 6, 3, 3)
    assert res.summary["duplicates"] == 3
    assert res.summary["reasons"] == {"exact duplicate": 3}
    q = res.quarantine
    assert q["row"].tolist() == [5, 6, 7]
    assert q["reason"].tolist() == [
        "exact duplicate of row 2",
        "exact duplicate of row 4",
        "exact duplicate of row 2",
    ]
    assert q["column"].isna().all()
    assert res.events["event_id"].tolist() == ["e1", "e2", "e3"]


def test_several_problems_on_one_row_are_joined(tmp_path):
    res = read_events(csv(tmp_path, *GOOD_ROWS, "x9,garbage,,(null),purchase,-3,9"))
    assert_accounting(res, 4, 3, 1)
    reason = res.quarantine["reason"].iloc[0]
    parts = reason.split("; ")
    assert parts[0].startswith("timestamp 'garbage' could not be read")
    assert any(p.startswith("channel '(null)' is a reserved name") for p in parts)
    assert "revenue '-3' is negative" in parts
    assert any(p.startswith("sentiment '9' is outside [-1, 1]") for p in parts)
    assert any(p.startswith("no identifier") for p in parts)
    assert res.quarantine["column"].iloc[0] == "timestamp; channel; revenue; sentiment"
    assert res.summary["reasons"] == {
        "unparseable timestamp": 1,
        "reserved name": 1,
        "negative revenue": 1,
        "sentiment out of range": 1,
        "no identifier": 1,
    }


def test_mixed_problems_accounting_and_report(tmp_path):
    rows = [
        *GOOD_ROWS,
        "e4,bad,u1,email,site_visit,,",
        "e5,bad too,u1,email,site_visit,,",
        GOOD_ROWS[1],
        "e6,2024-03-05T10:00:00Z,u1,,site_visit,,",
        "e7,2024-03-05T10:00:00Z,u1,email,site_visit,,",
    ]
    res = read_events(csv(tmp_path, *rows))
    assert_accounting(res, 8, 4, 4)
    rep = res.report()
    assert list(rep.columns) == ["reason", "column", "rows", "example_row", "example"]
    assert rep.iloc[0].to_dict() | {"example": None} == {
        "reason": "unparseable timestamp",
        "column": "timestamp",
        "rows": 2,
        "example_row": 5,
        "example": None,
    }
    assert set(rep["reason"]) == {"unparseable timestamp", "exact duplicate", "empty channel"}
    assert "rows_quarantined=4" in repr(res)


def test_blank_lines_skipped_and_row_numbers_stay_true(tmp_path):
    path = write(
        tmp_path,
        "\n".join([HEADER, GOOD_ROWS[0], "", GOOD_ROWS[1], "e9,bad,u1,email,site_visit,,"]) + "\n",
    )
    res = read_events(path)
    assert_accounting(res, 3, 2, 1)
    assert res.quarantine["row"].tolist() == [5]
    assert res.summary["blank_rows"] == 1
    assert any("1 blank line skipped (rows 3)" in n for n in res.summary["notes"])


def test_defaults_decimal_comma_and_extra_identifier(tmp_path):
    mapping = {
        "columns": {"account_no": "Konto", "revenue": "Umsatz"},
        "identifiers": ["account_no", "user_id"],
        "defaults": {"channel": "store", "segment": "retail"},
        "read": {"delimiter": ";", "decimal": ","},
    }
    res = read_events(
        csv(
            tmp_path,
            "2024-03-05T10:00:00Z;A-1;purchase;12,50",
            "2024-03-05T11:00:00Z;;purchase;3",
            header="timestamp;Konto;touchpoint;Umsatz",
        ),
        mapping,
    )
    assert_accounting(res, 2, 1, 1)
    ev = res.events
    assert ev["revenue"].tolist() == [12.5]
    assert ev["channel"].tolist() == ["store"] and ev["online"].tolist() == [False]
    assert ev["segment"].tolist() == ["retail"]
    assert ev["account_no"].tolist() == ["A-1"] and ev["account_no"].dtype == "str"
    assert res.summary["identifiers"] == ["account_no", "user_id"]
    assert "no identifier: account_no, user_id are all empty" in res.quarantine["reason"].iloc[0]


def test_missing_value_spellings_and_bom(tmp_path):
    path = tmp_path / "events.csv"
    path.write_bytes(
        "\ufefftimestamp,user_id,device_id,channel,touchpoint,revenue\n"
        "2024-03-05T10:00:00Z,NULL,d1,email,purchase,NA\n".encode()
    )
    res = read_events(path)
    assert_accounting(res, 1, 1, 0)
    assert pd.isna(res.events["user_id"].iloc[0]) and np.isnan(res.events["revenue"].iloc[0])


def test_quarantine_source_columns_do_not_clash(tmp_path):
    res = read_events(
        csv(
            tmp_path,
            "2024-03-05T10:00:00Z,u1,email,site_visit,a",
            "oops,u1,email,site_visit,b",
            header="timestamp,user_id,channel,touchpoint,reason",
        )
    )
    assert list(res.quarantine.columns) == [
        "row",
        "reason",
        "column",
        "timestamp",
        "user_id",
        "channel",
        "touchpoint",
        "reason (source)",
    ]
    assert res.events["reason"].tolist() == ["a"]


def test_invariant_is_enforced():
    ev = pd.DataFrame({"a": [1]})
    summary = {"file": "x", "rows_read": 2, "rows_kept": 1, "rows_quarantined": 0, "reasons": {}}
    with pytest.raises(AssertionError, match="row accounting"):
        LoadResult(events=ev, quarantine=pd.DataFrame(), summary=summary)


def test_large_file_is_vectorised(tmp_path):
    """Not a benchmark: 200k rows must load in well under a minute (a row loop would not)."""
    import time

    n = 200_000
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "timestamp": (
                pd.Timestamp("2024-01-01", tz="UTC")
                + pd.to_timedelta(rng.integers(0, 10**7, n), unit="s")
            ).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "user_id": pd.Series(rng.integers(0, 5000, n)).astype(str).radd("u"),
            "channel": np.array(["email", "store", "social"])[rng.integers(0, 3, n)],
            "touchpoint": np.array(["site_visit", "purchase", "ad_impression"])[
                rng.integers(0, 3, n)
            ],
        }
    )
    df.loc[::1000, "timestamp"] = "bad"
    path = tmp_path / "big.csv"
    df.to_csv(path, index=False)
    t0 = time.perf_counter()
    res = read_events(path)
    elapsed = time.perf_counter() - t0
    assert res.summary["rows_read"] == n
    assert res.summary["reasons"].get("unparseable timestamp") == n // 1000
    assert res.summary["rows_kept"] + res.summary["rows_quarantined"] == n
    assert elapsed < 30, elapsed


def test_canonical_frame_is_a_fixed_point(tmp_path):
    res = read_events(csv(tmp_path, *GOOD_ROWS))
    again = validate_events(res.events, source="again")
    assert_accounting(again, 3, 3, 0)
    pd.testing.assert_frame_equal(again.events, res.events, check_flags=False)


def test_mapped_column_wins_over_a_same_named_source_column(tmp_path):
    res = read_events(
        csv(
            tmp_path,
            "2024-03-05T10:00:00Z,old,u1,email,site_visit",
            header="event_time,timestamp,user_id,channel,touchpoint",
        ),
        {"columns": {"timestamp": "event_time"}},
    )
    assert res.events["timestamp"].iloc[0] == pd.Timestamp("2024-03-05 10:00", tz="UTC")
    assert res.events["timestamp_source"].tolist() == ["old"]
    assert any("kept as 'timestamp_source'" in n for n in res.summary["notes"])


def test_empty_timestamp_column_is_a_file_error(tmp_path):
    with pytest.raises(DataError, match="timestamp column has no values") as exc:
        read_events(
            csv(tmp_path, ",u1,email,site_visit", header="timestamp,user_id,channel,touchpoint")
        )
    assert exc.value.column == "timestamp"


def test_mapped_optional_column_absent_is_a_file_error(tmp_path):
    path = csv(tmp_path, *GOOD_ROWS)
    with pytest.raises(DataError) as exc:
        read_events(path, {"columns": {"campaign": "campain_name"}})
    err = exc.value
    assert "the column map names source columns that the file lacks (for campaign)" in str(err)
    assert "source column 'campain_name' to campaign, but the file has no such column" in str(err)
    assert err.column == ["campaign"]
    assert "campaign: <your column>" in err.fix


def test_the_column_map_may_fill_session_id_from_another_column(tmp_path):
    """session_id is not canonical, but a map may name its source column; journeys then cut on it."""
    import analysis

    csv = tmp_path / "clicks.csv"
    csv.write_text(
        "ts,uid,visit,action\n2024-01-01T10:00:00Z,u1,s1,site_visit\n"
        "2024-01-01T10:05:00Z,u1,s1,add_to_cart\n2024-01-01T12:00:00Z,u1,s2,site_visit\n"
        "2024-01-01T12:01:00Z,u1,s2,purchase\n"
    )
    mp = tmp_path / "map.yml"
    mp.write_text(
        "columns: {timestamp: ts, user_id: uid, session_id: visit, touchpoint: action, channel: action}\n"
    )
    res = analysis.read_events(csv, mapping=mp)
    assert list(res.events["session_id"]) == ["s1", "s1", "s2", "s2"] and "visit" not in res.events
    jr = analysis.build_journeys(analysis.stitch_identities(res.events), journey_by="session")
    assert sorted(jr.journeys["outcome"]) == [
        "converted",
        "dropoff",
    ]  # by inactivity: one converted journey
    assert analysis.build_journeys(analysis.stitch_identities(res.events)).summary["journeys"] == 1
