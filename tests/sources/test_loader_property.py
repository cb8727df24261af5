"""Property test of the loader (issue 17): random malformed CSVs made from one valid small export
(columns shuffled, cells blanked or corrupted, bytes damaged, lines truncated) either load, with
rows read = kept + quarantined, or fail with :class:`analysis.DataError`; never another exception;
and the same bytes give the same result twice.

Deterministic (``derandomize=True``, no example database) and fast: 20 examples for each of the three strategies (60 in all).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis import DataError, read_events

HEADER = ["Zeitpunkt", "Kunde", "Cookie", "Medium", "Aktion", "Umsatz", "Bewertung", "Filiale"]
ROWS = [
    ["01.03.2024 09:00", "K-1", "c1", "email", "site_visit", "", "4", "Hamburg"],
    ["01.03.2024 09:05", "K-1", "c2", "email", "purchase", "12,50", "5", ""],
    ["02.03.2024 10:00", "", "c2", "store", "store_visit", "", "", "Berlin"],
    ["03.03.2024 11:00", "K-2", "", "paid_search", "ad_impression", "", "2", ""],
    ["04.03.2024 12:00", "K-2", "", "direct", "purchase", "1249,00", "1", "München"],
    ["05.03.2024 13:30", "K-3", "c3", "social", "site_visit", "", "3", ""],
]
MAPPING = {
    "read": {"delimiter": ";", "decimal": ","},
    "columns": {
        "timestamp": "Zeitpunkt",
        "user_id": "Kunde",
        "cookie_id": "Cookie",
        "channel": "Medium",
        "touchpoint": "Aktion",
        "revenue": "Umsatz",
        "sentiment": "Bewertung",
    },
    "timestamp": {"format": "%d.%m.%Y %H:%M", "timezone": "Europe/Berlin"},
    "sentiment": {"scale": [1, 5]},
}
SETTINGS = settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _text(header: list[str], rows: list[list[str]]) -> str:
    return "".join(";".join(r) + "\n" for r in [header, *rows])


def _load_twice(raw: bytes) -> None:
    """The property: DataError or balanced counts, and the same result from the same bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "export.csv"
        path.write_bytes(raw)
        outcomes = []
        for _ in range(2):
            try:
                res = read_events(path, mapping=MAPPING)
            except DataError as exc:
                outcomes.append(("error", str(exc)))
                continue
            s = res.summary
            assert s["rows_read"] == s["rows_kept"] + s["rows_quarantined"]
            assert len(res.events) == s["rows_kept"]
            outcomes.append(("ok", res.events, res.quarantine, s))
    first, second = outcomes
    assert first[0] == second[0], "the same input loaded once and failed once"
    if first[0] == "error":
        assert first[1] == second[1]
    else:
        pd.testing.assert_frame_equal(first[1], second[1])
        pd.testing.assert_frame_equal(first[2], second[2])
        assert first[3] == second[3]


def test_the_valid_export_loads_every_row():
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "export.csv"
        path.write_text(_text(HEADER, ROWS), encoding="utf-8")
        s = read_events(path, mapping=MAPPING).summary
    assert s["rows_read"] == s["rows_kept"] == len(ROWS)


# ------------------------------------------------------------------------------------ strategies
# a corrupt cell: anything, with the characters that break CSVs and parsers over-represented
_NASTY = st.sampled_from(
    [
        ";",
        ",",
        '"',
        "\n",
        "\r",
        "\x00",
        "\x1b[31m",
        "\t",
        "\ufeff",
        "inf",
        "-1e308",
        "NaN",
        "31.02.2024 11:00",
        "9999-12-31",
        "00.00.0000 00:00",
        "1.249",
        "1.249,00",
        "—",
        "null",
        "(null)",
        " ",
        "é",
        "😀",
        "'",
        "\\",
    ]
)
CELL = st.one_of(
    st.just(""), _NASTY, st.text(max_size=12), st.lists(_NASTY, max_size=4).map("".join)
)


@st.composite
def shuffled_and_corrupted(draw) -> bytes:
    """Columns in a random order, some cells blanked or replaced by random text."""
    order = draw(st.permutations(range(len(HEADER))))
    rows = [list(r) for r in ROWS]
    for _ in range(draw(st.integers(0, 8))):
        i, j = draw(st.integers(0, len(rows) - 1)), draw(st.integers(0, len(HEADER) - 1))
        rows[i][j] = draw(CELL)
    header = [HEADER[k] for k in order]
    rows = [[r[k] for k in order] for r in rows]
    return _text(header, rows).encode(
        draw(st.sampled_from(["utf-8", "utf-8-sig"])), errors="replace"
    )


@st.composite
def byte_damage(draw) -> bytes:
    """The valid file with random bytes flipped, inserted or deleted."""
    raw = bytearray(_text(HEADER, ROWS).encode("utf-8"))
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(raw) - 1))
        how = draw(st.sampled_from(["flip", "insert", "delete"]))
        if how == "flip":
            raw[pos] = draw(st.integers(0, 255))
        elif how == "insert":
            raw[pos:pos] = draw(st.binary(min_size=1, max_size=4))
        elif len(raw) > 1:
            del raw[pos]
    return bytes(raw)


@st.composite
def truncated_lines(draw) -> bytes:
    """Lines cut short (fewer fields, a cut value, an open quote), or the file cut anywhere."""
    lines = _text(HEADER, ROWS).splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(lines) - 1))
        line = lines[i]
        cut = draw(st.integers(0, max(len(line) - 1, 0)))
        lines[i] = line[:cut] + draw(st.sampled_from(["\n", '"\n', ";\n", ";;;;;;;;;;\n", ""]))
    raw = "".join(lines).encode("utf-8")
    if draw(st.booleans()):
        raw = raw[: draw(st.integers(0, len(raw)))]
    return raw


@pytest.mark.parametrize(
    "strategy",
    [
        pytest.param(shuffled_and_corrupted(), id="shuffled-columns-corrupt-cells"),
        pytest.param(byte_damage(), id="byte-damage"),
        pytest.param(truncated_lines(), id="truncated-lines"),
    ],
)
def test_malformed_csv_loads_or_fails_cleanly(strategy):
    @SETTINGS
    @given(raw=strategy)
    def check(raw: bytes) -> None:
        _load_twice(raw)

    check()
