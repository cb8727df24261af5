"""Stitching: identifiers that co-occur on a row become one person (see :mod:`analysis.identity`).

:func:`stitch` runs in named steps: the distinct identifier combinations, the identifiers
numbered by (type, value), the link counts and placeholder flags, the data-driven
placeholders, the connected components (with the chain guard), the person numbering, and the
rows mapped to their person.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import ibis
import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from analysis import config
from analysis.engine import connect, table, to_pandas
from analysis.identity import fast, kernels
from analysis.identity.guards import (
    DEFAULT_PLACEHOLDER_PATTERNS,
    DEFAULT_PLACEHOLDERS,
    DEVICE_TYPES,
    PLACEHOLDER_FACTOR,
    PLACEHOLDER_MIN_LINKS,
    chain_guard,
    link_counts,
    oversized_persons,
    placeholder_flags,
    unrelated_identifiers,
)
from analysis.identity.result import StitchResult
from analysis.schema import IDENTIFIER_COLUMNS, DataError

log = logging.getLogger(__name__)

_HASH_JOIN = True  # map rows to combinations by hash when collision-free (tests switch it off)


def _identifier_columns(events: pd.DataFrame, identifiers: list[str] | None) -> list[str]:
    """Return the identifier columns to stitch on: ``identifiers``, else the loader's, present."""
    if identifiers is None:  # the loader's list (it includes extra identifiers such as phone_hash)
        wanted = list(
            (events.attrs.get("load_report") or {}).get("identifiers") or IDENTIFIER_COLUMNS
        )
    else:
        wanted = list(identifiers)
    cols = [c for c in wanted if c in events.columns]
    if not cols:
        raise DataError(
            "no identifier column to stitch on",
            column=wanted,
            fix="load the data with analysis.load_events (which checks identifiers), or pass "
            "identifiers=[...] naming the identifier columns",
        )
    return cols


