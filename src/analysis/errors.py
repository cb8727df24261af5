"""The error for input that cannot be used as it is: names the file, column and rows and says
how to fix it. Kept free of pandas so that the command line can report one quickly.
"""

from __future__ import annotations

import difflib
from typing import Any


def close_matches(name: str, options: Any, n: int = 1) -> list[str]:
    """The ``n`` options closest to ``name`` (for "did you mean …?" hints), best first."""
    return difflib.get_close_matches(str(name), [str(o) for o in options], n=n, cutoff=0.6)


class DataError(ValueError):
    """Input data that cannot be used as it is.

    The message names the file, the column(s), example rows (1-based, as a spreadsheet shows
    them, counting the header as row 1 for CSV) and how to fix the problem.
    """

    def __init__(
        self,
        problem: str,
        *,
        file: str | None = None,
        column: str | list[str] | None = None,
        rows: list[int] | None = None,
        fix: str | None = None,
    ) -> None:
        self.problem = problem
        self.file = file
        self.column = column
        self.rows = list(rows) if rows is not None else None
        self.fix = fix
        #: the separate problems when several are reported together (see ``combine_errors``)
        self.problems: list[DataError] = [self]
        parts = [problem]
        if file:
            parts.append(f"  file:   {file}")
        if column:
            cols = column if isinstance(column, str) else ", ".join(column)
            parts.append(f"  column: {cols}")
        if rows:
            shown = ", ".join(str(r) for r in self.rows[:5])
            more = f" (and {len(self.rows) - 5} more)" if len(self.rows) > 5 else ""
            parts.append(f"  rows:   {shown}{more}")
        if fix:
            parts.append("  fix:    " + fix.replace("\n", "\n          "))
        super().__init__("\n".join(parts))


# --------------------------------------------------------------------------------------------
# Combining problems: all file-level problems are reported together, in one DataError
# --------------------------------------------------------------------------------------------


def combine_errors(errors: list[DataError], *, file: str | None = None) -> DataError:
    """One :class:`DataError` that lists every problem in ``errors`` (numbered).

    The combined error keeps the parts in ``.problems`` and the union of their columns in
    ``.column``. A single error is returned as it is.
    """
    if not errors:
        raise ValueError("combine_errors needs at least one error")
    if len(errors) == 1:
        return errors[0]
    blocks = []
    columns: list[str] = []
    for i, err in enumerate(errors, start=1):
        lines = [f"{i}. " + err.problem.replace("\n", "\n   ")]
        if err.column:
            cols = [err.column] if isinstance(err.column, str) else list(err.column)
            columns += [c for c in cols if c not in columns]
            lines.append(f"   column: {', '.join(cols)}")
        if err.rows:
            shown = ", ".join(str(r) for r in err.rows[:5])
            more = f" (and {len(err.rows) - 5} more)" if len(err.rows) > 5 else ""
            lines.append(f"   rows:   {shown}{more}")
        if err.fix:
            lines.append("   fix:    " + err.fix.replace("\n", "\n           "))
        blocks.append("\n".join(lines))
    problem = (
        f"{len(errors)} problems with the input (all are listed; nothing was loaded):\n"
        + "\n".join(blocks)
    )
    combined = DataError(problem, file=file or errors[0].file, column=columns or None)
    combined.problems = list(errors)
    return combined
