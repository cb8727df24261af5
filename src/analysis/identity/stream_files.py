"""Stitching out of core on Parquet files, in polars: one read of the identifier columns a file.

:func:`stitch_files` applies the rules of :func:`analysis.identity.stitch` to rows that lie in
Parquet files (each file minus some rows, e.g. the suspects of the streaming validation) without
an engine and without holding the rows:

1. each file's identifier columns are read (a few files at a time, in threads); every value
   gets a 64-bit hash (0: missing, an empty value is missing), every row the hash of its
   values' hashes (its combination's key); the file's distinct combinations (their value
   hashes, key and rows), every row's combination (a position among those) and each
   column's distinct values with their hashes are kept (not the rows' keys);
2. the combinations of all files are grouped on their keys (a key must come with one second
   key); per column the files' distinct values are told apart by their hashes, then the
   distinct ones sorted byte-wise in memory (polars' string sort: the order of
   :func:`.fast_codes.sort_order` and of the engine path) and numbered in the order of the
   columns' names, so a code orders as (type, value); each combination's codes are a join
   of its value hashes on the values' hashes;
3. the guards, components and persons are :func:`.streaming.solve_codes`' (the functions of
   :mod:`.fast` and :mod:`.guards`): the persons are :func:`~analysis.identity.stitch`'s, numbered
   the same way.

Hash collisions are checked, never assumed away: within a column, the distinct values must have
distinct hashes (none 0), checked exactly (every value seen equals the first value seen with
its hash); a combination (a tuple of value hashes) has two
independent 64-bit keys, and no key ``k`` may come with two second keys ``k2`` (the distinct
count of ``k`` equals that of ``(k, k2)``: two combinations sharing ``k`` would have to
share ``k2`` too to pass, a 128-bit collision). If either fails, :func:`stitch_files`
returns None and the caller stitches on the engine (:func:`.streaming.stitch_table`).

A row's person is a take where its source was scanned (:meth:`FileStitch.source_persons`:
its row's combination, that combination's position among all, its person), else a lookup of
its key (:meth:`FileStitch.persons`: :func:`row_keys`, hashed again on a second read) among the
combinations' keys (sorted).
"""

from __future__ import annotations

import ctypes
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from analysis.identity import kernels
from analysis.identity.streaming import Lap, StitchRules, flag_arrays, solve_codes, stitch_summary

log = logging.getLogger(__name__)

#: Seeds of the value hash and of the combination's two keys (any fixed three).
VALUE_SEED, KEY_SEED, KEY2_SEED = 0x5EED_CAFE, 0xC0FF_EE17, 0x0DDB_A11


#: No weights for :func:`.kernels.group_keys`: a row counts 1.
_NO_WEIGHTS = np.zeros(0, np.int64)


def hash64(e: pl.Expr, seed: int) -> pl.Expr:
    """Return the 64-bit hash (UInt64) of expression ``e`` with ``seed``: values and keys alike.

    The one hash of this module (tests replace it by a few-bit one to force collisions).
    """
    return e.hash(seed)


@dataclass
class Scan:
    """What :func:`scan_frame` found in the rows of one source.

    Attributes
    ----------
    combos : dict of str to numpy.ndarray, or None
        The distinct combinations: keys ``k`` and ``k2``, rows ``len``, value hashes ``h0``,
        ``h1``, … (None: two combinations share a key ``k``).
    values : list of polars.Series
        Per column, its distinct values (text, no missing one).
    hashes : list of numpy.ndarray
        Per column, the hashes of ``values`` (uint64).
    row : numpy.ndarray or None
        Per row, its combination's position in ``combos`` (int32; None with ``combos``).
    stamp : tuple of int, optional
        The file's size and modification time (ns) before it was read (:func:`file_stamp`):
        :meth:`FileStitch.source_persons` takes the rows' persons from ``row`` only if the
        file still has them.
    """

    combos: dict[str, np.ndarray] | None
    values: list[pl.Series]
    hashes: list[np.ndarray]
    row: np.ndarray | None = None
    stamp: tuple[int, int] | None = None


def file_stamp(path: Path) -> tuple[int, int]:
    """Return a file's size and modification time in ns: whether it changed between reads."""
    st = Path(path).stat()
    return st.st_size, st.st_mtime_ns


