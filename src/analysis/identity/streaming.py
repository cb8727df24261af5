"""Stitching out of core: identifiers → persons over a table the engine scans (e.g. Parquet).

:func:`stitch_table` applies the rules of :func:`analysis.identity.stitch` to an ibis table on
DuckDB that need not fit in memory (``read_parquet`` over many files): the engine builds the
identifier graph (distinct identifier combinations, identifiers numbered by (type, value) as
integer codes, link counts on the integer pairs), and only that graph, which is much smaller
than the events, comes into memory for the connected components (scipy). The guards are those
of :mod:`analysis.identity.guards`, called the same way, so the persons are the ones
:func:`~analysis.identity.stitch` finds on the same rows, numbered the same way (in the order
of each person's smallest identifier, by type name then value).

It returns a table of the distinct identifier combinations with their person, and the
expression that gives each row its combination key: joining the two (in the engine) gives every
row its person without the rows ever passing through Python.

The identities table of :class:`~analysis.identity.StitchResult` (one row per identifier, with
link counts) is not built: it is a report on every identifier, not needed for journeys.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import ibis
import numpy as np
import pyarrow as pa
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from analysis import config
from analysis.identity.guards import (
    DEFAULT_PLACEHOLDER_PATTERNS,
    DEFAULT_PLACEHOLDERS,
    DEVICE_TYPES,
    PLACEHOLDER_FACTOR,
    PLACEHOLDER_MIN_LINKS,
    chain_guard,
    oversized_persons,
    placeholder_flags,
    unrelated_identifiers,
)
from analysis.identity.stitching import identifier_graph

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
    *,
    max_links: int = config.MAX_LINKS,
    max_device_links: int = config.MAX_DEVICE_LINKS,
    device_types: tuple[str, ...] = DEVICE_TYPES,
    placeholders: frozenset[str] | set[str] = DEFAULT_PLACEHOLDERS,
    placeholder_patterns: tuple[str, ...] | list[str] | None = None,
    placeholder_min_links: int | None = PLACEHOLDER_MIN_LINKS,
    placeholder_factor: float = PLACEHOLDER_FACTOR,
    max_person_ids: int | str | None = "max_links",
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
    max_links, max_device_links, device_types, placeholders, placeholder_patterns, \
placeholder_min_links, placeholder_factor, max_person_ids
        As in :func:`analysis.identity.stitch`, with the same defaults.

    Returns
    -------
    TableStitch

    Notes
    -----
    Long because it runs stitch's steps in order on shared engine tables (combinations,
    identifiers, links, guards, components, persons), each a commented block, so that it can
    be read beside :func:`analysis.identity.stitch` step by step.
    """
    if isinstance(max_person_ids, str):
        if max_person_ids != "max_links":
            raise ValueError(
                f"max_person_ids must be an int, None or 'max_links', got {max_person_ids!r}"
            )
        max_person_ids = max_links
    if placeholder_patterns is None:
        placeholder_patterns = DEFAULT_PLACEHOLDER_PATTERNS if placeholders else ()
    patterns = tuple(placeholder_patterns)
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[name] = round(now - clock, 3)
        clock = now

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

    # 2. identifiers numbered by (type name, value); 3. link counts of the candidates
    g = identifier_graph(combos, cols, device_types, max_links, max_device_links)
    ident, lc_all, device_idx = g.ident, g.lc_all, g.device_idx
    name_rank, type_idx = g.name_rank, g.type_idx
    lap("identifiers")

    # 4. placeholders (listed, patterns) and super-nodes; data-driven placeholders
    nodes = g.nodes
    ph_n, pat_n = placeholder_flags(nodes.id_value, placeholders, patterns)
    flags_expr = nodes.select(
        "code", placeholder=ph_n, pattern=pat_n, super=nodes.excess.fill_null(0) > 0
    )
    flags = con.to_pyarrow(flags_expr).sort_by("code")
    m = flags.num_rows
    is_placeholder = flags["placeholder"].to_numpy(zero_copy_only=False).astype(bool)
    is_pattern = flags["pattern"].to_numpy(zero_copy_only=False).astype(bool)
    is_super = flags["super"].to_numpy(zero_copy_only=False).astype(bool) & ~(
        is_placeholder | is_pattern
    )
    type_names = sorted(cols)
    # codes are numbered by (type name, value): the type of a code is its block of codes
    per_type = con.to_pyarrow(ident.group_by("o_idx").aggregate(n=ident.count()))
    n_of_type = np.zeros(len(cols), dtype=np.int64)
    n_of_type[per_type["o_idx"].to_numpy().astype(np.int64)] = per_type["n"].to_numpy()
    node_type = np.repeat(np.arange(len(cols), dtype=np.int64), n_of_type)
    ph, pat = placeholder_flags(ident.id_value, placeholders, patterns)
    blocked = is_placeholder | is_pattern | is_super
    unrelated: dict[int, str] = {}
    if placeholder_min_links is not None and device_idx:
        unrelated = unrelated_identifiers(
            con,
            ident,
            ~(ph | pat),
            lc_all,
            device_idx,
            name_rank,
            type_idx,
            placeholder_min_links,
            placeholder_factor,
        )
    is_unrelated = _mask(m, unrelated)
    lap("guards")

    # 5. components on the usable (combination, code) pairs; the chain guard; solve again
    usable_tbl = _codes_table(con, np.flatnonzero(~(blocked | is_unrelated)), "u_code")
    lc, anchor, label = _solve(con, lc_all, usable_tbl, m)
    blocked = blocked | is_unrelated
    chain: dict[int, int] = {}
    person_types = [i for i, c in enumerate(type_names) if c not in device_types]
    if max_person_ids is not None and m and person_types:
        over = oversized_persons(label, node_type, ~blocked, person_types, max_person_ids)
        if len(over):
            sub = _codes_table(con, np.flatnonzero(np.isin(label, over) & ~blocked), "s_code")
            pairs = con.to_pyarrow(lc.join(sub, lc.code == sub.s_code).select("_combo", "code"))
            chain = chain_guard(
                pairs["_combo"].to_numpy(),
                pairs["code"].to_numpy(),
                node_type,
                person_types,
                max_person_ids,
            )
    is_chain = _mask(m, chain)
    if chain:
        blocked = blocked | is_chain
        usable_tbl = _codes_table(con, np.flatnonzero(~blocked), "u_code")
        lc, anchor, label = _solve(con, lc_all, usable_tbl, m)
    lap("components")

    # 6. persons numbered by their smallest code; each combination's person via its anchor
    node_person, n_persons = _number_persons(label, blocked, m)
    np_tbl = con.create_table(
        f"cjl_node_person_{time.perf_counter_ns()}",
        pa.table({"anchor": np.arange(m, dtype=np.int64), "person_id": node_person}),
        temp=True,
    )
    cp = combos.select("_combo").left_join(anchor, "_combo").select("_combo", "anchor")
    cp = cp.left_join(np_tbl, "anchor").select("_combo", person_id=np_tbl.person_id)
    cp = cp.mutate(person_id=cp.person_id.nullif(0)).cache()
    lap("persons")

    per_person = np.bincount(node_person[~blocked], minlength=n_persons + 1)[1:]
    summary = {
        "identifiers": int(m),
        "identifiers_by_type": {
            c: int((node_type == i).sum())
            for i, c in enumerate(type_names)
            if (node_type == i).any()
        },
        "combinations": n_combos,
        "combinations_by_hash": bool(by_hash),
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
        "max_links": max_links,
        "max_device_links": max_device_links,
        "max_person_ids": max_person_ids,
        "seconds": seconds,
    }
    log.info(
        "stitched %s identifiers (%s combinations) into %s persons (%s blocked) in %.1f s",
        f"{m:,}",
        f"{n_combos:,}",
        f"{n_persons:,}",
        summary["blocked"],
        sum(seconds.values()),
    )
    return TableStitch(combo_person=cp, row_key=row_key, summary=summary)


