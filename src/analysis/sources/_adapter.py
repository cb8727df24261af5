"""Shared pieces of the export adapters (GA4, clickstream).

Shared pieces of the export adapters (GA4, clickstream): file kinds, NDJSON and Parquet
reading, extra touchpoint stages, generated ids, column picking.

Rows an adapter rejects itself are :class:`analysis.sources._results.Rejected` (re-exported
here with :func:`validate_with_rejects` and :func:`quarantine_rows`, which merge them).

Private: the public entry points are the ``read_<format>`` functions of the adapter modules.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.errors import close_matches, missing_file_error
from analysis.schema import DataError, StageMap
from analysis.sources._results import Rejected, quarantine_rows, validate_with_rejects
from analysis.sources.column_map import ColumnMap

__all__ = [
    "CSV_SUFFIXES",
    "EXTRA_STAGES",
    "NDJSON_SUFFIXES",
    "PARQUET_SUFFIXES",
    "Rejected",
    "dataset_file",
    "file_kind",
    "fill_from_session",
    "hex_ids",
    "occurrence",
    "pick_column",
    "quarantine_rows",
    "read_ndjson",
    "read_parquet_table",
    "validate_with_rejects",
    "with_stages",
]

#: Stages of web touchpoints that adapters produce beyond :data:`analysis.schema.DEFAULT_STAGE_MAP`
#: (added to a column map's stage map when it lacks them and has the stage).
EXTRA_STAGES: dict[str, str] = {
    "page_view": "Think",
    "product_view": "Think",
    "product_list_view": "Think",
    "search": "Think",
    "add_to_wishlist": "Think",
    "view_cart": "Do",
    "remove_from_cart": "Do",
    "lead": "Do",
    "sign_up": "Do",
    "refund": "Care",
}

NDJSON_SUFFIXES = (".json", ".jsonl", ".ndjson", ".json.gz", ".jsonl.gz", ".ndjson.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".csv.gz")


def dataset_file(path: str | Path, name: str, fix: str) -> Path:
    """Return ``path``, or ``path / name`` when ``path`` is a folder; a clear error if absent.

    For the readers of one public dataset's file (UCI, CDNOW): ``fix`` says what to pass.
    """
    p = Path(path)
    if p.is_dir():
        p = p / name
    if not p.is_file():
        raise DataError("file not found", file=str(p), fix=fix)
    return p


def file_kind(path: Path, allowed: tuple[str, ...], what: str) -> str:
    """Return the kind of an export file from its name.

    ``"ndjson"``, ``"parquet"`` or ``"csv"`` from the name; a DataError for a missing file or
    another type (``allowed`` lists the kinds the adapter reads).
    """
    file = str(path)
    if not path.is_file():
        raise missing_file_error(path, what=f"{what} file")
    name = path.name.lower()
    kinds = {"ndjson": NDJSON_SUFFIXES, "parquet": PARQUET_SUFFIXES, "csv": CSV_SUFFIXES}
    for kind in allowed:
        if name.endswith(kinds[kind]):
            if path.stat().st_size == 0:
                raise DataError(
                    "the file is empty (0 bytes)", file=file, fix="export the data again"
                )
            return kind
    names = ", ".join(s for k in allowed for s in kinds[k])
    raise DataError(
        f"unsupported file type {''.join(path.suffixes) or '(no extension)'!r} for {what}",
        file=file,
        fix=f"export as one of: {names}",
    )


def read_ndjson(path: Path, what: str) -> tuple[list[Any], np.ndarray, list[int]]:
    """Parse newline-delimited JSON (optionally gzip-compressed).

    Returns the parsed records, their line numbers (1-based) and the blank lines. A line that
    is not valid JSON raises a DataError naming it; a last line cut short says the file is
    truncated.
    """
    file = str(path)
    try:
        if path.name.lower().endswith(".gz"):
            with gzip.open(path, "rt", encoding="utf-8-sig") as fh:
                text = fh.read()
        else:
            text = path.read_text(encoding="utf-8-sig")
    except (
        OSError,
        EOFError,
    ) as exc:  # gzip: "Compressed file ended before the end-of-stream marker"
        raise DataError(
            f"the file could not be read ({exc}); it looks truncated or damaged",
            file=file,
            fix=f"export the {what} again and check that the download completed",
        ) from None
    except UnicodeDecodeError as exc:
        raise DataError(
            f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})",
            file=file,
            fix="NDJSON exports are UTF-8; export the data again",
        ) from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline after the last record
    records: list[Any] = []
    numbers: list[int] = []
    blank: list[int] = []
    decode = json.JSONDecoder().decode
    for i, line in enumerate(lines, start=1):  # parsing JSON is per line by nature
        if not line.strip():
            blank.append(i)
            continue
        try:
            records.append(decode(line))
        except json.JSONDecodeError as exc:
            last = i == len(lines)
            cut = last and not text.endswith("\n")
            problem = f"line {i} is not valid JSON: {exc.msg} (column {exc.colno})" + (
                "; it is the last line and has no line end: the file looks truncated" if cut else ""
            )
            fix = (
                f"the export was cut off: export the {what} again (or delete the incomplete last line)"
                if cut
                else "each line must be one complete JSON object (newline-delimited JSON); "
                "fix or remove this line, or export again"
            )
            raise DataError(problem, file=file, rows=[i], fix=fix) from None
        numbers.append(i)
    if not records:
        raise DataError(
            "the file has no records",
            file=file,
            fix=f"check the {what} export: it produced no rows",
        )
    not_obj = [n for n, r in zip(numbers, records, strict=True) if not isinstance(r, dict)]
    if not_obj:
        raise DataError(
            f"{len(not_obj)} line(s) hold JSON that is not an object (one record per line expected)",
            file=file,
            rows=not_obj,
            fix="each line must be one JSON object {...}; a JSON array file is not NDJSON",
        )
    return records, np.asarray(numbers, dtype="int64"), blank


def read_parquet_table(path: Path, what: str):
    """Return a pyarrow Table; a DataError naming the file when it is not (complete) Parquet."""
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path)
    except Exception as exc:  # ArrowInvalid, OSError, …
        raise DataError(
            f"the file could not be read as Parquet ({exc}); it is truncated, damaged or not Parquet",
            file=str(path),
            fix=f"export the {what} again (a Parquet file that was cut off during download cannot be "
            "read at all), or check that it is Parquet and not CSV/JSON renamed",
        ) from None


# ============================================================================================
# Stages, ids, columns
# ============================================================================================


def with_stages(cmap: ColumnMap, extra: dict[str, str]) -> ColumnMap:
    """Return a copy of the column map with extra touchpoint stages.

    ``cmap`` with ``extra`` touchpoint → stage entries added where its stage map lacks the
    touchpoint and has the stage (a user's own stage map always wins).
    """
    sm = cmap.stage_map
    have = {t.lower() for t in sm.touchpoints}
    add = {t: s for t, s in extra.items() if t.lower() not in have and s in sm.stages}
    if not add:
        return cmap
    new = StageMap(
        stages=sm.stages, touchpoints={**sm.touchpoints, **add}, transitions=sm.transitions
    )
    return dataclasses.replace(cmap, stage_map=new)


def hex_ids(hashes: np.ndarray, prefix: str) -> pd.Series:
    """``prefix`` + 16 hex digits of each uint64, vectorised."""
    h = np.asarray(hashes, dtype=np.uint64)
    shifts = np.arange(60, -1, -4, dtype=np.uint64)
    nibbles = ((h[:, None] >> shifts) & np.uint64(0xF)).astype(np.uint8)
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)[nibbles]
    text = np.ascontiguousarray(digits).view("S16").ravel().astype("U16")
    return (prefix + pd.Series(text, dtype="str")).astype("str")


def occurrence(df: pd.DataFrame, keys: list[str]) -> np.ndarray:
    """Return the occurrence number of each row among rows with the same keys.

    For each row, how many rows with the same ``keys`` *and different content* came before
    it (0-based). Rows equal in every column share the number, so exact duplicates get the
    same generated id and are found as duplicates by validation.
    """
    content = pd.util.hash_pandas_object(df.astype("str"), index=False).to_numpy()
    frame = df[keys].astype("str").assign(_content=content)
    first = ~frame.duplicated(keep="first").to_numpy()
    rank = np.zeros(len(df), dtype="int64")
    rank[first] = frame.loc[first].groupby(keys, sort=False, dropna=False).cumcount().to_numpy()
    firsts = frame.loc[first].assign(_rank=rank[first])
    return frame.merge(firsts, on=[*keys, "_content"], how="left")["_rank"].to_numpy(dtype="int64")


def pick_column(
    have: list[str],
    given: str | None,
    candidates: tuple[str, ...],
    what: str,
    argument: str,
    file: str,
    *,
    required: bool = True,
) -> str | None:
    """Return the source column for ``what``.

    The source column for ``what``: ``given`` (must exist) or the first of ``candidates``
    present (case-insensitive); a DataError with close matches when there is none.
    """
    lower = {c.lower(): c for c in have}
    if given is not None:
        if given in have:
            return given
        if given.lower() in lower:
            return lower[given.lower()]
        close = close_matches(given, have)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise DataError(
            f"{what}: the file has no column {given!r}{hint}",
            file=file,
            column=given,
            fix=f"pass {argument}=<column> naming one of: {', '.join(have[:30])}",
        )
    for c in candidates:
        if c.lower() in lower:
            return lower[c.lower()]
    if not required:
        return None
    raise DataError(
        f"{what}: no column found (looked for {', '.join(candidates)})",
        file=file,
        column=argument,
        fix=f"pass {argument}=<column> naming one of the file's columns: {', '.join(have[:30])}",
    )


def fill_from_session(
    values: pd.DataFrame, has: np.ndarray, session: pd.Series, ts: pd.Series
) -> tuple[pd.DataFrame, np.ndarray]:
    """Fill rows without values from the first row of their session that has them.

    Rows without values of their own (``~has``) take those of the first row of their session
    (by time, then file order) that has them. Returns the filled frame and which rows took
    them; rows without a session or whose session has none stay as they are.
    """
    n = len(values)
    out = values.copy()
    in_session = session.notna().to_numpy()
    order = pd.DataFrame({"sid": session.to_numpy(), "ts": ts.to_numpy(), "pos": np.arange(n)})
    firsts = (
        order[has & in_session]
        .sort_values(["sid", "ts", "pos"], kind="stable")
        .drop_duplicates("sid")
    )
    sess = values.iloc[firsts["pos"].to_numpy()].set_axis(firsts["sid"].to_numpy())
    take = ~has & in_session & session.isin(sess.index).to_numpy()
    if take.any():
        out.loc[take, list(values.columns)] = sess.reindex(session[take].to_numpy()).to_numpy()
    return out, take
