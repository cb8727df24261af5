"""Journeys per person bucket (step 4 of :mod:`analysis.journeys.streaming`) and their sums.

Every bucket (a folder of Parquet files, each person's events in one bucket) goes through the
in-memory pipeline (:func:`analysis.build_journeys`), a few at a time in threads
(:func:`per_bucket`); its stage durations are written to the work folder, its stage
transitions and channel paths come back as Arrow tables and are added up by
:class:`TableSum`: the parts are held and summed by their keys in one polars ``group_by``
once they hold :data:`SUM_ROWS` rows, and at the end (not a pandas ``concat`` and
``groupby`` of the growing total per bucket, which at 100M rows cost about half a second a
bucket, on the cores the buckets need).
"""

from __future__ import annotations

import concurrent.futures as cf
import gc
import time
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

#: Journey counts a bucket contributes (summed over buckets).
SUMMED = ("events_used", "persons", "journeys", "converted", "dropoff", "open")
#: Rows of parts held by a :class:`TableSum` before they are summed.
SUM_ROWS = 2_000_000
#: The bucket columns :func:`bucket_tables` reads besides the ``by`` ones: those
#: :func:`analysis.build_journeys` reads for the stage transitions, channel paths and stage
#: durations (``build.CORE``, the time, and the sentiment that marks feedback). The others
#: (identifiers, touchpoint, online, campaign, attributes not in ``by``) change none of them.
READ = (
    "event_id",
    "person_id",
    "timestamp",
    "channel",
    "stage",
    "conversion",
    "revenue",
    "sentiment",
)


class TableSum:
    """The sum of tables by their key columns: parts held, summed in polars now and then.

    Parameters
    ----------
    keys : list of str
        Key columns (missing values a key of their own, as pandas' ``dropna=False``).
    values : list of str
        Columns summed.
    limit : int, default :data:`SUM_ROWS`
        Rows of parts held before they are summed into one.
    """

    def __init__(self, keys: list[str], values: list[str], limit: int = SUM_ROWS) -> None:
        self.keys, self.values, self.limit = list(keys), list(values), limit
        self.parts: list[pl.DataFrame] = []
        self.rows = 0

    def add(self, part: pa.Table | pd.DataFrame) -> None:
        """Add a part (Arrow or pandas, with the key and value columns)."""
        if isinstance(part, pd.DataFrame):
            part = pa.Table.from_pandas(part, preserve_index=False)
        df = pl.from_arrow(part)
        assert isinstance(df, pl.DataFrame)
        self.parts.append(df.select([*self.keys, *self.values]))
        self.rows += df.height
        if self.rows >= self.limit and len(self.parts) > 1:
            self._sum()

    def _sum(self) -> None:
        both = pl.concat(self.parts, how="vertical_relaxed")  # a key all missing in a part
        self.parts = [both.group_by(self.keys).agg(pl.col(v).sum() for v in self.values)]
        self.rows = self.parts[0].height
        self.limit = max(self.limit, 2 * self.rows)  # many keys: not summed again every part

    def frame(self) -> pd.DataFrame:
        """Return the sums as pandas (one row per key, in no particular order)."""
        if not self.parts:
            return pd.DataFrame(columns=[*self.keys, *self.values])
        self._sum()
        return self.parts[0].to_pandas()


