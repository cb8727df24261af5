"""Out-of-core stitching (identity.streaming.stitch_table) against the in-memory stitch.

Truth: :func:`analysis.identity.stitch` on the same rows, on the engine path (DuckDB, the
graph in SQL) and the fast path (polars): every row's person and the summary's counts must be
equal, on rows with up to six identifiers, placeholders (listed, patterns, non-ASCII), shared
devices (super-nodes), data-driven placeholders, chains, empty values and a column without
values.
"""

from __future__ import annotations

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from analysis.identity import stitch, stitch_table

COLS = ["device_id", "cookie_id", "user_id", "email_hash", "crm_id", "loyalty_id"]


def _rows(seed: int, n: int = 2000) -> pd.DataFrame:
    """Identifier rows with the traps of stitching; missing values as None or ''."""
    rng = np.random.default_rng(seed)

    def pick(prefix: str, k: int, p_missing: float, extra: list[str]) -> list[str | None]:
        pool = [f"{prefix}{i}" for i in range(k)] + extra
        vals = rng.choice(pool, n).tolist()
        return [None if rng.random() < p_missing else v for v in vals]

    ev = pd.DataFrame(
        {
            "device_id": pick("d", 500, 0.1, ["unknown", "", "N/A", "kiosk"] * 4),
            "cookie_id": pick("c", 700, 0.4, ["-", "(null)", "Ünknown"]),
            "user_id": pick("u", 250, 0.5, ["0", "Guest", "ユーザー", "u1 "]),
            "email_hash": pick("e", 180, 0.6, ["#NV", "x", "E0"]),
            "crm_id": pick("", 150, 0.7, ["00000"]),  # numeric-looking ids
            "loyalty_id": pick("L", 90, 0.85, ["?"]),
        }
    )
    return ev.astype("str")


def _streamed(ev: pd.DataFrame, cols: list[str], **kwargs) -> tuple[pd.Series, dict]:
    """Every row's person (Int64, in row order) and the summary, by stitch_table on DuckDB."""
    con = ibis.duckdb.connect()
    data = pa.Table.from_pandas(ev[cols], preserve_index=False)
    data = data.append_column("_i", pa.array(np.arange(len(ev))))
    t = con.create_table("rows", data)
    st = stitch_table(con, t, cols, **kwargs)
    rk, cp = st.row_key, st.combo_person
    j = rk.left_join(cp, rk._combo == cp._combo).select(rk._i, cp.person_id)
    got = con.to_pyarrow(j).to_pandas().sort_values("_i")
    person = pd.Series(got["person_id"].to_numpy(), dtype="Int64", name="person_id")
    con.disconnect()
    return person, st.summary


SUMMED = ("identifiers", "identifiers_by_type", "persons", "merges", "blocked")


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"max_person_ids": 2, "placeholder_min_links": 5, "placeholder_factor": 1.0},
        {"max_links": 1, "max_device_links": 3},
        {"placeholder_patterns": (r"[a-c]\d", r"u\d+")},
    ],
    ids=["defaults", "tight guards", "tight links", "patterns"],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_streaming_stitch_equals_in_memory(seed, kwargs):
    ev = _rows(seed)
    person, summary = _streamed(ev, COLS, **kwargs)
    for engine in ("duckdb", "polars"):
        mem = stitch(ev, identifiers=COLS, engine=engine, **kwargs)
        pd.testing.assert_series_equal(person, mem.events["person_id"].reset_index(drop=True))
        for k in (*SUMMED, "blocked_by_reason", "multi_identifier_persons", "largest_person"):
            assert summary[k] == mem.summary[k], (engine, k)
    assert summary["persons"] > 1 and summary["merges"] > 0 and summary["blocked"] > 0


