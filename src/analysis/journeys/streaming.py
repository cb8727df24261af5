"""Journeys past memory: a streaming pipeline from partitioned Parquet to sufficient statistics.

:func:`build_journeys_streaming` never holds all events in memory:

1. **validate** (:mod:`analysis.journeys.stream_validate`): on typed Parquet, one vectorised
   pass marks the rows that are certainly clean, and only the others go through
   :func:`analysis.sources.validate_events` (the column map and the schema's rules), so the
   quarantine and its reasons are the in-memory ones; the clean rows are read from the source
   files in the later steps, not copied. Other input goes batch by batch (Parquet row groups)
   through ``validate_events`` in worker processes, kept rows written to a work folder.
   Either way ``rows_read == rows_kept + rows_quarantined`` over the whole source.
2. **stitch** on integer identifier codes, same rules and guards as
   :func:`analysis.stitch_identities`. On the fast path's files,
   :func:`analysis.identity.stream_files.stitch_files`: one polars read of the identifier
   columns a file, the distinct combinations and values found by 64-bit hashes (collisions
   checked exactly), each column's values sorted in memory and numbered, the guards in numpy,
   the components by a compiled union-find. Otherwise (or on a hash collision)
   :func:`analysis.identity.streaming.stitch_table`: DuckDB (with ``memory_limit`` and a
   spill folder) finds the combinations, the same steps follow on their codes.
3. **partition**: every row's person is known from stitching; each file's bucket columns are
   read again and split by person bucket (``person_id % buckets``,
   :mod:`analysis.journeys.stream_partition`; only the columns step 4 reads: the identifiers,
   used up, and the columns the tables do not need are left out),
   the parts held until a few million rows and written as one file per bucket, so every
   person's events are in one bucket. On the engine path, DuckDB joins every row to
   its person and writes ``COPY ... PARTITION_BY``.
4. **journeys per bucket**: each bucket goes through the in-memory pipeline
   (:func:`analysis.build_journeys`, with the ``as_of`` of the whole data, a few buckets at
   a time in threads; :mod:`analysis.journeys.stream_buckets`) and its tables are added up:
   stage transitions and channel paths as counts, stage durations as rows (written to the
   work folder), journey counts in the summary.

Rules that look at several rows at once: on the fast path the plausible timestamp window is
the whole data's (as in memory), duplicate ``event_id`` values and exact duplicate rows are
checked within a file; on the fallback all three are a batch's. Everything after step 1 sees
the whole data: on data where no duplicate crosses a file (batch), the results equal the
in-memory pipeline's (``tests/journeys/test_streaming.py``).
"""

from __future__ import annotations

import gc
import glob
import logging
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from analysis import config
from analysis.identity.stream_files import RowSource, stitch_files
from analysis.identity.streaming import stitch_table
from analysis.journeys.stream_buckets import READ, per_bucket
from analysis.journeys.stream_partition import bucket_schema, partition_files
from analysis.journeys.stream_validate import validate_batches, validate_fast
from analysis.schema import IDENTIFIER_COLUMNS, DataError

log = logging.getLogger(__name__)

#: A journey's key columns in the stage durations.
_KEYS = ["person_id", "journey_index"]


