"""Connected components on Spark: the large-star / small-star iteration, and dense numbering.

Kiveris, Lattanzi, Mirrokni, Rastogi, Vassilvitskii (2014), "Connected Components in MapReduce
and Beyond" (SoCC '14). The graph is a DataFrame of integer edges; every round is two joins and
two aggregates in the engine, and the driver sees only a few counts per round. The result maps
every node to the smallest node of its component, so labels are deterministic.

- *large-star*: each node ``u`` links every larger neighbour ``v`` to ``m(u)``, the smallest of
  ``u`` and its neighbours;
- *small-star*: each node ``u`` links itself and every smaller neighbour to ``m'(u)``, the
  smallest of ``u`` and its smaller neighbours.

The edges converge to a forest of stars, each centred on its component's smallest node; that
state is checked exactly (every node has one parent and no parent has a parent), not by a
checksum.
"""

from __future__ import annotations

import logging

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

log = logging.getLogger(__name__)

#: Give up (and raise) after this many large-star + small-star rounds; O(log² n) are needed.
MAX_ROUNDS = 100


def _persist(df: DataFrame) -> DataFrame:
    """Materialise ``df`` and cut its lineage (iterative joins would grow the plan each round)."""
    return df.localCheckpoint(eager=True)


def _canonical(edges: DataFrame) -> DataFrame:
    """Edges as distinct (larger ``u``, smaller ``v``) pairs, self-loops dropped."""
    return (
        edges.filter(F.col("u") != F.col("v"))
        .select(F.greatest("u", "v").alias("u"), F.least("u", "v").alias("v"))
        .distinct()
    )


def _large_star(edges: DataFrame) -> DataFrame:
    """Link every neighbour larger than ``u`` to the smallest node of ``u``'s closed neighbourhood."""
    both = edges.unionByName(edges.select(F.col("v").alias("u"), F.col("u").alias("v")))
    m = both.groupBy("u").agg(F.least(F.min("v"), F.col("u")).alias("m"))
    out = both.filter(F.col("v") > F.col("u")).join(m, "u")
    return _canonical(out.select(F.col("v").alias("u"), F.col("m").alias("v")))


def _small_star(edges: DataFrame) -> DataFrame:
    """Link ``u`` and its smaller neighbours to the smallest of them (edges are (larger, smaller))."""
    m = edges.groupBy("u").agg(F.min("v").alias("m"))
    out = edges.join(m, "u").select(F.col("v").alias("u"), F.col("m").alias("v"))
    return _canonical(out.unionByName(m.select("u", F.col("m").alias("v"))))


def _is_star_forest(edges: DataFrame) -> bool:
    """Whether every ``u`` has exactly one parent ``v`` and no parent is itself a child (one job)."""
    children = edges.select(F.col("u").alias("x")).distinct()
    row = (
        edges.join(children, F.col("v") == F.col("x"), "left")
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.countDistinct("u").alias("nu"),
            F.count("x").alias("nested"),
        )
        .collect()[0]
    )
    return bool(row["n"] == row["nu"] and row["nested"] == 0)


def connected_components(
    edges: DataFrame, src: str = "src", dst: str = "dst", *, stats: dict | None = None
) -> DataFrame:
    """Label the nodes of an undirected graph by the smallest node of their component.

    Parameters
    ----------
    edges : pyspark.sql.DataFrame
        One row per edge; ``src`` and ``dst`` are integer node ids (nulls are dropped; the
        direction and duplicates do not matter).
    src, dst : str
        Names of the two node columns.
    stats : dict, optional
        Filled with ``rounds``: the large-star + small-star rounds it took.

    Returns
    -------
    pyspark.sql.DataFrame
        ``node, component`` (both long) for every node that appears in an edge; ``component``
        is the smallest node of its component. Nodes without an edge are not listed: each is
        a component of its own.

    Raises
    ------
    RuntimeError
        The iteration did not converge within :data:`MAX_ROUNDS` rounds (it needs O(log² n)).
    """
    e = edges.select(F.col(src).cast("long").alias("u"), F.col(dst).cast("long").alias("v"))
    e = _persist(_canonical(e.dropna()))
    for i in range(1, MAX_ROUNDS + 1):
        e = _persist(_small_star(_large_star(e)))
        if _is_star_forest(e):
            if stats is not None:
                stats["rounds"] = i
            log.info("connected components: converged after %d large/small-star rounds", i)
            break
    else:  # pragma: no cover - O(log² n) rounds suffice
        raise RuntimeError(f"connected components did not converge in {MAX_ROUNDS} rounds")
    roots = e.select(F.col("v").alias("node"), F.col("v").alias("component")).distinct()
    return e.select(F.col("u").alias("node"), F.col("v").alias("component")).unionByName(roots)


def dense_index(df: DataFrame, order: list[str | Column], name: str) -> DataFrame:
    """Return ``df`` with its rows numbered 1, 2, … in ``order`` (no single-partition window).

    The rows are range-sorted across partitions; each partition's row count comes to the
    driver (one small number per partition) and becomes an offset, so the numbering needs no
    window over the whole table. ``order`` must be a total order (ties numbered arbitrarily).

    Returns
    -------
    pyspark.sql.DataFrame
        ``df`` with a long column ``name``, materialised (checkpointed).
    """
    part = df.orderBy(*order).withColumns(
        {"_pid": F.spark_partition_id(), "_mid": F.monotonically_increasing_id()}
    )
    part = _persist(part)
    counts = part.groupBy("_pid").agg(F.count(F.lit(1)).alias("n"), F.min("_mid").alias("m0"))
    rows = sorted((r["_pid"], r["n"], r["m0"]) for r in counts.collect())
    offsets, start = [], 0
    for pid, n, m0 in rows:
        offsets.append((pid, start - m0))
        start += n
    if not offsets:
        return df.withColumn(name, F.lit(None).cast("long"))
    shift = F.create_map(*[F.lit(x) for pair in offsets for x in pair])
    out = part.withColumn(name, F.col("_mid") + shift[F.col("_pid")] + F.lit(1))
    return out.drop("_pid", "_mid")
