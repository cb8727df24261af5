"""Run the Spark journey pipeline as a job: ``spark-submit`` this file (see ``docs/spark.md``).

Reads touchpoints where they lie, builds journeys in Spark and writes the sufficient
statistics (small, Parquet), the journeys and the quarantined rows (large, written by the
executors) and a JSON summary under ``--out``. The options carry the report notebooks'
parameters (``inactivity_days``, ``lookback_days``, ``as_of``; ``segment`` filters the rows).

Examples
--------
``spark-submit src/analysis/spark/submit.py --data 's3://bucket/events/*.parquet'
--out s3://bucket/cjl/run1 --inactivity-days 30 --lookback-days 30``
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from analysis import config

#: The small tables written under ``--out`` (name → method and arguments).
TABLES: dict[str, tuple[str, dict[str, Any]]] = {
    "stage_transitions": ("stage_transitions", {"by": "segment"}),
    "channel_paths": ("channel_paths", {"by": None}),
    "channel_paths_by_segment": ("channel_paths", {"by": "segment"}),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the job's options (``--help`` lists them)."""
    p = argparse.ArgumentParser(prog="analysis.spark.submit", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="Parquet path or glob, or a table name")
    p.add_argument("--out", required=True, help="folder for the results (any Spark path)")
    p.add_argument("--mapping", default=None, help="YAML column map (columns, defaults, stages)")
    p.add_argument("--segment", default="all", help="segment to keep ('all': every row)")
    p.add_argument("--inactivity-days", type=float, default=config.INACTIVITY_DAYS)
    p.add_argument("--lookback-days", type=float, default=config.LOOKBACK_DAYS)
    p.add_argument("--as-of", default="", help="end of the data (YYYY-MM-DD, UTC); '': last row")
    return p.parse_args(argv)


def run(args: argparse.Namespace, spark: Any = None) -> dict[str, Any]:
    """Build journeys for ``args`` and write every result under ``args.out``; return the summary."""
    import pyarrow as pa
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    from analysis.spark import build_journeys_spark, read_source

    spark = spark or SparkSession.builder.appName("customer-journey-lab").getOrCreate()
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    source = read_source(spark, args.data)
    if args.segment != "all":
        source = source.filter(F.col("segment") == args.segment)
    jr = build_journeys_spark(
        source,
        mapping=args.mapping,
        inactivity_days=args.inactivity_days,
        lookback_days=args.lookback_days,
        as_of=args.as_of or None,
        spark=spark,
    )
    out = args.out.rstrip("/")
    for name, (method, kwargs) in TABLES.items():
        small = getattr(jr, method)(**kwargs)
        small_arrow = pa.Table.from_pandas(small, preserve_index=False)
        spark.createDataFrame(small_arrow).coalesce(1).write.mode("overwrite").parquet(
            f"{out}/{name}"
        )
    jr.stage_durations_spark(by="segment").write.mode("overwrite").parquet(f"{out}/stage_durations")
    jr.journeys.write.mode("overwrite").parquet(f"{out}/journeys")
    if jr.quarantine is not None:
        jr.quarantine.write.mode("overwrite").parquet(f"{out}/quarantine")
    summary = {k: (str(v) if k == "as_of" else v) for k, v in jr.summary.items()}
    text = json.dumps(summary, indent=1, default=str)
    spark.createDataFrame([(text,)], "summary string").coalesce(1).write.mode("overwrite").text(
        f"{out}/summary"
    )
    return summary


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``spark-submit``: parse, run, print the summary."""
    print(json.dumps(run(parse_args(argv)), indent=1, default=str))


if __name__ == "__main__":  # pragma: no cover - run by spark-submit
    main()
