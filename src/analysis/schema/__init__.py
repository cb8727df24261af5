"""The canonical tables: touchpoints (columns, stage taxonomy, validation) and path tables.

- :mod:`analysis.schema.events`: the canonical touchpoint table (:data:`CANONICAL_COLUMNS`,
  :class:`StageMap`, :func:`events_schema`, :func:`validate_canonical`) and the reserved state
  names;
- :mod:`analysis.schema.paths`: the path table ``path, conversions, nulls, value`` that journeys
  and path files hand to the path models (:func:`check_paths`, :func:`explode_paths`).

The schema imports nothing of the project but :mod:`analysis.errors`; :class:`DataError` and
:func:`combine_errors` are re-exported here for the modules that import them from the schema.
"""

from analysis.errors import DataError, combine_errors
from analysis.schema.events import (
    CANONICAL_COLUMNS,
    CHECK_FINITE,
    CHECK_IDENTIFIER,
    CHECK_NON_NEGATIVE,
    CHECK_NOT_EMPTY,
    CHECK_NOT_RESERVED,
    CHECK_SENTIMENT_RANGE,
    CHECK_STAGE,
    CONVERSION,
    DEFAULT_CONVERSION_TOUCHPOINTS,
    DEFAULT_STAGE_MAP,
    DEFAULT_STAGES,
    DROPOFF,
    IDENTIFIER_COLUMNS,
    JOURNEY_COLUMNS,
    NULL,
    OFFLINE_CHANNELS,
    OPEN,
    PATH_SEP,
    RESERVED_STATES,
    START,
    TIMESTAMP_DTYPE,
    StageMap,
    events_schema,
    identifier_columns,
    validate_canonical,
)
from analysis.schema.paths import check_paths, explode_paths

__all__ = [
    "CANONICAL_COLUMNS",
    "CHECK_FINITE",
    "CHECK_IDENTIFIER",
    "CHECK_NON_NEGATIVE",
    "CHECK_NOT_EMPTY",
    "CHECK_NOT_RESERVED",
    "CHECK_SENTIMENT_RANGE",
    "CHECK_STAGE",
    "CONVERSION",
    "DEFAULT_CONVERSION_TOUCHPOINTS",
    "DEFAULT_STAGES",
    "DEFAULT_STAGE_MAP",
    "DROPOFF",
    "IDENTIFIER_COLUMNS",
    "JOURNEY_COLUMNS",
    "NULL",
    "OFFLINE_CHANNELS",
    "OPEN",
    "PATH_SEP",
    "RESERVED_STATES",
    "START",
    "TIMESTAMP_DTYPE",
    "DataError",
    "StageMap",
    "check_paths",
    "combine_errors",
    "events_schema",
    "explode_paths",
    "identifier_columns",
    "validate_canonical",
]
