"""Touchpoint steps: every touchpoint of every journey, in order (the input of friction).

:func:`touchpoint_steps` is :meth:`Journeys.touchpoint_steps
<analysis.journeys.Journeys.touchpoint_steps>`, in named steps: the step rows from the
engine, the text columns carried (from the data in memory when the journeys keep it), the
``touchpoint`` column of the events when given, and the table.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import ibis
import numpy as np
import pandas as pd

from analysis.engine import to_pandas
from analysis.journeys._common import KEYS, by_list, from_us
from analysis.schema import DataError

if TYPE_CHECKING:
    from analysis.journeys.model import Journeys

log = logging.getLogger(__name__)


def touchpoint_steps(
    jr: Journeys, by: str | list[str] | None = None, *, events: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Return every touchpoint of every journey: :meth:`Journeys.touchpoint_steps <analysis.journeys.Journeys.touchpoint_steps>`."""
    by = by_list(by)
    jr.check_by(by)
    # text columns are taken from the data in memory by row number (as Journeys.first_touch
    # does): converting millions of strings out of the engine and back costs more
    in_memory = jr.data is not None
    df = _step_rows(jr, by, in_memory)
    rows = df["_row"].to_numpy("int64")
    by_values, channel, stage = _carried(jr, df, rows, by, in_memory)
    touchpoint, source = channel, "channel"
    if events is not None and "touchpoint" in events.columns:
        touchpoint, source = _touchpoints(jr, events, rows), "touchpoint"
    outcome = np.array(["converted", "dropoff", "open"], dtype=object)[
        df["_outcome"].to_numpy("int64")
    ]
    out = pd.DataFrame(
        {
            **by_values,
            "person_id": df["person_id"].astype("int64"),
            "journey_index": df["journey_index"].astype("int64"),
            "pos": df["pos"].astype("int64"),
            "timestamp": from_us(df["_us"]),
            "touchpoint": touchpoint,
            "stage": stage,
            "conversion": df["conversion"].astype(bool),
            "converted": df["converted"].astype(bool),
            "outcome": pd.Series(outcome, dtype=str),
            "journey_start": from_us(df["_start_us"]),
            "n_touchpoints": df["n_touchpoints"].astype("int64"),
        }
    )
    if source == "channel":
        log.info("touchpoint_steps: no touchpoint column given, the channel stands for it")
    out.attrs["touchpoint_from"] = source
    return out


def _step_rows(jr: Journeys, by: list[str], in_memory: bool) -> pd.DataFrame:
    """Return the touchpoints from the engine, in journey order, with their journey's figures.

    Without the data in memory, ``channel``, ``stage`` and the ``by`` columns come along.
    """
    ev = jr.events
    first_pos = ev.pos.min().over(ibis.window(group_by=KEYS))
    e = ev.select(
        *KEYS,
        "_row",
        "_us",
        "conversion",
        *([] if in_memory else ["channel", "stage"]),
        pos=(ev.pos - first_pos + 1).cast("int64"),
    )
    j = jr.journey_rows
    j = j.select(
        *KEYS,
        "_start_us",
        "n_touchpoints",
        "converted",
        _outcome=j.outcome.cases(("converted", 0), ("dropoff", 1), else_=2).cast("int8"),
    )
    e = e.join(j, KEYS)
    if not in_memory:
        e = jr.with_by(e, by)
    return to_pandas(jr.con, e.order_by([*KEYS, "pos"]))


def _carried(
    jr: Journeys, df: pd.DataFrame, rows: np.ndarray, by: list[str], in_memory: bool
) -> tuple[dict[str, pd.Series], pd.Series, pd.Series]:
    """Return the ``by`` values (at each journey's first touchpoint), channel and stage per step."""
    if not in_memory:
        return {b: df[b] for b in by}, df["channel"], df["stage"]
    data = jr.data
    assert data is not None  # in_memory

    def take(col: str, idx: np.ndarray) -> pd.Series:
        return data[col].take(idx).reset_index(drop=True)

    starts = np.where(df["pos"].to_numpy() == 1, np.arange(len(rows)), 0)
    first_row = rows[np.maximum.accumulate(starts)] if len(rows) else rows
    by_values = {b: take(b, first_row) for b in by}
    return by_values, take("channel", rows), take("stage", rows)


def _touchpoints(jr: Journeys, events: pd.DataFrame, rows: np.ndarray) -> pd.Series:
    """Return the ``touchpoint`` of each step from ``events``; raise unless they built ``jr``."""
    kept = events.loc[events["person_id"].notna()] if events["person_id"].isna().any() else events
    same = len(kept) == jr.summary.get("events_used", len(kept)) and (
        jr.data is None
        or np.array_equal(kept["event_id"].to_numpy(), jr.data["event_id"].to_numpy())
    )
    if not same:
        raise DataError(
            "the events passed to touchpoint_steps are not those the journeys were built from",
            column="event_id",
            fix="pass the same frame that was given to build_journeys (e.g. ctx.events)",
        )
    return kept["touchpoint"].take(rows).reset_index(drop=True)