# -------------------------------------------------------------------------------- the result
@dataclass
class StreamingJourneys:
    """The sufficient statistics of journeys built by :func:`build_journeys_streaming`.

    Its table methods take the arguments of :class:`analysis.journeys.Journeys`' methods and
    return the same columns, dtypes and row order. ``by`` may be any subset of the columns
    collected (``collect_by``, default ``["segment"]``).

    Attributes
    ----------
    summary : dict
        rows_read, rows_kept, rows_quarantined, reasons (rows per quarantine reason),
        validation ("fast" or "batches": the path of :mod:`~analysis.journeys.stream_validate`
        that ran), events, events_without_person, events_used, persons, journeys, converted,
        dropoff, open, journeys_without_stage, buckets, as_of, inactivity_days, lookback_days,
        stitching.
    timings : dict
        Seconds per step: validate, stitch, partition, journeys (all buckets), total.
    work_dir : Path
        Where the quarantine (``quarantine/``) and the stage durations (``durations/``) were
        written, and the validated rows and person buckets with ``keep_intermediate=True``
        (all removed with :meth:`cleanup`).
    """

    summary: dict[str, Any]
    timings: dict[str, float]
    work_dir: Path
    collect_by: list[str]
    transitions: pd.DataFrame = field(repr=False)
    paths: pd.DataFrame = field(repr=False)

    def _by(self, by: str | list[str] | None) -> list[str]:
        by = [] if by is None else [by] if isinstance(by, str) else list(by)
        bad = [b for b in by if b not in self.collect_by]
        if bad:
            raise DataError(
                f"cannot group by {bad}: the streaming run collected only {self.collect_by}",
                column=bad,
                fix=f"run build_journeys_streaming(..., by={[*self.collect_by, *bad]})",
            )
        return by

    @staticmethod
    def _no_option(name: str, value: Any) -> None:
        if value:
            raise NotImplementedError(
                f"{name}= is not available in the streaming mode (only the defaults are summed "
                "per bucket); use analysis.build_journeys on the data or a sample of it"
            )

    def stage_transitions(
        self, by: str | list[str] | None = "segment", *, mature_days: float | None = None
    ) -> pd.DataFrame:
        """Stage-run transition counts: ``[*by], from_stage, to_stage, n`` (summed over buckets).

        As :meth:`analysis.journeys.Journeys.stage_transitions`; ``mature_days`` is not
        supported.
        """
        self._no_option("mature_days", mature_days is not None)
        by = self._by(by)
        keys = [*by, "from_stage", "to_stage"]
        df = self.transitions.groupby(keys, sort=False, dropna=False)["n"].sum().reset_index()
        df = df.sort_values(keys).reset_index(drop=True)
        return _normalise(df)

    def channel_paths(
        self,
        by: str | list[str] | None = None,
        *,
        include_open: bool = False,
        exposures_only: bool = False,
    ) -> pd.DataFrame:
        """Channel path counts: ``[*by], path, conversions, nulls, value`` (summed over buckets).

        As :meth:`analysis.journeys.Journeys.channel_paths` with its defaults (closed journeys,
        every touchpoint within ``lookback_days``).
        """
        self._no_option("include_open", include_open)
        self._no_option("exposures_only", exposures_only)
        by = self._by(by)
        df = (
            self.paths.groupby([*by, "path"], sort=False, dropna=False)[
                ["conversions", "nulls", "value"]
            ]
            .sum()
            .reset_index()
        )
        df = df.sort_values(
            [*by, "conversions", "nulls", "path"],
            ascending=[*[True] * len(by), False, False, True],
        )
        return _normalise(df.reset_index(drop=True))

    def stage_durations(
        self, by: str | list[str] | None = "segment", *, mature_days: float | None = None
    ) -> pd.DataFrame:
        """Time in each stage visit: ``[*by], person_id, journey_index, stage, exit, duration_days, censored``.

        As :meth:`analysis.journeys.Journeys.stage_durations`: one row per stage run, read back
        from the work folder (this table has a row per stage visit; at scale, read
        ``work_dir / "durations"`` with DuckDB instead).
        """
        self._no_option("mature_days", mature_days is not None)
        by = self._by(by)
        files = sorted((self.work_dir / "durations").glob("*.parquet"))
        cols = [*by, *_KEYS, "stage", "exit", "duration_days", "censored"]
        if not files:
            return pd.DataFrame({c: [] for c in cols})
        df = pa.concat_tables([pq.read_table(f, columns=cols) for f in files]).to_pandas()
        # each journey lies in one bucket, its runs in order: a stable sort keeps that order
        df = df.sort_values([*by, *_KEYS], kind="stable").reset_index(drop=True)
        return _normalise(df[cols])

    def cleanup(self) -> None:
        """Remove the work folder (validated rows, buckets, quarantine, durations)."""
        shutil.rmtree(self.work_dir, ignore_errors=True)


def _normalise(df: pd.DataFrame) -> pd.DataFrame:
    """Give the in-memory tables' dtypes: int64 counts, float64 values, bool flags, str text."""
    for c in df.columns:
        s = df[c]
        if c in ("n", "conversions", "nulls", "journey_index", "person_id"):
            df[c] = s.astype("int64")
        elif c in ("value", "duration_days"):
            df[c] = s.astype("float64")
        elif c == "censored":
            df[c] = s.astype(bool)
        elif s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
            df[c] = s.astype("str")
    return df


