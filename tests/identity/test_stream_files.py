"""Stitching on Parquet files in polars (identity.stream_files) against the in-memory stitch.

Truth: :func:`analysis.identity.stitch` on the same rows (both engines): every row's person and
the summary's counts must be equal, with the rows split over several files, some rows left out
of a file (as the streaming validation leaves out its suspects), and the traps of
``tests/identity/test_streaming_stitch.py`` (placeholders, super-nodes, data-driven
placeholders, chains, empty values, a column without values).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analysis.identity import stitch
from analysis.identity.stream_files import FileStitch, RowSource, stitch_files

from .test_streaming_stitch import COLS, SUMMED, _rows


def _files(ev: pd.DataFrame, folder, parts: int = 3, drop_every: int = 0):
    """Write ``ev`` as ``parts`` files (with an extra column and, if asked, rows to drop)."""
    sources, kept = [], []
    for k, idx in enumerate(np.array_split(np.arange(len(ev)), parts)):
        part = ev.iloc[idx].copy()
        part["other"] = "x"
        f = folder / f"part-{k}.parquet"
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False), f)
        drop = np.arange(0, len(idx), drop_every) if drop_every else None
        sources.append(RowSource(f, drop))
        keep = np.ones(len(idx), bool)
        if drop is not None:
            keep[drop] = False
        kept.append(idx[keep])
    return sources, np.concatenate(kept)


def _persons(fs: FileStitch, sources: list[RowSource]) -> pd.Series:
    got = np.concatenate([fs.persons(s.read()) for s in sources])
    return pd.Series(got, dtype="Int64", name="person_id").where(got > 0)


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
def test_file_stitch_equals_in_memory(tmp_path, seed, kwargs):
    ev = _rows(seed)
    sources, kept = _files(ev, tmp_path, drop_every=5 if seed else 0)
    fs = stitch_files(sources, COLS, **kwargs)
    assert fs is not None
    person = _persons(fs, sources)
    rows = ev.iloc[kept].reset_index(drop=True)
    for engine in ("duckdb", "polars"):
        mem = stitch(rows, identifiers=COLS, engine=engine, **kwargs)
        pd.testing.assert_series_equal(person, mem.events["person_id"].reset_index(drop=True))
        for k in (*SUMMED, "blocked_by_reason", "multi_identifier_persons", "largest_person"):
            assert fs.summary[k] == mem.summary[k], (engine, k)
    assert fs.summary["persons"] > 1 and fs.summary["merges"] > 0 and fs.summary["blocked"] > 0


def test_a_column_without_values_and_rows_without_identifiers(tmp_path):
    ev = _rows(2)
    ev["cookie_id"] = pd.array([None] * len(ev), dtype="str")
    ev.loc[::7, ["device_id", "user_id", "email_hash", "crm_id", "loyalty_id"]] = ""
    sources, _ = _files(ev, tmp_path)
    fs = stitch_files(sources, COLS)
    assert fs is not None
    person = _persons(fs, sources)
    mem = stitch(ev, identifiers=COLS, engine="duckdb")
    pd.testing.assert_series_equal(person, mem.events["person_id"].reset_index(drop=True))
    assert fs.summary["identifiers_by_type"] == mem.summary["identifiers_by_type"]
    assert person.isna().sum() >= len(ev) // 7


def test_no_identifier_at_all(tmp_path):
    ev = pd.DataFrame({"user_id": pd.array([None, "", None], dtype="str")})
    sources, _ = _files(ev, tmp_path, parts=2)
    fs = stitch_files(sources, ["user_id"])
    assert fs is not None
    assert (_persons(fs, sources).isna()).all() and fs.summary["persons"] == 0
    assert fs.summary["identifiers"] == 0


def test_a_value_hash_collision_falls_back(tmp_path, monkeypatch):
    import analysis.identity.stream_files as sf

    ev = _rows(0)
    sources, _ = _files(ev, tmp_path)
    real = sf.value_hashes

    def colliding(v):
        h = real(v).copy()
        h[1] = h[0]  # two values, one hash
        return h

    monkeypatch.setattr(sf, "value_hashes", colliding)
    assert stitch_files(sources, COLS) is None
    monkeypatch.setattr(sf, "value_hashes", real)
    assert stitch_files(sources, COLS) is not None


def test_a_combination_key_collision_is_caught():
    from analysis.identity.stream_files import _runs

    frame = {  # rows 0 and 2 share key 7 with other second keys: two combinations, one key
        "k": np.array([7, 3, 7], np.uint64),
        "k2": np.array([1, 2, 5], np.uint64),
        "len": np.ones(3, np.int64),
        "h0": np.array([10, 11, 12], np.uint64),
    }
    assert _runs(dict(frame), ["h0"]) is None
    frame["k2"] = np.array([1, 2, 1], np.uint64)  # one combination seen twice
    got = _runs(frame, ["h0"])
    assert got is not None
    combos, of_row = got  # in the order of their first row
    assert combos["k"].tolist() == [7, 3] and combos["len"].tolist() == [2, 1]
    assert combos["h0"].tolist() == [10, 11]
    assert of_row.tolist() == [0, 1, 0]  # every row's combination


def test_a_row_key_stitching_did_not_see_raises():
    """A row whose key is not among the combinations' (a file changed): an error, no neighbour."""
    import polars as pl

    from analysis.identity.stream_files import row_keys

    d = pl.DataFrame({"user_id": ["a", "b", "c", "d"]})
    k = row_keys(d, ["user_id"])
    order = np.argsort(k)
    keys, person = k[order], np.arange(1, 5, dtype=np.int64)[np.argsort(order)]
    seen = FileStitch(keys=keys[1:3], person=person[1:3], cols=["user_id"])
    rows = d[order[1:3].tolist()]  # the two middle keys: found
    assert seen.persons(rows).tolist() == person[1:3].tolist()
    backwards = FileStitch(keys=keys[1:3][::-1], person=person[1:3][::-1], cols=["user_id"])
    assert backwards.persons(rows).tolist() == person[1:3].tolist()  # keys in any order
    for unseen in (order[0], order[3]):  # before the first key, past the last
        with pytest.raises(RuntimeError, match="changed between reads"):
            seen.persons(d[[int(unseen)]])


