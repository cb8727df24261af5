"""Sources: a user's exports → the canonical touchpoint table (``analysis.schema``).

- :mod:`analysis.sources.column_map`: the YAML column map, the CSV/Parquet readers and the
  validation every source goes through (bad rows → quarantine with a reason).

Adapters for known export formats live beside it, one module per format; each returns a
:class:`LoadResult` like :func:`read_events`.
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
from analysis.sources.ga4 import read_ga4
from analysis.sources.paths import read_paths

__all__ = [
    "ColumnMap",
    "LoadResult",
    "REASONS",
    "load_events",
    "read_events",
    "validate_events",
    "DEFAULT_CHANNEL_GROUPS",
    "group_channels",
    "load_channel_groups",
    "read_clickstream",
    "read_ga4",
    "read_paths",
]