def stitch(
    events: pd.DataFrame,
    *,
    identifiers: list[str] | None = None,
    max_links: int = config.MAX_LINKS,
    max_device_links: int = config.MAX_DEVICE_LINKS,
    device_types: tuple[str, ...] = DEVICE_TYPES,
    placeholders: frozenset[str] | set[str] = DEFAULT_PLACEHOLDERS,
    placeholder_patterns: tuple[str, ...] | list[str] | None = None,
    placeholder_min_links: int | None = PLACEHOLDER_MIN_LINKS,
    placeholder_factor: float = PLACEHOLDER_FACTOR,
    max_person_ids: int | str | None = "max_links",
    engine: str = "polars",
) -> StitchResult:
    """Assign a ``person_id`` to every row by connecting identifiers that co-occur.

    Parameters
    ----------
    events : pandas.DataFrame
        Touchpoints; needs at least one identifier column (see ``schema.IDENTIFIER_COLUMNS``).
    identifiers : list of str, optional
        Identifier columns to use. Default: those recorded by the loader in
        ``events.attrs["load_report"]["identifiers"]`` (``load_events``, the source adapters,
        ``combine_sources``; this includes extra identifiers such as ``phone_hash``), else those
        of ``schema.IDENTIFIER_COLUMNS``; the ones present are used.
    max_links : int, default ``config.MAX_LINKS`` (3)
        An identifier seen with more than this many distinct values of one person-level type
        (any type not in ``device_types``) is shared and does not link rows.
    max_device_links : int, default ``config.MAX_DEVICE_LINKS`` (50)
        The same limit for values of one device-level type.
    device_types : tuple of str, default ``("device_id", "cookie_id")``
        Identifier types that name a device or browser rather than a person.
    placeholders : set of str, default :data:`DEFAULT_PLACEHOLDERS`
        Values that never link rows (matched case-insensitively).
    placeholder_patterns : sequence of str, optional
        Regular expressions; a value whose normalised form (lower-cased, without whitespace,
        punctuation and symbols) matches one as a whole never links rows ("placeholder
        pattern"). Default: :data:`DEFAULT_PLACEHOLDER_PATTERNS`, or none when
        ``placeholders`` is empty (``placeholders=set()`` turns every placeholder list off).
        ``()`` turns the patterns off.
    placeholder_min_links, placeholder_factor : int or None, float, default 20, 5.0
        An identifier seen with more than ``max(placeholder_min_links, placeholder_factor ×
        p99)`` distinct identifiers of one device-level type, p99 being the 99th percentile of
        the number of identifier combinations of the identifiers of its type, is a placeholder
        ("links N unrelated rows"). ``placeholder_min_links=None`` turns this off.
    max_person_ids : int or None, default ``max_links`` (3)
        A person with more identifiers of one person-level type is a chain: the identifiers
        bridging them are blocked ("bridges N persons (chain)") and the persons solved again.
        The default follows ``max_links``: a device with up to ``max_links`` logins is not a
        super-node, so a person may hold that many. ``None`` turns the guard off.
    engine : {"polars", "duckdb", "spark"}, default "polars"
        Where the heavy steps run. ``"polars"``: on one machine, on integer codes in Arrow,
        polars and compiled loops (:mod:`.fast`; the fastest here); ``"duckdb"``, ``"spark"``: ibis
        expressions on that engine. All give the same result.

    Returns
    -------
    StitchResult
        ``person_id`` values are 1..n, numbered in the order of each person's smallest
        identifier (type, then value), so they do not depend on row order or engine.
    """
    max_person_ids, placeholder_patterns = check_options(
        max_links,
        max_device_links,
        max_person_ids,
        placeholders,
        placeholder_patterns,
        placeholder_min_links,
        placeholder_factor,
    )
    cols = _identifier_columns(events, identifiers)
    n = len(events)
    t_start = time.perf_counter()
    log.info("stitching %s rows on %s (%s)", f"{n:,}", ", ".join(cols), engine)
    limits = {
        "max_links": max_links,
        "max_device_links": max_device_links,
        "max_person_ids": max_person_ids,
        "placeholder_patterns": len(placeholder_patterns),
        "placeholder_min_links": placeholder_min_links,
        "placeholder_factor": placeholder_factor,
        "engine": engine,
    }
    if engine == "polars":
        patterns = (placeholders, placeholder_patterns)
        return _fast_result(events, cols, limits, device_types, patterns, t_start)
    con = connect(engine)
    t, combos, by_hash = _combinations(con, events, cols)
    g = _identifiers(combos, cols, device_types, max_links, max_device_links)
    f = _block(con, g, placeholders, placeholder_patterns, max_links, max_device_links)

    unrelated = _unrelated(
        con, g, placeholders, placeholder_patterns, placeholder_min_links, placeholder_factor
    )
    is_unrelated = _mask(f.m, unrelated)
    blocked = f.blocked | is_unrelated

    # 5. edges: link each usable identifier of a combination to the combination's first one;
    #    then the chain guard, which may block bridges and solve again
    lc, anchor, label = _solve(con, g, f.m, np.flatnonzero(is_unrelated))
    chain = _chains(con, lc, label, blocked, f, device_types, max_person_ids)
    is_chain = _mask(f.m, chain)
    if chain:
        blocked = blocked | is_chain
        lc, anchor, label = _solve(con, g, f.m, np.flatnonzero(is_unrelated | is_chain))

    node_person, n_persons = number_persons(label, blocked, f.m)
    person = _row_persons(con, t, combos, anchor, by_hash, cols, node_person, n)
    out = events.assign(person_id=pd.arrays.IntegerArray(person, person == 0))

    summary = {
        **_counts(n, f, blocked, is_unrelated, is_chain, node_person, n_persons, person),
        **limits,
    }
    log.info(
        "stitched %s identifiers into %s persons (%s blocked) in %.1f s",
        f"{f.m:,}",
        f"{n_persons:,}",
        summary["blocked"],
        time.perf_counter() - t_start,
    )
    return StitchResult(
        events=out,
        summary=summary,
        _nodes=g.identities,
        _node_person=node_person,
        _con=con,
        _limits={
            "device_types": tuple(device_types),
            "unrelated": unrelated,
            "chain": chain,
            "max_person_ids": max_person_ids,
        },
    )


