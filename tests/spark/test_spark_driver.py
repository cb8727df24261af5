"""The events never pass through the Spark driver (issue 22, item 3).

The job is ``analysis.spark.submit`` (the spark-submit script of ``docs/spark.md``).

The pipeline runs in a fresh process where every transfer between the Python driver and
Spark larger than a fifth of the events fails (a guard on createDataFrame, collect, toPandas,
toArrow), and the JVM driver may receive at most 1 MiB of results (``spark.driver.maxResultSize``;
the events are over 3 MiB). The Spark path passes and gives the DuckDB path's tables; a collect
of the events in the same session is refused by both; the old path (``engine="spark"`` fed
from a pandas frame by createDataFrame) fails.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pyarrow as pa
import pytest

import analysis

pytestmark = pytest.mark.spark

CAP = "1m"  # spark.driver.maxResultSize
# Every transfer between the Python driver and Spark is counted, both ways: a DataFrame made
# from local data (createDataFrame, how the old path fed Spark) or a collect (collect, toPandas,
# toArrow) of more rows than a fifth of the events stops the job. The JVM's result cap catches
# collects that do not go through these methods.
GUARD = """
import sys
import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql.classic.dataframe import DataFrame

LIMIT = int(sys.argv[4])


def _rows(x):
    n = getattr(x, "num_rows", None)
    return n if n is not None else (len(x) if hasattr(x, "__len__") else 0)


def _check(n, what):
    if n > LIMIT:
        raise RuntimeError(f"DRIVER GUARD: {n} rows {what} (limit {LIMIT})")


_create = SparkSession.createDataFrame


def createDataFrame(self, data, *args, **kwargs):
    _check(_rows(data), "sent from the driver by createDataFrame")
    return _create(self, data, *args, **kwargs)


SparkSession.createDataFrame = createDataFrame
for _name in ("collect", "toPandas", "toArrow"):
    def _wrapped(self, *args, _orig=getattr(DataFrame, _name), _name=_name, **kwargs):
        out = _orig(self, *args, **kwargs)
        _check(_rows(out), f"collected to the driver by {_name}")
        return out

    setattr(DataFrame, _name, _wrapped)
"""
NEW_PATH = """
from analysis.engine import spark_session
from analysis.spark.submit import parse_args, run
path, out, as_of = sys.argv[1:4]
spark = spark_session()
run(parse_args(["--data", path, "--out", out, "--as-of", as_of]), spark)
for attempt in ("guard", "cap"):
    try:
        if attempt == "guard":  # few bytes, many rows: the guard, not the cap, refuses it
            spark.read.parquet(path).select("event_id").limit(LIMIT + 1).toPandas()
        else:  # the whole events in the JVM driver, past the Python guard: the cap refuses it
            spark.read.parquet(path)._jdf.collectAsList()
        print(f"EVENTS COLLECTED ({attempt})")
    except Exception as exc:
        text = str(exc)
        ok = "DRIVER GUARD" in text if attempt == "guard" else "maxResultSize" in text
        print(f"EVENTS REFUSED ({attempt})" if ok else f"OTHER {exc!r}"[:500])
"""
OLD_PATH = """
import analysis
path, out, as_of = sys.argv[1:4]
ev = analysis.stitch_identities(pd.read_parquet(path), engine="spark")
jr = analysis.build_journeys(ev, as_of=as_of, engine="spark")
jr.stage_transitions(by="segment").to_parquet(out + "/transitions.parquet")
print("OLD PATH FINISHED")
"""


def _run(script: str, path, out, as_of, limit: int, timeout: int = 600):
    """Run ``script`` after the guard in a fresh process with the driver's results capped."""
    env = {
        **os.environ,
        "CJL_SPARK_DRIVER_MEMORY": "2g",
        "CJL_SPARK_PARTITIONS": "2",
        # broadcast joins collect their small side on the driver (up to 10 MiB by default, under
        # a cluster's 1 GiB result cap); with the cap at 1 MiB here they are turned off
        "CJL_SPARK_CONF": f"spark.driver.maxResultSize={CAP};spark.ui.showConsoleProgress=false;"
        "spark.sql.autoBroadcastJoinThreshold=-1;spark.sql.adaptive.autoBroadcastJoinThreshold=-1",
    }
    return subprocess.run(
        [sys.executable, "-c", GUARD + script, str(path), str(out), str(as_of), str(limit)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    from analysis import synth

    events, truth = synth.generate(n_persons=2000, seed=11)
    # the cap is below the events' size, so collecting them must fail
    assert pa.Table.from_pandas(events).nbytes > 3 * 2**20
    path = tmp_path_factory.mktemp("driver") / "events.parquet"
    events.to_parquet(path, index=False)
    return events, truth, path


def test_spark_path_runs_with_the_driver_capped_below_the_data(written, spark_available, tmp_path):
    events, truth, path = written
    res = _run(NEW_PATH, path, tmp_path, truth.end, limit=len(events) // 5)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "EVENTS REFUSED (guard)" in res.stdout, res.stdout[-2000:]
    assert "EVENTS REFUSED (cap)" in res.stdout, res.stdout[-2000:]
    a = analysis.build_journeys(analysis.stitch_identities(events), as_of=truth.end)
    for name, got in [
        ("stage_transitions", a.stage_transitions(by="segment")),
        ("channel_paths", a.channel_paths(by=None)),
    ]:
        back = pd.read_parquet(tmp_path / name)  # one file (coalesce(1)): rows in order
        pd.testing.assert_frame_equal(got, back, check_dtype=False)
    assert len(pd.read_parquet(tmp_path / "journeys")) == a.summary["journeys"]
    assert len(pd.read_parquet(tmp_path / "stage_durations")) == len(a.stage_durations())


def test_old_driver_fed_path_fails_under_the_same_guard(written, spark_available, tmp_path):
    events, truth, path = written
    res = _run(OLD_PATH, path, tmp_path, truth.end, limit=len(events) // 5)
    assert res.returncode != 0 and "OLD PATH FINISHED" not in res.stdout
    assert "DRIVER GUARD" in res.stderr and "createDataFrame" in res.stderr, res.stderr[-3000:]
