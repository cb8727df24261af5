"""Reading touchpoints where they lie, and the canonical schema's row rules, on Spark.

:func:`read_source` opens a Parquet path or glob, a table name or a Spark DataFrame the user
passes (nothing is read into the driver); :func:`canonical` applies the column map's renames
and derivations; :func:`validate` applies the row rules of :func:`analysis.schema.events_schema`
that make a row unusable and returns the kept rows, the quarantined rows with their reasons and
the counts (rows read = kept + quarantined). The reasons are those of ``analysis.load_events``'
quarantine ("missing timestamp", "duplicate event_id", …).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from analysis.schema import (
    DEFAULT_CONVERSION_TOUCHPOINTS,
    IDENTIFIER_COLUMNS,
    OFFLINE_CHANNELS,
    RESERVED_STATES,
    DataError,
    StageMap,
)

#: Column-map keys that only make sense for text files; set in a map for Spark, they are an
#: error (Parquet and tables carry types), so that nothing is silently ignored.
_TEXT_ONLY = ("timestamp_format", "sentiment_scale", "delimiter", "encoding", "decimal")


@dataclass
class Validated:
    """What :func:`validate` returns.

    Attributes
    ----------
    events : pyspark.sql.DataFrame
        The kept rows (canonical columns and the attributes).
    quarantine : pyspark.sql.DataFrame
        The rows that break a rule, with a ``reasons`` column (array of str). Lazy: write it
        where you keep rejected rows (``.write.parquet(...)``); nothing is collected.
    summary : dict
        ``rows_read``, ``rows_kept``, ``rows_quarantined`` and ``reasons`` ({reason: rows};
        a row may have several reasons).
    identifiers : list of str
        The identifier columns present.
    """

    events: DataFrame
    quarantine: DataFrame
    summary: dict[str, Any] = field(default_factory=dict)
    identifiers: list[str] = field(default_factory=list)


def read_source(spark: SparkSession, source: Any) -> DataFrame:
    """Return a Spark DataFrame for ``source``, read lazily where it lies.

    Parameters
    ----------
    spark : pyspark.sql.SparkSession
    source : str, pathlib.Path or pyspark.sql.DataFrame
        A DataFrame is used as it is. A ``Path``, or a string with a ``/``, a ``*``, a scheme
        (``s3://``, ``abfss://``, ``dbfs:/``) or ending in ``.parquet``, is read as Parquet
        (a file, a folder of files, partitioned folders, or a glob). Any other string is a
        table name (``db.table`` or ``catalog.db.table``).

    Raises
    ------
    DataError
        ``source`` is none of these, or the path or table does not exist.
    """
    if isinstance(source, DataFrame):
        return source
    if isinstance(source, Path) or (
        isinstance(source, str)
        and ("/" in source or "*" in source or ":" in source or source.endswith(".parquet"))
    ):
        path = str(source)
        if "://" not in path and ":/" not in path and not any(c in path for c in "*?["):
            if not os.path.exists(path):
                raise DataError(
                    f"no Parquet file or folder at {path}",
                    file=path,
                    fix="give a Parquet path (file, folder or glob) or a table name",
                )
        return spark.read.parquet(path)
    if isinstance(source, str):
        if not spark.catalog.tableExists(source):
            raise DataError(
                f"no table named {source!r} in the Spark catalog",
                fix="give a Parquet path (with a '/' or ending in .parquet) or an existing table",
            )
        return spark.table(source)
    raise DataError(
        f"cannot read touchpoints from a {type(source).__name__}",
        fix="pass a Parquet path or glob, a table name, or a pyspark.sql.DataFrame",
    )


def _column_map(mapping: Any) -> Any:
    """Return a :class:`analysis.sources.ColumnMap` (or None) from a map, a dict or a YAML path."""
    if mapping is None:
        return None
    from analysis.sources import ColumnMap

    if isinstance(mapping, ColumnMap):
        cmap = mapping
    elif isinstance(mapping, dict):
        cmap = ColumnMap.from_dict(mapping)
    else:
        cmap = ColumnMap.from_yaml(mapping)
    default = ColumnMap()
    unsupported = [k for k in _TEXT_ONLY if getattr(cmap, k) != getattr(default, k)]
    if unsupported:
        raise DataError(
            f"column map keys {unsupported} apply to text files; the Spark path reads typed "
            "Parquet or tables",
            column=unsupported,
            fix="convert the file once with analysis.load_events and write it as Parquet, "
            "or remove these keys",
        )
    return cmap


def canonical(df: DataFrame, mapping: Any = None) -> tuple[DataFrame, list[str], Any]:
    """Rename and derive the canonical columns (lazily); return the frame, identifiers, stage map.

    Applies a column map's ``columns`` (canonical name → source column), ``defaults``,
    ``identifiers``, ``stage_map`` (``stage`` from ``touchpoint`` when the source has no stage)
    and ``conversion_touchpoints`` (``conversion`` when absent). Without a map: ``segment`` is
    ``"all"`` when absent, ``revenue``/``sentiment`` missing, ``conversion`` from the default
    conversion touchpoints, ``event_id`` a hash of the row when absent (exact duplicates then
    share it and are quarantined as duplicates, as the loader does).

    Returns
    -------
    tuple
        The frame, the identifier columns present, and the :class:`StageMap` whose stages are
        checked (None: any stage name).
    """
    cmap = _column_map(mapping)
    stage_map: StageMap | None = None
    identifiers: list[str] = list(IDENTIFIER_COLUMNS)
    conv_tp: tuple[str, ...] = DEFAULT_CONVERSION_TOUCHPOINTS
    if cmap is not None:
        present = set(df.columns)
        missing = [src for src in cmap.columns.values() if src not in present]
        if missing:
            raise DataError(
                f"the column map names columns the data lacks: {missing}",
                column=missing,
                fix=f"the data's columns are {sorted(present)}",
            )
        for canon, src in cmap.columns.items():
            if canon in present and canon != src:
                df = df.withColumnRenamed(canon, f"{canon}_source")
            df = df.withColumnRenamed(src, canon) if canon != src else df
        for k, v in cmap.defaults.items():
            if k not in df.columns:
                df = df.withColumn(k, F.lit(v))
        identifiers = list(cmap.identifiers)
        stage_map = cmap.stage_map
        conv_tp = tuple(cmap.conversion_touchpoints)
    cols = set(df.columns)
    if "stage" not in cols and "touchpoint" in cols:
        tps = (stage_map or StageMap()).touchpoints
        mapping_expr = F.create_map(*[F.lit(x) for kv in tps.items() for x in kv])
        df = df.withColumn("stage", mapping_expr[F.col("touchpoint")])
    if "conversion" not in cols and "touchpoint" in cols:
        df = df.withColumn("conversion", F.col("touchpoint").isin(list(conv_tp)))
    if "online" not in cols and "channel" in cols:
        df = df.withColumn("online", ~F.col("channel").isin(sorted(OFFLINE_CHANNELS)))
    defaults = {"segment": F.lit("all"), "revenue": F.lit(None), "sentiment": F.lit(None)}
    for k, v in defaults.items():
        if k not in cols:
            df = df.withColumn(k, v.cast("string" if k == "segment" else "double"))
    if "event_id" not in cols:
        df = df.withColumn("event_id", F.sha2(F.to_json(F.struct(*sorted(cols))), 256))
    return df, [c for c in identifiers if c in df.columns], stage_map


def _blank(c: Column) -> Column:
    """Null or nothing but spaces."""
    return c.isNull() | (F.length(F.trim(c)) == 0)


def _rules(df: DataFrame, identifiers: list[str], stage_map: StageMap | None) -> list[Any]:
    """Return the row rules: (reason, condition that breaks it) for each rule that applies."""
    reserved = sorted(RESERVED_STATES)
    ts = F.col("timestamp")
    rules: list[tuple[str, Column]] = [
        ("empty event_id", _blank(F.col("event_id").cast("string"))),
        ("missing timestamp", ts.isNull()),
        ("empty channel", _blank(F.col("channel"))),
        ("empty touchpoint", _blank(F.col("touchpoint"))),
        (
            "reserved name",
            F.col("channel").isin(reserved)
            | F.col("touchpoint").isin(reserved)
            | F.col("stage").isin(reserved),
        ),
        ("negative revenue", F.col("revenue") < 0),
        (
            "non-finite revenue",
            F.isnan("revenue") | F.col("revenue").isin(float("inf"), float("-inf")),
        ),
        ("sentiment out of range", (F.col("sentiment") < -1) | (F.col("sentiment") > 1)),
        ("empty segment", _blank(F.col("segment"))),
    ]
    if stage_map is not None:
        known = list(stage_map.stages)
        rules.append(
            ("unknown stage", F.col("stage").isNotNull() & ~F.col("stage").isin(reserved + known))
        )
    none = F.lit(True)
    for c in identifiers:
        none = none & F.col(c).isNull()
    rules.append(("no identifier", none))
    return rules


def validate(df: DataFrame, identifiers: list[str], stage_map: StageMap | None = None) -> Validated:
    """Apply the row rules; quarantine the rows that break one (lazily, counts computed).

    Rules (the reasons of the loader's quarantine): ``empty event_id``, ``duplicate event_id``
    (every row after the first of an ``event_id``, first by timestamp, channel, touchpoint),
    ``missing timestamp`` (also a text that does not parse), ``empty channel``, ``empty
    touchpoint``, ``reserved name`` (a state name such as ``(start)`` as channel, touchpoint
    or stage), ``unknown stage`` (with a stage map), ``negative revenue``, ``non-finite
    revenue``, ``sentiment out of range``, ``empty segment``, ``no identifier``.

    Parameters
    ----------
    df : pyspark.sql.DataFrame
        From :func:`canonical`.
    identifiers : list of str
        Identifier columns; at least one must be present.
    stage_map : StageMap, optional
        Check stage names against its stages.

    Raises
    ------
    DataError
        Required columns are missing (all named at once), or no identifier column.
    """
    required = ["event_id", "timestamp", "channel", "touchpoint", "conversion"]
    missing = [c for c in required if c not in df.columns]
    if not identifiers:
        missing.append("an identifier column (" + ", ".join(IDENTIFIER_COLUMNS) + ")")
    if missing:
        raise DataError(
            f"the touchpoints lack required columns: {', '.join(missing)}",
            column=missing,
            fix="map them with mapping={'columns': {canonical: source column}}; the data's "
            f"columns are {sorted(df.columns)}",
        )
    df = _typed(df, identifiers)
    rules = _rules(df, identifiers, stage_map)
    reasons = F.filter(
        F.array(*[F.when(cond, F.lit(name)) for name, cond in rules]), lambda x: x.isNotNull()
    )
    order: list[Any] = [F.col("timestamp").asc_nulls_last(), "channel", "touchpoint", "stage"]
    from pyspark.sql import Window

    first = F.row_number().over(Window.partitionBy("event_id").orderBy(*order))
    dup = F.when(F.col("event_id").isNotNull() & (first > 1), F.array(F.lit("duplicate event_id")))
    flagged = df.withColumn("reasons", F.concat(reasons, F.coalesce(dup, F.array())))
    flagged = flagged.persist()
    kept = flagged.filter(F.size("reasons") == 0).drop("reasons")
    bad = flagged.filter(F.size("reasons") > 0)
    totals = flagged.agg(
        F.count(F.lit(1)).alias("n"), F.sum((F.size("reasons") > 0).cast("long")).alias("q")
    ).collect()[0]
    counts = bad.select(F.explode("reasons").alias("r")).groupBy("r").count().collect()
    n, q = int(totals["n"]), int(totals["q"] or 0)
    summary = {
        "rows_read": n,
        "rows_kept": n - q,
        "rows_quarantined": q,
        "reasons": {r["r"]: int(r["count"]) for r in sorted(counts, key=lambda r: -r["count"])},
    }
    return Validated(kept, bad, summary, identifiers)


def _typed(df: DataFrame, identifiers: list[str]) -> DataFrame:
    """Cast the canonical columns to their types (identifiers and text as string, timestamp)."""
    types = dict(df.dtypes)
    out = {}
    for c in [*identifiers, "event_id", "channel", "touchpoint", "stage", "segment", "campaign"]:
        if c in types and types[c] != "string":
            out[c] = F.col(c).cast("string")
    if types.get("timestamp") not in ("timestamp", "timestamp_ntz"):
        out["timestamp"] = F.try_to_timestamp(F.col("timestamp").cast("string"))
    elif types["timestamp"] == "timestamp_ntz":  # a naive time is taken as UTC (session zone)
        out["timestamp"] = F.col("timestamp").cast(T.TimestampType())
    for c in ("revenue", "sentiment"):
        if c in types and types[c] != "double":
            out[c] = F.col(c).cast("double")
    if types.get("conversion") != "boolean":
        out["conversion"] = F.col("conversion").cast("boolean")
    return df.withColumns(out) if out else df