@pytest.mark.parametrize("drop_every", [0, 4])
def test_source_persons_equal_persons_of_the_rows(tmp_path, drop_every):
    """source_persons(i, src): every row of source i (minus its drops), as persons() of its rows."""
    ev = _rows(1)
    sources, _ = _files(ev, tmp_path, drop_every=drop_every)
    fs = stitch_files(sources, COLS)
    assert fs is not None
    for i, s in enumerate(sources):
        want = fs.persons(s.read())
        got = fs.source_persons(i, s)
        assert got.dtype == np.int64 and len(got) == s.read().height
        np.testing.assert_array_equal(got, want)


def test_source_persons_from_the_callers_scans_need_no_read(tmp_path, monkeypatch):
    """Scans made by the caller (as the validation makes them): a take, no read; then a read."""
    from analysis.identity.stream_files import file_stamp, scan_frame

    ev = _rows(0)
    sources, _ = _files(ev, tmp_path, drop_every=3)
    scans = [scan_frame(s.read(COLS), COLS) for s in sources]
    for scan, s in zip(scans, sources, strict=True):
        scan.stamp = file_stamp(s.path)  # as the validation stamps them
    scans[1] = None  # this one read by stitch_files itself
    fs = stitch_files(sources, COLS, scans=scans)
    assert fs is not None
    want = [fs.persons(s.read()) for s in sources]
    reads = []
    real = RowSource.read
    monkeypatch.setattr(RowSource, "read", lambda s, c=None: reads.append(c) or real(s, c))
    for i, s in enumerate(sources):
        np.testing.assert_array_equal(fs.source_persons(i, s), want[i])
    assert reads == []  # every source's rows' combinations kept, its own read included
    np.testing.assert_array_equal(fs.source_persons(0, sources[0]), want[0])  # again: a read
    assert reads == [COLS]


def test_source_persons_of_a_changed_file_raises(tmp_path):
    ev = _rows(0)
    sources, _ = _files(ev, tmp_path)
    fs = stitch_files(sources, COLS)
    assert fs is not None
    src = RowSource(sources[0].path, np.array([0, 1]))  # two rows fewer than stitched
    with pytest.raises(RuntimeError, match="changed between reads"):
        fs.source_persons(0, src)


def test_source_persons_look_up_a_file_rewritten_with_as_many_rows(tmp_path):
    """Same row count, other identifiers: the stamp differs, so the rows are looked up (and
    their combinations were never seen); a scan with no stamp is looked up too."""
    import os

    from analysis.identity.stream_files import file_stamp, scan_frame

    path = tmp_path / "a.parquet"
    pq.write_table(pa.table({"user_id": ["a", "b", "c"], "email": ["x", "x", None]}), path)
    src, cols = RowSource(path), ["user_id", "email"]
    scan = scan_frame(src.read(cols), cols)
    scan.stamp = file_stamp(path)
    fs = stitch_files([src], cols, scans=[scan])
    assert fs is not None
    pq.write_table(pa.table({"user_id": ["zz", "yy", "c"], "email": ["q", "r", None]}), path)
    os.utime(path, ns=(scan.stamp[1] + 10**9, scan.stamp[1] + 10**9))  # a coarse clock
    with pytest.raises(RuntimeError, match="changed between reads"):
        fs.source_persons(0, src)
    unstamped = scan_frame(src.read(cols), cols)  # of the new file, no stamp
    fs = stitch_files([src], cols, scans=[unstamped])
    assert fs is not None
    pq.write_table(pa.table({"user_id": ["a", "b", "c"], "email": ["x", "x", None]}), path)
    with pytest.raises(RuntimeError, match="changed between reads"):
        fs.source_persons(0, src)


