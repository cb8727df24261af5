"""Readers and the YAML column map: a user's export → the canonical touchpoint table.

>>> res = read_events("export.csv", mapping="mapping.yml")    # doctest: +SKIP
>>> res.events        # canonical, validated (see analysis.schema.CANONICAL_COLUMNS)
>>> res.quarantine    # rows that break a rule: row, reason, column, then the source values
>>> res.report()      # one row per reason, with a count and an example

File-level problems (file not found, wrong delimiter, missing columns, unreadable timestamps,
a bad column map, …) raise one :class:`analysis.schema.DataError` that lists all of them.
Row-level problems never raise: the row goes to the quarantine with a reason, and always
``rows_read == rows_kept + rows_quarantined``.

The column map (YAML; every key optional)::

    columns:              # canonical name (or session_id): source column name
      timestamp: event_time
      user_id: customer_no
      channel: utm_medium
    timestamp:
      format: "%d.%m.%Y %H:%M"   # strftime format; default: ISO 8601 (mixed offsets ok)
      timezone: Europe/Berlin    # zone of naive timestamps; default UTC. Aware ones are converted.
      valid_from: 2020-01-01     # plausible window; rows outside are quarantined. Default: the
      valid_to: 2025-12-31       #   data's 0.1-99.9% range widened by its span (>= 1 year), within 1990-2100
    sentiment:
      scale: [1, 5]              # linear map of numeric scores to [-1, 1]; default: none
      labels: {positive: 1, neutral: 0, negative: -1}   # case-insensitive; merged over these defaults
    booleans: {true: [ja], false: [nein]}   # extra spellings for online/conversion
    defaults: {segment: all}     # constant for a column the source lacks
    identifiers: [device_id, user_id, account_no]   # default: schema.IDENTIFIER_COLUMNS
    stage_map:                   # see schema.StageMap.from_config; default: schema.DEFAULT_STAGE_MAP
      stages: [See, Think, Do, Care]
      touchpoints: {ad_impression: See, purchase: Do}
      transitions: {Care: [Do, (dropoff)]}   # allowed moves per from-state; default: any other stage or outcome
    conversion_touchpoints: [purchase]     # default: schema.DEFAULT_CONVERSION_TOUCHPOINTS
    read: {delimiter: ",", encoding: utf-8, decimal: "."}    # CSV only
                                 # decimal ",": "." groups thousands (1.249,50); "1.24" is quarantined

Text values lose control characters (NUL, other C0 controls except tab, DEL) before any check.
"""

from analysis.errors import close_matches
from analysis.sources.column_map.constants import (
    ALLOWED_KEYS,
    DEFAULT_SENTIMENT_LABELS,
    FALSE_SPELLINGS,
    MAPPABLE_ATTRIBUTES,
    MISSING_SPELLINGS,
    REASONS,
    REQUIRED_COLUMNS,
    SYNONYMS,
    TRUE_SPELLINGS,
)
from analysis.sources.column_map.files import (
    read_csv,
    read_parquet,
    readable_kind,
    source_stem,
    suffix_kind,
)
from analysis.sources.column_map.load import load_events, read_events, validate_events
from analysis.sources.column_map.map import ColumnMap
from analysis.sources.column_map.parse import guess_format, parse_number, show_value, to_str
from analysis.sources.column_map.result import LoadResult, Rejected
from analysis.sources.column_map.timestamps import (
    PLAUSIBLE_FROM,
    PLAUSIBLE_TO,
    plausible_window,
)
from analysis.sources.column_map.validate import validate_table

__all__ = [
    "ALLOWED_KEYS",
    "DEFAULT_SENTIMENT_LABELS",
    "FALSE_SPELLINGS",
    "MAPPABLE_ATTRIBUTES",
    "MISSING_SPELLINGS",
    "PLAUSIBLE_FROM",
    "PLAUSIBLE_TO",
    "REASONS",
    "REQUIRED_COLUMNS",
    "SYNONYMS",
    "TRUE_SPELLINGS",
    "ColumnMap",
    "LoadResult",
    "Rejected",
    "close_matches",
    "guess_format",
    "load_events",
    "parse_number",
    "plausible_window",
    "read_csv",
    "read_events",
    "read_parquet",
    "readable_kind",
    "show_value",
    "source_stem",
    "suffix_kind",
    "to_str",
    "validate_events",
    "validate_table",
]
