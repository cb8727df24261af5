"""Hostile input through ``python -m analysis check`` and its suggested column map (issue 17):
a case table per defect, one row per input, so another input is one more line.

- the suggested map quotes every header name that needs it and loads as it is;
- the sentiment scale it suggests is a common, finite scale, never stretched by ``inf`` or outliers;
- ``check`` never sends a control character from the data or a path to the terminal.
"""

from __future__ import annotations

import csv
import io
import math
import re

import pandas as pd
import pytest
import yaml

from analysis import read_events
from analysis.__main__ import main
from analysis.sources import ColumnMap
from analysis.sources.suggest import guess_scale, suggest_mapping, visible

ROWS = [
    ("2024-03-01 09:00:00", "u1", "email", "site_visit"),
    ("2024-03-02 10:00:00", "u1", "email", "purchase"),
    ("2024-03-03 11:00:00", "u2", "paid_search", "site_visit"),
]


def _csv(header: list[str], rows: list[tuple]) -> str:
    buf = io.StringIO()
    w = csv.writer(
        buf, lineterminator="\n", quoting=csv.QUOTE_ALL
    )  # "\r" in a name stays in its field
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


# --------------------------------------------------------------- 1. the suggested map loads as it is
# (timestamp, user, channel, touchpoint) header names; each is found by guess_columns and must come
# back from the YAML exactly
HEADERS = [
    pytest.param(["Order Date", "Kunden Nr", "Marketing Channel", "Event"], id="spaces"),
    pytest.param(
        ["Order Date ", " Kunden Nr", "Marketing  Channel", "Event"], id="outer-and-double-spaces"
    ),
    pytest.param(["Order Date: UTC", "Customer: ID", "Channel: name", "Event: type"], id="colons"),
    pytest.param(["Order Date #1", "Customer #", "Channel #a", "Event # x"], id="hash"),
    pytest.param(['Order "Date"', "Customer's ID", 'Channel "x"', "Event 'y'"], id="quotes"),
    pytest.param(["-Date", "*Customer", "&Channel", "!Event"], id="leading-indicators"),
    pytest.param(
        ["Datum der Bestellung", "Kunden-Nr.", "Kanal (Größe)", "Aktion ✓"], id="non-ascii"
    ),
    pytest.param(["[Date]", "{Customer}", "Channel, main", "Event | what"], id="flow-characters"),
    pytest.param(["Date\\raw", "Customer%", "@Channel", "Event`"], id="backslash-percent-at"),
    pytest.param(
        ["Date\x1b[31m", "Customer\tID", "Channel\u202e", "Event"], id="control-characters"
    ),
    pytest.param(["Order\nDate", "Customer\rID", "Channel", "Event"], id="line-breaks"),
    pytest.param(["Date", "Customer", "Channel", "yes"], id="yaml-word-as-touchpoint-column"),
]


@pytest.mark.parametrize("header", HEADERS)
def test_suggested_map_quotes_header_names_and_loads(tmp_path, header):
    if header[3] == "yes":  # a header named like a YAML boolean: make it the touchpoint by name
        header = [*header[:3], "Event yes"]
    data = tmp_path / "export.csv"
    data.write_text(_csv(header, ROWS), encoding="utf-8")
    text = suggest_mapping(data)
    assert "\x1b" not in text and "\r" not in text
    assert yaml.safe_load(text) is not None  # valid YAML
    path = tmp_path / "map.yml"
    path.write_text(text, encoding="utf-8")
    cmap = ColumnMap.from_yaml(path)
    expected = dict(zip(("timestamp", "user_id", "channel", "touchpoint"), header, strict=True))
    assert {k: cmap.columns[k] for k in expected} == expected
    res = read_events(data, mapping=path)
    s = res.summary
    assert s["rows_read"] == s["rows_kept"] + s["rows_quarantined"] == len(ROWS)
    assert s["rows_kept"] == len(ROWS)
    assert list(res.events["user_id"]) == ["u1", "u1", "u2"]
    assert list(res.events["touchpoint"]) == ["site_visit", "purchase", "site_visit"]


