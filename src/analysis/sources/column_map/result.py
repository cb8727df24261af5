"""What loading produces (:class:`LoadResult`) and the rows a reader rejects (:class:`Rejected`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

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


@dataclass(eq=False)
class Rejected:
    """Source rows an adapter quarantines itself, for one reason category.

    Say where the rows are in one of two ways: ``pos`` (0-based positions in the table the
    adapter prepared, for :func:`validate_with_rejects` / :func:`add_rejected`, which take the
    row numbers and source values from that table), or ``rows`` and ``source`` (and ``file``)
    for rows that never reach a prepared table (for :func:`combine`).

    Attributes
    ----------
    category : str
        The reason category (a key of ``summary["reasons"]``).
    reasons : list of str
        One sentence per row: what is wrong and how to fix it.
    column : str, optional
        The offending source column.
    pos : array of int
        The rows' 0-based positions in the prepared table (empty when ``rows`` say where).
    rows : array of int, optional
        Their row numbers (CSV: the line, header = 1).
    source : DataFrame, optional
        The rows' source values (shown as strings, as the quarantine does).
    file : str, optional
        The file the rows came from (shown in the quarantine's ``file`` column).
    """

    category: str
    reasons: list[str]
    column: str | None = None
    pos: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype="int64"))
    rows: np.ndarray | None = None
    source: pd.DataFrame | None = None
    file: str | None = None

    @classmethod
    def from_mask(
        cls, mask: np.ndarray, category: str, column: str | None, reasons: Any
    ) -> Rejected:
        """Return the rows where ``mask`` is true.

        Return the rows where ``mask`` is true; ``reasons`` holds one sentence per row of
        the prepared table (those of the rejected rows are kept).
        """
        mask = np.asarray(mask, dtype=bool)
        return cls(
            category,
            np.asarray(reasons, dtype=object)[mask].tolist(),
            column,
            pos=np.flatnonzero(mask),
        )

    def __len__(self) -> int:
        """Return the number of rejected rows."""
        return len(self.reasons)

    def table(self) -> pd.DataFrame:
        """Return the quarantine rows: ``row``, ``reason``, ``column``, ``file``, then the source."""
        assert self.source is not None and self.rows is not None, "needs rows and source"
        src = self.source.reset_index(drop=True).astype("str")
        src.columns = [
            f"{c} (source)" if c in ("row", "reason", "column", "file") else c for c in src.columns
        ]
        head = pd.DataFrame(
            {
                "row": np.asarray(self.rows, dtype="int64"),
                "reason": pd.Series(self.reasons, dtype="str"),
                "column": pd.Series([self.column] * len(src), dtype=object),
                "file": pd.Series([self.file] * len(src), dtype="str"),
            }
        )
        return pd.concat([head, src], axis=1)