@dataclass
class RowSource:
    """Rows of one Parquet file: every row but those at the 0-based positions ``drop``."""

    path: Path
    drop: np.ndarray | None = None

    def read(self, columns: list[str] | None = None) -> pl.DataFrame:
        """Return the rows (``columns`` of them, default all) as a polars frame."""
        d = pl.read_parquet(self.path, columns=columns, hive_partitioning=False)
        if self.drop is not None and len(self.drop):
            keep = np.ones(d.height, bool)
            keep[self.drop] = False
            d = d.filter(pl.Series(keep))
        return d


@dataclass
class FileStitch:
    """What :func:`stitch_files` found.

    Attributes
    ----------
    keys : numpy.ndarray
        The distinct combinations' keys (uint64).
    person : numpy.ndarray
        Per combination, its person (int64; 0: none, every identifier blocked or missing).
    cols : list of str
        The identifier columns stitched on (a row's key: :func:`row_keys` of them).
    summary : dict
        As :class:`.streaming.TableStitch`'s.
    """

    keys: np.ndarray
    person: np.ndarray
    cols: list[str]
    summary: dict[str, Any] = field(default_factory=dict)
    #: Per source, its rows' combinations (:attr:`Scan.row`) and the positions of those in
    #: ``keys`` (None where not kept: :meth:`source_persons` reads the rows again).
    rows: list[np.ndarray | None] = field(default_factory=list, repr=False)
    combos: list[np.ndarray | None] = field(default_factory=list, repr=False)
    stamps: list[tuple[int, int] | None] = field(default_factory=list, repr=False)
    _sorted: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    def persons(self, d: pl.DataFrame) -> np.ndarray:
        """Return the person (int64; 0: none) of every row of ``d``: its key, a sorted lookup.

        Raises
        ------
        RuntimeError
            A row's key is not among the combinations' (the file changed between reads).
        """
        q = row_keys(d, self.cols)
        if not len(q):
            return np.zeros(0, np.int64)
        if self._sorted is None:  # the first lookup sorts the keys (and persons) once
            by_key = pl.Series(self.keys).arg_sort().to_numpy()
            self._sorted = (self.keys[by_key], self.person[by_key])
        keys, person = self._sorted
        order = np.argsort(q)
        pos = np.empty(len(q), np.int64)
        pos[order] = np.searchsorted(keys, q[order])  # sorted needles: cache-friendly
        pos = np.minimum(pos, len(keys) - 1)
        missing = np.flatnonzero(keys[pos] != q)
        if len(missing):
            raise RuntimeError(
                f"{len(missing):,} rows (first: row {int(missing[0])}) have a "
                "combination of identifiers that stitching did not see: the file changed "
                "between reads"
            )
        return person[pos]

    def source_persons(self, i: int, src: RowSource) -> np.ndarray:
        """Return the person (int64; 0: none) of every row of source ``i`` (``src``).

        In ``src.read()``'s row order. Where :func:`stitch_files` kept the source's rows'
        combinations (its scan), a take: no read, no hash; they go with the first call (a
        second one reads the identifiers again). Else the rows' identifiers are read and
        looked up (:meth:`persons`).

        Raises
        ------
        RuntimeError
            The file changed since its scan (its size or modification time, or its number of
            rows), or a row's combination was not seen (:meth:`persons`).
        """
        row = self.rows[i] if i < len(self.rows) else None
        at = self.combos[i] if i < len(self.combos) else None
        if row is None or at is None:
            return self.persons(src.read(self.cols))
        self.rows[i] = None
        stamp = self.stamps[i] if i < len(self.stamps) else None
        if stamp is None or stamp != file_stamp(src.path):  # unknown or changed: look up
            return self.persons(src.read(self.cols))
        n = pq.read_metadata(src.path).num_rows - (0 if src.drop is None else len(src.drop))
        if n != len(row):
            raise RuntimeError(
                f"{src.path} holds {n:,} rows to read, stitching saw {len(row):,}: the file "
                "changed between reads"
            )
        return self.person[at][row]


