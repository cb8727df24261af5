"""The loops of the fast journeys path (:mod:`.fast`), compiled with numba.

Each function is one or two passes over the touchpoints in journey order, where numpy would
need a pass (and a temporary array) per step: ordering the rows by person (a counting sort;
persons from stitching are numbered 1..P), putting each person's rows in time order, cutting
the journeys while aggregating each and finding the stage runs (one pass), copying the channel
codes of the journeys' path windows into one buffer, and writing paths as text.

The functions are compiled with ``cache=True``: the compiled code is kept beside this module,
so only the first run on a machine pays the compile (a few seconds).
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def person_order(
    person: np.ndarray,
    lo: int,
    n_keys: int,
    us: np.ndarray,
    conversion: np.ndarray,
    channel: np.ndarray,
    stage: np.ndarray,
    index: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Order the rows by ``person`` (stable: a person's rows keep their order).

    A counting sort (``person - lo`` lies in ``0..n_keys-1``) in two steps, each of which
    writes to few places at a time: the rows are first moved, in order, to one of at most 256
    blocks of consecutive persons, then each block's rows to their places, which lie in the
    block's part of the output. (One step writing every row straight to its place writes to
    a place far from the last one each time: a cache miss per column.) Returns the order (the
    row of every place) and person, time, conversion, channel and stage in that order. The
    blocks' persons and rows are held in ``index``'s integer type (an empty array: int32
    where the rows and persons fit, see :func:`index_like`), the other columns in theirs.
    """
    n = len(person)
    start = np.zeros(n_keys + 1, np.int64)
    for i in range(n):
        start[person[i] - lo + 1] += 1
    for k in range(n_keys):
        start[k + 1] += start[k]
    sorted_person = np.empty(n, np.int64)
    for k in range(n_keys):
        sorted_person[start[k] : start[k + 1]] = lo + k
    shift = 0
    while (n_keys - 1) >> shift >= 256:
        shift += 1
    n_blocks = ((n_keys - 1) >> shift) + 1
    block_at = np.empty(n_blocks, np.int64)
    for b in range(n_blocks):
        block_at[b] = start[b << shift]
    t_key = np.empty(n, index.dtype)
    t_row = np.empty(n, index.dtype)
    t_us = np.empty(n, us.dtype)
    t_conv = np.empty(n, conversion.dtype)
    t_channel = np.empty(n, channel.dtype)
    t_stage = np.empty(n, stage.dtype)
    for i in range(n):
        k = person[i] - lo
        b = k >> shift
        at = block_at[b]
        t_key[at] = k
        t_row[at] = i
        t_us[at] = us[i]
        t_conv[at] = conversion[i]
        t_channel[at] = channel[i]
        t_stage[at] = stage[i]
        block_at[b] = at + 1
    order = np.empty(n, np.int64)
    s_us = np.empty(n, us.dtype)
    s_conv = np.empty(n, conversion.dtype)
    s_channel = np.empty(n, channel.dtype)
    s_stage = np.empty(n, stage.dtype)
    for i in range(n):
        k = t_key[i]
        at = start[k]
        order[at] = t_row[i]
        s_us[at] = t_us[i]
        s_conv[at] = t_conv[i]
        s_channel[at] = t_channel[i]
        s_stage[at] = t_stage[i]
        start[k] = at + 1
    return order, sorted_person, s_us, s_conv, s_channel, s_stage


def index_like(n_rows: int, n_keys: int) -> np.ndarray:
    """Return the ``index`` of :func:`person_order`: int32 where rows and keys fit, else int64."""
    fits = max(n_rows, n_keys) <= np.iinfo(np.int32).max
    return np.empty(0, np.int32 if fits else np.int64)


@numba.njit(cache=True, nogil=True)
def time_order(
    person: np.ndarray,
    us: np.ndarray,
    order: np.ndarray,
    conversion: np.ndarray,
    channel: np.ndarray,
    stage: np.ndarray,
) -> bool:
    """Put each person's places (grouped by person) in time order, in place.

    ``us`` is checked person by person (rows mostly arrive in time order: nothing to move);
    where it is not in order, the person's places are sorted by time (stable), and ``order``,
    ``conversion``, ``channel`` and ``stage`` moved alike. Returns whether two rows of one
    person have the same time (their order is then settled by ``event_id``).
    """
    n = len(person)
    ties = False
    s = 0
    while s < n:
        e = s + 1
        in_order = True
        while e < n and person[e] == person[s]:
            if us[e] < us[e - 1]:
                in_order = False
            elif us[e] == us[e - 1]:
                ties = True
            e += 1
        if not in_order:
            by_time = np.argsort(us[s:e], kind="mergesort")  # stable
            us[s:e] = us[s:e][by_time]
            order[s:e] = order[s:e][by_time]
            conversion[s:e] = conversion[s:e][by_time]
            channel[s:e] = channel[s:e][by_time]
            stage[s:e] = stage[s:e][by_time]
            for i in range(s + 1, e):
                if us[i] == us[i - 1]:
                    ties = True
        s = e
    return ties


