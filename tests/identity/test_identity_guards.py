"""Stitching guards (issue 17): chains through shared devices, placeholders not in the list.

Each case is one row of ``CASES``: a name, a function building the rows, the keyword arguments
for ``stitch``, the expected number of persons, and identifiers expected blocked with a piece of
their reason (``{}`` = nothing of interest blocked). Add a case in one line.
"""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.identity import stitch, stitch_identities


def _rows(*pairs: dict) -> list[dict]:
    return [{"timestamp": "2024-01-01", **p} for p in pairs]


def chain(n_users: int) -> list[dict]:
    """u0 - d0 - u1 - d1 - u2 …: every device shared by two users (2 links, under max_links)."""
    rows = []
    for i in range(n_users - 1):
        rows += _rows(
            {"device_id": f"d{i}", "user_id": f"u{i}"},
            {"device_id": f"d{i}", "user_id": f"u{i + 1}"},
        )
    return rows


def one_person_laptop_phone_login() -> list[dict]:
    return _rows(
        {"device_id": "laptop", "user_id": "alice"},
        {"device_id": "phone", "user_id": "alice"},
        {"device_id": "laptop"},
        {"device_id": "phone"},
        {"device_id": "phone", "email_hash": "e-alice"},
    )


def family_tablet() -> list[dict]:
    """A tablet shared by two users who each have their own phone too."""
    return _rows(
        {"device_id": "tablet", "user_id": "mum"},
        {"device_id": "tablet", "user_id": "son"},
        {"device_id": "phone-mum", "user_id": "mum"},
        {"device_id": "phone-son", "user_id": "son"},
        {"device_id": "tablet"},
    )


def placeholders_50() -> list[dict]:
    """50 unrelated rows: 25 share the e-mail '(null)', 25 the login '#NV' (merged into 2 before)."""
    return _rows(*[{"device_id": f"d{i}", "email_hash": "(null)"} for i in range(25)]) + _rows(
        *[{"device_id": f"x{i}", "user_id": "#NV"} for i in range(25)]
    )


def placeholder_value(value: str) -> list[dict]:
    """10 unrelated devices on rows with the same e-mail value."""
    return _rows(*[{"device_id": f"d{i}", "email_hash": value} for i in range(10)])


def normal_users(n: int = 100) -> list[dict]:
    """n ordinary users, each with two devices."""
    return _rows(
        *[{"device_id": f"n{i}-{k}", "user_id": f"user{i}"} for i in range(n) for k in range(2)]
    )


def unknown_placeholder_linking_rows() -> list[dict]:
    """A value no pattern knows ('zz-default') on 30 rows of unrelated devices, beside 100 users."""
    return (
        _rows(*[{"device_id": f"d{i}", "user_id": "zz-default"} for i in range(30)])
        + normal_users()
    )


def busy_real_user() -> list[dict]:
    """A real, busy user: 600 rows over 3 devices and 12 cookies, beside 100 ordinary users."""
    busy = [
        {"device_id": f"busy-dev{i % 3}", "cookie_id": f"busy-ck{i % 12}", "user_id": "busy"}
        for i in range(600)
    ]
    return _rows(*busy) + normal_users()


def real_ids_that_look_odd() -> list[dict]:
    """Values that only resemble placeholders: each its own person."""
    vals = ["na123", "0x1f", "nd-7", "007", "00042", "nullmann", "n.a.p", "unknown-soldier-17"]
    return _rows(*[{"device_id": f"d{i}", "user_id": v} for i, v in enumerate(vals)])


def email_chain() -> list[dict]:
    """u0 - e0 - u1 - e1 - u2 …: e-mails shared by two logins each (20 logins)."""
    rows = []
    for i in range(19):
        rows += _rows(
            {"email_hash": f"e{i}", "user_id": f"u{i}"},
            {"email_hash": f"e{i}", "user_id": f"u{i + 1}"},
        )
    return rows


def indirect_chain() -> list[dict]:
    """u_i - d_i - e_i - d'_i - u_{i+1}: no identifier is seen with two logins directly."""
    rows = []
    for i in range(10):
        rows += _rows(
            {"device_id": f"a{i}", "user_id": f"u{i}"},
            {"device_id": f"a{i}", "email_hash": f"e{i}"},
            {"device_id": f"b{i}", "email_hash": f"e{i}"},
            {"device_id": f"b{i}", "user_id": f"u{i + 1}"},
        )
    return rows


PLACEHOLDERS = [
    "(null)",
    "#NV",
    "#N/A",
    "N/A",
    "n.v.",
    "k.A.",
    "sin dato",
    "nicht verfügbar",
    "<null>",
    "---",
    "0000",
    "?",
    "inconnu",
    "desconocido",
    "unbekannt",
    "non disponible",
    "keine Angabe",
    "s/d",
    "NULL",
    "[none]",
    "not set",
    "(not provided)",
    "sconosciuto",
    "onbekend",
    "n.d.",
    "xxx",
]