@pytest.mark.parametrize("n", [0, 1, 1000])
def test_group_keys_groups_on_the_key_and_checks_the_second(n):
    from analysis.identity import kernels

    rng = np.random.default_rng(n)
    k = rng.integers(0, 2**63, max(n // 3, 1), dtype=np.int64).astype(np.uint64)
    k = k[rng.integers(0, len(k), n)]
    k[: n // 2] &= np.uint64(0xF)  # many keys alike in their low bits: long probes
    k2 = k * np.uint64(3)
    group, first, count, ok = kernels.group_keys(k, k2, np.zeros(0, np.int64))
    assert ok and group.dtype == np.int32
    uniq, first_seen = np.unique(k, return_index=True)
    assert len(first) == len(uniq) and np.array_equal(np.sort(first), np.sort(first_seen))
    assert np.array_equal(first, np.sort(first))  # numbered by their first row
    np.testing.assert_array_equal(k[first][group], k)
    np.testing.assert_array_equal(count, np.bincount(group, minlength=len(first)))
    w = np.arange(n, dtype=np.int64) * 3
    summed = kernels.group_keys(k, k2, w)[2]  # weighed: the sum of each group's weights
    np.testing.assert_array_equal(summed, np.bincount(group, w, len(first)).astype(np.int64))
    if n:
        k2[-1] += np.uint64(1)  # one row with another second key than its group's first
        alone = bool(np.sum(k == k[-1]) == 1)  # its own first row: nothing to disagree with
        assert kernels.group_keys(k, k2, np.zeros(0, np.int64))[3] == alone


def test_dictionary_sorts_the_distinct_values_and_catches_collisions():
    """Values told apart by hash, checked exactly: a shared hash or a hash 0 gives None."""
    import polars as pl

    from analysis.identity.stream_files import _dictionary, value_hashes

    a, b = pl.Series(["b", "a", "ü", "ab"]), pl.Series(["a", "c", "ab", "B"])
    ha, hb = value_hashes(a), value_hashes(b)
    got = _dictionary([a, b], [ha, hb])
    assert got is not None
    v, h = got
    assert v.to_pylist() == ["B", "a", "ab", "b", "c", "ü"]  # byte-wise
    np.testing.assert_array_equal(h, value_hashes(v))
    other = hb.copy()
    other[1] = ha[0]  # "c" with the hash of "b" (another source)
    assert _dictionary([a, b], [ha, other]) is None
    same = ha.copy()
    same[1] = same[0]  # "a" with the hash of "b" (one source)
    assert _dictionary([a], [same]) is None
    zero = ha.copy()
    zero[2] = 0  # a value hashed as missing
    assert _dictionary([a, b], [zero, hb]) is None
    v0, h0 = _dictionary([], [])
    assert len(v0) == 0 and len(h0) == 0


@pytest.mark.parametrize("n", [0, 1, 500])
def test_find_keys_finds_every_key_and_tells_missing_from_unknown(n):
    from analysis.identity import kernels

    rng = np.random.default_rng(n)
    keys = np.unique(rng.integers(1, 2**63, n, dtype=np.int64)).astype(np.uint64)
    keys[: len(keys) // 2] &= np.uint64(0xFFFF_0000_0000_0000)  # alike in their low bits
    keys[: len(keys) // 2] |= np.uint64(1)
    keys = np.unique(keys)
    x = keys[rng.integers(0, max(len(keys), 1), 3 * n)] if len(keys) else keys[:0]
    x = np.concatenate([x, np.array([0, 2, 2**64 - 1], np.uint64)])  # missing, unknown ones
    out = np.empty(len(x), np.int32)
    kernels.find_keys(keys, x, out)
    np.testing.assert_array_equal(keys[out[: 3 * n]], x[: 3 * n])
    assert out[-3:].tolist() == [-1, -2, -2]


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_combo_pairs_counts_codes_and_lists_every_pair(dtype):
    from analysis.identity import kernels

    rng = np.random.default_rng(3)
    m, n = 40, 300
    cols = []
    for lo, hi in [(0, 10), (10, 25), (25, 40)]:  # codes ascend from column to column
        c = rng.integers(lo, hi, n).astype(dtype)
        c[rng.random(n) < 0.4] = -1
        cols.append(c)
    n_rows = rng.integers(1, 9, n).astype(np.int64)
    n_combos, rows, packed = kernels.combo_pairs(tuple(cols), n_rows, m)
    want_pairs = []
    for i in range(n):
        have = [int(c[i]) for c in cols if c[i] >= 0]
        for p, a in enumerate(have):
            want_pairs += [a * m + b for b in have[p + 1 :]]
        for a in have:
            assert a < m
    flat = np.concatenate(cols)
    w = np.tile(n_rows, len(cols))
    np.testing.assert_array_equal(n_combos, np.bincount(flat[flat >= 0], minlength=m))
    np.testing.assert_array_equal(rows, np.bincount(flat[flat >= 0], w[flat >= 0], m))
    assert packed.tolist() == want_pairs