@numba.njit(cache=True, nogil=True)
def take3(
    order: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``a[order], b[order], c[order]`` in one pass."""
    n = len(order)
    out_a = np.empty(n, a.dtype)
    out_b = np.empty(n, b.dtype)
    out_c = np.empty(n, c.dtype)
    for i in range(n):
        row = order[i]
        out_a[i] = a[row]
        out_b[i] = b[row]
        out_c[i] = c[row]
    return out_a, out_b, out_c


@numba.njit(cache=True, nogil=True)
def journeys_and_runs(
    person: np.ndarray,
    us: np.ndarray,
    conversion: np.ndarray,
    stage: np.ndarray,
    order: np.ndarray,
    revenue: np.ndarray,
    gap: float,
) -> tuple[np.ndarray, ...]:
    """Cut the sorted touchpoints into journeys and stage runs, and total the journeys: one pass.

    A journey starts at a person's first touchpoint, after a conversion, and after a silence
    of ``gap`` µs or more (the per-touchpoint cuts: :func:`.fast.touchpoint_cuts`). Per journey: its first touchpoint, its
    number for the person, whether it converted, its revenue (the converting touchpoints'
    ``revenue[order[i]]``, in row order; missing: none) and the code of its last staged
    touchpoint (-1: none). A stage run (visit) starts at a staged touchpoint whose stage differs
    from the journey's previous staged touchpoint's, or that has none before it. Returns the
    journeys' ``start``, ``journey_index``, ``converted``, ``revenue``, ``last_stage``, then the
    runs' touchpoint, journey, stage and from-stage (-1: the journey's first run).
    """
    n = len(person)
    start = np.empty(n, np.int64)  # at most one journey, and one run, per touchpoint
    journey_index = np.empty(n, np.int64)
    converted = np.empty(n, np.bool_)
    paid = np.empty(n, np.float64)
    last_stage = np.empty(n, np.int64)
    at = np.empty(n, np.int64)
    run_journey = np.empty(n, np.int64)
    run_stage = np.empty(n, stage.dtype)
    from_stage = np.empty(n, np.int64)
    j = -1
    ji = -1
    k = 0
    current = -1  # the stage of the journey's last staged touchpoint so far
    total = 0.0
    for i in range(n):
        first = i == 0 or person[i] != person[i - 1]
        if first:
            ji = -1
        if first or (us[i] - us[i - 1]) >= gap or conversion[i - 1]:
            if j >= 0:
                paid[j] = total
            j += 1
            ji += 1
            start[j] = i
            journey_index[j] = ji
            converted[j] = False
            last_stage[j] = -1
            total = 0.0
            current = -1
        if conversion[i]:
            converted[j] = True
            value = revenue[order[i]]
            if not np.isnan(value):
                total += value
        code = stage[i]
        if code >= 0:
            if code != current:
                at[k] = i
                run_journey[k] = j
                run_stage[k] = code
                from_stage[k] = current
                k += 1
            current = code
            last_stage[j] = code
    if j >= 0:
        paid[j] = total
    n_j = j + 1
    return (
        start[:n_j].copy(),
        journey_index[:n_j].copy(),
        converted[:n_j].copy(),
        paid[:n_j].copy(),
        last_stage[:n_j].copy(),
        at[:k].copy(),
        run_journey[:k].copy(),
        run_stage[:k].copy(),
        from_stage[:k].copy(),
    )


@numba.njit(cache=True, nogil=True)
def window_starts(
    us: np.ndarray, start: np.ndarray, end: np.ndarray, first_us: np.ndarray
) -> np.ndarray:
    """Per range ``start[k]:end[k]`` of time-ordered touchpoints: the first at ``first_us[k]`` or later."""
    out = np.empty(len(start), np.int64)
    for k in range(len(start)):
        i = start[k]
        e = end[k]
        while i < e and us[i] < first_us[k]:
            i += 1
        out[k] = i
    return out


@numba.njit(cache=True, nogil=True)
def gather_ranges(values: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Concatenate ``values[start[k]:end[k]]`` for every k."""
    total = 0
    for k in range(len(start)):
        total += end[k] - start[k]
    out = np.empty(total, values.dtype)
    at = 0
    for k in range(len(start)):
        for i in range(start[k], end[k]):
            out[at] = values[i]
            at += 1
    return out


