"""The path table: checking and exploding ``path, conversions, nulls, value``.

The path table (:meth:`analysis.Journeys.channel_paths`; channels joined by ``" > "``,
ChannelAttribution's layout) is the interface between journeys or path files and the path
models, so its checks live with the schema: readers check a path file without importing a model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from analysis.errors import DataError, combine_errors, example_rows
from analysis.schema.events import CONVERSION, DROPOFF, NULL, OPEN, START

#: State names ChannelAttribution (and our chains) reserve; a channel may not be called so.
_RESERVED_STATES = (START, CONVERSION, NULL, DROPOFF, OPEN)
_RESERVED_WORDS = ("start", "conversion", "null")  # case-insensitive
#: Separators people use instead of the one passed (checked when no path contains ``sep``).
_OTHER_SEPS = ("->", "→", ">", "|", ",", ";", "/")


def check_paths(
    paths: pd.DataFrame,
    path: str,
    conversions: str,
    value: str | None,
    *,
    nulls: str | None = None,
    sep: str = ">",
) -> pd.DataFrame:
    """Check a path table; every problem found is reported in one :class:`DataError`.

    The checks, in the order of the message: counts that are missing, negative or infinite;
    empty paths; empty channels; a separator other than ``sep``; reserved state names as
    channels; no conversions at all.

    Returns
    -------
    DataFrame
        The touches (:func:`explode_paths` of ``paths`` with a fresh 0-based index), so the
        caller need not split the paths again.
    """
    if not isinstance(paths, pd.DataFrame):
        raise TypeError(
            f"paths: expected a DataFrame (Journeys.channel_paths()), got {type(paths).__name__}"
        )
    need = [c for c in (path, conversions, value, nulls) if c is not None]
    missing = [c for c in need if c not in paths.columns]
    if missing:
        raise DataError(
            f"path table: missing column(s) {missing}",
            column=missing,
            fix="pass jr.channel_paths() or name the columns: heuristic_attribution(df, path=..., conversions=..., value=...)",
        )
    errors, conv_ok = _count_errors(paths, need[1:], conversions)
    text = paths[path].astype(str).str.strip()
    empty = (paths[path].isna() | (text == "")).to_numpy()
    if empty.any():
        errors.append(
            DataError(
                f"path table: {int(empty.sum())} empty path(s)",
                column=path,
                rows=example_rows(empty),
                fix="drop journeys without a channel touch, or give them a channel such as '(none)'",
            )
        )
    touches = explode_paths(paths.reset_index(drop=True), path, sep)
    errors += _empty_channel_errors(touches, empty, path, sep)
    errors += _separator_errors(text, empty, touches, path, sep)
    errors += _reserved_errors(touches, len(paths), path)
    if conv_ok and float(pd.to_numeric(paths[conversions]).sum()) == 0:
        errors.append(
            DataError(
                f"path table: no conversions ({conversions!r} sums to 0): nothing to attribute "
                "(removal effects and Shapley shares are undefined)",
                column=conversions,
                fix="pass paths that include converting journeys, or the right column: conversions=...",
            )
        )
    if errors:
        raise combine_errors(errors)
    return touches


def _count_errors(
    paths: pd.DataFrame, counts: list[str], conversions: str
) -> tuple[list[DataError], bool]:
    """Return the errors of the count columns (missing, negative or infinite values).

    The flag says whether ``conversions`` itself is clean (its sum can then be checked).
    """
    errors: list[DataError] = []
    conv_ok = True
    for c in counts:
        v = pd.to_numeric(paths[c], errors="coerce")
        bad = (v.isna() | (v < 0) | np.isinf(v)).to_numpy()
        if bad.any():
            conv_ok = conv_ok and c != conversions
            errors.append(
                DataError(
                    f"path table: {int(bad.sum())} value(s) of {c!r} are missing or negative (or infinite)",
                    column=c,
                    rows=example_rows(bad),
                    fix="conversions, nulls and values are finite numbers >= 0",
                )
            )
    return errors, conv_ok


def _empty_channel_errors(
    touches: pd.DataFrame, empty: np.ndarray, path: str, sep: str
) -> list[DataError]:
    """Return the error for paths with an empty channel (two separators in a row, or an end one)."""
    ch = touches["channel"]
    code = ch.cat.codes.to_numpy()
    names = list(ch.cat.categories)  # the distinct channels (sorted): per-row work only on a hit
    blank = code == names.index("") if "" in names else np.zeros(len(code), dtype=bool)
    in_path = np.zeros(len(empty), dtype=bool)
    in_path[touches["path_id"].to_numpy()[blank]] = True
    in_path &= ~empty
    if not in_path.any():
        return []
    return [
        DataError(
            f"path table: {int(in_path.sum())} path(s) with an empty channel (two separators in a row, "
            f"or one at the start or end)",
            column=path,
            rows=example_rows(in_path),
            fix=f"every channel between {sep!r} separators needs a name: 'a > b', not 'a >  > b' or 'a > b >'",
        )
    ]


def _separator_errors(
    text: pd.Series, empty: np.ndarray, touches: pd.DataFrame, path: str, sep: str
) -> list[DataError]:
    """Return the error for paths that look separated by another separator than ``sep``.

    Another separator is suspected when no path contains ``sep`` (outside the other one) and at
    least a fifth of the paths contain the other; ``"a->b"`` split on ``">"`` shows as channels
    ending in ``"-"``.
    """
    filled = text[~empty]
    if not len(filled):
        return []
    # the paths' bytes back to back: a separator absent there is in no path (no join needed)
    raw = _text_bytes(_path_text(filled))
    joined = None
    for other in _OTHER_SEPS:
        if other == sep or other.encode() not in raw:
            continue
        if joined is None:
            joined = "\n".join(filled.tolist())
        if other not in joined or sep in joined.replace(other, ""):
            continue
        has_other = filled.str.contains(other, regex=False)
        rest = filled.str.replace(other, "", regex=False) if sep in other else filled
        if has_other.mean() >= 0.2 and not rest.str.contains(sep, regex=False).any():
            rows = np.zeros(len(empty), dtype=bool)
            rows[np.flatnonzero(~empty)[has_other.to_numpy()]] = True
            return [
                DataError(
                    f"path table: paths look separated by {other!r}, not {sep!r} "
                    f"({int(has_other.sum())} of {len(filled)} paths contain {other!r})",
                    column=path,
                    rows=example_rows(rows),
                    fix=f"pass sep={other!r}",
                )
            ]
    # "a->b" split on ">" leaves channels ending in "-"
    ch = touches["channel"]
    ends = np.array([c.endswith("-") for c in ch.cat.categories], dtype=bool)
    if sep.strip() != ">" or not ends.any():
        return []
    dash = ends[ch.cat.codes.to_numpy()] & (touches["position"] < touches["length"] - 1).to_numpy()
    if not dash.any():
        return []
    rows = np.zeros(len(empty), dtype=bool)
    rows[touches["path_id"].to_numpy()[dash]] = True
    return [
        DataError(
            f"path table: {int(rows.sum())} path(s) look separated by '->', not {sep!r} "
            "(channels end in '-')",
            column=path,
            rows=example_rows(rows),
            fix="pass sep='->'",
        )
    ]


def _reserved_errors(touches: pd.DataFrame, n_paths: int, path: str) -> list[DataError]:
    """Return the error for channels named like a state of the chain (``(null)``, ``start`` …)."""
    ch = touches["channel"]
    reserved = [
        c
        for c in ch.cat.categories
        if c != "" and (c in _RESERVED_STATES or c.lower() in _RESERVED_WORDS)
    ]
    if not reserved:
        return []
    hit = np.zeros(n_paths, dtype=bool)
    hit[touches["path_id"].to_numpy()[ch.isin(reserved).to_numpy()]] = True
    return [
        DataError(
            f"path table: channel(s) {sorted(reserved)} use a reserved state name (the chain's "
            f"{', '.join(_RESERVED_STATES)}; start, conversion, null in any case)",
            column=path,
            rows=example_rows(hit),
            fix="rename the channel(s), e.g. 'null' -> 'null_channel'",
        )
    ]


def _path_text(col: pd.Series) -> Any:
    """Return the path column as one Arrow string array.

    Missing paths read ``"nan"``, other values as ``str``; no Python ``str`` per row when the
    column is already Arrow-backed.
    """
    import pyarrow as pa

    if isinstance(col.dtype, pd.StringDtype):
        arr = pa.array(col, from_pandas=True)
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        return arr.fill_null("nan") if arr.null_count else arr
    return pa.array(col.to_numpy(dtype=object, na_value="nan").astype(str))


def _text_bytes(arr: Any) -> bytes:
    """Return the UTF-8 bytes of all strings of an Arrow string array, back to back."""
    import pyarrow as pa

    if len(arr) == 0:
        return b""
    _, offsets, data = arr.buffers()
    width = 8 if pa.types.is_large_string(arr.type) else 4
    off = np.frombuffer(
        offsets,
        dtype=np.int64 if width == 8 else np.int32,
        count=len(arr) + 1,
        offset=arr.offset * width,
    )
    return b"" if data is None else data.to_pybytes()[int(off[0]) : int(off[-1])]


def explode_paths(paths: pd.DataFrame, path: str = "path", sep: str = ">") -> pd.DataFrame:
    """Return one row per touch of a path table.

    Columns ``path_id`` (the row of ``paths``), ``position`` (0-based), ``length`` (touches in
    the path) and ``channel`` (categorical, categories sorted). Separators may carry spaces
    (``"a > b"`` and ``"a>b"`` are the same path).
    """
    import pyarrow.compute as pc

    if not sep and len(paths):
        raise ValueError("empty separator")
    if len(paths):  # split in Arrow; only the distinct raw pieces (a few per channel) become str
        pieces = pc.split_pattern(_path_text(paths[path]), sep)
        length = pc.list_value_length(pieces).to_numpy().astype(np.int64)
        enc = pc.list_flatten(pieces).dictionary_encode()
        raw_code = enc.indices.to_numpy().astype(np.int64)
        stripped = [c.strip() for c in enc.dictionary.to_pylist()]
    else:
        length, raw_code, stripped = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), []
    names = sorted(set(stripped))
    where = {c: i for i, c in enumerate(names)}
    codes = np.array([where[c] for c in stripped], dtype=np.int64)[raw_code]
    start = np.repeat(np.cumsum(length) - length, length)
    return pd.DataFrame(
        {
            "path_id": np.repeat(paths.index.to_numpy(), length),
            "channel": pd.Categorical.from_codes(codes, categories=pd.Index(names, dtype=object)),
            "position": np.arange(len(codes), dtype=np.int64) - start,
            "length": np.repeat(length, length),
        }
    )
