r"""Compiled text checks of the streaming validation's fast path (:mod:`.stream_validate`).

- :func:`plain_text`: per value of a text column, whether ``to_str`` keeps it as it is: not
  empty, no control character (C0 but tab, and DEL), no Unicode white space first or last,
  not a missing spelling; the same as the regex check it replaces (``^\s|\s$|[...]``), in
  one pass over the column's Arrow buffers;
- :func:`unique_values`: per value, whether it occurs once in the column: a 64-bit hash of
  each value (polars'), the values whose hash repeats (:func:`repeated`) compared exactly;
- :func:`distinct_values`: the distinct values of a column of few of them, from its Arrow
  views (:func:`view_distinct`: text read from a Parquet dictionary lies in one place).

Each must give what the polars expression it replaces gives (``tests/journeys/
test_streaming_validate.py`` compares them on random text).

The loops are compiled with numba (``cache=True``: kept beside this module; ``nogil=True``).
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
import pyarrow as pa


@numba.njit(cache=True, nogil=True, inline="always")
def _space_at(a: np.ndarray, p: int, end: int) -> bool:
    """Whether the character at byte ``p`` of UTF-8 text ``a[:end]`` is Unicode white space.

    White_Space: U+0009-000D, 0020, 0085, 00A0, 1680, 2000-200A, 2028, 2029, 202F, 205F, 3000.
    """
    b0 = a[p]
    if b0 < 0x80:
        return b0 == 0x20 or (b0 >= 0x09 and b0 <= 0x0D)
    if b0 == 0xC2:
        if p + 1 >= end:
            return False
        b1 = a[p + 1]
        return b1 == 0x85 or b1 == 0xA0
    if b0 < 0xE1 or b0 > 0xE3 or p + 2 >= end:
        return False
    b1 = a[p + 1]
    b2 = a[p + 2]
    if b0 == 0xE1:
        return b1 == 0x9A and b2 == 0x80
    if b0 == 0xE3:
        return b1 == 0x80 and b2 == 0x80
    if b1 == 0x80:
        return (b2 >= 0x80 and b2 <= 0x8A) or b2 == 0xA8 or b2 == 0xA9 or b2 == 0xAF
    return b1 == 0x81 and b2 == 0x9F


@numba.njit(cache=True, nogil=True)
def has_control(data: np.ndarray) -> bool:
    """Whether bytes ``data`` hold a control byte (C0 but tab, or DEL).

    By blocks, so that it stops soon where there is one (a Parquet page's length prefixes).
    """
    for start in range(0, len(data), 4096):
        block = data[start : start + 4096]
        bad = 0
        for i in range(len(block)):  # a loop the compiler vectorises
            b = block[i]
            bad += ((b < 0x20) & (b != 0x09)) | (b == 0x7F)
        if bad:
            return True
    return False


@numba.njit(cache=True, nogil=True)
def plain_views(
    views8: np.ndarray,
    views32: np.ndarray,
    data: np.ndarray,
    base: np.ndarray,
    dirty: bool,
    valid: np.ndarray,
    offset: int,
    null_ok: bool,
    spell: np.ndarray,
    spell_at: np.ndarray,
    plain: np.ndarray,
) -> None:
    """Check one chunk of an Arrow string-view array, value by value (see :func:`plain_text`).

    ``views8``/``views32``: its views buffer as bytes and as int32 (16 bytes a view: the
    length, then the text itself up to 12 bytes, else a prefix, the number of the data buffer
    and the offset in it); ``data``: its data buffers one after the other, buffer ``k`` from
    ``base[k]``; ``dirty``: whether ``data`` holds a control byte (if not, only the texts
    held in the views are searched for one); ``valid``: its validity bitmap (empty: no
    nulls); ``offset``: its first view and bit. Writes ``plain[i]`` (a null: ``null_ok``).
    ``spell[spell_at[k]:spell_at[k + 1]]``: the missing spellings, as UTF-8.
    """
    has_valid = len(valid) > 0
    n_spell = len(spell_at) - 1
    longest = 0
    for k in range(n_spell):
        longest = max(longest, spell_at[k + 1] - spell_at[k])
    for i in range(len(plain)):
        j = offset + i
        if has_valid and not (valid[j >> 3] >> (j & 7)) & 1:
            plain[i] = null_ok
            continue
        length = views32[4 * j]
        if length <= 12:
            a = views8
            start = 16 * j + 4
        else:
            a = data
            start = base[views32[4 * j + 2]] + views32[4 * j + 3]
        end = start + length
        ok = length > 0
        if ok and (length <= 12 or dirty):
            for p in range(start, end):
                b = a[p]
                if (b < 0x20 and b != 0x09) or b == 0x7F:
                    ok = False
                    break
        if ok:
            last = end - 1
            while last > start and (a[last] & 0xC0) == 0x80:
                last -= 1
            ok = not _space_at(a, start, end) and not _space_at(a, last, end)
        if ok and length <= longest:
            for k in range(n_spell):
                s0 = spell_at[k]
                if spell_at[k + 1] - s0 != length:
                    continue
                same = True
                for q in range(length):
                    if a[start + q] != spell[s0 + q]:
                        same = False
                        break
                if same:
                    ok = False
                    break
        plain[i] = ok


@numba.njit(cache=True, nogil=True)
def repeated(hashes: np.ndarray, skip: np.ndarray) -> np.ndarray:
    """Return, per row, whether its hash occurs on another row (rows with ``skip`` left out)."""
    n = len(hashes)
    size = 1
    while size < 2 * n:
        size *= 2
    mask = np.uint64(size - 1)
    table = np.zeros(size, np.int32)  # row + 1; 0: empty
    out = np.zeros(n, np.bool_)
    for i in range(n):
        if skip[i]:
            continue
        h = hashes[i]
        slot = (h >> np.uint64(17)) & mask
        while True:
            r = table[slot]
            if r == 0:
                table[slot] = i + 1
                break
            if hashes[r - 1] == h:
                out[i] = True
                out[r - 1] = True
                break
            slot = (slot + np.uint64(1)) & mask
    return out


@numba.njit(cache=True, nogil=True)
def view_distinct(
    views: np.ndarray, valid: np.ndarray, offset: int, n: int, cap: int
) -> np.ndarray:
    """Return a row of each distinct view of a string-view array: each value at least once.

    ``views``: its views buffer as uint64, two a view: the length and up to 12 bytes of text
    (the bytes past the length not looked at), or for longer text the length, a prefix, the
    number of the data buffer and the offset in it (equal texts at two places: two views;
    text read from a Parquet dictionary is in one place). ``valid``: its validity bitmap
    (empty: no nulls); ``offset``: its first view and bit. Returns the rows (from 0, nulls
    left out), or ``[-1]`` if there are more than ``cap`` distinct views.
    """
    size = 16
    while size < 2 * cap:
        size *= 2
    mask = size - 1
    table = np.full(size, -1, np.int64)
    keys = np.empty((cap, 2), np.uint64)
    rows = np.empty(cap, np.int64)
    m = 0
    has_valid = len(valid) > 0
    for i in range(n):
        j = offset + i
        if has_valid and not (valid[j >> 3] >> (j & 7)) & 1:
            continue
        w0 = views[2 * j]
        length = np.int64(w0 & np.uint64(0xFFFFFFFF))
        w1 = views[2 * j + 1]  # > 12 bytes: the buffer and offset of the text (and its prefix)
        if length < 4:  # bytes 4 + length to 7 of the first word are not the value's
            w0 &= (np.uint64(1) << np.uint64(8 * (4 + length))) - np.uint64(1)
            w1 = np.uint64(0)
        elif length < 12:
            w1 &= (np.uint64(1) << np.uint64(8 * (length - 4))) - np.uint64(1)
        h = (w0 * np.uint64(0x9E3779B97F4A7C15)) ^ (w1 * np.uint64(0xBF58476D1CE4E5B9))
        slot = np.int64((h >> np.uint64(40)) & np.uint64(size - 1))
        while True:
            k = table[slot]
            if k < 0:
                if m == cap:
                    return np.full(1, -1, np.int64)
                table[slot] = m
                keys[m, 0] = w0
                keys[m, 1] = w1
                rows[m] = i
                m += 1
                break
            if keys[k, 0] == w0 and keys[k, 1] == w1:
                break
            slot = (slot + 1) & mask
    return rows[:m].copy()


def _spellings(missing: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Return the missing spellings as one UTF-8 byte array, and the start of each (and the end)."""
    coded = [m.encode() for m in missing]
    at = np.zeros(len(coded) + 1, np.int64)
    at[1:] = np.cumsum([len(c) for c in coded])
    return np.frombuffer(b"".join(coded) or b"\0", np.uint8)[: at[-1]].copy(), at


def plain_text(values: Any, missing: list[str], null_ok: bool) -> np.ndarray:
    """Return, per value of polars text series ``values``, whether ``to_str`` keeps it unchanged.

    Parameters
    ----------
    values
        A polars ``String`` series, or Arrow text (an array or a chunked array).
    missing
        The missing spellings (exact: every casing listed).
    null_ok
        The result for a null.

    Returns
    -------
    numpy bool array
        True where the value is not empty, holds no control character (C0 but tab, and DEL),
        starts and ends with a character that is not Unicode white space and is not one of
        ``missing``; ``null_ok`` where it is null.
    """
    import polars as pl

    if isinstance(values, pl.Series):
        arr = values.to_arrow(compat_level=pl.CompatLevel.newest())
    else:
        arr = values
    chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
    spell, at = _spellings(missing)
    plain = np.empty(len(values), np.bool_)
    pos = 0
    for c in chunks:
        if c.type != pa.string_view():
            c = c.cast(pa.string_view())
        n = len(c)
        if not n:
            continue
        bufs = c.buffers()
        valid = bufs[0] if bufs[0] is not None and c.null_count else None
        views32 = np.frombuffer(bufs[1], np.int32)
        bits = np.frombuffer(valid, np.uint8) if valid is not None else np.zeros(0, np.uint8)
        parts = [np.frombuffer(b or b"", np.uint8) for b in bufs[2:]]  # buffer k: parts[k]
        data = parts[0] if len(parts) == 1 else np.concatenate([np.zeros(0, np.uint8), *parts])
        base = np.zeros(len(parts) + 1, np.int64)
        base[1:] = np.cumsum([len(p) for p in parts])
        dirty = has_control(data)  # (polars' buffers may hold Parquet pages: then all are)
        plain_views(
            np.frombuffer(bufs[1], np.uint8),
            views32,
            data,
            base,
            dirty,
            bits,
            c.offset,
            null_ok,
            spell,
            at,
            plain[pos : pos + n],
        )
        pos += n
    return plain


def unique_values(values: Any, among: np.ndarray) -> np.ndarray:
    """Return, per row of polars text series ``values``, whether its value occurs once.

    Only the rows ``among`` count (the others get False): equal values must be all in or all
    out. The values are hashed (64 bits); those whose hash repeats are compared exactly.
    """
    import polars as pl

    if len(values) >= 2**31 - 1:  # rows are numbered in int32 by repeated
        raise ValueError("unique_values: too many rows")
    hashes = values.hash().to_numpy()
    twice = repeated(hashes, ~among)
    out = among & ~twice
    rows = np.flatnonzero(twice)
    if len(rows):
        same = values.gather(pl.Series(rows)).is_duplicated().to_numpy()
        out[rows[~same]] = True
    return out


def distinct_values(values: Any, cap: int = 4096) -> Any:
    """Return every distinct value of polars text series ``values``, nulls left out.

    The same set as ``values.unique().drop_nulls()``, but a value may come more than once:
    one per place where its text lies (:func:`view_distinct`, where there are at most ``cap``
    of those; else polars' ``unique``).
    """
    import sys

    import polars as pl

    arr = values.to_arrow(compat_level=pl.CompatLevel.newest())
    chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
    if sys.byteorder != "little" or len(chunks) != 1 or chunks[0].type != pa.string_view():
        return values.unique().drop_nulls()
    c = chunks[0]
    if not len(c) or c.null_count == len(c):
        return values.unique().drop_nulls()
    bufs = c.buffers()
    valid = bufs[0] if bufs[0] is not None and c.null_count else None
    rows = view_distinct(
        np.frombuffer(bufs[1], np.uint64),
        np.frombuffer(valid, np.uint8) if valid is not None else np.zeros(0, np.uint8),
        c.offset,
        len(c),
        cap,
    )
    if len(rows) == 1 and rows[0] < 0:
        return values.unique().drop_nulls()
    return values.gather(pl.Series(rows))
