"""Identity stitching on Spark: the rules of :func:`analysis.stitch_identities`, in the engine.

The same steps and guards as :mod:`analysis.identity` (placeholders by list and pattern,
super-nodes, data-driven placeholders, the chain guard), with the connected components solved
by :func:`analysis.spark.components.connected_components` instead of scipy on the driver.
Identifiers are numbered by (type name, value), and persons in the order of their smallest
usable identifier, as the in-memory path numbers them, so ``person_id`` values agree.

What comes to the driver: counts, a histogram of combinations per identifier (for the
data-driven placeholder limit), the codes of the few data-driven placeholders, and — only when
a person is over ``max_person_ids`` — the (combination, identifier) pairs of the oversized
persons, which :func:`analysis.identity.guards.chain_guard` splits.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from analysis import config
from analysis.identity import (
    DEFAULT_PLACEHOLDERS,
    DEVICE_TYPES,
    PLACEHOLDER_FACTOR,
    PLACEHOLDER_MIN_LINKS,
)
from analysis.identity.guards import chain_guard
from analysis.identity.stitching import check_options
from analysis.spark.components import connected_components, dense_index
from analysis.spark.journeys import to_pandas

log = logging.getLogger(__name__)


@dataclass
class Stitched:
    """What :func:`stitch_spark` returns: the events with ``person_id`` and the summary."""

    events: DataFrame
    summary: dict[str, Any]
    persons: DataFrame  # code, person_id: every usable identifier's person


def _placeholder_flags(value: Any, placeholders: Any, patterns: tuple[str, ...]) -> tuple:
    """Return whether a value is a listed placeholder, and a placeholder pattern not listed."""
    listed = F.lower(value).isin(sorted({p.strip().lower() for p in placeholders}))
    if not patterns:
        return listed, F.lit(False)
    norm = F.regexp_replace(F.lower(value), r"[\s\p{P}\p{S}]+", "")
    pattern = norm.rlike("^(?:" + "|".join(f"(?:{p})" for p in patterns) + ")$")
    return listed, pattern & ~listed


def _pair_counts(lc: DataFrame, cand: DataFrame, b_types: list[int] | None) -> DataFrame:
    """Per candidate code and other type: distinct identifiers of that type seen with it."""
    a = lc.join(cand, "code").select(
        F.col("_combo").alias("c"), F.col("code").alias("a_code"), F.col("t").alias("a_t")
    )
    b = lc if b_types is None else lc.filter(F.col("t").isin(b_types))
    b = b.select(F.col("_combo").alias("c"), F.col("code").alias("b_code"), F.col("t").alias("b_t"))
    pairs = a.join(b, "c").filter(F.col("a_t") != F.col("b_t"))
    return (
        pairs.select("a_code", "b_t", "b_code")
        .distinct()
        .groupBy("a_code", "b_t")
        .agg(F.count(F.lit(1)).alias("k"))
    )


def stitch_spark(
    events: DataFrame,
    identifiers: list[str],
    *,
    max_links: int = config.MAX_LINKS,
    max_device_links: int = config.MAX_DEVICE_LINKS,
    device_types: tuple[str, ...] = DEVICE_TYPES,
    placeholders: Any = DEFAULT_PLACEHOLDERS,
    placeholder_patterns: tuple[str, ...] | None = None,
    placeholder_min_links: int | None = PLACEHOLDER_MIN_LINKS,
    placeholder_factor: float = PLACEHOLDER_FACTOR,
    max_person_ids: int | str | None = "max_links",
) -> Stitched:
    """Add ``person_id`` (long, null where no usable identifier) to ``events``, in Spark.

    Parameters are those of :func:`analysis.identity.stitch` (same defaults and meaning).

    Returns
    -------
    Stitched
        ``events`` with ``person_id``; ``summary`` with ``identifiers``, ``persons``,
        ``merges``, ``blocked``, ``blocked_by_reason``, ``rows_without_person`` and the
        number of large-star/small-star solves.

    Long because it is the stitching recipe step by step (each step a few lines of Spark),
    and reads best top to bottom as :func:`analysis.identity.stitch` does.
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
    cols = list(identifiers)
    rank = {c: r for r, c in enumerate(sorted(cols))}
    device_t = [rank[c] for c in cols if c in device_types]
    person_t = sorted(rank[c] for c in cols if c not in device_types)
    ids = events.select(*[F.nullif(F.col(c).cast("string"), F.lit("")).alias(c) for c in cols])
    # 1. distinct identifier combinations, each with an id
    combos = ids.groupBy(*cols).agg(F.count(F.lit(1)).alias("n_rows"))
    combos = combos.withColumn("_combo", F.monotonically_increasing_id()).localCheckpoint()
    # 2. identifiers numbered by (type name, value): code 1..m
    long = combos.select(
        "_combo",
        "n_rows",
        F.inline(
            F.array(
                *[F.struct(F.lit(rank[c]).alias("t"), F.col(c).alias("id_value")) for c in cols]
            )
        ),
    ).filter(F.col("id_value").isNotNull())
    ident = long.groupBy("t", "id_value").agg(
        F.sum("n_rows").alias("rows"), F.count(F.lit(1)).alias("n_combos")
    )
    ident = dense_index(ident, ["t", "id_value"], "code")
    listed, pattern = _placeholder_flags(F.col("id_value"), placeholders, placeholder_patterns)
    ident = ident.withColumns({"listed": listed, "pattern": pattern}).localCheckpoint()
    lc = long.join(ident.select("t", "id_value", "code"), ["t", "id_value"])
    lc = lc.select("_combo", "code", "t").localCheckpoint()
    # 3. super-nodes: over max_links / max_device_links distinct values of one other type
    cand = ident.filter(F.col("n_combos") > min(max_links, max_device_links)).select("code")
    k = _pair_counts(lc, cand, None)
    lim = F.when(F.col("b_t").isin(device_t), max_device_links).otherwise(max_links)
    supers = k.filter(F.col("k") > lim).select(F.col("a_code").alias("code")).distinct()
    flags = ident.join(supers.withColumn("super", F.lit(True)), "code", "left")
    flags = flags.withColumn("super", F.coalesce("super", F.lit(False)))
    # 4. data-driven placeholders
    unrelated = _unrelated(ident, lc, device_t, placeholder_min_links, placeholder_factor)
    flags = flags.join(unrelated.withColumn("unrelated", F.lit(True)), "code", "left")
    flags = flags.withColumn("unrelated", F.coalesce("unrelated", F.lit(False)))
    flags = flags.withColumn(
        "blocked", F.col("listed") | F.col("pattern") | F.col("super") | F.col("unrelated")
    )
    flags = flags.withColumn("chain", F.lit(False)).localCheckpoint()
    # 5. components, then the chain guard (and components again if it blocked bridges)
    anchor, comp = _solve(lc, flags)
    chain = _chains(lc, flags, comp, person_t, max_person_ids)
    solves = 1
    if chain:
        blocked_chain = lc.sparkSession.createDataFrame([(int(c),) for c in chain], "code long")
        flags = flags.join(blocked_chain.withColumn("c2", F.lit(True)), "code", "left")
        flags = flags.withColumns(
            {
                "chain": F.coalesce("c2", F.lit(False)),
                "blocked": F.col("blocked") | F.coalesce("c2", F.lit(False)),
            }
        ).drop("c2")
        flags = flags.localCheckpoint()
        anchor, comp = _solve(lc, flags)
        solves = 2
    # 6. persons numbered by their smallest identifier; rows → combination → anchor → person
    labels = comp.select("component").distinct()
    labels = dense_index(labels, ["component"], "person_id")
    node_person = comp.join(labels, "component").select("code", "person_id").localCheckpoint()
    combo_person = anchor.join(node_person, F.col("anchor") == F.col("code")).select(
        "_combo", "person_id"
    )
    combo_person = combos.join(combo_person, "_combo", "left").select(*cols, "person_id")
    keyed = events.withColumns(
        {f"_k_{c}": F.nullif(F.col(c).cast("string"), F.lit("")) for c in cols}
    )
    cp = combo_person.select(*[F.col(c).alias(f"_c_{c}") for c in cols], "person_id")
    cond = [keyed[f"_k_{c}"].eqNullSafe(cp[f"_c_{c}"]) for c in cols]
    out = keyed.join(cp, cond, "left")
    out = out.drop(*[f"_k_{c}" for c in cols], *[f"_c_{c}" for c in cols])
    summary = _summary(flags, node_person, combo_person, combos, solves, max_person_ids)
    summary.update(
        max_links=max_links,
        max_device_links=max_device_links,
        placeholder_min_links=placeholder_min_links,
        placeholder_factor=placeholder_factor,
        engine="spark",
    )
    return Stitched(events=out, summary=summary, persons=node_person)


