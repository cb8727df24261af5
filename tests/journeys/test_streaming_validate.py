"""The streaming pipeline's fast validation (analysis.journeys.stream_validate).

Truth: ``validate_events`` on all rows at once (the in-memory rules) and the per-batch
fallback of the same module, on data with rows that are clean only after normalisation, rows
that break a rule, and duplicates that a naive check would miss.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import analysis
from analysis.journeys import stream_checks, stream_validate
from analysis.journeys.streaming import build_journeys_streaming
from analysis.sources import validate_events
from analysis.sources.column_map.map import ColumnMap
from analysis.sources.column_map.parse import to_str


def _tricky(seed: int) -> pd.DataFrame:
    """Synthetic events, and then rows that only the exact rules judge right."""
    ev, _ = analysis.synth.generate(n_persons=120, seed=seed)
    ev = ev.reset_index(drop=True)
    ev.loc[0, "event_id"] = " " + ev.loc[1, "event_id"] + "\t"  # a duplicate after stripping
    ev.loc[2, "stage"] = ev.loc[2, "stage"].lower()  # normalised to the map's spelling: kept
    ev.loc[3, "segment"] = None  # set to "all": kept
    ev.loc[4, "channel"] = "em\x00ail"  # a control character removed: kept as "email"
    ev.loc[5, "user_id"] = "NA"  # a missing spelling
    ev.loc[6, "revenue"] = -1.0  # negative revenue
    ev.loc[7, "timestamp"] = pd.Timestamp("1970-01-01", tz="UTC")  # outside the window
    ev.loc[8, "touchpoint"] = " "  # empty touchpoint
    ev.loc[9, "sentiment"] = 4.0  # out of range
    ev.loc[10, "stage"] = "Nowhere"  # not a stage of the map
    ev.loc[11, "event_id"] = None  # generated as <file>:<row>
    ev.loc[12, "region"] = ""  # an empty extra attribute: missing
    ev = pd.concat([ev, ev.iloc[[20, 21]]], ignore_index=True)  # exact duplicates
    ev.loc[len(ev) - 1, "channel"] = "display"  # now only its event_id repeats
    return ev


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """Two files of tricky rows, through the fast path and the per-batch fallback."""
    folder = tmp_path_factory.mktemp("val") / "src"
    frames = []
    for k in range(2):
        ev = _tricky(seed=10 + k)
        (folder / f"part={k}").mkdir(parents=True)
        pq.write_table(
            pa.Table.from_pandas(ev, preserve_index=False), folder / f"part={k}" / "p.parquet"
        )
        frames.append(ev)
    runs = {
        fast: build_journeys_streaming(
            folder,
            partitions=2,
            workers=1,
            batch_rows=10**6,
            fast=fast,
            work_dir=folder.parent / f"work-{fast}",
        )
        for fast in (True, False)
    }
    return runs, frames


def _quarantine(sj) -> pd.DataFrame:
    files = sorted((sj.work_dir / "quarantine").glob("*.parquet"))
    q = pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)
    return q.sort_values(list(q.columns)).reset_index(drop=True)


def test_fast_path_is_taken_and_counts_match_the_fallback(both):
    runs, frames = both
    fast, slow = runs[True], runs[False]
    assert fast.summary["validation"] == "fast" and slow.summary["validation"] == "batches"
    for k in ("rows_read", "rows_kept", "rows_quarantined", "reasons", "persons", "journeys"):
        assert fast.summary[k] == slow.summary[k], k
    assert fast.summary["rows_read"] == sum(len(f) for f in frames)
    # the same reasons as validate_events on each file (the rules that span rows are per file)
    want: dict[str, int] = {}
    for ev in frames:
        for r, n in validate_events(ev).summary["reasons"].items():
            want[r] = want.get(r, 0) + n
    assert fast.summary["reasons"] == want
    for r in ("duplicate event_id", "exact duplicate", "negative revenue"):
        assert any(r in k for k in want), (r, want)


def test_quarantine_rows_and_messages_match_the_fallback(both):
    runs, frames = both
    a, b = _quarantine(runs[True]), _quarantine(runs[False])
    # the plausible window is the whole data's on the fast path (a batch's on the fallback)
    window = r"window .*? UTC"
    for q in (a, b):
        q["reason"] = q["reason"].str.replace(window, "window …", regex=True)
    pd.testing.assert_frame_equal(a, b)
    a = _quarantine(runs[True])
    whole = validate_events(pd.concat(frames, ignore_index=True)).quarantine["reason"]
    got = a.loc[a["reason"].str.contains("plausible window"), "reason"]
    assert len(got) == 2 and set(got) == set(whole[whole.str.contains("plausible window")])


def test_kept_rows_give_the_same_journeys(both):
    runs, _ = both
    fast, slow = runs[True], runs[False]
    pd.testing.assert_frame_equal(fast.stage_durations(), slow.stage_durations())
    pd.testing.assert_frame_equal(fast.channel_paths(), slow.channel_paths())
    pd.testing.assert_frame_equal(fast.stage_transitions(), slow.stage_transitions())


def test_timestamps_in_another_time_zone(tmp_path):
    """Typed Parquet with America/New_York timestamps: the fast path, as the fallback."""
    folder = tmp_path / "src"
    for k in range(2):
        ev = _tricky(seed=20 + k)
        ev["timestamp"] = ev["timestamp"].dt.tz_convert("America/New_York")
        (folder / f"part={k}").mkdir(parents=True)
        pq.write_table(
            pa.Table.from_pandas(ev, preserve_index=False), folder / f"part={k}" / "p.parquet"
        )
    kw = dict(partitions=2, workers=1, batch_rows=10**6)
    fast = build_journeys_streaming(folder, work_dir=tmp_path / "w1", **kw)
    slow = build_journeys_streaming(folder, work_dir=tmp_path / "w2", fast=False, **kw)
    assert fast.summary["validation"] == "fast"
    for k in ("rows_read", "rows_kept", "rows_quarantined", "reasons", "persons", "as_of"):
        assert fast.summary[k] == slow.summary[k], k
    assert "plausible window" in " ".join(fast.summary["reasons"])
    pd.testing.assert_frame_equal(fast.stage_durations(), slow.stage_durations())
    pd.testing.assert_frame_equal(fast.channel_paths(), slow.channel_paths())
    pd.testing.assert_frame_equal(fast.stage_transitions(), slow.stage_transitions())


# ------------------------------------------------------------------ the compiled text checks
SETTINGS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
#: Unicode white space, the control characters, tab, DEL and characters of 2, 3 and 4 bytes
_ODD_CHARS = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2005\u200a\u2028\u2029\u202f\u205f\u3000"
    "\x00\x01\x1c\x1f\x7f\u180e\u200b\ufeff\xe9\u0100\u20ac\u3001\U0001f600"
)
_CHARS = st.sampled_from(list(_ODD_CHARS) + list("aZ0-/#<>"))
_VALUES = st.one_of(
    st.none(),
    st.sampled_from(["", "NA", "nA", "null", "NULL", "None", "#N/A", "<na>", "NaT", "nan", "n/a"]),
    st.text(_CHARS, max_size=4),
    st.text(_CHARS, max_size=30),
    st.text(max_size=20),  # any code point
    st.builds(
        lambda a, b, c: a + b + c,
        st.text(_CHARS, max_size=2),
        st.text(),
        st.text(_CHARS, max_size=2),
    ),
)


def _old_plain(values: pl.Series, null_ok: bool) -> np.ndarray:
    """The regex check the compiled one replaces."""
    e = pl.col("v")
    expr = e.is_null() | stream_validate._plain(e) if null_ok else stream_validate._plain(e)
    return pl.DataFrame({"v": values}).select(expr.alias("x"))["x"].to_numpy()


def _series(values: list, chunks: int, cut: int) -> pl.Series:
    """``values`` as a polars text series in ``chunks`` chunks, sliced from ``cut`` rows on."""
    pieces = np.array_split(np.arange(len(values)), max(chunks, 1))
    parts = [pl.Series("v", [values[i] for i in p], dtype=pl.String) for p in pieces]
    s = parts[0]
    for p in parts[1:]:
        s = s.append(p)
    return s.slice(min(cut, len(s)))


@SETTINGS
@given(st.lists(_VALUES, max_size=60), st.integers(1, 3), st.integers(0, 3), st.booleans())
def test_plain_text_equals_the_regex_check(values, chunks, cut, null_ok):
    s = _series(values, chunks, cut)
    got = stream_checks.plain_text(s, stream_validate._missing(), null_ok)
    np.testing.assert_array_equal(got, _old_plain(s, null_ok))
    # Arrow text as it comes: views or offsets, sliced (an offset), in chunks
    want = _old_plain(s, null_ok)
    for t in (pa.string_view(), pa.large_string(), pa.string()):
        whole = pa.array([None, "x", *s.to_list()], t)
        for arr in (whole.slice(2), pa.chunked_array([whole.slice(2, 5), whole.slice(7)], t)):
            got = stream_checks.plain_text(arr, stream_validate._missing(), null_ok)
            np.testing.assert_array_equal(got, want)


def test_plain_text_knows_every_white_space_character():
    """Every code point alone, first and last (long text too): as Rust's ``\\s`` says."""
    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    for fmt in ("{}", "{}abc", "abc{}", "{}abcdefghijklmnop", "abcdefghijklmnop{}", "ab{}cd"):
        s = pl.Series("v", [fmt.format(c) for c in chars], dtype=pl.String)
        got = stream_checks.plain_text(s, [], null_ok=False)
        want = _old_plain(s, null_ok=False) | s.is_in(stream_validate._missing()).to_numpy()
        bad = np.flatnonzero(got != want)
        assert not len(bad), [hex(ord(chars[i])) for i in bad[:5]]
    assert not stream_checks.plain_text(pl.Series(["\u2000x", "x\u3000"]), [], True).any()


