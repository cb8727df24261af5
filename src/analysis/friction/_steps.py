"""A step table as integer codes.

The shared ground of the touchpoint funnel and the period comparison
(:mod:`analysis.friction.funnel`, :mod:`analysis.friction.period`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.errors import DataError

MISSING_TOUCHPOINT = "(no touchpoint)"  # stands for a missing touchpoint value
STEP_COLUMNS = ["person_id", "journey_index", "pos", "touchpoint", "converted"]


@dataclass
class CodedSteps:
    """A step table as integer codes: journeys ``0..J-1``, touchpoints ``0..T-1``."""

    touchpoints: list[str]
    tp: np.ndarray  # (rows,) touchpoint code of each non-conversion row, in journey, pos order
    jid: np.ndarray  # (rows,) journey code
    pos: np.ndarray  # (rows,)
    ts: np.ndarray | None  # (rows,) int64 µs, or None
    stage: np.ndarray | None  # (rows,) object: the row's stage
    converted: np.ndarray  # (J,) bool
    closed: np.ndarray  # (J,) bool: outcome known (not open)
    last_pos: np.ndarray  # (J,) pos of the journey's last row (conversion included)
    end_ts: np.ndarray | None  # (J,) µs of the journey's last row
    start_ts: np.ndarray | None  # (J,) µs of the journey's first row
    groups: pd.DataFrame  # (G, by) the group values
    group: np.ndarray  # (J,) group code


def to_us(ts: pd.Series) -> np.ndarray:
    """Timestamps as int64 microseconds since the epoch (naive ones are taken as UTC)."""
    ts = pd.to_datetime(ts, utc=True)
    return ts.astype("datetime64[us, UTC]").astype("int64").to_numpy()


def check_steps(steps: pd.DataFrame, by: list[str], need: Sequence[str] = STEP_COLUMNS) -> None:
    """Refuse a step table that lacks a column ``need`` or ``by`` names, saying how to build one."""
    missing = [c for c in [*need, *by] if c not in steps.columns]
    if missing:
        raise DataError(
            f"the step table lacks columns {missing}",
            column=missing,
            fix="build it with Journeys.touchpoint_steps(by=..., events=...)",
        )


def journey_order(steps: pd.DataFrame) -> pd.DataFrame:
    """Return the rows in journey order (person, journey, pos); a copy only when they are not."""
    p = steps["person_id"].to_numpy()
    if not np.issubdtype(p.dtype, np.number):
        p = pd.factorize(steps["person_id"])[0]
    j = steps["journey_index"].to_numpy()
    q = steps["pos"].to_numpy()
    if len(p) > 1:
        dp, dj, dq = np.diff(p), np.diff(j), np.diff(q)
        if ((dp > 0) | ((dp == 0) & ((dj > 0) | ((dj == 0) & (dq > 0))))).all():
            return steps
    return steps.iloc[np.lexsort((q, j, p))]


def code_steps(steps: pd.DataFrame, by: list[str], *, need_time: bool = False) -> CodedSteps:
    steps = journey_order(steps)
    p = steps["person_id"].to_numpy()
    j = steps["journey_index"].to_numpy()
    new = np.ones(len(steps), dtype=bool)
    new[1:] = (p[1:] != p[:-1]) | (j[1:] != j[:-1])
    jid_all = np.cumsum(new) - 1
    first = np.flatnonzero(new)
    n_j = len(first)
    last = np.r_[first[1:] - 1, len(steps) - 1] if n_j else first
    pos_all = steps["pos"].to_numpy("int64")
    converted = steps["converted"].to_numpy(bool)[first]
    closed = (
        steps["outcome"].astype(str).to_numpy()[first] != "open"
        if "outcome" in steps.columns
        else np.ones(n_j, dtype=bool)
    )
    ts_all = None
    if "timestamp" in steps.columns and need_time:
        ts_all = to_us(steps["timestamp"])
    if by:
        gcodes, groups = factorize_rows(steps.iloc[first][by])
    else:
        gcodes, groups = np.zeros(n_j, dtype=np.int64), pd.DataFrame(index=[0])
    keep = (
        ~steps["conversion"].to_numpy(bool)
        if "conversion" in steps.columns
        else np.ones(len(steps), bool)
    )
    tp = steps["touchpoint"].to_numpy(object)[keep]
    tp_codes, touchpoints = pd.factorize(np.where(pd.isna(tp), MISSING_TOUCHPOINT, tp))
    stage = steps["stage"].to_numpy(object)[keep] if "stage" in steps.columns else None
    return CodedSteps(
        touchpoints=[str(t) for t in touchpoints],
        tp=tp_codes.astype(np.int64),
        jid=jid_all[keep],
        pos=pos_all[keep],
        ts=None if ts_all is None else ts_all[keep],
        stage=stage,
        converted=converted,
        closed=closed,
        last_pos=pos_all[last],
        end_ts=None if ts_all is None else ts_all[last],
        start_ts=None if ts_all is None else ts_all[first],
        groups=groups,
        group=gcodes,
    )


def factorize_rows(df: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """Return the group code of each row and the distinct groups, for one or several columns.

    The groups are sorted; missing values are a group of their own.
    """
    codes, uniques = zip(
        *(pd.factorize(df[c], sort=True, use_na_sentinel=False) for c in df.columns), strict=True
    )
    dims = [max(len(u), 1) for u in uniques]
    combined = np.ravel_multi_index(codes, dims) if len(df) else np.zeros(0, dtype=np.int64)
    code, distinct = pd.factorize(combined, sort=True)
    parts = np.unravel_index(np.asarray(distinct, dtype=np.int64), dims)
    groups = pd.DataFrame(
        {
            c: np.asarray(u, dtype=object)[i]
            for c, u, i in zip(df.columns, uniques, parts, strict=True)
        }
    )
    return code.astype(np.int64), groups


def journey_starts(jid: np.ndarray) -> np.ndarray:
    new = np.ones(len(jid), dtype=bool)
    new[1:] = jid[1:] != jid[:-1]
    return new


def first_and_last(c: CodedSteps) -> tuple[np.ndarray, np.ndarray]:
    """Rows that are the first / last occurrence of their touchpoint in their journey."""
    key = pd.Series(c.jid * max(len(c.touchpoints), 1) + c.tp)
    return (~key.duplicated(keep="first")).to_numpy(), (~key.duplicated(keep="last")).to_numpy()