#: name, rows, stitch kwargs, persons, {identifier: piece of its reason}
CASES = [
    (
        "chain of 2,500 users through shared devices",
        lambda: chain(2500),
        {},
        2500,
        {"d0": "bridges 2 persons (chain)", "d1234": "bridges 2 persons (chain)"},
    ),
    ("chain of 3 users: a household, under max_person_ids", lambda: chain(3), {}, 1, {}),
    (
        "chain of 3 users, max_person_ids=2",
        lambda: chain(3),
        {"max_person_ids": 2},
        3,
        {"d0": "bridges 2 persons (chain)"},
    ),
    ("chain guard off", lambda: chain(50), {"max_person_ids": None}, 1, {}),
    ("laptop, phone and one login: one person", one_person_laptop_phone_login, {}, 1, {}),
    ("family tablet shared by 2 users: one household", family_tablet, {}, 1, {}),
    (
        "family tablet, max_person_ids=1: two persons",
        family_tablet,
        {"max_person_ids": 1},
        2,
        {"tablet": "bridges 2 persons (chain)"},
    ),
    ("e-mails shared by two logins each", email_chain, {}, 20, {"e3": "bridges 2 persons (chain)"}),
    ("chain without a direct bridge", indirect_chain, {}, 21, {"a0": "bridges", "b0": "bridges"}),
    (
        "50 rows with (null) and #NV",
        placeholders_50,
        {},
        50,
        {"(null)": "placeholder pattern", "#NV": "placeholder pattern"},
    ),
    *[
        (f"placeholder {v!r}", lambda v=v: placeholder_value(v), {}, 10, {v: "placeholder"})
        for v in PLACEHOLDERS
    ],
    (
        "placeholder patterns off",
        lambda: placeholder_value("(null)"),
        {"placeholder_patterns": ()},
        1,
        {},
    ),
    (
        "unknown placeholder links 30 unrelated rows",
        unknown_placeholder_linking_rows,
        {},
        130,
        {"zz-default": "links 30 unrelated rows"},
    ),
    (
        "data-driven placeholders off",
        unknown_placeholder_linking_rows,
        {"placeholder_min_links": None},
        101,
        {},
    ),
    ("busy real user is not blocked", busy_real_user, {}, 101, {}),
    ("real ids that look odd", real_ids_that_look_odd, {}, 8, {}),
]


@pytest.mark.parametrize(
    ("name", "build", "kwargs", "persons", "blocked"), CASES, ids=[c[0] for c in CASES]
)
def test_stitching_guard_cases(make_events, name, build, kwargs, persons, blocked):
    ev = make_events(build())
    res = stitch(ev, **kwargs)
    assert res.summary["persons"] == persons, res.report().to_string()
    b = res.blocked.set_index("identifier")["reason"]
    for ident, piece in blocked.items():
        assert ident in b.index, f"{ident} not blocked; blocked: {list(b.index[:10])}"
        assert piece in b[ident], f"{ident}: {b[ident]!r}"
    if not blocked:  # nothing but the built-in placeholders (a missing value read as text)
        assert not b.str.contains("chain|pattern|unrelated", regex=True).any(), b.to_string()
    # every row with an unblocked identifier keeps a person
    assert res.summary["rows_without_person"] == int(res.events["person_id"].isna().sum())


def test_guards_are_reported_in_the_summary(make_events):
    ev = make_events(chain(40) + placeholders_50() + unknown_placeholder_linking_rows())
    res = stitch(ev)
    s = res.summary
    by = s["blocked_by_reason"]
    assert by["chain bridge"] == 39
    assert by["placeholder pattern"] == 2
    assert by["unrelated rows"] == 1
    assert s["max_person_ids"] == 3 and s["placeholder_min_links"] == 20
    rep = res.report().set_index("measure")["value"]
    assert any("chain" in m for m in rep.index)
    assert any("placeholder" in m for m in rep.index)
    # stitch_identities passes the thresholds on
    out = stitch_identities(
        ev, max_person_ids=None, placeholder_patterns=(), placeholder_min_links=None
    )
    assert out.attrs["stitching"]["blocked_by_reason"]["chain bridge"] == 0
    assert out.attrs["stitching"]["persons"] < s["persons"]


def test_guards_do_not_change_synthetic_persons(synth_data):
    """The synthetic ground truth: the guards block nothing beyond kiosks and 'unknown'."""
    events, truth = synth_data
    res = stitch(events)
    assert res.summary["persons"] == truth.persons["person"].nunique()
    by = res.summary["blocked_by_reason"]
    assert by["chain bridge"] == 0 and by["placeholder pattern"] == 0 and by["unrelated rows"] == 0


@pytest.mark.spark
def test_guards_on_spark_equal_duckdb(make_events, spark_available):
    ev = make_events(
        chain(40)
        + placeholders_50()
        + unknown_placeholder_linking_rows()
        + indirect_chain()
        + placeholder_value("nicht verfügbar")
    )
    a = stitch(ev, engine="duckdb")
    b = stitch(ev, engine="spark")
    pd.testing.assert_series_equal(a.events["person_id"], b.events["person_id"])
    pd.testing.assert_frame_equal(a.blocked, b.blocked)
    assert a.summary["blocked_by_reason"] == b.summary["blocked_by_reason"]
