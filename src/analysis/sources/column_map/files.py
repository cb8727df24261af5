"""Reading files: CSV (plain, gzip, zip) as text columns, Parquet, file names and kinds."""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.schema import (
    DataError,
)
from analysis.sources.column_map.constants import CSV_SUFFIXES, PARQUET_SUFFIXES
from analysis.sources.column_map.map import ColumnMap
from analysis.sources.column_map.parse import count_noun

# ============================================================================================


def suffix_kind(path: Path) -> str | None:
    """Return "csv" or "parquet" from the file name, or None for another kind."""
    name = path.name.lower()
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    return None


def readable_kind(path: Path) -> str:
    """Return "csv" or "parquet" for a table file to read; a DataError for another type or 0 bytes."""
    kind = suffix_kind(path)
    if kind is None:
        raise DataError(
            f"unsupported file type {''.join(path.suffixes) or '(no extension)'!r}",
            file=str(path),
            fix="export the data as CSV (.csv, .csv.gz) or Parquet (.parquet, .pq)",
        )
    if path.stat().st_size == 0:
        raise DataError("the file is empty (0 bytes)", file=str(path), fix="export the data again")
    return kind


def source_stem(source: str) -> str:
    """Return the stem of a source name, for generated event ids ("row" for a DataFrame)."""
    name = Path(str(source)).name
    if not name or name.startswith("<"):
        return "row"
    for suf in (".csv.gz", ".csv", ".parquet", ".pq"):
        if name.lower().endswith(suf):
            return name[: -len(suf)]
    return Path(name).stem


