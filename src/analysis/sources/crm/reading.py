"""Reading a CRM source (a file or a DataFrame) as text, and finding its columns by role."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.errors import did_you_mean
from analysis.schema import IDENTIFIER_COLUMNS, DataError
from analysis.sources.column_map import (
    ColumnMap,
    read_csv,
    read_parquet,
    readable_kind,
    suffix_kind,
)
from analysis.sources.crm.options import ReadOptions
from analysis.sources.crm.roles import resolve_columns

__all__ = ["Source", "csv_short_rows", "prepare", "read_source"]


@dataclass
class Source:
    """One source read as text.

    The frame, row numbers (CSV lines, else record numbers), blank lines skipped, its name in
    messages, and rows with too few fields (CSV).
    """

    df: pd.DataFrame
    rows: np.ndarray
    blank: list[int]
    name: str
    short: dict[int, int]  # position → number of fields, for CSV rows with too few fields


def csv_short_rows(path: Path, cmap: ColumnMap, n_fields: int) -> dict[int, int]:
    """Return line number → field count of CSV rows with fewer fields than the header.

    pandas fills missing trailing fields with "" (indistinguishable from empty cells), so the
    count comes from a second, pyarrow parse that reports rows with the wrong field count.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    short: dict[int, int] = {}

    def handler(row: Any) -> str:
        if row.text and row.actual_columns < n_fields and row.number is not None:
            short[int(row.number)] = int(row.actual_columns)
        return "skip"

    try:  # streamed in blocks, every column as text: memory stays bounded on big files
        with pa.input_stream(str(path), compression="detect") as stream:
            reader = pacsv.open_csv(
                stream,
                read_options=pacsv.ReadOptions(
                    encoding=cmap.encoding,
                    use_threads=False,
                    skip_rows=1,
                    autogenerate_column_names=True,
                ),
                parse_options=pacsv.ParseOptions(
                    delimiter=cmap.delimiter,
                    newlines_in_values=True,
                    ignore_empty_lines=False,
                    invalid_row_handler=handler,
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types={f"f{i}": pa.string() for i in range(n_fields)},
                    strings_can_be_null=False,
                ),
            )
            for _ in reader:  # the handler records the short rows
                pass
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, LookupError, OSError):
        return {}  # pandas read the file; a second parser's doubt is not a reason to fail
    return short


def read_source(source: Any, cmap: ColumnMap, what: str) -> Source:
    """Read a file path or a DataFrame as a :class:`Source`; file-level problems raise DataError."""
    if isinstance(source, pd.DataFrame):
        if len(source) == 0:
            raise DataError(
                f"the {what} table has no rows",
                file=f"<{what} DataFrame>",
                fix="pass a DataFrame with at least one row",
            )
        df = source.reset_index(drop=True)
        df.columns = [str(c) for c in df.columns]
        return Source(df, np.arange(1, len(df) + 1, dtype="int64"), [], f"<{what} DataFrame>", {})
    if not isinstance(source, (str, Path)):
        raise DataError(
            f"expected a file path or a DataFrame of {what}, got {type(source).__name__}"
        )
    path = Path(source)
    file = str(path)
    if not path.is_file():
        raise _missing_file(path, what)
    kind = readable_kind(path)
    if kind == "parquet":
        df = read_parquet(path)
        return Source(df, np.arange(1, len(df) + 1, dtype="int64"), [], file, {})
    return _read_csv_source(path, cmap)


def _missing_file(path: Path, what: str) -> DataError:
    """Return the error for a path that is no file: a folder, or not found (with close names)."""
    file = str(path)
    if path.is_dir():
        return DataError(
            "expected a file, got a folder", file=file, fix=f"pass the path of the {what} export"
        )
    folder = path.parent if str(path.parent) else Path(".")
    if folder.is_dir():
        names = sorted(p.name for p in folder.iterdir() if suffix_kind(p))
        hint = did_you_mean(path.name, names, n=3) or (
            f"; data files there: {', '.join(names[:8])}" if names else ""
        )
    else:
        hint = f"; the folder {str(folder)!r} does not exist either"
    return DataError("file not found", file=file, fix=f"check the path{hint}")


def _read_csv_source(path: Path, cmap: ColumnMap) -> Source:
    """Read a CSV file as a :class:`Source`, with its rows that have too few fields."""
    file = str(path)
    try:
        df, rows, blank = read_csv(path, cmap)
    except DataError as exc:
        m = re.search(r"EOF inside string starting at row (\d+)", str(exc))
        if not m:
            raise
        line = int(m.group(1)) + 1
        raise DataError(
            f"the file ends inside a quoted value that starts on row {line}: the file looks cut off "
            "(truncated) in the middle of that row",
            file=file,
            rows=[line],
            fix="export the file again (check that the download or copy finished), or close the quote",
        ) from None
    by_line = csv_short_rows(path, cmap, len(df.columns))
    pos = pd.Series(np.arange(len(rows)), index=rows)
    short = {int(pos[line]): n for line, n in by_line.items() if line in pos.index}
    return Source(df, rows, blank, file, short)


def prepare(
    source: Any,
    what: str,
    roles: dict[str, tuple[str, ...]],
    required: tuple[str, ...],
    options: ReadOptions,
) -> tuple[Source, dict[str, str], ColumnMap]:
    """Read the source, find the roles, build the ColumnMap (with phone_hash when used)."""
    cmap = options.column_map()
    src = read_source(source, cmap, what)
    found = resolve_columns(
        list(src.df.columns), roles, options.columns, required=required, file=src.name, what=what
    )
    if "phone" in found:
        cmap = options.column_map(identifiers=(*IDENTIFIER_COLUMNS, "phone_hash"))
    return src, found, cmap