@numba.njit(cache=True, nogil=True)
def join_ranges(
    codes: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    label_offsets: np.ndarray,
    label_bytes: np.ndarray,
    sep: np.ndarray,
    empty_missing: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Write the labels of ``codes[start[k]:end[k]]`` joined by ``sep``, for every k, as UTF-8.

    Label ``c`` is ``label_bytes[label_offsets[c]:label_offsets[c + 1]]``. A range with a code
    below 0 (missing), or an empty range when ``empty_missing``, is missing (zero bytes).
    Returns the offsets of the joined texts (Arrow's), their bytes and whether each is present.
    """
    n = len(start)
    offsets = np.zeros(n + 1, np.int64)
    valid = np.ones(n, np.bool_)
    total = 0
    for k in range(n):
        length = 0
        if empty_missing and end[k] == start[k]:
            valid[k] = False
        for i in range(start[k], end[k]):
            c = codes[i]
            if c < 0:
                valid[k] = False
                break
            length += label_offsets[c + 1] - label_offsets[c]
        if valid[k] and end[k] > start[k]:
            total += length + len(sep) * (end[k] - start[k] - 1)
        offsets[k + 1] = total
    out = np.empty(total, np.uint8)
    for k in range(n):
        if not valid[k]:
            continue
        at = offsets[k]
        for i in range(start[k], end[k]):
            if i > start[k]:
                for b in range(len(sep)):
                    out[at] = sep[b]
                    at += 1
            c = codes[i]
            for b in range(label_offsets[c], label_offsets[c + 1]):
                out[at] = label_bytes[b]
                at += 1
    return offsets, out, valid


@numba.njit(cache=True, nogil=True)
def pack_ranks(
    codes: np.ndarray, offsets: np.ndarray, rank: np.ndarray, n_words: int
) -> np.ndarray:
    """Pack ``rank[codes] + 1`` of each range ``offsets[k]:offsets[k + 1]`` into 64-bit words.

    Four bits a code (ranks below 15), 16 codes a word, the first code in the highest bits;
    ``n_words`` words a range (enough for the longest), 0 past its end. Returns one row of
    words per range.
    """
    n = len(offsets) - 1
    out = np.zeros((n, n_words), np.uint64)
    for k in range(n):
        s = offsets[k]
        for i in range(s, offsets[k + 1]):
            p = i - s
            value = np.uint64(rank[codes[i]] + 1) << np.uint64(60 - 4 * (p & 15))
            out[k, p >> 4] |= value
    return out


def warm_up() -> None:
    """Load the kernels the fast path calls, for the argument types it passes, on tiny arrays.

    A fresh process loads each compiled kernel from numba's cache on its first call (about
    0.3 s for all, most of it once); :func:`.fast.fast_rows` runs this in a thread while Arrow
    encodes the rows, so that the load does not wait for a free core later. The types are those
    of the fast path's calls (tests/journeys/test_fast_kernels.py checks that its tables load
    nothing more); one it does not pass is compiled for the call that passes it, as without this.
    """
    i64 = np.zeros(1, np.int64)
    ro_i64 = np.zeros(1, np.int64)
    ro_i64.flags.writeable = False  # pandas hands the times over read-only
    i32 = np.zeros(1, np.int32)
    flag = np.zeros(1, np.bool_)
    f64 = np.zeros(1, np.float64)
    one = np.ones(1, np.int64)
    person_order(i64, 0, 1, ro_i64, flag, i32, i32, index_like(1, 1))
    time_order(i64, i64.copy(), i64.copy(), flag, i32, i32)
    journeys_and_runs(i64, i64, flag, i32, i64, f64, 1.0)
    window_starts(i64, i64, one, f64)
    gather_ranges(i32, i64, one)
    sep = np.frombuffer(b" > ", np.uint8)  # read-only, as the separator's bytes
    join_ranges(i32, i64, one, np.zeros(2, np.int64), np.zeros(0, np.uint8), sep, False)
    pack_ranks(i32, np.zeros(2, np.int64), i64, 1)