@dataclass
class _Graph:
    """The identifiers in the engine: numbered, with their combinations and flags (ibis)."""

    lc_all: ibis.Table  # (_combo, code, t_idx): the identifiers of each combination
    ident: ibis.Table  # one row per identifier: o_idx, id_value, rows, n_combos, code, id_type
    nodes: ibis.Table  # id_type, id_value, code, rows, excess (and the flags, once blocked)
    type_idx: dict[str, int]  # identifier column → its position in the columns
    name_rank: dict[str, int]  # identifier column → its rank by name
    device_idx: list[int]  # positions of the device-level columns
    identities: Any = None  # the table behind StitchResult.identities (ibis)


@dataclass
class _Flags:
    """The identifiers in memory, by code: what blocks them, and their types."""

    m: int  # identifiers
    blocked: np.ndarray
    is_placeholder: np.ndarray
    is_pattern: np.ndarray
    is_super: np.ndarray
    by_type: pd.DataFrame  # id_type, n (sorted by type)
    node_type: np.ndarray  # per code: the index of its type in ``type_names``
    type_names: list[str]


def check_options(
    max_links: int,
    max_device_links: int,
    max_person_ids: int | str | None,
    placeholders: frozenset[str] | set[str],
    placeholder_patterns: tuple[str, ...] | list[str] | None,
    placeholder_min_links: int | None,
    placeholder_factor: float,
) -> tuple[int | None, tuple[str, ...]]:
    """Raise on invalid limits; return ``max_person_ids`` and the placeholder patterns resolved.

    Shared by every engine's stitching (:func:`stitch`, ``analysis.spark.stitch``), so the
    same options fail with the same message everywhere.
    """
    if max_links < 1 or max_device_links < 1:
        raise ValueError(
            f"max_links and max_device_links must be >= 1, got {max_links}, {max_device_links}"
        )
    if isinstance(max_person_ids, str):
        if max_person_ids != "max_links":
            raise ValueError(
                f"max_person_ids must be an int, None or 'max_links', got {max_person_ids!r}"
            )
        max_person_ids = max_links
    if placeholder_patterns is None:
        placeholder_patterns = DEFAULT_PLACEHOLDER_PATTERNS if placeholders else ()
    placeholder_patterns = tuple(placeholder_patterns)
    if max_person_ids is not None and max_person_ids < 1:
        raise ValueError(f"max_person_ids must be >= 1 or None, got {max_person_ids}")
    if placeholder_min_links is not None and (
        placeholder_min_links < 1 or not placeholder_factor >= 0
    ):
        raise ValueError(
            f"placeholder_min_links must be >= 1 or None and placeholder_factor >= 0, got "
            f"{placeholder_min_links}, {placeholder_factor}"
        )
    return max_person_ids, placeholder_patterns


def _combinations(
    con: Any, events: pd.DataFrame, cols: list[str]
) -> tuple[ibis.Table, ibis.Table, bool]:
    """Return the rows, their distinct identifier combinations (cached) and whether by hash.

    Step 1: distinct identifier combinations (far fewer than rows), with a hash of each: rows
    are mapped back to their combination by that one integer instead of a null-safe join on
    every identifier column, when the hashes of the combinations are all distinct.
    """
    ids = events[cols].copy(deep=False)
    for c in cols:  # identifiers are strings (a numeric CRM id becomes its text)
        if not (pd.api.types.is_string_dtype(ids[c]) or ids[c].dtype == object):
            ids[c] = ids[c].astype("str")
    ids["_row"] = np.arange(len(events), dtype=np.int64)
    t = table(con, ids)
    # No strip(): ibis' PySpark compilation of strip() also removes the letter "f" from the ends
    # ("…caf" → "…ca"). The loader trims values; here they are compared exactly.
    t = t.mutate(**{c: t[c].cast("string").nullif("") for c in cols})
    t = t.mutate(_h=ibis.struct({c: t[c] for c in cols}).hash())
    combos = t.group_by(cols).aggregate(n_rows=ibis._.count(), _h=t._h.min()).cache()
    counts = to_pandas(con, combos.aggregate(n=combos.count(), n_h=combos._h.nunique()))
    by_hash = _HASH_JOIN and int(counts["n"].iloc[0]) == int(counts["n_h"].iloc[0])
    # the hash is the combination's key when it is collision-free (no numbering pass needed)
    combos = (
        combos.mutate(_combo=combos._h)
        if by_hash
        else combos.mutate(_combo=ibis.row_number()).cache()
    )
    return t, combos, by_hash