def bucket_tables(
    folder: Path,
    durations: Path,
    as_of: pd.Timestamp,
    inactivity_days: float,
    lookback_days: float,
    by: list[str],
) -> dict[str, Any]:
    """Run :func:`analysis.build_journeys` on one person bucket; return its small tables.

    Reads the columns :data:`READ` and ``by``. Writes the bucket's stage durations to
    ``durations``; returns its stage transitions and channel paths (by ``by``, as Arrow
    tables), its journey counts, rows and seconds.
    """
    from analysis.journeys import build_journeys

    t0 = time.perf_counter()
    first = next(iter(sorted(folder.glob("*.parquet"))), None)
    have = pq.read_schema(first).names if first is not None else None
    cols = None if have is None else [c for c in have if c in READ or c in by]
    ev = pq.read_table(folder, columns=cols).to_pandas()
    jr = build_journeys(
        ev, inactivity_days=inactivity_days, lookback_days=lookback_days, as_of=as_of
    )
    du = jr.stage_durations(by=by)
    du_t = pa.Table.from_pandas(du, preserve_index=False)
    # dictionaries for the text only (on the numbers they cost half the write, for nothing)
    text = [
        f.name
        for f in du_t.schema
        if pa.types.is_large_string(f.type) or pa.types.is_string(f.type)
    ]
    pq.write_table(du_t, durations, compression="lz4", write_statistics=False, use_dictionary=text)
    return {
        "transitions": pa.Table.from_pandas(jr.stage_transitions(by=by), preserve_index=False),
        "paths": _path_counts(jr, by),
        "counts": {k: int(jr.summary[k]) for k in (*SUMMED, "journeys_without_stage")},
        "rows": len(ev),
        "seconds": time.perf_counter() - t0,
    }


def _path_counts(jr: Any, by: list[str]) -> pa.Table:
    """Return a bucket's channel path counts by ``by``: unsorted where the fast path has them.

    The sums are sorted once at the end; sorting every bucket's table (pandas, about a quarter
    of a bucket's time) would be thrown away.
    """
    from analysis.journeys import fast, fast_tables

    if isinstance(jr, fast.FastJourneys) and jr.fast_by(by) is not None:
        return fast_tables.path_counts(jr, by)
    return pa.Table.from_pandas(jr.channel_paths(by=by), preserve_index=False)


def per_bucket(
    work: Path,
    n_buckets: int,
    rows_per_bucket: dict[int, int],
    as_of: pd.Timestamp,
    inactivity_days: float,
    lookback_days: float,
    by: list[str],
    workers: int,
    say: Any,
) -> dict[str, Any]:
    """Run :func:`bucket_tables` on every bucket (in ``workers`` threads); add up the tables.

    Returns the summed ``transitions`` and ``paths`` (pandas, rows in no particular order)
    and the journey ``counts``. Threads, not processes: the fast path's kernels release the
    GIL, and Arrow, polars and numpy do their heavy work without it, while a spawned worker
    first imports the stack and loads the kernels (about 3 s each) and pickles its tables
    back (8 buckets of 2.4M rows, 240 files each, 2 workers, under the lock: processes
    21.1 s, threads 9.6 s).
    """
    todo = [k for k in range(n_buckets) if rows_per_bucket.get(k)]
    args = [
        (
            work / "buckets" / f"_bucket={k}",
            work / "durations" / f"bucket-{k:06d}.parquet",
            as_of,
            inactivity_days,
            lookback_days,
            by,
        )
        for k in todo
    ]
    trans = TableSum([*by, "from_stage", "to_stage"], ["n"])
    paths = TableSum([*by, "path"], ["conversions", "nulls", "value"])
    counts = dict.fromkeys((*SUMMED, "journeys_without_stage"), 0)
    t_start = time.perf_counter()

    def add(k: int, part: dict[str, Any]) -> None:
        trans.add(part["transitions"])
        paths.add(part["paths"])
        for key in counts:
            counts[key] += part["counts"][key]
        say(
            "bucket %d/%d: %s rows in %.1f s (%.0f s so far)",
            k + 1,
            n_buckets,
            f"{part['rows']:,}",
            part["seconds"],
            time.perf_counter() - t_start,
        )

    n_workers = min(workers, len(todo))
    if n_workers > 1:  # threads: no process to start, no tables to pickle (see the docstring)
        with cf.ThreadPoolExecutor(n_workers) as ex:
            futures = {ex.submit(bucket_tables, *a): k for k, a in zip(todo, args, strict=True)}
            for fut in cf.as_completed(futures):
                add(futures[fut], fut.result())
    else:
        for k, a in zip(todo, args, strict=True):
            add(k, bucket_tables(*a))
            gc.collect()
    return {"transitions": trans.frame(), "paths": paths.frame(), "counts": counts}
