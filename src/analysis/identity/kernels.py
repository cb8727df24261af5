"""The loops of the identifier codes (:mod:`.fast_codes`), compiled with numba.

- :func:`local_codes`: a column's rows from Arrow dictionary indices (and the validity
  bitmap) to ranks of their values, counting the rows of each value on the way;
- :func:`row_pass`: one pass over the rows that turns ranks into codes and finds each row's
  smallest and largest code and number of identifiers: the keys of the distinct
  combinations of one or two identifiers and the rows with three or more;
- :func:`sort_strings`: the byte-wise order of distinct strings (radix sort on 8 bytes, then
  the ties);
- :func:`link_counts` and :func:`components` (a union-find): the graph of the pairs;
- :func:`number_components` and :func:`raise_persons`: the persons of the codes and rows.

Compiled with ``cache=True`` (the compiled code is kept beside this module) and ``nogil=True``
(the columns are coded in threads).
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def local_codes(
    indices: np.ndarray, valid: np.ndarray, bit_offset: int, table: np.ndarray, out: np.ndarray
) -> None:
    """Write each row's rank within its column (-1: missing) and count the rows per value.

    ``indices``: one chunk's dictionary indices; ``valid``: its validity bitmap from bit
    ``bit_offset`` (empty: no nulls); ``table[index]``: the value's rank (-1: missing, e.g.
    empty) and its number of rows so far, which grows (side by side: one memory read).
    """
    has_valid = len(valid) > 0
    for i in range(len(out)):
        if has_valid:
            bit = bit_offset + i
            if not (valid[bit >> 3] >> (bit & 7)) & 1:
                out[i] = -1
                continue
        d = indices[i]
        out[i] = table[d, 0]
        table[d, 1] += 1


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
def raise_persons(person: np.ndarray, codes: np.ndarray, node_person: np.ndarray) -> None:
    """Raise ``person[i]`` to ``node_person[codes[i]]`` where that is larger (code -1: none)."""
    for i in range(len(person)):
        code = codes[i]
        if code >= 0:
            p = node_person[code]
            if p > person[i]:
                person[i] = p


@numba.njit(cache=True, inline="always")
def _key_at(data: np.ndarray, start: int, length: int, at: int) -> np.uint64:
    """Bytes ``at`` to ``at + 7`` of a string as a big-endian number (0 past its end)."""
    key = np.uint64(0)
    for b in range(at, at + 8):
        key <<= np.uint64(8)
        if b < length:
            key |= np.uint64(data[start + b])
    return key


@numba.njit(cache=True, nogil=True)
def _radix_argsort(keys: np.ndarray) -> np.ndarray:
    """Return the stable permutation that sorts ``keys`` (uint64).

    LSD radix, 8 bits a pass; a byte that is the same in every key takes no pass.
    """
    n = len(keys)
    idx = np.arange(n)
    k = keys.copy()
    idx2 = np.empty(n, np.int64)
    k2 = np.empty(n, np.uint64)
    differ = np.uint64(0)
    for i in range(n):
        differ |= k[i] ^ k[0]
    count = np.empty(257, np.int64)
    for d in range(8):
        shift = np.uint64(8 * d)
        if (differ >> shift) & np.uint64(0xFF) == 0:
            continue
        count[:] = 0
        for i in range(n):
            count[((k[i] >> shift) & np.uint64(0xFF)) + 1] += 1
        for b in range(256):
            count[b + 1] += count[b]
        for i in range(n):
            digit = (k[i] >> shift) & np.uint64(0xFF)
            at = count[digit]
            count[digit] = at + 1
            k2[at] = k[i]
            idx2[at] = idx[i]
        k, k2 = k2, k
        idx, idx2 = idx2, idx
    return idx


@numba.njit(cache=True, nogil=True)
def _sort_run(order: np.ndarray, sub: np.ndarray, lo: int, hi: int) -> None:
    """Sort ``order[lo:hi]`` by ``sub[lo:hi]`` (stable), moving both."""
    if hi - lo <= 24:  # insertion sort
        for j in range(lo + 1, hi):
            kj = sub[j]
            oj = order[j]
            i = j - 1
            while i >= lo and sub[i] > kj:
                sub[i + 1] = sub[i]
                order[i + 1] = order[i]
                i -= 1
            sub[i + 1] = kj
            order[i + 1] = oj
        return
    p = np.argsort(sub[lo:hi], kind="mergesort")
    order[lo:hi] = order[lo:hi][p]
    sub[lo:hi] = sub[lo:hi][p]


@numba.njit(cache=True, nogil=True)
def sort_strings(offsets: np.ndarray, data: np.ndarray) -> np.ndarray:
    """Return the permutation that sorts distinct strings byte-wise (a prefix first).

    ``offsets``: the ``n + 1`` offsets of the strings into ``data``. The first 8 bytes of
    every string as a number, radix-sorted; then each run of strings still tied is sorted on
    its next 8 bytes, and so on; a run tied up to its longest string goes by length.
    """
    n = len(offsets) - 1
    start = offsets[:-1]
    length = offsets[1:] - start
    key = np.empty(n, np.uint64)
    for i in range(n):
        key[i] = _key_at(data, start[i], length[i], 0)
    order = _radix_argsort(key)
    key = key[order]
    # runs of equal keys (lo, hi, the byte their keys in ``sub`` start at), as a stack
    stack = [(0, 0, 0)]
    stack.pop()
    lo = 0
    n_tied = 0
    for j in range(1, n + 1):
        if j == n or key[j] != key[lo]:
            if j - lo > 1:
                stack.append((lo, j, 8))
                n_tied += j - lo
            lo = j
    sub = key  # reused: bytes 8 to 15 of the tied strings
    if 4 * n_tied > n:  # many ties: read every string's next bytes in storage order
        nxt = np.empty(n, np.uint64)
        for i in range(n):
            nxt[i] = _key_at(data, start[i], length[i], 8)
        for lo, hi, _ in stack:
            for j in range(lo, hi):
                sub[j] = nxt[order[j]]
    else:
        for lo, hi, _ in stack:
            for j in range(lo, hi):
                sub[j] = _key_at(data, start[order[j]], length[order[j]], 8)
    while stack:
        lo, hi, at = stack.pop()
        longest = 0
        for j in range(lo, hi):
            longest = max(longest, length[order[j]])
        if at >= longest:  # equal up to the padding: the shorter first
            for j in range(lo, hi):
                sub[j] = length[order[j]]
            _sort_run(order, sub, lo, hi)
            continue
        if at > 8:  # the bytes from ``at`` (those from 8 are in ``sub`` already)
            for j in range(lo, hi):
                sub[j] = _key_at(data, start[order[j]], length[order[j]], at)
        _sort_run(order, sub, lo, hi)
        s = lo
        for j in range(lo + 1, hi + 1):
            if j == hi or sub[j] != sub[s]:
                if j - s > 1:
                    stack.append((s, j, at + 8))
                s = j
    return order


@numba.njit(cache=True, inline="always")
def _root(parent: np.ndarray, a: int) -> int:
    """Return the root of ``a``, halving the path on the way."""
    while parent[a] != a:
        parent[a] = parent[parent[a]]
        a = parent[a]
    return a


@numba.njit(cache=True, nogil=True)
def components(m: int, pair_a: np.ndarray, pair_b: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """Return the connected component of every node 0..m-1 (edges: pairs of usable nodes).

    Union-find; components are numbered 0, 1, … in the order of their smallest node, as
    scipy's ``connected_components`` numbers them.
    """
    parent = np.arange(m)
    for e in range(len(pair_a)):
        a = pair_a[e]
        b = pair_b[e]
        if usable[a] and usable[b]:
            ra = _root(parent, a)
            rb = _root(parent, b)
            if ra < rb:
                parent[rb] = ra
            elif rb < ra:
                parent[ra] = rb
    label = np.empty(m, np.int64)
    n = 0
    for i in range(m):
        r = _root(parent, i)
        if r == i:
            label[i] = n
            n += 1
        else:
            label[i] = label[r]
    return label


@numba.njit(cache=True, nogil=True)
def link_counts(
    n_types: int, type_of_code: np.ndarray, pair_a: np.ndarray, pair_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Count, per type and code, the codes of that type paired with it; flag the types seen."""
    m = len(type_of_code)
    counts = np.zeros((n_types, m), np.int64)
    seen = np.zeros(n_types, np.bool_)
    for e in range(len(pair_a)):
        a = pair_a[e]
        b = pair_b[e]
        ta = type_of_code[a]
        tb = type_of_code[b]
        counts[tb, a] += 1
        counts[ta, b] += 1
        seen[ta] = True
        seen[tb] = True
    return counts, seen


