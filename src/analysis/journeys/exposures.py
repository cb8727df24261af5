"""Stage exposures: stage visits by exit and channel exposure pattern (attribution's data).

:func:`stage_exposures` is :meth:`Journeys.stage_exposures
<analysis.journeys.Journeys.stage_exposures>`, in named steps: the visits, the exposure
touches numbered by the visit they fall in, the channels (checked), one integer pattern code
per visit, and the decoding of that code into one level column per channel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ibis
import numpy as np
import pandas as pd

from analysis.engine import to_pandas
from analysis.journeys._common import DAY_US, KEYS, OUTCOME_STATE, by_list, normalise
from analysis.schema import START, DataError

if TYPE_CHECKING:
    from analysis.journeys.model import Journeys


def stage_exposures(
    jr: Journeys,
    by: str | list[str] | None = "segment",
    *,
    mature_days: float | None = None,
    carryover_days: tuple[float, ...] = (3.0, 7.0, 14.0),
) -> pd.DataFrame:
    """Count stage visits by exit and exposure pattern: :meth:`Journeys.stage_exposures <analysis.journeys.Journeys.stage_exposures>`."""
    by = by_list(by)
    jr.check_by(by)
    edges = sorted(float(d) for d in carryover_days if 0 < float(d) < jr.lookback_days)
    edges.append(jr.lookback_days)
    n_levels = len(edges) + 2
    visits = _visits(jr, mature_days)
    touch = _touches(jr)
    channels = _channels(jr, touch, by, n_levels)
    code = _pattern_codes(visits, touch, channels, edges, n_levels)
    per = visits.left_join(code, [*KEYS, visits.r == code.vr]).select(
        *KEYS,
        from_stage=visits.stage,
        to_stage=visits.exit,
        _code=code._code.fill_null(0).cast("int64"),
    )
    first = visits.filter(visits.r == 0)  # row_number is 0-based
    first = first.select(
        *KEYS,
        from_stage=ibis.literal(START),
        to_stage=first.stage,
        _code=ibis.literal(0, type="int64"),
    )
    rows = jr.with_by(ibis.union(first, per), by)
    agg = rows.group_by([*by, "from_stage", "to_stage", "_code"]).aggregate(n=ibis._.count())
    df = to_pandas(jr.con, agg)
    code_values = df.pop("_code").to_numpy(np.int64)
    for i, c in enumerate(channels):
        df[c] = ((code_values // n_levels**i) % n_levels).astype("int8")
    df = df[[*by, "from_stage", "to_stage", *channels, "n"]]
    df = normalise(
        df.sort_values([*by, "from_stage", "to_stage", *channels]).reset_index(drop=True)
    )
    df.attrs["channels"] = list(channels)
    df.attrs["levels"] = _level_labels(edges, jr.lookback_days)
    return df


def _visits(jr: Journeys, mature_days: float | None) -> ibis.Table:
    """Return the stage visits (cached): number ``r`` in the journey, entry ``_us``, stage, exit."""
    runs = jr.stage_runs
    rw = ibis.window(group_by=KEYS, order_by=runs.pos)
    j = jr.journey_rows.select(*KEYS, "outcome")
    runs = runs.mutate(r=ibis.row_number().over(rw), _next=runs.stage.lead().over(rw))
    runs = runs.join(j, KEYS)
    exit_state = ibis.cases(
        (runs._next.notnull(), runs._next), else_=runs.outcome.cases(*OUTCOME_STATE.items())
    )
    visits = runs.select(*KEYS, "r", "_us", "from_stage", stage=runs.stage, exit=exit_state)
    if mature_days is not None:
        visits = visits.filter(visits._us <= jr.entered_by(mature_days))
    return visits.cache()


def _touches(jr: Journeys) -> ibis.Table:
    """Return the last exposure time per journey, visit number ``tr`` and channel.

    Every exposure touch gets the number of the visit it falls in (-1: before the first).
    """
    starts = jr.stage_runs.select(*KEYS, "pos", _start=ibis.literal(1))
    t = jr.exposure_events.left_join(starts, [*KEYS, "pos"]).select(
        *KEYS, "pos", "_us", "channel", "_start"
    )
    cw = ibis.cumulative_window(group_by=KEYS, order_by=t.pos)
    t = t.mutate(tr=t._start.fill_null(0).sum().over(cw) - 1)
    return t.group_by([*KEYS, "tr", "channel"]).aggregate(_last=t._us.max())


def _channels(jr: Journeys, touch: ibis.Table, by: list[str], n_levels: int) -> list[str]:
    """Return the exposure channels, sorted; raise if they clash with columns or overflow a code."""
    channels = sorted(to_pandas(jr.con, touch.select("channel").distinct())["channel"].astype(str))
    clash = sorted(set(channels) & {*by, "from_stage", "to_stage", "n"})
    if clash:
        raise DataError(
            f"channel name(s) {clash} clash with column names of the exposure table",
            column="channel",
            fix="rename those channels (the column map can map values)",
        )
    if n_levels ** len(channels) >= 2**62:
        raise DataError(
            f"{len(channels)} channels with {n_levels} exposure levels do not fit one 64-bit "
            "pattern code",
            column="channel",
            fix="group rare channels together, or pass fewer carryover_days",
        )
    return channels


def _pattern_codes(
    visits: ibis.Table,
    touch: ibis.Table,
    channels: list[str],
    edges: list[float],
    n_levels: int,
) -> ibis.Table:
    """Return one integer per visit ``vr``: its channels' exposure levels as base-``n_levels`` digits."""
    mult = ibis.memtable(
        pd.DataFrame(
            {
                "channel": channels,
                "_mult": [n_levels**i for i in range(len(channels))],
            }
        )
    )
    v = visits.select(*KEYS, vr=visits.r, _vus=visits._us)
    x = v.join(touch, KEYS).filter(lambda e: e.tr <= e.vr)
    x = x.group_by([*KEYS, "vr", "channel"]).aggregate(
        _in=(x.tr == x.vr).any(),
        _before=x._last.max(where=x.tr < x.vr),
        _vus=x._vus.max(),
    )
    age = x._vus - x._before
    level = ibis.cases(
        (x._in, 1),
        *[((x._before.notnull() & (age < e * DAY_US)), 2 + i) for i, e in enumerate(edges)],
        else_=0,
    )
    x = x.mutate(_level=level.cast("int64")).join(mult, "channel")
    return x.group_by([*KEYS, "vr"]).aggregate(_code=(x._level * x._mult).sum())


def _level_labels(edges: list[float], lookback_days: float) -> dict[int, dict[str, Any]]:
    """Return ``attrs["levels"]``: level → label and representative ``age_days``."""
    lo = [0.0, *edges[:-1]]
    return {
        0: {"label": f"not touched in the last {lookback_days:g} days", "age_days": None},
        1: {"label": "touched during the visit", "age_days": 0.0},
        **{
            2 + i: {
                "label": f"last touched {a:g}-{b:g} days before the visit",
                "age_days": (a + b) / 2,
            }
            for i, (a, b) in enumerate(zip(lo, edges, strict=True))
        },
    }