def _mask(m: int, codes: dict[int, Any]) -> np.ndarray:
    """Return a boolean array over the ``m`` codes, True at the keys of ``codes``."""
    out = np.zeros(m, dtype=bool)
    if codes:
        out[np.fromiter(codes, dtype=np.int64)] = True
    return out


def _codes_table(con: Any, codes: np.ndarray, name: str) -> ibis.Table:
    """Make a one-column temporary table of integer codes (materialised: DuckDB needs statistics)."""
    data = pa.table({name: codes.astype(np.int64)})
    return con.create_table(f"cjl_{name}_{time.perf_counter_ns()}", data, temp=True)


def _solve(
    con: Any, lc_all: ibis.Table, usable: ibis.Table, m: int
) -> tuple[ibis.Table, ibis.Table, np.ndarray]:
    """Usable (combination, code) pairs, each combination's anchor, and the components.

    As stitch's step 5: each usable identifier of a combination is linked to the
    combination's smallest usable one (its anchor); only the distinct (anchor, code) pairs,
    as integers, come into memory.
    """
    lc = lc_all.join(usable, lc_all.code == usable.u_code).select("_combo", "code").cache()
    anchor = lc.group_by("_combo").aggregate(anchor=lc.code.min()).cache()
    e = lc.join(anchor, "_combo")
    edges = con.to_pyarrow(e.filter(e.code != e.anchor).select("anchor", "code").distinct())
    src = edges["anchor"].to_numpy()
    dst = edges["code"].to_numpy()
    graph = coo_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(m, m))
    return lc, anchor, connected_components(graph, directed=False)[1].astype(np.int64)


def _number_persons(label: np.ndarray, blocked: np.ndarray, m: int) -> tuple[np.ndarray, int]:
    """Return the person of each code (0: blocked) and the number of persons.

    Components are numbered in the order of their smallest usable code, as stitch numbers them.
    """
    usable_codes = np.flatnonzero(~blocked)
    comps, first_idx = np.unique(label[usable_codes], return_index=True)
    comps = comps[np.argsort(usable_codes[first_idx], kind="stable")]
    person_of_label = np.zeros(label.max() + 1 if m else 0, dtype=np.int64)
    person_of_label[comps] = np.arange(1, len(comps) + 1)
    node_person = np.where(blocked, 0, person_of_label[label]) if m else np.zeros(0, np.int64)
    return node_person, len(comps)
