"""Integer codes of the identifiers and their distinct combinations (steps 1 and 2 of :mod:`.fast`).

Each identifier column is dictionary-encoded by Arrow (one hash pass over the rows; a column
per thread); only the distinct values are sorted (:func:`sort_order`), and a row's rank is a
lookup of its dictionary index (:func:`.kernels.local_codes`). The columns take consecutive
code ranges in the order of their names, so a code orders as (type, value) does on the
engine path; one compiled pass over the rows (:func:`.kernels.row_pass`) adds the ranges
and finds each row's combination key.

The distinct identifier combinations come from one hash unique on a 64-bit key: a row with
one or two identifiers is the pair (smallest code, largest code) packed as ``lo * (m + 1) +
hi``, which names its combination exactly because a row holds at most one value per column.
Rows with three or more identifiers (few) are made distinct on their code columns. From the
combinations come the number of combinations of each identifier and the distinct pairs of
identifiers seen together, from which link counts and components follow.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from analysis.errors import DataError
from analysis.identity import kernels


@dataclass
class CodedIdentifiers:
    """The identifiers of the rows as integer codes, and their distinct combinations.

    Attributes
    ----------
    cols : list of str
        The identifier columns, in the caller's order (a type is a position in it).
    n_rows : int
        The number of rows.
    row_codes : dict of int to numpy.ndarray
        Per column with values (by position in ``cols``): every row's code, -1 where missing.
    values : pyarrow.Array
        The identifier value of every code.
    type_of_code : numpy.ndarray
        Per code, the position of its column in ``cols``.
    rows, n_combos : numpy.ndarray
        Per code, the rows and the distinct combinations it appears in.
    pair_a, pair_b : numpy.ndarray
        The distinct pairs of identifiers seen on one row (``pair_a < pair_b``).
    combo_lo, combo_hi : numpy.ndarray
        The distinct combinations of one or two identifiers: their smallest and largest code
        (equal for one identifier).
    multi : dict of int to numpy.ndarray
        The distinct combinations of three or more identifiers: per column with values, the
        code of each (-1 where missing).
    """

    cols: list[str]
    n_rows: int
    row_codes: dict[int, np.ndarray]
    values: pa.Array
    type_of_code: np.ndarray
    rows: np.ndarray
    n_combos: np.ndarray
    pair_a: np.ndarray
    pair_b: np.ndarray
    combo_lo: np.ndarray
    combo_hi: np.ndarray
    multi: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def m(self) -> int:
        """The number of identifiers."""
        return len(self.values)

    def combo_codes(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the (combination, code) pairs of every distinct combination."""
        n2 = len(self.combo_lo)
        two = self.combo_hi != self.combo_lo
        combo = [np.arange(n2), np.flatnonzero(two)]
        code = [self.combo_lo, self.combo_hi[two]]
        for c in self.multi.values():
            combo.append(n2 + np.flatnonzero(c >= 0))
            code.append(c[c >= 0])
        return np.concatenate(combo), np.concatenate(code).astype(np.int64)