@numba.njit(cache=True, nogil=True)
def table_bits(n: int) -> int:
    """Return the bits of an open-addressing table for ``n`` keys: at least 2n slots, 16 at least."""
    bits = 4
    while (1 << bits) < 2 * n:
        bits += 1
    return bits


@numba.njit(cache=True, nogil=True)
def group_keys(
    k: np.ndarray, k2: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """Group rows on their key ``k`` (uint64) in one pass: a hash table, open addressing.

    Returns every row's group (int32; groups numbered in the order of their first row), each
    group's first row and sum of its rows' weights ``w`` (int64 views of arrays as long as
    ``k``: copy what is kept; an empty ``w``: 1 a row),
    and whether every row of a group holds its first row's second key ``k2`` (False: two
    combinations share a key ``k``).
    """
    weighed = len(w) > 0
    n = len(k)
    bits = table_bits(n)
    mask = np.uint64((1 << bits) - 1)
    shift = np.uint64(64 - bits)
    one = np.uint64(1)
    table = np.full(1 << bits, -1, np.int32)
    group = np.empty(n, np.int32)
    first = np.empty(n, np.int64)
    count = np.zeros(n, np.int64)
    ok = True
    g = 0
    for i in range(n):
        key = k[i]
        slot = (key * np.uint64(0x9E3779B97F4A7C15)) >> shift
        while True:
            at = table[slot]
            if at < 0:
                table[slot] = g
                first[g] = i
                count[g] = w[i] if weighed else 1
                group[i] = g
                g += 1
                break
            if k[first[at]] == key:
                count[at] += w[i] if weighed else 1
                group[i] = at
                if k2[i] != k2[first[at]]:
                    ok = False
                break
            slot = (slot + one) & mask
    return group, first[:g], count[:g], ok  # views: their arrays are ``len(k)`` long


@numba.njit(cache=True, nogil=True)
def find_keys(keys: np.ndarray, x: np.ndarray, out: np.ndarray) -> None:
    """Write the position of every ``x`` among ``keys`` in ``out``: a hash table.

    ``keys``: distinct, none 0 (uint64). ``out``: -1 where ``x`` is 0 (missing), -2 where it
    is not among ``keys``. A slot holds a key and its position side by side (one cache line).
    """
    n = len(keys)
    bits = table_bits(n)
    mask = np.uint64((1 << bits) - 1)
    shift = np.uint64(64 - bits)
    one = np.uint64(1)
    zero = np.uint64(0)
    mult = np.uint64(0x9E3779B97F4A7C15)
    table = np.zeros((1 << bits, 2), np.uint64)  # (key, position); key 0: empty
    for j in range(n):
        slot = (keys[j] * mult) >> shift
        while table[slot, 0] != zero:
            slot = (slot + one) & mask
        table[slot, 0] = keys[j]
        table[slot, 1] = j
    for i in range(len(x)):
        key = x[i]
        if key == zero:
            out[i] = -1
            continue
        slot = (key * mult) >> shift
        while True:
            got = table[slot, 0]
            if got == key:
                out[i] = table[slot, 1]
                break
            if got == zero:
                out[i] = -2
                break
            slot = (slot + one) & mask


@numba.njit(cache=True, nogil=True)
def combo_pairs(
    codes: tuple, n_rows: np.ndarray, m: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count the combinations and rows of every code and list the pairs seen together.

    ``codes``: per column (codes ascending from column to column), every combination's code
    (-1: missing); ``n_rows``: every combination's rows. Returns per code its combinations
    and rows (int64), and every combination's pairs of codes ``a * m + b`` (``a < b``; a
    pair may repeat), in two passes over the combinations.
    """
    k = len(codes)
    n = len(n_rows)
    n_combos = np.zeros(m, np.int64)
    rows = np.zeros(m, np.int64)
    total = 0
    for i in range(n):
        have = 0
        for c in range(k):
            code = codes[c][i]
            if code >= 0:
                have += 1
                n_combos[code] += 1
                rows[code] += n_rows[i]
        total += have * (have - 1) // 2
    packed = np.empty(total, np.int64)
    at = 0
    for i in range(n):
        for c in range(k):
            a = codes[c][i]
            if a < 0:
                continue
            for d in range(c + 1, k):
                b = codes[d][i]
                if b >= 0:
                    packed[at] = np.int64(a) * m + b
                    at += 1
    return n_combos, rows, packed