def _identifiers(
    combos: ibis.Table,
    cols: list[str],
    device_types: tuple[str, ...],
    max_links: int,
    max_device_links: int,
) -> _Graph:
    """Give each identifier a number; count the links of those that may be over a limit.

    ``combos``: the distinct identifier combinations (``cols``, ``n_rows``, ``_combo``). Returns
    the graph: ``lc_all``
    (``_combo``, ``code``, ``t_idx``), ``ident`` (``o_idx``, ``id_value``, ``rows``,
    ``n_combos``, ``code``, ``id_type``), ``nodes`` (with ``excess`` links), the type indices.

    Step 2: unpivot to (combo, type, value); number the identifiers by (type, value) once, so
    the joins and counts below run on integers, not on long strings like e-mail hashes. The
    type is carried as a small integer (its rank by name, so ordering by it orders by type
    name): comparing and hashing a literal string per row costs seconds at 10M.

    Step 3: links, the distinct identifiers of each other type seen with each identifier. An
    identifier in k combinations is seen with at most k values of any type, so only those in
    more combinations than the smaller limit can be over a limit; the full counts (for the
    ``identities`` table) are computed only when that table is asked for.
    """
    type_idx = {c: i for i, c in enumerate(cols)}
    name_rank = {c: r for r, c in enumerate(sorted(cols))}
    long = ibis.union(
        *[
            combos.filter(combos[c].notnull()).select(
                "_combo", "n_rows", o_idx=ibis.literal(name_rank[c], "int8"), id_value=combos[c]
            )
            for c in cols
        ]
    ).cache()
    # the rows and combinations of each identifier come with the distinct identifiers (one
    # hash aggregate), not from a second group-by over the unpivoted combinations
    ident = long.group_by(["o_idx", "id_value"]).aggregate(
        rows=long.n_rows.sum(), n_combos=long.count()
    )
    ident = ident.mutate(code=ibis.row_number().over(order_by=[ident.o_idx, ident.id_value]))
    ident = ident.mutate(id_type=ident.o_idx.cases(*[(r, c) for c, r in name_rank.items()]))
    ident = ident.cache()
    lc_all = long.join(ident, [long.o_idx == ident.o_idx, long.id_value == ident.id_value])
    lc_all = lc_all.select(
        "_combo",
        "code",
        t_idx=lc_all.o_idx.cases(*[(name_rank[c], i) for c, i in type_idx.items()]).cast("int8"),
    ).cache()

    device_idx = [type_idx[c] for c in cols if c in device_types]
    cand = ident.filter(ident.n_combos > min(max_links, max_device_links)).select(c_code="code")
    links = link_counts(lc_all, cand, device_idx, max_links, max_device_links)
    nodes = ident.left_join(links, ident.code == links.a_code).select(
        "id_type", "id_value", "code", "rows", "excess"
    )
    return _Graph(lc_all, ident, nodes, type_idx, name_rank, device_idx)