@SETTINGS
@given(
    st.lists(
        st.sampled_from(["a", "b", "c", "e1", "e2", "a-very-long-event-id-0001", None]), max_size=40
    )
)
def test_unique_values_equals_counting_rows(values):
    s = pl.Series("event_id", values, dtype=pl.String)
    among = s.is_not_null().to_numpy()
    want = (
        pl.DataFrame({"event_id": s}).select(pl.len().over("event_id") == 1).to_series().to_numpy()
    )
    np.testing.assert_array_equal(stream_checks.unique_values(s, among), want & among)


def test_unique_values_checks_colliding_hashes_exactly(monkeypatch):
    """Where every hash collided, the strings themselves decide: equal ids both suspects."""
    s = pl.Series("event_id", ["e1", "e2", "e1", "e3", "e22"], dtype=pl.String)
    among = np.ones(len(s), bool)
    want = np.array([False, True, False, True, True])
    np.testing.assert_array_equal(stream_checks.unique_values(s, among), want)
    monkeypatch.setattr(stream_checks, "repeated", lambda h, skip: ~skip)
    np.testing.assert_array_equal(stream_checks.unique_values(s, among), want)


def test_repeated_marks_every_row_of_a_repeated_hash():
    h = np.array([5, 7, 5, 9, 5, 7, 11], np.uint64)
    skip = np.array([False, False, False, False, False, True, False])
    got = stream_checks.repeated(h, skip)
    np.testing.assert_array_equal(got, [True, False, True, False, True, False, False])


