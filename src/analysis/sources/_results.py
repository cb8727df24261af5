"""Helpers for adapters: rows an adapter rejects itself, and one LoadResult from several files.

An adapter passes its touchpoint rows through :func:`analysis.sources.validate_events` (the
schema's rules, quarantine reasons for free). Some problems only the adapter can see — a deal
whose lead is not in the leads file, a session whose outcome is not TRUE/FALSE — so it turns those
rows into :class:`Rejected` quarantine rows with a reason of its own, and :func:`combine` builds
the one :class:`LoadResult` with ``rows_read == rows_kept + rows_quarantined`` over everything.

>>> res = combine([("leads.csv", leads_res), ("deals.csv", deals_res)],      # doctest: +SKIP
...               file="olist/", rejected=[Rejected(...)], notes=["..."])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analysis.schema import validate_canonical
from analysis.sources.column_map import LoadResult


@dataclass
class Rejected:
    """Source rows an adapter quarantines itself.

    Attributes
    ----------
    file : str
        The file the rows came from (shown in the quarantine's ``file`` column).
    source : DataFrame
        The rows' source values (shown as strings, as the quarantine does).
    rows : array of int
        Their row numbers (CSV: the line, header = 1).
    category : str
        The reason category (a key of ``summary["reasons"]``).
    reasons : list of str
        One sentence per row: what is wrong and how to fix it.
    column : str, optional
        The offending source column.
    """

    file: str
    source: pd.DataFrame
    rows: np.ndarray
    category: str
    reasons: list[str]
    column: str | None = None
    notes: list[str] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
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


def combine(
    parts: list[tuple[str, LoadResult]],
    *,
    file: str,
    rejected: list[Rejected] | None = None,
    notes: list[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> LoadResult:
    """One :class:`LoadResult` from validated parts (one per file) and adapter rejects.

    Events are stacked (canonical columns first, then every part's attributes; an attribute a
    part lacks is missing there); the quarantine gets a ``file`` column after ``column``; the
    summary adds up the counts and reasons, keeps every note (prefixed by its file when there are
    several parts) and records ``files`` (rows read per file). ``extra`` entries are added to the
    summary as they are.
    """
    rejected = [r for r in (rejected or []) if len(r.source)]
    events = [res.events for _, res in parts]
    str_cols = {c for ev in events for c in ev.columns if ev[c].dtype == "str"}
    ev = pd.concat(events, ignore_index=True) if len(events) > 1 else events[0].copy()
    for c in str_cols:
        if ev[c].dtype != "str":
            ev[c] = ev[c].astype("str")
    # quarantine: the validators' rows (with their file), then the adapter's
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
    else:
        cols = ["row", "reason", "column", "file"]
        quarantine = pd.DataFrame(
            {c: pd.Series([], dtype="int64" if c == "row" else "str") for c in cols}
        )

    reasons: dict[str, int] = {}
    examples: dict[str, dict[str, Any]] = {}
    all_notes: list[str] = []
    for name, res in parts:
        for k, v in res.summary["reasons"].items():
            reasons[k] = reasons.get(k, 0) + int(v)
        for k, v in res.examples.items():
            examples.setdefault(k, {**v, "file": name})
        prefix = f"{name}: " if len(parts) > 1 else ""
        all_notes += [prefix + n for n in res.summary["notes"]]
    for r in rejected:
        reasons[r.category] = reasons.get(r.category, 0) + len(r.source)
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
        + sum(len(r.source) for r in rejected),
        "rows_kept": len(ev),
        "rows_quarantined": len(quarantine),
        "duplicates": sum(res.summary["duplicates"] for _, res in parts),
        "blank_rows": sum(res.summary["blank_rows"] for _, res in parts),
        "reasons": dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
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
