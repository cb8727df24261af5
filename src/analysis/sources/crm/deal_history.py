"""Deals in the history layout: one row per stage change (Salesforce ``OpportunityHistory``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from analysis.schema import OFFLINE_CHANNELS
from analysis.sources._results import Rejected
from analysis.sources.column_map import ColumnMap, LoadResult, show_value, to_str
from analysis.sources.crm.deal_stages import deal_columns, stage_touchpoints
from analysis.sources.crm.reading import Source
from analysis.sources.crm.roles import attributes, norm_series
from analysis.sources.crm.rows import amount_issue, finish, truncation
from analysis.sources.crm.tables import WON_TOUCHPOINTS

__all__ = ["deal_history"]


def deal_history(
    src: Source,
    found: dict[str, str],
    cmap: ColumnMap,
    table: dict[str, str],
    channel: str,
    drop: Iterable[str],
) -> LoadResult:
    """Return the touchpoints of a one-row-per-stage-change table (``layout="history"``).

    Rows that repeat the deal's previous stage are quarantined as "repeated stage".
    """
    df, n = src.df, len(src.df)
    notes: list[str] = []
    deal_id = to_str(df[found["deal_id"]])
    stage = to_str(df[found["stage"]])
    tp = stage_touchpoints(stage, table, notes)
    when = df[found["changed"]]
    pre: list[Rejected] = truncation(src, n)
    repeated = _repeated_stages(deal_id, stage, when, cmap)
    if repeated.any():
        reasons = np.full(n, "", dtype=object)
        reasons[repeated] = (
            "stage " + stage[repeated].map(show_value) + " repeats the deal's previous stage "
            "(an amount or close-date change, not a stage change)"
        ).to_numpy(dtype=object)
        pre.append(Rejected.from_mask(repeated, "repeated stage", found["stage"], reasons))
    conversion = tp.isin(WON_TOUCHPOINTS).to_numpy()
    revenue = pd.Series(np.nan, index=df.index, dtype="float64")
    prepared: dict[str, Any] = {
        "timestamp": when,
        **deal_columns(src, found, notes),
        "channel": pd.Series(channel, index=df.index, dtype="str"),
        "touchpoint": tp,
        "online": pd.Series(channel not in (OFFLINE_CHANNELS | {"crm"}), index=df.index),
        "conversion": pd.Series(conversion, index=df.index),
        "deal_stage": stage,
    }
    if "amount" in found:
        amount, issues = amount_issue(df[found["amount"]], cmap, found["amount"], np.arange(n))
        pre += issues
        revenue = amount.where(pd.Series(conversion, index=df.index))
        prepared["deal_amount"] = amount
    prepared["revenue"] = revenue
    prepared.update(attributes(df, found.values(), drop, set(prepared)))
    frame = pd.DataFrame(prepared)
    return finish(
        frame,
        src.rows,
        src=src,
        cmap=cmap,
        pre=pre,
        notes=notes,
        extra={"deals": int(deal_id.nunique())},
    )


def _repeated_stages(
    deal_id: pd.Series, stage: pd.Series, when: pd.Series, cmap: ColumnMap
) -> np.ndarray:
    """Return a mask of the rows whose stage repeats the same deal's previous row (by time)."""
    n = len(deal_id)
    if pd.api.types.is_datetime64_any_dtype(when.dtype):
        t = when
    else:
        fmt = cmap.timestamp_format or "ISO8601"
        t = pd.to_datetime(to_str(when), format=fmt, utc=True, errors="coerce")
    order = pd.DataFrame({"d": deal_id, "t": t, "p": np.arange(n)}).sort_values(
        ["d", "t", "p"], kind="stable"
    )
    same_deal = order["d"].eq(order["d"].shift()) & order["d"].notna()
    st = norm_series(stage).reindex(order.index)
    repeated_sorted = (same_deal & st.eq(st.shift()) & st.notna()).to_numpy()
    repeated = np.zeros(n, dtype=bool)
    repeated[order["p"].to_numpy()] = repeated_sorted
    return repeated
