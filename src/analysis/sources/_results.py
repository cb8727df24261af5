"""Rows an adapter rejects itself, and the ways its load results are merged.

An adapter passes its touchpoint rows through :func:`analysis.sources.validate_events` (the
schema's rules, quarantine reasons for free). Some problems only the adapter can see — a deal
whose lead is not in the leads file, a session whose outcome is not TRUE/FALSE, a GA4 record
whose ``event_params`` is not a list — so it turns those rows into one :class:`Rejected` per
problem, with a reason per row, and merges them into the :class:`LoadResult`:

- rows of the table the adapter prepared (``Rejected(..., pos=...)``):
  :func:`validate_with_rejects` validates the other rows and adds these to the quarantine
  (:func:`add_rejected` when the adapter validates itself);
- rows of a file that never reach a validated table (``Rejected(..., rows=, source=, file=)``):
  :func:`combine` builds one :class:`LoadResult` from the validated parts (one per file) and
  these, with ``rows_read == rows_kept + rows_quarantined`` over everything.

:func:`analysis.sources.combine_sources` merges *sources* (several adapters, ids prefixed, a
``source`` column) and shares :func:`sum_reasons` with these.

>>> res = combine([("leads.csv", leads_res), ("deals.csv", deals_res)],      # doctest: +SKIP
...               file="olist/", rejected=[Rejected(...)], notes=["..."])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from analysis.schema import DataError, combine_errors, validate_canonical
from analysis.sources.column_map import ColumnMap, LoadResult, Rejected, validate_table
from analysis.sources.column_map.quarantine import quarantine_frame

__all__ = [
    "Rejected",
    "add_rejected",
    "combine",
    "quarantine_rows",
    "sum_reasons",
    "validate_with_rejects",
]


def sum_reasons(*counts: Mapping[Any, int]) -> dict[str, int]:
    """Return the reason counts added up, the most frequent first (ties in order of appearance)."""
    total: dict[str, int] = {}
    for c in counts:
        for k, v in c.items():
            total[str(k)] = total.get(str(k), 0) + int(v)
    return dict(sorted(total.items(), key=lambda kv: -kv[1]))


# ============================================================================================
# Rows of a prepared table: rejected before validation
# ============================================================================================


def quarantine_rows(
    parts: pd.DataFrame, source_rows: pd.DataFrame, rows: np.ndarray
) -> pd.DataFrame:
    """Return the quarantine table of the rows an adapter rejects itself.

    ``parts`` has one line per problem (``pos``: 0-based position in ``source_rows``,
    ``reason``, ``column``); a row's reasons and columns are joined by "; ". Columns: ``row``
    (``rows[pos]``), ``reason``, ``column``, then the source values as strings (as
    :class:`LoadResult` documents).
    """
    grouped = parts.groupby("pos", sort=True)
    reason = grouped["reason"].agg("; ".join)
    column = grouped["column"].agg(
        lambda x: "; ".join(dict.fromkeys(v for v in x if isinstance(v, str))) or None
    )
    qpos = reason.index.to_numpy()
    return quarantine_frame(
        rows[qpos], reason.to_numpy(), column.to_numpy(), source_rows.iloc[qpos]
    )


def _positions(r: Rejected) -> np.ndarray:
    return np.asarray(r.pos)


def _refuse_all(rejects: list[Rejected], rows: np.ndarray, source: str) -> DataError:
    """Return the error for a table whose every row an adapter rejected (the reasons listed)."""
    errors = [
        DataError(
            f"{len(r)} row(s): {r.reasons[0]}",
            column=r.column,
            rows=[int(x) for x in rows[np.sort(_positions(r))][:20]],
            fix="fix the export; no row could be used",
        )
        for r in rejects
    ]
    if len(errors) == 1:
        return DataError(
            f"no row could be used: {errors[0].problem}",
            file=source,
            column=errors[0].column,
            rows=errors[0].rows,
            fix=errors[0].fix,
        )
    return combine_errors(errors, file=source)


def add_rejected(
    res: LoadResult, table: pd.DataFrame, rows: np.ndarray, rejects: list[Rejected]
) -> LoadResult:
    """Return ``res`` (the validated rows of ``table`` the adapter kept) with ``rejects`` added.

    The rejected rows of ``table`` join the quarantine (sorted by row, with their reasons and
    source values), the reason counts and the examples; ``rows_read`` becomes ``len(table)``.
    """
    summary = dict(res.summary)
    rejects = [r for r in rejects if len(_positions(r))]
    if not rejects:
        summary["rows_read"] = len(table)
        res.events.attrs["load_report"] = dict(summary)
        return LoadResult(
            events=res.events, quarantine=res.quarantine, summary=summary, examples=res.examples
        )
    parts = pd.concat(
        [
            pd.DataFrame(
                {
                    "pos": _positions(r).astype("int64"),
                    "category": r.category,
                    "column": r.column,
                    "reason": r.reasons,
                }
            )
            for r in rejects
        ],
        ignore_index=True,
    ).sort_values("pos", kind="stable")
    mine = quarantine_rows(parts, table, rows)
    quarantine = pd.concat([res.quarantine, mine], ignore_index=True)
    quarantine = quarantine.sort_values("row", kind="stable").reset_index(drop=True)
    quarantine["column"] = (
        quarantine["column"].astype(object).where(quarantine["column"].notna(), None)
    )
    counts = parts.drop_duplicates(["pos", "category"])["category"].value_counts(sort=True)
    summary["reasons"] = sum_reasons(summary["reasons"], counts.to_dict())
    examples = dict(res.examples)
    for r in rejects:
        pos = _positions(r)
        first = int(np.argmin(pos))
        examples.setdefault(
            r.category,
            {"row": int(rows[pos[first]]), "column": r.column, "reason": r.reasons[first]},
        )
    summary["rows_read"] = len(table)
    summary["rows_quarantined"] = len(quarantine)
    res.events.attrs["load_report"] = dict(summary)
    return LoadResult(events=res.events, quarantine=quarantine, summary=summary, examples=examples)


def validate_with_rejects(
    df: pd.DataFrame,
    *,
    source: str,
    cmap: ColumnMap,
    rows: np.ndarray,
    rejects: list[Rejected],
    blank_rows: list[int] | None = None,
    notes: list[str] | None = None,
) -> LoadResult:
    """Validate the rows an adapter has prepared and add those it rejected itself.

    :func:`analysis.sources.validate_events` for the rows of ``df`` no :class:`Rejected` names
    (by ``pos``); the rejected ones join the quarantine with their reasons, counted as read.
    When every row is rejected, a DataError lists the reasons (nothing could be loaded).
    """
    n = len(df)
    rejects = [r for r in rejects if len(_positions(r))]
    bad = np.zeros(n, dtype=bool)
    for r in rejects:
        bad[_positions(r)] = True
    if n and bad.all():
        raise _refuse_all(rejects, rows, source)
    good = ~bad
    res = validate_table(
        df.loc[good].reset_index(drop=True),
        source=source,
        cmap=cmap,
        rows=rows[good],
        blank_rows=blank_rows,
    )
    summary = dict(res.summary)
    summary["notes"] = list(summary["notes"]) + list(notes or [])
    res = LoadResult(
        events=res.events, quarantine=res.quarantine, summary=summary, examples=res.examples
    )
    return add_rejected(res, df, rows, rejects)


# ============================================================================================
# Several files of one export: one LoadResult
# ============================================================================================


def _stack_events(parts: list[tuple[str, LoadResult]]) -> pd.DataFrame:
    events = [res.events for _, res in parts]
    str_cols = {c for ev in events for c in ev.columns if ev[c].dtype == "str"}
    ev = pd.concat(events, ignore_index=True) if len(events) > 1 else events[0].copy()
    for c in str_cols:
        if ev[c].dtype != "str":
            ev[c] = ev[c].astype("str")
    return ev


def _stack_quarantine(
    parts: list[tuple[str, LoadResult]], rejected: list[Rejected]
) -> pd.DataFrame:
    """Return the validators' quarantine rows (with their file), then the adapter's."""
    qparts = []
    for name, res in parts:
        q = res.quarantine
        if len(q):
            q = q.copy()
            q.insert(3, "file", pd.Series([name] * len(q), dtype="str"))
            qparts.append(q)
    qparts += [r.table() for r in rejected]
    if qparts:
        quarantine = pd.concat(qparts, ignore_index=True)
        for c in quarantine.columns[4:]:
            quarantine[c] = quarantine[c].astype("str")
        return quarantine
    cols = ["row", "reason", "column", "file"]
    return pd.DataFrame({c: pd.Series([], dtype="int64" if c == "row" else "str") for c in cols})


def combine(
    parts: list[tuple[str, LoadResult]],
    *,
    file: str,
    rejected: list[Rejected] | None = None,
    notes: list[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> LoadResult:
    """Return one :class:`LoadResult` from validated parts (one per file) and adapter rejects.

    Events are stacked (canonical columns first, then every part's attributes; an attribute a
    part lacks is missing there); the quarantine gets a ``file`` column after ``column``; the
    summary adds up the counts and reasons, keeps every note (prefixed by its file when there are
    several parts) and records ``files`` (rows read per file). ``extra`` entries are added to the
    summary as they are. Each :class:`Rejected` needs ``rows``, ``source`` and ``file``.
    """
    rejected = [r for r in (rejected or []) if len(r)]
    ev = _stack_events(parts)
    quarantine = _stack_quarantine(parts, rejected)
    examples: dict[str, dict[str, Any]] = {}
    all_notes: list[str] = []
    for name, res in parts:
        for k, v in res.examples.items():
            examples.setdefault(k, {**v, "file": name})
        prefix = f"{name}: " if len(parts) > 1 else ""
        all_notes += [prefix + n for n in res.summary["notes"]]
    for r in rejected:
        assert r.rows is not None
        examples.setdefault(
            r.category,
            {"row": int(r.rows[0]), "column": r.column, "reason": r.reasons[0], "file": r.file},
        )
    all_notes += list(notes or [])
    first = parts[0][1].summary
    identifiers = list(dict.fromkeys(c for _, res in parts for c in res.summary["identifiers"]))
    summary: dict[str, Any] = {
        "file": file,
        "rows_read": sum(res.summary["rows_read"] for _, res in parts)
        + sum(len(r) for r in rejected),
        "rows_kept": len(ev),
        "rows_quarantined": len(quarantine),
        "duplicates": sum(res.summary["duplicates"] for _, res in parts),
        "blank_rows": sum(res.summary["blank_rows"] for _, res in parts),
        "reasons": sum_reasons(
            *(res.summary["reasons"] for _, res in parts), *({r.category: len(r)} for r in rejected)
        ),
        "notes": all_notes,
        "identifiers": identifiers,
        "stages": first["stages"],
        "stage_transitions": first.get("stage_transitions"),
        "mapping": None,
        **(extra or {}),
    }
    ev.attrs["load_report"] = dict(summary)
    try:
        validate_canonical(ev, identifiers=identifiers, name=file)
    except Exception as exc:  # pragma: no cover - a bug, not bad data
        raise AssertionError(
            f"combined rows break the canonical schema (a bug in the adapter):\n{exc}"
        ) from None
    return LoadResult(events=ev, quarantine=quarantine, summary=summary, examples=examples)