def test_guards_all_fire_on_the_traps():
    ev = _rows(3)
    kw = {"max_person_ids": 2, "placeholder_min_links": 5, "placeholder_factor": 1.0}
    person, summary = _streamed(ev, COLS, **kw)
    mem = stitch(ev, identifiers=COLS, engine="duckdb", **kw)
    pd.testing.assert_series_equal(person, mem.events["person_id"].reset_index(drop=True))
    by = summary["blocked_by_reason"]
    assert by == mem.summary["blocked_by_reason"]
    assert by["placeholder value"] > 0 and by["super-node"] > 0 and by["chain bridge"] > 0


def test_a_column_without_values_and_rows_without_identifiers():
    ev = _rows(2)
    ev["cookie_id"] = pd.array([None] * len(ev), dtype="str")
    ev.loc[::7, ["device_id", "user_id", "email_hash", "crm_id", "loyalty_id"]] = ""
    person, summary = _streamed(ev, COLS)
    mem = stitch(ev, identifiers=COLS, engine="duckdb")
    pd.testing.assert_series_equal(person, mem.events["person_id"].reset_index(drop=True))
    assert summary["identifiers_by_type"] == mem.summary["identifiers_by_type"]
    assert "cookie_id" not in summary["identifiers_by_type"]
    assert person.isna().sum() >= len(ev) // 7


def test_no_identifier_at_all():
    ev = pd.DataFrame({"user_id": pd.array([None, "", None], dtype="str")})
    person, summary = _streamed(ev, ["user_id"])
    assert person.isna().all() and summary["persons"] == 0 and summary["identifiers"] == 0


def test_a_data_driven_placeholder():
    # persons of one device and one user id each; one user id on 30 devices: below the
    # device limit (50), far above the typical user id's combinations (unrelated rows)
    n = 400
    ev = pd.DataFrame(
        {
            "device_id": [f"d{i}" for i in range(n)] + [f"d{i}" for i in range(30)],
            "user_id": [f"u{i}" for i in range(n)] + ["acct-shared"] * 30,
        }
    )
    person, summary = _streamed(ev, ["device_id", "user_id"])
    mem = stitch(ev, identifiers=["device_id", "user_id"], engine="duckdb")
    pd.testing.assert_series_equal(person, mem.events["person_id"].reset_index(drop=True))
    assert summary["blocked_by_reason"] == mem.summary["blocked_by_reason"]
    assert summary["blocked_by_reason"]["unrelated rows"] == 1
    assert summary["persons"] == n


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_chain_pairs_filters_part_by_part(seed, monkeypatch):
    """fast.chain_pairs equals every (combination, code) pair filtered, without building them."""
    from analysis.identity import fast
    from analysis.identity.fast_codes import CodedIdentifiers

    rng = np.random.default_rng(seed)
    m, n2, n3 = 50, 40, 30
    lo = rng.integers(0, m, n2)
    hi = np.where(rng.random(n2) < 0.5, lo, np.maximum(lo, rng.integers(0, m, n2)))
    multi = {i: np.where(rng.random(n3) < 0.3, -1, rng.integers(0, m, n3)) for i in range(3)}
    none = np.zeros(0, np.int64)
    ci = CodedIdentifiers(
        cols=["a", "b", "c"], n_rows=n2 + n3, row_codes={}, values=pa.array([str(i) for i in range(m)]),
        type_of_code=np.zeros(m, np.int8), rows=none, n_combos=none, pair_a=none, pair_b=none,
        combo_lo=lo, combo_hi=hi, multi=multi,
    )  # fmt: skip
    in_sub, usable = rng.random(m) < 0.6, rng.random(m) < 0.7
    combo, code = ci.combo_codes()
    sel = (in_sub & usable)[code]
    monkeypatch.setattr(CodedIdentifiers, "combo_codes", lambda self: pytest.fail("all pairs"))
    got = fast.chain_pairs(ci, in_sub, usable)
    np.testing.assert_array_equal(got[0], combo[sel])
    np.testing.assert_array_equal(got[1], code[sel])
    assert got[0].dtype == got[1].dtype == np.int64