def _text(events: pd.DataFrame, c: str) -> pa.ChunkedArray:
    """Return column ``c`` as Arrow text (a numeric CRM id becomes its text), not copied."""
    s = events[c]
    if not (pd.api.types.is_string_dtype(s) or s.dtype == object):
        s = s.astype("str")
    arr = getattr(s.array, "_pa_array", None)
    if arr is None:
        try:
            arr = pa.array(s, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed objects: their text
            arr = pa.array(s.astype("str"), from_pandas=True)
    if not isinstance(arr, pa.ChunkedArray):
        arr = pa.chunked_array([arr])
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = arr.cast(pa.large_string())
    return arr


def sort_order(values: pa.Array) -> np.ndarray:
    """Return the permutation that sorts the distinct strings ``values`` byte-wise.

    The order of ``pyarrow.compute.sort_indices`` (and of the engine's), found by sorting
    numbers (:func:`.kernels.sort_strings`): the first 8 bytes of each string; only the
    strings still tied take the next 8 bytes, sorted within their ties, and so on; strings
    equal up to the padding go by length.
    """
    if len(values) < 2:
        return np.arange(len(values), dtype=np.int64)
    offsets, data = _string_buffers(values)
    return kernels.sort_strings(offsets, data)


def _code_column(arr: pa.ChunkedArray, out: np.ndarray) -> tuple[np.ndarray, pa.Array]:
    """Write each row's rank in its column to ``out`` (-1: missing or empty).

    One hash pass (Arrow's dictionary encoding), the distinct values sorted, then one pass
    over the rows (:func:`.kernels.local_codes`). Returns the rows of each rank and the values
    in rank order.
    """
    enc = pc.dictionary_encode(arr)
    chunks = enc.chunks
    dictionary = chunks[-1].dictionary if chunks else pa.array([], pa.large_string())
    if any(len(c.dictionary) != len(dictionary) for c in chunks):
        # one memo table serves every chunk, so the dictionaries agree; if not, unify them
        chunks = [pc.dictionary_encode(arr.combine_chunks())]
        dictionary = chunks[0].dictionary
    order = sort_order(dictionary)
    if len(order):
        empty = pc.index(dictionary, "").as_py()
        if empty >= 0:
            order = order[order != empty]
    table = np.zeros((len(dictionary), 2), out.dtype)  # per value: rank, rows
    table[:, 0] = -1
    table[order, 0] = np.arange(len(order), dtype=out.dtype)
    at = 0
    for c in chunks:
        idx = c.indices
        bufs = idx.buffers()
        valid = np.frombuffer(bufs[0], np.uint8) if bufs[0] is not None else _NO_BITS
        indices = np.frombuffer(bufs[1], np.int32)[idx.offset : idx.offset + len(idx)]
        kernels.local_codes(indices, valid, idx.offset, table, out[at : at + len(idx)])
        at += len(idx)
    out[at:] = -1  # no chunk: no rows
    rows = table[order, 1].astype(np.int64)
    return rows, dictionary.take(pa.array(order)).cast(pa.string())


_NO_BITS = np.zeros(0, np.uint8)


def _string_buffers(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Return the offsets (``len(values) + 1``, as int64) and the data bytes of strings."""
    bufs = values.buffers()
    off_type = np.int64 if pa.types.is_large_string(values.type) else np.int32
    n = len(values)
    offsets = np.frombuffer(bufs[1], off_type)[values.offset : values.offset + n + 1]
    data = np.frombuffer(bufs[2], np.uint8) if bufs[2] is not None else _NO_BITS
    return offsets.astype(np.int64), data


@dataclass
class CodedColumns:
    """Step 1 of :func:`code_identifiers`: the values of every column, ranked.

    Attributes
    ----------
    cols : list of str
        The identifier columns, in the caller's order.
    by_name : list of int
        The positions in ``cols`` in the order of the column names (the order of the codes).
    ranks : numpy.ndarray
        Per column by name, every row's rank in its column (-1: missing); :func:`combinations`
        turns them into codes in place.
    sizes : list of int
        Per column by name, its number of distinct values.
    values : pyarrow.Array
        The value of every code (the columns' sorted values, one after the other).
    rows : numpy.ndarray
        Per code, the rows it appears in.
    """

    cols: list[str]
    by_name: list[int]
    ranks: np.ndarray
    sizes: list[int]
    values: pa.Array
    rows: np.ndarray


def code_columns(events: pd.DataFrame, cols: list[str]) -> CodedColumns:
    """Rank the values of every identifier column (a column per thread); see :class:`CodedColumns`."""
    by_name = sorted(range(len(cols)), key=lambda i: cols[i])
    n = len(events)
    dtype = np.int32 if max(len(cols), 1) * n < 2**31 - 1 else np.int64
    ranks = np.empty((len(cols), n), dtype)  # per column by name, then per row
    # Arrow's hash kernel and the compiled loops release the GIL: a column per thread
    with ThreadPoolExecutor(max_workers=min(len(cols), os.cpu_count() or 1) or 1) as pool:
        coded = list(
            pool.map(
                lambda j: _code_column(_text(events, cols[by_name[j]]), ranks[j]), range(len(cols))
            )
        )
    sizes = [len(rows) for rows, _ in coded]
    return CodedColumns(
        cols=cols,
        by_name=by_name,
        ranks=ranks,
        sizes=sizes,
        values=pa.concat_arrays([v for _, v in coded]) if coded else pa.array([], pa.string()),
        rows=np.concatenate([rows for rows, _ in coded]) if coded else np.zeros(0, np.int64),
    )


def combinations(cc: CodedColumns) -> CodedIdentifiers:
    """Return the codes of the rows and their distinct combinations (step 2 of :mod:`.fast`).

    Turns ``cc.ranks`` into codes in place (they become ``row_codes``).
    """
    by_name, codes, sizes = cc.by_name, cc.ranks, cc.sizes
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    m = int(offsets[-1])
    if m >= 2**31 - 1:  # the packed keys and pairs below would overflow
        raise DataError(
            f"{m:,} distinct identifier values are more than one machine's stitching takes",
            column=", ".join(cc.cols),
            fix="build the journeys with analysis.build_journeys_streaming or on Spark",
        )
    alone, key, multi_rows = kernels.row_pass(codes, offsets[:-1], m)
    with_values = [j for j, size in enumerate(sizes) if size]
    lo, hi = _key_codes(alone, key, m)
    multi = _distinct_rows({by_name[j]: codes[j][multi_rows] for j in with_values})
    n_combos = np.bincount(lo, minlength=m) + np.bincount(hi[hi != lo], minlength=m)
    for c in multi.values():
        n_combos += np.bincount(c[c >= 0], minlength=m)
    pair_a, pair_b = _pairs(lo, hi, [multi[by_name[j]] for j in with_values if multi], m)
    return CodedIdentifiers(
        cols=cc.cols,
        n_rows=codes.shape[1],
        row_codes={by_name[j]: codes[j] for j in with_values},
        values=cc.values,
        type_of_code=np.repeat(np.array(by_name, np.int8), sizes),
        rows=cc.rows,
        n_combos=n_combos.astype(np.int64),
        pair_a=pair_a,
        pair_b=pair_b,
        combo_lo=lo,
        combo_hi=hi,
        multi=multi,
    )


def code_identifiers(events: pd.DataFrame, cols: list[str]) -> CodedIdentifiers:
    """Return the identifiers numbered by (type name, value) and their distinct combinations."""
    return combinations(code_columns(events, cols))


def _key_codes(alone: np.ndarray, key: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (lo, hi) of the distinct combinations: the identifiers seen alone, the keys'."""
    uniq = pl.Series(key).unique().to_numpy()
    single = np.flatnonzero(alone)
    return (
        np.concatenate([single, (uniq // np.uint64(m + 1)).astype(np.int64)]),
        np.concatenate([single, (uniq % np.uint64(m + 1)).astype(np.int64)]),
    )


def _distinct_rows(cols: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """Return the distinct rows of the code columns ``cols`` (a hash unique)."""
    if not cols or not len(next(iter(cols.values()))):
        return {}
    uniq = pl.DataFrame({str(t): c for t, c in cols.items()}).unique()
    return {t: uniq[str(t)].to_numpy().astype(np.int64) for t in cols}


def _pairs(
    lo: np.ndarray, hi: np.ndarray, multi: list[np.ndarray], m: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return the distinct pairs (a < b) of identifiers in one combination.

    ``multi``: the combinations of three or more identifiers, per column by name.
    """
    two = hi != lo
    packed = [lo[two] * m + hi[two]]
    for i, a in enumerate(multi):
        for b in multi[i + 1 :]:
            both = (a >= 0) & (b >= 0)
            packed.append(a[both] * m + b[both])
    keys = np.concatenate(packed)
    if len(packed) > 1:  # the pairs of the larger combinations may repeat
        keys = pl.Series(keys).unique().to_numpy()
    return keys // max(m, 1), keys % max(m, 1)
