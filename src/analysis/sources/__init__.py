"""Sources: a user's exports → the canonical touchpoint table (``analysis.schema``).

- :mod:`analysis.sources.column_map`: the YAML column map, the CSV/Parquet readers and the
  validation every source goes through (bad rows → quarantine with a reason).

Adapters for known export formats live beside it, one module per format; each returns a
:class:`LoadResult` like :func:`read_events`.
"""

from analysis.sources.column_map import (
    REASONS,
    ColumnMap,
    LoadResult,
    load_events,
    read_events,
    validate_events,
)
from analysis.sources.olist import read_olist
from analysis.sources.uci import read_uci_online_shoppers

__all__ = [
    "ColumnMap",
    "LoadResult",
    "REASONS",
    "load_events",
    "read_events",
    "read_olist",
    "read_uci_online_shoppers",
    "validate_events",
]
