"""The fast stitching path's own shortcuts, each against an independent judge.

- the byte-wise sort of distinct strings (prefix numbers, ties resolved 8 bytes at a time)
  against Arrow's ``sort_indices``;
- the placeholder flags judged in polars (printable ASCII, simple patterns) against DuckDB
  running the engine path's expressions on every value;
- whole stitching, fast against the engine path (DuckDB), on rows with three or more
  identifiers, chains, data-driven placeholders, numeric and empty identifiers.
"""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from analysis.identity import DEFAULT_PLACEHOLDER_PATTERNS, DEFAULT_PLACEHOLDERS, stitch
from analysis.identity.fast import placeholder_values, placeholder_values_engine
from analysis.identity.fast_codes import sort_order

ALPHABET = ["a", "b", "z", "A", "0", "-", " ", "\x00", "\x01", "\x7f", "é", "☕", "直", "😀"]


def _random_strings(rng: random.Random, n: int) -> list[str]:
    """``n`` distinct strings with shared prefixes, NUL bytes and multi-byte characters."""
    out: set[str] = set()
    while len(out) < n:
        length = rng.choice([0, 1, 7, 8, 9, 15, 16, 17, 33])
        letters = ALPHABET[: rng.randint(2, len(ALPHABET))]
        out.add("".join(rng.choice(letters) for _ in range(length)))
    values = sorted(out)
    rng.shuffle(values)
    return values


@pytest.mark.parametrize("seed", range(20))
def test_sort_order_is_arrows_byte_order(seed):
    rng = random.Random(seed)
    values = _random_strings(rng, rng.randint(0, 300))
    for typ in (pa.string(), pa.large_string()):
        arr = pa.array(values, typ)
        if len(arr) > 3:
            arr = arr.slice(2)  # an array that starts inside its buffers
        assert np.array_equal(sort_order(arr), np.asarray(pc.sort_indices(arr)))


#: Values where lower-casing or the normalisation could differ between polars and DuckDB.
TRICKY = [
    *DEFAULT_PLACEHOLDERS,
    *(c for c in map(chr, range(32, 127))),  # every printable ASCII character alone
    "N/A",
    "n.v.",
    "(NULL)",
    "#NV",
    "X-X-X",
    "0.0",
    "00-00",
    "Null\x0b",  # a vertical tab: RE2's \s leaves it
    "null\t",
    "NULL\u00a0",  # a no-break space: neither \s in RE2 nor punctuation
    "ＮＵＬＬ",  # full-width letters
    "İ",  # lower-cases to two code points
    "ẞ",
    "nicht verfügbar",
    "Okänd",
    "σς",
    "na_me",
    "user_42",
    "dev-334860-1",
    "u-144988",
    "a" * 70,
    "",
    "\x00",
    "tEsT@TeSt.CoM",
    " guest ",
    "d41d8cd98f00b204e9800998ecf8427e",
    "D41D8CD98F00B204E9800998ECF8427E",
]


@pytest.mark.parametrize(
    "patterns",
    [
        DEFAULT_PLACEHOLDER_PATTERNS,
        (),
        ("x+", "(?:na|n)+", "dev.*1", "u_?42"),  # simple: judged in polars
        (r"[a-c]+", r"\d+", "(?i)NULL", r"n\.?a"),  # classes, escapes, flags: DuckDB
    ],
    ids=["default", "none", "simple", "complex"],
)
@pytest.mark.parametrize("placeholders", [DEFAULT_PLACEHOLDERS, {"Dev-334860-1 ", "x"}])
def test_placeholder_values_equal_the_engine_expressions(patterns, placeholders):
    values = pa.array(sorted(set(TRICKY)), pa.string())
    fast = placeholder_values(values, placeholders, patterns)
    engine = placeholder_values_engine(values, placeholders, patterns)
    for got, want, what in zip(fast, engine, ("listed", "pattern"), strict=True):
        diff = [v for v, a, b in zip(values.to_pylist(), got, want, strict=True) if a != b]
        assert not diff, f"{what} differs on {diff}"
    assert engine[0].any() or engine[1].any()  # the values exercise the rules


def test_an_invalid_pattern_fails_as_on_the_engine_path():
    values = pa.array(["a", "b"], pa.string())
    with pytest.raises(Exception, match="repetition"):
        placeholder_values(values, DEFAULT_PLACEHOLDERS, ("a**",))


