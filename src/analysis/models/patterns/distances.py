"""Optimal-matching and LCS distances between state sequences (TraMineR's conventions).

A sequence is a list of state names (a journey's stages or channels), or one string of them
joined by :data:`analysis.schema.PATH_SEP` (``"See > Think > Do"``). Sequences may differ in
length. The optimal-matching (OM) distance between two sequences is the cheapest series of
insertions, deletions (``indel`` each) and substitutions (``sm[a, b]``) turning one into the
other, the dynamic programme of TraMineR's ``seqdist(method="OM")`` and Sequenzo's
``get_distance_matrix``:

- ``sm="CONSTANT"``: every substitution costs 2 (TraMineR's ``cval``), an indel 1;
- ``sm="TRATE"``: substituting ``a`` and ``b`` costs ``2 - p(b|a) - p(a|b)``, from the rates
  of transition between consecutive states in the data (:func:`substitution_costs`);
- ``sm`` a square array over ``states``: the user's costs.

The LCS distance is ``len(x) + len(y) - 2 * LCS(x, y)`` (longest common subsequence), which is
OM with substitutions at 2 and indels at 1; :func:`lcs_distances` runs its own LCS programme.

The programmes are compiled with numba (``cache=True``: the compiled code is kept beside this
module, so only the first run on a machine pays the compile, about two seconds). Pairs run one
after another on one core: at a million journeys the cost is the number of *distinct*
sequences times the number of references (:mod:`analysis.models.patterns.typology`), never
an n × n matrix over journeys.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numba
import numpy as np

from analysis.errors import DataError
from analysis.schema import PATH_SEP

#: Substitution cost of two different states under ``sm="CONSTANT"`` (TraMineR's ``cval``).
CONSTANT_COST = 2.0


def split_sequence(seq: Any) -> list[str]:
    """Return the states of one sequence: a list as it is, a joined string split at PATH_SEP.

    An empty string, None or NaN is the empty sequence.
    """
    if seq is None or (isinstance(seq, float) and np.isnan(seq)):
        return []
    if isinstance(seq, str):
        return [s.strip() for s in seq.split(PATH_SEP)] if seq.strip() else []
    return [str(s) for s in seq]


def encode(seqs: Iterable[Any], states: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Return the sequences as state codes: a flat int32 array and its row offsets (CSR).

    Sequence ``i`` is ``codes[offsets[i]:offsets[i + 1]]``, each code the position of the state
    in ``states``. A state not in ``states`` raises :class:`~analysis.errors.DataError`.
    """
    index = {s: i for i, s in enumerate(states)}
    parts = [split_sequence(s) for s in seqs]
    lengths = np.fromiter((len(p) for p in parts), dtype=np.int64, count=len(parts))
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = [s for p in parts for s in p]
    try:
        codes = np.fromiter((index[s] for s in flat), dtype=np.int32, count=len(flat))
    except KeyError as e:
        raise DataError(
            f"state {e.args[0]!r} is not in the alphabet",
            fix=f"add it to states (got {list(states)})",
        ) from None
    return codes, offsets


def alphabet(*groups: Iterable[Any]) -> list[str]:
    """Return the sorted distinct states of the sequences in ``groups``."""
    seen: set[str] = set()
    for group in groups:
        for seq in group:
            seen.update(split_sequence(seq))
    return sorted(seen)


