"""The compiled identifier codes (:mod:`analysis.identity.kernels` through ``code_identifiers``).

Judged against a plain version written here with Arrow's own sort and lookup and numpy: on
random rows with missing and empty values, zero to all identifiers per row, columns split
into chunks at different places (sliced chunks too), large and plain strings and a numeric
column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from analysis.identity import kernels
from analysis.identity.fast_codes import code_identifiers


def _column(rng: np.random.Generator, n: int, n_values: int, p_missing: float) -> list:
    """Values like ``"v12"``, shared prefixes and lengths past 8 bytes; None and "" mixed in."""
    pool = [f"id-{rng.integers(0, 10 ** rng.integers(1, 12))}-{i}" for i in range(n_values)]
    pool += ["", "é直", "id-"]
    out: list = list(rng.choice(pool, n))
    for i in np.flatnonzero(rng.random(n) < p_missing):
        out[i] = None
    return out


def _chunked(values: list, rng: np.random.Generator, large: bool) -> pa.ChunkedArray:
    """``values`` as Arrow strings in chunks cut at random places, some chunks sliced."""
    typ = pa.large_string() if large else pa.string()
    cuts = np.sort(
        rng.choice(np.arange(1, len(values)), size=min(4, len(values) - 1), replace=False)
    )
    chunks = []
    for a, b in zip([0, *cuts], [*cuts, len(values)], strict=True):
        if rng.random() < 0.5:  # a slice of a larger array: offsets and bitmap from an offset
            pad = pa.array([None, "pad", *values[a:b], "tail"], typ)
            chunks.append(pad.slice(2, b - a))
        else:
            chunks.append(pa.array(values[a:b], typ))
    return pa.chunked_array(chunks, typ)


def _events(seed: int, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols = {}
    for j, name in enumerate(["user_id", "device_id", "email_hash", "cookie_id", "loyalty_id"]):
        p = [0.1, 0.5, 0.7, 1.0, 0.9][j] if seed % 2 else rng.random()
        values = _column(rng, n, int(rng.integers(1, max(2, n // 3))), p)
        cols[name] = pd.Series(pd.arrays.ArrowExtensionArray(_chunked(values, rng, j % 2 == 0)))
    cols["crm_id"] = pd.Series(rng.integers(0, 40, n)).astype("Int64")
    cols["crm_id"][rng.random(n) < 0.6] = pd.NA
    return pd.DataFrame(cols)


def _plain(events: pd.DataFrame, cols: list[str]) -> dict:
    """Codes by Arrow's sort_indices and index_in; combinations and pairs as Python sets."""
    by_name = sorted(range(len(cols)), key=lambda i: cols[i])
    codes, values, at = {}, [], 0
    for t in by_name:
        s = events[cols[t]]
        s = (
            s.astype("str").where(s.notna(), None)
            if s.dtype.kind in "iu" or str(s.dtype) == "Int64"
            else s
        )
        arr = pa.array(s.to_numpy(dtype=object, na_value=None), pa.string())
        distinct = pc.unique(arr).drop_null()
        distinct = distinct.filter(pc.not_equal(distinct, ""))
        distinct = distinct.take(pc.sort_indices(distinct))
        idx = pc.index_in(arr, distinct).to_numpy(zero_copy_only=False)
        code = np.where(np.isnan(idx.astype(float)), -1, np.nan_to_num(idx) + at).astype(np.int64)
        if len(distinct):
            codes[t] = code
        values += distinct.to_pylist()
        at += len(distinct)
    rows = (
        np.stack([codes[t] for t in by_name if t in codes]) if codes else np.zeros((0, len(events)))
    )
    combos: set[tuple[int, ...]] = set()
    pairs: set[tuple[int, int]] = set()
    for r in rows.T:
        ids = tuple(int(c) for c in r if c >= 0)
        if ids:
            combos.add(ids)
            pairs.update((a, b) for i, a in enumerate(ids) for b in ids[i + 1 :])
    return {"codes": codes, "values": values, "m": at, "combos": combos, "pairs": pairs}


