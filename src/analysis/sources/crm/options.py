"""The options every CRM reader takes besides its own (:class:`ReadOptions`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from analysis.schema import DEFAULT_STAGE_MAP, IDENTIFIER_COLUMNS, StageMap
from analysis.sources.column_map import ColumnMap
from analysis.sources.crm.tables import CRM_TOUCHPOINT_STAGES

__all__ = ["ReadOptions"]


@dataclass(frozen=True)
class ReadOptions:
    """The reading options the five CRM readers share (each reader keeps them as keywords).

    Attributes
    ----------
    columns : dict, optional
        Role → source column, for names not recognised; ``None`` as the column switches a
        role off.
    drop : list of str
        Source columns to leave out (e.g. names, addresses: personal data you do not need).
    timestamp_format : str, optional
        strftime format of the dates; default ISO 8601 (``2024-03-01``, ``2024-03-01 14:30``).
    timezone : str, optional
        IANA zone of dates without an offset; default UTC.
    stage_map : dict or StageMap, optional
        Touchpoint → stage (``schema.StageMap.from_config`` keys). Default: the default stage
        map plus :data:`~analysis.sources.crm.CRM_TOUCHPOINT_STAGES`.
    delimiter, encoding, decimal : str
        CSV reading: ``","``, ``"utf-8"``, ``"."``.
    """

    columns: dict[str, str] | None = None
    drop: Iterable[str] = ()
    timestamp_format: str | None = None
    timezone: str | None = None
    stage_map: Any = None
    delimiter: str = ","
    encoding: str = "utf-8"
    decimal: str = "."

    def column_map(self, identifiers: tuple[str, ...] = IDENTIFIER_COLUMNS) -> ColumnMap:
        """Return the ColumnMap the readers validate with (its checks give the option errors)."""
        d: dict[str, Any] = {
            "read": {
                "delimiter": self.delimiter,
                "encoding": self.encoding,
                "decimal": self.decimal,
            },
            "identifiers": list(identifiers),
        }
        ts = {
            k: v
            for k, v in (("format", self.timestamp_format), ("timezone", self.timezone))
            if v is not None
        }
        if ts:
            d["timestamp"] = ts
        stage_map = self.stage_map
        if stage_map is None:
            stage_map = StageMap(touchpoints={**DEFAULT_STAGE_MAP, **CRM_TOUCHPOINT_STAGES})
        d["stage_map"] = stage_map
        return ColumnMap.from_dict(d, source="<reader options>")
