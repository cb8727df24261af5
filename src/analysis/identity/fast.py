"""Stitching on one machine, fast: the rules of :func:`~analysis.identity.stitch` on Arrow data.

The engine path (ibis) numbers the identifiers and counts their links in SQL. Here the same
steps run on integer codes in polars and numpy, with no pandas frame in the middle:

1. each identifier column gets integer codes: its distinct values sorted, the columns in the
   order of their names, so a code orders as (type, value) does in the engine;
2. the distinct identifier combinations (a hash unique on the code columns), the rows and
   combinations of every identifier;
3. link counts on packed integer pairs (``a * m + b``, distinct by hash) per pair of columns;
   placeholders (listed values and patterns, judged by DuckDB on the distinct values with the
   very expressions of the engine path, so a regular expression means the same), super-nodes,
   data-driven placeholders and the chain guard (:mod:`.guards`, the same functions);
4. each combination's anchor is the column-wise minimum of its usable codes; persons are
   scipy's connected components of (anchor, code) edges; the person of a row is a lookup.

The result is the engine path's, to the row and to the identifier (tests/identity compare
them); :func:`stitch` picks this path for ``engine="polars"`` (the default).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import duckdb
import ibis
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from analysis.identity.guards import chain_guard, oversized_persons, placeholder_flags


@dataclass
class CodedIdentifiers:
    """The identifiers of the rows as integer codes (see the module's steps 1 and 2).

    Attributes
    ----------
    cols : list of str
        The identifier columns, in the caller's order (``t_idx`` is a position in it).
    row_codes : list of numpy.ndarray
        Per column (in ``cols`` order), every row's code, -1 where missing.
    combos : list of numpy.ndarray
        Per column, the code of every distinct combination (-1 where missing).
    values : pyarrow.Array
        The identifier value of every code.
    type_of_code : numpy.ndarray
        Per code, the position of its column in ``cols``.
    rows, n_combos : numpy.ndarray
        Per code, the rows and the distinct combinations it appears in.
    """

    cols: list[str]
    row_codes: list[np.ndarray]
    combos: list[np.ndarray]
    values: pa.Array
    type_of_code: np.ndarray
    rows: np.ndarray
    n_combos: np.ndarray

    @property
    def m(self) -> int:
        """The number of identifiers."""
        return len(self.values)


def _codes(events: pd.DataFrame, c: str) -> tuple[np.ndarray, pa.Array]:
    """Return each row's rank among the distinct values of column ``c`` (-1: missing), and them.

    Values are text (a numeric CRM id becomes its text, as on the engine path); an empty value
    is missing. Arrow dictionary-encodes the column (one hash pass); only the distinct values
    are sorted.
    """
    s = events[c]
    if not (pd.api.types.is_string_dtype(s) or s.dtype == object):
        s = s.astype("str")
    arr = getattr(s.array, "_pa_array", None)
    if arr is None:
        try:
            arr = pa.array(s, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed objects: their text
            arr = pa.array(s.astype("str"), from_pandas=True)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if not pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.large_string())
    enc = pc.dictionary_encode(arr)
    dictionary = enc.dictionary
    order = np.asarray(pc.sort_indices(dictionary), dtype=np.int64)
    order = order[np.asarray(pc.not_equal(dictionary.take(pa.array(order)), ""), dtype=bool)]
    rank = np.full(len(dictionary) + 1, -1, np.int64)
    rank[order] = np.arange(len(order))
    idx = pc.fill_null(enc.indices, len(dictionary)).to_numpy(zero_copy_only=False)
    return rank[idx.astype(np.int64)], dictionary.take(pa.array(order)).cast(pa.string())


def code_identifiers(events: pd.DataFrame, cols: list[str]) -> CodedIdentifiers:
    """Return the identifiers numbered by (type name, value) and the distinct combinations."""
    row_codes: list[np.ndarray] = [np.empty(0, np.int64)] * len(cols)
    values, types = [], []
    offset = 0
    by_name = sorted(range(len(cols)), key=lambda i: cols[i])
    # Arrow's hash kernels are single-threaded and release the GIL: a column per thread
    with ThreadPoolExecutor(max_workers=min(len(cols), os.cpu_count() or 1) or 1) as pool:
        coded = list(pool.map(lambda t: _codes(events, cols[t]), by_name))
    for t, (code, uniq) in zip(by_name, coded, strict=True):
        row_codes[t] = np.where(code >= 0, code + offset, -1)
        values.append(uniq)
        types.append(np.full(len(uniq), t, np.int8))
        offset += len(uniq)
    m = offset
    # the distinct combinations: a hash unique on the code columns (an empty column is all -1)
    used = [t for t in range(len(cols)) if (row_codes[t] >= 0).any()]
    uniq_combos = pl.DataFrame({f"c{t}": row_codes[t] for t in used}).unique()
    n_combos_rows = uniq_combos.height if used else 0
    combos = [
        uniq_combos[f"c{t}"].to_numpy() if t in used else np.full(n_combos_rows, -1, np.int64)
        for t in range(len(cols))
    ]
    rows = np.zeros(m, np.int64)
    n_combos = np.zeros(m, np.int64)
    for t in range(len(cols)):
        rc, cc = row_codes[t], combos[t]
        rows += np.bincount(rc[rc >= 0], minlength=m)
        n_combos += np.bincount(cc[cc >= 0], minlength=m)
    return CodedIdentifiers(
        cols=cols,
        row_codes=row_codes,
        combos=combos,
        values=pa.concat_arrays(values) if values else pa.array([], pa.string()),
        type_of_code=np.concatenate(types) if types else np.zeros(0, np.int8),
        rows=rows,
        n_combos=n_combos,
    )


def _flags(
    values: pa.Array, placeholders: frozenset[str] | set[str], patterns: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Return which distinct values are listed placeholders and placeholder patterns.

    DuckDB judges them with :func:`.guards.placeholder_flags`, the expressions of the engine
    path, so lower-casing and the regular expressions (RE2) mean the same on both paths.
    """
    if not len(values):
        return np.zeros(0, bool), np.zeros(0, bool)
    t = ibis.table({"i": "int64", "v": "string"}, name="cjl_identifier_values")
    ph, pat = placeholder_flags(t.v, placeholders, patterns)
    # the engine path's SQL, run on a bare DuckDB connection (no ibis backend to set up)
    sql = ibis.to_sql(t.select("i", ph=ph, pat=pat), dialect="duckdb")
    con = duckdb.connect()
    try:
        con.register("cjl_identifier_values", pa.table({"i": np.arange(len(values)), "v": values}))
        got = con.execute(str(sql)).fetch_arrow_table()
    finally:
        con.close()
    order = np.argsort(got["i"].to_numpy(), kind="stable")
    return (
        got["ph"].to_numpy(zero_copy_only=False)[order].astype(bool),
        got["pat"].to_numpy(zero_copy_only=False)[order].astype(bool),
    )


def _unique_pairs(a: np.ndarray, b: np.ndarray, m: int) -> np.ndarray:
    """Distinct (a, b) pairs packed as ``a * m + b`` (by hash, not by sort)."""
    if not len(a):
        return np.zeros(0, np.int64)
    return pl.Series(a * m + b).unique().to_numpy()


def link_counts(ci: CodedIdentifiers) -> dict[int, np.ndarray]:
    """Per other type (position in ``cols``): the distinct values of it seen with each code."""
    m, k = ci.m, len(ci.cols)
    out: dict[int, np.ndarray] = {}
    for i in range(k):
        for j in range(i + 1, k):
            a, b = ci.combos[i], ci.combos[j]
            both = (a >= 0) & (b >= 0)
            if not both.any():
                continue
            pairs = _unique_pairs(a[both], b[both], m)
            out.setdefault(j, np.zeros(m, np.int64))
            out.setdefault(i, np.zeros(m, np.int64))
            out[j] += np.bincount(pairs // m, minlength=m)
            out[i] += np.bincount(pairs % m, minlength=m)
    return out


def _limits(k: int, device_idx: list[int], max_links: int, max_device_links: int) -> np.ndarray:
    return np.array([max_device_links if t in device_idx else max_links for t in range(k)])


def worst_links(
    ci: CodedIdentifiers, links: dict[int, np.ndarray], limit: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per code: the other type furthest over its limit (as :func:`.guards.link_counts`).

    Returns links, links_t, excess and cap; -1 in ``links_t`` where a code has no partner.
    """
    m = ci.m
    best = np.full(m, np.iinfo(np.int64).min)
    n_links = np.zeros(m, np.int64)
    links_t = np.full(m, -1, np.int64)
    excess = np.full(m, np.iinfo(np.int64).min)
    for t, k in links.items():
        seen = k > 0
        score = np.where(seen, (k - limit[t]) * 64 + (63 - t), np.iinfo(np.int64).min)
        better = seen & (score > best)
        best = np.where(better, score, best)
        n_links = np.where(better, k, n_links)
        links_t = np.where(better, t, links_t)
        excess = np.where(seen, np.maximum(excess, k - limit[t]), excess)
    cap = np.where(links_t >= 0, limit[np.maximum(links_t, 0)], 0)
    return n_links, links_t, excess, cap


def unrelated(
    ci: CodedIdentifiers,
    links: dict[int, np.ndarray],
    typical: np.ndarray,
    device_idx: list[int],
    min_links: int,
    factor: float,
) -> dict[int, str]:
    """Data-driven placeholders, {code: reason}, as :func:`.guards.unrelated_identifiers`."""
    cap = np.full(len(ci.cols), 2**62, np.int64)
    p99s: dict[int, int] = {}
    for t in range(len(ci.cols)):
        nc = np.sort(ci.n_combos[typical & (ci.type_of_code == t)])
        if not len(nc):
            continue
        cum = np.arange(1, len(nc) + 1) / len(nc)
        p99s[t] = int(nc[np.searchsorted(cum, 0.99 - 1e-12)])
        cap[t] = max(int(min_links), int(np.floor(factor * p99s[t])))
    cand = np.flatnonzero(ci.n_combos > cap[ci.type_of_code])
    out: dict[int, str] = {}
    for code in cand:
        a_t = int(ci.type_of_code[code])
        ks = [(int(links[t][code]), t) for t in device_idx if t != a_t and t in links]
        ks = [(k, t) for k, t in ks if k > 0]
        if not ks:
            continue
        k, t = max(ks, key=lambda kt: (kt[0], -kt[1]))
        lim = int(cap[a_t])
        if k > lim:
            out[int(code)] = (
                f"links {int(ci.rows[code])} unrelated rows ({k} distinct {ci.cols[t]} values > "
                f"{lim} = max(placeholder_min_links={int(min_links)}, {factor:g} x p99 "
                f"{p99s[a_t]} of {ci.cols[a_t]} combinations))"
            )
    return out


def anchors(codes: list[np.ndarray], usable: np.ndarray) -> np.ndarray:
    """Return the smallest usable code of each row or combination (``m``: none)."""
    m = len(usable)
    padded = np.append(usable, False)
    out = np.full(len(codes[0]) if codes else 0, m, np.int64)
    for c in codes:
        present = c >= 0
        if not present.any():
            continue
        np.minimum(out, np.where(padded[np.where(present, c, m)], c, m), out=out)
    return out


def components(ci: CodedIdentifiers, usable: np.ndarray) -> np.ndarray:
    """Return the connected component of every code (edges: each combination's anchor)."""
    m = ci.m
    anchor = anchors(ci.combos, usable)
    padded = np.append(usable, False)
    edges = []
    for c in ci.combos:
        sel = padded[np.where(c >= 0, c, m)] & (c != anchor)
        edges.append(_unique_pairs(anchor[sel], c[sel], m))
    e = np.concatenate(edges) if edges else np.zeros(0, np.int64)
    graph = coo_matrix((np.ones(len(e), np.int8), (e // max(m, 1), e % max(m, 1))), shape=(m, m))
    return connected_components(graph, directed=False)[1].astype(np.int64)


def chain_pairs(
    ci: CodedIdentifiers, in_sub: np.ndarray, usable: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return the (combination, code) pairs of the usable codes in ``in_sub`` (chain guard input)."""
    m = ci.m
    ok = np.append(in_sub & usable, False)
    combo, code = [], []
    for c in ci.combos:
        sel = ok[np.where(c >= 0, c, m)]
        combo.append(np.flatnonzero(sel))
        code.append(c[sel])
    return np.concatenate(combo), np.concatenate(code)


@dataclass
class FastStitch:
    """What :func:`solve` found: flags by code, the components, the guards' findings."""

    ci: CodedIdentifiers
    is_placeholder: np.ndarray
    is_pattern: np.ndarray  # a pattern, not listed
    over_limit: np.ndarray  # seen with too many values of another type (placeholders too)
    unrelated: dict[int, str]
    chain: dict[int, int]
    label: np.ndarray
    usable: np.ndarray  # not blocked by any rule
    type_names: list[str]  # the types with identifiers, by name
    node_type: np.ndarray  # per code: its type's position in type_names
    links: dict[int, np.ndarray]
    limit: np.ndarray


def solve(
    events: pd.DataFrame,
    cols: list[str],
    *,
    max_links: int,
    max_device_links: int,
    device_types: tuple[str, ...],
    placeholders: frozenset[str] | set[str],
    placeholder_patterns: tuple[str, ...],
    placeholder_min_links: int | None,
    placeholder_factor: float,
    max_person_ids: int | None,
) -> FastStitch:
    """Run stitching's steps 1 to 5 on integer codes (see the module); options as ``stitch``."""
    ci = code_identifiers(events, cols)
    m = ci.m
    device_idx = [i for i, c in enumerate(cols) if c in device_types]
    limit = _limits(len(cols), device_idx, max_links, max_device_links)
    links = link_counts(ci)
    _, _, excess, _ = worst_links(ci, links, limit)
    is_ph, is_pat = _flags(ci.values, placeholders, placeholder_patterns)
    flagged = is_ph | is_pat | (excess > 0)
    found: dict[int, str] = {}
    if placeholder_min_links is not None and device_idx:
        found = unrelated(
            ci, links, ~(is_ph | is_pat), device_idx, placeholder_min_links, placeholder_factor
        )
    usable = ~flagged
    if found:
        usable[np.fromiter(found, np.int64)] = False
    label = components(ci, usable)
    present = sorted({cols[t] for t in np.unique(ci.type_of_code)})
    pos = {c: i for i, c in enumerate(present)}
    node_type = np.array([pos.get(c, -1) for c in cols], np.int64)[ci.type_of_code]
    person_types = [i for i, c in enumerate(present) if c not in device_types]
    chain: dict[int, int] = {}
    if max_person_ids is not None and m and person_types:
        over = oversized_persons(label, node_type, usable, person_types, max_person_ids)
        if len(over):
            combo, code = chain_pairs(ci, np.isin(label, over), usable)
            chain = chain_guard(combo, code, node_type, person_types, max_person_ids)
    if chain:
        usable[np.fromiter(chain, np.int64)] = False
        label = components(ci, usable)
    return FastStitch(
        ci,
        is_ph,
        is_pat & ~is_ph,
        excess > 0,
        found,
        chain,
        label,
        usable,
        present,
        node_type,
        links,
        limit,
    )


def row_persons(fs: FastStitch, node_person: np.ndarray) -> np.ndarray:
    """Return the person of every row (0: none): the person of its smallest usable code."""
    anchor = anchors(fs.ci.row_codes, fs.usable)
    return np.append(node_person, 0)[anchor]


def identities_nodes(fs: FastStitch) -> pd.DataFrame:
    """Return the identifiers as the engine path's ``nodes`` (``StitchResult.identities`` reads it)."""
    ci = fs.ci
    n_links, links_t, _, cap = worst_links(ci, fs.links, fs.limit)
    has = links_t >= 0
    type_name = np.array(ci.cols, dtype=object)
    tbl = pa.table(
        {
            "id_type": pa.array(type_name[ci.type_of_code].tolist(), pa.string()),
            "id_value": ci.values,
            "code": pa.array(np.arange(ci.m, dtype=np.int64)),
            "rows": pa.array(ci.rows),
            "placeholder": pa.array(fs.is_placeholder),
            "pattern": pa.array(fs.is_pattern),
            "super": pa.array(fs.over_limit),
            "blocked": pa.array(fs.is_placeholder | fs.is_pattern | fs.over_limit),
            "links": pa.array(n_links, mask=~has),
            "cap": pa.array(cap, mask=~has),
            "links_type": pa.array(
                np.asarray(np.where(has, type_name[np.maximum(links_t, 0)], None)).tolist(),
                pa.string(),
            ),
        }
    )
    return tbl.to_pandas()
