"""Rows that break the schema's rules: readable reasons from pandera's failure cases."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from analysis.schema import (
    CHECK_FINITE,
    CHECK_IDENTIFIER,
    CHECK_NON_NEGATIVE,
    CHECK_NOT_EMPTY,
    CHECK_NOT_RESERVED,
    CHECK_SENTIMENT_RANGE,
    CHECK_STAGE,
    RESERVED_STATES,
)
from analysis.sources.column_map.map import ColumnMap
from analysis.sources.column_map.parse import show_value
from analysis.sources.column_map.result import Rejected


def issues_from_failures(
    fc: pd.DataFrame,
    work: pd.DataFrame,
    target: dict[str, pd.Series],
    rows: np.ndarray,
    exact_dup: np.ndarray,
    parse_issues: list[Rejected],
    cmap: ColumnMap,
    sentiment_hint: str,
) -> list[Rejected]:
    """Map pandera's failure cases back to rows and readable reasons.

    Long because it is one dispatch over the schema's checks, one short branch per check,
    and reads best as the table of messages it is.
    """
    n = len(work)
    parsed_bad: dict[str, np.ndarray] = {}
    for it in parse_issues:
        if it.column:
            m = parsed_bad.setdefault(it.column, np.zeros(n, dtype=bool))
            m[it.pos] = True
    out: list[Rejected] = []
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
            out.append(Rejected(f"empty {col}", [f"{col} is empty"] * len(pos), col, pos=pos))
        elif check == "not_nullable" and col == "timestamp":
            out.append(
                Rejected("missing timestamp", ["timestamp is missing"] * len(pos), col, pos=pos)
            )
        elif check == CHECK_NOT_RESERVED:
            reserved = ", ".join(sorted(RESERVED_STATES))
            out.append(
                Rejected(
                    "reserved name",
                    [
                        f"{col} {show_value(v)} is a reserved name ({reserved} are used by journeys); rename it in the source"
                        for v in shown
                    ],
                    col,
                    pos=pos,
                )
            )
        elif check == CHECK_STAGE:
            stages = ", ".join(cmap.stage_map.stages)
            out.append(
                Rejected(
                    "unknown stage",
                    [
                        f"stage {show_value(v)} is not one of {stages}; add it to stage_map.stages"
                        for v in shown
                    ],
                    col,
                    pos=pos,
                )
            )
        elif check == CHECK_NON_NEGATIVE and col == "revenue":
            out.append(
                Rejected(
                    "negative revenue",
                    [f"revenue {show_value(v)} is negative" for v in shown],
                    col,
                    pos=pos,
                )
            )
        elif check == CHECK_FINITE and col == "revenue":
            out.append(
                Rejected(
                    "non-numeric revenue",
                    [f"revenue {show_value(v)} is not a finite number" for v in shown],
                    col,
                    pos=pos,
                )
            )
        elif check == CHECK_SENTIMENT_RANGE:
            hint = f" ({sentiment_hint})" if sentiment_hint else ""
            out.append(
                Rejected(
                    "sentiment out of range",
                    [f"sentiment {show_value(v)} is outside [-1, 1]{hint}" for v in shown],
                    col,
                    pos=pos,
                )
            )
        elif check == "field_uniqueness" and col == "event_id":
            dup_ids.append(pos)  # decided below, once the other problems are known
        else:
            out.append(
                Rejected(
                    f"invalid {col}",
                    [f"{col} {show_value(v)} fails: {check}" for v in shown],
                    col,
                    pos=pos,
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
                Rejected(
                    "duplicate event_id",
                    [
                        f"event_id {show_value(v)} is also used by row {rows[f]} with different content"
                        for v, f in zip(ids.iloc[pos], firsts, strict=True)
                    ],
                    "event_id",
                    pos=pos,
                )
            )

    id_fail = fc.loc[fc["check"] == CHECK_IDENTIFIER, "index"]
    if len(id_fail):
        pos = np.unique(id_fail.to_numpy(dtype="int64"))
        ids = [c for c in cmap.identifiers if c in work.columns]
        out.append(
            Rejected(
                "no identifier",
                [f"no identifier: {', '.join(ids)} are all empty"] * len(pos),
                None,
                pos=pos,
            )
        )
    return out


# ============================================================================================
# Exact duplicates, rows with the wrong number of fields, reasons per row
# ============================================================================================


def exact_duplicates(df: pd.DataFrame, rows: np.ndarray) -> tuple[np.ndarray, list[Rejected]]:
    """Return which rows repeat an earlier row in every source column (the first is kept)."""
    n = len(df)
    issues: list[Rejected] = []
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
                Rejected(
                    "exact duplicate",
                    [f"exact duplicate of row {rows[f]}" for f in first[dup_pos]],
                    None,
                    pos=dup_pos,
                )
            )
    return exact_dup, issues


def ragged_reasons(issues: list[Rejected], ragged: dict[int, tuple[str, str]]) -> list[Rejected]:
    """Return ``issues`` where rows with the wrong number of fields have that as their one reason."""
    rpos = np.array(sorted(ragged), dtype="int64")
    issues = [
        Rejected(
            it.category,
            [r for r, k in zip(it.reasons, keep, strict=True) if k],
            it.column,
            pos=it.pos[keep],
        )
        for it in issues
        for keep in [~np.isin(it.pos, rpos)]
    ]
    for cat in ("too few fields", "too many fields"):
        ps = [p for p in rpos if ragged[int(p)][0] == cat]
        if ps:
            issues.append(
                Rejected(
                    cat, [ragged[int(p)][1] for p in ps], None, pos=np.array(ps, dtype="int64")
                )
            )
    return issues


def quarantine_table(
    issues: list[Rejected], work: pd.DataFrame, df: pd.DataFrame, rows: np.ndarray
) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """Return the reasons per row (``parts``), the rows to quarantine and the quarantine table.

    A row's reasons are joined by "; " in the order of the canonical columns; the quarantine
    has ``row``, ``reason``, ``column``, then the source values as strings.
    """
    n = len(work)
    col_order = {c: i for i, c in enumerate(work.columns)}
    if issues:
        parts = pd.concat(
            [
                pd.DataFrame(
                    {
                        "pos": it.pos.astype("int64"),
                        "category": it.category,
                        "column": it.column,
                        "reason": it.reasons,
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
    quarantine = quarantine_frame(rows[qpos], reason.to_numpy(), column.to_numpy(), df.iloc[qpos])
    return parts, bad, quarantine


def reason_counts(
    parts: pd.DataFrame, rows: np.ndarray
) -> tuple[dict[str, int], dict[str, dict[str, Any]]]:
    """Return the rows per reason category and the first example of each."""
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
    return reasons, examples


def quarantine_frame(
    rows: np.ndarray, reason: Any, column: Any, source_rows: pd.DataFrame
) -> pd.DataFrame:
    """Return the quarantine table: ``row``, ``reason``, ``column``, then the source values.

    One line per quarantined row: its row number in the file, its reasons and offending
    columns ("; "-joined), and its source values as strings (CSV cells exactly as read); a
    source column named like one of the first three is shown as ``"<name> (source)"``.
    """
    qsrc = source_rows.reset_index(drop=True)
    for c in qsrc.columns:
        if qsrc[c].dtype != "str":
            qsrc[c] = qsrc[c].astype("str")
    qsrc.columns = [
        f"{c} (source)" if c in ("row", "reason", "column") else c for c in qsrc.columns
    ]
    head = pd.DataFrame(
        {
            "row": np.asarray(rows).astype("int64"),
            "reason": pd.Series(np.asarray(reason), dtype="str"),
            "column": pd.Series(np.asarray(column, dtype=object), dtype=object),
        }
    )
    return pd.concat([head, qsrc], axis=1)