def substitution_costs(
    seqs: Iterable[Any],
    *,
    sm: str | np.ndarray = "CONSTANT",
    states: Sequence[str] | None = None,
    weights: np.ndarray | None = None,
) -> tuple[list[str], np.ndarray]:
    """Return ``(states, costs)``: the alphabet and the substitution-cost matrix over it.

    Parameters
    ----------
    seqs : iterable
        Sequences (lists of states or PATH_SEP-joined strings): the data TRATE's rates come from.
    sm : {"CONSTANT", "TRATE"} or array
        ``"CONSTANT"``: 2 off the diagonal. ``"TRATE"``: ``2 - p(b|a) - p(a|b)``, where
        ``p(b|a)`` is the share of transitions out of ``a`` (between consecutive states of a
        sequence, self-transitions included) that go to ``b``; a state never followed by another
        has ``p(.|a) = 0`` (TraMineR's ``seqsubm(method="TRATE")``, Sequenzo's
        ``get_substitution_cost_matrix``). An array: used as it is (square, over ``states``).
    states : list of str, optional
        The alphabet, in the order of an ``sm`` array; default the sorted states of ``seqs``.
    weights : array, optional
        One weight per sequence (a distinct sequence's count) for the TRATE rates.
    """
    seqs = list(seqs)
    states = list(states) if states is not None else alphabet(seqs)
    n = len(states)
    if not isinstance(sm, str):
        costs = np.asarray(sm, dtype=np.float64)
        if costs.shape != (n, n):
            raise DataError(
                f"sm is {costs.shape}, expected ({n}, {n}) over the states",
                fix=f"pass a square cost matrix in the order of states={states}",
            )
        if np.any(costs < 0) or np.any(np.diag(costs) != 0) or not np.allclose(costs, costs.T):
            raise DataError(
                "sm must be symmetric, non-negative, with zeros on the diagonal",
                fix="OM distances need a symmetric cost matrix",
            )
        return states, costs
    if sm.upper() == "CONSTANT":
        costs = np.full((n, n), CONSTANT_COST)
    elif sm.upper() == "TRATE":
        codes, offsets = encode(seqs, states)
        w = np.ones(len(seqs)) if weights is None else np.asarray(weights, dtype=np.float64)
        # a pair (codes[t], codes[t + 1]) is a transition unless t + 1 starts a new sequence
        starts = np.zeros(len(codes) + 1, dtype=bool)
        starts[offsets[:-1]] = True
        pair = ~starts[1 : len(codes)]
        owner = np.repeat(np.arange(len(seqs)), np.diff(offsets))
        counts = np.zeros((n, n))
        np.add.at(counts, (codes[:-1][pair], codes[1:][pair]), w[owner[:-1][pair]])
        out = counts.sum(axis=1, keepdims=True)
        rates = np.divide(counts, out, out=np.zeros_like(counts), where=out > 0)
        costs = CONSTANT_COST - rates - rates.T
    else:
        raise DataError(
            f"unknown substitution costs sm={sm!r}",
            fix="use 'CONSTANT', 'TRATE' or a square array over the states",
        )
    np.fill_diagonal(costs, 0.0)
    return states, costs


@numba.njit(cache=True, nogil=True)
def _om_pair(a: np.ndarray, b: np.ndarray, sub: np.ndarray, indel: np.ndarray) -> float:
    """Return the OM distance of code arrays ``a`` and ``b`` (one row of the DP table kept)."""
    m = b.shape[0]
    row = np.empty(m + 1)
    row[0] = 0.0
    for j in range(m):
        row[j + 1] = row[j] + indel[b[j]]
    for i in range(a.shape[0]):
        ai = a[i]
        diag = row[0]
        row[0] = diag + indel[ai]
        for j in range(m):
            up = row[j + 1]
            best = diag + sub[ai, b[j]]
            c = up + indel[ai]
            if c < best:
                best = c
            c = row[j] + indel[b[j]]
            if c < best:
                best = c
            diag = up
            row[j + 1] = best
    return float(row[m])


@numba.njit(cache=True, nogil=True)
def _om_block(ca, oa, cb, ob, sub, indel, symmetric):
    """Return the len(oa)-1 × len(ob)-1 OM matrix; ``symmetric``: a and b are the same set."""
    na = oa.shape[0] - 1
    nb = ob.shape[0] - 1
    out = np.zeros((na, nb))
    for i in range(na):
        a = ca[oa[i] : oa[i + 1]]
        start = i + 1 if symmetric else 0
        for j in range(start, nb):
            d = _om_pair(a, cb[ob[j] : ob[j + 1]], sub, indel)
            out[i, j] = d
            if symmetric:
                out[j, i] = d
    return out


