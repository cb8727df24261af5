"""The column map's vocabulary: required columns, spellings, reason categories, keys."""

from __future__ import annotations

#: Attribute columns the map may fill from a source column of another name (kept as attributes,
#: as text): ``session_id`` is what ``build_journeys(journey_by="session")`` cuts on.
MAPPABLE_ATTRIBUTES = ("session_id",)

REQUIRED_COLUMNS: tuple[str, ...] = ("timestamp", "channel", "touchpoint")

#: Spellings of yes/no accepted in ``online`` and ``conversion`` (case-insensitive).
TRUE_SPELLINGS: tuple[str, ...] = ("true", "t", "yes", "y", "1", "1.0", "on")
FALSE_SPELLINGS: tuple[str, ...] = ("false", "f", "no", "n", "0", "0.0", "off")

#: Sentiment labels understood without configuration (case-insensitive).
DEFAULT_SENTIMENT_LABELS: dict[str, float] = {"positive": 1.0, "neutral": 0.0, "negative": -1.0}

#: Cell values read as missing in canonical columns (besides the empty string), case-insensitive.
#: Extra attribute columns only treat "" as missing.
MISSING_SPELLINGS: frozenset[str] = frozenset(
    {"na", "n/a", "nan", "nat", "null", "none", "<na>", "#n/a"}
)

#: Quarantine reason categories (keys of ``summary["reasons"]``).
REASONS: dict[str, str] = {
    "unparseable timestamp": "the timestamp could not be read with the expected format",
    "timestamp outside the plausible window": "the timestamp lies outside timestamp.valid_from/valid_to, or "
    "(by default) far outside the bulk of the data's times or outside 1990-2100",
    "missing timestamp": "the row has no timestamp",
    "ambiguous local time": "a local time that happens twice when clocks go back (DST)",
    "nonexistent local time": "a local time skipped when clocks go forward (DST)",
    "no identifier": "none of the identifier columns has a value",
    "empty channel": "channel is missing or blank",
    "empty touchpoint": "touchpoint is missing or blank",
    "reserved name": "channel, touchpoint or stage uses a reserved state name such as '(start)'",
    "unknown stage": "stage is not one of the stage map's stages",
    "negative revenue": "revenue below 0",
    "non-numeric revenue": "revenue is not a (finite) number",
    "sentiment out of range": "sentiment outside [-1, 1] after scaling",
    "unparseable sentiment": "sentiment is neither a number nor a known label",
    "unparseable boolean": "online or conversion is not a yes/no value",
    "too few fields": "a CSV row has fewer fields than the header (cut short, or a lost delimiter)",
    "too many fields": "a CSV row has more fields than the header (a value with an unquoted delimiter?)",
    "duplicate event_id": "event_id already used by an earlier row with different content",
    "exact duplicate": "all source values equal an earlier row (the first is kept)",
}

CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")

ALLOWED_KEYS: dict[str, tuple[str, ...]] = {
    "": (
        "columns",
        "timestamp",
        "sentiment",
        "booleans",
        "defaults",
        "identifiers",
        "stage_map",
        "conversion_touchpoints",
        "read",
    ),
    "timestamp": ("format", "timezone", "valid_from", "valid_to"),
    "sentiment": ("scale", "labels"),
    "booleans": ("true", "false"),
    "stage_map": ("stages", "touchpoints", "transitions"),
    "read": ("delimiter", "encoding", "decimal"),
}

#: Words that often name a canonical column in exports; used only to suggest a column map.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "timestamp": (
        "time",
        "date",
        "datetime",
        "ts",
        "event_time",
        "event_date",
        "created_at",
        "occurred_at",
        "when",
    ),
    "channel": (
        "medium",
        "utm_medium",
        "source",
        "utm_source",
        "marketing_channel",
        "channel_name",
    ),
    "touchpoint": (
        "event",
        "event_type",
        "event_name",
        "action",
        "activity",
        "interaction",
        "type",
    ),
    "identifier": (
        "customer",
        "client",
        "visitor",
        "account",
        "member",
        "cookie",
        "device",
        "email",
        "user",
        "id",
    ),
}

# an offset or Z after the time part: "…T10:00:00+01:00", "… 10:00Z", "…T10:00:00-0500"
ZONE_RE = r"[T ][^ ]*(?:[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)$"  # RE2-compatible: fast in pyarrow