# -------------------------------------------------------------------------- the entry point
def build_journeys_streaming(
    source: str | Path | list[str | Path],
    *,
    mapping: Any = None,
    inactivity_days: float = config.INACTIVITY_DAYS,
    lookback_days: float = config.LOOKBACK_DAYS,
    identifiers: list[str] | None = None,
    by: str | list[str] = "segment",
    partitions: int | None = None,
    bucket_rows: int = 3_000_000,
    batch_rows: int = 1_000_000,
    memory_limit: str = "8GB",
    workers: int | None = None,
    work_dir: str | Path | None = None,
    progress: bool = True,
    stitch_options: dict[str, Any] | None = None,
    keep_intermediate: bool = False,
    fast: bool = True,
) -> StreamingJourneys:
    """Build journeys from Parquet files that need not fit in memory; return their statistics.

    Parameters
    ----------
    source : path, glob or list of them
        Parquet files: a file, a folder (every ``*.parquet`` below it, e.g. partitioned by date
        or by an identifier hash: ``month=2024-01/part-0.parquet``), or a glob pattern. Hive
        partition folders are not read as columns.
    mapping : None, dict, YAML path or ColumnMap
        The column map (see :mod:`analysis.sources.column_map`), applied to every batch.
    inactivity_days, lookback_days : float, default 30, 30
        As in :func:`analysis.build_journeys`.
    identifiers : list of str, optional
        Identifier columns to stitch on. Default: those the column map validates (``load_events``'
        list), present in the data.
    by : str or list of str, default "segment"
        Attribute columns to collect the tables by; the result's methods accept any subset.
    partitions : int, optional
        Person buckets. Default: ``ceil(rows_kept / bucket_rows)``.
    bucket_rows : int, default 3,000,000
        Events per bucket aimed at (the in-memory pipeline needs about 0.5 GB per million).
    batch_rows : int, default 1,000,000
        Rows validated at once on the per-batch fallback (Parquet row groups are grouped up to
        this many); the fast path reads one file at a time.
    memory_limit : str, default "8GB"
        DuckDB's memory limit for stitching and partitioning on the engine path (the fallback:
        validation per batch, or a hash collision); it spills to ``work_dir`` above it. The
        polars path (the default on typed Parquet) does not honour it: it holds the distinct
        combinations and identifier values, and a few files' rows at a time.
    workers : int, optional
        Threads that build the buckets' journeys (each holds one bucket in memory) and, on
        the fallback, processes that validate batches. Default: the CPU count, at most 4, for
        a million rows or more; else 1.
    work_dir : path, optional
        Folder for the intermediate Parquet files. Default: a new folder under
        ``config.CACHE_DIR / "streaming"``. It is kept (see :meth:`StreamingJourneys.cleanup`).
    progress : bool, default True
        Log one line per bucket (rows, seconds) at INFO level, and one per step.
    stitch_options : dict, optional
        Options of :func:`analysis.identity.stitch` (``max_links``, ``max_person_ids``, …).
    keep_intermediate : bool, default False
        Keep the validated rows (``valid/``: all kept rows on the fallback, the kept suspect
        rows on the fast path) and the person buckets (``buckets/``, the events with their
        ``person_id``) in ``work_dir``; by default they are removed at the end. On the polars
        path the buckets (``_bucket=<k>/part-<n>.parquet``, in the sources' row order by
        file name) hold only the columns the journeys read
        (:data:`analysis.journeys.stream_buckets.READ` and ``by``), not the rows without a
        person (counted only); on the engine path (``COPY ... PARTITION_BY``) they hold every
        column, those rows in ``_bucket=-1``.
    fast : bool, default True
        Validate on the fast path where it applies (:mod:`analysis.journeys.stream_validate`);
        False: every batch through ``validate_events`` (the fallback).

    Returns
    -------
    StreamingJourneys

    Notes
    -----
    With ``workers > 1`` the fallback's batches run in worker processes started with ``spawn``:
    a script that calls this needs the usual ``if __name__ == "__main__":`` guard (notebooks
    need nothing).

    Long because it runs the four steps in order, timing and logging each, with their shared
    counts; each step is a function of its own.

    Raises
    ------
    DataError
        No Parquet file at ``source``, a file-level problem of a batch (as ``read_events``
        raises it), or no rows kept.
    """
    t_all = time.perf_counter()
    files = _source_files(source)
    work = Path(work_dir) if work_dir else _new_work_dir()
    for sub in ("valid", "suspects", "quarantine", "buckets", "durations", "spill"):
        shutil.rmtree(work / sub, ignore_errors=True)
        (work / sub).mkdir(parents=True)
    say = log.info if progress else log.debug
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    if workers is None:  # processes pay off from about a million rows (each imports the stack)
        total = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        workers = min(os.cpu_count() or 1, 4) if total >= 1_000_000 else 1
    n_workers = workers
    val = validate_fast(files, work, mapping, identifiers=identifiers) if fast else None
    if val is None:
        val = validate_batches(files, work, mapping, batch_rows, n_workers)
    timings["validate"] = time.perf_counter() - t0
    say(
        "validated %s rows from %d files: %s kept, %s quarantined (%.1f s)",
        f"{val['rows_read']:,}",
        len(files),
        f"{val['rows_kept']:,}",
        f"{val['rows_quarantined']:,}",
        timings["validate"],
    )
    if not val["rows_kept"]:
        raise DataError("no rows left after validation", file=str(source), fix="see the quarantine")
    cols = [c for c in (identifiers or val["identifiers"] or IDENTIFIER_COLUMNS)]
    cols = [c for c in cols if c in val["columns"]]
    if not cols:
        raise DataError("no identifier column to stitch on", column=identifiers, file=str(source))
    collect_by = [by] if isinstance(by, str) else list(by)

    t0 = time.perf_counter()
    n_buckets = partitions or max(1, math.ceil(val["rows_kept"] / bucket_rows))
    read = {*READ, *collect_by}  # the buckets' columns that step 4 reads
    done = _files_path(files, work, val, cols, read, n_buckets, stitch_options, timings, t0)
    if done is not None:
        rows_per_bucket, stitching = done
    else:
        rows_per_bucket, stitching = _engine_path(
            work, memory_limit, val, cols, n_buckets, stitch_options, timings, t0
        )
    written = sum(rows_per_bucket.values())  # bucket -1: rows without a person, counted
    if written != val["rows_kept"]:
        raise RuntimeError(
            f"{written:,} rows were written to person buckets, but validation kept "
            f"{val['rows_kept']:,}: a source file changed during the run, or a bug"
        )
    say("stitched into %s persons (%.1f s)", f"{stitching['persons']:,}", timings["stitch"])
    say("wrote %d person buckets (%.1f s)", n_buckets, timings["partition"])

    t0 = time.perf_counter()
    acc = per_bucket(
        work, n_buckets, rows_per_bucket, val["as_of"], inactivity_days, lookback_days,
        collect_by, n_workers, say,
    )  # fmt: skip
    timings["journeys"] = time.perf_counter() - t0
    if not keep_intermediate:  # two copies of the events; the durations and quarantine stay
        for sub in ("valid", "suspects", "buckets", "spill"):
            shutil.rmtree(work / sub, ignore_errors=True)
    timings["total"] = time.perf_counter() - t_all
    timings = {k: round(v, 2) for k, v in timings.items()}
    without = rows_per_bucket.get(-1, 0)
    summary = {
        "rows_read": val["rows_read"],
        "rows_kept": val["rows_kept"],
        "rows_quarantined": val["rows_quarantined"],
        "reasons": val["reasons"],
        "validation": "fast" if val["fast"] else "batches",
        "events": val["rows_kept"],
        "events_without_person": int(without),
        **acc["counts"],
        "buckets": n_buckets,
        "as_of": val["as_of"],
        "inactivity_days": float(inactivity_days),
        "lookback_days": float(lookback_days),
        "stitching": stitching,
    }
    return StreamingJourneys(
        summary=summary,
        timings=timings,
        work_dir=work,
        collect_by=collect_by,
        transitions=acc["transitions"],
        paths=acc["paths"],
    )


