"""Journeys on Spark: annotation, and the tables of :class:`analysis.journeys.Journeys`.

The rules are those of :func:`analysis.build_journeys` (``journey_by="inactivity"``): a
person's touchpoints ordered by time, then ``event_id``; a journey starts at the first
touchpoint, after a conversion, and after a gap of ``inactivity_days`` or more; a journey that
has not converted is ``open`` until ``inactivity_days`` after its last contact, then
``dropoff``. Stage runs, transitions, durations and channel paths follow the definitions of
:mod:`analysis.journeys.tables`, written here as Spark expressions so that the events never
leave the cluster: only the tables asked for come back, as pandas with the same columns,
dtypes and row order as the in-memory :class:`~analysis.journeys.Journeys` gives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from analysis.engine import utc_timestamps
from analysis.journeys._common import DAY_US, KEYS, OUTCOME_STATE, AsOf, by_list, normalise
from analysis.schema import (
    CONVERSION,
    DROPOFF,
    JOURNEY_COLUMNS,
    OPEN,
    PATH_SEP,
    START,
    DataError,
)


def ordered_path(values: str, order: str) -> Column:
    """Aggregate: ``values`` joined by " > " in ``order`` (within each group)."""
    s = F.sort_array(F.collect_list(F.struct(F.col(order).alias("o"), F.col(values).alias("v"))))
    return F.array_join(F.transform(s, lambda x: x["v"]), PATH_SEP)


def to_pandas(df: DataFrame) -> pd.DataFrame:
    """Collect a (small) Spark table through Arrow; timestamps become UTC-aware (µs)."""
    return utc_timestamps(df.toArrow().to_pandas())


def annotate(events: DataFrame, attributes: list[str], inactivity_days: float) -> DataFrame:
    """Add ``_us``, ``pos``, ``_new`` (starts a journey) and ``journey_index`` to stitched events.

    Rows without a ``person_id`` must have been left out. Channel names with ``>`` (the path
    separator) are written with ``›``, as the in-memory path does.
    """
    t = events.select(
        "event_id",
        F.col("person_id").cast("long").alias("person_id"),
        F.regexp_replace("channel", ">", "›").alias("channel"),
        "stage",
        F.coalesce(F.col("conversion"), F.lit(False)).alias("conversion"),
        F.col("revenue").cast("double").alias("revenue"),
        F.unix_micros("timestamp").alias("_us"),
        F.col("sentiment").isNotNull().alias("_feedback"),
        *attributes,
    )
    w = Window.partitionBy("person_id").orderBy("_us", "event_id")
    prev_us = F.lag("_us").over(w)
    prev_conv = F.lag("conversion").over(w)
    t = t.withColumns(
        {
            "pos": F.row_number().over(w).cast("long"),
            "_new": (
                prev_us.isNull()
                | ((F.col("_us") - prev_us) >= inactivity_days * DAY_US)
                | F.coalesce(prev_conv, F.lit(False))
            ).cast("long"),
        }
    )
    cw = (
        Window.partitionBy("person_id")
        .orderBy("pos")
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    return t.withColumn("journey_index", F.sum("_new").over(cw) - 1)


@dataclass
class SparkJourneys(AsOf):
    """Journeys built on Spark by :func:`analysis.spark.build_journeys_spark`.

    The table methods have the names, arguments, columns, dtypes and row order of
    :class:`analysis.journeys.Journeys`' (see there for their meaning) and return pandas:
    they are sufficient statistics, small whatever the number of events. :attr:`journeys`
    is the exception: one row per journey, it stays a Spark DataFrame (``to_pandas(...)``
    or ``.toPandas()`` it when it is small; write it with ``.write.parquet(...)`` otherwise).

    Attributes
    ----------
    events : pyspark.sql.DataFrame
        The annotated events (persisted): core columns, attributes, ``_us``, ``pos``,
        ``_new``, ``journey_index``.
    quarantine : pyspark.sql.DataFrame
        Rows that broke a rule of the canonical schema, with their ``reasons``.
    summary : dict
        As :attr:`analysis.journeys.Journeys.summary`, plus ``validation`` (rows read, kept,
        quarantined, by reason) and ``stitching`` (counts).
    """

    events: DataFrame
    inactivity_days: float
    lookback_days: float
    as_of: pd.Timestamp
    attributes: list[str]
    quarantine: DataFrame | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    engine: str = "spark"

    # ---------------------------------------------------------------- building blocks
    @cached_property
    def journey_rows(self) -> DataFrame:
        """One row per journey, with ``_start_us``, ``_end_us``, ``_last_stage`` (persisted)."""
        ev = self.events
        last_key = F.when(F.col("stage").isNotNull(), F.col("pos")).otherwise(F.lit(-1))
        j = ev.groupBy(*KEYS).agg(
            F.min("_us").alias("_start_us"),
            F.max("_us").alias("_end_us"),
            F.count(F.lit(1)).alias("n_touchpoints"),
            F.bool_or("conversion").alias("converted"),
            F.sum(F.when(F.col("conversion"), F.col("revenue"))).alias("revenue"),
            ordered_path("channel", "pos").alias("channels"),
            F.max_by("stage", last_key).alias("_last_stage"),
        )
        still = (F.lit(self.as_of_us) - F.col("_end_us")) < self.inactivity_days * DAY_US
        outcome = F.when(F.col("converted"), "converted").when(still, "open").otherwise("dropoff")
        j = j.withColumns({"outcome": outcome, "revenue": F.coalesce("revenue", F.lit(0.0))})
        return j.persist(StorageLevel.MEMORY_AND_DISK)

    @cached_property
    def first_touch(self) -> DataFrame:
        """Attribute values at each journey's first touchpoint (persisted)."""
        ev = self.events
        first = ev.filter(F.col("_new") == 1).select(*KEYS, *self.attributes)
        return first.persist(StorageLevel.MEMORY_AND_DISK)

    @cached_property
    def stage_runs(self) -> DataFrame:
        """The first staged touchpoint of each visit to a stage, with ``from_stage`` (persisted)."""
        st = self.events.filter(F.col("stage").isNotNull())
        w = Window.partitionBy("person_id").orderBy("pos")
        st = st.withColumns(
            {"_prev_stage": F.lag("stage").over(w), "_prev_j": F.lag("journey_index").over(w)}
        )
        same_j = F.coalesce(F.col("_prev_j") == F.col("journey_index"), F.lit(False))
        runs = st.filter(~same_j | (F.col("_prev_stage") != F.col("stage")))
        from_stage = F.when(same_j, F.col("_prev_stage")).otherwise(F.lit(START))
        runs = runs.select(*KEYS, "stage", "_us", "pos", from_stage.alias("from_stage"))
        return runs.persist(StorageLevel.MEMORY_AND_DISK)

    def check_by(self, by: list[str]) -> None:
        """Raise a :class:`DataError` unless every ``by`` column is an attribute of the events."""
        bad = [b for b in by if b not in self.attributes]
        if bad:
            raise DataError(
                f"cannot group by {bad}: not an attribute column of the events",
                column=bad,
                fix=f"use one of {self.attributes} (segment and any extra columns of the source)",
            )

    def with_by(self, df: DataFrame, by: list[str]) -> DataFrame:
        """Join the ``by`` values of each journey's first touchpoint to ``df`` (keyed by journey)."""
        if not by:
            return df
        return df.join(self.first_touch.select(*KEYS, *by), KEYS)

    # ---------------------------------------------------------------------- public tables
    @cached_property
    def journeys(self) -> DataFrame:
        """One row per journey, as a Spark DataFrame (columns of ``Journeys.journeys``).

        ``journey_id, person_id, journey_index, segment, start, end, duration_days,
        n_touchpoints, converted, revenue, outcome, stages, channels`` and the other attribute
        columns, sorted by ``person_id, journey_index``. ``to_pandas(jr.journeys)`` gives the
        in-memory path's frame when it fits.
        """
        j = self.journey_rows
        runs = self.stage_runs
        stages = runs.groupBy(*KEYS).agg(ordered_path("stage", "pos").alias("stages"))
        df = j.join(stages, KEYS, "left").join(self.first_touch, KEYS)
        df = df.withColumns(
            {
                "journey_id": F.concat_ws("-", "person_id", "journey_index"),
                "start": F.timestamp_micros("_start_us"),
                "end": F.timestamp_micros("_end_us"),
                "duration_days": (F.col("_end_us") - F.col("_start_us")) / DAY_US,
            }
        )
        cols = [c for c in JOURNEY_COLUMNS if c in df.columns]
        extra = [c for c in self.attributes if c not in cols]
        return df.select(*cols, *extra).orderBy(*KEYS)

    def stage_transitions(
        self, by: str | list[str] | None = "segment", *, mature_days: float | None = None
    ) -> pd.DataFrame:
        """Count stage-run transitions: ``[*by], from_stage, to_stage, n`` (see ``Journeys``)."""
        by = by_list(by)
        self.check_by(by)
        runs = self.stage_runs
        rw = Window.partitionBy(*KEYS).orderBy("pos")
        prev_us = F.lag("_us").over(rw)
        into = runs.select(
            *KEYS,
            "from_stage",
            F.col("stage").alias("to_stage"),
            F.coalesce(prev_us, F.col("_us")).alias("_from_us"),
        )
        last_run = runs.groupBy(*KEYS).agg(F.max("_us").alias("_from_us"))
        j = self.journey_rows.filter(F.col("_last_stage").isNotNull())
        outcome = F.create_map(*[F.lit(x) for kv in OUTCOME_STATE.items() for x in kv])
        out = j.join(last_run, KEYS).select(
            *KEYS,
            F.col("_last_stage").alias("from_stage"),
            outcome[F.col("outcome")].alias("to_stage"),
            "_from_us",
        )
        trans = into.unionByName(out)
        if mature_days is not None:
            trans = trans.filter(F.col("_from_us") <= self.entered_by(mature_days))
        trans = self.with_by(trans.drop("_from_us"), by)
        counts = trans.groupBy(*by, "from_stage", "to_stage").agg(F.count(F.lit(1)).alias("n"))
        df = to_pandas(counts)
        return normalise(df.sort_values([*by, "from_stage", "to_stage"]).reset_index(drop=True))

    def stage_durations_spark(
        self, by: str | list[str] | None = "segment", *, mature_days: float | None = None
    ) -> DataFrame:
        """:meth:`stage_durations` as a Spark DataFrame (one row per stage visit; not collected)."""
        by = by_list(by)
        self.check_by(by)
        runs = self.stage_runs
        if mature_days is not None:
            runs = runs.filter(F.col("_us") <= self.entered_by(mature_days))
        rw = Window.partitionBy(*KEYS).orderBy("pos")
        runs = runs.withColumns(
            {
                "run_index": F.row_number().over(rw),
                "next_stage": F.lead("stage").over(rw),
                "next_us": F.lead("_us").over(rw),
            }
        )
        r = runs.join(self.journey_rows.select(*KEYS, "outcome", "_end_us"), KEYS)
        has_next = F.col("next_stage").isNotNull()
        is_open = F.col("outcome") == "open"
        end_us = (
            F.when(has_next, F.col("next_us"))
            .when(is_open, F.lit(self.as_of_us))
            .otherwise(F.col("_end_us"))
        )
        exit_state = (
            F.when(has_next, F.col("next_stage"))
            .when(F.col("outcome") == "converted", CONVERSION)
            .when(is_open, OPEN)
            .otherwise(DROPOFF)
        )
        df = r.select(
            *KEYS,
            "stage",
            "run_index",
            exit_state.alias("exit"),
            ((end_us - F.col("_us")) / DAY_US).alias("duration_days"),
            (~has_next & (F.col("outcome") != "converted")).alias("censored"),
        )
        df = self.with_by(df, by)
        return df.orderBy(*by, *KEYS, "run_index").select(
            *by, *KEYS, "stage", "exit", "duration_days", "censored"
        )

    def stage_durations(
        self, by: str | list[str] | None = "segment", *, mature_days: float | None = None
    ) -> pd.DataFrame:
        """Time in each stage visit, right-censored (see ``Journeys.stage_durations``).

        One row per stage visit: this table grows with the data. On a cluster prefer
        :meth:`stage_durations_spark`, which keeps it in Spark.
        """
        df = to_pandas(self.stage_durations_spark(by, mature_days=mature_days))
        return normalise(df)

    def channel_paths(
        self,
        by: str | list[str] | None = None,
        *,
        include_open: bool = False,
        exposures_only: bool = False,
    ) -> pd.DataFrame:
        """Count channel paths: ``[*by], path, conversions, nulls, value`` (see ``Journeys``)."""
        by = by_list(by)
        self.check_by(by)
        j = self.journey_rows
        if not include_open:
            j = j.filter(F.col("outcome") != "open")
        window = self.lookback_days * DAY_US
        ev = self.events
        if exposures_only:
            e = ev.filter(~F.col("conversion") & ~F.col("_feedback"))
            fallback = F.lit("(none)")
        else:  # only journeys longer than the window are cut; the others keep `channels`
            e = ev
            j_long = j.filter((F.col("_end_us") - F.col("_start_us")) > window)
            e = e.join(j_long.select(*KEYS), KEYS, "left_semi")
            fallback = F.col("channels")
        e = e.select(*KEYS, "channel", "pos", "_us").join(j.select(*KEYS, "_end_us"), KEYS)
        e = e.filter(F.col("_us") >= F.col("_end_us") - window)
        cut = e.groupBy(*KEYS).agg(ordered_path("channel", "pos").alias("cut_path"))
        paths = j.join(cut, KEYS, "left").select(
            *KEYS,
            F.coalesce(F.col("cut_path"), fallback).alias("path"),
            "converted",
            "revenue",
        )
        paths = self.with_by(paths, by)
        agg = paths.groupBy(*by, "path").agg(
            F.sum(F.col("converted").cast("long")).alias("conversions"),
            F.count(F.lit(1)).alias("total"),
            F.sum("revenue").alias("value"),
        )
        df = to_pandas(agg)
        df["nulls"] = df["total"] - df["conversions"]
        df = df[[*by, "path", "conversions", "nulls", "value"]]
        df = df.sort_values(
            [*by, "conversions", "nulls", "path"],
            ascending=[*[True] * len(by), False, False, True],
        )
        return normalise(df.reset_index(drop=True))

    def journey_counts(self) -> dict[str, int]:
        """Persons, journeys by outcome and journeys without a stage (one aggregate)."""
        j = self.journey_rows
        row = j.agg(
            F.countDistinct("person_id").alias("persons"),
            F.count(F.lit(1)).alias("journeys"),
            *[
                F.sum((F.col("outcome") == o).cast("long")).alias(o)
                for o in ("converted", "dropoff", "open")
            ],
            F.sum(F.col("_last_stage").isNull().cast("long")).alias("journeys_without_stage"),
        ).collect()[0]
        return {k: int(row[k] or 0) for k in row.asDict()}
