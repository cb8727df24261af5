"""Adapters by name, so a sources file (YAML) can say ``adapter: ga4`` instead of importing code.

Every adapter is a function ``read_<format>(path, **options) -> LoadResult``: it reads one export
(a file, or a folder where the format is several files), turns it into source rows with canonical
column names, and passes them through :func:`analysis.sources.validate_events`, so its bad rows
are quarantined with a reason and ``rows_read == rows_kept + rows_quarantined`` holds for it as
for any other file. Problems with the file as a whole raise :class:`analysis.DataError`.

Entries are ``"module:function"`` strings, imported only when used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from analysis.schema import DataError
from analysis.sources.column_map import close_matches

#: name → "module:function" of the adapter (see the module docstring for the contract).
ADAPTERS: dict[str, str] = {
    "events": "analysis.sources.column_map:read_events",  # any CSV/Parquet through a column map
    "ga4": "analysis.sources.ga4:read_ga4",  # GA4 BigQuery export (events_*), Parquet or NDJSON
    "clickstream": "analysis.sources.clickstream:read_clickstream",  # user/session/event/time log
    # CRM, sales, support, feedback and offline contacts (analysis.sources.crm)
    "crm_contacts": "analysis.sources.crm:read_contacts",
    "crm_deals": "analysis.sources.crm:read_deals",
    "support_tickets": "analysis.sources.crm:read_support_tickets",
    "feedback": "analysis.sources.crm:read_feedback",
    "offline": "analysis.sources.crm:read_offline",
    # real public data (data/external/): Olist's lead → deal funnel, UCI online shopper sessions
    "olist": "analysis.sources.olist:read_olist",
    "uci_online_shoppers": "analysis.sources.uci:read_uci_online_shoppers",
    "cdnow": "analysis.sources.cdnow:read_cdnow_events",  # CDNOW purchases (Fader & Hardie)
}


def get_adapter(name: str) -> Callable[..., Any]:
    """Return the adapter function registered as ``name``.

    The adapter function registered as ``name``; a :class:`DataError` naming the known ones
    (and the closest) when there is none.
    """
    try:
        target = ADAPTERS[name]
    except (KeyError, TypeError):
        close = close_matches(str(name), list(ADAPTERS))
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise DataError(
            f"unknown adapter {name!r}",
            column="adapter",
            fix=f"{hint}use one of: {', '.join(sorted(ADAPTERS))}",
        ) from None
    module, _, func = target.partition(":")
    return getattr(importlib.import_module(module), func)
