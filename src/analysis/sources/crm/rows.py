"""Building a CRM reader's touchpoint rows and finishing them through the validation pipeline.

The readers prepare one row per touchpoint (canonical names plus attributes) and collect the
rows they reject themselves (one :class:`~analysis.sources._results.Rejected` per problem,
built from a mask over the prepared rows); :func:`finish` validates the rest with
:func:`analysis.sources.column_map.validate_table` and adds the rejected rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from analysis.schema import DataError
from analysis.sources._results import Rejected, quarantine_rows, sum_reasons
from analysis.sources.column_map import (
    ColumnMap,
    LoadResult,
    parse_number,
    show_value,
    to_str,
    validate_table,
)
from analysis.sources.crm.reading import Source
from analysis.sources.crm.roles import identifiers, lookup, norm, norm_series
from analysis.sources.crm.tables import NOT_ANSWERED

__all__ = [
    "amount_issue",
    "base_columns",
    "by_record",
    "finish",
    "map_channel",
    "sentiment",
    "show_list",
    "slug",
    "truncation",
]


def base_columns(src: Source, found: dict[str, str], notes: list[str]) -> dict[str, pd.Series]:
    """Return the identifiers plus the optional segment/campaign roles, as prepared columns."""
    out: dict[str, pd.Series] = dict(identifiers(src.df, found, notes, src.rows))
    for role in ("segment", "campaign"):
        if role in found:
            out[role] = src.df[found[role]]
    return out


def show_list(values: list[Any], k: int = 5) -> str:
    """Return the first ``k`` values quoted, and how many more there are."""
    shown = ", ".join(show_value(v) for v in values[:k])
    return shown + (f" and {len(values) - k} more" if len(values) > k else "")


def slug(values: pd.Series, prefix: str = "") -> pd.Series:
    """Return the values lower case, runs of punctuation and spaces as one ``_``, prefixed."""
    return prefix + values.str.lower().str.replace(r"[\W_]+", "_", regex=True).str.strip("_")


def map_channel(
    values: pd.Series | None,
    table: dict[str, str],
    n: int,
    *,
    missing: str,
    unknown: str,
    what: str,
    notes: list[str],
    option: str,
) -> pd.Series:
    """Return a channel per row from a source column through ``table``."""
    if values is None:
        return pd.Series(missing, index=pd.RangeIndex(n), dtype="str")
    text = to_str(values)
    mapped = lookup(text, table)
    unmapped = text.notna() & mapped.isna()
    if unmapped.any():
        vals = text[unmapped].value_counts().index.tolist()
        notes.append(
            f"{int(unmapped.sum())} row(s) have a {what} not in the table ({show_list(vals)}); "
            f"channel set to {unknown!r} (add them with {option}={{...}})"
        )
    fill = pd.Series(np.where(unmapped.to_numpy(), unknown, missing), index=text.index)
    return mapped.fillna(fill).astype("str")


def truncation(src: Source, n: int, expand: np.ndarray | None = None) -> list[Rejected]:
    """Return a pre-issue for CSV rows with too few fields (``expand``: prepared row → record)."""
    if not src.short:
        return []
    rec = np.zeros(len(src.df), dtype=bool)
    nfields = np.zeros(len(src.df), dtype="int64")
    for p, k in src.short.items():  # a handful of rows at most: the file's cut-off end
        rec[p], nfields[p] = True, k
    idx = np.arange(n) if expand is None else expand
    mask = rec[idx]
    width = len(src.df.columns)
    reasons = np.full(len(idx), "", dtype=object)
    reasons[mask] = [
        f"the row has {k} of {width} fields: the file looks cut off (truncated) here; "
        "export it again"
        for k in nfields[idx][mask]
    ]  # only the short rows
    return [Rejected.from_mask(mask, "truncated row", None, reasons)]


def amount_issue(
    values: pd.Series, cmap: ColumnMap, column: str, idx: np.ndarray
) -> tuple[pd.Series, list[Rejected]]:
    """Return amounts as float64 per record, and a pre-issue for non-numeric amounts.

    The pre-issue covers the prepared rows ``idx`` of records whose amount is present but not
    a number.
    """
    num, bad, text = parse_number(values, cmap.decimal)
    if not bad.any():
        return num, []
    assert text is not None  # parse_number returns the text whenever a value is bad
    mask = bad[idx]
    reasons = np.full(len(idx), "", dtype=object)
    shown = text.to_numpy(dtype=object)[idx][mask]
    reasons[mask] = (
        "amount "
        + pd.Series(shown, dtype="str").map(show_value)
        + f" (column {column!r}) is not a number"
    ).to_numpy(dtype=object)
    return num, [Rejected.from_mask(mask, "non-numeric amount", "revenue", reasons)]


def sentiment(
    values: pd.Series,
    scale: tuple[float, float] | None,
    labels: dict[str, float],
    *,
    column: str,
    option: str,
    decimal: str,
    file: str,
) -> tuple[pd.Series, list[Rejected]]:
    """Return the sentiment of scores on ``scale`` (linear map to [-1, 1]) or of labels.

    Out-of-scale scores and unreadable values are pre-issues (never clipped); "asked, not
    answered" values (:data:`~analysis.sources.crm.tables.NOT_ANSWERED`) are missing.
    """
    text = to_str(values)
    lab = lookup(text, labels).astype("float64")
    unanswered = norm_series(text).isin({norm(v) for v in NOT_ANSWERED}).to_numpy()
    t = text.where(lab.isna() & ~unanswered)
    num = pd.to_numeric(
        t.str.replace(",", ".", regex=False) if decimal == "," else t, errors="coerce"
    )
    num = num.astype("float64")
    issues: list[Rejected] = []
    bad = (text.notna() & lab.isna() & num.isna()).to_numpy() & ~unanswered
    if bad.any():
        issues.append(_unparseable_score(text, bad, labels, column=column, option=option))
    if num.notna().any():
        lo, hi = _score_scale(num, scale, column=column, option=option, file=file)
        out = (num.notna() & ((num < lo) | (num > hi))).to_numpy()
        if out.any():
            issues.append(_out_of_scale(text, out, (lo, hi), column=column, option=option))
        num = (2.0 * (num - lo) / (hi - lo) - 1.0).where(~pd.Series(out, index=num.index))
    return lab.fillna(num).astype("float64"), issues


def _unparseable_score(
    text: pd.Series, bad: np.ndarray, labels: dict[str, float], *, column: str, option: str
) -> Rejected:
    """Return the pre-issue for values that are neither a number nor a known label."""
    reasons = np.full(len(text), "", dtype=object)
    reasons[bad] = (
        f"{column} "
        + text[bad].map(show_value)
        + " is neither a number nor a known label ("
        + ", ".join(sorted(labels))
        + f"); add it with {option.replace('scale', 'labels')}"
        + "={...}"
    ).to_numpy(dtype=object)
    return Rejected.from_mask(bad, "unparseable score", column, reasons)


def _score_scale(
    num: pd.Series,
    scale: tuple[float, float] | None,
    *,
    column: str,
    option: str,
    file: str,
) -> tuple[float, float]:
    """Return the stated scale as (low, high); a missing or reversed one raises DataError."""
    if scale is None:
        lo, hi = float(num.min()), float(num.max())
        nps, csat = f"{option}=(0, 10) for NPS", f"{option}=(1, 5) for CSAT"
        first, second = (csat, nps) if hi <= 5 and lo >= 1 else (nps, csat)
        raise DataError(
            f"the {column} column holds numeric scores (from {lo:g} to {hi:g}) but no scale was given",
            file=file,
            column=column,
            fix=f"state the scale of the scores, e.g. {first} or {second}",
        )
    lo, hi = (float(x) for x in scale)
    if not lo < hi:
        raise DataError(
            f"{option} must be (low, high) with low < high, got {scale!r}",
            file=file,
            column=column,
            fix=f"e.g. {option}=(0, 10)",
        )
    return lo, hi


def _out_of_scale(
    text: pd.Series, out: np.ndarray, scale: tuple[float, float], *, column: str, option: str
) -> Rejected:
    """Return the pre-issue for scores outside the scale (not clipped)."""
    lo, hi = scale
    reasons = np.full(len(text), "", dtype=object)
    reasons[out] = (
        f"{column} " + text[out].map(show_value) + f" is outside the scale [{lo:g}, {hi:g}] "
        f"({option}); it was not clipped: fix the value or the scale"
    ).to_numpy(dtype=object)
    return Rejected.from_mask(out, "score out of scale", column, reasons)


def by_record(reject: Rejected, n_records: int, rec: np.ndarray) -> Rejected:
    """Return a reject over records as one over prepared rows (``rec``: row → its record)."""
    assert reject.pos is not None  # built from a mask over the records
    mask = np.zeros(n_records, dtype=bool)
    mask[reject.pos] = True
    reasons = np.full(n_records, "", dtype=object)
    reasons[reject.pos] = reject.reasons
    return Rejected.from_mask(mask[rec], reject.category, reject.column, reasons[rec])


def finish(
    prepared: pd.DataFrame,
    rows: np.ndarray,
    *,
    src: Source,
    cmap: ColumnMap,
    pre: list[Rejected],
    notes: list[str],
    extra: dict[str, Any] | None = None,
) -> LoadResult:
    """Validate ``prepared`` (canonical names + attributes) and add the reader's own rejects.

    Every row rejected raises DataError (with the first reject's reasons); the reader's
    ``notes`` come before the validator's, ``extra`` is added to the summary.
    """
    n = len(prepared)
    bad = np.zeros(n, dtype=bool)
    for r in pre:
        bad[_positions(r)] = True
    if n and bad.all():
        first = _positions(pre[0])[:5]
        shown = "; ".join(
            f"row {rows[i]}: {why}" for i, why in zip(first, pre[0].reasons[:5], strict=True)
        )
        raise DataError(
            f"every row was rejected, e.g. {shown}",
            file=src.name,
            rows=[int(r) for r in rows[first]],
            fix="check the file and the reader's options",
        )
    good = prepared.loc[~bad].reset_index(drop=True)
    res = validate_table(good, source=src.name, cmap=cmap, rows=rows[~bad], blank_rows=src.blank)
    summary = dict(res.summary)
    quarantine, examples = res.quarantine, dict(res.examples)
    if bad.any():
        quarantine = _add_own_rejects(pre, prepared, rows, summary, quarantine, examples)
    summary["rows_read"] = n
    summary["rows_kept"] = len(res.events)
    summary["rows_quarantined"] = len(quarantine)
    summary["notes"] = list(notes) + list(summary["notes"])
    summary.update(extra or {})
    events = res.events
    events.attrs["load_report"] = dict(summary)
    return LoadResult(events=events, quarantine=quarantine, summary=summary, examples=examples)


def _add_own_rejects(
    pre: list[Rejected],
    prepared: pd.DataFrame,
    rows: np.ndarray,
    summary: dict[str, Any],
    quarantine: pd.DataFrame,
    examples: dict[str, Any],
) -> pd.DataFrame:
    """Return the quarantine with the reader's own rejects; count them in ``summary``/``examples``.

    Not :func:`~analysis.sources._results.add_rejected`, whose output differs in two details
    (the quarantine's missing ``column`` is None rather than NaN; reasons with equal counts are
    ordered by row rather than by reject): the CRM readers' results stay as they were.
    """
    parts = pd.concat(
        [
            pd.DataFrame(
                {
                    "pos": _positions(r),
                    "category": r.category,
                    "column": r.column,
                    "reason": np.asarray(r.reasons, dtype=object),
                }
            )
            for r in pre
            if len(r)
        ],
        ignore_index=True,
    )
    own = quarantine_rows(parts, prepared, rows)
    quarantine = pd.concat([quarantine, own], ignore_index=True) if len(quarantine) else own
    quarantine = quarantine.sort_values("row", kind="stable").reset_index(drop=True)
    counts = parts.drop_duplicates(["pos", "category"])["category"].value_counts()
    summary["reasons"] = sum_reasons(summary["reasons"], counts.to_dict())
    for cat, first in parts.drop_duplicates("category").set_index("category").iterrows():
        examples.setdefault(
            str(cat),
            {
                "row": int(rows[int(first["pos"])]),
                "column": first["column"],
                "reason": first["reason"],
            },
        )
    return quarantine


def _positions(reject: Rejected) -> np.ndarray:
    """Return the reject's positions in the prepared table (set by ``Rejected.from_mask``)."""
    assert reject.pos is not None
    return reject.pos
