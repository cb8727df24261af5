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

from __future__ import annotations

import codecs
import csv
import gzip
import io
import re
import warnings
import zipfile
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from analysis.errors import close_matches
from analysis.schema import (
    CANONICAL_COLUMNS,
    CHECK_FINITE,
    CHECK_IDENTIFIER,
    CHECK_NON_NEGATIVE,
    CHECK_NOT_EMPTY,
    CHECK_NOT_RESERVED,
    CHECK_SENTIMENT_RANGE,
    CHECK_STAGE,
    DEFAULT_CONVERSION_TOUCHPOINTS,
    IDENTIFIER_COLUMNS,
    OFFLINE_CHANNELS,
    RESERVED_STATES,
    TIMESTAMP_DTYPE,
    DataError,
    StageMap,
    combine_errors,
    events_schema,
    validate_canonical,
)

#: Attribute columns the map may fill from a source column of another name (kept as attributes,
#: as text): ``session_id`` is what ``build_journeys(journey_by="session")`` cuts on.
MAPPABLE_ATTRIBUTES = ("session_id",)

__all__ = [
    "MAPPABLE_ATTRIBUTES",
    "REASONS",
    "ColumnMap",
    "LoadResult",
    "load_events",
    "read_events",
    "validate_events",
]

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

_CSV_SUFFIXES = (".csv", ".csv.gz")
_PARQUET_SUFFIXES = (".parquet", ".pq")

_ALLOWED_KEYS: dict[str, tuple[str, ...]] = {
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
_SYNONYMS: dict[str, tuple[str, ...]] = {
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
_ZONE_RE = r"[T ][^ ]*(?:[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)$"  # RE2-compatible: fast in pyarrow


# ============================================================================================
# The column map
# ============================================================================================


def _unknown_key_error(key: Any, level: str, allowed: Any, file: str) -> DataError:
    where = f"{level}.{key}" if level else str(key)
    close = close_matches(str(key), allowed)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    scope = f"under '{level}'" if level else "at the top level"
    return DataError(
        f"unknown key '{where}' in the column map{hint}",
        file=file,
        column=str(key),
        fix=f"use one of the keys allowed {scope}: {', '.join(allowed)}",
    )


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)
    return [value]


def _yaml_key(key: Any) -> str:
    # YAML 1.1 reads `true:`/`yes:` as booleans
    return str(key).lower() if isinstance(key, bool) else str(key)


def _not_mapping_error(level: str, value: Any, file: str | None, fix: str) -> DataError:
    """A column-map section that should be a mapping (``key: value``) but is not."""
    return DataError(
        f"'{level}' in the column map must be a mapping, got {value!r}",
        file=file,
        column=level,
        fix=fix,
    )


@dataclass
class ColumnMap:
    """How a source's columns become the canonical table. Build with :meth:`from_yaml` or
    :meth:`from_dict`; ``ColumnMap()`` means "the source already uses canonical names".

    Attributes
    ----------
    columns : dict
        Canonical (or extra identifier) name → source column name. Default: none.
    timestamp_format : str or None
        strftime format of the timestamps. Default ``None``: ISO 8601, mixed offsets allowed.
    timezone : str
        IANA zone of timestamps without an offset. Default ``"UTC"``.
    sentiment_scale : (float, float) or None
        Numeric sentiment scores are mapped linearly from this range to [-1, 1]. Default: none.
    sentiment_labels : dict
        Text label → sentiment in [-1, 1] (case-insensitive). Default: positive/neutral/negative.
    true_values, false_values : tuple of str
        Spellings of yes/no in ``online``/``conversion`` (lower case). Defaults plus extras.
    defaults : dict
        Constant for a column the source lacks (e.g. ``{"segment": "all"}``).
    identifiers : tuple of str
        Identifier columns. Default :data:`analysis.schema.IDENTIFIER_COLUMNS`.
    stage_map : StageMap
        Stages and the touchpoint → stage map. Default :class:`StageMap()`.
    conversion_touchpoints : tuple of str
        Touchpoints that are conversions when the source has no ``conversion`` column.
    delimiter, encoding, decimal : str
        CSV reading: ``","``, ``"utf-8"`` (a byte-order mark is accepted), ``"."``.
    valid_from, valid_to : Timestamp (UTC) or None
        The plausible window of timestamps (``timestamp: {valid_from: ..., valid_to: ...}``);
        rows outside are quarantined. A date without a time as ``valid_to`` includes that day.
        Default (``None``): derived from the data, see :func:`_plausible_window`.
    source : str or None
        The YAML file the map came from (named in error messages).
    """

    columns: dict[str, str] = field(default_factory=dict)
    timestamp_format: str | None = None
    timezone: str = "UTC"
    sentiment_scale: tuple[float, float] | None = None
    sentiment_labels: dict[str, float] = field(
        default_factory=lambda: dict(DEFAULT_SENTIMENT_LABELS)
    )
    true_values: tuple[str, ...] = TRUE_SPELLINGS
    false_values: tuple[str, ...] = FALSE_SPELLINGS
    defaults: dict[str, Any] = field(default_factory=dict)
    identifiers: tuple[str, ...] = IDENTIFIER_COLUMNS
    stage_map: StageMap = field(default_factory=StageMap)
    conversion_touchpoints: tuple[str, ...] = DEFAULT_CONVERSION_TOUCHPOINTS
    delimiter: str = ","
    encoding: str = "utf-8"
    decimal: str = "."
    source: str | None = None
    timezone_given: bool = False
    valid_from: pd.Timestamp | None = None
    valid_to: pd.Timestamp | None = None

    # ----------------------------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: str | Path) -> ColumnMap:
        """Read a column map from a YAML file (see the module docstring for the keys)."""
        path = Path(path)
        if not path.is_file():
            raise DataError(
                "column map not found",
                file=str(path),
                fix="check the path of the mapping file (a YAML file with keys such as `columns:`)",
            )
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            rows = [mark.line + 1] if mark is not None else None
            raise DataError(
                f"the column map is not valid YAML: {getattr(exc, 'problem', exc)}",
                file=str(path),
                rows=rows,
                fix="fix the YAML syntax at that line (indentation, a missing ':' or quotes)",
            ) from None
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None, source: str | None = None) -> ColumnMap:
        """Build from a dict with the YAML's structure; all problems raise one DataError."""
        file = source or "<column map>"
        if d is None:
            return cls(source=source)
        if not isinstance(d, dict):
            raise DataError(
                f"the column map must be a mapping of keys (columns:, timestamp:, …), got {type(d).__name__}",
                file=file,
                fix="start the file with e.g. `columns: {timestamp: event_time}`",
            )
        errors: list[DataError] = []
        kw: dict[str, Any] = {"source": source}

        def check_keys(sub: Any, level: str) -> dict[str, Any]:
            if sub is None:
                return {}
            if not isinstance(sub, dict):
                errors.append(
                    _not_mapping_error(
                        level,
                        sub,
                        file,
                        f"write it as `{level}: {{key: value}}`; allowed keys: {', '.join(_ALLOWED_KEYS[level])}",
                    )
                )
                return {}
            out = {}
            for k, v in sub.items():
                key = _yaml_key(k)
                if key not in _ALLOWED_KEYS[level]:
                    errors.append(_unknown_key_error(key, level, _ALLOWED_KEYS[level], file))
                else:
                    out[key] = v
            return out

        top = check_keys(d, "")

        # identifiers first: they extend the names `columns` and `defaults` accept
        identifiers = IDENTIFIER_COLUMNS
        if "identifiers" in top:
            ids = [str(x) for x in _as_list(top["identifiers"]) if x is not None]
            if not ids:
                errors.append(
                    DataError(
                        "'identifiers' in the column map is empty",
                        file=file,
                        column="identifiers",
                        fix=f"list the identifier columns, e.g. identifiers: [{', '.join(IDENTIFIER_COLUMNS[:3])}]",
                    )
                )
            else:
                identifiers = tuple(dict.fromkeys(ids))
                kw["identifiers"] = identifiers
        known_names = (
            list(CANONICAL_COLUMNS)
            + [c for c in identifiers if c not in CANONICAL_COLUMNS]
            + [c for c in MAPPABLE_ATTRIBUTES if c not in CANONICAL_COLUMNS]
        )

        for level in ("columns", "defaults"):
            if level not in top:
                continue
            sub = top[level]
            if sub is None:
                continue
            if not isinstance(sub, dict):
                example = "{timestamp: event_time}" if level == "columns" else "{segment: all}"
                errors.append(
                    _not_mapping_error(level, sub, file, f"write it as `{level}: {example}`")
                )
                continue
            out: dict[str, Any] = {}
            for k, v in sub.items():
                key = str(k)
                if key not in known_names:
                    close = close_matches(key, known_names)
                    hint = f" (did you mean '{close[0]}'?)" if close else ""
                    errors.append(
                        DataError(
                            f"unknown key '{level}.{key}' in the column map: not a canonical column{hint}",
                            file=file,
                            column=key,
                            fix=f"use a canonical column name ({', '.join(known_names)}); "
                            "to use an extra identifier, list it under `identifiers:` as well",
                        )
                    )
                    continue
                if level == "columns":
                    if v is None or isinstance(v, (list, dict)):
                        errors.append(
                            DataError(
                                f"'columns.{key}' must name one source column, got {v!r}",
                                file=file,
                                column=key,
                                fix=f"write `{key}: <your column name>`",
                            )
                        )
                        continue
                    out[key] = str(v)
                else:
                    out[key] = _yaml_key(v) if isinstance(v, bool) else v
            kw[level] = out

        ts = check_keys(top.get("timestamp"), "timestamp")
        if ts.get("format") is not None:
            kw["timestamp_format"] = str(ts["format"])
        if "timezone" in ts:
            tz = str(ts["timezone"])
            try:
                zoneinfo.ZoneInfo(tz)
                kw["timezone"] = tz
                kw["timezone_given"] = True
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                close = close_matches(tz, sorted(zoneinfo.available_timezones()), n=3)
                hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
                errors.append(
                    DataError(
                        f"unknown time zone '{tz}' in timestamp.timezone{hint}",
                        file=file,
                        column="timestamp",
                        fix="use an IANA time zone name such as Europe/Berlin, America/New_York or UTC",
                    )
                )

        for key in ("valid_from", "valid_to"):
            if ts.get(key) is None:
                continue
            raw = ts[key]
            try:
                t = pd.Timestamp(str(raw))
                if pd.isna(t):
                    raise ValueError
                t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
                if key == "valid_to" and re.fullmatch(r"\s*\d{4}-\d{2}-\d{2}\s*", str(raw)):
                    t = t + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)  # the whole day
                kw[key] = t.as_unit("us")
            except (ValueError, TypeError, OverflowError):
                errors.append(
                    DataError(
                        f"timestamp.{key} {raw!r} is not a date",
                        file=file,
                        column="timestamp",
                        fix=f"write an ISO 8601 date or time, e.g. timestamp: {{{key}: 2020-01-01}}",
                    )
                )
        if (
            kw.get("valid_from") is not None
            and kw.get("valid_to") is not None
            and kw["valid_from"] > kw["valid_to"]
        ):
            errors.append(
                DataError(
                    "timestamp.valid_from is after timestamp.valid_to",
                    file=file,
                    column="timestamp",
                    fix="swap them: valid_from is the earliest plausible time, valid_to the latest",
                )
            )

        se = check_keys(top.get("sentiment"), "sentiment")
        if se.get("scale") is not None:
            scale = _as_list(se["scale"])
            ok = len(scale) == 2 and all(
                isinstance(x, (int, float)) and not isinstance(x, bool) for x in scale
            )
            if ok and float(scale[0]) < float(scale[1]):
                kw["sentiment_scale"] = (float(scale[0]), float(scale[1]))
            else:
                errors.append(
                    DataError(
                        f"sentiment.scale must be two numbers [low, high] with low < high, got {se['scale']!r}",
                        file=file,
                        column="sentiment",
                        fix="e.g. sentiment: {scale: [1, 5]}",
                    )
                )
        if se.get("labels") is not None:
            labels = se["labels"]
            if not isinstance(labels, dict):
                errors.append(
                    DataError(
                        f"sentiment.labels must map labels to numbers in [-1, 1], got {labels!r}",
                        file=file,
                        column="sentiment",
                        fix="e.g. sentiment: {labels: {positive: 1, neutral: 0, negative: -1}}",
                    )
                )
            else:
                merged = dict(DEFAULT_SENTIMENT_LABELS)
                for k, v in labels.items():
                    if isinstance(v, bool) or not isinstance(v, (int, float)) or not -1 <= v <= 1:
                        errors.append(
                            DataError(
                                f"sentiment.labels.{_yaml_key(k)} must be a number in [-1, 1], got {v!r}",
                                file=file,
                                column="sentiment",
                                fix="labels give the final sentiment, e.g. {positive: 1, negative: -1}",
                            )
                        )
                        continue
                    merged[_yaml_key(k).strip().lower()] = float(v)
                kw["sentiment_labels"] = merged

        bo = check_keys(top.get("booleans"), "booleans")
        spell: dict[bool, list[str]] = {True: list(TRUE_SPELLINGS), False: list(FALSE_SPELLINGS)}
        for key, polarity in (("true", True), ("false", False)):
            for v in _as_list(bo.get(key)):
                if isinstance(v, bool):
                    if v is not polarity:  # YAML read e.g. `no` as False: the user meant the word
                        errors.append(
                            DataError(
                                f"booleans.{key} contains {v!r}: YAML reads unquoted yes/no/on/off as booleans",
                                file=file,
                                column=key,
                                fix="quote the spelling, e.g. booleans: {true: ['no']}",
                            )
                        )
                    continue  # yes/true/on and no/false/off are accepted anyway
                spell[polarity].append(str(v).strip().lower())
        both = sorted(set(spell[True]) & set(spell[False]))
        if both:
            errors.append(
                DataError(
                    f"booleans: {', '.join(repr(b) for b in both)} listed as both true and false",
                    file=file,
                    fix="list each spelling under `true:` or `false:`, not both",
                )
            )
        kw["true_values"] = tuple(dict.fromkeys(spell[True]))
        kw["false_values"] = tuple(dict.fromkeys(spell[False]))

        if "stage_map" in top and top["stage_map"] is not None:
            sm = top["stage_map"]
            if isinstance(sm, StageMap):
                kw["stage_map"] = sm
            else:
                sm = check_keys(sm, "stage_map")
                try:
                    if "touchpoints" in sm and not isinstance(sm["touchpoints"], dict):
                        raise ValueError("stage_map.touchpoints must map touchpoint → stage")
                    cfg = {}
                    if "stages" in sm:
                        cfg["stages"] = [str(s) for s in _as_list(sm["stages"])]
                    if "touchpoints" in sm:
                        cfg["touchpoints"] = {str(k): str(v) for k, v in sm["touchpoints"].items()}
                    if sm.get("transitions") is not None:
                        if not isinstance(sm["transitions"], dict):
                            raise ValueError(
                                "stage_map.transitions must map from-state → list of to-states"
                            )
                        cfg["transitions"] = {
                            str(k): [str(t) for t in _as_list(v)]
                            for k, v in sm["transitions"].items()
                        }
                    kw["stage_map"] = StageMap.from_config(cfg) if cfg else StageMap()
                except ValueError as exc:
                    errors.append(
                        DataError(
                            f"invalid stage_map: {exc}",
                            file=file,
                            column="stage",
                            fix="stage_map: {stages: [See, Think, Do, Care], touchpoints: {purchase: Do}}",
                        )
                    )

        if "conversion_touchpoints" in top:
            kw["conversion_touchpoints"] = tuple(
                str(x) for x in _as_list(top["conversion_touchpoints"])
            )

        rd = check_keys(top.get("read"), "read")
        if "delimiter" in rd:
            delim = str(rd["delimiter"])
            if delim.lower() in ("tab", "\\t"):
                delim = "\t"
            if len(delim) != 1:
                errors.append(
                    DataError(
                        f"read.delimiter must be one character, got {rd['delimiter']!r}",
                        file=file,
                        fix='e.g. read: {delimiter: ";"} or read: {delimiter: "\\t"}',
                    )
                )
            else:
                kw["delimiter"] = delim
        if "encoding" in rd:
            enc = str(rd["encoding"])
            try:
                codecs.lookup(enc)
                kw["encoding"] = enc
            except LookupError:
                errors.append(
                    DataError(
                        f"unknown encoding '{enc}' in read.encoding",
                        file=file,
                        fix="use e.g. utf-8, latin-1 or cp1252",
                    )
                )
        if "decimal" in rd:
            dec = str(rd["decimal"])
            if dec not in (".", ","):
                errors.append(
                    DataError(
                        f"read.decimal must be '.' or ',', got {dec!r}",
                        file=file,
                        fix='read: {decimal: ","}',
                    )
                )
            else:
                kw["decimal"] = dec

        if errors:
            raise combine_errors(errors, file=file)
        return cls(**kw)

    @classmethod
    def coerce(cls, mapping: Any) -> ColumnMap:
        """``None``, a dict, a path to YAML or a ColumnMap → ColumnMap."""
        if mapping is None:
            return cls()
        if isinstance(mapping, ColumnMap):
            return mapping
        if isinstance(mapping, dict):
            return cls.from_dict(mapping)
        if isinstance(mapping, (str, Path)):
            return cls.from_yaml(mapping)
        raise TypeError(
            f"mapping must be None, a dict, a YAML path or a ColumnMap, not {type(mapping).__name__}"
        )


