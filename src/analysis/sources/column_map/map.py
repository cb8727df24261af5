"""The column map: how a source's columns become the canonical table (:class:`ColumnMap`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from analysis.schema import (
    DEFAULT_CONVERSION_TOUCHPOINTS,
    IDENTIFIER_COLUMNS,
    DataError,
    StageMap,
    combine_errors,
)
from analysis.sources.column_map.constants import (
    DEFAULT_SENTIMENT_LABELS,
    FALSE_SPELLINGS,
    TRUE_SPELLINGS,
)
from analysis.sources.column_map.map_keys import MapReader

# ============================================================================================


@dataclass
class ColumnMap:
    """How a source's columns become the canonical table.

    How a source's columns become the canonical table. Build with :meth:`from_yaml` or
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
        Default (``None``): derived from the data, see :func:`plausible_window`.
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
        reader = MapReader(file, source)
        top = reader.check_keys(d, "")
        reader.names(top, reader.identifiers(top))
        reader.timestamp(top)
        reader.sentiment(top)
        reader.booleans(top)
        reader.stage_map(top)
        reader.read(top)
        if reader.errors:
            raise combine_errors(reader.errors, file=file)
        return cls(**reader.kw)

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