def trim_heap() -> None:
    """Hand the C heap's free pages back to the system (glibc's ``malloc_trim``; else nothing).

    Once glibc has raised its mmap threshold, numpy arrays of a few MB (a file's combinations)
    come from the heap, and freeing them leaves them resident: concatenating 252 files' parts
    then held both copies, 3.6 GB at 100M events, the run's peak.
    """
    try:  # the process's own symbols: libc's, with no ldconfig run to find it
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError, TypeError):  # not glibc: its allocator decides
        pass


def _runs(
    frame: dict[str, np.ndarray], hcols: list[str]
) -> tuple[dict[str, np.ndarray], np.ndarray] | None:
    """Return the distinct combinations of ``frame`` (keys ``k``, ``len``, value hashes).

    One pass of a hash table on the key ``k`` (:func:`.kernels.group_keys`; combinations in
    the order of their first row, whose value hashes they take, so the reads go forward):
    every row of a combination must hold its first row's second key ``k2`` (else two
    combinations share a key: None). Also returns every row's combination (its position
    among the distinct ones). Consumes ``frame`` column by column.
    """
    k, k2, n = frame.pop("k"), frame.pop("k2"), frame.pop("len")
    if len(k) >= 2**31:  # the kernel numbers them in int32: the engine groups them
        log.info("%s combinations of files: more than the kernel numbers", f"{len(k):,}")
        return None
    of_row, first, total, ok = kernels.group_keys(k, k2, n.astype(np.int64, copy=False))
    del k2, n
    if not ok:
        return None
    out = {"k": k[first]}
    del k
    for h in hcols:
        out[h] = frame.pop(h)[first]
    del first
    out["len"] = total.copy()
    return out, of_row


def _scan(src: RowSource, cols: list[str]) -> Scan:
    """Read one source's identifiers and scan them (:func:`scan_frame`), stamped."""
    stamp = file_stamp(src.path)
    scan = scan_frame(src.read(cols), cols)
    scan.stamp = stamp
    return scan


