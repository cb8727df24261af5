"""The loops of the identifier codes (:mod:`.fast_codes`), compiled with numba.

- :func:`local_codes`: a column's rows from Arrow dictionary indices (and the validity
  bitmap) to ranks of their values, counting the rows of each value on the way;
- :func:`row_pass`: one pass over the rows that turns ranks into codes and finds each row's
  smallest and largest code and number of identifiers: the keys of the distinct
  combinations of one or two identifiers and the rows with three or more;
- :func:`gather_strings`: the distinct values in their sorted order, as one string buffer.

Compiled with ``cache=True`` (the compiled code is kept beside this module) and ``nogil=True``
(the columns are coded in threads).
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def local_codes(
    indices: np.ndarray,
    valid: np.ndarray,
    bit_offset: int,
    rank: np.ndarray,
    out: np.ndarray,
    count: np.ndarray,
) -> None:
    """Write each row's rank within its column (-1: missing) and count the rows per rank.

    ``indices``: one chunk's dictionary indices; ``valid``: its validity bitmap from bit
    ``bit_offset`` (empty: no nulls); ``rank[index]``: the value's rank (-1: missing, e.g.
    empty). ``count[rank]`` grows by the rows of each rank.
    """
    has_valid = len(valid) > 0
    for i in range(len(out)):
        if has_valid:
            bit = bit_offset + i
            if not (valid[bit >> 3] >> (bit & 7)) & 1:
                out[i] = -1
                continue
        r = rank[indices[i]]
        out[i] = r
        if r >= 0:
            count[r] += 1


@numba.njit(cache=True, nogil=True)
def row_pass(
    codes: np.ndarray, offset: np.ndarray, m: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Turn ranks into codes and find the rows' combinations, in one pass over the rows.

    ``codes[c, i]``: row ``i``'s rank in column ``c`` (-1: missing), the columns in the order
    of their codes; ``offset[c]``: the code of rank 0, added in place. Returns the identifiers
    seen alone on a row (a mark per code), the keys ``lo * (m + 1) + hi`` of the rows with
    two identifiers (their smallest and largest code), in row order, and the rows with three
    or more.
    """
    k, n = codes.shape
    alone = np.zeros(m, np.bool_)
    keys = np.empty(n, np.uint64)
    multi = np.empty(n, np.int64)
    n_keys = 0
    n_multi = 0
    for i in range(n):
        lo = np.int64(-1)
        hi = np.int64(-1)
        n_ids = 0
        for c in range(k):
            if codes[c, i] >= 0:
                code = codes[c, i] + offset[c]
                codes[c, i] = code
                n_ids += 1
                if lo < 0:
                    lo = code
                hi = code
        if n_ids == 1:
            alone[lo] = True
        elif n_ids == 2:
            keys[n_keys] = np.uint64(lo) * np.uint64(m + 1) + np.uint64(hi)
            n_keys += 1
        elif n_ids > 2:
            multi[n_multi] = i
            n_multi += 1
    return alone, keys[:n_keys], multi[:n_multi]


@numba.njit(cache=True, nogil=True)
def gather_strings(
    dict_start: np.ndarray, dict_data: np.ndarray, order: np.ndarray, out_start: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return the offsets (from ``out_start``) and bytes of the values ``order`` picks."""
    n = len(order)
    offsets = np.empty(n, np.int64)
    total = 0
    for j in range(n):
        d = order[j]
        offsets[j] = out_start + total
        total += dict_start[d + 1] - dict_start[d]
    out = np.empty(total, np.uint8)
    at = 0
    for j in range(n):
        d = order[j]
        for b in range(dict_start[d], dict_start[d + 1]):
            out[at] = dict_data[b]
            at += 1
    return offsets, out


@numba.njit(cache=True, nogil=True)
def number_components(label: np.ndarray, blocked: np.ndarray) -> tuple[np.ndarray, int]:
    """Return the components of the usable codes numbered 1, 2, … by their smallest code.

    Returns the number of each code's component (0: blocked) and the number of components.
    """
    m = len(label)
    top = 0
    for code in range(m):
        top = max(top, label[code])
    of_label = np.zeros(top + 1, np.int64)
    person = np.zeros(m, np.int64)
    n = 0
    for code in range(m):
        if blocked[code]:
            continue
        lab = label[code]
        if of_label[lab] == 0:
            n += 1
            of_label[lab] = n
        person[code] = of_label[lab]
    return person, n


@numba.njit(cache=True, nogil=True)
def row_persons(codes: np.ndarray, node_person: np.ndarray) -> np.ndarray:
    """Return the largest ``node_person`` over each row's codes (``codes[c, i]``; -1: none; 0)."""
    k, n = codes.shape
    out = np.zeros(n, np.int64)
    for i in range(n):
        p = 0
        for c in range(k):
            code = codes[c, i]
            if code >= 0:
                p = max(p, node_person[code])
        out[i] = p
    return out