def _traps(seed: int) -> pd.DataFrame:
    """Rows with up to six identifiers, chains, placeholders, shared devices, numeric ids."""
    rng = np.random.default_rng(seed)
    n = 1500

    def pick(prefix: str, k: int, p_missing: float, extra: list[str]) -> list[str | None]:
        pool = [f"{prefix}{i}" for i in range(k)] + extra
        vals = rng.choice(pool, n).tolist()
        return [None if rng.random() < p_missing else v for v in vals]

    ev = pd.DataFrame(
        {
            "timestamp": pd.Timestamp("2024-01-01", tz="UTC")
            + pd.to_timedelta(rng.integers(0, 10**6, n), unit="s"),
            "device_id": pick("d", 400, 0.1, ["unknown", "", "N/A", "kiosk"] * 5),
            "cookie_id": pick("c", 600, 0.5, ["-", "(null)"]),
            "user_id": pick("u", 200, 0.5, ["0", "Guest", "ユーザー"]),
            "email_hash": pick("e", 150, 0.6, ["#NV", "x"]),
            "crm_id": pick("", 120, 0.7, []),  # numeric-looking ids
            "loyalty_id": pick("L", 90, 0.8, ["?"]),
        }
    )
    ev["channel"] = "display"
    for c in ev.columns.drop("timestamp"):
        ev[c] = ev[c].astype("str")
    ev["timestamp"] = ev["timestamp"].astype("datetime64[us, UTC]")
    return ev


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"max_person_ids": 2, "placeholder_min_links": 5, "placeholder_factor": 1.0},
        {"max_links": 1, "max_device_links": 3},
        {"placeholder_patterns": (r"[a-c]\d",)},
    ],
    ids=["defaults", "tight guards", "tight links", "complex pattern"],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_fast_stitching_equals_the_engine_path(seed, kwargs):
    ev = _traps(seed)
    a = stitch(ev, engine="duckdb", **kwargs)
    b = stitch(ev, engine="polars", **kwargs)
    pd.testing.assert_series_equal(a.events["person_id"], b.events["person_id"])
    drop = {"engine"}
    assert {k: v for k, v in a.summary.items() if k not in drop} == {
        k: v for k, v in b.summary.items() if k not in drop
    }
    pd.testing.assert_frame_equal(a.identities, b.identities)
    assert b.summary["persons"] > 1 and b.summary["blocked"] > 0


def test_a_column_without_values_and_rows_without_identifiers():
    ev = _traps(2)
    ev["cookie_id"] = pd.array([None] * len(ev), dtype="str")
    ev.loc[::7, ["device_id", "user_id", "email_hash", "crm_id", "loyalty_id"]] = None
    a = stitch(ev, engine="duckdb")
    b = stitch(ev, engine="polars")
    pd.testing.assert_series_equal(a.events["person_id"], b.events["person_id"])
    pd.testing.assert_frame_equal(a.identities, b.identities)
    assert b.events["person_id"].isna().sum() >= len(ev) // 7


@pytest.mark.parametrize("rows", [slice(0, 0), slice(None)], ids=["no rows", "no identifier"])
def test_no_identifier_value_at_all_gives_no_person_on_both_engines(rows):
    ev = _traps(3)
    for c in ("device_id", "cookie_id", "user_id", "email_hash", "crm_id", "loyalty_id"):
        ev[c] = pd.array([None] * len(ev), dtype="str")
    ev = ev.iloc[rows]
    a = stitch(ev, engine="duckdb")  # this engine used to fail here (an empty CASE)
    b = stitch(ev, engine="polars")
    pd.testing.assert_series_equal(a.events["person_id"], b.events["person_id"])
    assert b.events["person_id"].isna().all() and b.summary["persons"] == 0


def test_a_numeric_crm_id_with_missing_values_stitches_as_on_the_engine_path():
    ev = _traps(4)
    crm = pd.to_numeric(ev["crm_id"].where(ev["crm_id"] != "None"), errors="coerce")
    ev["crm_id"] = crm.astype("Int64")
    assert ev["crm_id"].isna().any() and ev["crm_id"].notna().sum() > 100
    a = stitch(ev, engine="duckdb")
    b = stitch(ev, engine="polars")
    pd.testing.assert_series_equal(a.events["person_id"], b.events["person_id"])
    pd.testing.assert_frame_equal(a.identities, b.identities)