def _hashed(d: pl.DataFrame, cols: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Return ``d``'s identifiers as text (empty: missing), and their hashes and rows' keys."""
    d = d.select([pl.col(c).cast(pl.String) for c in cols])
    d = d.select([pl.when(pl.col(c) != "").then(pl.col(c)).alias(c) for c in cols])
    hcols = [f"h{i}" for i in range(len(cols))]
    hv = d.select(
        [
            pl.when(pl.col(c).is_not_null()).then(_value_hash(pl.col(c))).otherwise(0)
            .cast(pl.UInt64).alias(h)
            for c, h in zip(cols, hcols, strict=True)
        ]
    )  # fmt: skip
    hv = hv.with_columns(
        k=hash64(pl.struct(hcols), KEY_SEED), k2=hash64(pl.struct(hcols), KEY2_SEED)
    )
    return d, hv


def row_keys(d: pl.DataFrame, cols: list[str]) -> np.ndarray:
    """Return every row's combination key (uint64) of the identifiers ``cols`` of ``d``."""
    return _hashed(d, cols)[1]["k"].to_numpy()


def scan_frame(d: pl.DataFrame, cols: list[str]) -> Scan:
    """Return a frame's distinct combinations, each row's, and each column's distinct values.

    Public so that a pass that reads the rows anyway (the streaming validation) can scan them
    for :func:`stitch_files` (its ``scans``). The rows are grouped on their keys by
    :func:`.kernels.group_keys` (combinations in the order of their first row).
    """
    d, hv = _hashed(d, cols)
    values = [d[c].drop_nulls().unique() for c in cols]
    hashes = [value_hashes(v) for v in values]
    k, k2 = hv["k"].to_numpy(), hv["k2"].to_numpy()
    row, first, count, ok = kernels.group_keys(k, k2, _NO_WEIGHTS)
    if not ok:  # two combinations of this file share a key
        return Scan(None, values, hashes)
    combos = {"k": k[first], "k2": k2[first], "len": count.copy()}
    for i in range(len(cols)):
        combos[f"h{i}"] = hv[f"h{i}"].to_numpy()[first]
    return Scan(combos, values, hashes, row)


def _value_hash(e: pl.Expr) -> pl.Expr:
    """Return a value's hash: :func:`hash64` with :data:`VALUE_SEED`, as UInt64."""
    return hash64(e, VALUE_SEED).cast(pl.UInt64)


def value_hashes(v: pa.Array | pl.Series) -> np.ndarray:
    """Return the 64-bit hash of every value of ``v`` (as :func:`scan_frame` hashes them)."""
    return pl.DataFrame({"v": v}).select(_value_hash(pl.col("v")))["v"].to_numpy()


def _dictionary(
    values: list[pl.Series], hashes: list[np.ndarray]
) -> tuple[pa.Array, np.ndarray] | None:
    """Return a column's distinct values sorted byte-wise and their hashes; None on a collision.

    ``values``: every source's distinct values, ``hashes`` their hashes (both lists are
    emptied once read). The values are told
    apart by their hashes (:func:`.kernels.group_keys`); then, exactly, every value must equal
    the first of its hash (else two values share a hash) and no hash may be 0 (missing). Only
    the distinct values are sorted (polars sorts text byte-wise, Rust's order of ``str``, as
    :func:`.fast_codes.sort_order` does).
    """
    if not values:
        return pa.array([], pa.large_string()), np.zeros(0, np.uint64)
    if sum(len(h) for h in hashes) >= 2**31:  # the kernel numbers them in int32
        return None
    h_all = np.concatenate(hashes)
    v_all = pl.concat(values, rechunk=True)
    values.clear()  # the caller's lists: the files' values go now
    hashes.clear()
    group, first, _, _ = kernels.group_keys(h_all, h_all, _NO_WEIGHTS)
    h = h_all[first]
    del h_all
    if not h.all():
        return None
    at = first[group]  # every value's first of its hash
    del group
    again = np.flatnonzero(at != np.arange(len(at)))
    if len(again) and not (v_all.gather(again) == v_all.gather(at[again])).all():
        return None
    del at, again
    v = v_all.gather(first).sort().to_arrow().cast(pa.large_string())
    del v_all
    return v, value_hashes(v)  # hashed again: cheaper than an arg_sort of text


def _column(
    x: np.ndarray, values: list[pl.Series], hashes: list[np.ndarray], rules: Any, dtype: Any
) -> tuple[tuple[np.ndarray, np.ndarray], int, np.ndarray] | str:
    """Return one column's placeholder flags, its distinct values and its combinations' codes.

    ``x``: every combination's value hash (0: missing). The codes count from 0 (-1: missing).
    A string (the reason) where a hash collides or a value hash is not among the values'.
    """
    got = _dictionary(values, hashes)
    del values, hashes
    if got is None:
        return "two values share a 64-bit hash"
    v, h = got
    flags = rules.flag(v)  # placeholders judged here: the strings go now
    del v
    code = np.empty(len(x), dtype)
    kernels.find_keys(h, x, code)
    if (code == -2).any():  # a value hashed otherwise than in the files
        return "value hashes do not match"
    return flags, len(h), code


def _number(
    combos: dict[str, np.ndarray],
    values: list[list[pl.Series]],
    hashes: list[list[np.ndarray]],
    cols: list[str],
    rules: Any,
) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray, dict[int, np.ndarray]] | None:
    """Give the identifiers codes by (type name, value); return their flags, types, and codes.

    Per column in the order of the names: its distinct values sorted byte-wise take the next
    block of codes, judged as placeholders (``rules.flag``); every combination's code is a
    lookup of its value hash among the values' hashes (:func:`.kernels.find_keys`; -1:
    missing). Two columns at a time in threads (polars and the kernels release the GIL).
    None on a hash collision.
    """
    name_order = sorted(range(len(cols)), key=lambda i: cols[i])
    sizes = [sum(len(s) for s in values[i]) for i in range(len(cols))]
    dtype = np.int32 if sum(sizes) < 2**31 - 1 else np.int64
    todo = [i for i in name_order if sizes[i]]

    def one(i: int) -> tuple[tuple[np.ndarray, np.ndarray], int, np.ndarray] | str:
        vals, hs = values[i], hashes[i]
        values[i], hashes[i] = [], []
        return _column(combos.pop(f"h{i}"), vals, hs, rules, dtype)  # the hashes go once coded

    flags: list[tuple[np.ndarray, np.ndarray]] = []
    types: list[np.ndarray] = []
    codes: dict[int, np.ndarray] = {}
    offset = 0
    with ThreadPoolExecutor(2) as pool:  # at most two columns in the making and one done
        for i, got in zip(todo, pool.map(one, todo), strict=True):
            if isinstance(got, str):
                log.info("%s (%s): stitching on the engine", got, cols[i])
                pool.shutdown(cancel_futures=True)
                return None
            flag, n, code = got
            flags.append(flag)
            types.append(np.full(n, i, np.int8))
            if offset:
                code[code >= 0] += offset
            codes[i] = code
            offset += n
    flagged, type_of_code = flag_arrays(flags, types)
    return flagged, type_of_code, codes