def _block(
    con: Any,
    g: _Graph,
    placeholders: frozenset[str] | set[str],
    placeholder_patterns: tuple[str, ...],
    max_links: int,
    max_device_links: int,
) -> _Flags:
    """Block placeholders (listed values and patterns) and super-nodes (step 4).

    Sets ``g.nodes`` (cached, with the flags) and ``g.identities``; returns the flags by code.
    """
    nodes = g.nodes
    placeholder, pattern = placeholder_flags(nodes.id_value, placeholders, placeholder_patterns)
    super_node = nodes.excess.fill_null(0) > 0
    nodes = nodes.mutate(placeholder=placeholder, pattern=pattern, super=super_node)
    nodes = nodes.mutate(blocked=nodes.placeholder | nodes.pattern | nodes.super).cache()
    all_links = link_counts(g.lc_all, None, g.device_idx, max_links, max_device_links)
    type_name = [(i, c) for c, i in g.type_idx.items()]
    identities_expr = nodes.left_join(all_links, nodes.code == all_links.a_code).select(
        nodes, all_links.links, all_links.cap, all_links.links_t
    )
    g.identities = identities_expr.mutate(
        links_type=identities_expr.links_t.cases(*type_name)
    ).drop("links_t", "excess")
    g.nodes = nodes
    flags = con.to_pyarrow(nodes.select("code", "blocked", "placeholder", "pattern"))
    order = np.argsort(flags["code"].to_numpy(), kind="stable")
    blocked = flags["blocked"].to_numpy(zero_copy_only=False)[order]
    is_placeholder = flags["placeholder"].to_numpy(zero_copy_only=False)[order]
    is_pattern = flags["pattern"].to_numpy(zero_copy_only=False)[order]
    by_type = to_pandas(con, nodes.group_by("id_type").aggregate(n=nodes.count()))
    by_type = by_type.sort_values("id_type")
    return _Flags(
        m=flags.num_rows,
        blocked=blocked,
        is_placeholder=is_placeholder,
        is_pattern=is_pattern,
        is_super=blocked & ~is_placeholder & ~is_pattern,
        by_type=by_type,
        # codes are numbered by (type name, value): the type of a code is its block of codes
        node_type=np.repeat(np.arange(len(by_type)), by_type["n"].to_numpy().astype(np.int64)),
        type_names=list(by_type["id_type"]),
    )


def _unrelated(
    con: Any,
    g: _Graph,
    placeholders: frozenset[str] | set[str],
    placeholder_patterns: tuple[str, ...],
    placeholder_min_links: int | None,
    placeholder_factor: float,
) -> dict[int, str]:
    """Return the data-driven placeholders, {code: reason} (step 4b).

    Identifiers with far more device-level partners than the typical identifier of their type;
    none when ``placeholder_min_links`` is None or there is no device-level type.
    """
    if placeholder_min_links is None or not g.device_idx:
        return {}
    ph, pat = placeholder_flags(g.ident.id_value, placeholders, placeholder_patterns)
    return unrelated_identifiers(
        con,
        g.ident,
        ~(ph | pat),
        g.lc_all,
        g.device_idx,
        g.name_rank,
        g.type_idx,
        placeholder_min_links,
        placeholder_factor,
    )


def _mask(m: int, codes: dict[int, Any]) -> np.ndarray:
    """Return a boolean array over the ``m`` codes, True at the keys of ``codes``."""
    out = np.zeros(m, dtype=bool)
    if codes:
        out[np.fromiter(codes, dtype=np.int64)] = True
    return out


def _solve(
    con: Any, g: _Graph, m: int, extra: np.ndarray
) -> tuple[ibis.Table, ibis.Table, np.ndarray]:
    """Return the usable (combination, code) pairs, each combination's anchor, and components.

    Step 5: link each usable identifier of a combination (not blocked, not in ``extra``) to
    the combination's first one; the persons are the connected components of those edges.
    """
    nodes, lc_all = g.nodes, g.lc_all
    usable = nodes.filter(~nodes.blocked).select(u_code="code")
    if len(extra):
        ex = table(con, pd.DataFrame({"x_code": extra.astype(np.int64)}), materialize=True)
        usable = usable.anti_join(ex, usable.u_code == ex.x_code)
    lc = lc_all.join(usable, lc_all.code == usable.u_code).select("_combo", "code")
    # a hash aggregate and an equi-join on _combo (`code != anchor` only filters after
    # it): a window partitioned by 4M combinations sorts them all
    anchor = lc.group_by("_combo").aggregate(anchor=lc.code.min()).cache()
    e = lc.join(anchor, "_combo")
    edges = con.to_pyarrow(e.filter(e.code != e.anchor).select("anchor", "code").distinct())
    src = edges["anchor"].to_numpy()
    dst = edges["code"].to_numpy()
    graph = coo_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(m, m))
    return lc, anchor, connected_components(graph, directed=False)[1].astype(np.int64)


