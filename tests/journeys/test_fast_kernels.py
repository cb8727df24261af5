"""The pieces of the fast journeys path against independent truth (numpy, Arrow, Python).

The parity tests (test_fast_parity.py) compare whole tables on small event tables, where every
column is one Arrow chunk and every person has a few rows; here the pieces meet what those
cannot: persons with many rows out of time order, columns in many chunks, missing codes in
paths, and more than 255 distinct values.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

from analysis.journeys import fast_kernels, fast_paths
from analysis.journeys.fast import sorted_rows, take_rows, touchpoint_cuts
from analysis.journeys.fast_paths import distinct_paths, join_paths, packs, text_order
from analysis.schema import PATH_SEP


def _order(person, lo, n_keys, us, index=np.int64):
    rng = np.random.default_rng(1)
    conv = rng.random(len(person)) < 0.3
    channel = rng.integers(-1, 9, len(person)).astype(np.int32)
    stage = rng.integers(-1, 4, len(person)).astype(np.int32)
    index = np.empty(0, index)
    order, *cols = fast_kernels.person_order(person, lo, n_keys, us, conv, channel, stage, index)
    ties = fast_kernels.time_order(*cols[:2], order, *cols[2:])
    for got, values in zip(cols, [person, us, conv, channel, stage], strict=True):
        np.testing.assert_array_equal(got, values[order])  # moved with the order
    return order, ties


@pytest.mark.parametrize("index", [np.int32, np.int64])  # the blocks' persons and rows
@pytest.mark.parametrize("n_persons", [3, 400, 70_000])  # blocks: 3, 200, 137
def test_order_by_person_then_time_matches_numpy(n_persons, index):
    rng = np.random.default_rng(7)
    n = 5_000
    person = rng.integers(10, 10 + n_persons, n)  # 3 persons: long segments
    us = rng.integers(0, 50, n) * 1_000  # many equal times
    order, ties = _order(person, 10, n_persons, us, index)
    np.testing.assert_array_equal(order, np.lexsort((np.arange(n), us, person)))  # stable
    assert ties


def test_index_like_is_int32_while_rows_and_persons_fit():
    assert fast_kernels.index_like(5_000, 2**31 - 1).dtype == np.int32
    assert fast_kernels.index_like(2**31, 10).dtype == np.int64
    assert fast_kernels.index_like(10, 2**31).dtype == np.int64


def test_time_order_reports_no_ties_when_times_differ():
    order, ties = _order(np.array([1, 2, 1, 2, 1]), 1, 2, np.array([50, 10, 20, 30, 40]))
    np.testing.assert_array_equal(order, [2, 4, 0, 1, 3])
    assert not ties


def _numpy_cuts(person, us, conv, gap):
    """The journey cut rule in numpy: starts a journey, journey, pos, journey_index."""
    n = len(person)
    first = np.r_[True, person[1:] != person[:-1]]
    new = first | np.r_[True, np.diff(us) >= gap] | np.r_[True, conv[:-1]]
    journey = np.cumsum(new) - 1
    person_start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    pos = np.arange(n) - person_start
    journey_index = journey - journey[person_start]
    return new, journey, pos, journey_index


@pytest.mark.parametrize("seed", [0, 1])
def test_touchpoint_cuts_match_numpy(seed):
    """The cuts per touchpoint (from the journeys' starts) against the rule in numpy."""
    rng = np.random.default_rng(seed)
    n = 4_000
    person = np.sort(rng.integers(1, 200, n))
    us = np.sort(rng.integers(0, 10**9, n))
    conv = rng.random(n) < 0.1
    stage = np.zeros(n, np.int32)
    gap = 5e7
    got = fast_kernels.journeys_and_runs(person, us, conv, stage, np.arange(n), us * 0.0, gap)
    cuts = touchpoint_cuts(got[0], got[1], n)
    for c, want in zip(cuts, _numpy_cuts(person, us, conv, gap), strict=True):
        np.testing.assert_array_equal(c, want)
    assert cuts[1][-1] > 200 and cuts[3].max() > 0
    empty = touchpoint_cuts(np.zeros(0, np.int64), np.zeros(0, np.int64), 0)
    assert all(len(c) == 0 for c in empty)


@pytest.mark.parametrize("seed", [0, 1])
def test_journeys_and_runs_match_numpy(seed):
    """One pass against the cut rule and the totals in numpy: journey totals and stage runs."""
    rng = np.random.default_rng(seed)
    n = 4_000
    person = np.sort(rng.integers(1, 200, n))
    us = np.sort(rng.integers(0, 10**9, n))  # in time order within every person
    conv = rng.random(n) < 0.1
    stage = rng.integers(-1, 4, n).astype(np.int32)
    order = rng.permutation(n)
    revenue = np.where(rng.random(n) < 0.3, np.nan, rng.random(n) * 100)
    gap = 5e7
    got = fast_kernels.journeys_and_runs(person, us, conv, stage, order, revenue, gap)
    start, journey_index, converted, paid, last_stage, at, journey, run_stage, frm = got
    new, jour, _, ji = _numpy_cuts(person, us, conv, gap)
    want_start = np.flatnonzero(new)
    np.testing.assert_array_equal(start, want_start)
    np.testing.assert_array_equal(journey_index, ji[want_start])
    np.testing.assert_array_equal(converted, np.logical_or.reduceat(conv, want_start))
    value = revenue[order]
    paid_rows = np.where(conv & ~np.isnan(value), value, 0.0)
    np.testing.assert_allclose(paid, np.add.reduceat(paid_rows, want_start), rtol=1e-12)
    staged = np.flatnonzero(stage >= 0)
    last = np.full(len(want_start), -1)
    np.maximum.at(last, jour[staged], staged)
    np.testing.assert_array_equal(last_stage, np.where(last >= 0, stage[last], -1))
    s, j = stage[staged], jour[staged]
    first = np.r_[True, j[1:] != j[:-1]]
    runs = first | np.r_[True, s[1:] != s[:-1]]
    np.testing.assert_array_equal(at, staged[runs])
    np.testing.assert_array_equal(journey, j[runs])
    np.testing.assert_array_equal(run_stage, s[runs])
    np.testing.assert_array_equal(frm, np.where(first, -1, np.r_[-1, s[:-1]])[runs])
    assert run_stage.dtype == np.int32 and len(start) > 100 and len(at) > len(start)


def _python_paths(codes, start, end, names):
    out = []
    for s, e in zip(start, end, strict=True):
        part = codes[s:e]
        out.append(None if (part < 0).any() else PATH_SEP.join(names[c] for c in part))
    return out


def test_join_paths_matches_python_join():
    rng = np.random.default_rng(3)
    names = ["email", "paid>search", "café ☕", "直接", "", 'say "hi"']
    codes = rng.integers(-1, len(names), 2_000)
    codes[codes < 0] = np.where(rng.random(int((codes < 0).sum())) < 0.9, 0, -1)
    cuts = np.sort(rng.choice(np.arange(1, len(codes)), 300, replace=False))
    start, end = np.r_[0, cuts], np.r_[cuts, len(codes)]
    got = join_paths(codes, start, end, pa.array(names))
    assert got.to_pylist() == _python_paths(codes, start, end, names)
    # empty paths: "" or missing
    empty = join_paths(codes, np.array([0, 5]), np.array([0, 6]), pa.array(names))
    assert empty.to_pylist() == ["", names[codes[5]] if codes[5] >= 0 else None]
    gone = join_paths(
        codes, np.array([0, 5]), np.array([0, 6]), pa.array(names), empty_missing=True
    )
    assert gone.to_pylist()[0] is None


@pytest.mark.parametrize("n_names", [4, 300])  # one byte per code, and two
def test_distinct_paths_number_equal_paths_alike(n_names):
    rng = np.random.default_rng(11)
    names = [f"c{i}" for i in range(n_names)]
    pool = [rng.integers(0, n_names, rng.integers(0, 4)) for _ in range(30)]
    chosen = [pool[i] for i in rng.integers(0, len(pool), 500)]
    codes = np.concatenate(chosen).astype(np.int64)
    lengths = np.array([len(c) for c in chosen])
    end = np.cumsum(lengths)
    start = end - lengths
    # non-contiguous ranges: every other path's first code left out
    start2 = np.where(np.arange(len(start)) % 2 == 0, np.minimum(start + 1, end), start)
    for s in (start, start2):
        paths = distinct_paths(codes, s, end, pa.array(names))
        text = paths.strings().to_pylist()
        assert text == _python_paths(codes, s, end, names)
        assert len(paths.text) == len(set(text))  # equal paths share a number


def test_take_rows_from_many_chunks_matches_arrow_take():
    rng = np.random.default_rng(5)
    values = [f"v{i}" if i % 7 else None for i in range(1_000)]
    chunks = np.split(np.arange(1_000), [100, 101, 450, 900])
    col = pa.chunked_array([pa.array([values[i] for i in c], pa.large_string()) for c in chunks])
    tbl = pa.table({"a": col, "b": pa.chunked_array([c.astype(np.int64) for c in chunks])})
    rows = rng.integers(0, 1_000, 700)
    got = take_rows(tbl, rows)
    assert got.column("a").to_pylist() == [values[i] for i in rows]
    assert got.column("b").to_pylist() == rows.tolist()
    assert take_rows(tbl, rows[:0]).num_rows == 0
    distinct = rng.permutation(1_000)[:600]  # one row per journey: sorted without a sort
    got = take_rows(tbl, distinct)
    assert got.column("a").to_pylist() == [values[i] for i in distinct]
    assert got.column("b").to_pylist() == distinct.tolist()


@pytest.mark.parametrize("distinct", [True, False])
def test_sorted_rows_sorts_and_puts_back(distinct):
    rng = np.random.default_rng(6)
    rows = rng.permutation(500)[:300] if distinct else rng.integers(0, 500, 300)
    wanted, back = sorted_rows(rows, 500)
    np.testing.assert_array_equal(wanted, np.sort(rows))
    np.testing.assert_array_equal(wanted[back.to_numpy()], rows)


@pytest.mark.parametrize(
    "names",
    [
        ["social", "social_paid", "email", "Email", "直接", "café", "", "x"],  # safe prefixes
        ["a", "a b", "ab", "a\tb", "b"],  # "a" before " " and "\t": the texts are sorted
        [f"n{i:03d}" for i in range(300)],  # two bytes per rank
    ],
)
@pytest.mark.parametrize("max_len", [6, 40])  # packed: one word a path, or three
def test_text_order_is_the_order_of_the_texts(names, max_len):
    rng = np.random.default_rng(13)
    chosen = [rng.integers(0, len(names), rng.integers(0, max_len)) for _ in range(800)]
    if max_len > 16:  # long paths that share their first 16 codes (ties on the first word)
        head = rng.integers(0, len(names), 16)
        chosen += [np.r_[head, rng.integers(0, len(names), rng.integers(0, 20))] for _ in range(50)]
        chosen += [head[:16], head[:15]]
    codes = np.concatenate(chosen).astype(np.int64)
    lengths = np.array([len(c) for c in chosen])
    end = np.cumsum(lengths)
    paths = distinct_paths(codes, end - lengths, end, pa.array(names))
    text = paths.text.to_pylist()
    got = [text[i] for i in text_order(paths, pa.array(names))]
    assert got == sorted(text, key=str.encode)  # by bytes, as polars sorts strings


WARM_CHECK = """
import sys

import pandas as pd

import analysis
from analysis import synth
from analysis.journeys import fast_kernels as K

WITHOUT_PERSON = sys.argv[1] == "1"
K.warm_up()
kernels = {n: f for n, f in vars(K).items() if hasattr(f, "signatures")}
before = {n: list(f.signatures) for n, f in kernels.items()}
ev, _ = synth.generate(n_persons=300, seed=5)
if WITHOUT_PERSON:  # rows whose only identifier is a placeholder: no person
    ids = ["device_id", "cookie_id", "user_id", "email_hash", "crm_id", "loyalty_id"]
    extra = ev.iloc[:5].copy()
    extra[ids] = None
    extra["device_id"] = "unknown"
    extra["event_id"] = [f"x{i}" for i in range(len(extra))]
    ev = pd.concat([ev, extra], ignore_index=True)
st_ev = analysis.stitch_identities(ev)
assert st_ev["person_id"].isna().any() == WITHOUT_PERSON
jr = analysis.build_journeys(st_ev)
jr.journeys, jr.stage_transitions(by="segment"), jr.stage_durations(by="segment")
jr.channel_paths()
new = {n: [str(s) for s in f.signatures if s not in before[n]] for n, f in kernels.items()}
assert not any(new.values()), f"types warm_up does not load: {new}"
assert all(before[n] for n in ("person_order", "journeys_and_runs", "join_ranges")), before
"""


@pytest.mark.parametrize("without_person", [False, True])
def test_warm_up_loads_the_kernels_for_the_types_the_tables_pass(without_person):
    """In a fresh process: after warm_up, the tables call no kernel with other argument types.

    Also where some rows have no person (they are filtered out: the arrays are copies).
    """
    argv = [sys.executable, "-c", WARM_CHECK, str(int(without_person))]
    done = subprocess.run(argv, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]


def test_text_order_of_a_long_path_among_short_ones_takes_the_byte_keys(monkeypatch):
    """A 5,000-code path among short ones: ordered right, without packing (words per path)."""
    rng = np.random.default_rng(17)
    names = pa.array(["a", "b", "c", "email", "x"])
    chosen = [rng.integers(0, len(names), rng.integers(1, 8)) for _ in range(600)]
    chosen += [rng.integers(0, len(names), 5_000), np.r_[chosen[0], chosen[1]]]
    codes = np.concatenate(chosen).astype(np.int64)
    lengths = np.array([len(c) for c in chosen])
    end = np.cumsum(lengths)
    paths = distinct_paths(codes, end - lengths, end, names)
    short = distinct_paths(codes, (end - lengths)[:600], end[:600], names)
    assert packs(short) and not packs(paths)

    def no_packing(*args):
        raise AssertionError("packed_order for a long path")

    monkeypatch.setattr(fast_paths, "packed_order", no_packing)
    text = paths.text.to_pylist()
    got = [text[i] for i in text_order(paths, names)]
    assert got == sorted(text, key=str.encode)