# ------------------------------------------------------------- 2. a common, finite sentiment scale
SCALE_CASES = [
    # values, expected scale (None: no scale line)
    pytest.param([1, 2, 3, 4, 5] * 20 + [math.inf], (1, 5), id="inf-ignored"),
    pytest.param([1, 2, 3, 4, 5] * 20 + [-3], (1, 5), id="one-outlier-below"),
    pytest.param([1, 2, 3, 4, 5] * 20 + [1e9], (1, 5), id="one-absurd-value"),
    pytest.param([1, 2, 3, 4, 5] * 20 + [-math.inf, math.nan], (1, 5), id="minus-inf-and-nan"),
    pytest.param([0, 3, 7, 9, 10] * 20, (0, 10), id="nps-0-10"),
    pytest.param([1, 3, 6, 7] * 20, (1, 7), id="likert-1-7"),
    pytest.param([1, 4, 9, 10] * 20, (1, 10), id="1-10"),
    pytest.param([-0.5, 0.2, 1.0] * 20, None, id="already-in-minus-1-1"),
    pytest.param([-50, 20, 80, 100] * 20, None, id="no-common-scale"),
    pytest.param([math.inf] * 5, None, id="only-inf"),
]


@pytest.mark.parametrize(("values", "expected"), SCALE_CASES)
def test_guess_scale_is_common_and_finite(values, expected):
    scale, note = guess_scale(values)
    assert scale == (None if expected is None else tuple(float(x) for x in expected))
    assert "inf" not in (note.split("ignored")[0] if scale else "")
    if scale is None and expected is None and any(abs(x) > 1 for x in values if math.isfinite(x)):
        assert "no common scale" in note and "sentiment.scale" in note


@pytest.mark.parametrize(("values", "expected"), SCALE_CASES)
def test_suggested_sentiment_scale_in_the_map(tmp_path, values, expected):
    data = tmp_path / "export.csv"
    rows = [
        (f"2024-03-01 {i // 60:02d}:{i % 60:02d}:00", f"u{i}", "email", "survey", str(x))
        for i, x in enumerate(values)
    ]
    data.write_text(_csv(["timestamp", "user_id", "channel", "touchpoint", "rating"], rows))
    text = suggest_mapping(data)
    assert "inf]" not in text and "nan]" not in text
    got = (yaml.safe_load(text) or {}).get("sentiment")
    if expected is None:
        assert got is None
    else:
        assert got == {"scale": list(expected)}
        path = tmp_path / "map.yml"
        path.write_text(text)
        res = read_events(data, mapping=path)
        s = res.summary
        assert s["rows_read"] == s["rows_kept"] + s["rows_quarantined"] == len(values)
        kept = res.events["sentiment"].dropna()
        assert len(kept) and kept.between(-1, 1).all()


