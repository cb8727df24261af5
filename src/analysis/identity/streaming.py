"""Stitching out of core: identifiers → persons over a table the engine scans (e.g. Parquet).

:func:`stitch_table` applies the rules of :func:`analysis.identity.stitch` to an ibis table on
DuckDB that need not fit in memory (``read_parquet`` over many files). The engine finds the
distinct identifier combinations (the one pass over the rows); per identifier column its
distinct values come into memory and are sorted there (:func:`.fast_codes.sort_order`, the
engine's byte order), the columns in the order of their names, so a code orders as (type,
value) does on the other paths; one join per column on those dictionaries gives every
combination its integer codes. Only that graph, integers much smaller than the events, comes
into memory: link counts, placeholders, super-nodes, data-driven placeholders, components and
the chain guard run on it with the functions of :mod:`.fast` and :mod:`.guards`, so the persons
are the ones :func:`~analysis.identity.stitch` finds on the same rows, numbered the same way (in
the order of each person's smallest identifier, by type name then value).

It returns a table of the distinct identifier combinations with their person, and the
expression that gives each row its combination key: joining the two (in the engine) gives every
row its person without the rows ever passing through Python.

The identities table of :class:`~analysis.identity.StitchResult` (one row per identifier, with
link counts) is not built: it is a report on every identifier, not needed for journeys.
"""

from __future__ import annotations

import gc
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import ibis
import numpy as np
import polars as pl
import pyarrow as pa

from analysis import config
from analysis.identity import fast, kernels
from analysis.identity.fast_codes import CodedIdentifiers, sort_order
from analysis.identity.guards import (
    DEFAULT_PLACEHOLDER_PATTERNS,
    DEFAULT_PLACEHOLDERS,
    DEVICE_TYPES,
    PLACEHOLDER_FACTOR,
    PLACEHOLDER_MIN_LINKS,
    chain_guard,
    oversized_persons,
)

log = logging.getLogger(__name__)


@dataclass
class TableStitch:
    """What :func:`stitch_table` found.

    Attributes
    ----------
    combo_person : ibis.Table
        One row per distinct identifier combination: ``_combo`` (its key) and ``person_id``
        (int64; null where every identifier of the combination is blocked). Materialised in
        the engine.
    row_key : ibis.Table
        The input rows with ``_combo``, their combination's key (an expression, not
        materialised): ``row_key.left_join(combo_person, "_combo")`` gives each row its person.
    summary : dict
        rows, identifiers (by type), combinations, persons, merges, blocked (by reason), the
        limits used and ``seconds`` per step.
    """

    combo_person: ibis.Table
    row_key: ibis.Table
    summary: dict[str, Any] = field(default_factory=dict)


