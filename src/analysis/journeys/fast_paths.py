"""Paths of the fast journeys path (:mod:`.fast`), written from integer codes.

A path (the channels of a journey, or its stages) is a range of integer codes in journey
order. :func:`join_paths` writes the joined text (" > ") of every path straight into Arrow's
buffers in one compiled pass (:func:`.fast_kernels.join_ranges`): no array of one string per
touchpoint, no list array. :func:`distinct_paths` numbers the distinct paths for counting:
the codes of every path laid end to end as bytes, one Arrow binary value per path (no copy),
numbered by Arrow's hash kernel; only the distinct paths are joined into text.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from analysis.journeys.fast_kernels import gather_ranges, join_ranges, pack_ranks
from analysis.schema import PATH_SEP


@dataclass
class Paths:
    """Paths numbered by their distinct code sequences."""

    ids: np.ndarray  # the distinct path of every path, 0..K-1
    joined: pa.Array | Future[pa.Array]  # the text of each distinct path, or its joining
    codes: np.ndarray  # the codes of the distinct paths, end to end (-1: missing)
    offsets: np.ndarray  # distinct path k: ``codes[offsets[k]:offsets[k + 1]]``

    @property
    def text(self) -> pa.Array:
        """The text of each distinct path (large_string), once joined."""
        if isinstance(self.joined, Future):
            self.joined = self.joined.result()
        return self.joined

    def strings(self) -> pa.Array:
        """Return the text of every path."""
        return self.text.take(pa.array(self.ids))


def _width(n_symbols: int) -> np.dtype:
    """Return the narrowest unsigned integer type that holds codes ``0..n_symbols-1``."""
    for t in (np.uint8, np.uint16, np.uint32):
        if n_symbols <= np.iinfo(t).max + 1:
            return np.dtype(t)
    return np.dtype(np.uint64)


def join_paths(
    codes: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    names: pa.Array,
    *,
    empty_missing: bool = False,
) -> pa.Array:
    """Return the names of ``codes[start[k]:end[k]]`` joined by " > ", for every k.

    Parameters
    ----------
    codes : numpy.ndarray
        Integer codes in ``0..len(names)-1``; -1 stands for a missing value (its paths are
        missing, as Arrow's list join makes them).
    start, end : numpy.ndarray
        Each path's range in ``codes``.
    names : pyarrow.Array
        The text of each code (no missing values).
    empty_missing : bool, default False
        Whether an empty path is missing (otherwise ``""``).

    Returns
    -------
    pyarrow.Array
        large_string, one per path: written straight into Arrow's buffers by
        :func:`.fast_kernels.join_ranges`.
    """
    names = names.cast(pa.large_string())
    if names.offset or names.null_count:
        names = pa.array([v or "" for v in names.to_pylist()], pa.large_string())
    bufs = names.buffers()
    label_offsets = np.frombuffer(bufs[1], np.int64)[: len(names) + 1]
    label_bytes = np.frombuffer(bufs[2], np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    sep = np.frombuffer(PATH_SEP.encode(), np.uint8)
    offsets, data, valid = join_ranges(
        codes,
        np.asarray(start, np.int64),
        np.asarray(end, np.int64),
        label_offsets,
        label_bytes,
        sep,
        empty_missing,
    )
    validity = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(
        pa.large_string(), len(valid), [validity, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def distinct_paths(codes: np.ndarray, start: np.ndarray, end: np.ndarray, names: pa.Array) -> Paths:
    """Return the paths ``codes[start[k]:end[k]]`` numbered, each distinct one joined once.

    Parameters
    ----------
    codes, start, end, names
        As :func:`join_paths`.

    Returns
    -------
    Paths
        Its text is joined in a thread (compiled code, which lets go of the interpreter) while
        the caller goes on: :attr:`Paths.text` waits for it.
    """
    dtype = _width(len(names) + 1)
    contiguous = len(start) and np.array_equal(start[1:], end[:-1])
    part = codes[start[0] : end[-1]] if contiguous else gather_ranges(codes, start, end)
    part = np.where(part < 0, len(names), part).astype(dtype)  # missing: the code after the last
    offsets = np.zeros(len(start) + 1, np.int64)
    np.cumsum((end - start) * dtype.itemsize, out=offsets[1:])
    blobs = pa.Array.from_buffers(
        pa.large_binary(), len(start), [None, pa.py_buffer(offsets), pa.py_buffer(part)]
    )
    ids = pc.dictionary_encode(blobs).indices.to_numpy(zero_copy_only=False).astype(np.int64)
    first = np.empty(ids.max(initial=-1) + 1, np.int64)
    first[ids[::-1]] = np.arange(len(ids) - 1, -1, -1)  # each distinct path's first journey
    d_start, d_end = start[first], end[first]
    d_offsets = np.zeros(len(first) + 1, np.int64)
    np.cumsum(d_end - d_start, out=d_offsets[1:])
    pool = ThreadPoolExecutor(max_workers=1)  # the text is joined while the caller counts
    text = pool.submit(join_paths, codes, d_start, d_end, names)
    pool.shutdown(wait=False)
    return Paths(
        ids=ids, joined=text, codes=gather_ranges(codes, d_start, d_end), offsets=d_offsets
    )


def text_order(paths: Paths, names: pa.Array) -> np.ndarray:
    """Return the order of the distinct paths' texts (polars' order of strings: by bytes).

    Sorting a few hundred thousand long texts is slow; their code sequences, each code written
    as its name's rank, sort the same way and are short. That holds unless a name is a prefix
    of another followed by a byte at or below " " (the separator's first), or a path has a
    missing value: then the texts are sorted.
    """
    if len(names) > 1000 or (paths.codes < 0).any():  # many names: the check below is O(n²)
        return pl.Series(pl.from_arrow(paths.text)).arg_sort().to_numpy()
    text = pl.Series(pl.from_arrow(names.cast(pa.large_string())))
    by_name = text.arg_sort().to_numpy()
    rank = np.empty(len(names), np.int64)
    rank[by_name] = np.arange(len(names))
    sorted_names = [v.encode() for v in text.gather(by_name).to_list()]
    unsafe = any(
        b.startswith(a) and len(b) > len(a) and b[len(a)] <= 0x20
        for i, a in enumerate(sorted_names)
        for b in sorted_names[i + 1 :]
    )
    if unsafe:
        return pl.Series(pl.from_arrow(paths.text)).arg_sort().to_numpy()
    if len(names) < 16 and packs(paths):  # fewer than 16 names: four bits a code
        return packed_order(paths, rank)
    dtype = np.dtype("u1") if len(names) <= 256 else np.dtype(">u2")  # big-endian: bytes in order
    data = rank[paths.codes].astype(dtype)
    keys = pa.Array.from_buffers(
        pa.large_binary(),
        len(paths.offsets) - 1,
        [None, pa.py_buffer(paths.offsets * dtype.itemsize), pa.py_buffer(data)],
    )
    return pl.Series(pl.from_arrow(keys)).arg_sort().to_numpy()


def packs(paths: Paths) -> bool:
    """Whether :func:`packed_order` is cheap: the longest path is short, or not much longer.

    :func:`packed_order` holds as many words per path as the longest path needs (16 codes a
    word, 8 bytes): one long path (a bot's thousands of touchpoints) among many makes that
    far more than the byte keys (a byte a code). Packed: the longest path fits 4 words (64
    codes), or the words are at most half a word per code laid end to end.
    """
    n_paths = len(paths.offsets) - 1
    n_words = -(-int(np.diff(paths.offsets).max(initial=0)) // 16)
    return n_words <= 4 or n_words * n_paths <= len(paths.codes) // 2


def packed_order(paths: Paths, rank: np.ndarray) -> np.ndarray:
    """Return the order of the distinct paths by their codes' ranks (fewer than 16 names).

    Each path's ranks + 1 are packed four bits each into 64-bit words, the first in the highest
    bits (:func:`.fast_kernels.pack_ranks`; 0 past the end, so a path sorts before the paths it
    begins): the paths' order is that of their words. They are sorted by the first word, then
    the paths that share it (longer than 16 codes) by the others.
    """
    lengths = np.diff(paths.offsets)
    n_words = max(1, -(-int(lengths.max(initial=0)) // 16))
    words = pack_ranks(paths.codes, paths.offsets, rank, n_words)
    order = np.argsort(words[:, 0], kind="stable")
    if n_words == 1:
        return order
    first = words[order, 0]
    same = first[1:] == first[:-1]
    tie = np.zeros(len(order), bool)
    tie[1:] |= same
    tie[:-1] |= same
    at = np.flatnonzero(tie)
    if len(at):
        group = np.cumsum(np.concatenate([[True], ~same]))[at]
        sub = order[at]
        keys = [words[sub, w] for w in range(n_words - 1, 0, -1)]
        order[at] = sub[np.lexsort([*keys, group])]
    return order