def test_check_quarantine_hint_proposes_no_infinite_scale(tmp_path, capsys):
    """The quarantine hint of a sentiment column without a scale (column_map._parse_sentiment)
    proposes the common finite scale of suggest.guess_scale, not [min, max] of the values."""
    data = tmp_path / "export.csv"
    data.write_text(
        _csv(
            ["timestamp", "user_id", "channel", "touchpoint", "sentiment"],
            [
                (f"2024-01-01T1{i}:00:00Z", "u1", "email", "site_visit", x)
                for i, x in enumerate(["4", "inf", "-3", "5"])
            ],
        )
    )
    assert main(["check", "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert "sentiment out of range" in out
    assert "inf]" not in out and "[-3," not in out


# ------------------------------------------ 4. epoch times: the unit follows the magnitude (suggest)
# (the same hint in a loading error lives in column_map.py, fixed there)
DATES = pd.to_datetime(
    ["2024-03-01 09:00:00", "2024-03-02 10:00:00.250", "2024-03-03 11:00:00"],
    utc=True,
    format="ISO8601",
)
EPOCHS = [
    # unit, how the values are written
    pytest.param("s", [str(int(t.timestamp())) for t in DATES.floor("s")], id="seconds"),
    pytest.param("s", [f"{t.timestamp():.3f}" for t in DATES], id="seconds-with-decimals"),
    pytest.param("ms", [str(t.value // 10**6) for t in DATES], id="milliseconds"),
    pytest.param("us", [str(t.value // 10**3) for t in DATES], id="microseconds"),
    pytest.param("ns", [str(t.value) for t in DATES], id="nanoseconds"),
]


@pytest.mark.parametrize(("unit", "values"), EPOCHS)
def test_suggested_epoch_unit_follows_the_magnitude(tmp_path, unit, values):
    data = tmp_path / "export.csv"
    data.write_text(
        _csv(
            ["Event Time", "user_id", "channel", "touchpoint"],
            [(v, *r[1:]) for v, r in zip(values, ROWS, strict=True)],
        )
    )
    text = suggest_mapping(data)
    units = re.findall(r"unit='(\w+)'", text)
    assert units == [unit], text
    # the conversion the comment gives, applied as written, gives the dates of the data
    df = pd.read_csv(data, dtype=str)
    df["Event Time"] = pd.to_datetime(pd.to_numeric(df["Event Time"]), unit=units[0], utc=True)
    assert (df["Event Time"] - pd.Series(DATES)).abs().max() < pd.Timedelta("1s")
    assert (df["Event Time"].dt.year == 2024).all()
    converted = tmp_path / "converted.csv"
    df.to_csv(converted, index=False)
    path = tmp_path / "map.yml"
    path.write_text(suggest_mapping(converted))
    res = read_events(converted, mapping=path)
    assert res.summary["rows_kept"] == len(ROWS)
    assert (res.events["timestamp"].dt.year == 2024).all()


# ------------------------------------------------- 3. check shows control characters, never sends them
ESC = "\x1b"
HOSTILE_VALUES = [
    # (column the value goes into, value, how check must show it)
    pytest.param(
        "channel", f"{ESC}[31mred{ESC}[0m", "\\x1b[31mred\\x1b[0m", id="ansi-colour-channel"
    ),
    pytest.param("touchpoint", f"visit{ESC}[2J", "visit\\x1b[2J", id="clear-screen-touchpoint"),
    pytest.param("segment", f"{ESC}]0;owned{chr(7)}", "\\x1b]0;owned\\x07", id="title-osc-segment"),
    pytest.param("channel", "mail\rfake", "mail\\rfake", id="carriage-return-channel"),
    pytest.param("touchpoint", "a\x9b31mb", "a\\x9b31mb", id="c1-csi-touchpoint"),
    pytest.param("segment", "abc\u202edef", "abc\\u202edef", id="bidi-override-segment"),
    pytest.param(f"col{ESC}[5m", "x", "col\\x1b[5m", id="ansi-in-column-name"),
    pytest.param("extra", f"{ESC}[31mred", "\\x1b[31mred", id="ansi-in-attribute-value-unprinted"),
]


def _hostile_export(tmp_path, column: str, value: str, name: str = "export.csv"):
    header = (
        ["timestamp", "user_id", "channel", "touchpoint", "segment", column]
        if column not in ("channel", "touchpoint", "segment")
        else ["timestamp", "user_id", "channel", "touchpoint", "segment"]
    )
    rows = []
    for ts, user, channel, tp in ROWS:
        row = {
            "timestamp": ts,
            "user_id": user,
            "channel": channel,
            "touchpoint": tp,
            "segment": "a",
            column: value,
        }
        rows.append(tuple(row[c] for c in header))
    data = tmp_path / name
    data.write_text(_csv(header, rows), encoding="utf-8")
    return data


def _no_control(text: str) -> bool:
    return visible(text, keep="\n") == text


@pytest.mark.parametrize(("column", "value", "shown"), HOSTILE_VALUES)
def test_check_escapes_control_characters_from_the_data(tmp_path, capsys, column, value, shown):
    """Through the command: nothing a terminal obeys reaches stdout or stderr (the loader may also
    drop control characters from values; then the value shows without them)."""
    data = _hostile_export(tmp_path, column, value)
    assert main(["check", "--data", str(data)]) == 0
    out, err = capsys.readouterr()
    assert _no_control(out) and _no_control(err)
    if column != "extra":
        # shown escaped, or the loader removed the character (or made a line break one space)
        escape = r"\\(x[0-9a-f]{2}|u[0-9a-f]{4}|r)"
        assert shown in out or re.sub(escape, "", shown) in out or re.sub(escape, " ", shown) in out


@pytest.mark.parametrize(("column", "value", "shown"), HOSTILE_VALUES)
def test_describe_shows_control_characters_escaped(tmp_path, column, value, shown):
    """The text of ``check`` itself, for values that hold control characters after loading (put
    into the loaded frame, whatever the loader does with them): each is shown escaped."""
    from analysis.__main__ import _describe
    from analysis.identity import stitch

    data = _hostile_export(tmp_path, "extra", "x")
    loaded = read_events(data)
    if column in ("channel", "touchpoint", "segment"):
        loaded.events[column] = loaded.events[column].astype("object")
        loaded.events.loc[0, column] = value
    elif column != "extra":
        loaded.events[column] = value
    loaded.summary["notes"] = [*loaded.summary.get("notes", []), f"a note quoting {value}"]
    out = _describe(data, None, loaded, stitch(loaded.events))
    assert _no_control(out)
    assert shown in out


@pytest.mark.parametrize(("column", "value", "shown"), HOSTILE_VALUES)
def test_suggest_mapping_escapes_control_characters(tmp_path, capsys, column, value, shown):
    data = _hostile_export(tmp_path, column, value)
    assert main(["check", "--data", str(data), "--suggest-mapping"]) == 0
    out = capsys.readouterr().out
    assert ESC not in out and "\x9b" not in out and "\r" not in out and "\u202e" not in out


FILE_NAMES = [
    pytest.param(f"ex{ESC}[31mport.csv", "ex\\x1b[31mport.csv", id="ansi-in-file-name"),
    pytest.param("ex\rport.csv", "ex\\rport.csv", id="carriage-return-in-file-name"),
]


@pytest.mark.parametrize(("name", "shown"), FILE_NAMES)
def test_check_escapes_the_file_name(tmp_path, capsys, name, shown):
    data = _hostile_export(tmp_path, "channel", "email", name=name)
    assert main(["check", "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert ESC not in out and "\r" not in out
    assert shown in out
    assert main(["check", "--data", str(data), "--suggest-mapping"]) == 0
    out = capsys.readouterr().out
    assert ESC not in out and "\r" not in out and shown in out


def test_check_escapes_control_characters_in_an_error(tmp_path, capsys, monkeypatch):
    data = tmp_path / "export.csv"
    data.write_text(
        _csv(
            ["timestamp", "user_id", "channel", "touchpoint"],
            [(f"{ESC}[31mnot a time", "u1", "email", "site_visit")],
        )
    )
    assert main(["check", "--data", str(data)]) == 2
    assert _no_control(capsys.readouterr().err)

    import analysis.prepared
    from analysis import DataError

    def hostile(*args, **kwargs):
        raise DataError(f"value {ESC}[31mnot a time{ESC}[0m", column=f"time{ESC}[5m", fix="x")

    monkeypatch.setattr(analysis.prepared, "load", hostile)
    assert main(["check", "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert _no_control(err) and "\\x1b[31mnot a time\\x1b[0m" in err and "time\\x1b[5m" in err


def test_visible_escapes_c0_c1_and_keeps_text():
    assert visible("plain Größe ✓") == "plain Größe ✓"
    assert visible("\x00\x07\x1b\x7f\x85\x9b") == "\\x00\\x07\\x1b\\x7f\\x85\\x9b"
    assert visible("a\nb\tc") == "a\\nb\\tc"
    assert visible("a\nb", keep="\n") == "a\nb"