def _chains(
    con: Any,
    lc: ibis.Table,
    label: np.ndarray,
    blocked: np.ndarray,
    f: _Flags,
    device_types: tuple[str, ...],
    max_person_ids: int | None,
) -> dict[int, int]:
    """Return the chain guard's bridges to block: {code: persons it bridged} (step 5, again)."""
    person_types = [i for i, c in enumerate(f.type_names) if c not in device_types]
    if max_person_ids is None or not f.m or not person_types:
        return {}
    over = oversized_persons(label, f.node_type, ~blocked, person_types, max_person_ids)
    if not len(over):
        return {}
    sub = table(
        con,
        pd.DataFrame({"s_code": np.flatnonzero(np.isin(label, over) & ~blocked)}),
        materialize=True,
    )
    pairs = con.to_pyarrow(lc.join(sub, lc.code == sub.s_code).select("_combo", "code"))
    return chain_guard(
        pairs["_combo"].to_numpy(),
        pairs["code"].to_numpy(),
        f.node_type,
        person_types,
        max_person_ids,
    )


def _fast_result(
    events: pd.DataFrame,
    cols: list[str],
    limits: dict[str, Any],
    device_types: tuple[str, ...],
    patterns: tuple[frozenset[str] | set[str], tuple[str, ...]],
    t_start: float,
) -> StitchResult:
    """Stitch on the fast path (:mod:`.fast`) and return what :func:`stitch` returns.

    ``patterns``: the listed placeholders and the placeholder patterns.
    """
    fs = fast.solve(
        events,
        cols,
        max_links=limits["max_links"],
        max_device_links=limits["max_device_links"],
        device_types=device_types,
        placeholders=patterns[0],
        placeholder_patterns=patterns[1],
        placeholder_min_links=limits["placeholder_min_links"],
        placeholder_factor=limits["placeholder_factor"],
        max_person_ids=limits["max_person_ids"],
    )
    m = fs.ci.m
    by_type = pd.DataFrame(
        {"id_type": fs.type_names, "n": np.bincount(fs.node_type, minlength=len(fs.type_names))}
    )
    f = _Flags(
        m=m,
        blocked=fs.is_placeholder | fs.is_pattern | fs.over_limit,
        is_placeholder=fs.is_placeholder,
        is_pattern=fs.is_pattern,
        is_super=fs.over_limit & ~fs.is_placeholder & ~fs.is_pattern,
        by_type=by_type,
        node_type=fs.node_type,
        type_names=fs.type_names,
    )
    is_unrelated, is_chain = _mask(m, fs.unrelated), _mask(m, fs.chain)
    blocked = ~fs.usable
    node_person, n_persons = kernels.number_components(fs.label[:m], blocked[:m])
    person = fast.row_persons(fs, node_person)
    out = events.assign(person_id=pd.arrays.IntegerArray(person, person == 0))
    summary = {
        **_counts(len(events), f, blocked, is_unrelated, is_chain, node_person, n_persons, person),
        **limits,
    }
    log.info(
        "stitched %s identifiers into %s persons (%s blocked) in %.1f s",
        f"{m:,}",
        f"{n_persons:,}",
        summary["blocked"],
        time.perf_counter() - t_start,
    )
    return StitchResult(
        events=out,
        summary=summary,
        _node_person=node_person,
        _limits={
            "device_types": tuple(device_types),
            "unrelated": fs.unrelated,
            "chain": fs.chain,
            "max_person_ids": limits["max_person_ids"],
        },
        _nodes_fn=lambda: fast.identities_nodes(fs),
    )