def _old_few_checks(d: pl.DataFrame, rules) -> pl.Expr:
    """``few_checks`` as it was: ``unique`` of each column."""
    reserved = sorted(stream_validate.RESERVED_STATES)
    ok = pl.lit(True)
    for c, kind in rules.few.items():
        e = pl.col(c)
        if kind == "extra":
            good = (e != "") & ~e.str.contains(stream_validate._CONTROL)
        else:
            good = stream_validate._plain(e) & ~e.is_in(reserved)
        values = pl.DataFrame({c: d[c].unique().drop_nulls()})
        bad = values.filter(~good.fill_null(False))[c].to_list()
        if kind == "required":
            ok &= e.is_not_null()
        if len(bad):
            ok &= ~(e.is_not_null() & e.is_in(bad))
    return ok


def _old_clean_rows(d: pl.DataFrame, rules) -> np.ndarray:
    """``_clean_rows`` as it was: regex checks, ``pl.len().over("event_id")``, ``unique``."""
    ok = stream_validate._plain(pl.col("event_id")) & rules.row_checks()
    ok &= pl.col("stage").is_in(rules.stages).fill_null(False)
    for c in rules.ids:
        ok &= pl.col(c).is_null() | stream_validate._plain(pl.col(c))
    unique = pl.len().over("event_id") == 1
    expr = (ok & _old_few_checks(d, rules) & unique).fill_null(False)
    ok = d.select(expr.alias("ok"))["ok"]
    odd = d.filter(~ok)["event_id"].drop_nulls().to_pandas()
    norm = to_str(odd.astype("str")).dropna().unique().tolist()
    if norm:
        ok = ok & ~d["event_id"].is_in(norm).fill_null(False)
    return ok.to_numpy()


