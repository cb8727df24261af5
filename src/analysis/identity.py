"""Identity stitching: one person, not five cookies.

Identifiers that appear together on a row (a device id and a login, a hashed e-mail and a CRM
id) belong to the same person. The persons are the connected components of that co-occurrence
graph. Two things would wrongly merge people, and both are blocked from linking:

- *placeholders*: values such as ``"unknown"``, ``"0"`` or the hash of an empty string;
- *super-nodes*: an identifier seen with implausibly many identifiers of one other type. The
  rule is directional, because the plausible number depends on the type *linked to*:
  person-level identifiers (``user_id``, ``email_hash``, ``crm_id``, ``loyalty_id``) name one
  person, so an identifier seen with more than ``max_links`` (default 3) values of one of them
  is shared (a shop kiosk with many logins, a family tablet, an e-mail placeholder on many CRM
  records). Device-level identifiers (``device_id``, ``cookie_id``) churn, so a login may be seen
  with many of them; only more than ``max_device_links`` (default 50) is implausible.

Direct links are not the whole story, so three *guards* look at the data as a whole:

- *placeholder patterns*: a value that, lower-cased and stripped of spaces, punctuation and
  symbols, is empty (``-``, ``?``, ``---``), only zeros or only x's (``0000``, ``xxx``), or a
  word for "missing" in one of several languages (``(null)``, ``#NV``, ``N/A``, ``n.v.``,
  ``k.A.``, ``sin dato``, ``nicht verfügbar``, ``inconnu``, ``(not set)``…; see
  :data:`DEFAULT_PLACEHOLDER_PATTERNS`) is blocked ("placeholder pattern");
- *data-driven placeholders*: an identifier seen with far more distinct device-level
  identifiers of one type than the typical identifier of its own type is blocked ("links N
  unrelated rows"). The limit for type T is ``max(placeholder_min_links, placeholder_factor ×
  p99)``, p99 being the 99th percentile, over the identifiers of type T, of the number of
  distinct identifier combinations they appear in (default ``max(20, 5 × p99)``). The 99th
  percentile ignores a few odd values but follows the data (where cookies churn, logins are
  seen with many, and the limit rises); the floor of 20 keeps a busy real user (hundreds of
  rows on a few devices and a dozen cookies) linked. Rows alone never block: a busy user has
  many rows but few partners. (Partners of a person-level type are ``max_links``' business.)
- *chains*: a person (connected component) holding more than ``max_person_ids`` (default
  ``max_links``, 3) identifiers of one person-level type is split at its bridges: the
  identifiers of other types seen with two or more of those (a device shared by two logins,
  an e-mail shared by two CRM records) are blocked ("bridges N persons (chain)"), and the
  components are solved again, up to 50 rounds. Where no identifier is seen with two of them
  directly (u1 - d1 - e1 - d2 - u2), the identifiers through which a group of other
  identifiers touches them are blocked (d1 and d2; e1 stays, a person of its own). So 2,500
  logins chained through devices each shared by two of them become 2,500 persons, while a
  household — a family tablet shared by two or three logins — stays one person, as
  ``max_links`` already lets it (``max_person_ids=1`` splits it; the tablet's rows without a
  login then have no person). ``max_person_ids=None`` turns the guard off.

Identifier values are compared exactly, as text (``analysis.load_events`` has trimmed them);
an empty value is missing. Placeholders are matched case-insensitively.
A blocked identifier still stays on its rows; it just does not link them. Rows whose only
identifiers are blocked get no ``person_id`` (NA), and the summary counts them.

The heavy part (unpivoting identifiers, distinct identifier combinations, link counts) runs in
the query engine; only the compact graph of distinct identifier pairs is solved in memory with
``scipy.sparse.csgraph.connected_components``.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import ibis
import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from analysis import config
from analysis.engine import connect, table, to_pandas
from analysis.schema import IDENTIFIER_COLUMNS, DataError

log = logging.getLogger(__name__)

_HASH_JOIN = True  # map rows to combinations by hash when collision-free (tests switch it off)

#: Identifiers of a device or browser; every other identifier type is taken as person-level.
DEVICE_TYPES: tuple[str, ...] = ("device_id", "cookie_id")

_EMPTY_HASHES = {
    hashlib.md5(b"").hexdigest(),
    hashlib.sha1(b"").hexdigest(),
    hashlib.sha256(b"").hexdigest(),
}
#: Identifier values that never link rows (compared after trimming and lower-casing).
DEFAULT_PLACEHOLDERS: frozenset[str] = frozenset(
    {
        "",
        "unknown",
        "null",
        "none",
        "nan",
        "n/a",
        "na",
        "nil",
        "undefined",
        "0",
        "-1",
        "-",
        "anonymous",
        "anon",
        "guest",
        "test",
        "test@test.com",
        "noemail",
        "no-email",
        "00000000-0000-0000-0000-000000000000",
        *_EMPTY_HASHES,
    }
)

#: Words for "missing" (several languages), compared with a value lower-cased and stripped of
#: whitespace, punctuation and symbols (so ``"n.v."`` is ``nv``, ``"(not set)"`` is ``notset``).
_MISSING_WORDS = (
    "null|nul|nil|none|nan|na|nv|nd|ka|sd|unk|unkn|unknown|unbekannt|inconnu|inconnue|"
    "desconocido|desconocida|desconhecido|desconhecida|sconosciuto|sconosciuta|onbekend|nieznany|"
    "okänd|okand|ukendt|ukjent|tuntematon|neznámý|neznamy|bilinmiyor|"
    "notavailable|nichtverfügbar|nichtverfugbar|nichtvorhanden|nichtbekannt|keineangabe|"
    "keineangaben|nondisponible|nodisponible|nondisponibile|nietbeschikbaar|nãodisponível|"
    "naodisponivel|sindato|sindatos|sininformación|sininformacion|nonrenseigné|nonrenseigne|"
    "notset|notprovided|notapplicable|nichtzutreffend|nodata|keinedaten|sansdonnée|sansdonnee|"
    "empty|blank|missing|leer|vide|vacío|vacio|vuoto|default|dummy|placeholder|tbd|nothing|"
    "keine|aucun|aucune|ninguno|nessuno|geen|nenhum|undefined|undef|unset|anonymous|anonym|"
    "anonyme|anonimo|anónimo|guest|gast|invité|invite|invitado|ospite|test|noemail|nomail|nouser"
)
#: Regular expressions (matched against the whole normalised value) of placeholder values.
DEFAULT_PLACEHOLDER_PATTERNS: tuple[str, ...] = (
    "",  # nothing but spaces, punctuation and symbols: "-", "?", "---", "#", "<>"
    "0+",  # zeros: "0000", "0.0", "00-00"
    "x+",  # "xxx", "XXXX"
    f"(?:{_MISSING_WORDS})",
)
#: Defaults of the data-driven placeholder limit ``max(min_links, factor × p99)``.
PLACEHOLDER_MIN_LINKS: int = 20
PLACEHOLDER_FACTOR: float = 5.0
_CHAIN_ROUNDS = 50


@dataclass
class StitchResult:
    """What :func:`stitch` found.

    Attributes
    ----------
    events : pandas.DataFrame
        The input rows, in their order, with a nullable ``person_id`` (Int64) column.
    summary : dict
        Counts for reports: rows, identifiers (by type), persons, merges, multi-identifier
        persons, blocked identifiers (by reason), rows without a person, the limits used.
    identities : pandas.DataFrame
        One row per identifier: ``identifier_type, identifier, person_id, rows, links,
        links_type, blocked, reason``; ``links`` is the number of distinct identifiers of type
        ``links_type`` seen on rows with it, for the type furthest over (or nearest to) its
        limit. Built from the engine on first access.
    """

    events: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)
    _nodes: Any = field(default=None, repr=False)  # ibis table of identifiers, ordered by code
    _node_person: np.ndarray | None = field(default=None, repr=False)
    _con: Any = field(default=None, repr=False)
    _limits: dict[str, Any] = field(default_factory=dict, repr=False)

    @cached_property
    def identities(self) -> pd.DataFrame:
        nodes = to_pandas(self._con, self._nodes).sort_values("code").reset_index(drop=True)
        person = self._node_person[nodes["code"].to_numpy()]
        nodes["person_id"] = pd.array(np.where(person > 0, person, 0), dtype="Int64")
        nodes.loc[person <= 0, "person_id"] = pd.NA
        nodes["links"] = nodes["links"].fillna(0).astype("int64")
        nodes["rows"] = nodes["rows"].astype("int64")
        reason = pd.Series(None, index=nodes.index, dtype=object)
        # python-side guards (codes are 0..m-1 and nodes are sorted by code)
        for code, why in self._limits.get("unrelated", {}).items():
            reason[code] = why
        for code, n in self._limits.get("chain", {}).items():
            reason[code] = (
                f"bridges {n} persons (chain), > max_person_ids={self._limits['max_person_ids']}"
            )
        extra = reason.notna().to_numpy()
        nodes["blocked"] = nodes["blocked"].to_numpy() | extra
        reason[nodes["placeholder"]] = "placeholder value"
        reason[nodes["pattern"] & ~nodes["placeholder"]] = "placeholder pattern"
        sup = nodes["super"] & ~nodes["placeholder"] & ~nodes["pattern"]
        if sup.any():
            dev = nodes.loc[sup, "links_type"].isin(self._limits["device_types"])
            limit_name = np.where(dev, "max_device_links=", "max_links=")
            reason[sup] = (
                "seen with "
                + nodes.loc[sup, "links"].astype(str)
                + " distinct "
                + nodes.loc[sup, "links_type"].astype(str)
                + " values (> "
                + limit_name
                + nodes.loc[sup, "cap"].astype("int64").astype(str)
                + ")"
            )
        nodes["reason"] = reason
        out = nodes.rename(columns={"id_type": "identifier_type", "id_value": "identifier"})
        return out[
            [
                "identifier_type",
                "identifier",
                "person_id",
                "rows",
                "links",
                "links_type",
                "blocked",
                "reason",
            ]
        ]

    @property
    def blocked(self) -> pd.DataFrame:
        """Identifiers that were not used as links, with the reason."""
        b = self.identities[self.identities["blocked"]]
        return b.sort_values(["links", "rows"], ascending=False).reset_index(drop=True)

    def report(self) -> pd.DataFrame:
        """The summary as a two-column table for notebooks."""
        s = self.summary
        rows = [
            ("rows", s["rows"]),
            ("identifiers", s["identifiers"]),
            ("persons", s["persons"]),
            ("merges (identifiers joined into an existing person)", s["merges"]),
            ("persons with more than one identifier", s["multi_identifier_persons"]),
            ("largest person (identifiers)", s["largest_person"]),
            ("blocked identifiers", s["blocked"]),
            ("rows without a person (only blocked identifiers)", s["rows_without_person"]),
            (
                "max_links (person-level) / max_device_links",
                f"{s['max_links']} / {s['max_device_links']}",
            ),
        ]
        by = s["blocked_by_reason"]
        rows[7:7] = [
            (
                "blocked: placeholder value (listed) / placeholder pattern",
                f"{by['placeholder value']} / {by['placeholder pattern']}",
            ),
            (
                "blocked: super-node (> max_links) / links many unrelated rows (data-driven placeholder)",
                f"{by['super-node']} / {by['unrelated rows']}",
            ),
            ("blocked: bridges persons in a chain (> max_person_ids)", by["chain bridge"]),
        ]
        rows.append(("max_person_ids (chain guard)", s["max_person_ids"]))
        rows.append(
            (
                "placeholder_min_links / placeholder_factor (data-driven placeholder)",
                f"{s['placeholder_min_links']} / {s['placeholder_factor']:g}",
            )
        )
        return pd.DataFrame(rows, columns=["measure", "value"])


def _identifier_columns(events: pd.DataFrame, identifiers: list[str] | None) -> list[str]:
    if identifiers is None:  # the loader's list (it includes extra identifiers such as phone_hash)
        identifiers = (events.attrs.get("load_report") or {}).get(
            "identifiers"
        ) or IDENTIFIER_COLUMNS
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
    engine: str = "duckdb",
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
    engine : {"duckdb", "spark"}
        Query engine for the heavy steps.

    Returns
    -------
    StitchResult
        ``person_id`` values are 1..n, numbered in the order of each person's smallest
        identifier (type, then value), so they do not depend on row order or engine.
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
    cols = _identifier_columns(events, identifiers)
    n = len(events)
    t_start = time.perf_counter()
    log.info("stitching %s rows on %s (%s)", f"{n:,}", ", ".join(cols), engine)
    con = connect(engine)
    ids = events[cols].copy(deep=False)
    for c in cols:  # identifiers are strings (a numeric CRM id becomes its text)
        if not (pd.api.types.is_string_dtype(ids[c]) or ids[c].dtype == object):
            ids[c] = ids[c].astype("str")
    ids["_row"] = np.arange(n, dtype=np.int64)
    t = table(con, ids)
    # No strip(): ibis' PySpark compilation of strip() also removes the letter "f" from the ends
    # ("…caf" → "…ca"). The loader trims values; here they are compared exactly.
    t = t.mutate(**{c: t[c].cast("string").nullif("") for c in cols})

    # 1. distinct identifier combinations (far fewer than rows), with a hash of each: rows are
    #    mapped back to their combination by that one integer instead of a null-safe join on
    #    every identifier column, when the hashes of the combinations are all distinct
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

    # 2. unpivot to (combo, type, value); number the identifiers by (type, value) once, so
    #    the joins and counts below run on integers, not on long strings like e-mail hashes.
    #    The type is carried as a small integer (its rank by name, so ordering by it orders
    #    by type name): comparing and hashing a literal string per row costs seconds at 10M.
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

    # 3. links: distinct identifiers of each other type seen with each identifier. An identifier
    #    in k combinations is seen with at most k values of any type, so only those in more
    #    combinations than the smaller limit can be over a limit; the full counts (for the
    #    `identities` table) are computed only when that table is asked for.
    device_idx = [type_idx[c] for c in cols if c in device_types]
    cand = ident.filter(ident.n_combos > min(max_links, max_device_links)).select(c_code="code")
    links = _link_counts(lc_all, cand, device_idx, max_links, max_device_links)
    nodes = ident.left_join(links, ident.code == links.a_code).select(
        "id_type", "id_value", "code", "rows", "excess"
    )

    # 4. block placeholders (listed values and patterns) and super-nodes
    placeholder, pattern = _placeholder_flags(nodes.id_value, placeholders, placeholder_patterns)
    super_node = nodes.excess.fill_null(0) > 0
    nodes = nodes.mutate(placeholder=placeholder, pattern=pattern, super=super_node)
    nodes = nodes.mutate(blocked=nodes.placeholder | nodes.pattern | nodes.super).cache()
    all_links = _link_counts(lc_all, None, device_idx, max_links, max_device_links)
    type_name = [(i, c) for c, i in type_idx.items()]
    identities_expr = nodes.left_join(all_links, nodes.code == all_links.a_code).select(
        nodes, all_links.links, all_links.cap, all_links.links_t
    )
    identities_expr = identities_expr.mutate(
        links_type=identities_expr.links_t.cases(*type_name)
    ).drop("links_t", "excess")
    flags = con.to_pyarrow(nodes.select("code", "blocked", "placeholder", "pattern"))
    m = flags.num_rows
    order = np.argsort(flags["code"].to_numpy(), kind="stable")
    blocked = flags["blocked"].to_numpy(zero_copy_only=False)[order]
    is_placeholder = flags["placeholder"].to_numpy(zero_copy_only=False)[order]
    is_pattern = flags["pattern"].to_numpy(zero_copy_only=False)[order]
    is_super = blocked & ~is_placeholder & ~is_pattern
    by_type = to_pandas(con, nodes.group_by("id_type").aggregate(n=nodes.count()))
    by_type = by_type.sort_values("id_type")
    # codes are numbered by (type name, value): the type of a code is its block of codes
    node_type = np.repeat(np.arange(len(by_type)), by_type["n"].to_numpy().astype(np.int64))
    type_names = list(by_type["id_type"])

    # 4b. data-driven placeholders: far more device-level partners than the type's typical value
    unrelated: dict[int, str] = {}
    if placeholder_min_links is not None and device_idx:
        ph, pat = _placeholder_flags(ident.id_value, placeholders, placeholder_patterns)
        unrelated = _unrelated(
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
    is_unrelated = np.zeros(m, dtype=bool)
    if unrelated:
        is_unrelated[np.fromiter(unrelated, dtype=np.int64)] = True
    blocked = blocked | is_unrelated

    # 5. edges: link each usable identifier of a combination to the combination's first one;
    #    then the chain guard, which may block bridges and solve again
    def solve(extra: np.ndarray):
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

    lc, anchor, label = solve(np.flatnonzero(is_unrelated))
    person_types = [i for i, c in enumerate(type_names) if c not in device_types]
    chain: dict[int, int] = {}
    if max_person_ids is not None and m and person_types:
        over = _oversized(label, node_type, ~blocked, person_types, max_person_ids)
        if len(over):
            sub = table(
                con,
                pd.DataFrame({"s_code": np.flatnonzero(np.isin(label, over) & ~blocked)}),
                materialize=True,
            )
            pairs = con.to_pyarrow(lc.join(sub, lc.code == sub.s_code).select("_combo", "code"))
            chain = _chain_guard(
                pairs["_combo"].to_numpy(),
                pairs["code"].to_numpy(),
                node_type,
                person_types,
                max_person_ids,
            )
    is_chain = np.zeros(m, dtype=bool)
    if chain:
        is_chain[np.fromiter(chain, dtype=np.int64)] = True
        blocked = blocked | is_chain
        lc, anchor, label = solve(np.flatnonzero(is_unrelated | is_chain))

    # person numbering: components ordered by their smallest code (= smallest type, value)
    usable_codes = np.flatnonzero(~blocked)
    # usable codes ascend, so a component's first occurrence is its smallest code
    comps, first_idx = np.unique(label[usable_codes], return_index=True)
    comps = comps[np.argsort(usable_codes[first_idx], kind="stable")]
    person_of_label = np.zeros(label.max() + 1 if m else 0, dtype=np.int64)
    person_of_label[comps] = np.arange(1, len(comps) + 1)
    node_person = np.where(blocked, 0, person_of_label[label]) if m else np.zeros(0, np.int64)

    # 6. rows → combination → anchor → person
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

    out = events.assign(person_id=pd.arrays.IntegerArray(person, person == 0))

    n_persons = len(comps)
    per_person = np.bincount(node_person[~blocked], minlength=n_persons + 1)[1:]
    n_super = int(is_super.sum())
    n_unrel = int((is_unrelated & ~is_placeholder & ~is_pattern & ~is_super).sum())
    summary = {
        "rows": n,
        "identifiers": int(m),
        "identifiers_by_type": dict(zip(by_type["id_type"], by_type["n"].astype(int), strict=True)),
        "persons": n_persons,
        "merges": int((~blocked).sum()) - n_persons,
        "multi_identifier_persons": int((per_person > 1).sum()),
        "largest_person": int(per_person.max()) if n_persons else 0,
        "blocked": int(blocked.sum()),
        "blocked_by_reason": {
            "placeholder value": int(is_placeholder.sum()),
            "placeholder pattern": int(is_pattern.sum()),
            "super-node": n_super,
            "unrelated rows": n_unrel,
            "chain bridge": int(is_chain.sum()),
        },
        "rows_without_person": int((person == 0).sum()),
        "max_links": max_links,
        "max_device_links": max_device_links,
        "max_person_ids": max_person_ids,
        "placeholder_patterns": len(placeholder_patterns),
        "placeholder_min_links": placeholder_min_links,
        "placeholder_factor": placeholder_factor,
        "engine": engine,
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
        _nodes=identities_expr,
        _node_person=node_person,
        _con=con,
        _limits={
            "device_types": tuple(device_types),
            "unrelated": unrelated,
            "chain": chain,
            "max_person_ids": max_person_ids,
        },
    )


def _placeholder_flags(value, placeholders, patterns):
    """(listed placeholder, placeholder pattern and not listed) boolean expressions of ``value``."""
    placeholder = value.lower().isin(sorted({p.strip().lower() for p in placeholders}))
    if not patterns:
        return placeholder, ibis.literal(False)
    norm = value.lower().re_replace(r"[\s\p{P}\p{S}]+", "")
    pattern = norm.re_search("^(?:" + "|".join(f"(?:{p})" for p in patterns) + ")$")
    return placeholder, pattern & ~placeholder


def _unrelated(
    con, ident, typical, lc_all, device_idx, name_rank, type_idx, min_links, factor
) -> dict[int, str]:
    """Data-driven placeholders: {code: reason} of identifiers seen with more distinct values of
    one device-level type than ``max(min_links, factor × p99)`` of their own type, p99 being the
    99th percentile of the number of identifier combinations of the identifiers of that type
    (``typical``: those that are not placeholders by list or pattern).
    """
    h = ident.filter(typical)
    hist = to_pandas(con, h.group_by(["o_idx", "n_combos"]).aggregate(k=h.count()))
    limit: dict[int, tuple[int, int]] = {}
    for o, g in hist.groupby("o_idx"):
        g = g.sort_values("n_combos")
        cum = g["k"].cumsum().to_numpy() / g["k"].sum()
        p99 = int(g["n_combos"].to_numpy()[np.searchsorted(cum, 0.99 - 1e-12)])
        limit[int(o)] = (max(int(min_links), int(np.floor(factor * p99))), p99)
    cap = ident.o_idx.cases(*[(o, lim) for o, (lim, _) in limit.items()], else_=2**62)
    cand = ident.filter(ident.n_combos > cap).select(c_code="code", c_o="o_idx", c_rows="rows")
    a = lc_all.join(cand, lc_all.code == cand.c_code)
    a = a.select(a_combo="_combo", a_code="code", a_t="t_idx", a_o="c_o", a_rows="c_rows")
    b = lc_all.filter(lc_all.t_idx.isin(device_idx)).select(
        b_combo="_combo", b_code="code", b_t="t_idx"
    )
    pairs = (
        a.join(b, a.a_combo == b.b_combo)
        .filter(lambda p: p.a_t != p.b_t)
        .select("a_code", "a_o", "a_rows", "b_t", "b_code")
        .distinct()
    )
    per = pairs.group_by(["a_code", "a_o", "a_rows", "b_t"]).aggregate(k=ibis._.count())
    got = to_pandas(con, per)
    if got.empty:
        return {}
    col_of_t = {i: c for c, i in type_idx.items()}
    col_of_o = {r: c for c, r in name_rank.items()}
    got = got.sort_values(["a_code", "k", "b_t"], ascending=[True, False, True]).drop_duplicates(
        "a_code"
    )
    out: dict[int, str] = {}
    for code, o, rows, t, k in got[["a_code", "a_o", "a_rows", "b_t", "k"]].itertuples(index=False):
        lim, p99 = limit[int(o)]
        if k > lim:
            out[int(code)] = (
                f"links {int(rows)} unrelated rows ({int(k)} distinct {col_of_t[int(t)]} values > "
                f"{lim} = max(placeholder_min_links={int(min_links)}, {factor:g} x p99 {p99} of "
                f"{col_of_o[int(o)]} combinations))"
            )
    return out


def _oversized(label, node_type, usable, person_types, max_ids) -> np.ndarray:
    """Components holding more than ``max_ids`` usable identifiers of one person-level type."""
    over = np.zeros(label.max() + 1 if len(label) else 0, dtype=bool)
    for t in person_types:
        sel = usable & (node_type == t)
        over |= np.bincount(label[sel], minlength=len(over)) > max_ids
    return np.flatnonzero(over)


def _chain_guard(combo, code, node_type, person_types, max_ids) -> dict[int, int]:
    """Split components with more than ``max_ids`` identifiers of one person-level type.

    ``combo``/``code``: the (combination, identifier) pairs of the oversized components.
    Returns {code: number of those identifiers it bridged} for the identifiers to block. Each
    round takes, per oversized component, the person-level type it holds most of (T) and
    blocks the other identifiers seen with two or more T values; in a component without such
    a direct bridge, the identifiers through which a group of non-T identifiers (connected
    without T) touches two or more T values.
    """
    if not len(code):
        return {}
    nodes, loc = np.unique(code, return_inverse=True)
    combos, cid = np.unique(combo, return_inverse=True)
    nn, nc = len(nodes), len(combos)
    ntype = node_type[nodes]
    active = np.ones(nn, dtype=bool)
    pt = np.array(person_types)
    out: dict[int, int] = {}

    def components(keep_pair):
        g = coo_matrix(
            (np.ones(int(keep_pair.sum()), np.int8), (loc[keep_pair], nn + cid[keep_pair])),
            shape=(nn + nc, nn + nc),
        )
        return connected_components(g, directed=False)[1][:nn]

    for _ in range(_CHAIN_ROUNDS):
        lab = components(active[loc])
        nl = lab.max() + 1
        counts = np.zeros((nl, len(pt)), dtype=np.int64)
        for j, t in enumerate(pt):
            counts[:, j] = np.bincount(lab[active & (ntype == t)], minlength=nl)
        worst = pt[np.argmax(counts, axis=1)]  # ties: the first type by name
        over = counts.max(axis=1) > max_ids
        if not over.any():
            break
        T = worst[lab]  # per node: its component's T
        in_over = over[lab] & active
        is_t = in_over & (ntype == T)
        # per pair: the combination's T identifier (at most one value per type and combination)
        pair_ok = in_over[loc]
        t_of_combo = np.full(nc, -1, dtype=np.int64)
        tp = pair_ok & is_t[loc]
        t_of_combo[cid[tp]] = loc[tp]
        other = pair_ok & ~is_t[loc] & (t_of_combo[cid] >= 0)
        seen = np.unique(np.stack([loc[other], t_of_combo[cid[other]]], axis=1), axis=0)
        k = np.bincount(seen[:, 0], minlength=nn) if len(seen) else np.zeros(nn, np.int64)
        direct = (k >= 2) & in_over & ~is_t
        new = {int(i): int(k[i]) for i in np.flatnonzero(direct)}
        # components over the limit without a direct bridge: block the attachment points
        has_direct = np.zeros(nl, dtype=bool)
        has_direct[lab[direct]] = True
        rest = in_over & ~has_direct[lab]
        if rest.any():
            keep = rest[loc] & ~is_t[loc]
            clab = components(keep)
            att = rest & ~is_t & (k >= 1)  # non-T identifiers seen with a T value
            if len(seen):
                s_ok = att[seen[:, 0]]
                cl_t = np.unique(np.stack([clab[seen[s_ok, 0]], seen[s_ok, 1]], axis=1), axis=0)
                n_t = np.bincount(cl_t[:, 0], minlength=clab.max() + 1)
                for i in np.flatnonzero(att & (n_t[clab] >= 2)):
                    new[int(i)] = int(n_t[clab[i]])
        if not new:
            log.warning(
                "chain guard: %d oversized persons without a bridge to block", int(over.sum())
            )
            break
        for i, n in new.items():
            out[int(nodes[i])] = n
            active[i] = False
    else:
        log.warning("chain guard: persons still oversized after %d rounds", _CHAIN_ROUNDS)
    return out


def _link_counts(lc_all, candidates, device_idx, max_links, max_device_links) -> ibis.Table:
    """Per identifier code: the other type furthest over its limit, with its count and limit.

    ``lc_all`` holds (_combo, code, t_idx); ``candidates`` (a table of ``c_code``) restricts the
    identifiers counted, or None for all. Columns: a_code, links, links_t, excess, cap.
    """
    a = lc_all if candidates is None else lc_all.join(candidates, lc_all.code == candidates.c_code)
    a = a.select(a_combo="_combo", a_code="code", a_t="t_idx")
    b = lc_all.select(b_combo="_combo", b_code="code", b_t="t_idx")
    pairs = (
        a.join(b, a.a_combo == b.b_combo)
        .filter(lambda p: p.a_t != p.b_t)
        .select("a_code", "b_t", "b_code")
        .distinct()
    )
    per_type = pairs.group_by(["a_code", "b_t"]).aggregate(k=ibis._.count())
    limit = ibis.cases((per_type.b_t.isin(device_idx), max_device_links), else_=max_links)
    # worst type per identifier: largest excess over its limit; the type's index breaks ties so
    # every engine picks the same one
    per_type = per_type.mutate(excess=per_type.k - limit, cap=limit)
    per_type = per_type.mutate(score=per_type.excess * 64 + (63 - per_type.b_t))
    return per_type.group_by("a_code").aggregate(
        links=per_type.k.argmax(per_type.score),
        links_t=per_type.b_t.argmax(per_type.score),
        excess=per_type.excess.max(),
        cap=per_type.cap.argmax(per_type.score),
    )


def stitch_identities(events: pd.DataFrame, **kwargs: Any) -> pd.DataFrame:
    """``events`` with a ``person_id`` column; see :func:`stitch` for the options.

    The stitching summary is kept in ``result.attrs["stitching"]`` (counts only).
    """
    res = stitch(events, **kwargs)
    out = res.events
    out.attrs = {**events.attrs, "stitching": res.summary}
    return out
