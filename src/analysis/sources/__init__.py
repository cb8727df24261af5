"""Sources: a user's exports → the canonical touchpoint table (``analysis.schema``).

- :mod:`analysis.sources.column_map`: the YAML column map, the CSV/Parquet readers and the
  validation every source goes through (bad rows → quarantine with a reason).

Adapters for known export formats live beside it, one module per format; each returns a
:class:`LoadResult` like :func:`read_events`.

- :mod:`analysis.sources.crm`: CRM contacts and deals, support tickets, survey feedback,
  offline contacts.
- :mod:`analysis.sources.combine`: several sources → one touchpoint table
  (:func:`combine_sources`, :func:`read_sources` for a sources YAML file).
"""

from analysis.sources.channels import DEFAULT_CHANNEL_GROUPS, group_channels, load_channel_groups
from analysis.sources.clickstream import read_clickstream
from analysis.sources.column_map import (
    REASONS,
    ColumnMap,
    LoadResult,
    load_events,
    read_events,
    validate_events,
)
from analysis.sources.combine import combine_sources, read_sources, source_counts
from analysis.sources.crm import (
    hash_email,
    hash_phone,
    read_contacts,
    read_deals,
    read_feedback,
    read_offline,
    read_support_tickets,
)
from analysis.sources.ga4 import read_ga4
from analysis.sources.olist import read_olist
from analysis.sources.paths import read_paths
from analysis.sources.uci import read_uci_online_shoppers

__all__ = [
    "DEFAULT_CHANNEL_GROUPS",
    "REASONS",
    "ColumnMap",
    "LoadResult",
    "combine_sources",
    "group_channels",
    "hash_email",
    "hash_phone",
    "load_channel_groups",
    "load_events",
    "read_clickstream",
    "read_contacts",
    "read_deals",
    "read_events",
    "read_feedback",
    "read_ga4",
    "read_offline",
    "read_olist",
    "read_paths",
    "read_sources",
    "read_support_tickets",
    "read_uci_online_shoppers",
    "source_counts",
    "validate_events",
]
