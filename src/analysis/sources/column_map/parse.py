"""Parsing columns (vectorised): text, booleans, numbers, revenue, sentiment.

Each parser returns values and the rows it rejects (:class:`Rejected`, by position).
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import numpy as np
import pandas as pd

from analysis.sources.column_map.constants import MISSING_SPELLINGS
from analysis.sources.column_map.map import ColumnMap
from analysis.sources.column_map.result import Rejected

# ============================================================================================


def show_value(value: Any, limit: int = 60) -> str:
    """Return ``value`` quoted for a message, cut to ``limit`` characters."""
    text = str(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"'{text}'"


def is_text(s: pd.Series) -> bool:
    """Return whether ``s`` holds text (object or a pandas string dtype)."""
    return s.dtype == object or isinstance(s.dtype, pd.StringDtype)


#: C0 control characters except tab, and DEL: removed from text values (a NUL or an ANSI escape
#: would otherwise make "email\x00" a channel of its own, or reach a terminal).
_CONTROL_RE = r"[\x00-\x08\x0a-\x1f\x7f]"


def strip_controls(s: pd.Series) -> pd.Series:
    """Return text with C0 control characters (except tab) and DEL removed.

    Text with C0 control characters (except tab) and DEL removed; a run of line breaks
    (CR, LF, vertical tab, form feed) becomes one space, so words do not run together.
    """
    has = s.str.contains(_CONTROL_RE, regex=True, na=False)
    if not has.any():
        return s
    fixed = (
        s[has]
        .str.replace(r"[\n\r\x0b\x0c]+", " ", regex=True)
        .str.replace(_CONTROL_RE, "", regex=True)
    )
    return s.mask(has, fixed)


def to_str(s: pd.Series, *, missing_words: bool = True) -> pd.Series:
    """Values as pandas "str", stripped; "", and (``missing_words``) NA spellings → NaN."""
    if is_text(s):
        out = s.astype("str")
    elif pd.api.types.is_float_dtype(s.dtype):
        v = s.to_numpy(dtype="float64", na_value=np.nan)
        fin = v[np.isfinite(v)]
        out = s.astype("Int64").astype("str") if np.all(fin == np.round(fin)) else s.astype("str")
    else:
        out = s.astype("str")
    out = strip_controls(out).str.strip()
    bad = out == ""
    if missing_words:
        bad = bad | out.str.lower().isin(MISSING_SPELLINGS)
    return out.mask(bad.fillna(False))


def guess_format(values: pd.Series) -> str | None:
    """Return a strftime format that parses most of ``values`` (a small sample), or None."""
    from pandas.tseries.api import guess_datetime_format

    sample = values.dropna().head(200)
    candidates: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for v in sample.head(5):
            for dayfirst in (True, False):
                f = guess_datetime_format(str(v), dayfirst=dayfirst)
                if f and f not in candidates:
                    candidates.append(f)
        best, best_n = None, 0
        for f in candidates:
            n = int(pd.to_datetime(sample, format=f, errors="coerce").notna().sum())
            if n > best_n:
                best, best_n = f, n
    return best


def parse_bool(
    s: pd.Series, cmap: ColumnMap, column: str
) -> tuple[pd.Series, np.ndarray, list[Rejected]]:
    """Values (bool, False where unknown), a mask of missing cells, issues."""
    if s.dtype == bool:
        return s.astype(bool), np.zeros(len(s), bool), []
    if isinstance(s.dtype, pd.BooleanDtype):
        missing = s.isna().to_numpy()
        return s.fillna(False).astype(bool), missing, []
    text = to_str(s)
    lookup = {v: 1.0 for v in cmap.true_values} | {v: 0.0 for v in cmap.false_values}
    mapped = lower_lookup(text, lookup, "float64")
    missing = text.isna().to_numpy()
    bad = ~missing & mapped.isna().to_numpy()
    issues = []
    if bad.any():
        pos = np.flatnonzero(bad)
        accepted = "/".join(cmap.true_values[:3]) + " or " + "/".join(cmap.false_values[:3])
        issues.append(
            Rejected(
                "unparseable boolean",
                [
                    f"{column} {show_value(v)} is not a yes/no value (e.g. {accepted}); "
                    "add the spelling under booleans: in the column map"
                    for v in s.iloc[pos].astype(str)
                ],
                column,
                pos=pos,
            )
        )
    values = mapped.fillna(0.0).astype(bool)
    return values, missing, issues


def parse_number(s: pd.Series, decimal: str) -> tuple[pd.Series, np.ndarray, pd.Series | None]:
    """float64 values, a mask of present-but-not-a-number, and the cleaned text (or None)."""
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        return s.astype("float64"), np.zeros(len(s), bool), None
    text = to_str(s)
    num, bad = _text_to_number(text, decimal)
    return num, bad, text


def _grouped_re(decimal: str) -> re.Pattern[str]:
    sep = "." if decimal == "," else ","
    return re.compile(rf"^[+-]?\d{{1,3}}(?:{re.escape(sep)}\d{{3}})+(?:{re.escape(decimal)}\d+)?$")


def _text_to_number(text: pd.Series, decimal: str) -> tuple[pd.Series, np.ndarray]:
    """Return numbers from text with ``decimal`` as the decimal separator.

    Numbers from text with ``decimal`` as the decimal separator and the other of "." and ","
    as the thousands separator. A value holding the thousands separator must group digits by
    three before the decimal separator (``1.249`` and ``1.249,50`` with decimal ","; ``1,249.50``
    with decimal "."), otherwise it is not a number (``1.24`` with decimal "," could be 1.24 or
    1240: quarantined rather than guessed).
    """
    sep = "." if decimal == "," else ","
    has_sep = text.str.contains(sep, regex=False, na=False)
    t = text
    if has_sep.any():
        grouped = text.str.match(_grouped_re(decimal).pattern, na=False)
        t = t.mask(has_sep & grouped, text.str.replace(sep, "", regex=False))
        t = t.mask(has_sep & ~grouped)  # malformed or ambiguous: not a number
    if decimal == ",":
        t = t.str.replace(",", ".", regex=False)
    num = pd.to_numeric(t, errors="coerce").astype("float64")
    bad = text.notna().to_numpy() & num.isna().to_numpy()
    return num, bad


_DECIMAL_COMMA = re.compile(r"^[+-]?\d*,\d+$")


def parse_revenue(s: pd.Series, cmap: ColumnMap) -> tuple[pd.Series, list[Rejected]]:
    """Return revenue as float64 and the rows that are not numbers."""
    num, bad, text = parse_number(s, cmap.decimal)
    issues = []
    if bad.any():
        pos = np.flatnonzero(bad)
        reasons = []
        assert text is not None  # only text can fail to be a number
        for v in text.iloc[pos]:
            r = f"revenue {show_value(v)} is not a number"
            sep = "." if cmap.decimal == "," else ","
            if cmap.decimal == "." and _DECIMAL_COMMA.match(v):
                r += ' (if "," is the decimal separator, set read: {decimal: ","})'
            elif sep in v:
                r += (
                    f" (with decimal {cmap.decimal!r}, {sep!r} is read as a thousands separator and must "
                    f"group digits by three, as in {'1.249,50' if sep == '.' else '1,249.50'}; "
                    "check read: {decimal: ...} or fix the value)"
                )
            reasons.append(r)
        issues.append(Rejected("non-numeric revenue", reasons, "revenue", pos=pos))
    return num, issues


def parse_sentiment(s: pd.Series, cmap: ColumnMap) -> tuple[pd.Series, list[Rejected], str]:
    """Sentiment in [-1, 1] where valid; issues; a hint for out-of-range values."""
    labels = {k.lower(): float(v) for k, v in cmap.sentiment_labels.items()}
    issues = []
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        num = s.astype("float64")
        lab = pd.Series(np.nan, index=s.index)
        bad = np.zeros(len(s), bool)
    else:
        text = to_str(s)
        lab = lower_lookup(text, labels, "float64")
        t = text.where(lab.isna())
        if cmap.decimal == ",":
            t = t.str.replace(",", ".", regex=False)
        num = pd.to_numeric(t, errors="coerce").astype("float64")
        bad = text.notna().to_numpy() & lab.isna().to_numpy() & num.isna().to_numpy()
        if bad.any():
            pos = np.flatnonzero(bad)
            known = ", ".join(sorted(labels))
            issues.append(
                Rejected(
                    "unparseable sentiment",
                    [
                        f"sentiment {show_value(v)} is neither a number nor a known label ({known}); "
                        "add it under sentiment.labels in the column map"
                        for v in text.iloc[pos]
                    ],
                    "sentiment",
                    pos=pos,
                )
            )
    hint = ""
    if cmap.sentiment_scale is not None:
        lo, hi = cmap.sentiment_scale
        num = 2.0 * (num - lo) / (hi - lo) - 1.0
        hint = f"outside the scale [{lo:g}, {hi:g}] of sentiment.scale"
    else:
        out_of_range = num[(num < -1) | (num > 1)]
        if len(out_of_range):
            from analysis.sources.suggest import guess_scale  # here: suggest imports this module

            # a common finite scale of the values out of range, never their [min, max] (e.g. [-3, inf])
            scale, _ = guess_scale(out_of_range.to_numpy())
            if scale is not None:
                hint = (
                    f"set sentiment.scale: [{scale[0]:g}, {scale[1]:g}] in the column map if these are "
                    f"{scale[0]:g}–{scale[1]:g} scores"
                )
            else:
                hint = (
                    "the numbers fit no common score scale (1–5, 0–10, …): state theirs with "
                    "sentiment.scale in the column map, or fix the values"
                )
    return lab.fillna(num).astype("float64"), issues, hint


def lower_lookup(values: pd.Series, mapping: dict[str, Any], dtype: str = "str") -> pd.Series:
    """Case-insensitive dict lookup (NaN where absent), mapping each distinct value once."""
    codes, uniques = pd.factorize(values.str.lower())
    lookup = {str(k).lower(): v for k, v in mapping.items()}
    mapped = np.array([lookup.get(u, np.nan) for u in uniques] + [np.nan], dtype=object)
    return pd.Series(mapped[codes], index=values.index).astype(dtype)


def count_noun(n: int, noun: str, plural: str | None = None) -> str:
    """Return a count with its noun: "1 row", "1,204 rows"."""
    return f"{n:,} {noun if n == 1 else (plural or noun + 's')}"


def list_some(values: list[Any], k: int = 5) -> str:
    """Return the first ``k`` values quoted, and how many more there are."""
    shown = ", ".join(show_value(v) for v in values[:k])
    return shown + (f" and {len(values) - k} more" if len(values) > k else "")