# ------------------------------------------------------------------------------ the steps
def _source_files(source: str | Path | list[str | Path]) -> list[Path]:
    """Return the Parquet files of ``source`` (a file, a folder, a glob, or a list of these), sorted."""
    items = source if isinstance(source, list | tuple) else [source]
    files: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.suffix in (".parquet", ".pq"))
        elif p.is_file():
            found = [p]
        else:
            found = sorted(Path(f) for f in glob.glob(str(item), recursive=True))
        files += [f for f in found if f.is_file() and not f.name.startswith(("_", "."))]
    if not files:
        raise DataError(
            "no Parquet file found",
            file=str(source),
            fix="pass a Parquet file, a folder of them (partitioned by date or identifier hash) "
            "or a glob such as 'events/**/*.parquet'",
        )
    return files


def _new_work_dir() -> Path:
    """Make a fresh folder under ``config.CACHE_DIR / "streaming"``."""
    base = config.CACHE_DIR / "streaming"
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="run-", dir=base))


def _duckdb(work: Path, memory_limit: str) -> Any:
    """Open an ibis DuckDB connection that spills to ``work / "spill"`` above ``memory_limit``."""
    import ibis

    return ibis.duckdb.connect(
        temp_directory=str(work / "spill"),
        memory_limit=memory_limit,
        preserve_insertion_order=False,
    )


