"""Path-level tables (ChannelAttribution's layout) → the path table the attribution models take.

When only aggregated journeys are available, a table has one row per distinct channel path
with its counts, as in the ChannelAttribution package's example ``Data``
(https://search.r-project.org/CRAN/refmans/ChannelAttribution/html/Data.html: "path",
"total_conversions", "total_conversion_value", "total_null"; channels separated by ``>``).

==========================================  ============================================
file column (argument; default)             path table column
==========================================  ============================================
``path`` (``path``)                         ``path``: channels joined by ``" > "``
``conversions`` (``total_conversions``)     ``conversions``: journeys that converted
``nulls`` (``total_null``)                  ``nulls``: journeys that did not (optional)
``value`` (``total_conversion_value``)      ``value``: conversion value (optional)
==========================================  ============================================

When a default name is absent, the project's own name (``conversions``, ``nulls``,
``value``) is accepted as well. The result goes straight into
:func:`analysis.models.attribution.markov_attribution`, ``heuristic_attribution`` and
``shapley_attribution``. A table is aggregated data, not touchpoints: there is no quarantine;
a bad row is an error naming the file, the column and the row.

>>> from analysis.models.attribution import markov_attribution
>>> markov_attribution(read_paths("Data.csv"))          # doctest: +SKIP
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.schema import PATH_SEP, DataError, combine_errors
from analysis.sources._adapter import file_kind
from analysis.sources.column_map import close_matches

__all__ = ["read_paths"]

_OWN = {"conversions": "conversions", "nulls": "nulls", "value": "value"}


def _read_table(p: Path) -> tuple[pd.DataFrame, int]:
    """Return the table and the row number of its first data row (CSV: 2, below the header)."""
    file = str(p)
    kind = file_kind(p, ("csv", "parquet"), "path table")
    if kind == "parquet":
        try:
            df = pd.read_parquet(p)
        except Exception as exc:
            raise DataError(
                f"the file could not be read as Parquet ({exc}); it is truncated, damaged or not Parquet",
                file=file,
                fix="export the path table again",
            ) from None
        return df.reset_index(drop=True), 1
    try:
        df = pd.read_csv(p, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise DataError("the file is empty", file=file, fix="export the path table again") from None
    except pd.errors.ParserError as exc:
        m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        raise DataError(
            f"the file could not be read as CSV ({exc})",
            file=file,
            rows=[int(m.group(2))] if m else None,
            fix="quote paths that contain commas, or export the table again",
        ) from None
    return df, 2


def read_paths(
    file: str | Path,
    /,
    *,
    path: str = "path",
    conversions: str = "total_conversions",
    nulls: str | None = "total_null",
    value: str | None = "total_conversion_value",
    sep: str = ">",
) -> pd.DataFrame:
    """Read a path-level table (CSV or Parquet) in ChannelAttribution's layout.

    Parameters
    ----------
    file : str or Path
        The table: CSV (``.csv``, ``.csv.gz``) or Parquet (``.parquet``, ``.pq``).
    path : str
        Column with the paths. Default ``"path"``.
    conversions : str
        Column with converting journeys per path. Default ``"total_conversions"`` (then
        ``"conversions"`` if absent).
    nulls : str or None
        Column with non-converting journeys. Default ``"total_null"`` (then ``"nulls"``);
        when neither exists the result has no ``nulls`` column. ``None``: not read.
    value : str or None
        Column with the conversion value. Default ``"total_conversion_value"`` (then
        ``"value"``); optional like ``nulls``.
    sep : str
        Separator between channels in the file. Default ``">"`` (spaces around it are ignored).

    Returns
    -------
    DataFrame
        ``path`` (channels joined by ``" > "``), ``conversions`` and, when present, ``nulls``
        and ``value``; one row per file row, in file order.

    Raises
    ------
    DataError
        Missing columns, non-numeric or negative counts, empty paths or channels: the file,
        the column and the rows (CSV: lines, header = 1).

    Examples
    --------
    >>> paths = read_paths("Data.csv")                    # doctest: +SKIP
    >>> paths.columns.tolist()                            # doctest: +SKIP
    ['path', 'conversions', 'nulls', 'value']
    """
    p = Path(file)
    file = str(p)
    df, first_row = _read_rows(p)
    cols = _resolve_columns(
        list(df.columns), file, path=path, conversions=conversions, nulls=nulls, value=value
    )
    out = pd.DataFrame(index=pd.RangeIndex(len(df)))
    path_col = cols["path"]
    assert path_col is not None  # required: resolved or an error above
    out["path"], errors = _paths(df[path_col], path_col, sep, first_row)
    for k in ("conversions", "nulls", "value"):
        c = cols[k]
        if c is None:
            continue
        out[k], bad = _numbers(df[c], c, first_row)
        errors += bad
    if errors:
        raise combine_errors(
            [
                DataError(e.problem, file=file, column=e.column, rows=e.rows, fix=e.fix)
                for e in errors
            ],
            file=file,
        )
    if out["conversions"].sum() > 0:  # the models' own checks: reserved names, other separators
        _check_for_models(out, cols, file, first_row)
    out.attrs["source"] = file
    return out


def _read_rows(p: Path) -> tuple[pd.DataFrame, int]:
    """Return the table with stripped column names (an error when it has no rows) and its first row."""
    df, first_row = _read_table(p)
    df.columns = [str(c).strip() for c in df.columns]
    if len(df) == 0:
        raise DataError(
            f"the file has a header ({', '.join(list(df.columns)[:8])}) but no rows",
            file=str(p),
            fix="export the path table again",
        )
    return df, first_row


def _resolve_columns(
    have: list[str],
    file: str,
    *,
    path: str,
    conversions: str,
    nulls: str | None,
    value: str | None,
) -> dict[str, str | None]:
    """Return the file column of each path table column (``None``: not read); an error names the missing ones."""

    def resolve(arg: str | None, default: str, own: str | None, required: bool) -> str | None:
        if arg is None:
            return None
        if arg in have:
            return arg
        if arg == default and own and own in have:
            return own
        if not required and arg == default:
            return None
        return "\0" + arg  # marks a missing column

    cols = {
        "path": resolve(path, "path", None, True),
        "conversions": resolve(conversions, "total_conversions", "conversions", True),
        "nulls": resolve(nulls, "total_null", "nulls", False),
        "value": resolve(value, "total_conversion_value", "value", False),
    }
    missing = {k: v[1:] for k, v in cols.items() if v is not None and v.startswith("\0")}
    if missing:
        lines = []
        for k, v in missing.items():
            close = close_matches(v, have)
            lines.append(f"{k} from {v!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        args = {"path": "path", "conversions": "conversions", "nulls": "nulls", "value": "value"}
        raise DataError(
            "path table: missing column(s): " + "; ".join(lines),
            file=file,
            column=list(missing.values()),
            fix=f"the file has columns {', '.join(have[:20])}; name yours with "
            + ", ".join(f"{args[k]}=..." for k in missing),
        )
    return cols


def _rows_of(mask: np.ndarray, first_row: int) -> list[int]:
    """Return the file rows of the ``True`` entries of ``mask``."""
    return [int(i) + first_row for i in np.flatnonzero(mask)]


def _paths(
    column: pd.Series, name: str, sep: str, first_row: int
) -> tuple[pd.Series, list[DataError]]:
    """Return the paths joined by ``" > "`` and the problems of the path column (empty paths and channels)."""
    errors: list[DataError] = []
    raw_path = column.astype("str").str.strip()
    empty = (column.isna() | (raw_path == "") | (raw_path == "nan")).to_numpy()
    if empty.any():
        errors.append(
            DataError(
                f"{int(empty.sum())} empty path(s)",
                column=name,
                rows=_rows_of(empty, first_row),
                fix="every row needs a path of channels, e.g. 'email > paid_search'",
            )
        )
    s = re.escape(sep)
    blank_channel = (
        raw_path.str.contains(rf"^\s*{s}|{s}\s*$|{s}\s*{s}", regex=True).to_numpy(dtype=bool)
        & ~empty
    )
    if blank_channel.any():
        errors.append(
            DataError(
                f"{int(blank_channel.sum())} path(s) with an empty channel (two separators in a row, or one at "
                "the start or end)",
                column=name,
                rows=_rows_of(blank_channel, first_row),
                fix=f"every channel between {sep!r} separators needs a name",
            )
        )
    if sep.strip() != ">":  # a ">" inside a channel would split it in the models
        inner = raw_path.str.replace(sep, "", regex=False).str.contains(">", regex=False).to_numpy()
        if inner.any():
            errors.append(
                DataError(
                    f"{int(inner.sum())} path(s) have a channel containing '>', which the models use as separator",
                    column=name,
                    rows=_rows_of(inner, first_row),
                    fix="rename those channels",
                )
            )
    joined = raw_path.str.replace(rf"\s*{re.escape(sep)}\s*", PATH_SEP, regex=True).astype("str")
    return joined, errors


def _numbers(text: pd.Series, c: str, first_row: int) -> tuple[np.ndarray, list[DataError]]:
    """Return a count or value column as floats and its problems (not numbers, empty, negative)."""
    errors: list[DataError] = []
    num = pd.to_numeric(text, errors="coerce")
    blank = text.isna() | (text.astype("str").str.strip() == "")
    bad_num = (num.isna() & ~blank).to_numpy()
    if bad_num.any():
        shown = ", ".join(repr(v) for v in text[bad_num].head(3))
        errors.append(
            DataError(
                f"{int(bad_num.sum())} value(s) of {c!r} are not numbers (e.g. {shown})",
                column=c,
                rows=_rows_of(bad_num, first_row),
                fix="counts and values must be numbers >= 0",
            )
        )
    if blank.any():
        errors.append(
            DataError(
                f"{int(blank.sum())} empty value(s) of {c!r}",
                column=c,
                rows=_rows_of(blank.to_numpy(), first_row),
                fix="write 0 where a path has none",
            )
        )
    v = num.to_numpy(dtype="float64", na_value=np.nan)
    neg = (v < 0) | np.isinf(v)
    if neg.any():
        errors.append(
            DataError(
                f"{int(neg.sum())} negative or infinite value(s) of {c!r}",
                column=c,
                rows=_rows_of(neg, first_row),
                fix="counts and values must be finite numbers >= 0",
            )
        )
    return v, errors


def _check_for_models(
    out: pd.DataFrame, cols: dict[str, str | None], file: str, first_row: int
) -> None:
    """Run the models' own checks on the path table; their problems name the file's columns and rows."""
    from analysis.schema import check_paths

    try:
        check_paths(
            out,
            "path",
            "conversions",
            "value" if "value" in out else None,
            nulls="nulls" if "nulls" in out else None,
            sep=">",
        )
    except DataError as exc:
        raise combine_errors(
            [
                DataError(
                    e.problem,
                    file=file,
                    column=cols.get(str(e.column), e.column),
                    rows=[r - 1 + first_row for r in e.rows] if e.rows else None,
                    fix=e.fix,
                )
                for e in exc.problems
            ],
            file=file,
        ) from None