def stitch_table(
    con: Any,
    t: ibis.Table,
    cols: list[str],
    **options: Any,
) -> TableStitch:
    """Stitch the rows of ``t`` (an ibis table on DuckDB) into persons, out of core.

    Parameters
    ----------
    con : ibis DuckDB backend
        The connection ``t`` lives on; set its ``memory_limit`` and ``temp_directory`` so the
        engine spills instead of running out of memory.
    t : ibis.Table
        The rows (e.g. ``con.read_parquet(...)``); only ``cols`` are read.
    cols : list of str
        Identifier columns (strings; an empty value is missing).
    **options
        ``max_links``, ``max_device_links``, ``device_types``, ``placeholders``,
        ``placeholder_patterns``, ``placeholder_min_links``, ``placeholder_factor``,
        ``max_person_ids``: as in :func:`analysis.identity.stitch`, with the same defaults
        (:meth:`StitchRules.of`).

    Returns
    -------
    TableStitch

    Notes
    -----
    Long because it runs stitch's steps in order (combinations, identifiers, links, guards,
    components, persons), each a commented block timed in the summary, so that it can be read
    beside :func:`analysis.identity.stitch` and :func:`.fast.solve` step by step.
    """
    rules = StitchRules.of(**options)
    seconds: dict[str, float] = {}
    lap = Lap(seconds)

    # 1. distinct identifier combinations, keyed by a hash of the combination when the hash
    #    is collision-free (as stitch does), else by a number and a null-safe join
    # identifiers compared as text, an empty value missing; the rows keep their own values
    # the hash is taken once per combination, not per row: it is a function of the values
    norm = {c: t[c].cast("string").nullif("") for c in cols}
    keyed = t.mutate(_h=ibis.struct(norm).hash())
    combos = t.select(**norm).group_by(cols).aggregate(n_rows=ibis._.count())
    combos = combos.mutate(_h=ibis.struct({c: combos[c] for c in cols}).hash()).cache()
    counts = con.to_pyarrow(combos.aggregate(n=combos.count(), n_h=combos._h.nunique()))
    n_combos = int(counts["n"][0].as_py())
    by_hash = n_combos == int(counts["n_h"][0].as_py())
    if by_hash:
        combos = combos.mutate(_combo=combos._h)
        row_key = keyed.mutate(_combo=keyed._h).drop("_h")
    else:  # pragma: no cover - a 64-bit hash collision among the combinations
        combos = combos.mutate(_combo=ibis.row_number()).cache()
        ck = combos.select(*[combos[c].name(f"_k_{c}") for c in cols], "_combo")
        row_key = t.left_join(ck, [norm[c].identical_to(ck[f"_k_{c}"]) for c in cols]).select(
            t, ck._combo
        )
    lap("combinations")

    # 2. identifiers numbered by (type name, value): per column, its distinct values sorted
    #    in memory; every combination's codes by a join on those dictionaries (engine), then
    #    the combinations come into memory as integer codes only
    name_order = sorted(range(len(cols)), key=lambda i: cols[i])
    flags, type_of_code, key, n_rows, codes = _code_combinations(
        con, combos, cols, name_order, rules.flag
    )
    if by_hash:  # the rows' keys do not read the combinations: the engine may drop them
        del combos
        gc.collect()
    lap("identifiers")
    person, summary = solve_codes(cols, rules, flags, type_of_code, n_rows, codes, lap)
    del n_rows, type_of_code, codes
    cp = con.create_table(
        f"cjl_combo_person_{time.perf_counter_ns()}",
        pa.table({"_combo": key, "person_id": pa.array(person, mask=person == 0)}),
        temp=True,
    )
    del person, key
    lap("persons")

    summary = stitch_summary(summary, n_combos, bool(by_hash), seconds)
    return TableStitch(combo_person=cp, row_key=row_key, summary=summary)


def stitch_summary(
    summary: dict[str, Any], n_combos: int, by_hash: bool, seconds: dict[str, float]
) -> dict[str, Any]:
    """Return the stitching summary (:func:`solve_codes`' with the combinations and seconds); log it.

    Parameters
    ----------
    summary : dict
        :func:`solve_codes`' summary.
    n_combos : int
        Distinct combinations.
    by_hash : bool
        Whether the combinations were found by hashes.
    seconds : dict
        Seconds per step.

    Returns
    -------
    dict
        ``combinations``, ``combinations_by_hash``, ``summary``'s keys, ``seconds``.
    """
    out = {"combinations": n_combos, "combinations_by_hash": by_hash, **summary}
    out["seconds"] = seconds
    log.info(
        "stitched %s identifiers (%s combinations) into %s persons (%s blocked) in %.1f s",
        f"{out['identifiers']:,}",
        f"{n_combos:,}",
        f"{out['persons']:,}",
        out["blocked"],
        sum(seconds.values()),
    )
    return out


def flag_arrays(
    flags: list[tuple[np.ndarray, np.ndarray]], types: list[np.ndarray]
) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """Join the per-column placeholder flags and types into arrays by code.

    Parameters
    ----------
    flags : list of (numpy.ndarray, numpy.ndarray)
        Per column with values, in code order, ``rules.flag``'s (placeholder, pattern) flags.
    types : list of numpy.ndarray
        Per column with values, its values' column position (int8).

    Returns
    -------
    tuple
        ``(is_placeholder, is_pattern)`` and the type of every code (empty where no values).
    """
    if not flags:  # no identifier values at all: nothing to flag
        flags = [(np.zeros(0, bool), np.zeros(0, bool))]
    type_of_code = np.concatenate(types) if types else np.zeros(0, np.int8)
    ph = np.concatenate([f[0] for f in flags])
    pat = np.concatenate([f[1] for f in flags])
    return (ph, pat), type_of_code