def stitch_files(
    sources: list[RowSource],
    cols: list[str],
    *,
    threads: int = 2,
    scans: list[Scan | None] | None = None,
    **options: Any,
) -> FileStitch | None:
    """Stitch the rows of ``sources`` into persons, out of core, in polars and numpy.

    Parameters
    ----------
    sources : list of RowSource
        The rows: Parquet files (each minus some rows).
    cols : list of str
        Identifier columns (read as text; an empty value is missing).
    threads : int, default 2
        Files read at a time.
    scans : list, optional
        Per source (by position), its :func:`scan_frame` of the rows ``cols`` already made,
        or None: those sources are not read again. Used up: the scans' arrays are moved
        out (pass the list once and keep no other reference to it).
    **options
        As :func:`analysis.identity.stitch`'s (``max_links``, ``max_person_ids``, …).

    Returns
    -------
    FileStitch or None
        None where a 64-bit hash collides (see the module docstring): stitch on the engine.
    """
    rules = StitchRules.of(**options)
    seconds: dict[str, float] = {}
    lap = Lap(seconds)

    # 1. every file's rows' keys, distinct combinations and values
    pre: list[Scan | None] = list(scans or [])
    pre += [None] * (len(sources) - len(pre))
    log.info("%d of %d sources scanned already", sum(p is not None for p in pre), len(sources))
    del scans  # the caller's list goes with it (pass it, keep no other reference)

    def scan(i: int) -> Scan:
        got, pre[i] = pre[i], None
        return got if got is not None else _scan(sources[i], cols)

    with ThreadPoolExecutor(max(1, threads)) as ex:
        done = list(ex.map(scan, range(len(sources))))
    hcols = [f"h{i}" for i in range(len(cols))]
    parts = [s.combos for s in done]
    values = [[s.values[i] for s in done] for i in range(len(cols))]
    hashes = [[s.hashes[i] for s in done] for i in range(len(cols))]
    rows = [s.row for s in done]
    stamps = [s.stamp for s in done]
    del done
    got = None
    if all(p is not None for p in parts):
        sizes = [len(p["k"]) for p in parts if p is not None]
        frame = {}
        for c in ["k", "k2", "len", *hcols]:  # one at a time: the parts go as they are copied
            frame[c] = np.concatenate([p.pop(c) for p in parts if p is not None])
            trim_heap()  # the parts' pages go too (see trim_heap)
        del parts
        got = _runs(frame, hcols)
        del frame
    if got is None:
        log.info("two combinations share a 64-bit key: stitching on the engine")
        return None
    combos, of_row = got
    # per source, the positions of its combinations among all (views of one array)
    at = np.split(of_row, np.cumsum(sizes)[:-1]) if sizes else []
    del of_row
    n_combos = len(combos["k"])
    lap("combinations")

    # 2. identifiers numbered by (type name, value); every combination's codes
    numbered = _number(combos, values, hashes, cols, rules)
    if numbered is None:
        return None
    (ph, pat), type_of_code, codes = numbered
    n_rows = combos["len"].astype(np.int64)
    keys = combos["k"]
    del combos
    trim_heap()
    lap("identifiers")

    # 3. to 6. guards, components, persons
    person, summary = solve_codes(cols, rules, (ph, pat), type_of_code, n_rows, codes, lap)
    del codes, n_rows
    lap("persons")
    summary = stitch_summary(summary, n_combos, True, seconds)
    return FileStitch(
        keys=keys,
        person=person,
        cols=list(cols),
        summary=summary,
        rows=rows,
        combos=list(at),
        stamps=stamps,
    )
