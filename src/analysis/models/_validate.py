"""The one validator of model input tables (as pymc-marketing's ``_validate_cols``).

Every model checks its table the same way, and reports every problem at once::

    require_table(df, "stage durations", ["stage", "duration_days"], source="...", fix="...")
    problems = Problems("stage durations")
    d = problems.numbers(df, "duration_days", problem="{n} duration(s) are ...", fix="days ≥ 0")
    problems.flags(df, "censored", problem="'censored' must be true/false", fix="...")
    problems.known(df, "stage", stages, problem="unknown stage(s) {values}", fix="...")
    problems.raise_if_any()     # one DataError listing them all (analysis.errors.combine_errors)

A problem names its column and its first ten rows (1-based, :func:`analysis.errors.example_rows`).
``problem`` texts are templates: ``{n}`` (rows at fault), ``{column}``, ``{examples}`` (the first
three values at fault) and ``{values}`` (the distinct values at fault, sorted, the first eight).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from analysis.errors import DataError, combine_errors, example_rows

__all__ = ["Problems", "group_labels", "require_table"]


def require_table(
    data: Any,
    what: str,
    columns: Sequence[str],
    *,
    fix: str,
    source: str | None = None,
    empty: str | None = None,
    empty_fix: str | None = None,
    missing: str = "missing column(s) {missing}",
) -> None:
    """Raise at the first problem that makes the table unusable: type, columns, no rows.

    Parameters
    ----------
    data : Any
        The model's input; anything but a DataFrame is a ``TypeError`` ("expected a DataFrame
        (``source``)").
    what : str
        What the table is, in words: every message starts with it.
    columns : sequence of str
        Required columns; the missing ones are one :class:`DataError` (``missing``, a template
        with ``{missing}``, and ``fix``).
    fix : str
        How to fix missing columns.
    source : str, optional
        Where such a table comes from (e.g. ``"Journeys.stage_durations()"``).
    empty : str, optional
        The problem of a table without rows (default "the table is empty").
    empty_fix : str, optional
        How to fix an empty table; ``None`` (and no ``empty``): an empty table is allowed.
    missing : str, default "missing column(s) {missing}"
        The problem of missing columns.
    """
    if not isinstance(data, pd.DataFrame):
        where = f" ({source})" if source else ""
        raise TypeError(f"{what}: expected a DataFrame{where}, got {type(data).__name__}")
    absent = [c for c in columns if c not in data.columns]
    if absent:
        raise DataError(f"{what}: " + missing.format(missing=absent), column=absent, fix=fix)
    if data.empty and (empty is not None or empty_fix is not None):
        raise DataError(f"{what}: {empty or 'the table is empty'}", fix=empty_fix)


def group_labels(
    df: pd.DataFrame, group: str | list[str] | None, known: set[str], what: str
) -> pd.Series:
    """Return the segment label of every row: the ``group`` column(s) joined, or ``"all"``.

    ``group="segment"`` on a table without that column means one segment, unless the table has
    columns beyond ``known`` (then which one names the segment is asked for).
    """
    cols = [] if group is None else [group] if isinstance(group, str) else list(group)
    if isinstance(group, str) and group == "segment" and "segment" not in df.columns:
        extra = [c for c in df.columns if c not in known]
        if extra:
            raise DataError(
                f"{what}: no 'segment' column, and the extra columns {extra} are not used",
                column=extra,
                fix=f"pass group={extra[0]!r} (or a list of columns) to say which columns name "
                "the segment",
            )
        cols = []
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataError(
            f"{what}: group column(s) {missing} not found",
            column=missing,
            fix=f"use one of the columns {list(df.columns)} or group=None",
        )
    if not cols:
        return pd.Series("all", index=df.index)
    return df[cols].astype(str).agg(" / ".join, axis=1)


class Problems:
    """The problems found in one input table, raised together as one :class:`DataError`.

    Parameters
    ----------
    what : str
        What the table is, in words: the column checks start their messages with it.
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self.errors: list[DataError] = []

    def __bool__(self) -> bool:
        """Return whether a problem was found."""
        return bool(self.errors)

    def add(
        self,
        problem: str,
        *,
        column: str | list[str] | None = None,
        mask: Any = None,
        fix: str | None = None,
        prefix: bool = True,
    ) -> None:
        """Record a problem; ``mask`` (true at the rows at fault) names the rows."""
        text = f"{self.what}: {problem}" if prefix else problem
        rows = example_rows(mask) if mask is not None else None
        self.errors.append(DataError(text, column=column, rows=rows, fix=fix))

    def _fault(
        self, df: pd.DataFrame, column: str, bad: pd.Series, problem: str, fix: str | None
    ) -> None:
        shown = df.loc[bad, column]
        values = sorted(set(shown.astype(str)))[:8]
        text = problem.format(
            n=int(bad.sum()), column=column, examples=shown.head(3).tolist(), values=values
        )
        self.add(text, column=column, mask=bad, fix=fix)

    def counts(self, df: pd.DataFrame, column: str, *, problem: str, fix: str) -> np.ndarray | None:
        """Check that ``column`` holds whole numbers ≥ 0; return them as int64 (None if not)."""
        vals = pd.to_numeric(df[column], errors="coerce")
        bad = vals.isna() | (vals < 0) | ~np.isfinite(vals) | (vals != np.round(vals))
        if bad.any():
            self._fault(df, column, bad, problem, fix)
            return None
        return vals.to_numpy(dtype=np.int64)

    def numbers(
        self, df: pd.DataFrame, column: str, *, problem: str, fix: str, finite: bool = True
    ) -> pd.Series:
        """Check that ``column`` holds numbers ≥ 0 (finite ones unless ``finite=False``).

        Returns the column as numbers (NaN where it holds none).
        """
        vals = pd.to_numeric(df[column], errors="coerce")
        bad = vals.isna() | (vals < 0)
        if finite:
            bad = bad | ~np.isfinite(vals)
        if bad.any():
            self._fault(df, column, bad, problem, fix)
        return vals

    def flags(self, df: pd.DataFrame, column: str, *, problem: str, fix: str) -> None:
        """Check that ``column`` holds true/false (or 1/0) and nothing missing."""
        col = df[column]
        bad = col.isna() | ~col.isin([True, False, 0, 1])
        if bad.any():
            self._fault(df, column, bad, problem, fix)

    def known(
        self, df: pd.DataFrame, column: str, allowed: Iterable[Any], *, problem: str, fix: str
    ) -> None:
        """Check that every value of ``column`` (as text) is one of ``allowed``."""
        bad = ~df[column].astype(str).isin([str(a) for a in allowed])
        if bad.any():
            self._fault(df, column, bad, problem, fix)

    def raise_if_any(self) -> None:
        """Raise the problems found so far as one :class:`DataError` (numbered when several)."""
        if self.errors:
            raise combine_errors(self.errors)