@dataclass
class StitchRules:
    """The options of :func:`analysis.identity.stitch`, resolved (defaults, ``"max_links"``)."""

    max_links: int = config.MAX_LINKS
    max_device_links: int = config.MAX_DEVICE_LINKS
    device_types: tuple[str, ...] = DEVICE_TYPES
    placeholders: frozenset[str] | set[str] = DEFAULT_PLACEHOLDERS
    patterns: tuple[str, ...] = ()
    placeholder_min_links: int | None = PLACEHOLDER_MIN_LINKS
    placeholder_factor: float = PLACEHOLDER_FACTOR
    max_person_ids: int | None = None

    @classmethod
    def of(
        cls,
        *,
        max_links: int = config.MAX_LINKS,
        max_device_links: int = config.MAX_DEVICE_LINKS,
        device_types: tuple[str, ...] = DEVICE_TYPES,
        placeholders: frozenset[str] | set[str] = DEFAULT_PLACEHOLDERS,
        placeholder_patterns: tuple[str, ...] | list[str] | None = None,
        placeholder_min_links: int | None = PLACEHOLDER_MIN_LINKS,
        placeholder_factor: float = PLACEHOLDER_FACTOR,
        max_person_ids: int | str | None = "max_links",
    ) -> StitchRules:
        """Return the rules of stitch's keyword arguments, with its defaults."""
        if isinstance(max_person_ids, str):
            if max_person_ids != "max_links":
                raise ValueError(
                    f"max_person_ids must be an int, None or 'max_links', got {max_person_ids!r}"
                )
            max_person_ids = max_links
        if placeholder_patterns is None:
            placeholder_patterns = DEFAULT_PLACEHOLDER_PATTERNS if placeholders else ()
        return cls(
            max_links=max_links,
            max_device_links=max_device_links,
            device_types=tuple(device_types),
            placeholders=placeholders,
            patterns=tuple(placeholder_patterns),
            placeholder_min_links=placeholder_min_links,
            placeholder_factor=placeholder_factor,
            max_person_ids=max_person_ids,
        )

    def flag(self, v: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """Return which of the values ``v`` are listed placeholders, and which match a pattern."""
        return fast.placeholder_values(v, self.placeholders, self.patterns)


class Lap:
    """Seconds per step: ``lap(name)`` records the time since the previous lap in ``seconds``."""

    def __init__(self, seconds: dict[str, float]) -> None:
        self.seconds = seconds
        self.clock = time.perf_counter()

    def __call__(self, name: str) -> None:
        """Record the seconds since the last call (or the start) as step ``name``."""
        now = time.perf_counter()
        self.seconds[name] = round(now - self.clock, 3)
        self.clock = now


def solve_codes(
    cols: list[str],
    rules: StitchRules,
    flags: tuple[np.ndarray, np.ndarray],
    type_of_code: np.ndarray,
    n_rows: np.ndarray,
    codes: dict[int, np.ndarray],
    lap: Lap,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Stitch's steps 3 to 6 on the distinct combinations as integer codes; return their persons.

    Parameters
    ----------
    cols : list of str
        The identifier columns (a type is a position in it).
    rules : StitchRules
        The options.
    flags : tuple of numpy.ndarray
        Per code: a listed placeholder, a pattern's (judged on the values).
    type_of_code : numpy.ndarray
        Per code, the position of its column in ``cols``; codes ascend with (type name, value).
    n_rows : numpy.ndarray
        Per combination, its rows.
    codes : dict of int to numpy.ndarray
        Per column with values (position in ``cols``), every combination's code (-1: missing).
    lap : Lap
        Records the seconds of ``guards`` and ``components``.

    Returns
    -------
    person : numpy.ndarray
        Per combination its person (int64, numbered from 1 as stitch numbers them; 0 where
        every identifier of the combination is blocked or missing).
    summary : dict
        identifiers (also by type), persons, merges, multi_identifier_persons,
        largest_person, blocked (also by reason) and the limits used.

    Notes
    -----
    Long because it runs stitch's steps 3 to 6 in order (link counts, the guards, components
    and the chain guard, persons), each a commented block, to be read beside
    :func:`analysis.identity.stitch` and :func:`.fast.solve`.
    """
    m = len(type_of_code)
    name_order = sorted(range(len(cols)), key=lambda i: cols[i])
    ci = _coded(cols, type_of_code, n_rows, codes, name_order)

    # 3. link counts; 4. placeholders (listed, patterns), super-nodes, data-driven ones
    device_idx = [i for i, c in enumerate(cols) if c in rules.device_types]
    limit = fast.type_limits(len(cols), device_idx, rules.max_links, rules.max_device_links)
    links = fast.link_counts(ci)
    over_limit = fast.over_limit(links, limit, m)
    is_placeholder, is_pattern = flags
    is_pattern = is_pattern & ~is_placeholder
    is_super = over_limit & ~(is_placeholder | is_pattern)
    del over_limit
    type_names = sorted(cols)
    rank = np.zeros(len(cols), np.int64)
    rank[name_order] = np.arange(len(cols))
    node_type = rank[ci.type_of_code]  # per code: its type's position in type_names
    blocked = is_placeholder | is_pattern | is_super
    unrelated: dict[int, str] = {}
    if rules.placeholder_min_links is not None and device_idx:
        unrelated = fast.unrelated(
            ci,
            links,
            ~(is_placeholder | is_pattern),
            device_idx,
            rules.placeholder_min_links,
            rules.placeholder_factor,
        )
    del links
    is_unrelated = _mask(m, unrelated)
    lap("guards")

    # 5. components of the pairs of usable identifiers; the chain guard; solve again
    blocked = blocked | is_unrelated
    label = fast.components(ci, ~blocked)
    chain: dict[int, int] = {}
    person_types = [i for i, c in enumerate(type_names) if c not in rules.device_types]
    if rules.max_person_ids is not None and m and person_types:
        over = oversized_persons(label, node_type, ~blocked, person_types, rules.max_person_ids)
        if len(over):
            combo, code = fast.chain_pairs(ci, np.isin(label, over), ~blocked)
            chain = chain_guard(combo, code, node_type, person_types, rules.max_person_ids)
    is_chain = _mask(m, chain)
    if chain:
        blocked = blocked | is_chain
        label = fast.components(ci, ~blocked)
    del ci
    lap("components")

    # 6. persons numbered by their smallest code; a combination's person: the largest of its
    #    codes' persons (its usable codes share one; a blocked code's is 0)
    node_person, n_persons = kernels.number_components(label[:m], blocked[:m])
    by_code = np.append(node_person, 0)  # code -1 (missing): the appended 0
    person = np.zeros(len(n_rows), np.int64)
    for c in codes.values():
        np.maximum(person, by_code[c], out=person)
    del by_code
    per_person = np.bincount(node_person[~blocked], minlength=n_persons + 1)[1:]
    summary = {
        "identifiers": int(m),
        "identifiers_by_type": {
            c: int((node_type == i).sum())
            for i, c in enumerate(type_names)
            if (node_type == i).any()
        },
        "persons": int(n_persons),
        "merges": int((~blocked).sum()) - int(n_persons),
        "multi_identifier_persons": int((per_person > 1).sum()),
        "largest_person": int(per_person.max()) if n_persons else 0,
        "blocked": int(blocked.sum()),
        "blocked_by_reason": {
            "placeholder value": int(is_placeholder.sum()),
            "placeholder pattern": int(is_pattern.sum()),
            "super-node": int(is_super.sum()),
            "unrelated rows": int((is_unrelated & ~is_placeholder & ~is_pattern & ~is_super).sum()),
            "chain bridge": int(is_chain.sum()),
        },
        "max_links": rules.max_links,
        "max_device_links": rules.max_device_links,
        "max_person_ids": rules.max_person_ids,
    }
    return person, summary


def _mask(m: int, codes: dict[int, Any]) -> np.ndarray:
    """Return a boolean array over the ``m`` codes, True at the keys of ``codes``."""
    out = np.zeros(m, dtype=bool)
    if codes:
        out[np.fromiter(codes, dtype=np.int64)] = True
    return out


def _code_combinations(
    con: Any, combos: ibis.Table, cols: list[str], name_order: list[int], flag: Any
) -> tuple[
    tuple[np.ndarray, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[int, np.ndarray]
]:
    """Return the identifiers numbered by (type name, value) and every combination's codes.

    Per column (in the order of the names): its distinct values, sorted byte-wise in memory
    (:func:`.fast_codes.sort_order`, the engine's order), take the next block of codes; a
    dictionary (value, code), which the engine scans in place (an Arrow view, not a copy), gives
    every combination its codes by one join per column. ``flag`` judges each column's sorted
    values (placeholder, pattern), so the strings need not outlive the join. Returns those
    flags and the column (position in ``cols``) by code, and per combination its key
    (``_combo``), its rows and, per column with values (position in ``cols``), its code (-1
    where missing).
    """
    dicts: list[tuple[int, str]] = []
    flags: list[tuple[np.ndarray, np.ndarray]] = []
    types: list[np.ndarray] = []
    offset = 0
    try:
        for i in name_order:
            c = cols[i]
            got = con.to_pyarrow(combos.select(v=combos[c]).filter(ibis._.v.notnull()).distinct())
            v = got["v"].combine_chunks().cast(pa.large_string())
            if not len(v):
                continue
            v = v.take(pa.array(sort_order(v)))
            name = f"cjl_dict_{i}_{time.perf_counter_ns()}"
            code = np.arange(offset, offset + len(v), dtype=np.int64)
            con.con.register(name, pa.table({"v": v, "k": code}))
            dicts.append((i, name))
            flags.append(flag(v))  # placeholders judged here: the strings go after the join
            types.append(np.full(len(v), i, np.int8))
            offset += len(v)
        base = con.compile(combos.select("_combo", "n_rows", *cols))
        dtype = "INTEGER" if offset < 2**31 - 1 else "BIGINT"
        sel = ", ".join(f"coalesce(d{i}.k, -1)::{dtype} AS k{i}" for i, _ in dicts)
        joins = " ".join(f'LEFT JOIN {n} d{i} ON b."{cols[i]}" = d{i}.v' for i, n in dicts)
        sql = f"SELECT b._combo, b.n_rows{', ' if sel else ''}{sel} FROM ({base}) b {joins}"
        tbl = con.raw_sql(sql).to_arrow_table()
    finally:
        for _, name in dicts:
            con.con.unregister(name)
    key = tbl["_combo"].to_numpy()
    n_rows = tbl["n_rows"].to_numpy()
    codes = {i: tbl[f"k{i}"].to_numpy() for i, _ in dicts}
    del tbl
    (ph, pat), type_of_code = flag_arrays(flags, types)
    return (ph, pat), type_of_code, key, n_rows, codes


def _coded(
    cols: list[str],
    type_of_code: np.ndarray,
    n_rows: np.ndarray,
    codes: dict[int, np.ndarray],
    name_order: list[int],
) -> CodedIdentifiers:
    """Return the graph of the distinct combinations as :mod:`.fast` reads it.

    Rows and combinations per code and every combination's pairs of codes, in two compiled
    passes over the combinations (:func:`.kernels.combo_pairs`), then the distinct pairs (a
    hash unique on ``a * m + b``). The per-row fields of
    :class:`.fast_codes.CodedIdentifiers` stay empty: the rows stay in the engine.
    """
    m = len(type_of_code)
    present = [i for i in name_order if i in codes]  # codes ascend from column to column
    packed = []
    if present:
        dtype = np.result_type(*[codes[i].dtype for i in present])
        cols_codes = tuple(np.ascontiguousarray(codes[i], dtype=dtype) for i in present)
        n_combos, rows, pairs = kernels.combo_pairs(
            cols_codes, np.ascontiguousarray(n_rows, dtype=np.int64), m
        )
        del cols_codes
        # a pair may be seen in several combinations
        packed = [pl.Series(pairs).unique().to_numpy()]
        del pairs
    else:
        n_combos, rows = np.zeros(m, np.int64), np.zeros(m, np.int64)
    keys = np.concatenate(packed) if packed else np.zeros(0, np.int64)
    empty = np.zeros(0, np.int64)
    return CodedIdentifiers(
        cols=cols,
        n_rows=int(n_rows.sum()),
        row_codes={},
        values=pa.nulls(m),  # not kept (placeholders were judged per column); m is its length
        type_of_code=type_of_code,
        rows=rows,
        n_combos=n_combos,
        pair_a=keys // max(m, 1),
        pair_b=keys % max(m, 1),
        combo_lo=empty,
        combo_hi=empty,
        multi=codes,  # every combination as a "multi" one: combo_codes() lists them all
    )
