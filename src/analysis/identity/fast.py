"""Stitching on one machine, fast: the rules of :func:`~analysis.identity.stitch` on Arrow data.

The engine path (ibis) numbers the identifiers and counts their links in SQL. Here the same
steps run on integer codes in polars and numpy, with no pandas frame in the middle:

1. each identifier column gets integer codes: its distinct values sorted, the columns in the
   order of their names, so a code orders as (type, value) does in the engine
   (:mod:`.fast_codes`);
2. the distinct identifier combinations (a hash unique on one 64-bit key per row), the rows
   and combinations of every identifier, the distinct pairs of identifiers seen together;
3. link counts from those pairs; placeholders (listed values and patterns: printable ASCII
   values against simple patterns in polars, where lower-casing, the normalisation and the
   regular expression provably mean what they mean in the engine; every other value judged by
   DuckDB with the very expressions of the engine path), super-nodes, data-driven
   placeholders and the chain guard (:mod:`.guards`, the same functions);
4. persons are the connected components of the pairs of usable identifiers (a union-find);
   the person of a row is a lookup (all the usable identifiers of a row are in one person).

The result is the engine path's, to the row and to the identifier (tests/identity compare
them); :func:`stitch` picks this path for ``engine="polars"`` (the default).
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import duckdb
import ibis
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa

from analysis.identity import kernels
from analysis.identity.fast_codes import CodedIdentifiers, code_columns, combinations
from analysis.identity.guards import chain_guard, oversized_persons, placeholder_flags

#: Patterns that RE2 (DuckDB) and Rust's regex (polars) read alike: literals, groups ``(…)``
#: and ``(?:…)``, alternation, ``+ * ?`` and ``.`` (no classes, escapes, flags or anchors).
_SIMPLE_PATTERN = re.compile(r"(?:\(\?:|\((?!\?)|[)|+*?.]|\w)*")
_NORMALISED = "0123456789abcdefghijklmnopqrstuvwxyz"  # what normalised printable ASCII is made of


def _whole(patterns: tuple[str, ...]) -> str:
    """Return the one expression of :func:`.guards.placeholder_flags`: any pattern, whole."""
    return "^(?:" + "|".join(f"(?:{p})" for p in patterns) + ")$"


def _cannot_match(patterns: tuple[str, ...]) -> str | None:
    """Return a class of the ASCII characters that no match of the simple ``patterns`` holds.

    A match of a simple pattern without ``.`` is made of the pattern's literal characters, so
    a value holding another of ``[0-9a-z]`` (or its capital) cannot match after normalisation.
    None where every character may.
    """
    if any("." in p for p in patterns):
        return None
    literal = set("".join(patterns))
    out = "".join(c + c.upper() * c.isalpha() for c in _NORMALISED if c not in literal)
    return f"[{out}]" if out else None


def _placeholder_values_ascii(
    values: pl.Series, placeholders: list[str], patterns: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Judge the ASCII ``values`` in polars where that means what it means in DuckDB.

    Returns the listed placeholders, the pattern matches and which values DuckDB must still
    judge for patterns. DuckDB's ``lower`` maps A-Z to a-z on ASCII, as polars does. On
    printable ASCII, removing ``[\s\p{P}\p{S}]`` (RE2's ``\s`` is ``[\t\n\f\r ]``; every
    ASCII punctuation mark is a P or S character) leaves ``[0-9a-z]``, on which a simple
    pattern matches alike in both engines; a value with a control character goes to DuckDB
    unless it holds a character no match can hold (:func:`_cannot_match`).
    """
    listed = values.str.to_lowercase().is_in(placeholders).to_numpy()
    pattern = np.zeros(len(values), bool)
    if not patterns:
        return listed, pattern, np.zeros(len(values), bool)
    no_match = _cannot_match(patterns)
    maybe = np.flatnonzero(
        ~values.str.contains(no_match).to_numpy() if no_match else np.ones(len(values), bool)
    )
    cand = values.gather(maybe)
    printable = cand.str.contains("^[ -~]*$").to_numpy()
    norm = cand.filter(printable).str.to_lowercase().str.replace_all("[^0-9a-z]", "")
    pattern[maybe[printable]] = norm.str.contains(_whole(patterns)).to_numpy()
    engine = np.zeros(len(values), bool)
    engine[maybe[~printable]] = True
    return listed, pattern & ~listed, engine