def number_persons(label: np.ndarray, blocked: np.ndarray, m: int) -> tuple[np.ndarray, int]:
    """Return each code's person (0: blocked), numbered by smallest usable code, and their count.

    Plain numpy, apart from the fast path's compiled ``kernels.number_components`` (parity).
    """
    label, blocked = label[:m], blocked[:m]
    usable_codes = np.flatnonzero(~blocked)
    comps, first_idx = np.unique(label[usable_codes], return_index=True)
    comps = comps[np.argsort(usable_codes[first_idx], kind="stable")]
    person_of_label = np.zeros(label.max() + 1 if m else 0, dtype=np.int64)
    person_of_label[comps] = np.arange(1, len(comps) + 1)
    return np.where(blocked, 0, person_of_label[label]) if m else np.zeros(0, np.int64), len(comps)


def _row_persons(
    con: Any,
    t: ibis.Table,
    combos: ibis.Table,
    anchor: ibis.Table,
    by_hash: bool,
    cols: list[str],
    node_person: np.ndarray,
    n: int,
) -> np.ndarray:
    """Return the person of each row (0: none): rows → combination → anchor → person (step 6)."""
    if by_hash:  # _combo is _h
        row_anchor = t.select("_row", "_h").join(anchor, t._h == anchor._combo)
        row_anchor = row_anchor.select("_row", "anchor")
    else:  # a hash collision (e.g. a 32-bit hash on Spark): the exact join on every column
        row_anchor = t.left_join(combos, [t[c].identical_to(combos[c]) for c in cols]).select(
            t._row, combos._combo
        )
        row_anchor = row_anchor.left_join(anchor, "_combo").select("_row", "anchor")
    ra = con.to_pyarrow(row_anchor)
    rows_idx = ra["_row"].to_numpy()
    anc = ra["anchor"].to_numpy(zero_copy_only=False)
    anc_ok = ~np.isnan(anc) if anc.dtype.kind == "f" else np.ones(len(anc), dtype=bool)
    person = np.zeros(n, dtype=np.int64)
    person[rows_idx[anc_ok]] = node_person[anc[anc_ok].astype(np.int64)]
    return person


def _counts(
    n: int,
    f: _Flags,
    blocked: np.ndarray,
    is_unrelated: np.ndarray,
    is_chain: np.ndarray,
    node_person: np.ndarray,
    n_persons: int,
    person: np.ndarray,
) -> dict[str, Any]:
    """Return the summary's counts: rows, identifiers, persons, merges, blocked by reason."""
    per_person = np.bincount(node_person[~blocked], minlength=n_persons + 1)[1:]
    n_super = int(f.is_super.sum())
    n_unrel = int((is_unrelated & ~f.is_placeholder & ~f.is_pattern & ~f.is_super).sum())
    return {
        "rows": n,
        "identifiers": int(f.m),
        "identifiers_by_type": dict(
            zip(f.by_type["id_type"], f.by_type["n"].astype(int), strict=True)
        ),
        "persons": n_persons,
        "merges": int((~blocked).sum()) - n_persons,
        "multi_identifier_persons": int((per_person > 1).sum()),
        "largest_person": int(per_person.max()) if n_persons else 0,
        "blocked": int(blocked.sum()),
        "blocked_by_reason": {
            "placeholder value": int(f.is_placeholder.sum()),
            "placeholder pattern": int(f.is_pattern.sum()),
            "super-node": n_super,
            "unrelated rows": n_unrel,
            "chain bridge": int(is_chain.sum()),
        },
        "rows_without_person": int((person == 0).sum()),
    }


def stitch_identities(events: pd.DataFrame, **kwargs: Any) -> pd.DataFrame:
    """Return ``events`` with a ``person_id`` column; see :func:`stitch` for the options.

    The stitching summary is kept in ``result.attrs["stitching"]`` (counts only).
    """
    res = stitch(events, **kwargs)
    out = res.events
    out.attrs = {**events.attrs, "stitching": res.summary}
    return out
