"""Journeys on a Spark cluster, with the data read where it lies and the driver out of the way.

:func:`build_journeys_spark` reads touchpoints from a Parquet path or glob, a table name or a
Spark DataFrame, validates them (bad rows quarantined with a reason, counted), stitches
identities (the guards of :func:`analysis.stitch_identities`; connected components by the
large-star/small-star iteration in Spark), cuts journeys and computes the sufficient
statistics in Spark. Only small tables (transition counts, path counts, counts for the
summary) come to the driver. ``docs/spark.md`` shows how to run it on a cluster.

Modules: :mod:`.source` (reading, the column map, validation), :mod:`.stitch` (stitching),
:mod:`.components` (connected components, dense numbering), :mod:`.journeys` (annotation and
:class:`SparkJourneys`).

Examples
--------
>>> from analysis.spark import build_journeys_spark                      # doctest: +SKIP
>>> jr = build_journeys_spark("s3://bucket/events/*.parquet")              # doctest: +SKIP
>>> jr.stage_transitions(by="segment")                                      # doctest: +SKIP
>>> jr.journeys.write.parquet("s3://bucket/journeys/")                     # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import functions as F

from analysis import config
from analysis.journeys.build import NOT_ATTRIBUTES  # the attributes are those of build_journeys
from analysis.schema import DataError
from analysis.spark.components import connected_components, dense_index
from analysis.spark.journeys import SparkJourneys, annotate, to_pandas
from analysis.spark.source import Validated, canonical, read_source, validate
from analysis.spark.stitch import Stitched, stitch_spark

log = logging.getLogger(__name__)


def build_journeys_spark(
    source: Any,
    *,
    mapping: Any = None,
    inactivity_days: float = config.INACTIVITY_DAYS,
    lookback_days: float = config.LOOKBACK_DAYS,
    as_of: str | pd.Timestamp | None = None,
    identifiers: list[str] | None = None,
    spark: Any = None,
    stitch_options: dict[str, Any] | None = None,
) -> SparkJourneys:
    """Validate, stitch and cut journeys in Spark, from data where it lies.

    Parameters
    ----------
    source : str, pathlib.Path or pyspark.sql.DataFrame
        Parquet path, folder or glob (local, ``s3://``, ``abfss://``, ``dbfs:/``…), a table
        name, or a DataFrame (see :func:`analysis.spark.source.read_source`). Columns use the
        canonical names unless ``mapping`` renames them.
    mapping : ColumnMap, dict or path to a YAML column map, optional
        ``columns``, ``defaults``, ``identifiers``, ``stage_map`` and
        ``conversion_touchpoints`` apply; text-file keys (formats, scales) are an error.
    inactivity_days, lookback_days : float, default 30
        As :func:`analysis.build_journeys`.
    as_of : timestamp, optional
        End of the data; default: the last timestamp of the kept rows.
    identifiers : list of str, optional
        Identifier columns to stitch on; default: the map's, else the canonical identifiers
        present.
    spark : pyspark.sql.SparkSession, optional
        Default: the active session, else :func:`analysis.engine.spark_session` (local).
    stitch_options : dict, optional
        Options of :func:`analysis.stitch_identities` (``max_links``, ``max_device_links``,
        ``placeholders``, ``max_person_ids``, …), same defaults.

    Returns
    -------
    SparkJourneys
        ``stage_transitions``, ``stage_durations``, ``channel_paths`` as in memory;
        ``journeys`` and ``quarantine`` as Spark DataFrames; ``summary`` with the counts.

    Raises
    ------
    DataError
        The source cannot be read, required columns are missing, or no row is usable.
    """
    if inactivity_days <= 0 or lookback_days <= 0:
        raise ValueError("inactivity_days and lookback_days must be > 0")
    spark = spark or _session()
    t0 = time.perf_counter()
    raw = read_source(spark, source)
    df, ids, stage_map = canonical(raw, mapping)
    if identifiers is not None:
        ids = [c for c in identifiers if c in df.columns]
    checked = validate(df, ids, stage_map)
    if checked.summary["rows_kept"] == 0:
        raise DataError(
            f"no usable rows: {checked.summary['rows_quarantined']} quarantined "
            f"({checked.summary['reasons']})",
            fix="look at the quarantine reasons; fix the column map or the data",
        )
    stitched = stitch_spark(checked.events, ids, **(stitch_options or {}))
    attributes = [c for c in checked.events.columns if c not in NOT_ATTRIBUTES]
    with_person = stitched.events.filter(F.col("person_id").isNotNull())
    events = annotate(with_person, attributes, float(inactivity_days))
    events = events.persist(StorageLevel.MEMORY_AND_DISK)
    as_of_ts = _as_of(checked, as_of)
    jr = SparkJourneys(
        events=events,
        inactivity_days=float(inactivity_days),
        lookback_days=float(lookback_days),
        as_of=as_of_ts,
        attributes=attributes,
        quarantine=checked.quarantine,
    )
    n_used = events.count()
    renamed = [
        r["channel"]
        for r in checked.events.filter(F.col("channel").contains(">"))
        .select("channel")
        .distinct()
        .limit(1000)
        .collect()
    ]
    jr.summary = {
        "events": checked.summary["rows_kept"],
        "events_without_person": checked.summary["rows_kept"] - n_used,
        "events_used": n_used,
        **jr.journey_counts(),
        "as_of": as_of_ts,
        "inactivity_days": float(inactivity_days),
        "lookback_days": float(lookback_days),
        "channels_renamed": sorted(renamed),
        "journey_by": "inactivity",
        "engine": "spark",
        "validation": checked.summary,
        "stitching": stitched.summary,
    }
    log.info(
        "spark: %s rows read, %s quarantined, %s journeys in %.1f s",
        f"{checked.summary['rows_read']:,}",
        f"{checked.summary['rows_quarantined']:,}",
        f"{jr.summary['journeys']:,}",
        time.perf_counter() - t0,
    )
    return jr


def _session() -> Any:
    """Return the active Spark session, else the project's local one."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    from analysis.engine import spark_session

    return spark_session()


def _as_of(checked: Validated, as_of: str | pd.Timestamp | None) -> pd.Timestamp:
    """Return the end of the data in UTC: ``as_of``, or the last timestamp of the kept rows."""
    if as_of is None:
        last = checked.events.agg(F.max(F.unix_micros("timestamp")).alias("m")).collect()[0]
        return pd.Timestamp(int(last["m"]), unit="us", tz="UTC")
    ts = pd.Timestamp(as_of)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


__all__ = [
    "SparkJourneys",
    "Stitched",
    "Validated",
    "build_journeys_spark",
    "canonical",
    "connected_components",
    "dense_index",
    "read_source",
    "stitch_spark",
    "to_pandas",
    "validate",
]