@pytest.mark.parametrize("seed", [10, 11])
def test_clean_rows_are_the_same_as_before(seed):
    ev = _tricky(seed)
    n = len(ev)
    ev.loc[30, "event_id"] = ev.loc[31, "event_id"]  # two equal event ids: both suspects
    ev.loc[40, "user_id"] = "\u3000" + str(ev.loc[40, "user_id"])  # ideographic space first
    ev.loc[41, "device_id"] = "dev\u2029"  # paragraph separator last
    ev.loc[42, "event_id"] = "ev\x7f42"  # DEL inside
    ev.loc[43, "email_hash"] = "mail\u00e9"  # a 2-byte character last: clean
    ev.loc[44, "crm_id"] = "\t" + "crm"  # tab first
    ev.loc[45, "loyalty_id"] = "l\toyal"  # tab inside: clean
    ev.loc[46, "stage"] = None  # no stage
    ev.loc[47, "channel"] = "NULL"  # a missing spelling
    ev.loc[48, "touchpoint"] = "a touchpoint longer than twelve bytes\u2028"  # white space last
    ev.loc[49, "region"] = "re\x1fgion"  # a control character in an attribute
    table = pa.Table.from_pandas(ev, preserve_index=False)
    cmap = ColumnMap.coerce(None)
    rules = stream_validate._Rules.of(table.schema, cmap)
    d = pl.from_arrow(table)
    got = stream_validate._clean_rows(d, rules).to_numpy()
    np.testing.assert_array_equal(got, _old_clean_rows(d, rules))
    assert not got[[0, 1, 20, 21, 30, 31, 40, 41, 42, 44, 46, 47, 48, 49, n - 2, n - 1]].any()
    assert got[[43, 45]].all() and got.sum() > n // 2


@SETTINGS
@given(
    st.lists(
        st.one_of(_VALUES, st.sampled_from(["email", "small_business", "x" * 13])), max_size=60
    ),
    st.integers(1, 3),
    st.integers(0, 3),
)
def test_distinct_values_are_those_of_unique(values, chunks, cut):
    s = _series(values, chunks, cut)
    want = set(s.unique().drop_nulls().to_list())
    assert set(stream_checks.distinct_values(s).to_list()) == want
    assert set(stream_checks.distinct_values(s, cap=2).to_list()) == want  # polars' unique
    buf = io.BytesIO()
    pl.DataFrame({"v": s}).write_parquet(buf)
    buf.seek(0)
    t = pl.read_parquet(buf)["v"]  # as read: one place per distinct text
    assert set(stream_checks.distinct_values(t).to_list()) == want
    # the bytes of a view past a short text are not the text's: garbage there changes nothing
    arr = s.to_arrow(compat_level=pl.CompatLevel.newest())
    arr = arr.chunks[0] if isinstance(arr, pa.ChunkedArray) else arr
    if len(arr):
        views = np.frombuffer(arr.buffers()[1], np.uint8).reshape(-1, 16).copy()
        length = views[:, :4].copy().view(np.int32)[:, 0]
        rng = np.random.default_rng(len(arr))
        for i in np.flatnonzero(length <= 12):
            views[i, 4 + length[i] :] = rng.integers(0, 256, 12 - length[i])
        valid = arr.buffers()[0]
        valid = np.frombuffer(valid, np.uint8) if valid is not None else np.zeros(0, np.uint8)
        rows = stream_checks.view_distinct(
            views.reshape(-1).view(np.uint64), valid, arr.offset, len(arr), 4096
        )
        got = s.gather(pl.Series(rows))
        assert set(got.to_list()) == want - {None}
        short = got.filter(got.str.len_bytes() <= 12)  # inline: once each, garbage or not
        assert short.n_unique() == len(short)


@pytest.mark.parametrize("pos", [0, 4095, 4096, 9999])
@pytest.mark.parametrize(
    ("byte", "control"),
    [(0, True), (9, False), (0x0A, True), (0x1F, True), (0x20, False), (0x7F, True), (0x80, False)],
)
def test_has_control_finds_a_control_byte_anywhere(pos, byte, control):
    data = np.full(10_000, ord("a"), np.uint8)
    data[pos] = byte
    assert stream_checks.has_control(data) == control
    assert not stream_checks.has_control(data[:0])