# ============================================================================================
# The result
# ============================================================================================


@dataclass
class LoadResult:
    """What loading produced.

    Attributes
    ----------
    events : DataFrame
        The canonical table: canonical columns in schema order, then extra attribute columns
        as they came; RangeIndex. ``events.attrs["load_report"]`` holds ``summary``.
    quarantine : DataFrame
        One row per rejected source row: ``row`` (CSV: line as a spreadsheet shows it, header =
        1; Parquet/DataFrame: 1-based record number), ``reason`` (all reasons, joined by "; "),
        ``column`` (offending column(s) or None), then the source values as strings (a source
        column named row/reason/column appears as "<name> (source)").
    summary : dict
        file, rows_read, rows_kept, rows_quarantined, duplicates (exact duplicates removed),
        blank_rows (blank CSV lines skipped, not counted as read), reasons ({category: rows};
        a row with several problems counts once per category), notes (sentences),
        identifiers (identifier columns of ``events``), stages, mapping (YAML path or None).
    examples : dict
        Per reason category: the first quarantined row (``row``, ``column``, ``reason``);
        used by :meth:`report`.
    """

    events: pd.DataFrame
    quarantine: pd.DataFrame
    summary: dict[str, Any]
    examples: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        s = self.summary
        if not (
            s["rows_read"] == s["rows_kept"] + s["rows_quarantined"]
            and s["rows_kept"] == len(self.events)
            and s["rows_quarantined"] == len(self.quarantine)
        ):
            raise AssertionError(
                f"row accounting broken (a bug in analysis.sources): read {s['rows_read']}, "
                f"kept {s['rows_kept']} ({len(self.events)} events), quarantined "
                f"{s['rows_quarantined']} ({len(self.quarantine)} rows)"
            )

    def report(self) -> pd.DataFrame:
        """One row per quarantine reason: reason, column, rows (count), example_row, example."""
        rows = [
            {
                "reason": cat,
                "column": ex.get("column"),
                "rows": int(n),
                "example_row": ex.get("row"),
                "example": ex.get("reason"),
            }
            for cat, n in self.summary["reasons"].items()
            for ex in [self.examples.get(cat, {})]
        ]
        out = pd.DataFrame(rows, columns=["reason", "column", "rows", "example_row", "example"])
        return out.sort_values("rows", ascending=False, kind="stable").reset_index(drop=True)

    def __repr__(self) -> str:
        s = self.summary
        return (
            f"LoadResult(file={s['file']!r}, rows_read={s['rows_read']:,}, rows_kept={s['rows_kept']:,}, "
            f"rows_quarantined={s['rows_quarantined']:,}, reasons={s['reasons']})"
        )


