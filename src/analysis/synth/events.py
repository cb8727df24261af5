"""The events frame: the rows' canonical columns (and ``region``), in the final order."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from analysis.schema import CANONICAL_COLUMNS, IDENTIFIER_COLUMNS, TIMESTAMP_DTYPE
from analysis.synth._arrays import fixed_width, str_series, take, utc
from analysis.synth.config import (
    CHANNEL_INDEX,
    CHANNELS,
    CONVERSION_TOUCHPOINT,
    FEEDBACK_TOUCHPOINT,
    N_CHANNELS,
    N_STAGES,
    ONLINE_CHANNELS,
    STAGE_INDEX,
    STAGES,
    TOUCHPOINTS,
)
from analysis.synth.identities import IdCategories
from analysis.synth.incidents import Incident
from analysis.synth.rows import CAMPAIGN_NAMES, RowValues


def touchpoint_codes(
    kind: np.ndarray,
    stage: np.ndarray,
    ch: np.ndarray,
    row_incident: np.ndarray | None,
    incidents: list[Incident],
) -> tuple[list[str], np.ndarray]:
    """Return the touchpoint names (sorted) and every row's code in them."""
    names = sorted(
        {tp for m in TOUCHPOINTS.values() for tp in m.values()}
        | {FEEDBACK_TOUCHPOINT, CONVERSION_TOUCHPOINT}
        | {i.touchpoint for i in incidents}
    )
    index = {tp: i for i, tp in enumerate(names)}
    table = np.full((N_STAGES, N_CHANNELS), -1, np.int64)
    for s, m in TOUCHPOINTS.items():
        for c, name in m.items():
            table[STAGE_INDEX[s], CHANNEL_INDEX[c]] = index[name]
    codes = np.where(
        kind == 0,
        table[stage, ch],
        np.where(kind == 1, index[FEEDBACK_TOUCHPOINT], index[CONVERSION_TOUCHPOINT]),
    )
    if incidents:
        assert row_incident is not None, "error rows know their incident"
        incident_codes = np.array([index[i.touchpoint] for i in incidents], np.int64)
        codes = np.where(kind == 3, incident_codes[np.maximum(row_incident, 0)], codes)
    return names, codes


def build_events(
    values: RowValues,
    categories: IdCategories,
    segments: list[str],
    region: np.ndarray,
    regions: Sequence[str],
    incidents: list[Incident],
    start: pd.Timestamp,
) -> pd.DataFrame:
    """Return the events frame: the rows in the final order, with ``event_id`` numbered in it.

    ``region`` holds every person's region code; ``start`` is the window start (UTC).
    """
    rows, ids = values.rows, values.ids
    kind, ch, f = rows.kind, rows.ch, rows.to_final
    tp_names, tp = touchpoint_codes(kind, values.stage, ch, rows.inc, incidents)
    online = np.array([c in ONLINE_CHANNELS for c in CHANNELS])[ch]
    n_rows = len(rows.visit)
    start_us = start.value // 1000
    event_id = fixed_width(n_rows, "e", (np.arange(1, n_rows + 1), max(8, len(str(n_rows)))))
    stage_names = pa.array(list(STAGES), pa.large_string())
    cols: dict[str, pd.Series] = {
        "event_id": str_series(event_id, "event_id"),
        "timestamp": utc(rows.ts[f] + start_us, "timestamp"),
        "device_id": take(categories.device, ids["dev"][f], "device_id"),
        "cookie_id": str_series(pa.nulls(n_rows, pa.large_string()), "cookie_id"),
        "user_id": take(categories.user, ids["user"][f], "user_id"),
        "email_hash": take(categories.email, ids["email"][f], "email_hash"),
        "crm_id": take(categories.crm, ids["crm"][f], "crm_id"),
        "loyalty_id": take(categories.loyalty, ids["loy"][f], "loyalty_id"),
        "channel": take(pa.array(list(CHANNELS)), ch[f], "channel"),
        "touchpoint": take(pa.array(tp_names), tp[f], "touchpoint"),
        "online": pd.Series(online[f], name="online"),
        "campaign": take(pa.array(CAMPAIGN_NAMES), values.campaign[f], "campaign"),
        "stage": take(stage_names, values.stage[f], "stage"),
        "conversion": pd.Series((kind == 2)[f], name="conversion"),
        "revenue": pd.Series(values.revenue[f], name="revenue"),
        "sentiment": pd.Series(values.sentiment[f], name="sentiment"),
        "segment": take(pa.array(segments), values.segment[f], "segment"),
        "region": take(pa.array(list(regions)), region[rows.person[f]], "region"),
    }
    del tp, online
    assert list(cols)[: len(CANONICAL_COLUMNS)] == list(CANONICAL_COLUMNS)
    assert all(c in cols for c in IDENTIFIER_COLUMNS)
    events = pd.DataFrame(cols, copy=False)
    del cols
    assert str(events["timestamp"].dtype) == TIMESTAMP_DTYPE
    return events
