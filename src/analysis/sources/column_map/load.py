"""The entry points: a file or a DataFrame through a column map into a :class:`LoadResult`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.errors import did_you_mean
from analysis.schema import (
    DataError,
)
from analysis.sources.column_map.files import (
    read_csv,
    read_parquet,
    readable_kind,
    suffix_kind,
)
from analysis.sources.column_map.map import ColumnMap
from analysis.sources.column_map.result import LoadResult
from analysis.sources.column_map.validate import validate_table


def read_events(path: str | Path, mapping: Any = None) -> LoadResult:
    """Read a CSV or Parquet export into the canonical table.

    Read a CSV (``.csv``, ``.csv.gz``) or Parquet (``.parquet``, ``.pq``) export into the
    canonical table.

    CSV is read as text (every column a string, "" = missing) and each column is parsed
    explicitly; Parquet columns may already be typed. See :func:`validate_events`.

    Parameters
    ----------
    path : str or Path
    mapping : None, dict, str/Path of a YAML file, or ColumnMap
        The column map (see the module docstring). ``None``: canonical names, defaults.

    Returns
    -------
    LoadResult

    Raises
    ------
    DataError
        For problems with the file as a whole (all of them together).
    """
    cmap = ColumnMap.coerce(mapping)
    path = Path(path)
    file = str(path)
    if not path.exists():
        folder = path.parent if str(path.parent) else Path(".")
        hint = ""
        if folder.is_dir():
            names = sorted(p.name for p in folder.iterdir() if suffix_kind(p))
            hint = did_you_mean(path.name, names, n=3)
            if not hint and names:
                hint = f"; data files there: {', '.join(names[:8])}"
        else:
            hint = f"; the folder {str(folder)!r} does not exist either"
        raise DataError("file not found", file=file, fix=f"check the path{hint}")
    if path.is_dir():
        raise DataError(
            "expected a file, got a folder",
            file=file,
            fix="pass the path of one CSV or Parquet file",
        )
    kind = readable_kind(path)
    if kind == "csv":
        df, rows, blank = read_csv(path, cmap, ragged_ok=True)
        read_notes, ragged = df.attrs.pop("read_notes", []), df.attrs.pop("ragged", {})
        return validate_table(
            df,
            source=file,
            cmap=cmap,
            rows=rows,
            blank_rows=blank,
            read_notes=read_notes,
            ragged=ragged,
        )
    df = read_parquet(path)
    return validate_table(df, source=file, cmap=cmap, rows=np.arange(1, len(df) + 1, dtype="int64"))


def load_events(path: str | Path, mapping: Any = None) -> pd.DataFrame:
    """Return the canonical, validated events of a file.

    The canonical, validated events of a file; ``events.attrs["load_report"]`` holds the
    summary (counts and notes; see :class:`LoadResult`). Quarantined rows are reported in the
    summary; use :func:`read_events` to get them as a table.

    Raises
    ------
    DataError
        For problems with the file as a whole.
    """
    res = read_events(path, mapping)
    ev = res.events
    ev.attrs["load_report"] = dict(res.summary)
    return ev


def validate_events(
    df: pd.DataFrame,
    *,
    source: str = "<DataFrame>",
    mapping: Any = None,
    first_row: int = 1,
    rows: Any = None,
) -> LoadResult:
    """Map, parse, check and derive the canonical table from a raw DataFrame.

    Parameters
    ----------
    df : DataFrame
        Source rows: strings (as read from CSV) or typed columns (as from Parquet).
    source : str
        Named in messages; its stem makes generated event ids (``"<stem>:<row>"``).
    mapping : None, dict, YAML path or ColumnMap
    first_row : int
        Row number of the first row in messages and the quarantine (1 = record numbers).
    rows : sequence of int, optional
        The row number of every row instead (one per row; numbers may repeat), for adapters
        whose rows derive from source lines, e.g. two touchpoints made from one CSV line.

    Returns
    -------
    LoadResult
        ``events`` hold the rows that pass every rule of
        :func:`analysis.schema.events_schema`; the others are in ``quarantine`` with reasons.

    Notes
    -----
    Required: ``timestamp``, ``channel``, ``touchpoint`` and at least one identifier column.
    Derived when absent: ``event_id`` (``"<stem>:<row>"``), ``online`` (channel not in
    OFFLINE_CHANNELS), ``campaign`` (missing), ``stage`` (stage map by touchpoint), ``conversion``
    (touchpoint in conversion_touchpoints), ``revenue``/``sentiment`` (missing), ``segment``
    ("all"). Empty cells of event_id/online/stage/conversion/segment are derived the same way.
    Lookups of channels, touchpoints and stages in the maps are case-insensitive.
    """
    cmap = ColumnMap.coerce(mapping)
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"expected a pandas DataFrame, got {type(df).__name__}", file=source)
    if len(df) == 0:
        raise DataError("no data rows", file=source, fix="pass a DataFrame with at least one row")
    if rows is None:
        rows = np.arange(first_row, first_row + len(df), dtype="int64")
    else:
        rows = np.asarray(rows, dtype="int64")
        if rows.shape != (len(df),):
            raise ValueError(
                f"rows: expected {len(df)} row numbers (one per row), got shape {rows.shape}"
            )
    df = df.reset_index(drop=True)
    df.columns = [str(c) for c in df.columns]
    return validate_table(df, source=source, cmap=cmap, rows=rows)