def _unrelated(
    ident: DataFrame,
    lc: DataFrame,
    device_t: list[int],
    min_links: int | None,
    factor: float,
) -> DataFrame:
    """Codes of the data-driven placeholders (see :func:`analysis.identity.guards.unrelated_identifiers`)."""
    empty = ident.sparkSession.createDataFrame([], "code long")
    if min_links is None or not device_t:
        return empty
    typical = ident.filter(~F.col("listed") & ~F.col("pattern"))
    hist = typical.groupBy("t", "n_combos").agg(F.count(F.lit(1)).alias("k")).collect()
    limit: dict[int, int] = {}
    for t in sorted({r["t"] for r in hist}):
        g = sorted((r["n_combos"], r["k"]) for r in hist if r["t"] == t)
        n_combos = np.array([x for x, _ in g])
        cum = np.cumsum([y for _, y in g]) / sum(y for _, y in g)
        p99 = int(n_combos[np.searchsorted(cum, 0.99 - 1e-12)])
        limit[t] = max(int(min_links), int(np.floor(factor * p99)))
    if not limit:
        return empty
    cap = F.create_map(*[F.lit(x) for kv in limit.items() for x in kv])
    cand = ident.filter(F.col("n_combos") > F.coalesce(cap[F.col("t")], F.lit(2**62)))
    k = _pair_counts(lc, cand.select("code"), device_t)
    k = k.join(cand.select(F.col("code").alias("a_code"), "t"), "a_code")
    bad = k.filter(F.col("k") > cap[F.col("t")]).select(F.col("a_code").alias("code"))
    return bad.distinct()


