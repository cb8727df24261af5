"""The guards of stitching: what may not link rows, and the checks over the data as a whole.

Placeholders (listed values and patterns), super-nodes (link counts over ``max_links`` /
``max_device_links``), data-driven placeholders (far more device-level partners than the
typical identifier of their type) and chains (persons with more than ``max_person_ids``
identifiers of one person-level type, split at their bridges). See :mod:`analysis.identity`.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import ibis
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from analysis.engine import to_pandas

log = logging.getLogger(__name__)


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
CHAIN_ROUNDS = 50  # the chain guard gives up after this many rounds


def placeholder_flags(
    value: ibis.StringValue, placeholders: frozenset[str] | set[str], patterns: tuple[str, ...]
) -> tuple[ibis.BooleanValue, ibis.BooleanValue]:
    """Return whether ``value`` is a listed placeholder, and a placeholder pattern not listed."""
    placeholder = value.lower().isin(sorted({p.strip().lower() for p in placeholders}))
    if not patterns:
        return placeholder, ibis.literal(False)
    norm = value.lower().re_replace(r"[\s\p{P}\p{S}]+", "")
    pattern = norm.re_search("^(?:" + "|".join(f"(?:{p})" for p in patterns) + ")$")
    return placeholder, pattern & ~placeholder


def unrelated_identifiers(
    con: Any,
    ident: ibis.Table,
    typical: ibis.BooleanValue,
    lc_all: ibis.Table,
    device_idx: list[int],
    name_rank: dict[str, int],
    type_idx: dict[str, int],
    min_links: int,
    factor: float,
) -> dict[int, str]:
    """Find data-driven placeholders: {code: reason}.

    Identifiers seen with more distinct values of one device-level type than ``max(min_links, factor × p99)`` of their own type, p99 being the
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
    if not limit:  # no typical identifier to take a percentile of: nothing is a placeholder
        return {}
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


def oversized_persons(
    label: np.ndarray,
    node_type: np.ndarray,
    usable: np.ndarray,
    person_types: list[int],
    max_ids: int,
) -> np.ndarray:
    """Components holding more than ``max_ids`` usable identifiers of one person-level type."""
    over = np.zeros(label.max() + 1 if len(label) else 0, dtype=bool)
    for t in person_types:
        sel = usable & (node_type == t)
        over |= np.bincount(label[sel], minlength=len(over)) > max_ids
    return np.flatnonzero(over)


def chain_guard(
    combo: np.ndarray,
    code: np.ndarray,
    node_type: np.ndarray,
    person_types: list[int],
    max_ids: int,
) -> dict[int, int]:
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

    for _ in range(CHAIN_ROUNDS):
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
        for loc_i, n in new.items():
            out[int(nodes[loc_i])] = n
            active[loc_i] = False
    else:
        log.warning("chain guard: persons still oversized after %d rounds", CHAIN_ROUNDS)
    return out


def link_counts(
    lc_all: ibis.Table,
    candidates: ibis.Table | None,
    device_idx: list[int],
    max_links: int,
    max_device_links: int,
) -> ibis.Table:
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
