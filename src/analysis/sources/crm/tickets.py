"""Support tickets (HubSpot tickets, Zendesk, Salesforce Case) → ``support_ticket`` touchpoints."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from analysis.sources.column_map import LoadResult
from analysis.sources.crm.options import ReadOptions
from analysis.sources.crm.reading import prepare
from analysis.sources.crm.roles import attributes, ids_roles, lookup_table
from analysis.sources.crm.rows import base_columns, finish, map_channel, sentiment, truncation
from analysis.sources.crm.tables import DEFAULT_SATISFACTION_LABELS, DEFAULT_TICKET_CHANNELS

__all__ = ["read_support_tickets"]

TICKET_ROLES: dict[str, tuple[str, ...]] = {
    **ids_roles(),
    "ticket_id": (
        "ticket_id",
        "Ticket ID",
        "Record ID",
        "id",
        "hs_object_id",
        "CaseNumber",
        "Case Number",
    ),
    "created": (
        "created",
        "Create date",
        "created_at",
        "createdate",
        "CreatedDate",
        "Created",
        "Date Created",
    ),
    "channel": ("channel", "Source", "source_type", "via", "via_channel", "Origin", "Case Origin"),
    "satisfaction": (
        "satisfaction",
        "satisfaction_score",
        "satisfaction_rating",
        "satisfaction_rating_score",
        "csat",
        "CSAT score",
        "rating",
    ),
    "segment": ("segment",),
    "campaign": ("campaign",),
}


def read_support_tickets(
    source: Any,
    *,
    columns: dict[str, str] | None = None,
    ticket_channels: dict[str, str] | None = None,
    default_channel: str = "support",
    unknown_channel: str = "unknown",
    satisfaction_scale: tuple[float, float] | None = (1, 5),
    satisfaction_labels: dict[str, float] | None = None,
    touchpoint: str = "support_ticket",
    drop: Iterable[str] = (),
    timestamp_format: str | None = None,
    timezone: str | None = None,
    stage_map: Any = None,
    delimiter: str = ",",
    encoding: str = "utf-8",
    decimal: str = ".",
) -> LoadResult:
    """Read support tickets (HubSpot tickets, Zendesk, Salesforce Case) as touchpoints.

    Each ticket becomes a ``support_ticket`` touchpoint, stage Care.

    ================  ============================================  ======================
    role              recognised columns                            touchpoint column
    ================  ============================================  ======================
    ``created``       Create date, created_at, CreatedDate          ``timestamp`` (required)
    ``channel``       Source, source_type, via, Origin              ``channel`` (email →
                                                                    email, phone →
                                                                    call_center, chat → chat;
                                                                    :data:`DEFAULT_TICKET_CHANNELS`)
    ``satisfaction``  satisfaction, csat, satisfaction_rating       ``sentiment``
    ``ticket_id``     Ticket ID, Record ID, id, CaseNumber          ``ticket_id`` (attribute)
    ``email``,        Requester email, SuppliedEmail, Contact ID    ``email_hash``, ``crm_id``
    ``crm_id`` …
    ================  ============================================  ======================

    A numeric satisfaction score on ``satisfaction_scale`` maps linearly to [-1, 1] (1 → -1,
    5 → 1 on the default 1–5 scale); words map through :data:`DEFAULT_SATISFACTION_LABELS`
    (Zendesk's good/bad, …). Scores outside the scale are quarantined, not clipped.
    ``online`` follows the channel (``call_center`` is offline).

    Parameters
    ----------
    source : str, Path or DataFrame
        A tickets export as CSV (``.csv``, ``.csv.gz``) or Parquet, or a DataFrame.
    columns : dict, optional
        Role → source column for names not recognised.
    ticket_channels : dict, optional
        Source value → channel, merged over :data:`DEFAULT_TICKET_CHANNELS`.
    default_channel, unknown_channel : str
        Channel of tickets without a source value ("support") and with one not in the table
        ("unknown", listed in the notes).
    satisfaction_scale : (low, high), default (1, 5)
    satisfaction_labels : dict, optional
        Word → sentiment, merged over :data:`DEFAULT_SATISFACTION_LABELS`.
    touchpoint : str, default "support_ticket"
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
    >>> read_support_tickets("tickets.csv", satisfaction_scale=(1, 5))   # doctest: +SKIP
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
    src, found, cmap = prepare(source, "support tickets", TICKET_ROLES, ("created",), options)
    df, n = src.df, len(src.df)
    notes: list[str] = []
    channel = map_channel(
        df[found["channel"]] if "channel" in found else None,
        lookup_table(DEFAULT_TICKET_CHANNELS, ticket_channels),
        n,
        missing=default_channel,
        unknown=unknown_channel,
        what="ticket source",
        notes=notes,
        option="ticket_channels",
    )
    prepared: dict[str, Any] = {
        "timestamp": df[found["created"]],
        **base_columns(src, found, notes),
        "channel": channel,
        "touchpoint": pd.Series(touchpoint, index=df.index, dtype="str"),
    }
    pre = truncation(src, n)
    if "satisfaction" in found:
        labels = lookup_table(DEFAULT_SATISFACTION_LABELS, satisfaction_labels)
        prepared["sentiment"], issues = sentiment(
            df[found["satisfaction"]],
            satisfaction_scale,
            labels,
            column=found["satisfaction"],
            option="satisfaction_scale",
            decimal=cmap.decimal,
            file=src.name,
        )
        pre += issues
        prepared["satisfaction"] = df[found["satisfaction"]]
    if "ticket_id" in found:
        prepared["ticket_id"] = df[found["ticket_id"]]
    if "channel" in found:
        prepared["ticket_source"] = df[found["channel"]]
    prepared.update(attributes(df, found.values(), drop, set(prepared)))
    return finish(pd.DataFrame(prepared), src.rows, src=src, cmap=cmap, pre=pre, notes=notes)