@pytest.mark.parametrize("seed", range(12))
def test_code_identifiers_equal_the_plain_version(seed):
    n = [1, 2, 7, 40, 300, 2000][seed % 6]
    events = _events(seed, n)
    cols = list(events.columns)
    rng = np.random.default_rng(seed)
    cols = [cols[i] for i in rng.permutation(len(cols))]  # the caller's order is not by name
    want = _plain(events, cols)
    ci = code_identifiers(events, cols)
    assert ci.m == want["m"]
    assert ci.values.to_pylist() == want["values"]
    assert sorted(ci.row_codes) == sorted(want["codes"])
    for t, code in want["codes"].items():
        np.testing.assert_array_equal(ci.row_codes[t], code)
    all_codes = np.concatenate([c[c >= 0] for c in want["codes"].values()] or [np.zeros(0, int)])
    np.testing.assert_array_equal(ci.rows, np.bincount(all_codes, minlength=ci.m))
    got = {
        (int(a),) if a == b else (int(a), int(b))
        for a, b in zip(ci.combo_lo, ci.combo_hi, strict=True)
    }
    n_two = len(ci.combo_lo)
    for j in range(len(next(iter(ci.multi.values()), []))):
        got.add(tuple(sorted(int(c[j]) for c in ci.multi.values() if c[j] >= 0)))
    assert len(got) == n_two + len(next(iter(ci.multi.values()), []))  # each combination once
    assert got == want["combos"]
    assert set(zip(ci.pair_a.tolist(), ci.pair_b.tolist(), strict=True)) == want["pairs"]
    assert len(ci.pair_a) == len(want["pairs"])
    per_code = np.bincount([c for combo in want["combos"] for c in combo], minlength=ci.m)
    np.testing.assert_array_equal(ci.n_combos, per_code)
    for t, code in want["codes"].items():
        assert (ci.type_of_code[code[code >= 0]] == t).all()


def test_row_pass_marks_ones_keys_twos_and_lists_the_rest():
    codes = np.array(
        [[0, -1, 1, -1, 0, -1], [-1, -1, 0, 1, 1, -1], [-1, -1, -1, -1, 0, 0]], np.int32
    )
    alone, keys, multi = kernels.row_pass(codes, np.array([0, 2, 4]), 5)
    np.testing.assert_array_equal(codes[:, 4], [0, 3, 4])  # offsets added in place
    np.testing.assert_array_equal(codes[:, 1], [-1, -1, -1])
    np.testing.assert_array_equal(np.flatnonzero(alone), [0, 3, 4])  # rows 0, 3 and 5
    np.testing.assert_array_equal(keys, [1 * 6 + 2])  # row 2: codes 1 and 2
    np.testing.assert_array_equal(multi, [4])


def test_local_codes_reads_the_validity_bitmap_from_an_offset():
    full = pa.array(["b", None, "a", "b", None, "c", "a"])
    idx = pc.dictionary_encode(full).slice(1).indices  # dictionary b, a, c
    assert idx.offset == 1
    bufs = idx.buffers()
    indices = np.frombuffer(bufs[1], np.int32)[idx.offset : idx.offset + len(idx)]
    table = np.array([[1, 0], [0, 0], [-1, 0]], np.int32)  # b → 1, a → 0, c missing (as "")
    out = np.empty(len(idx), np.int32)
    kernels.local_codes(indices, np.frombuffer(bufs[0], np.uint8), idx.offset, table, out)
    np.testing.assert_array_equal(out, [-1, 0, 1, -1, -1, 0])
    np.testing.assert_array_equal(table[:, 1], [1, 2, 1])