def _sniff_compression(path: Path) -> tuple[str | None, str | None]:
    """("gzip" / "zip" / None, a note when the name does not say so), from the magic bytes."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    name = path.name.lower()
    if head[:2] == b"\x1f\x8b":
        note = (
            None
            if name.endswith(".gz")
            else (
                "the file is gzip-compressed although its name ends in .csv: it was read unpacked "
                "(name it .csv.gz to make that plain)"
            )
        )
        return "gzip", note
    if head == b"PK\x03\x04":
        note = (
            None
            if name.endswith(".zip")
            else (
                "the file is a zip archive although its name ends in .csv: its one CSV file was read"
            )
        )
        return "zip", note
    return None, None


def _open_text(path: Path, enc: str, compression: str | None) -> Any:
    if compression == "gzip":
        return gzip.open(path, "rt", encoding=enc, newline="")
    if compression == "zip":
        z = zipfile.ZipFile(path)
        names = [n for n in z.namelist() if not n.endswith("/")]
        return io.TextIOWrapper(z.open(names[0]), encoding=enc, newline="")
    return open(path, encoding=enc, newline="")


def _field_counts(
    path: Path, cmap: ColumnMap, enc: str, compression: str | None
) -> np.ndarray | None:
    """Return the fields per CSV record, or None when the csv module cannot read it.

    Fields per CSV record (header first; a blank line has 0), with the quoting pandas uses;
    None when the csv module cannot read the file (pandas' reading then stands alone).
    """
    try:
        csv.field_size_limit(2**31 - 1)
        with _open_text(path, enc, compression) as fh:
            return np.fromiter(
                (len(r) for r in csv.reader(fh, delimiter=cmap.delimiter)), dtype="int64"
            )
    except (csv.Error, UnicodeDecodeError, OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None


def _check_zip(path: Path, file: str) -> None:
    """Refuse a zip archive that is damaged, an Excel workbook, or holds several files."""
    try:
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if not n.endswith("/")]
    except zipfile.BadZipFile:
        raise DataError(
            "the file starts like a zip archive but is damaged (cut short?)",
            file=file,
            fix="download or export it again; unpack it and pass the CSV file inside",
        ) from None
    if "[Content_Types].xml" in names:
        raise DataError(
            "this is an Excel workbook (.xlsx), not a CSV file",
            file=file,
            fix="open it in Excel or LibreOffice and save the sheet as CSV (UTF-8)",
        )
    if len(names) != 1:
        raise DataError(
            f"this is a zip archive with {len(names)} files, not a CSV file",
            file=file,
            fix="unpack it and pass the CSV file inside",
        )


def _pandas_read(
    path: Path, cmap: ColumnMap, enc: str, compression: str | None, width: int | None, file: str
) -> pd.DataFrame:
    """Read every record as text with pandas; a DataError for an empty or unreadable file."""
    try:
        return pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            sep=cmap.delimiter,
            encoding=enc,
            skip_blank_lines=False,
            compression=compression,
            header=None,
            names=list(range(width)) if width else None,
            index_col=False,
        )
    except pd.errors.EmptyDataError:
        raise DataError(
            "the file is empty: no header and no data rows",
            file=file,
            fix="export the data again; the first line must be the header (column names)",
        ) from None
    except UnicodeDecodeError as exc:
        raise DataError(
            f"the file is not valid {cmap.encoding} text ({exc.reason} at byte {exc.start})",
            file=file,
            fix="set the file's encoding in the column map, e.g. read: {encoding: latin-1}",
        ) from None
    except pd.errors.ParserError as exc:
        m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if m:
            expected, line, saw = (int(g) for g in m.groups())
            raise DataError(
                f"row {line} has {saw} fields but the header has {expected}",
                file=file,
                rows=[line],
                fix=f"quote values that contain the delimiter {cmap.delimiter!r}, or set the right "
                'delimiter in the column map (read: {delimiter: ";"})',
            ) from None
        raise DataError(
            f"the file could not be read as CSV: {exc}",
            file=file,
            fix="check quoting and delimiter",
        ) from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"the file could not be read{' as ' + compression if compression else ''}: {exc}",
            file=file,
            fix="check that the file is a complete CSV export (unpack it if it is compressed)",
        ) from None


def _column_names(header: list[str], file: str) -> list[str]:
    """Return the header's names ("Unnamed: <i>" for an empty one); a duplicate is an error."""
    names = []
    seen: dict[str, int] = {}
    for i, h in enumerate(header):
        name = h if h != "" else f"Unnamed: {i}"
        if name in seen and h != "":
            first = seen[name]
            raise DataError(
                f"duplicate column name '{name}' in the header: columns {first + 1} and {i + 1}",
                file=file,
                column=name,
                fix=f"rename one of the two '{name}' columns in the file (or drop the copy), so each "
                "column name appears once",
            )
        seen.setdefault(name, i)
        names.append(name)
    return names


def _check_delimiter(df: pd.DataFrame, cmap: ColumnMap, file: str) -> None:
    """Refuse a header read as one column that holds another delimiter (the wrong delimiter)."""
    header = df.columns[0]
    counts_d = {d: header.count(d) for d in (";", "\t", "|", ",") if d != cmap.delimiter}
    best = max(counts_d, key=lambda d: counts_d[d])
    if counts_d[best] > 0:
        shown = {";": '";"', "\t": '"\\t"', "|": '"|"', ",": '","'}[best]
        name = {";": "semicolon", "\t": "tab", "|": "pipe", ",": "comma"}[best]
        raise DataError(
            f"the header was read as a single column ({header[:80]!r}): the file looks "
            f"{name}-delimited ({shown}), not {cmap.delimiter!r}-delimited",
            file=file,
            column=header[:80],
            fix=f"set the delimiter in the column map: read: {{delimiter: {shown}}}",
        )


def _ragged_rows(
    data_counts: np.ndarray,
    n_head: int,
    rows: np.ndarray,
    cmap: ColumnMap,
    file: str,
    *,
    ragged_ok: bool,
) -> dict[int, tuple[str, str]]:
    """Return the rows with another number of fields than the header.

    Return the rows with another number of fields than the header ({position: (category,
    reason)}); an error when most rows have (the delimiter or the quoting is wrong) or, without
    ``ragged_ok``, when any row has too many.
    """
    n = len(rows)
    ragged: dict[int, tuple[str, str]] = {}
    wrong = np.flatnonzero(data_counts != n_head)
    if len(wrong):
        too_many = not ragged_ok and bool((data_counts > n_head).any())
        # most rows: the delimiter or the quoting, not a few rows
        if too_many or 2 * len(wrong) >= n:
            if too_many:
                wrong = np.flatnonzero(data_counts > n_head)
            p = int(wrong[0])
            raise DataError(
                f"row {rows[p]} has {data_counts[p]} fields but the header has {n_head} "
                f"({count_noun(len(wrong), 'row')} of {n:,} with another number of fields)",
                file=file,
                rows=[int(r) for r in rows[wrong[:20]]],
                fix=f"quote values that contain the delimiter {cmap.delimiter!r}, or set the right "
                'delimiter in the column map (read: {delimiter: ";"})',
            )
        for p in wrong.tolist():
            c = int(data_counts[p])
            if c < n_head:
                ragged[int(p)] = (
                    "too few fields",
                    f"row {rows[p]} has {c} fields, the header has {n_head}: "
                    "the row was cut short or lost a delimiter",
                )
            else:
                ragged[int(p)] = (
                    "too many fields",
                    f"row {rows[p]} has {c} fields, the header has {n_head}: "
                    f"a value holds an unquoted {cmap.delimiter!r}? quote it",
                )
    return ragged


def read_csv(
    path: Path, cmap: ColumnMap, *, ragged_ok: bool = False
) -> tuple[pd.DataFrame, np.ndarray, list[int]]:
    """Return a CSV file as text columns, its row numbers (header = 1) and the blank lines skipped.

    File-level problems raise DataError: empty, not decodable, a header read as one column,
    a duplicate column name (both positions named), most rows with another field count than
    the header. Gzip or zip content is read whatever the name says (with a note). The reading
    notes and the rows with the wrong number of fields (too few / too many, fewer than half of
    the rows) are left in ``df.attrs["read_notes"]`` and ``df.attrs["ragged"]`` ({position:
    (category, reason)}) for :func:`read_events`; a trailing delimiter on every data row
    (one more, empty, field than the header) is dropped with a note. Without ``ragged_ok``
    (the adapters, which do not quarantine them) any row with too many fields is an error.
    """
    file = str(path)
    enc = cmap.encoding
    if codecs.lookup(enc).name == "utf-8":
        enc = "utf-8-sig"  # accept the byte-order mark spreadsheet programs write
    compression, note = _sniff_compression(path)
    notes = [note] if note else []
    if compression == "zip":
        _check_zip(path, file)
    counts = _field_counts(path, cmap, enc, compression)
    width = int(counts.max()) if counts is not None and len(counts) else None
    df = _pandas_read(path, cmap, enc, compression, width, file)
    if len(df) == 0:
        raise DataError(
            "the file is empty: no header and no data rows",
            file=file,
            fix="export the data again; the first line must be the header (column names)",
        )
    if counts is not None and len(counts) != len(df):
        counts = None  # the two parsers disagree on the records: trust pandas alone
    header = [str(v) for v in df.iloc[0].tolist()]
    df = df.iloc[1:].reset_index(drop=True)
    n_head = int(counts[0]) if counts is not None else len(header)
    header = header[:n_head]
    data_counts = counts[1:] if counts is not None else np.full(len(df), n_head, dtype="int64")

    # a trailing delimiter on every data row: one more field than the header, always empty
    filled = data_counts > 0
    if (
        width is not None
        and filled.any()
        and (data_counts[filled] == n_head + 1).all()
        and (df.loc[filled, n_head] == "").all()
    ):
        notes.append(
            f"every data row ends with an extra empty field (a trailing {cmap.delimiter!r} after the last "
            f"column): the header has {n_head} fields, the rows {n_head + 1}; the empty last field was dropped"
        )
        data_counts = np.where(filled, n_head, data_counts)

    names = _column_names(header, file)
    df = df.iloc[:, :n_head]
    df.columns = names
    if len(df.columns) == 1:  # a header read as one column: the wrong delimiter?
        _check_delimiter(df, cmap, file)
    rows = np.arange(2, len(df) + 2, dtype="int64")
    blank: list[int] = []
    if len(df) and len(df.columns):
        is_blank = (df == "").all(axis=1).to_numpy() | (data_counts == 0)
        if is_blank.any():
            blank = rows[is_blank].tolist()
            df = df.loc[~is_blank].reset_index(drop=True)
            rows = rows[~is_blank]
            data_counts = data_counts[~is_blank]
    if len(df) == 0:
        raise DataError(
            f"the file has a header ({', '.join(df.columns[:8])}) but no data rows",
            file=file,
            fix="check the export: it produced only the header line",
        )
    ragged = _ragged_rows(data_counts, n_head, rows, cmap, file, ragged_ok=ragged_ok)
    df.attrs["read_notes"] = notes
    df.attrs["ragged"] = ragged
    return df, rows, blank


def read_parquet(path: Path) -> pd.DataFrame:
    """Return a Parquet file as a DataFrame; a DataError when it cannot be read or is empty."""
    file = str(path)
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types
        raise DataError(
            f"the file could not be read as Parquet: {exc}",
            file=file,
            fix="check that the file is Parquet (not CSV renamed), or export it again",
        ) from None
    if not isinstance(df.index, pd.RangeIndex):
        df = df.reset_index()  # an index stored in the file is data: keep it as columns
    df.columns = [str(c) for c in df.columns]
    if len(df) == 0:
        raise DataError(
            f"the file has columns ({', '.join(df.columns[:8])}) but no data rows",
            file=file,
            fix="check the export: it produced no rows",
        )
    return df.reset_index(drop=True)
