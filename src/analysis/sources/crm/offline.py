"""Offline contacts (store visits, calls, fairs, events, webinars) → offline touchpoints."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from analysis.schema import OFFLINE_CHANNELS, DataError
from analysis.sources.column_map import LoadResult, to_str
from analysis.sources.crm.options import ReadOptions
from analysis.sources.crm.reading import Source, prepare
from analysis.sources.crm.roles import attributes, ids_roles, lookup, lookup_table
from analysis.sources.crm.rows import (
    amount_issue,
    base_columns,
    finish,
    show_list,
    slug,
    truncation,
)
from analysis.sources.crm.tables import DEFAULT_OFFLINE_KINDS, WON_TOUCHPOINTS

__all__ = ["read_offline"]

OFFLINE_ROLES: dict[str, tuple[str, ...]] = {
    **ids_roles(),
    "time": (
        "time",
        "timestamp",
        "date",
        "datetime",
        "visited_at",
        "visit_date",
        "Visit Date",
        "call_start",
        "Call Start",
        "start_time",
        "started_at",
        "created_at",
    ),
    "kind": ("kind", "type", "contact_type", "activity", "interaction", "visit_type"),
    "amount": ("amount", "revenue", "value", "total"),
    "segment": ("segment",),
    "campaign": ("campaign",),
}


def read_offline(
    source: Any,
    *,
    kind: str | None = None,
    kinds: dict[str, Any] | None = None,
    columns: dict[str, str] | None = None,
    drop: Iterable[str] = (),
    timestamp_format: str | None = None,
    timezone: str | None = None,
    stage_map: Any = None,
    delimiter: str = ",",
    encoding: str = "utf-8",
    decimal: str = ".",
) -> LoadResult:
    """Read offline contacts (store visits, calls, fairs, events, webinars) as touchpoints.

    The touchpoints have ``online = False``.

    ==============  =========================================  =========================
    role            recognised columns                         touchpoint column
    ==============  =========================================  =========================
    ``time``        timestamp, date, visited_at, Call Start    ``timestamp`` (required)
    ``kind``        kind, type, contact_type, activity         ``touchpoint``, ``channel``
                                                               via :data:`DEFAULT_OFFLINE_KINDS`;
                                                               kept as ``kind``
    ``amount``      amount, revenue, value                     ``revenue`` of ``purchase`` rows
    ``loyalty_id``  Loyalty ID, card_number, member_id         ``loyalty_id``
    ``phone``       Phone, caller                              ``phone_hash`` (hashed)
    ``crm_id``,     Contact ID, Email, …                       ``crm_id``, ``email_hash``
    ``email``
    ==============  =========================================  =========================

    Kinds: store visit → (``store_visit``, store), call → (``call``, call_center), fair /
    trade show / event → (``event_attendance``, event), webinar → (``webinar``, event),
    purchase → (``purchase``, store; a conversion with revenue = amount). A kind not in the
    table becomes its own touchpoint name with channel "unknown" (listed in the notes). Rows
    are offline unless a kind you add maps to a channel that is not one of
    ``schema.OFFLINE_CHANNELS``.

    Parameters
    ----------
    source : str, Path or DataFrame
        An offline contacts file as CSV (``.csv``, ``.csv.gz``) or Parquet, or a DataFrame.
    kind : str, optional
        The kind of every row without one (e.g. ``"store_visit"`` for a file of visits);
        required when there is no kind column.
    kinds : dict, optional
        Kind → ``(touchpoint, channel)`` (or ``[touchpoint, channel]`` from YAML), merged over
        :data:`DEFAULT_OFFLINE_KINDS`.
    columns : dict, optional
        Role → source column for names not recognised.
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
    >>> read_offline("store_visits.csv", kind="store_visit")     # doctest: +SKIP
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
    src, found, cmap = prepare(source, "offline contacts", OFFLINE_ROLES, ("time",), options)
    df, n = src.df, len(src.df)
    notes: list[str] = []
    _check_offline_options(src, found, kind, kinds)
    table = lookup_table(DEFAULT_OFFLINE_KINDS, {k: tuple(v) for k, v in (kinds or {}).items()})
    k_text = (
        to_str(df[found["kind"]])
        if "kind" in found
        else pd.Series(np.nan, index=df.index, dtype="str")
    )
    if kind is not None:
        k_text = k_text.fillna(str(kind))
    touch, chan, unknown = _kind_touchpoints(k_text, table, notes)
    online = (
        ~unknown & chan.notna() & ~chan.isin(OFFLINE_CHANNELS)
    )  # only kinds you map to an online channel
    pre = truncation(src, n)
    prepared: dict[str, Any] = {
        "timestamp": df[found["time"]],
        **base_columns(src, found, notes),
        "channel": chan.fillna("offline"),
        "touchpoint": touch,
        "online": online.astype(bool),
        "kind": k_text,
    }
    if "amount" in found:
        amount, issues = amount_issue(df[found["amount"]], cmap, found["amount"], np.arange(n))
        pre += issues
        prepared["revenue"] = amount.where(touch.isin(WON_TOUCHPOINTS | {"purchase"}))
        prepared["amount"] = amount
    prepared.update(attributes(df, found.values(), drop, set(prepared)))
    return finish(pd.DataFrame(prepared), src.rows, src=src, cmap=cmap, pre=pre, notes=notes)


def _check_offline_options(
    src: Source, found: dict[str, str], kind: str | None, kinds: dict[str, Any] | None
) -> None:
    """Raise DataError without a kind (column or option), or for a kinds entry not a pair."""
    if "kind" not in found and kind is None:
        raise DataError(
            "the offline contacts have no kind column, and no kind was given",
            file=src.name,
            column="kind",
            fix="name the column: columns={'kind': '<your column>'}, or give one kind for all rows, e.g. "
            "kind='store_visit'",
        )
    bad = {
        k: v for k, v in (kinds or {}).items() if not (isinstance(v, (list, tuple)) and len(v) == 2)
    }
    if bad:
        raise DataError(
            f"kinds must map a kind to (touchpoint, channel), got {bad!r}",
            file=src.name,
            column="kind",
            fix="e.g. kinds={'showroom': ('store_visit', 'store')}",
        )


def _kind_touchpoints(
    k_text: pd.Series, table: dict[str, Any], notes: list[str]
) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Return touchpoint, channel and a not-in-the-table mask per row, from the kinds table.

    A kind not in the table is its own touchpoint (slugged) with channel "unknown" (noted).
    """
    pair = lookup(k_text, table)
    unknown = k_text.notna() & pair.isna()
    touch = pd.Series(pair.str[0], index=k_text.index, dtype="str")
    chan = pd.Series(pair.str[1], index=k_text.index, dtype="str")
    if unknown.any():
        names = k_text[unknown].value_counts().index.tolist()
        notes.append(
            f"{int(unknown.sum())} row(s) have a kind not in the kinds table ({show_list(names)}); their "
            "touchpoint is the kind itself and channel 'unknown' (map them with kinds={...})"
        )
        touch = touch.mask(unknown, slug(k_text[unknown]))
        chan = chan.mask(unknown, "unknown")
    return touch, chan, unknown
