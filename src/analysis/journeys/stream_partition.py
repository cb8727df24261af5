"""Person buckets file by file (step 3 of :mod:`analysis.journeys.streaming`), without an engine.

After :func:`analysis.identity.stream_files.stitch_files`, every row's person is known
(:meth:`~analysis.identity.stream_files.FileStitch.source_persons`). Each source file's bucket
columns are read once more (a few files at a time, in threads) and its rows split by person
bucket (``person_id % buckets``); the parts are held in memory, in the sources' order, until
:data:`FLUSH_ROWS` rows are held, then written as one Parquet file per bucket
(``_bucket=<k>/part-<n>.parquet``, ``n`` the flush's number) while the next files are split:
no join of all rows, no spill, and a few dozen files a bucket rather than one per source
(at 100M rows, 252 sources, one file per source and bucket meant 8,568 small files written
and read back). Rows without a person are counted (bucket -1), not written.

The buckets hold the validated columns the caller names (:func:`bucket_schema`'s; the
streaming pipeline names those the journeys read, not the identifiers, used up by
stitching) in their order, then ``person_id``, with the source files' types (read back they
give the pandas dtypes the engine's ``COPY ... PARTITION_BY`` files gave); the kept suspect
rows (written by ``validate_events``) are cast to those types.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

#: Polars types of the DuckDB types a column absent from the files is given (``_duck_types``).
_OF_DUCK = {"VARCHAR": pl.String, "DOUBLE": pl.Float64, "BOOLEAN": pl.Boolean}
#: Rows split into buckets before they are written (at most about 0.1 GB a million rows of
#: the synthetic data's bucket columns: 91 bytes a row with all twelve non-identifier ones);
#: two such batches at most are held, one filling, one being written.
FLUSH_ROWS = 4_000_000


def bucket_schema(
    first: Path, columns: list[str], types: dict[str, str]
) -> dict[str, pl.DataType] | None:
    """Return the polars type of every bucket column but ``person_id``; None if one is unknown.

    A column of the files keeps the files' type; one absent from them takes its DuckDB type's
    (``types``, as the engine's ``CAST(NULL AS ...)``).
    """
    have = pl.read_parquet_schema(first)
    out: dict[str, Any] = {}
    for c in columns:
        if c == "person_id":
            continue
        if c in have:
            out[c] = have[c]
        elif types.get(c) in _OF_DUCK:
            out[c] = _OF_DUCK[types[c]]
        else:
            return None
    return out


def partition_files(
    sources: list[Any],
    fs: Any,
    out: Path,
    n_buckets: int,
    schema: dict[str, pl.DataType],
    threads: int = 2,
    flush_rows: int = FLUSH_ROWS,
) -> dict[int, int]:
    """Write every row of ``sources`` with its ``person_id`` into ``out / "_bucket=<k>"``.

    Parameters
    ----------
    sources : list of analysis.identity.stream_files.RowSource
        The rows, in the order :func:`~analysis.identity.stream_files.stitch_files` read them.
    fs : analysis.identity.stream_files.FileStitch
        Its result: every row's person (:meth:`~.FileStitch.source_persons`).
    out : Path
        The buckets' folder.
    n_buckets : int
        Buckets; a person's bucket is ``person_id % n_buckets``.
    schema : dict
        :func:`bucket_schema`: the columns read from the sources (and their types).
    threads : int, default 2
        Files split at a time (the writes run in the same threads).
    flush_rows : int, default :data:`FLUSH_ROWS`
        Rows held before they are written; at most two such batches are held at once.

    Returns
    -------
    dict
        Rows per bucket; -1: rows without a person (not written).
    """
    for k in range(n_buckets):
        (out / f"_bucket={k}").mkdir(parents=True, exist_ok=True)

    def split(i: int) -> tuple[np.ndarray, dict[int, pl.DataFrame]]:
        src = sources[i]
        have = pl.read_parquet_schema(src.path)
        d = src.read([c for c in schema if c in have])
        person = fs.source_persons(i, src)
        return split_frame(d, person, n_buckets, schema)

    total = np.zeros(n_buckets + 1, np.int64)
    held: list[list[pl.DataFrame]] = [[] for _ in range(n_buckets)]
    n_held, n_flushed = 0, 0
    writing: list[cf.Future[None]] = []
    with cf.ThreadPoolExecutor(max(1, threads)) as ex:

        def flush() -> None:  # the held parts go to one file per bucket, written in the pool
            nonlocal held, n_held, n_flushed
            for w in writing:  # the previous batch is written: at most two batches held
                w.result()
            writing.clear()
            for k, parts in enumerate(held):
                if parts:
                    path = out / f"_bucket={k}" / f"part-{n_flushed:06d}.parquet"
                    writing.append(ex.submit(_write, parts, path))
            held, n_held = [[] for _ in range(n_buckets)], 0
            n_flushed += 1

        def take(job: cf.Future[tuple[np.ndarray, dict[int, pl.DataFrame]]]) -> None:
            nonlocal total, n_held
            counts, parts = job.result()
            total += counts
            for k, part in parts.items():
                held[k].append(part)
                n_held += part.height
            if n_held >= flush_rows:
                flush()

        # the sources are split in the pool, a few ahead, and taken in order: a bucket's
        # files (by name) hold its rows in the order of the sources
        ahead: deque[cf.Future[tuple[np.ndarray, dict[int, pl.DataFrame]]]] = deque()
        for i in range(len(sources)):
            ahead.append(ex.submit(split, i))
            if len(ahead) > max(1, threads):
                take(ahead.popleft())
        while ahead:
            take(ahead.popleft())
        if n_held:
            flush()
        for w in writing:
            w.result()
    return {k - 1: int(n) for k, n in enumerate(total) if n}


def split_frame(
    d: pl.DataFrame, person: np.ndarray, n_buckets: int, schema: dict[str, pl.DataType]
) -> tuple[np.ndarray, dict[int, pl.DataFrame]]:
    """Split rows ``d`` with their persons into buckets; return rows per bucket and the parts.

    ``counts[0]`` counts the rows without a person (0, not in any part), ``counts[k + 1]``
    bucket ``k``'s. Each part has the columns of ``schema`` (cast to its types; a column
    ``d`` lacks is all missing) and ``person_id``, in the rows' order.
    """
    if len(person) != d.height:
        raise RuntimeError(f"{len(person):,} persons for {d.height:,} rows: a bug")
    d = d.select(
        [
            pl.col(c).cast(t) if c in d.columns else pl.lit(None, dtype=t).alias(c)
            for c, t in schema.items()
        ]
    )
    bucket = np.where(person > 0, person % n_buckets, -1)
    counts = np.bincount(bucket + 1, minlength=n_buckets + 1)
    d = d.with_columns(pl.Series("person_id", person), pl.Series("_b", bucket))
    d = d.filter(pl.col("_b") >= 0)
    parts = d.partition_by("_b", as_dict=True, include_key=False)
    return counts, {int(k): part for (k,), part in parts.items()}


def _write(parts: list[pl.DataFrame], path: Path) -> None:
    """Write the parts of one bucket, in order, as one Parquet file."""
    pl.concat(parts, rechunk=False).write_parquet(path, compression="lz4", statistics=False)