@numba.njit(cache=True, nogil=True)
def _lcs_block(ca, oa, cb, ob, symmetric):
    """Return the LCS distances ``|a| + |b| - 2 LCS(a, b)`` between two sets of sequences."""
    na = oa.shape[0] - 1
    nb = ob.shape[0] - 1
    out = np.zeros((na, nb))
    for i in range(na):
        a = ca[oa[i] : oa[i + 1]]
        start = i + 1 if symmetric else 0
        for j in range(start, nb):
            b = cb[ob[j] : ob[j + 1]]
            m = b.shape[0]
            row = np.zeros(m + 1, dtype=np.int64)
            for x in range(a.shape[0]):
                diag = 0
                for y in range(m):
                    up = row[y + 1]
                    if a[x] == b[y]:
                        row[y + 1] = diag + 1
                    elif row[y] > up:
                        row[y + 1] = row[y]
                    diag = up
            d = a.shape[0] + m - 2 * row[m]
            out[i, j] = d
            if symmetric:
                out[j, i] = d
    return out


def _indel_costs(indel: float | np.ndarray, n: int) -> np.ndarray:
    arr = np.asarray(indel, dtype=np.float64)
    arr = np.full(n, float(arr)) if arr.ndim == 0 else arr
    if arr.shape != (n,) or np.any(arr < 0) or not np.all(np.isfinite(arr)):
        raise DataError(
            "indel must be one non-negative cost or one per state",
            fix=f"pass a float or {n} costs in the order of the states",
        )
    return arr


def om_distances(
    seqs: Iterable[Any],
    refs: Iterable[Any] | None = None,
    *,
    sm: str | np.ndarray = "CONSTANT",
    indel: float | np.ndarray = 1.0,
    states: Sequence[str] | None = None,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Return optimal-matching distances between sequences (TraMineR's ``seqdist(method="OM")``).

    Parameters
    ----------
    seqs : iterable
        Sequences: lists of state names or strings joined by PATH_SEP; may differ in length.
    refs : iterable, optional
        Reference sequences. None: the n × n matrix between ``seqs``; given: the n × len(refs)
        matrix of each sequence's distance to each reference.
    sm : {"CONSTANT", "TRATE"} or array
        Substitution costs (:func:`substitution_costs`); TRATE's rates come from ``seqs``.
    indel : float or array
        Insertion/deletion cost, one for all states or one per state (TraMineR default 1).
    states : list of str, optional
        The alphabet (the order of an ``sm`` array); default the sorted states of seqs and refs.
    weights : array, optional
        One weight per sequence in ``seqs`` for TRATE's rates (counts of distinct sequences).

    Returns
    -------
    numpy.ndarray
        Distances (float64).
    """
    seqs = list(seqs)
    refs_l = None if refs is None else list(refs)
    if states is None:
        states = alphabet(seqs, refs_l or [])
    states, sub = substitution_costs(seqs, sm=sm, states=states, weights=weights)
    ind = _indel_costs(indel, len(states))
    ca, oa = encode(seqs, states)
    if refs_l is None:
        return _om_block(ca, oa, ca, oa, sub, ind, True)
    cb, ob = encode(refs_l, states)
    return _om_block(ca, oa, cb, ob, sub, ind, False)


def lcs_distances(seqs: Iterable[Any], refs: Iterable[Any] | None = None) -> np.ndarray:
    """Return LCS distances ``len(x) + len(y) - 2 LCS(x, y)`` (TraMineR's ``method="LCS"``).

    ``refs`` as in :func:`om_distances`: None for the n × n matrix, else n × len(refs).
    """
    seqs = list(seqs)
    refs_l = None if refs is None else list(refs)
    states = alphabet(seqs, refs_l or [])
    ca, oa = encode(seqs, states)
    if refs_l is None:
        return _lcs_block(ca, oa, ca, oa, True).astype(np.float64)
    cb, ob = encode(refs_l, states)
    return _lcs_block(ca, oa, cb, ob, False).astype(np.float64)
