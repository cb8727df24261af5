"""Query engines behind journey building: DuckDB (default, embedded) and Spark (ibis PySpark).

Journey and stitching logic is written once as ibis expressions; this module only opens a
backend and hands data to it.

Notes
-----
- ibis' PySpark ``memtable`` turns missing strings into the literal string ``"NaN"`` (it goes
  through pandas). Nullable identifiers would then link everybody with a missing value, so
  :func:`table` gives Spark the data as Arrow, which keeps nulls as nulls.
- Spark returns naive timestamps in its session time zone; the session here runs in UTC and
  :func:`to_pandas` makes them UTC-aware again, so results compare equal across engines.
"""

from __future__ import annotations

import itertools
import os
import sys
from typing import Any

import ibis
import pandas as pd
import pyarrow as pa

ENGINES = ("duckdb", "spark")
_counter = itertools.count()
_SPARK = None


def check_engine(engine: str) -> str:
    """Return ``engine`` if it is one of :data:`ENGINES`; raise a ValueError otherwise."""
    if engine not in ENGINES:
        raise ValueError(f"engine={engine!r} is not supported; use one of {', '.join(ENGINES)}")
    return engine


def spark_session():
    """Return a local Spark session (``local[*]``, UTC, no UI), created once per process.

    Environment: ``CJL_SPARK_MASTER``, ``CJL_SPARK_PARTITIONS``, ``CJL_SPARK_DRIVER_MEMORY``,
    and ``CJL_SPARK_CONF`` (``"key=value;key=value"``, any other Spark setting).
    """
    global _SPARK
    if _SPARK is None:
        try:
            from pyspark.sql import SparkSession
        except ImportError as exc:  # pragma: no cover - pyspark is in the lock
            raise ImportError("engine='spark' needs pyspark: pip install pyspark") from exc
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = (
            SparkSession.builder.appName("customer-journey-lab")
            .master(os.environ.get("CJL_SPARK_MASTER", "local[*]"))
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", os.environ.get("CJL_SPARK_PARTITIONS", "8"))
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .config("spark.driver.memory", os.environ.get("CJL_SPARK_DRIVER_MEMORY", "4g"))
        )
        # extra settings, "key=value;key=value" (e.g. spark.driver.maxResultSize=8m in the
        # driver-memory test of the Spark path)
        for item in filter(None, os.environ.get("CJL_SPARK_CONF", "").split(";")):
            key, _, value = item.partition("=")
            builder = builder.config(key.strip(), value.strip())
        _SPARK = builder.getOrCreate()
        _SPARK.sparkContext.setLogLevel("ERROR")
    return _SPARK


def connect(engine: str = "duckdb"):
    """Open an ibis backend for ``engine``: a fresh in-memory DuckDB, or the shared local Spark."""
    check_engine(engine)
    if engine == "duckdb":
        from analysis import config

        spill = config.CACHE_DIR / "duckdb"
        spill.mkdir(parents=True, exist_ok=True)
        # every result is sorted explicitly, so DuckDB need not keep insertion order (faster,
        # less memory on big materialisations)
        return ibis.duckdb.connect(temp_directory=str(spill), preserve_insertion_order=False)
    return ibis.pyspark.connect(spark_session())


def table(con, data: Any, name: str | None = None, *, materialize: bool = False) -> ibis.Table:
    """Make ``data`` (pandas DataFrame, Arrow table or ibis Table) a table of backend ``con``.

    On DuckDB the data is scanned in place (no copy) unless ``materialize=True``, which copies
    it into a temporary table. Do that for tables used in joins: DuckDB has no statistics for
    an Arrow scan, guesses one row and may then choose a nested-loop join.
    """
    if isinstance(data, ibis.Table):
        return data
    name = name or f"cjl_{next(_counter)}"
    if isinstance(data, pd.DataFrame):
        data = pa.Table.from_pandas(data, preserve_index=False)
    if not isinstance(data, pa.Table):
        raise TypeError(
            f"expected a pandas DataFrame, an Arrow table or an ibis Table, got {type(data)}"
        )
    if con.name == "pyspark":
        sdf = con._session.createDataFrame(data)
        sdf.createOrReplaceTempView(name)
        return con.table(name)
    if materialize:
        return con.create_table(name, data, temp=True)
    con.con.register(name, data)  # DuckDB scans the Arrow table in place, no copy
    return con.table(name)


def utc_timestamps(df: pd.DataFrame) -> pd.DataFrame:
    """Make every timestamp column of ``df`` UTC-aware with µs resolution (in place; returned).

    Naive timestamps are read as UTC (Spark returns them in its session time zone, UTC here).
    """
    for col in df.columns:
        s = df[col]
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            df[col] = s.dt.tz_convert("UTC").astype("datetime64[us, UTC]")
        elif pd.api.types.is_datetime64_dtype(s.dtype):
            df[col] = s.dt.tz_localize("UTC").astype("datetime64[us, UTC]")
    return df


def to_pandas(con, expr: ibis.Expr) -> pd.DataFrame:
    """Execute ``expr`` and return pandas with UTC-aware timestamps on every engine."""
    return utc_timestamps(con.to_pyarrow(expr).to_pandas())
