"""Reading a column map dict section by section (:class:`MapReader`), with its error messages."""

from __future__ import annotations

import codecs
import re
import zoneinfo
from typing import Any

import pandas as pd

from analysis.errors import close_matches
from analysis.schema import (
    CANONICAL_COLUMNS,
    IDENTIFIER_COLUMNS,
    DataError,
    StageMap,
)
from analysis.sources.column_map.constants import (
    ALLOWED_KEYS,
    DEFAULT_SENTIMENT_LABELS,
    FALSE_SPELLINGS,
    MAPPABLE_ATTRIBUTES,
    TRUE_SPELLINGS,
)


def unknown_key_error(key: Any, level: str, allowed: Any, file: str) -> DataError:
    """Return the error for a key the column map does not know, with the closest one."""
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


def as_list(value: Any) -> list[Any]:
    """Return ``value`` as a list (None: empty; a scalar: one item)."""
    if value is None:
        return []
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)
    return [value]


def yaml_key(key: Any) -> str:
    """Return a YAML key as text (``true:``/``yes:`` read as booleans become "true"/"yes")."""
    # YAML 1.1 reads `true:`/`yes:` as booleans
    return str(key).lower() if isinstance(key, bool) else str(key)


def not_mapping_error(level: str, value: Any, file: str | None, fix: str) -> DataError:
    """Return a column-map section that should be a mapping (``key: value``) but is not."""
    return DataError(
        f"'{level}' in the column map must be a mapping, got {value!r}",
        file=file,
        column=level,
        fix=fix,
    )