@pytest.mark.parametrize("seed", range(6))
def test_number_components_and_row_persons_equal_numpy(seed):
    rng = np.random.default_rng(seed)
    m = [0, 1, 5, 50, 400, 3000][seed]
    label = rng.integers(0, max(m // 3, 1), m)
    blocked = rng.random(m) < 0.3
    person, n = kernels.number_components(label, blocked)
    # numpy: components numbered by their first (smallest) usable code
    usable = np.flatnonzero(~blocked)
    comps, first = np.unique(label[usable], return_index=True)
    comps = comps[np.argsort(usable[first], kind="stable")]
    of_label = np.zeros(max(int(label.max(initial=0)) + 1, 1), np.int64)
    of_label[comps] = np.arange(1, len(comps) + 1)
    np.testing.assert_array_equal(person, np.where(blocked, 0, of_label[label]))
    assert n == len(comps)
    codes = (
        rng.integers(-1, max(m, 1), (4, 200)).astype(np.int32)
        if m
        else np.full((4, 200), -1, np.int32)
    )
    want = np.zeros(200, np.int64)
    for c in codes:
        want = np.maximum(want, np.append(person, 0)[c])
    got = np.zeros(200, np.int64)
    for c in codes:
        kernels.raise_persons(got, c, person)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("seed", range(6))
def test_sort_strings_equals_arrow_on_long_shared_prefixes(seed):
    """Runs tied on 8, 16, 24 bytes (large and small runs), NUL bytes, prefixes of others."""
    rng = np.random.default_rng(seed)
    stems = ["", "dev-", "customer-000000-", "x" * 23, "a\x00"]
    values = {
        f"{rng.choice(stems)}{rng.integers(0, 10 ** rng.integers(1, 7))}"
        + "\x00" * int(rng.integers(0, 3))
        for _ in range(int(rng.integers(2, 3000)))
    }
    values |= {"dev-", "dev-1", "dev-1\x00"}
    arr = pa.array(sorted(values), pa.large_string() if seed % 2 else pa.string())
    arr = arr.take(pa.array(rng.permutation(len(arr))))
    offsets = np.frombuffer(arr.buffers()[1], np.int64 if seed % 2 else np.int32)
    got = kernels.sort_strings(
        offsets[: len(arr) + 1].astype(np.int64), np.frombuffer(arr.buffers()[2], np.uint8)
    )
    np.testing.assert_array_equal(got, pc.sort_indices(arr).to_numpy())


@pytest.mark.parametrize("seed", range(8))
def test_components_equal_scipy(seed):
    rng = np.random.default_rng(seed)
    m = [1, 2, 10, 100, 1000, 5000, 20000, 300][seed]
    n_pairs = int(rng.integers(0, 2 * m))
    a = rng.integers(0, m, n_pairs)
    b = rng.integers(0, m, n_pairs)
    keep = a < b
    a, b = a[keep], b[keep]
    usable = rng.random(m) < 0.8
    ok = usable[a] & usable[b]
    graph = coo_matrix((np.ones(int(ok.sum()), np.int8), (a[ok], b[ok])), shape=(m, m))
    want = connected_components(graph, directed=False)[1]
    np.testing.assert_array_equal(kernels.components(m, a, b, usable), want)


@pytest.mark.parametrize("seed", range(4))
def test_link_counts_equal_numpy(seed):
    rng = np.random.default_rng(seed)
    m, k = [1, 30, 500, 4000][seed], 6
    type_of_code = np.sort(rng.integers(0, k - 1, m)).astype(np.int8)  # type k - 1 unseen
    keys = np.unique(rng.integers(0, m * m, 3 * m))
    a, b = keys // m, keys % m
    a, b = a[a < b], b[a < b]
    counts, seen = kernels.link_counts(k, type_of_code, a, b)
    ta, tb = type_of_code[a], type_of_code[b]
    want = np.flatnonzero(np.bincount(np.concatenate([ta, tb]), minlength=k))
    np.testing.assert_array_equal(np.flatnonzero(seen), want)
    for t in want:
        np.testing.assert_array_equal(
            counts[t],
            np.bincount(a[tb == t], minlength=m) + np.bincount(b[ta == t], minlength=m),
        )
