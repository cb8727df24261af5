"""CRM contacts (leads) → ``lead_created`` touchpoints (:func:`read_contacts`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from analysis.schema import OFFLINE_CHANNELS
from analysis.sources.column_map import LoadResult
from analysis.sources.crm.options import ReadOptions
from analysis.sources.crm.reading import prepare
from analysis.sources.crm.roles import attributes, ids_roles, lookup_table
from analysis.sources.crm.rows import base_columns, finish, map_channel, truncation
from analysis.sources.crm.tables import DEFAULT_LEAD_SOURCE_CHANNELS

__all__ = ["read_contacts"]

CONTACT_ROLES: dict[str, tuple[str, ...]] = {
    **ids_roles(("crm_id", "Record ID", "Contact ID", "ContactId", "Id", "hs_object_id", "vid")),
    "created": (
        "created",
        "Create Date",
        "CreatedDate",
        "createdate",
        "created_at",
        "Created",
        "date_created",
        "Became a Lead Date",
    ),
    "lead_source": (
        "lead_source",
        "Original Source",
        "LeadSource",
        "Lead Source",
        "hs_analytics_source",
        "Original Traffic Source",
    ),
    "owner": ("owner", "Contact owner", "OwnerId", "hubspot_owner_id", "Owner"),
    "segment": ("segment",),
    "campaign": ("campaign", "utm_campaign", "CampaignId"),
}


def read_contacts(
    source: Any,
    *,
    columns: dict[str, str] | None = None,
    lead_source_channels: dict[str, str] | None = None,
    default_channel: str = "crm",
    unknown_channel: str = "unknown",
    touchpoint: str = "lead_created",
    drop: Iterable[str] = (),
    timestamp_format: str | None = None,
    timezone: str | None = None,
    stage_map: Any = None,
    delimiter: str = ",",
    encoding: str = "utf-8",
    decimal: str = ".",
) -> LoadResult:
    """Read CRM contacts (leads) as one ``lead_created`` touchpoint per contact.

    =================  ===========================================  =======================
    role               recognised columns                           touchpoint column
    =================  ===========================================  =======================
    ``created``        Create Date, CreatedDate, createdate, …      ``timestamp`` (required)
    ``crm_id``         Record ID, Contact ID, Id, ContactId, …      ``crm_id``
    ``email``          Email, E-mail, …                             ``email_hash`` (hashed;
                                                                    the address is dropped)
    ``lead_source``    Original Source, LeadSource, Lead Source     ``channel`` (through
                                                                    the lead-source table),
                                                                    kept as ``lead_source``
    ``owner``          Contact owner, OwnerId, hubspot_owner_id     ``owner`` (attribute)
    ``segment``        segment                                      ``segment``
    =================  ===========================================  =======================

    Identifiers: see the module docstring (at least one is needed). Each row carries *both*
    ``email_hash`` and ``crm_id`` when the contact has both, which is what lets stitching join
    logged-in web rows (``email_hash``) with deals and tickets (``crm_id``). Other columns
    are kept as attributes. ``online`` is False for the channels ``crm`` and the offline
    channels (a record entered by staff), True otherwise.

    Parameters
    ----------
    source : str, Path or DataFrame
        A contacts export as CSV (``.csv``, ``.csv.gz``) or Parquet (e.g. HubSpot's contacts
        export, Salesforce Contact or Lead), or a DataFrame.
    columns : dict, optional
        Role → source column, for names not recognised (``{"created": "Erstellt am"}``);
        ``None`` as the column switches a role off.
    lead_source_channels : dict, optional
        Lead source → channel, merged over :data:`DEFAULT_LEAD_SOURCE_CHANNELS`.
    default_channel : str, default "crm"
        Channel of contacts without a lead source.
    unknown_channel : str, default "unknown"
        Channel of contacts whose lead source is not in the table (listed in the notes).
    touchpoint : str, default "lead_created"
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
    >>> res = read_contacts("hubspot_contacts.csv")          # doctest: +SKIP
    >>> res.events[["timestamp", "crm_id", "email_hash", "channel"]]   # doctest: +SKIP
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
    src, found, cmap = prepare(source, "contacts", CONTACT_ROLES, ("created",), options)
    df, n = src.df, len(src.df)
    notes: list[str] = []
    cols = base_columns(src, found, notes)
    channel = map_channel(
        df[found["lead_source"]] if "lead_source" in found else None,
        lookup_table(DEFAULT_LEAD_SOURCE_CHANNELS, lead_source_channels),
        n,
        missing=default_channel,
        unknown=unknown_channel,
        what="lead source",
        notes=notes,
        option="lead_source_channels",
    )
    offline = OFFLINE_CHANNELS | {"crm"}
    prepared = {
        "timestamp": df[found["created"]],
        **cols,
        "channel": channel,
        "touchpoint": pd.Series(touchpoint, index=df.index, dtype="str"),
        "online": ~channel.isin(offline),
    }
    for role in ("lead_source", "owner"):
        if role in found:
            prepared[role] = df[found[role]]
    prepared.update(attributes(df, found.values(), options.drop, set(prepared)))
    frame = pd.DataFrame(prepared)
    return finish(frame, src.rows, src=src, cmap=cmap, pre=truncation(src, n), notes=notes)