def _solve(lc: DataFrame, flags: DataFrame) -> tuple[DataFrame, DataFrame]:
    """Each combination's anchor (smallest usable code) and every usable code's component."""
    usable = flags.filter(~F.col("blocked")).select("code")
    lu = lc.join(usable, "code", "left_semi")
    anchor = lu.groupBy("_combo").agg(F.min("code").alias("anchor")).localCheckpoint()
    edges = lu.join(anchor, "_combo").filter(F.col("code") != F.col("anchor"))
    cc = connected_components(edges, "anchor", "code")
    comp = usable.join(cc.withColumnRenamed("node", "code"), "code", "left")
    comp = comp.select("code", F.coalesce("component", "code").alias("component"))
    return anchor, comp.localCheckpoint()


def _chains(
    lc: DataFrame,
    flags: DataFrame,
    comp: DataFrame,
    person_t: list[int],
    max_ids: int | None,
) -> dict[int, int]:
    """Return the chain guard's bridges {code: persons bridged} (only oversized persons come back)."""
    if max_ids is None or not person_t:
        return {}
    typed = comp.join(flags.select("code", "t"), "code")
    per = typed.filter(F.col("t").isin(person_t)).groupBy("component", "t").count()
    over = per.filter(F.col("count") > max_ids).select("component").distinct()
    if over.limit(1).count() == 0:
        return {}
    sub = typed.join(over, "component").select("code", "t")
    pairs = lc.join(sub.select("code"), "code").select("_combo", "code")
    pairs = to_pandas(pairs)
    types = to_pandas(sub)
    local = {int(c): i for i, c in enumerate(types["code"])}
    node_type = types["t"].to_numpy(np.int64)
    code_local = pairs["code"].map(local).to_numpy(np.int64)
    out = chain_guard(pairs["_combo"].to_numpy(), code_local, node_type, person_t, int(max_ids))
    codes = types["code"].to_numpy(np.int64)
    return {int(codes[i]): n for i, n in out.items()}


def _summary(
    flags: DataFrame,
    node_person: DataFrame,
    combo_person: DataFrame,
    combos: DataFrame,
    solves: int,
    max_person_ids: int | None,
) -> dict[str, Any]:
    """Return the counts of the stitching, as :func:`analysis.identity.stitch` reports them."""
    f = flags.agg(
        F.count(F.lit(1)).alias("m"),
        F.sum(F.col("blocked").cast("long")).alias("blocked"),
        F.sum(F.col("listed").cast("long")).alias("listed"),
        F.sum(F.col("pattern").cast("long")).alias("pattern"),
        F.sum((F.col("super") & ~F.col("listed") & ~F.col("pattern")).cast("long")).alias("super"),
        F.sum(
            (F.col("unrelated") & ~F.col("listed") & ~F.col("pattern") & ~F.col("super")).cast(
                "long"
            )
        ).alias("unrelated"),
        F.sum(F.col("chain").cast("long")).alias("chain"),
    ).collect()[0]
    by_type = flags.groupBy("t").count().collect()
    per = node_person.groupBy("person_id").count()
    p = per.agg(
        F.count(F.lit(1)).alias("n"),
        F.sum((F.col("count") > 1).cast("long")).alias("multi"),
        F.max("count").alias("largest"),
    ).collect()[0]
    no_person = combo_person.filter(F.col("person_id").isNull()).join(
        combos.select(*[c for c in combo_person.columns if c != "person_id"], "n_rows"),
        [c for c in combo_person.columns if c != "person_id"],
    )
    rows_without = no_person.agg(F.sum("n_rows")).collect()[0][0]
    m, blocked, n = int(f["m"]), int(f["blocked"] or 0), int(p["n"])
    return {
        "identifiers": m,
        "identifiers_by_type_rank": {int(r["t"]): int(r["count"]) for r in by_type},
        "persons": n,
        "merges": (m - blocked) - n,
        "multi_identifier_persons": int(p["multi"] or 0),
        "largest_person": int(p["largest"] or 0),
        "blocked": blocked,
        "blocked_by_reason": {
            "placeholder value": int(f["listed"] or 0),
            "placeholder pattern": int(f["pattern"] or 0),
            "super-node": int(f["super"] or 0),
            "unrelated rows": int(f["unrelated"] or 0),
            "chain bridge": int(f["chain"] or 0),
        },
        "rows_without_person": int(rows_without or 0),
        "max_person_ids": max_person_ids,
        "component_solves": solves,
    }