class MapReader:
    """Read the sections of a column map dict into :class:`ColumnMap` keywords.

    Each step adds its keywords to ``kw`` and its problems to ``errors``, so that
    :meth:`ColumnMap.from_dict` reports all of them together.
    """

    def __init__(self, file: str, source: str | None) -> None:
        self.file = file
        self.errors: list[DataError] = []
        self.kw: dict[str, Any] = {"source": source}

    def check_keys(self, sub: Any, level: str) -> dict[str, Any]:
        """Return the keys of the section ``level`` that are allowed (an error for each other)."""
        if sub is None:
            return {}
        if not isinstance(sub, dict):
            self.errors.append(
                not_mapping_error(
                    level,
                    sub,
                    self.file,
                    f"write it as `{level}: {{key: value}}`; allowed keys: {', '.join(ALLOWED_KEYS[level])}",
                )
            )
            return {}
        out = {}
        for k, v in sub.items():
            key = yaml_key(k)
            if key not in ALLOWED_KEYS[level]:
                self.errors.append(unknown_key_error(key, level, ALLOWED_KEYS[level], self.file))
            else:
                out[key] = v
        return out

    def identifiers(self, top: dict[str, Any]) -> list[str]:
        """Read ``identifiers`` first: they extend the names ``columns`` and ``defaults`` accept."""
        # identifiers first: they extend the names `columns` and `defaults` accept
        identifiers = IDENTIFIER_COLUMNS
        if "identifiers" in top:
            ids = [str(x) for x in as_list(top["identifiers"]) if x is not None]
            if not ids:
                self.errors.append(
                    DataError(
                        "'identifiers' in the column map is empty",
                        file=self.file,
                        column="identifiers",
                        fix=f"list the identifier columns, e.g. identifiers: [{', '.join(IDENTIFIER_COLUMNS[:3])}]",
                    )
                )
            else:
                identifiers = tuple(dict.fromkeys(ids))
                self.kw["identifiers"] = identifiers
        known_names = (
            list(CANONICAL_COLUMNS)
            + [c for c in identifiers if c not in CANONICAL_COLUMNS]
            + [c for c in MAPPABLE_ATTRIBUTES if c not in CANONICAL_COLUMNS]
        )
        return known_names

    def names(self, top: dict[str, Any], known_names: list[str]) -> None:
        """Read ``columns`` (canonical name → source column) and ``defaults`` (constants)."""
        for level in ("columns", "defaults"):
            if level not in top:
                continue
            sub = top[level]
            if sub is None:
                continue
            if not isinstance(sub, dict):
                example = "{timestamp: event_time}" if level == "columns" else "{segment: all}"
                self.errors.append(
                    not_mapping_error(level, sub, self.file, f"write it as `{level}: {example}`")
                )
                continue
            out: dict[str, Any] = {}
            for k, v in sub.items():
                key = str(k)
                if key not in known_names:
                    close = close_matches(key, known_names)
                    hint = f" (did you mean '{close[0]}'?)" if close else ""
                    self.errors.append(
                        DataError(
                            f"unknown key '{level}.{key}' in the column map: not a canonical column{hint}",
                            file=self.file,
                            column=key,
                            fix=f"use a canonical column name ({', '.join(known_names)}); "
                            "to use an extra identifier, list it under `identifiers:` as well",
                        )
                    )
                    continue
                if level == "columns":
                    if v is None or isinstance(v, (list, dict)):
                        self.errors.append(
                            DataError(
                                f"'columns.{key}' must name one source column, got {v!r}",
                                file=self.file,
                                column=key,
                                fix=f"write `{key}: <your column name>`",
                            )
                        )
                        continue
                    out[key] = str(v)
                else:
                    out[key] = yaml_key(v) if isinstance(v, bool) else v
            self.kw[level] = out

    def timestamp(self, top: dict[str, Any]) -> None:
        """Read ``timestamp``: its format, time zone and plausible window."""
        ts = self.check_keys(top.get("timestamp"), "timestamp")
        if ts.get("format") is not None:
            self.kw["timestamp_format"] = str(ts["format"])
        if "timezone" in ts:
            tz = str(ts["timezone"])
            try:
                zoneinfo.ZoneInfo(tz)
                self.kw["timezone"] = tz
                self.kw["timezone_given"] = True
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                close = close_matches(tz, sorted(zoneinfo.available_timezones()), n=3)
                hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
                self.errors.append(
                    DataError(
                        f"unknown time zone '{tz}' in timestamp.timezone{hint}",
                        file=self.file,
                        column="timestamp",
                        fix="use an IANA time zone name such as Europe/Berlin, America/New_York or UTC",
                    )
                )

        self.valid_window(ts)

    def valid_window(self, ts: dict[str, Any]) -> None:
        """Read ``timestamp.valid_from`` / ``valid_to`` (a date as ``valid_to`` includes that day)."""
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
                self.kw[key] = t.as_unit("us")
            except (ValueError, TypeError, OverflowError):
                self.errors.append(
                    DataError(
                        f"timestamp.{key} {raw!r} is not a date",
                        file=self.file,
                        column="timestamp",
                        fix=f"write an ISO 8601 date or time, e.g. timestamp: {{{key}: 2020-01-01}}",
                    )
                )
        if (
            self.kw.get("valid_from") is not None
            and self.kw.get("valid_to") is not None
            and self.kw["valid_from"] > self.kw["valid_to"]
        ):
            self.errors.append(
                DataError(
                    "timestamp.valid_from is after timestamp.valid_to",
                    file=self.file,
                    column="timestamp",
                    fix="swap them: valid_from is the earliest plausible time, valid_to the latest",
                )
            )

    def sentiment(self, top: dict[str, Any]) -> None:
        """Read ``sentiment``: the scale of numeric scores and the labels."""
        se = self.check_keys(top.get("sentiment"), "sentiment")
        if se.get("scale") is not None:
            scale = as_list(se["scale"])
            ok = len(scale) == 2 and all(
                isinstance(x, (int, float)) and not isinstance(x, bool) for x in scale
            )
            if ok and float(scale[0]) < float(scale[1]):
                self.kw["sentiment_scale"] = (float(scale[0]), float(scale[1]))
            else:
                self.errors.append(
                    DataError(
                        f"sentiment.scale must be two numbers [low, high] with low < high, got {se['scale']!r}",
                        file=self.file,
                        column="sentiment",
                        fix="e.g. sentiment: {scale: [1, 5]}",
                    )
                )
        if se.get("labels") is not None:
            labels = se["labels"]
            if not isinstance(labels, dict):
                self.errors.append(
                    DataError(
                        f"sentiment.labels must map labels to numbers in [-1, 1], got {labels!r}",
                        file=self.file,
                        column="sentiment",
                        fix="e.g. sentiment: {labels: {positive: 1, neutral: 0, negative: -1}}",
                    )
                )
            else:
                merged = dict(DEFAULT_SENTIMENT_LABELS)
                for k, v in labels.items():
                    if isinstance(v, bool) or not isinstance(v, (int, float)) or not -1 <= v <= 1:
                        self.errors.append(
                            DataError(
                                f"sentiment.labels.{yaml_key(k)} must be a number in [-1, 1], got {v!r}",
                                file=self.file,
                                column="sentiment",
                                fix="labels give the final sentiment, e.g. {positive: 1, negative: -1}",
                            )
                        )
                        continue
                    merged[yaml_key(k).strip().lower()] = float(v)
                self.kw["sentiment_labels"] = merged

    def booleans(self, top: dict[str, Any]) -> None:
        """Read ``booleans``: extra spellings of yes and no."""
        bo = self.check_keys(top.get("booleans"), "booleans")
        spell: dict[bool, list[str]] = {True: list(TRUE_SPELLINGS), False: list(FALSE_SPELLINGS)}
        for key, polarity in (("true", True), ("false", False)):
            for v in as_list(bo.get(key)):
                if isinstance(v, bool):
                    if v is not polarity:  # YAML read e.g. `no` as False: the user meant the word
                        self.errors.append(
                            DataError(
                                f"booleans.{key} contains {v!r}: YAML reads unquoted yes/no/on/off as booleans",
                                file=self.file,
                                column=key,
                                fix="quote the spelling, e.g. booleans: {true: ['no']}",
                            )
                        )
                    continue  # yes/true/on and no/false/off are accepted anyway
                spell[polarity].append(str(v).strip().lower())
        both = sorted(set(spell[True]) & set(spell[False]))
        if both:
            self.errors.append(
                DataError(
                    f"booleans: {', '.join(repr(b) for b in both)} listed as both true and false",
                    file=self.file,
                    fix="list each spelling under `true:` or `false:`, not both",
                )
            )
        self.kw["true_values"] = tuple(dict.fromkeys(spell[True]))
        self.kw["false_values"] = tuple(dict.fromkeys(spell[False]))

    def stage_map(self, top: dict[str, Any]) -> None:
        """Read ``stage_map`` (see :meth:`analysis.schema.StageMap.from_config`)."""
        if "stage_map" in top and top["stage_map"] is not None:
            sm = top["stage_map"]
            if isinstance(sm, StageMap):
                self.kw["stage_map"] = sm
            else:
                sm = self.check_keys(sm, "stage_map")
                try:
                    if "touchpoints" in sm and not isinstance(sm["touchpoints"], dict):
                        raise ValueError("stage_map.touchpoints must map touchpoint → stage")
                    cfg: dict[str, Any] = {}
                    if "stages" in sm:
                        cfg["stages"] = [str(s) for s in as_list(sm["stages"])]
                    if "touchpoints" in sm:
                        cfg["touchpoints"] = {str(k): str(v) for k, v in sm["touchpoints"].items()}
                    if sm.get("transitions") is not None:
                        if not isinstance(sm["transitions"], dict):
                            raise ValueError(
                                "stage_map.transitions must map from-state → list of to-states"
                            )
                        cfg["transitions"] = {
                            str(k): [str(t) for t in as_list(v)]
                            for k, v in sm["transitions"].items()
                        }
                    self.kw["stage_map"] = StageMap.from_config(cfg) if cfg else StageMap()
                except ValueError as exc:
                    self.errors.append(
                        DataError(
                            f"invalid stage_map: {exc}",
                            file=self.file,
                            column="stage",
                            fix="stage_map: {stages: [See, Think, Do, Care], touchpoints: {purchase: Do}}",
                        )
                    )

        if "conversion_touchpoints" in top:
            self.kw["conversion_touchpoints"] = tuple(
                str(x) for x in as_list(top["conversion_touchpoints"])
            )

    def read(self, top: dict[str, Any]) -> None:
        """Read ``read``: the CSV delimiter, encoding and decimal separator."""
        rd = self.check_keys(top.get("read"), "read")
        if "delimiter" in rd:
            delim = str(rd["delimiter"])
            if delim.lower() in ("tab", "\\t"):
                delim = "\t"
            if len(delim) != 1:
                self.errors.append(
                    DataError(
                        f"read.delimiter must be one character, got {rd['delimiter']!r}",
                        file=self.file,
                        fix='e.g. read: {delimiter: ";"} or read: {delimiter: "\\t"}',
                    )
                )
            else:
                self.kw["delimiter"] = delim
        if "encoding" in rd:
            enc = str(rd["encoding"])
            try:
                codecs.lookup(enc)
                self.kw["encoding"] = enc
            except LookupError:
                self.errors.append(
                    DataError(
                        f"unknown encoding '{enc}' in read.encoding",
                        file=self.file,
                        fix="use e.g. utf-8, latin-1 or cp1252",
                    )
                )
        if "decimal" in rd:
            dec = str(rd["decimal"])
            if dec not in (".", ","):
                self.errors.append(
                    DataError(
                        f"read.decimal must be '.' or ',', got {dec!r}",
                        file=self.file,
                        fix='read: {decimal: ","}',
                    )
                )
            else:
                self.kw["decimal"] = dec