# ============================================================================================
# Reading files
# ============================================================================================


def suffix_kind(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(_CSV_SUFFIXES):
        return "csv"
    if name.endswith(_PARQUET_SUFFIXES):
        return "parquet"
    return None


def source_stem(source: str) -> str:
    name = Path(str(source)).name
    if not name or name.startswith("<"):
        return "row"
    for suf in (".csv.gz", ".csv", ".parquet", ".pq"):
        if name.lower().endswith(suf):
            return name[: -len(suf)]
    return Path(name).stem


def _sniff_compression(path: Path) -> tuple[str | None, str | None]:
    """("gzip" / "zip" / None, a note when the name does not say so), from the magic bytes."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    name = path.name.lower()
    if head[:2] == b"\x1f\x8b":
        note = (
            None
            if name.endswith(".gz")
            else (
                "the file is gzip-compressed although its name ends in .csv: it was read unpacked "
                "(name it .csv.gz to make that plain)"
            )
        )
        return "gzip", note
    if head == b"PK\x03\x04":
        note = (
            None
            if name.endswith(".zip")
            else (
                "the file is a zip archive although its name ends in .csv: its one CSV file was read"
            )
        )
        return "zip", note
    return None, None


def _open_text(path: Path, enc: str, compression: str | None) -> Any:
    if compression == "gzip":
        return gzip.open(path, "rt", encoding=enc, newline="")
    if compression == "zip":
        z = zipfile.ZipFile(path)
        names = [n for n in z.namelist() if not n.endswith("/")]
        return io.TextIOWrapper(z.open(names[0]), encoding=enc, newline="")
    return open(path, encoding=enc, newline="")


def _field_counts(
    path: Path, cmap: ColumnMap, enc: str, compression: str | None
) -> np.ndarray | None:
    """Fields per CSV record (header first; a blank line has 0), with the quoting pandas uses;
    None when the csv module cannot read the file (pandas' reading then stands alone).
    """
    try:
        csv.field_size_limit(2**31 - 1)
        with _open_text(path, enc, compression) as fh:
            return np.fromiter(
                (len(r) for r in csv.reader(fh, delimiter=cmap.delimiter)), dtype="int64"
            )
    except (csv.Error, UnicodeDecodeError, OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None


def read_csv(
    path: Path, cmap: ColumnMap, *, ragged_ok: bool = False
) -> tuple[pd.DataFrame, np.ndarray, list[int]]:
    """A CSV file as text columns, its row numbers (header = 1) and the blank lines skipped.

    File-level problems raise DataError: empty, not decodable, a header read as one column,
    a duplicate column name (both positions named), most rows with another field count than
    the header. Gzip or zip content is read whatever the name says (with a note). The reading
    notes and the rows with the wrong number of fields (too few / too many, fewer than half of
    the rows) are left in ``df.attrs["read_notes"]`` and ``df.attrs["ragged"]`` ({position:
    (category, reason)}) for :func:`read_events`; a trailing delimiter on every data row
    (one more, empty, field than the header) is dropped with a note. Without ``ragged_ok``
    (the adapters, which do not quarantine them) any row with too many fields is an error.
    """
    file = str(path)
    enc = cmap.encoding
    if codecs.lookup(enc).name == "utf-8":
        enc = "utf-8-sig"  # accept the byte-order mark spreadsheet programs write
    compression, note = _sniff_compression(path)
    notes = [note] if note else []
    if compression == "zip":
        try:
            with zipfile.ZipFile(path) as z:
                names = [n for n in z.namelist() if not n.endswith("/")]
        except zipfile.BadZipFile:
            raise DataError(
                "the file starts like a zip archive but is damaged (cut short?)",
                file=file,
                fix="download or export it again; unpack it and pass the CSV file inside",
            ) from None
        if "[Content_Types].xml" in names:
            raise DataError(
                "this is an Excel workbook (.xlsx), not a CSV file",
                file=file,
                fix="open it in Excel or LibreOffice and save the sheet as CSV (UTF-8)",
            )
        if len(names) != 1:
            raise DataError(
                f"this is a zip archive with {len(names)} files, not a CSV file",
                file=file,
                fix="unpack it and pass the CSV file inside",
            )
    counts = _field_counts(path, cmap, enc, compression)
    width = int(counts.max()) if counts is not None and len(counts) else None
    try:
        df = pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            sep=cmap.delimiter,
            encoding=enc,
            skip_blank_lines=False,
            compression=compression,
            header=None,
            names=list(range(width)) if width else None,
            index_col=False,
        )
    except pd.errors.EmptyDataError:
        raise DataError(
            "the file is empty: no header and no data rows",
            file=file,
            fix="export the data again; the first line must be the header (column names)",
        ) from None
    except UnicodeDecodeError as exc:
        raise DataError(
            f"the file is not valid {cmap.encoding} text ({exc.reason} at byte {exc.start})",
            file=file,
            fix="set the file's encoding in the column map, e.g. read: {encoding: latin-1}",
        ) from None
    except pd.errors.ParserError as exc:
        m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if m:
            expected, line, saw = (int(g) for g in m.groups())
            raise DataError(
                f"row {line} has {saw} fields but the header has {expected}",
                file=file,
                rows=[line],
                fix=f"quote values that contain the delimiter {cmap.delimiter!r}, or set the right "
                'delimiter in the column map (read: {delimiter: ";"})',
            ) from None
        raise DataError(
            f"the file could not be read as CSV: {exc}",
            file=file,
            fix="check quoting and delimiter",
        ) from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"the file could not be read{' as ' + compression if compression else ''}: {exc}",
            file=file,
            fix="check that the file is a complete CSV export (unpack it if it is compressed)",
        ) from None
    if len(df) == 0:
        raise DataError(
            "the file is empty: no header and no data rows",
            file=file,
            fix="export the data again; the first line must be the header (column names)",
        )
    if counts is not None and len(counts) != len(df):
        counts = None  # the two parsers disagree on the records: trust pandas alone
    header = [str(v) for v in df.iloc[0].tolist()]
    df = df.iloc[1:].reset_index(drop=True)
    n_head = int(counts[0]) if counts is not None else len(header)
    header = header[:n_head]
    data_counts = counts[1:] if counts is not None else np.full(len(df), n_head, dtype="int64")

    # a trailing delimiter on every data row: one more field than the header, always empty
    filled = data_counts > 0
    if (
        width is not None
        and filled.any()
        and (data_counts[filled] == n_head + 1).all()
        and (df.loc[filled, n_head] == "").all()
    ):
        notes.append(
            f"every data row ends with an extra empty field (a trailing {cmap.delimiter!r} after the last "
            f"column): the header has {n_head} fields, the rows {n_head + 1}; the empty last field was dropped"
        )
        data_counts = np.where(filled, n_head, data_counts)

    names = []
    seen: dict[str, int] = {}
    for i, h in enumerate(header):
        name = h if h != "" else f"Unnamed: {i}"
        if name in seen and h != "":
            first = seen[name]
            raise DataError(
                f"duplicate column name '{name}' in the header: columns {first + 1} and {i + 1}",
                file=file,
                column=name,
                fix=f"rename one of the two '{name}' columns in the file (or drop the copy), so each "
                "column name appears once",
            )
        seen.setdefault(name, i)
        names.append(name)
    df = df.iloc[:, :n_head]
    df.columns = names
    # a header read as one column that holds another delimiter: wrong delimiter
    if len(df.columns) == 1:
        header = df.columns[0]
        counts_d = {d: header.count(d) for d in (";", "\t", "|", ",") if d != cmap.delimiter}
        best = max(counts_d, key=counts_d.get)
        if counts_d[best] > 0:
            shown = {";": '";"', "\t": '"\\t"', "|": '"|"', ",": '","'}[best]
            name = {";": "semicolon", "\t": "tab", "|": "pipe", ",": "comma"}[best]
            raise DataError(
                f"the header was read as a single column ({header[:80]!r}): the file looks "
                f"{name}-delimited ({shown}), not {cmap.delimiter!r}-delimited",
                file=file,
                column=header[:80],
                fix=f"set the delimiter in the column map: read: {{delimiter: {shown}}}",
            )
    rows = np.arange(2, len(df) + 2, dtype="int64")
    blank: list[int] = []
    if len(df) and len(df.columns):
        is_blank = (df == "").all(axis=1).to_numpy() | (data_counts == 0)
        if is_blank.any():
            blank = rows[is_blank].tolist()
            df = df.loc[~is_blank].reset_index(drop=True)
            rows = rows[~is_blank]
            data_counts = data_counts[~is_blank]
    if len(df) == 0:
        raise DataError(
            f"the file has a header ({', '.join(df.columns[:8])}) but no data rows",
            file=file,
            fix="check the export: it produced only the header line",
        )
    ragged: dict[int, tuple[str, str]] = {}
    wrong = np.flatnonzero(data_counts != n_head)
    if len(wrong):
        too_many = not ragged_ok and bool((data_counts > n_head).any())
        if too_many or 2 * len(wrong) >= len(
            df
        ):  # most rows: the delimiter or the quoting, not a few rows
            if too_many:
                wrong = np.flatnonzero(data_counts > n_head)
            p = int(wrong[0])
            raise DataError(
                f"row {rows[p]} has {data_counts[p]} fields but the header has {n_head} "
                f"({_count(len(wrong), 'row')} of {len(df):,} with another number of fields)",
                file=file,
                rows=[int(r) for r in rows[wrong[:20]]],
                fix=f"quote values that contain the delimiter {cmap.delimiter!r}, or set the right "
                'delimiter in the column map (read: {delimiter: ";"})',
            )
        for p in wrong:
            c = int(data_counts[p])
            if c < n_head:
                ragged[int(p)] = (
                    "too few fields",
                    f"row {rows[p]} has {c} fields, the header has {n_head}: "
                    "the row was cut short or lost a delimiter",
                )
            else:
                ragged[int(p)] = (
                    "too many fields",
                    f"row {rows[p]} has {c} fields, the header has {n_head}: "
                    f"a value holds an unquoted {cmap.delimiter!r}? quote it",
                )
    df.attrs["read_notes"] = notes
    df.attrs["ragged"] = ragged
    return df, rows, blank


def read_parquet(path: Path) -> pd.DataFrame:
    file = str(path)
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types
        raise DataError(
            f"the file could not be read as Parquet: {exc}",
            file=file,
            fix="check that the file is Parquet (not CSV renamed), or export it again",
        ) from None
    if not isinstance(df.index, pd.RangeIndex):
        df = df.reset_index()  # an index stored in the file is data: keep it as columns
    df.columns = [str(c) for c in df.columns]
    if len(df) == 0:
        raise DataError(
            f"the file has columns ({', '.join(df.columns[:8])}) but no data rows",
            file=file,
            fix="check the export: it produced no rows",
        )
    return df.reset_index(drop=True)


def read_events(path: str | Path, mapping: Any = None) -> LoadResult:
    """Read a CSV (``.csv``, ``.csv.gz``) or Parquet (``.parquet``, ``.pq``) export into the
    canonical table.

    CSV is read as text (every column a string, "" = missing) and each column is parsed
    explicitly; Parquet columns may already be typed. See :func:`validate_events`.

    Parameters
    ----------
    path : str or Path
    mapping : None, dict, str/Path of a YAML file, or ColumnMap
        The column map (see the module docstring). ``None``: canonical names, defaults.

    Returns
    -------
    LoadResult

    Raises
    ------
    DataError
        For problems with the file as a whole (all of them together).
    """
    cmap = ColumnMap.coerce(mapping)
    path = Path(path)
    file = str(path)
    if not path.exists():
        folder = path.parent if str(path.parent) else Path(".")
        hint = ""
        if folder.is_dir():
            names = sorted(p.name for p in folder.iterdir() if suffix_kind(p))
            close = close_matches(path.name, names, n=3)
            if close:
                hint = f"; did you mean {', '.join(repr(c) for c in close)}?"
            elif names:
                hint = f"; data files there: {', '.join(names[:8])}"
        else:
            hint = f"; the folder {str(folder)!r} does not exist either"
        raise DataError("file not found", file=file, fix=f"check the path{hint}")
    if path.is_dir():
        raise DataError(
            "expected a file, got a folder",
            file=file,
            fix="pass the path of one CSV or Parquet file",
        )
    kind = suffix_kind(path)
    if kind is None:
        raise DataError(
            f"unsupported file type {''.join(path.suffixes) or '(no extension)'!r}",
            file=file,
            fix="export the data as CSV (.csv, .csv.gz) or Parquet (.parquet, .pq)",
        )
    if path.stat().st_size == 0:
        raise DataError("the file is empty (0 bytes)", file=file, fix="export the data again")
    if kind == "csv":
        df, rows, blank = read_csv(path, cmap, ragged_ok=True)
        read_notes, ragged = df.attrs.pop("read_notes", []), df.attrs.pop("ragged", {})
        return validate_table(
            df,
            source=file,
            cmap=cmap,
            rows=rows,
            blank_rows=blank,
            read_notes=read_notes,
            ragged=ragged,
        )
    df = read_parquet(path)
    return validate_table(df, source=file, cmap=cmap, rows=np.arange(1, len(df) + 1, dtype="int64"))


def load_events(path: str | Path, mapping: Any = None) -> pd.DataFrame:
    """The canonical, validated events of a file; ``events.attrs["load_report"]`` holds the
    summary (counts and notes; see :class:`LoadResult`). Quarantined rows are reported in the
    summary; use :func:`read_events` to get them as a table.

    Raises
    ------
    DataError
        For problems with the file as a whole.
    """
    res = read_events(path, mapping)
    ev = res.events
    ev.attrs["load_report"] = dict(res.summary)
    return ev


def validate_events(
    df: pd.DataFrame,
    *,
    source: str = "<DataFrame>",
    mapping: Any = None,
    first_row: int = 1,
    rows: Any = None,
) -> LoadResult:
    """Map, parse, check and derive the canonical table from a raw DataFrame.

    Parameters
    ----------
    df : DataFrame
        Source rows: strings (as read from CSV) or typed columns (as from Parquet).
    source : str
        Named in messages; its stem makes generated event ids (``"<stem>:<row>"``).
    mapping : None, dict, YAML path or ColumnMap
    first_row : int
        Row number of the first row in messages and the quarantine (1 = record numbers).
    rows : sequence of int, optional
        The row number of every row instead (one per row; numbers may repeat), for adapters
        whose rows derive from source lines, e.g. two touchpoints made from one CSV line.

    Returns
    -------
    LoadResult
        ``events`` hold the rows that pass every rule of
        :func:`analysis.schema.events_schema`; the others are in ``quarantine`` with reasons.

    Notes
    -----
    Required: ``timestamp``, ``channel``, ``touchpoint`` and at least one identifier column.
    Derived when absent: ``event_id`` (``"<stem>:<row>"``), ``online`` (channel not in
    OFFLINE_CHANNELS), ``campaign`` (missing), ``stage`` (stage map by touchpoint), ``conversion``
    (touchpoint in conversion_touchpoints), ``revenue``/``sentiment`` (missing), ``segment``
    ("all"). Empty cells of event_id/online/stage/conversion/segment are derived the same way.
    Lookups of channels, touchpoints and stages in the maps are case-insensitive.
    """
    cmap = ColumnMap.coerce(mapping)
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"expected a pandas DataFrame, got {type(df).__name__}", file=source)
    if len(df) == 0:
        raise DataError("no data rows", file=source, fix="pass a DataFrame with at least one row")
    if rows is None:
        rows = np.arange(first_row, first_row + len(df), dtype="int64")
    else:
        rows = np.asarray(rows, dtype="int64")
        if rows.shape != (len(df),):
            raise ValueError(
                f"rows: expected {len(df)} row numbers (one per row), got shape {rows.shape}"
            )
    df = df.reset_index(drop=True)
    df.columns = [str(c) for c in df.columns]
    return validate_table(df, source=source, cmap=cmap, rows=rows)


# ============================================================================================
# Parsing columns (vectorised); each parser returns values and row issues
# ============================================================================================


@dataclass
class _Issue:
    category: str
    column: str | None
    pos: np.ndarray  # positions (0-based) of the bad rows
    reason: list[str]  # one reason per position


def show_value(value: Any, limit: int = 60) -> str:
    text = str(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"'{text}'"


def _is_text(s: pd.Series) -> bool:
    return s.dtype == object or isinstance(s.dtype, pd.StringDtype)


#: C0 control characters except tab, and DEL: removed from text values (a NUL or an ANSI escape
#: would otherwise make "email\x00" a channel of its own, or reach a terminal).
_CONTROL_RE = r"[\x00-\x08\x0a-\x1f\x7f]"


def _strip_controls(s: pd.Series) -> pd.Series:
    """Text with C0 control characters (except tab) and DEL removed; a run of line breaks
    (CR, LF, vertical tab, form feed) becomes one space, so words do not run together.
    """
    has = s.str.contains(_CONTROL_RE, regex=True, na=False)
    if not has.any():
        return s
    fixed = (
        s[has]
        .str.replace(r"[\n\r\x0b\x0c]+", " ", regex=True)
        .str.replace(_CONTROL_RE, "", regex=True)
    )
    return s.mask(has, fixed)


def to_str(s: pd.Series, *, missing_words: bool = True) -> pd.Series:
    """Values as pandas "str", stripped; "", and (``missing_words``) NA spellings → NaN."""
    if _is_text(s):
        out = s.astype("str")
    elif pd.api.types.is_float_dtype(s.dtype):
        v = s.to_numpy(dtype="float64", na_value=np.nan)
        fin = v[np.isfinite(v)]
        out = s.astype("Int64").astype("str") if np.all(fin == np.round(fin)) else s.astype("str")
    else:
        out = s.astype("str")
    out = _strip_controls(out).str.strip()
    bad = out == ""
    if missing_words:
        bad = bad | out.str.lower().isin(MISSING_SPELLINGS)
    return out.mask(bad.fillna(False))


def guess_format(values: pd.Series) -> str | None:
    """A strftime format that parses most of ``values`` (a small sample), or None."""
    from pandas.tseries.api import guess_datetime_format

    sample = values.dropna().head(200)
    candidates: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for v in sample.head(5):
            for dayfirst in (True, False):
                f = guess_datetime_format(str(v), dayfirst=dayfirst)
                if f and f not in candidates:
                    candidates.append(f)
        best, best_n = None, 0
        for f in candidates:
            n = int(pd.to_datetime(sample, format=f, errors="coerce").notna().sum())
            if n > best_n:
                best, best_n = f, n
    return best


_EPOCH_UNIT_WORDS = {
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
}


def _epoch_unit(text: pd.Series) -> str:
    """The unit of Unix epoch numbers from their size: times since 1973 in seconds have 9-10
    digits (< 1e11 until year 5138), in ms < 1e14, in µs < 1e17, else ns.
    """
    mag = float(pd.to_numeric(text.dropna(), errors="coerce").abs().median())
    return "s" if mag < 1e11 else "ms" if mag < 1e14 else "us" if mag < 1e17 else "ns"


def _parse_timestamps(
    s: pd.Series, cmap: ColumnMap, rows: np.ndarray, source_name: str
) -> tuple[pd.Series, list[_Issue], DataError | None, int]:
    """Parse to UTC (TIMESTAMP_DTYPE). Returns values, issues, a file-level error, #naive."""
    n = len(s)
    tz = cmap.timezone
    issues: list[_Issue] = []
    fmt = cmap.timestamp_format
    expected = (
        f"expected format {fmt!r}" if fmt else "expected ISO 8601, e.g. 2024-03-01T14:30:00+01:00"
    )
    text: pd.Series | None = None
    naive: pd.Series | None = None  # naive datetimes, to be localised
    parts: list[pd.Series] = []

    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        present = s.notna()
        if getattr(s.dt, "tz", None) is None:
            naive = s
        else:
            parts.append(s.dt.tz_convert("UTC").astype(TIMESTAMP_DTYPE))
    else:
        text = to_str(s)
        present = text.notna()
        if fmt is None:
            zoned = text.str.contains(_ZONE_RE, regex=True, na=False)
            if zoned.any():
                parts.append(
                    pd.to_datetime(text[zoned], format="ISO8601", utc=True, errors="coerce").astype(
                        TIMESTAMP_DTYPE
                    )
                )
            rest = text[present & ~zoned]
            try:
                naive = pd.to_datetime(rest, format="ISO8601", errors="coerce")
            except ValueError:  # zones our pattern missed: read those as given, others as UTC
                naive = None
                parts.append(
                    pd.to_datetime(rest, format="ISO8601", utc=True, errors="coerce").astype(
                        TIMESTAMP_DTYPE
                    )
                )
        elif "%z" in fmt or "%Z" in fmt:
            parts.append(
                pd.to_datetime(text[present], format=fmt, utc=True, errors="coerce").astype(
                    TIMESTAMP_DTYPE
                )
            )
        else:
            naive = pd.to_datetime(text[present], format=fmt, errors="coerce")
        if naive is not None and getattr(naive.dt, "tz", None) is not None:
            parts.append(naive.dt.tz_convert("UTC").astype(TIMESTAMP_DTYPE))
            naive = None

    n_naive = 0
    dst_bad = np.zeros(n, dtype=bool)
    if naive is not None and len(naive):
        naive = naive[naive.notna()]
        n_naive = len(naive)
        if tz == "UTC":
            loc = naive.dt.tz_localize("UTC")
        else:
            loc = naive.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
            bad = loc.isna()
            if bad.any():
                bad_naive = naive[bad]
                pos = bad_naive.index.to_numpy()
                dst_bad[pos] = True
                # ambiguous ones localise when told which of the two they are; nonexistent never
                probe = bad_naive.dt.tz_localize(
                    tz, ambiguous=np.ones(len(bad_naive), bool), nonexistent="NaT"
                )
                amb = probe.notna().to_numpy()
                shown = (text[pos] if text is not None else bad_naive.astype(str)).to_numpy()
                if amb.any():
                    issues.append(
                        _Issue(
                            "ambiguous local time",
                            "timestamp",
                            pos[amb],
                            [
                                f"timestamp {show_value(v)} is ambiguous in {tz}: the clocks go back at the DST "
                                "change and this local time happens twice; give it with an offset (e.g. +01:00)"
                                for v in shown[amb]
                            ],
                        )
                    )
                if (~amb).any():
                    issues.append(
                        _Issue(
                            "nonexistent local time",
                            "timestamp",
                            pos[~amb],
                            [
                                f"timestamp {show_value(v)} does not exist in {tz}: the clocks jump forward at the "
                                "DST change; check the source or give it with an offset"
                                for v in shown[~amb]
                            ],
                        )
                    )
            loc = loc[~bad]
        parts.append(loc.dt.tz_convert("UTC").astype(TIMESTAMP_DTYPE))

    parts = [p for p in parts if len(p)]
    if parts:
        out = pd.concat(parts).reindex(pd.RangeIndex(n)).astype(TIMESTAMP_DTYPE)
    else:
        out = pd.Series(pd.NaT, index=pd.RangeIndex(n), dtype=TIMESTAMP_DTYPE)

    present_np = present.to_numpy()
    unparsed = present_np & out.isna().to_numpy() & ~dst_bad
    file_error = None
    named = "timestamp column" + (
        "" if source_name == "timestamp" else f" (source column '{source_name}')"
    )
    if not present_np.any():
        file_error = DataError(
            f"the {named} has no values",
            column="timestamp",
            fix="map the column that holds the event times: columns: {timestamp: <your column>}",
        )
    elif unparsed.sum() == present_np.sum():
        pos = np.flatnonzero(unparsed)[:5]
        shown_vals = text.iloc[pos] if text is not None else s.iloc[pos].astype(str)
        examples = ", ".join(
            f"row {rows[p]}: {show_value(v)}" for p, v in zip(pos, shown_vals, strict=True)
        )
        if text is not None and text.dropna().head(50).str.fullmatch(r"\d{9,19}(\.\d+)?").all():
            unit = _epoch_unit(text)
            col = source_name.replace("\\", "\\\\").replace("'", "\\'")
            fix = (
                f"these look like Unix epoch times in {_EPOCH_UNIT_WORDS[unit]} (from the size of the "
                "numbers): convert them to ISO 8601 before loading, e.g. "
                f"df['{col}'] = pd.to_datetime(pd.to_numeric(df['{col}']), unit='{unit}', utc=True)"
            )
        else:
            guess = guess_format(text) if text is not None else None
            if guess:
                fix = f'set the format in the column map: timestamp: {{format: "{guess}"}}'
                if "%d" in guess and "%m" in guess:
                    fix += " (check that day and month are in this order)"
            else:
                fix = 'set the format in the column map, e.g. timestamp: {format: "%d.%m.%Y %H:%M"}'
        file_error = DataError(
            f"no value in the {named} could be read as a timestamp ({expected}); e.g. {examples}",
            column="timestamp",
            rows=[int(rows[p]) for p in np.flatnonzero(unparsed)[:20]],
            fix=fix,
        )
    elif unparsed.any():
        pos = np.flatnonzero(unparsed)
        shown = (text.iloc[pos] if text is not None else s.iloc[pos].astype(str)).to_numpy()
        issues.append(
            _Issue(
                "unparseable timestamp",
                "timestamp",
                pos,
                [f"timestamp {show_value(v)} could not be read ({expected})" for v in shown],
            )
        )
    return out, issues, file_error, n_naive


#: The default plausible window never reaches beyond these (customer-journey data from before
#: 1990 or after 2100 is a placeholder, an epoch-zero default or a typo).
PLAUSIBLE_FROM = pd.Timestamp("1990-01-01", tz="UTC")
PLAUSIBLE_TO = pd.Timestamp("2100-01-01", tz="UTC")


def _plausible_window(ts: pd.Series, cmap: ColumnMap) -> tuple[pd.Timestamp, pd.Timestamp, str]:
    """The window of plausible timestamps: (earliest, latest, how it was chosen).

    ``timestamp.valid_from``/``valid_to`` of the map are used as given. A side not given comes
    from the data's own bulk: among the times within 1990-01-01 .. 2100-01-01, the 0.1% and
    99.9% quantiles (taken as data values inward, so on fewer than 1,000 rows the single most
    extreme time at each end does not define the bulk; with one or two times, their range),
    widened on each side by the bulk's length or one year, whichever is more, and never beyond
    1990-01-01 .. 2100-01-01.
    """
    lo, hi = cmap.valid_from, cmap.valid_to
    if lo is not None and hi is not None:
        return lo, hi, "timestamp.valid_from/valid_to of the column map"
    v = ts.dropna().to_numpy(dtype="datetime64[us]").astype("int64")
    hard_lo, hard_hi = PLAUSIBLE_FROM.value // 1000, PLAUSIBLE_TO.value // 1000  # µs
    v = v[(v >= hard_lo) & (v <= hard_hi)]
    if len(v):
        q_lo = int(np.quantile(v, 0.001, method="higher"))
        q_hi = int(np.quantile(v, 0.999, method="lower"))
        if q_lo > q_hi:
            q_lo, q_hi = int(v.min()), int(v.max())
        margin = max(q_hi - q_lo, 365 * 86_400 * 10**6)
        d_lo = pd.Timestamp(max(q_lo - margin, hard_lo), unit="us", tz="UTC")
        d_hi = pd.Timestamp(min(q_hi + margin, hard_hi), unit="us", tz="UTC")
    else:
        d_lo, d_hi = PLAUSIBLE_FROM, PLAUSIBLE_TO
    how = (
        "derived from the bulk of the data's times"
        if cmap.valid_from is None and cmap.valid_to is None
        else "one side from timestamp.valid_from/valid_to, the other from the bulk of the data's times"
    )
    return (lo if lo is not None else d_lo), (hi if hi is not None else d_hi), how


def _window_issues(ts: pd.Series, cmap: ColumnMap) -> list[_Issue]:
    """Quarantine the times outside :func:`_plausible_window`."""
    if not ts.notna().any():
        return []
    lo, hi, how = _plausible_window(ts, cmap)
    out = (ts.notna() & ((ts < lo) | (ts > hi))).to_numpy()
    if not out.any():
        return []
    pos = np.flatnonzero(out)

    def day(t: pd.Timestamp) -> str:
        return (
            t.strftime("%Y-%m-%d %H:%M")
            if (t.hour or t.minute) and t != hi
            else t.strftime("%Y-%m-%d")
        )

    window = f"{day(lo)} .. {day(hi)} UTC"
    return [
        _Issue(
            "timestamp outside the plausible window",
            "timestamp",
            pos,
            [
                f"timestamp {t.isoformat()} is outside the plausible window {window} ({how}); "
                "if it is real, widen it with timestamp: {valid_from: ..., valid_to: ...} in the column map"
                for t in ts.iloc[pos]
            ],
        )
    ]


def _parse_bool(
    s: pd.Series, cmap: ColumnMap, column: str
) -> tuple[pd.Series, np.ndarray, list[_Issue]]:
    """Values (bool, False where unknown), a mask of missing cells, issues."""
    if s.dtype == bool:
        return s.astype(bool), np.zeros(len(s), bool), []
    if isinstance(s.dtype, pd.BooleanDtype):
        missing = s.isna().to_numpy()
        return s.fillna(False).astype(bool), missing, []
    text = to_str(s)
    lookup = {v: 1.0 for v in cmap.true_values} | {v: 0.0 for v in cmap.false_values}
    mapped = _lower_lookup(text, lookup, "float64")
    missing = text.isna().to_numpy()
    bad = ~missing & mapped.isna().to_numpy()
    issues = []
    if bad.any():
        pos = np.flatnonzero(bad)
        accepted = "/".join(cmap.true_values[:3]) + " or " + "/".join(cmap.false_values[:3])
        issues.append(
            _Issue(
                "unparseable boolean",
                column,
                pos,
                [
                    f"{column} {show_value(v)} is not a yes/no value (e.g. {accepted}); "
                    "add the spelling under booleans: in the column map"
                    for v in s.iloc[pos].astype(str)
                ],
            )
        )
    values = mapped.fillna(0.0).astype(bool)
    return values, missing, issues


def parse_number(s: pd.Series, decimal: str) -> tuple[pd.Series, np.ndarray, pd.Series | None]:
    """float64 values, a mask of present-but-not-a-number, and the cleaned text (or None)."""
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        return s.astype("float64"), np.zeros(len(s), bool), None
    text = to_str(s)
    num, bad = _text_to_number(text, decimal)
    return num, bad, text


def _grouped_re(decimal: str) -> re.Pattern[str]:
    sep = "." if decimal == "," else ","
    return re.compile(rf"^[+-]?\d{{1,3}}(?:{re.escape(sep)}\d{{3}})+(?:{re.escape(decimal)}\d+)?$")


def _text_to_number(text: pd.Series, decimal: str) -> tuple[pd.Series, np.ndarray]:
    """Numbers from text with ``decimal`` as the decimal separator and the other of "." and ","
    as the thousands separator. A value holding the thousands separator must group digits by
    three before the decimal separator (``1.249`` and ``1.249,50`` with decimal ","; ``1,249.50``
    with decimal "."), otherwise it is not a number (``1.24`` with decimal "," could be 1.24 or
    1240: quarantined rather than guessed).
    """
    sep = "." if decimal == "," else ","
    has_sep = text.str.contains(sep, regex=False, na=False)
    t = text
    if has_sep.any():
        grouped = text.str.match(_grouped_re(decimal).pattern, na=False)
        t = t.mask(has_sep & grouped, text.str.replace(sep, "", regex=False))
        t = t.mask(has_sep & ~grouped)  # malformed or ambiguous: not a number
    if decimal == ",":
        t = t.str.replace(",", ".", regex=False)
    num = pd.to_numeric(t, errors="coerce").astype("float64")
    bad = text.notna().to_numpy() & num.isna().to_numpy()
    return num, bad


_DECIMAL_COMMA = re.compile(r"^[+-]?\d*,\d+$")


def _parse_revenue(s: pd.Series, cmap: ColumnMap) -> tuple[pd.Series, list[_Issue]]:
    num, bad, text = parse_number(s, cmap.decimal)
    issues = []
    if bad.any():
        pos = np.flatnonzero(bad)
        reasons = []
        for v in text.iloc[pos]:
            r = f"revenue {show_value(v)} is not a number"
            sep = "." if cmap.decimal == "," else ","
            if cmap.decimal == "." and _DECIMAL_COMMA.match(v):
                r += ' (if "," is the decimal separator, set read: {decimal: ","})'
            elif sep in v:
                r += (
                    f" (with decimal {cmap.decimal!r}, {sep!r} is read as a thousands separator and must "
                    f"group digits by three, as in {'1.249,50' if sep == '.' else '1,249.50'}; "
                    "check read: {decimal: ...} or fix the value)"
                )
            reasons.append(r)
        issues.append(_Issue("non-numeric revenue", "revenue", pos, reasons))
    return num, issues


def _parse_sentiment(s: pd.Series, cmap: ColumnMap) -> tuple[pd.Series, list[_Issue], str]:
    """Sentiment in [-1, 1] where valid; issues; a hint for out-of-range values."""
    labels = {k.lower(): float(v) for k, v in cmap.sentiment_labels.items()}
    issues = []
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        num = s.astype("float64")
        lab = pd.Series(np.nan, index=s.index)
        bad = np.zeros(len(s), bool)
    else:
        text = to_str(s)
        lab = _lower_lookup(text, labels, "float64")
        t = text.where(lab.isna())
        if cmap.decimal == ",":
            t = t.str.replace(",", ".", regex=False)
        num = pd.to_numeric(t, errors="coerce").astype("float64")
        bad = text.notna().to_numpy() & lab.isna().to_numpy() & num.isna().to_numpy()
        if bad.any():
            pos = np.flatnonzero(bad)
            known = ", ".join(sorted(labels))
            issues.append(
                _Issue(
                    "unparseable sentiment",
                    "sentiment",
                    pos,
                    [
                        f"sentiment {show_value(v)} is neither a number nor a known label ({known}); "
                        "add it under sentiment.labels in the column map"
                        for v in text.iloc[pos]
                    ],
                )
            )
    hint = ""
    if cmap.sentiment_scale is not None:
        lo, hi = cmap.sentiment_scale
        num = 2.0 * (num - lo) / (hi - lo) - 1.0
        hint = f"outside the scale [{lo:g}, {hi:g}] of sentiment.scale"
    else:
        out_of_range = num[(num < -1) | (num > 1)]
        if len(out_of_range):
            from analysis.sources.suggest import guess_scale  # here: suggest imports this module

            # a common finite scale of the values out of range, never their [min, max] (e.g. [-3, inf])
            scale, _ = guess_scale(out_of_range.to_numpy())
            if scale is not None:
                hint = (
                    f"set sentiment.scale: [{scale[0]:g}, {scale[1]:g}] in the column map if these are "
                    f"{scale[0]:g}–{scale[1]:g} scores"
                )
            else:
                hint = (
                    "the numbers fit no common score scale (1–5, 0–10, …): state theirs with "
                    "sentiment.scale in the column map, or fix the values"
                )
    return lab.fillna(num).astype("float64"), issues, hint


def _lower_lookup(values: pd.Series, mapping: dict[str, Any], dtype: str = "str") -> pd.Series:
    """Case-insensitive dict lookup (NaN where absent), mapping each distinct value once."""
    codes, uniques = pd.factorize(values.str.lower())
    lookup = {str(k).lower(): v for k, v in mapping.items()}
    mapped = np.array([lookup.get(u, np.nan) for u in uniques] + [np.nan], dtype=object)
    return pd.Series(mapped[codes], index=values.index).astype(dtype)


# ============================================================================================
# The pipeline
# ============================================================================================


def _count(n: int, noun: str, plural: str | None = None) -> str:
    """ "1 row", "1,204 rows" """
    return f"{n:,} {noun if n == 1 else (plural or noun + 's')}"


def _list_some(values: list[Any], k: int = 5) -> str:
    shown = ", ".join(show_value(v) for v in values[:k])
    return shown + (f" and {len(values) - k} more" if len(values) > k else "")


def _missing_columns_error(
    req_missing: list[str],
    no_identifier: bool,
    cmap: ColumnMap,
    have: list[str],
    mapped_absent: dict[str, str],
) -> DataError:
    missing = list(req_missing)
    labels = list(req_missing)
    if no_identifier:
        labels.append(f"an identifier ({' or '.join(cmap.identifiers)})")
        missing.append("/".join(cmap.identifiers))
    extra = [c for c in mapped_absent if c not in missing]
    missing += extra
    if labels:
        lines = [f"missing required columns: {', '.join(labels)}"]
    else:
        lines = [
            f"the column map names source columns that the file lacks (for {', '.join(extra)})"
        ]
    for canon, src in mapped_absent.items():
        close = close_matches(src, have)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        lines.append(
            f"the column map sends source column '{src}' to {canon}, but the file has no such column{hint}"
        )
    lines.append(f"the file has columns: {', '.join(have[:30])}" + (" …" if len(have) > 30 else ""))
    used = set(cmap.columns.values())
    free = [h for h in have if h not in used and h not in CANONICAL_COLUMNS]

    def suggest(canon: str, key: str) -> str | None:
        if canon in mapped_absent:
            c = close_matches(mapped_absent[canon], free)
            if c:
                return c[0]
        c = close_matches(canon, free)
        if c:
            return c[0]
        words = _SYNONYMS.get(key, ())
        for h in free:
            if h.lower() in words or any(w in h.lower() for w in words if len(w) > 3):
                return h
        return None

    yaml_lines = []
    suggestions = []
    for canon in [*req_missing, *extra]:
        g = suggest(canon, "identifier" if canon in cmap.identifiers else canon)
        if g:
            suggestions.append(f"{canon} → '{g}'")
        yaml_lines.append(f"    {canon}: {g or '<your column>'}")
    if no_identifier:
        ident = "user_id" if "user_id" in cmap.identifiers else cmap.identifiers[0]
        g = suggest(ident, "identifier")
        if g:
            suggestions.append(f"{ident} → '{g}'")
        yaml_lines.append(f"    {ident}: {g or '<your column>'}")
    if suggestions:
        lines.append(f"close matches: {'; '.join(suggestions)}")
    fix = (
        "add the columns to the column map (YAML), e.g.\n  columns:\n"
        + "\n".join(yaml_lines)
        + "\nor give a constant for a column the file lacks, e.g. defaults: {channel: store}"
    )
    return DataError("\n  ".join(lines), column=missing, fix=fix)


def validate_table(
    df: pd.DataFrame,
    *,
    source: str,
    cmap: ColumnMap,
    rows: np.ndarray,
    blank_rows: list[int] | None = None,
    read_notes: list[str] | None = None,
    ragged: dict[int, tuple[str, str]] | None = None,
) -> LoadResult:
    import pandera.pandas as pa

    n = len(df)
    notes: list[str] = list(read_notes or [])
    if blank_rows:
        notes.append(
            f"{_count(len(blank_rows), 'blank line')} skipped (rows {', '.join(map(str, blank_rows[:5]))}"
            + (" …" if len(blank_rows) > 5 else "")
            + "); they are not counted as rows read"
        )

    # ---- map source columns to canonical names --------------------------------------------
    have = list(df.columns)
    target: dict[str, pd.Series] = {}
    mapped_absent: dict[str, str] = {}
    origin: dict[str, str] = {}
    for canon, src in cmap.columns.items():
        if src in df.columns:
            target[canon] = df[src]
            origin[canon] = src
        else:
            mapped_absent[canon] = src
    used = set(cmap.columns.values())
    for c in have:
        if c in used:
            continue
        name = c
        if c in cmap.columns:  # the map fills this canonical name from another column
            name = f"{c}_source"
            notes.append(
                f"column '{c}' was kept as '{name}': the column map fills {c} from '{cmap.columns[c]}'"
            )
        target[name] = df[c]
        origin[name] = c
    defaulted = []
    for c, v in cmap.defaults.items():
        if c not in target:
            target[c] = pd.Series(str(v), index=df.index, dtype="str")
            defaulted.append(c)
    if defaulted:
        notes.append(
            "set from defaults for every row (the source has no such column): "
            + ", ".join(f"{c} = {cmap.defaults[c]!r}" for c in defaulted)
        )

    # ---- file-level checks (all together) -------------------------------------------------
    errors: list[DataError] = []
    req_missing = [c for c in REQUIRED_COLUMNS if c not in target]
    ids_present = [c for c in cmap.identifiers if c in target]
    if req_missing or not ids_present or mapped_absent:
        errors.append(
            _missing_columns_error(req_missing, not ids_present, cmap, have, mapped_absent)
        )
    issues: list[_Issue] = []
    n_naive = 0
    if "timestamp" in target:
        ts, ts_issues, ts_error, n_naive = _parse_timestamps(
            target["timestamp"], cmap, rows, origin.get("timestamp", "timestamp")
        )
        issues += ts_issues
        if ts_error is not None:
            errors.append(ts_error)
        else:
            issues += _window_issues(ts, cmap)
    if errors:
        errors = [
            DataError(e.problem, file=source, column=e.column, rows=e.rows, fix=e.fix)
            for e in errors
        ]
        raise combine_errors(errors, file=source)

    # ---- parse every canonical column ------------------------------------------------------
    idx = pd.RangeIndex(n)
    cols: dict[str, pd.Series] = {}
    str_missing = pd.Series(np.nan, index=idx, dtype="str")

    def text_col(name: str) -> pd.Series:
        return to_str(target[name]) if name in target else str_missing.copy()

    channel = text_col("channel")
    touchpoint = text_col("touchpoint")

    generated_ids = None
    if "event_id" in target:
        event_id = text_col("event_id")
        need = event_id.isna()
        if need.any():
            generated_ids = int(need.sum())
            gen = (
                source_stem(source)
                + ":"
                + pd.Series(rows[need.to_numpy()], index=event_id.index[need]).astype("str")
            )
            event_id = event_id.mask(need, gen)
            notes.append(f"{_count(generated_ids, 'empty event_id')} generated as '<file>:<row>'")
    else:
        event_id = (source_stem(source) + ":" + pd.Series(rows, index=idx).astype("str")).astype(
            "str"
        )
    cols["event_id"] = event_id
    cols["timestamp"] = ts
    if n_naive:
        if cmap.timezone == "UTC" and not cmap.timezone_given:
            notes.append(
                f"{_count(n_naive, 'timestamp')} without a zone read as UTC "
                "(set timestamp.timezone in the column map if they are local times)"
            )
        else:
            notes.append(
                f"{_count(n_naive, 'timestamp')} without a zone read as {cmap.timezone} and converted to UTC"
            )
    for c in IDENTIFIER_COLUMNS:
        cols[c] = text_col(c)
    cols["channel"] = channel
    cols["touchpoint"] = touchpoint

    offline = {c.lower() for c in OFFLINE_CHANNELS}
    derived_online = ~channel.str.lower().isin(offline).fillna(False).astype(bool)

    def bool_col(name: str, derived: pd.Series, source: str) -> pd.Series:
        """A boolean column as given, or derived (from ``source``) where it is absent or empty."""
        if name not in target:
            return derived.astype(bool)
        values, miss, problems = _parse_bool(target[name], cmap, name)
        issues.extend(problems)
        if miss.any():
            values = values.mask(miss, derived)
            notes.append(
                f"{_count(int(miss.sum()), f'empty {name} value')} derived from the {source}"
            )
        return values.astype(bool)

    cols["online"] = bool_col("online", derived_online, "channel")

    cols["campaign"] = text_col("campaign")

    sm = cmap.stage_map
    derived_stage = _lower_lookup(touchpoint, sm.touchpoints)
    if "stage" in target:
        raw_stage = text_col("stage")
        norm = _lower_lookup(raw_stage, {s: s for s in sm.stages})
        stage = norm.fillna(raw_stage)  # unknown stages stay as they are: the schema rejects them
        miss = raw_stage.isna()
        if miss.any():
            stage = stage.mask(miss, derived_stage)
        cols["stage"] = stage.astype("str")
    else:
        cols["stage"] = derived_stage

    conv_tps = {t.lower() for t in cmap.conversion_touchpoints}
    derived_conv = touchpoint.str.lower().isin(conv_tps).fillna(False).astype(bool)
    cols["conversion"] = bool_col("conversion", derived_conv, "touchpoint")

    if "revenue" in target:
        cols["revenue"], ri = _parse_revenue(target["revenue"], cmap)
        issues += ri
    else:
        cols["revenue"] = pd.Series(np.nan, index=idx, dtype="float64")
    sentiment_hint = ""
    if "sentiment" in target:
        cols["sentiment"], si, sentiment_hint = _parse_sentiment(target["sentiment"], cmap)
        issues += si
    else:
        cols["sentiment"] = pd.Series(np.nan, index=idx, dtype="float64")

    default_segment = str(cmap.defaults.get("segment", "all"))
    if "segment" in target:
        seg = text_col("segment")
        miss = seg.isna()
        if miss.any() and "segment" not in defaulted:
            notes.append(
                f"{_count(int(miss.sum()), 'empty segment value')} set to {default_segment!r}"
            )
        cols["segment"] = seg.fillna(default_segment).astype("str")
    else:
        cols["segment"] = pd.Series(default_segment, index=idx, dtype="str")

    # extra attribute columns, as they came ("" → missing for text from CSV)
    for name, s in target.items():
        if name in CANONICAL_COLUMNS:
            continue
        if name in cmap.identifiers:
            cols[name] = to_str(s)
        elif _is_text(s):
            if s.dtype == "str":
                s = _strip_controls(s)
                cols[name] = s.mask(s == "")
            else:
                cols[name] = s
        else:
            cols[name] = s
    work = pd.DataFrame(cols, index=idx)
    for c, (dtype, _) in CANONICAL_COLUMNS.items():
        if dtype == "str" and work[c].dtype != "str":
            work[c] = work[c].astype("str")

    # ---- exact duplicates (all source columns equal; the first is kept) -------------------
    exact_dup = np.zeros(n, dtype=bool)
    try:
        h = pd.util.hash_pandas_object(df, index=False).to_numpy()
    except TypeError:  # unhashable cells (lists) in typed sources
        h = pd.util.hash_pandas_object(df.astype("str"), index=False).to_numpy()
    first = pd.Series(np.arange(n)).groupby(h).transform("min").to_numpy()
    cand = np.flatnonzero(first != np.arange(n))
    if len(cand):
        a = df.iloc[cand].reset_index(drop=True)
        b = df.iloc[first[cand]].reset_index(drop=True)
        same = np.ones(len(cand), dtype=bool)
        for c in df.columns:  # verify: equal values, or both missing
            x, y = a[c], b[c]
            eq = (x == y).fillna(False).to_numpy(dtype=bool) | (x.isna() & y.isna()).to_numpy()
            same &= eq
        dup_pos = cand[same]
        exact_dup[dup_pos] = True
        if len(dup_pos):
            issues.append(
                _Issue(
                    "exact duplicate",
                    None,
                    dup_pos,
                    [f"exact duplicate of row {rows[f]}" for f in first[dup_pos]],
                )
            )

    # ---- the schema's rules (pandera, lazy) -----------------------------------------------
    ids_in_work = [c for c in cmap.identifiers if c in work.columns]
    schema = events_schema(sm, ids_in_work)
    try:
        schema.validate(work, lazy=True)
    except pa.errors.SchemaErrors as exc:
        issues += _issues_from_failures(
            exc.failure_cases, work, target, rows, exact_dup, issues, cmap, sentiment_hint
        )

    # ---- rows with the wrong number of fields: that is their one reason ---------------------
    if ragged:
        rpos = np.array(sorted(ragged), dtype="int64")
        issues = [
            _Issue(
                it.category,
                it.column,
                it.pos[keep],
                [r for r, k in zip(it.reason, keep, strict=True) if k],
            )
            for it in issues
            for keep in [~np.isin(it.pos, rpos)]
        ]
        for cat in ("too few fields", "too many fields"):
            ps = [p for p in rpos if ragged[int(p)][0] == cat]
            if ps:
                issues.append(
                    _Issue(cat, None, np.array(ps, dtype="int64"), [ragged[int(p)][1] for p in ps])
                )

    # ---- combine reasons per row -----------------------------------------------------------
    col_order = {c: i for i, c in enumerate(work.columns)}
    if issues:
        parts = pd.concat(
            [
                pd.DataFrame(
                    {
                        "pos": it.pos.astype("int64"),
                        "category": it.category,
                        "column": it.column,
                        "reason": it.reason,
                        "order": col_order.get(it.column, len(col_order))
                        if it.column
                        else len(col_order) + 1,
                    }
                )
                for it in issues
                if len(it.pos)
            ],
            ignore_index=True,
        )
        parts = parts.drop_duplicates(["pos", "category", "reason"])
        parts = parts.sort_values(["pos", "order"], kind="stable").reset_index(drop=True)
    else:
        parts = pd.DataFrame({"pos": [], "category": [], "column": [], "reason": [], "order": []})
    bad = np.zeros(n, dtype=bool)
    bad[parts["pos"].to_numpy(dtype="int64")] = True
    qpos = np.flatnonzero(bad)

    multi = parts["pos"].duplicated(keep=False).to_numpy()
    single = parts.loc[~multi].set_index("pos")
    reason = single["reason"].astype(object)
    column = single["column"].astype(object)
    if multi.any():
        g = parts.loc[multi].groupby("pos", sort=True)
        reason = pd.concat([reason, g["reason"].agg("; ".join)])
        column = pd.concat(
            [
                column,
                g["column"].agg(
                    lambda x: "; ".join(dict.fromkeys(v for v in x if v is not None)) or None
                ),
            ]
        )
    reason = reason.reindex(qpos)
    column = column.reindex(qpos).astype(object)
    column = column.where(column.notna(), None)

    # ---- outputs -----------------------------------------------------------------------------
    events = work.loc[~bad].reset_index(drop=True)
    qsrc = df.iloc[qpos].reset_index(drop=True)
    for c in qsrc.columns:  # source values as strings (CSV cells exactly as read)
        if qsrc[c].dtype != "str":
            qsrc[c] = qsrc[c].astype("str")
    qsrc.columns = [
        f"{c} (source)" if c in ("row", "reason", "column") else c for c in qsrc.columns
    ]
    quarantine = pd.concat(
        [
            pd.DataFrame(
                {
                    "row": rows[qpos].astype("int64"),
                    "reason": pd.Series(reason.to_numpy(), dtype="str"),
                    "column": pd.Series(column.to_numpy(), dtype=object),
                }
            ),
            qsrc,
        ],
        axis=1,
    )

    reasons: dict[str, int] = {}
    examples: dict[str, dict[str, Any]] = {}
    if len(parts):
        counts = parts.drop_duplicates(["pos", "category"])["category"].value_counts(sort=True)
        reasons = {str(k): int(v) for k, v in counts.items()}
        firsts = parts.drop_duplicates("category")
        for _, r in firsts.iterrows():
            examples[str(r["category"])] = {
                "row": int(rows[int(r["pos"])]),
                "column": r["column"],
                "reason": r["reason"],
            }

    # notes about the kept rows
    no_stage = events["stage"].isna()
    if no_stage.any():
        tps = events.loc[no_stage, "touchpoint"].value_counts().index.tolist()
        notes.append(
            f"{_count(int(no_stage.sum()), 'row')} {'has' if no_stage.sum() == 1 else 'have'} no stage: touchpoints {_list_some(tps)} are not in the "
            "stage map (add them under stage_map.touchpoints)"
        )
    if "online" not in target:
        notes.append(
            "online was derived from the channel (offline: "
            + ", ".join(sorted(OFFLINE_CHANNELS))
            + ")"
        )
    if "conversion" not in target:
        notes.append(
            f"conversion was derived from the touchpoint ({', '.join(cmap.conversion_touchpoints)})"
        )

    summary: dict[str, Any] = {
        "file": source,
        "rows_read": int(n),
        "rows_kept": len(events),
        "rows_quarantined": len(quarantine),
        "duplicates": int(exact_dup.sum()),
        "blank_rows": len(blank_rows or []),
        "reasons": reasons,
        "notes": notes,
        "identifiers": ids_in_work,
        "stages": list(sm.stages),
        # the map's allowed moves (None: the default), so the models get the user's stage map
        "stage_transitions": {k: list(v) for k, v in sm.transitions.items()}
        if sm.transitions
        else None,
        "mapping": cmap.source,
    }
    events.attrs["load_report"] = dict(summary)
    result = LoadResult(events=events, quarantine=quarantine, summary=summary, examples=examples)

    # invariant: what we keep is canonical
    try:
        validate_canonical(events, sm, ids_in_work, name=source)
    except DataError as exc:
        raise AssertionError(
            f"kept rows break the canonical schema (a bug in analysis.sources):\n{exc}"
        ) from None
    return result


def _issues_from_failures(
    fc: pd.DataFrame,
    work: pd.DataFrame,
    target: dict[str, pd.Series],
    rows: np.ndarray,
    exact_dup: np.ndarray,
    parse_issues: list[_Issue],
    cmap: ColumnMap,
    sentiment_hint: str,
) -> list[_Issue]:
    """Map pandera's failure cases back to rows and readable reasons."""
    n = len(work)
    parsed_bad: dict[str, np.ndarray] = {}
    for it in parse_issues:
        if it.column:
            m = parsed_bad.setdefault(it.column, np.zeros(n, dtype=bool))
            m[it.pos] = True
    out: list[_Issue] = []
    dup_ids: list[np.ndarray] = []
    fc = fc[fc["index"].notna()]
    for (column, check), grp in fc.groupby(["column", "check"], sort=False, dropna=False):
        check = str(check)
        col = None if column is None or column != column else str(column)
        pos = np.unique(grp["index"].to_numpy(dtype="int64"))
        if check.startswith("dtype("):
            raise AssertionError(
                f"column {col} has the wrong dtype (a bug in analysis.sources): {check}"
            )
        if check == CHECK_IDENTIFIER:
            continue  # handled once below (pandera reports it per column)
        if col in parsed_bad:
            pos = pos[~parsed_bad[col][pos]]  # the parser already said why
        if not len(pos):
            continue
        if col in target and col in work.columns:
            shown = target[col].iloc[pos].astype(str).to_numpy()
        else:
            shown = (
                work[col].iloc[pos].astype(str).to_numpy()
                if col in work.columns
                else [""] * len(pos)
            )
        if check in ("not_nullable", CHECK_NOT_EMPTY) and col in ("channel", "touchpoint"):
            out.append(_Issue(f"empty {col}", col, pos, [f"{col} is empty"] * len(pos)))
        elif check == "not_nullable" and col == "timestamp":
            out.append(_Issue("missing timestamp", col, pos, ["timestamp is missing"] * len(pos)))
        elif check == CHECK_NOT_RESERVED:
            reserved = ", ".join(sorted(RESERVED_STATES))
            out.append(
                _Issue(
                    "reserved name",
                    col,
                    pos,
                    [
                        f"{col} {show_value(v)} is a reserved name ({reserved} are used by journeys); rename it in the source"
                        for v in shown
                    ],
                )
            )
        elif check == CHECK_STAGE:
            stages = ", ".join(cmap.stage_map.stages)
            out.append(
                _Issue(
                    "unknown stage",
                    col,
                    pos,
                    [
                        f"stage {show_value(v)} is not one of {stages}; add it to stage_map.stages"
                        for v in shown
                    ],
                )
            )
        elif check == CHECK_NON_NEGATIVE and col == "revenue":
            out.append(
                _Issue(
                    "negative revenue",
                    col,
                    pos,
                    [f"revenue {show_value(v)} is negative" for v in shown],
                )
            )
        elif check == CHECK_FINITE and col == "revenue":
            out.append(
                _Issue(
                    "non-numeric revenue",
                    col,
                    pos,
                    [f"revenue {show_value(v)} is not a finite number" for v in shown],
                )
            )
        elif check == CHECK_SENTIMENT_RANGE:
            hint = f" ({sentiment_hint})" if sentiment_hint else ""
            out.append(
                _Issue(
                    "sentiment out of range",
                    col,
                    pos,
                    [f"sentiment {show_value(v)} is outside [-1, 1]{hint}" for v in shown],
                )
            )
        elif check == "field_uniqueness" and col == "event_id":
            dup_ids.append(pos)  # decided below, once the other problems are known
        else:
            out.append(
                _Issue(
                    f"invalid {col}",
                    col,
                    pos,
                    [f"{col} {show_value(v)} fails: {check}" for v in shown],
                )
            )

    if dup_ids:
        # the first occurrence among rows without other problems is kept; the others go
        ids = work["event_id"]
        involved = ids.isin(set(ids.iloc[np.concatenate(dup_ids)]))
        other_bad = np.zeros(n, dtype=bool)
        for it in [*parse_issues, *out]:
            other_bad[it.pos] = True
        other_bad |= exact_dup
        cand = ids[involved.to_numpy() & ~other_bad]
        first = pd.Series(cand.index, index=cand.to_numpy()).groupby(level=0).min()
        pos = np.flatnonzero(involved.to_numpy() & ~exact_dup)
        has_first = ids.iloc[pos].map(first).to_numpy()
        keep = ~np.isnan(has_first.astype("float64")) & (has_first != pos)
        pos, firsts = pos[keep], has_first[keep].astype("int64")
        if len(pos):
            out.append(
                _Issue(
                    "duplicate event_id",
                    "event_id",
                    pos,
                    [
                        f"event_id {show_value(v)} is also used by row {rows[f]} with different content"
                        for v, f in zip(ids.iloc[pos], firsts, strict=True)
                    ],
                )
            )

    id_fail = fc.loc[fc["check"] == CHECK_IDENTIFIER, "index"]
    if len(id_fail):
        pos = np.unique(id_fail.to_numpy(dtype="int64"))
        ids = [c for c in cmap.identifiers if c in work.columns]
        out.append(
            _Issue(
                "no identifier",
                None,
                pos,
                [f"no identifier: {', '.join(ids)} are all empty"] * len(pos),
            )
        )
    return out