def placeholder_values_engine(
    values: pa.Array, placeholders: frozenset[str] | set[str], patterns: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Return which ``values`` are listed placeholders and placeholder patterns (DuckDB).

    DuckDB judges them with :func:`.guards.placeholder_flags`, the expressions of the engine
    path, so lower-casing and the regular expressions (RE2) mean the same on both paths. It
    runs on no values too: an invalid pattern fails here as it fails there.
    """
    t = ibis.table({"i": "int64", "v": "string"}, name="cjl_identifier_values")
    ph, pat = placeholder_flags(t.v, placeholders, patterns)
    # the engine path's SQL, run on a bare DuckDB connection (no ibis backend to set up)
    sql = ibis.to_sql(t.select("i", ph=ph, pat=pat), dialect="duckdb")
    con = duckdb.connect()
    try:
        con.register("cjl_identifier_values", pa.table({"i": np.arange(len(values)), "v": values}))
        got = con.execute(str(sql)).to_arrow_table()
    finally:
        con.close()
    order = np.argsort(got["i"].to_numpy(), kind="stable")
    return (
        got["ph"].to_numpy(zero_copy_only=False)[order].astype(bool),
        got["pat"].to_numpy(zero_copy_only=False)[order].astype(bool),
    )


def placeholder_values(
    values: pa.Array, placeholders: frozenset[str] | set[str], patterns: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Return which distinct values are listed placeholders and placeholder patterns.

    ASCII values are judged in polars when every pattern is simple (see
    :func:`_placeholder_values_ascii`); the others by DuckDB
    (:func:`placeholder_values_engine`).
    """
    n = len(values)
    ph, pat = np.zeros(n, bool), np.zeros(n, bool)
    if not n:
        return ph, pat
    engine = np.ones(n, bool)
    if all(_SIMPLE_PATTERN.fullmatch(p) for p in patterns):
        s = pl.Series(values)
        ascii_ = (s.str.len_bytes() == s.str.len_chars()).to_numpy()
        quick = np.flatnonzero(ascii_)
        try:
            ph_q, pat_q, engine_q = _placeholder_values_ascii(
                s.gather(quick), sorted({p.strip().lower() for p in placeholders}), patterns
            )
        except pl.exceptions.ComputeError:  # a pattern Rust's regex refuses: DuckDB judges
            pass
        else:
            ph[quick], pat[quick] = ph_q, pat_q
            engine[quick] = engine_q
    if engine.any():
        rest = np.flatnonzero(engine)
        ph[rest], pat[rest] = placeholder_values_engine(
            values.take(pa.array(rest)), placeholders, patterns
        )
    elif patterns:  # RE2 compiles the patterns: an invalid one fails as on the engine path
        con = duckdb.connect()
        try:
            con.execute("SELECT regexp_matches('', $1)", [_whole(patterns)]).fetchall()
        finally:
            con.close()
    return ph, pat


def link_counts(ci: CodedIdentifiers) -> dict[int, np.ndarray]:
    """Per other type (position in ``cols``): the distinct values of it seen with each code."""
    counts, seen = kernels.link_counts(len(ci.cols), ci.type_of_code, ci.pair_a, ci.pair_b)
    return {int(t): counts[t] for t in np.flatnonzero(seen)}


def type_limits(k: int, device_idx: list[int], max_links: int, max_device_links: int) -> np.ndarray:
    """Return the link limit of each of ``k`` types: ``max_device_links`` for device-level ones."""
    return np.array([max_device_links if t in device_idx else max_links for t in range(k)])


def over_limit(links: dict[int, np.ndarray], limit: np.ndarray, m: int) -> np.ndarray:
    """Return, per code, whether it is seen with more values of some type than that type allows.

    ``links``: :func:`link_counts`; ``limit``: :func:`type_limits`.
    """
    out = np.zeros(m, bool)
    for t, k in links.items():
        out |= k > max(int(limit[t]), 0)
    return out


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


def components(ci: CodedIdentifiers, usable: np.ndarray) -> np.ndarray:
    """Return the connected component of every code (edges: the pairs of usable codes).

    Numbered as scipy's ``connected_components`` numbers them (by smallest code), by a
    compiled union-find (:func:`.kernels.components`).
    """
    return kernels.components(ci.m, ci.pair_a, ci.pair_b, usable)


def chain_pairs(
    ci: CodedIdentifiers, in_sub: np.ndarray, usable: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return the (combination, code) pairs of the usable codes in ``in_sub`` (chain guard input).

    The pairs of :meth:`.CodedIdentifiers.combo_codes` that pass, in its order, filtered part
    by part (never every pair at once).
    """
    keep = in_sub & usable
    lo, hi = ci.combo_lo, ci.combo_hi
    lo_ok = keep[lo]
    hi_ok = (hi != lo) & keep[hi]
    combo = [np.flatnonzero(lo_ok), np.flatnonzero(hi_ok)]
    code = [lo[lo_ok].astype(np.int64), hi[hi_ok].astype(np.int64)]
    keep_or_missing = np.append(keep, False)  # code -1 (missing): the appended False
    for c in ci.multi.values():
        at = np.flatnonzero(keep_or_missing[c])
        combo.append(len(lo) + at)
        code.append(c[at].astype(np.int64))
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
    cc = code_columns(events, cols)
    # the values are judged while the combinations are found (both release the GIL)
    with ThreadPoolExecutor(max_workers=1) as judge:
        judged = judge.submit(placeholder_values, cc.values, placeholders, placeholder_patterns)
        ci = combinations(cc)
        is_ph, is_pat = judged.result()
    m = ci.m
    device_idx = [i for i, c in enumerate(cols) if c in device_types]
    limit = type_limits(len(cols), device_idx, max_links, max_device_links)
    links = link_counts(ci)
    is_over = over_limit(links, limit, m)
    flagged = is_ph | is_pat | is_over
    found: dict[int, str] = {}
    if placeholder_min_links is not None and device_idx:
        found = unrelated(
            ci, links, ~(is_ph | is_pat), device_idx, placeholder_min_links, placeholder_factor
        )
    usable = ~flagged
    if found:
        usable[np.fromiter(found, np.int64)] = False
    label = components(ci, usable)
    present = sorted(
        cols[t] for t in np.flatnonzero(np.bincount(ci.type_of_code, minlength=len(cols)))
    )
    pos = {c: i for i, c in enumerate(present)}
    node_type = np.array([pos.get(c, -1) for c in cols], np.int64)[ci.type_of_code]
    person_types = [i for i, c in enumerate(present) if c not in device_types]
    chain: dict[int, int] = {}
    if max_person_ids is not None and m and person_types:
        over = oversized_persons(label, node_type, usable, person_types, max_person_ids)
        if len(over):
            in_over = np.zeros(int(label.max()) + 1, bool)
            in_over[over] = True
            combo, code = chain_pairs(ci, in_over[label], usable)
            chain = chain_guard(combo, code, node_type, person_types, max_person_ids)
    if chain:
        usable[np.fromiter(chain, np.int64)] = False
        label = components(ci, usable)
    return FastStitch(
        ci,
        is_ph,
        is_pat & ~is_ph,
        is_over,
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
    """Return the person of every row (0: none): the person of its usable codes.

    The usable codes of a row are linked, so they share one person; a blocked code's person
    is 0, so the largest over the row's codes is that person (or 0).
    """
    small = np.int32 if len(node_person) < 2**31 - 1 else np.int64  # persons <= codes
    table = node_person.astype(small)
    person = np.zeros(fs.ci.n_rows, np.int64)
    for c in fs.ci.row_codes.values():  # a compiled pass per column
        kernels.raise_persons(person, c, table)
    return person


def identities_nodes(fs: FastStitch) -> pd.DataFrame:
    """Return the identifiers as the engine path's ``nodes`` (``StitchResult.identities`` reads it)."""
    ci = fs.ci
    n_links, links_t, _, cap = worst_links(ci, fs.links, fs.limit)
    has = links_t >= 0
    type_name = pa.array(ci.cols, pa.string())
    tbl = pa.table(
        {
            "id_type": type_name.take(pa.array(ci.type_of_code)),
            "id_value": ci.values,
            "code": pa.array(np.arange(ci.m, dtype=np.int64)),
            "rows": pa.array(ci.rows),
            "placeholder": pa.array(fs.is_placeholder),
            "pattern": pa.array(fs.is_pattern),
            "super": pa.array(fs.over_limit),
            "blocked": pa.array(fs.is_placeholder | fs.is_pattern | fs.over_limit),
            "links": pa.array(n_links, mask=~has),
            "cap": pa.array(cap, mask=~has),
            "links_type": type_name.take(pa.array(np.maximum(links_t, 0), mask=~has)),
        }
    )
    return tbl.to_pandas()
