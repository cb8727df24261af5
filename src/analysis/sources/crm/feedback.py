"""Survey / feedback responses (NPS, CSAT, labels) → ``survey`` touchpoints with a sentiment."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from analysis.schema import DataError
from analysis.sources._results import Rejected
from analysis.sources.column_map import LoadResult, show_value, to_str
from analysis.sources.crm.options import ReadOptions
from analysis.sources.crm.reading import Source, prepare
from analysis.sources.crm.roles import (
    attributes,
    ids_roles,
    lookup,
    lookup_table,
    norm,
    norm_series,
)
from analysis.sources.crm.rows import base_columns, finish, sentiment, truncation
from analysis.sources.crm.tables import DEFAULT_SATISFACTION_LABELS, NOT_ANSWERED

__all__ = ["read_feedback"]

FEEDBACK_ROLES: dict[str, tuple[str, ...]] = {
    **ids_roles(),
    "time": (
        "time",
        "timestamp",
        "created_at",
        "Created at",
        "submitted_at",
        "Date Submitted",
        "Response Date",
        "RecordedDate",
        "EndDate",
        "date",
    ),
    "score": ("score", "nps", "NPS score", "csat", "CSAT score", "rating", "Score"),
    "label": ("label", "sentiment", "sentiment_label"),
    "response_id": ("response_id", "Response ID", "ResponseId", "id"),
    "segment": ("segment",),
    "campaign": ("campaign",),
}


def read_feedback(
    source: Any,
    *,
    scale: tuple[float, float] | None = None,
    labels: dict[str, float] | None = None,
    columns: dict[str, str] | None = None,
    channel: str = "survey",
    touchpoint: str = "survey",
    drop: Iterable[str] = (),
    timestamp_format: str | None = None,
    timezone: str | None = None,
    stage_map: Any = None,
    delimiter: str = ",",
    encoding: str = "utf-8",
    decimal: str = ".",
) -> LoadResult:
    """Read survey / feedback responses (NPS, CSAT, text labels) as ``survey`` touchpoints.

    Each response gets a sentiment in [-1, 1], stage Care.

    =================  ===========================================  =====================
    role               recognised columns                           touchpoint column
    =================  ===========================================  =====================
    ``time``           timestamp, created_at, submitted_at,         ``timestamp`` (required)
                       RecordedDate, EndDate, date
    ``score``          score, nps, csat, rating                     ``sentiment`` (linear map
                                                                    of ``scale``); kept as
                                                                    ``score``
    ``label``          label, sentiment                             ``sentiment`` where the
                                                                    score is missing
    ``response_id``    Response ID, ResponseId, id                  ``response_id``
    identifiers        see the module docstring                     ``email_hash``, ``crm_id`` …
    =================  ===========================================  =====================

    The scale is stated, not guessed: ``scale=(0, 10)`` for NPS maps 0 → -1, 5 → 0, 10 → 1;
    ``scale=(1, 5)`` for CSAT maps 1 → -1, 3 → 0, 5 → 1. A score outside the scale is
    quarantined with a reason naming the row, never clipped. Labels (positive/neutral/negative,
    promoter/passive/detractor, good/bad, …) map through :data:`DEFAULT_SATISFACTION_LABELS`
    merged with ``labels``; the score column may also hold labels.

    Parameters
    ----------
    source : str, Path or DataFrame
        A survey export as CSV (``.csv``, ``.csv.gz``) or Parquet, or a DataFrame.
    scale : (low, high)
        Required when there is a numeric score column.
    labels : dict, optional
        Word → sentiment in [-1, 1], merged over :data:`DEFAULT_SATISFACTION_LABELS`.
    columns : dict, optional
        Role → source column for names not recognised.
    channel, touchpoint : str, default "survey"
    drop : list of str
        Source columns to leave out (e.g. names, addresses: personal data you do not need).
    timestamp_format : str, optional
        strftime format of the dates; default ISO 8601 (``2024-03-01``, ``2024-03-01 14:30``).
    timezone : str, optional
        IANA zone of dates without an offset; default UTC.
    stage_map : dict or StageMap, optional
        Touchpoint → stage (``schema.StageMap.from_config`` keys). Default: the default stage
        map plus :data:`CRM_TOUCHPOINT_STAGES`.
    delimiter, encoding, decimal : str
        CSV reading: ``","``, ``"utf-8"``, ``"."``.

    Returns
    -------
    LoadResult

    Examples
    --------
    >>> read_feedback("nps.csv", scale=(0, 10))          # doctest: +SKIP
    """
    options = ReadOptions(
        columns=columns,
        drop=drop,
        timestamp_format=timestamp_format,
        timezone=timezone,
        stage_map=stage_map,
        delimiter=delimiter,
        encoding=encoding,
        decimal=decimal,
    )
    src, found, cmap = prepare(source, "feedback", FEEDBACK_ROLES, ("time",), options)
    _check_feedback_options(src, found, labels)
    df, n = src.df, len(src.df)
    notes: list[str] = []
    table = lookup_table(DEFAULT_SATISFACTION_LABELS, labels)
    pre = truncation(src, n)
    values = pd.Series(np.nan, index=df.index, dtype="float64")
    if "score" in found:
        values, issues = sentiment(
            df[found["score"]],
            scale,
            table,
            column=found["score"],
            option="scale",
            decimal=cmap.decimal,
            file=src.name,
        )
        pre += issues
    if "label" in found:
        values = _label_sentiment(df, found, table, values, pre)
    prepared: dict[str, Any] = {
        "timestamp": df[found["time"]],
        **base_columns(src, found, notes),
        "channel": pd.Series(channel, index=df.index, dtype="str"),
        "touchpoint": pd.Series(touchpoint, index=df.index, dtype="str"),
        "sentiment": values,
    }
    for role in ("score", "label", "response_id"):
        if role in found:
            prepared[role] = df[found[role]]
    prepared.update(attributes(df, found.values(), drop, set(prepared)))
    return finish(
        pd.DataFrame(prepared),
        src.rows,
        src=src,
        cmap=cmap,
        pre=pre,
        notes=notes,
        extra={"scale": list(scale) if scale is not None else None},
    )


def _check_feedback_options(
    src: Source, found: dict[str, str], labels: dict[str, float] | None
) -> None:
    """Raise DataError without a score or label column, or for labels outside [-1, 1]."""
    if "score" not in found and "label" not in found:
        raise DataError(
            "the feedback table has neither a score nor a label column",
            file=src.name,
            column=["score", "label"],
            fix="name one: columns={'score': '<your column>'} (with scale=(0, 10) for NPS) or "
            f"columns={{'label': '<your column>'}}; the file has columns: {', '.join(list(src.df.columns)[:30])}",
        )
    bad_labels = {
        k: v
        for k, v in (labels or {}).items()
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not -1 <= v <= 1
    }
    if bad_labels:
        raise DataError(
            f"labels must map words to numbers in [-1, 1], got {bad_labels!r}",
            file=src.name,
            column="label",
            fix="e.g. labels={'happy': 1, 'unhappy': -1}",
        )


def _label_sentiment(
    df: pd.DataFrame,
    found: dict[str, str],
    table: dict[str, float],
    values: pd.Series,
    pre: list[Rejected],
) -> pd.Series:
    """Return the sentiment with the label column's where the score is missing.

    Unknown labels of rows without a score are a pre-issue (added to ``pre``).
    """
    n = len(df)
    ltext = to_str(df[found["label"]])
    lab = lookup(ltext, table).astype("float64")
    has_score = (
        to_str(df[found["score"]]).notna() if "score" in found else pd.Series(False, index=df.index)
    ).to_numpy()
    unanswered = norm_series(ltext).isin({norm(v) for v in NOT_ANSWERED}).to_numpy()
    bad = ltext.notna().to_numpy() & lab.isna().to_numpy() & ~has_score & ~unanswered
    if bad.any():
        reasons = np.full(n, "", dtype=object)
        reasons[bad] = (
            f"{found['label']} "
            + ltext[bad].map(show_value)
            + " is not a known label ("
            + ", ".join(sorted(table))
            + "); add it with labels={...}"
        ).to_numpy(dtype=object)
        pre.append(Rejected.from_mask(bad, "unparseable score", found["label"], reasons))
    return values.where(pd.Series(has_score, index=df.index), lab)
