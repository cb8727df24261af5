"""Fixtures of the Spark path's tests: the local session, Parquet files, comparisons with DuckDB."""

from __future__ import annotations

import pandas as pd
import pytest


@pytest.fixture(scope="module")
def spark(spark_available):
    """The project's local Spark session, with few shuffle partitions (tiny data, 2 cores)."""
    from analysis.engine import spark_session

    session = spark_session()
    before = session.conf.get("spark.sql.shuffle.partitions")
    session.conf.set("spark.sql.shuffle.partitions", "2")
    yield session
    session.conf.set("spark.sql.shuffle.partitions", before)


def _assert_same_tables(a, b, *, bys=("segment", None)) -> None:
    """The in-memory Journeys ``a`` and the SparkJourneys ``b`` give equal tables."""
    from analysis.spark import to_pandas
    from analysis.spark.journeys import normalise

    pd.testing.assert_frame_equal(a.journeys, normalise(to_pandas(b.journeys)))
    for by in bys:
        pd.testing.assert_frame_equal(a.stage_transitions(by=by), b.stage_transitions(by=by))
        pd.testing.assert_frame_equal(a.channel_paths(by=by), b.channel_paths(by=by))
    pd.testing.assert_frame_equal(a.stage_durations(), b.stage_durations())


def _person_partition(event_ids, persons) -> set[frozenset]:
    """The events grouped by person (labels dropped); events without a person left out."""
    df = pd.DataFrame({"e": list(event_ids), "p": list(persons)}).dropna()
    return {frozenset(g["e"]) for _, g in df.groupby("p")}


@pytest.fixture
def same_tables():
    """``same_tables(jr_duckdb, jr_spark, bys=...)`` asserts equal tables."""
    return _assert_same_tables


@pytest.fixture
def partition():
    """``partition(event_ids, persons)``: the person partition of the events, labels dropped."""
    return _person_partition
