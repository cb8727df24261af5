"""Person buckets file by file (step 3 of :mod:`analysis.journeys.streaming`), without an engine.

After :func:`analysis.identity.stream_files.stitch_files`, every row's person is a lookup of its
combination key. Each source file is read once more (a few at a time, in threads), its rows'
keys are hashed again and get their person, and its rows are written split by person bucket
(``person_id % buckets``) as one Parquet file per (bucket, source) under ``_bucket=<k>/``:
no join of all rows, no spill. Rows without a person are counted (bucket -1), not written.

The buckets hold the validated columns but the identifiers (used up by stitching) in their
order, then ``person_id``, with the source files' types (read back they give the pandas
dtypes the engine's ``COPY ... PARTITION_BY`` files gave); the kept suspect rows (written by
``validate_events``) are cast to those types.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

#: Polars types of the DuckDB types a column absent from the files is given (``_duck_types``).
_OF_DUCK = {"VARCHAR": pl.String, "DOUBLE": pl.Float64, "BOOLEAN": pl.Boolean}


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
) -> dict[int, int]:
    """Write every row of ``sources`` with its ``person_id`` into ``out / "_bucket=<k>"``.

    Parameters
    ----------
    sources : list of analysis.identity.stream_files.RowSource
        The rows, in the order :func:`~analysis.identity.stream_files.stitch_files` read them.
    fs : analysis.identity.stream_files.FileStitch
        Its result: every row's person.
    out : Path
        The buckets' folder.
    n_buckets : int
        Buckets; a person's bucket is ``person_id % n_buckets``.
    schema : dict
        :func:`bucket_schema`.
    threads : int, default 2
        Files at a time.

    Returns
    -------
    dict
        Rows per bucket; -1: rows without a person (not written).
    """
    for k in range(n_buckets):
        (out / f"_bucket={k}").mkdir(parents=True, exist_ok=True)

    def one(i: int) -> np.ndarray:
        d = sources[i].read()
        person = fs.persons(d)
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
        for (k,), part in d.partition_by("_b", as_dict=True, include_key=False).items():
            part.write_parquet(
                out / f"_bucket={k}" / f"s{i:06d}.parquet", compression="lz4", statistics=False
            )
        return counts

    total = np.zeros(n_buckets + 1, np.int64)
    with ThreadPoolExecutor(max(1, threads)) as ex:
        for counts in ex.map(one, range(len(sources))):
            total += counts
    return {k - 1: int(n) for k, n in enumerate(total) if n}
