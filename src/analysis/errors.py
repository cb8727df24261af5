"""The error for input that cannot be used as it is, and the hints it carries.

A :class:`DataError` names the file, column and rows and says how to fix it. Kept free of pandas
so that the command line can report one quickly.
"""

from __future__ import annotations

import difflib
from typing import Any


def close_matches(name: str, options: Any, n: int = 1) -> list[str]:
    """Return the ``n`` options closest to ``name`` (for "did you mean …?" hints), best first."""
    return difflib.get_close_matches(str(name), [str(o) for o in options], n=n, cutoff=0.6)


def did_you_mean(name: Any, options: Any, n: int = 1) -> str:
    """Return ``"; did you mean 'a', 'b'?"`` for the options closest to ``name``, or ``""``.

    The one "did you mean" hint of the project: append it to a :class:`DataError`'s ``fix``.

    >>> did_you_mean("emial", ["email", "phone"])
    "; did you mean 'email'?"
    """
    close = close_matches(str(name), options, n=n)
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def missing_file_error(path: Any, *, what: str = "file") -> DataError:
    """Return the error for a path that is not an existing file, with the folder's closest names.

    A missing path gets "file not found" and up to three close names from its folder; a folder
    gets "expected a file, got a folder". Raise it: ``raise missing_file_error(path)``.
    """
    from pathlib import Path

    p = Path(path)
    if p.is_dir():
        return DataError(
            "expected a file, got a folder", file=str(p), fix=f"pass the path of one {what}"
        )
    folder = p.parent if str(p.parent) else Path(".")
    names = sorted(q.name for q in folder.iterdir()) if folder.is_dir() else []
    return DataError(
        "file not found", file=str(p), fix="check the path" + did_you_mean(p.name, names, n=3)
    )


def example_rows(mask: Any, limit: int = 10) -> list[int]:
    """Return the 1-based row numbers where ``mask`` is true, the first ``limit`` of them.

    The rows a :class:`DataError` names (as a spreadsheet counts them, without the header).
    """
    import numpy as np

    return [int(i) + 1 for i in np.flatnonzero(np.asarray(mask))[:limit]]


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
        if self.rows:
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