def _files_path(
    files: list[Path],
    work: Path,
    val: dict[str, Any],
    cols: list[str],
    read: set[str],
    n_buckets: int,
    stitch_options: dict[str, Any] | None,
    timings: dict[str, float],
    t0: float,
) -> tuple[dict[int, int], dict[str, Any]] | None:
    """Run steps 2 and 3 in polars on the fast path's files; return rows per bucket, stitching.

    The buckets hold the columns of ``read`` (step 4's) the files have, and ``person_id``.

    None where they do not apply (validation per batch, a bucket column of unknown type, a
    64-bit hash collision): then the engine stitches and partitions.
    """
    if not val["fast"]:
        return None
    # identifiers: used up by stitching; columns step 4 does not read: never read
    keep = [c for c in val["columns"] if c not in cols and c in read]
    schema = bucket_schema(files[0], keep, val["types"])
    if schema is None:
        return None
    # an identifier named but absent from the files (validate_events adds it, all missing to
    # the kept suspects) has no value to stitch on: stitch on those the files hold
    have = pq.ParquetFile(files[0]).schema_arrow.names
    ids = [c for c in cols if c in have]
    if not ids:
        return None
    sources = [RowSource(f, d) for f, d in zip(files, val["drops"], strict=True)]
    sources += [RowSource(p) for p in sorted((work / "valid").glob("*.parquet"))]
    fs = stitch_files(sources, ids, scans=_id_scans(val, ids), **(stitch_options or {}))
    if fs is None:
        return None
    timings["stitch"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    rows_per_bucket = partition_files(sources, fs, work / "buckets", n_buckets, schema)
    timings["partition"] = time.perf_counter() - t1
    return rows_per_bucket, fs.summary


def _id_scans(val: dict[str, Any], cols: list[str]) -> list[Any] | None:
    """Take the validation's scans of the identifiers out of ``val`` if they are of ``cols``."""
    scans = val.pop("id_scans", None)
    return scans if val.get("scanned_ids") == cols else None


def _engine_path(
    work: Path,
    memory_limit: str,
    val: dict[str, Any],
    cols: list[str],
    n_buckets: int,
    stitch_options: dict[str, Any] | None,
    timings: dict[str, float],
    t0: float,
) -> tuple[dict[int, int], dict[str, Any]]:
    """Run steps 2 and 3 on DuckDB (spilling); return rows per bucket and the stitching."""
    con = _duckdb(work, memory_limit)
    t = con.sql(val["kept_sql"])
    st = stitch_table(con, t, cols, **(stitch_options or {}))
    timings["stitch"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    rows_per_bucket = _partition(con, st, work / "buckets", n_buckets, val["columns"])
    stitching = st.summary
    del t, st  # the engine's cached tables go with their expressions, then the engine
    gc.collect()
    con.disconnect()
    del con
    timings["partition"] = time.perf_counter() - t1
    return rows_per_bucket, stitching


def _partition(con: Any, st: Any, out: Path, n_buckets: int, columns: list[str]) -> dict[int, int]:
    """Write every row with its ``person_id``, partitioned by person bucket; rows per bucket.

    Rows without a person go to bucket -1.
    """
    rk, cp = st.row_key, st.combo_person
    j = rk.left_join(cp, rk._combo == cp._combo)
    keep = [c for c in columns if c != "person_id"]
    expr = j.select(
        *[j[c] for c in keep],
        person_id=cp.person_id,
        _bucket=(cp.person_id % n_buckets).fill_null(-1),
    )
    sql = con.compile(expr)
    con.raw_sql(
        f"COPY ({sql}) TO '{out}' (FORMAT parquet, PARTITION_BY (_bucket), OVERWRITE_OR_IGNORE)"
    )
    counts = con.raw_sql(
        f"SELECT _bucket, count(*) FROM read_parquet('{out}/*/*.parquet', "
        "hive_partitioning=true) GROUP BY 1"
    ).fetchall()
    return {int(b): int(n) for b, n in counts}
