"""The time index of the incident scan: journeys indexed by when they reached each step.

Every journey of a step table (:meth:`analysis.journeys.Journeys.touchpoint_steps`) is indexed by
**when it reached a step** (its entry into a stage, or its first time with a touchpoint), in bins
of a day or a week (:func:`time_grain`), and counted per step × segment × bin: the journeys that
reached the step, those scored for conversion (at least ``H`` days before the data's end) and of
those the ones that converted within ``H``. :func:`analysis.friction.incidents.incidents`,
:func:`~analysis.friction.series.step_series` and
:func:`~analysis.friction.series.detectable_drop` read the :class:`TimeIndex` (built once).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analysis.errors import DataError
from analysis.friction._steps import check_steps

DAY_US = 86_400_000_000
GRAIN_US = {"D": DAY_US, "W": 7 * DAY_US}
#: spans up to this many days are binned by day, longer ones by week (see :func:`time_grain`)
DAILY_MAX_DAYS = 366
_MONDAY_US = 4 * DAY_US  # 1970-01-05, the first Monday after the epoch
REQUIRED = ["person_id", "journey_index", "pos", "timestamp", "touchpoint", "stage", "conversion"]
ALL = "all"
MISSING = "(missing)"


# ------------------------------------------------------------------------------------ the grain
def time_grain(span_days: float) -> str:
    """``"D"`` (days) for data spanning up to :data:`DAILY_MAX_DAYS` (366) days, else ``"W"``.

    The rule: an incident lasts days to weeks. Up to a year, daily bins place a window to the day
    (a 3-week window on weekly bins is off by up to half a week at each end: an
    intersection-over-union of ~0.75 at best) and scanning every window of up to half the series
    costs at most ~34k windows per series. Beyond a year, daily windows grow as ``days²`` while
    incidents of interest last weeks, so weeks (Monday to Sunday, UTC).
    """
    return "D" if float(span_days) <= DAILY_MAX_DAYS else "W"


def _us(values: Any) -> np.ndarray:
    ts = pd.to_datetime(values, utc=True)
    return pd.DatetimeIndex(ts).as_unit("us").asi8


def _origin(t_min: int, grain: str) -> int:
    if grain == "D":
        return (t_min // DAY_US) * DAY_US
    g = GRAIN_US["W"]
    return ((t_min - _MONDAY_US) // g) * g + _MONDAY_US


# ------------------------------------------------------------------------------------ the index
@dataclass
class TimeIndex:
    """Journeys indexed by when they reached each step, counted per step × segment × time bin.

    Build it with :func:`time_index`; :func:`incidents`, :func:`step_series` and
    :func:`detectable_drop` accept it in place of the step table (so one index serves them all).

    Attributes
    ----------
    grain : str
        ``"D"`` or ``"W"``.
    bins : DatetimeIndex
        The start of every bin (UTC); bin ``i`` is ``[bins[i], bins[i] + grain)``.
    as_of : Timestamp
        The data's end (the last timestamp, unless given).
    by : list of str
        The segment column(s); ``groups`` their values (joined with " / " for several columns).
    steps : DataFrame
        One row per step: ``level`` ("stage" or "touchpoint"), ``step``, ``stage`` (a touchpoint's
        most common stage), ``horizon_days`` (``H``), ``within`` (``F(H)``), ``mature_bins`` (bins
        scored for conversion), ``journeys`` (that reached it), ``depth`` (mean position in the
        journey, from 0, of the first touchpoint at it: deeper steps come later).
    n, n_mature, y : ndarray, shape (steps, groups + 1, bins)
        Reaches of the step in the bin (stage entries, first touchpoint rows; all / at least
        ``H`` before ``as_of``) and of the mature ones those whose journey converted within ``H``;
        the last group is every segment.
    k : ndarray, shape (touchpoint steps, groups + 1, bins)
        For the frequency of a touchpoint: of the visits to its (most common) stage entered in
        the bin (``n`` of the stage), those during which it happened.
    """

    grain: str
    bins: pd.DatetimeIndex
    as_of: pd.Timestamp
    by: list[str]
    groups: list[str]
    steps: pd.DataFrame
    n: np.ndarray
    n_mature: np.ndarray
    y: np.ndarray
    k: np.ndarray
    tp_steps: np.ndarray  # step index of every row of ``k``
    tp_stage_step: np.ndarray  # step index of the stage of every row of ``k`` (-1: none)
    # row-level arrays for the per-incident comparisons: every reach of a step (journey, step,
    # time, bin, converted within H, mature), the first row of every (journey, touchpoint)
    # (journey, touchpoint, time of its last row) and every journey's group
    reaches: dict[str, np.ndarray] = field(repr=False, default_factory=dict)
    first_touches: dict[str, np.ndarray] = field(repr=False, default_factory=dict)
    journey_group: np.ndarray | None = field(repr=False, default=None)
    touchpoints: list[str] = field(default_factory=list)

    @property
    def grain_days(self) -> float:
        """Return the width of a bin in days."""
        return GRAIN_US[self.grain] / DAY_US

    @property
    def labels(self) -> list[str]:
        """Group labels of the second axis of the cubes (the last is ``"all"``)."""
        return [*self.groups, ALL]


def by_list(by: str | Sequence[str] | None) -> list[str]:
    """Return the segment column(s) as a list (none: empty)."""
    if by is None:
        return []
    return [by] if isinstance(by, str) else list(by)


def _journey_codes(steps: pd.DataFrame) -> tuple[np.ndarray | None, np.ndarray]:
    """Return the row order (person, journey, pos) and every row's journey code in that order.

    The order is ``None`` when the rows already are in it, as ``touchpoint_steps`` gives them.
    """
    p = steps["person_id"].to_numpy()
    if not np.issubdtype(p.dtype, np.number):
        p = pd.factorize(steps["person_id"])[0]
    p = np.asarray(p, dtype=np.int64)
    j = steps["journey_index"].to_numpy(dtype=np.int64)
    q = steps["pos"].to_numpy(dtype=np.int64)
    n = len(p)
    order = None
    if n > 1:
        dp, dj, dq = p[1:] - p[:-1], j[1:] - j[:-1], q[1:] - q[:-1]
        same_p = dp == 0
        same_j = same_p & (dj == 0)
        ordered = (
            bool((dp >= 0).all())
            and bool((dj[same_p] >= 0).all())
            and bool((dq[same_j] >= 0).all())
        )
        if not ordered:
            order = np.lexsort((q, j, p))
            p, j = p[order], j[order]
            same_j = (p[1:] == p[:-1]) & (j[1:] == j[:-1])
        new = np.empty(n, dtype=bool)
        new[0] = True
        np.logical_not(same_j, out=new[1:])
    else:
        new = np.ones(n, dtype=bool)
    return order, np.cumsum(new) - 1


def _take(a: np.ndarray, order: np.ndarray | None) -> np.ndarray:
    return a if order is None else a[order]


def _first_rows(key: np.ndarray) -> np.ndarray:
    """Positions of the first occurrence of every key value (rows in journey order)."""
    return np.flatnonzero(~pd.Series(key).duplicated().to_numpy())


def _codes(values: pd.Series, take: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Return integer codes (``-1``: missing) of ``values[take]`` and the names they code.

    The names, sorted, are those of the values that occur there.
    """
    code, uniq = pd.factorize(values)
    code = np.asarray(code, dtype=np.int64)[take]
    names = np.array([str(u) for u in uniq], dtype=object)
    present = np.bincount(code[code >= 0], minlength=len(names)) > 0
    kept = np.flatnonzero(present)
    kept = kept[np.argsort(names[kept], kind="stable")]
    remap = np.full(len(names) + 1, -1, dtype=np.int64)
    remap[kept] = np.arange(len(kept))
    return remap[code], [str(x) for x in names[kept]]


def time_index(
    steps: pd.DataFrame,
    *,
    by: str | Sequence[str] | None = None,
    grain: str | None = None,
    horizon_days: float | None = None,
    as_of: Any = None,
    levels: Sequence[str] = ("stage", "touchpoint"),
) -> TimeIndex:
    """Index the journeys of a step table by when they reached each step.

    Parameters
    ----------
    steps : DataFrame
        :meth:`Journeys.touchpoint_steps` output: ``person_id, journey_index, pos, timestamp,
        touchpoint, stage, conversion`` and the ``by`` columns.
    by : str or list of str, optional
        Segment column(s), constant within a journey (its first value is used).
    grain : {"D", "W"}, optional
        Bin width; :func:`time_grain` of the data's span when omitted.
    horizon_days : float, optional
        ``H``: a journey counts as converted at a step when it converted within ``H`` days of
        reaching it. Default per step: the 95% quantile of that delay, at least a day, at most a
        quarter of the span.
    as_of : timestamp, optional
        The data's end (default: the last timestamp).
    levels : sequence of {"stage", "touchpoint"}
        Which steps to index: stages, touchpoints, or both (default).

    Returns
    -------
    TimeIndex
        The counts per step × segment × bin and the row-level arrays behind them.

    Notes
    -----
    A **stage** is reached at every entry into it (a visit: a run of the journey's staged rows at
    that stage), indexed by the visit's first touchpoint — a journey that comes back to payment
    during an outage met it then, not when it first got there. A **touchpoint** is reached at its
    first row in the journey. The conversion row itself is the outcome, never a step.
    """
    by = by_list(by)
    _check_request(steps, by, grain, levels)
    order, jid = _journey_codes(steps)
    t = _take(_us(steps["timestamp"]), order)
    conv = _take(steps["conversion"].to_numpy(dtype=bool), order)
    t_min, t_max = int(t.min()), int(t.max())
    end_us = t_max if as_of is None else int(_us([as_of])[0])
    span_days = max((end_us - t_min) / DAY_US, 0.0)
    grain = grain or time_grain(span_days)
    g_us = GRAIN_US[grain]
    origin = _origin(t_min, grain)
    n_bins = int((end_us - origin) // g_us) + 1
    jgroup, groups = _journey_groups(steps, by, order, jid)
    jconv = _conversion_times(jid, t, conv)
    rows = _coded_rows(steps, order, jid, t, conv)
    visits, met = _stage_entries(rows)
    touches, tp_last = _first_touches(rows)
    step_rows, reach, off_tp = _reaches(rows, levels, visits, touches)
    r_j, r_s, r_t, r_p = reach
    n_steps = len(step_rows)
    r_b = (r_t - origin) // g_us
    r_g = jgroup[r_j]
    delay = jconv[r_j] - r_t  # huge when the journey did not convert

    converted = jconv[r_j] < np.iinfo(np.int64).max
    cap_days = max(span_days / 4.0, 1.0)
    horizon, within = _horizons(delay, r_s, converted, n_steps, horizon_days, cap_days)
    h_us = np.round(horizon * DAY_US).astype(np.int64)
    mature_bins = np.clip((end_us - h_us[np.arange(n_steps)] - origin) // g_us, 0, n_bins).astype(
        np.int64
    )
    mature = r_b < mature_bins[r_s]
    conv_h = delay <= h_us[r_s]

    shape = (len(groups), n_bins)
    n = _cube(r_s, r_g, r_b, n_steps, shape)
    n_mature = _cube(r_s[mature], r_g[mature], r_b[mature], n_steps, shape)
    mc = mature & conv_h
    y = _cube(r_s[mc], r_g[mc], r_b[mc], n_steps, shape)

    # frequency of touchpoints among the visits to their stage
    n_tp = len(rows.tp_names)
    st_j, _, st_t, _ = visits
    f_run, f_x = met
    if "touchpoint" in levels and "stage" in levels and len(rows.st_names):
        k = _cube(f_x, jgroup[st_j[f_run]], (st_t[f_run] - origin) // g_us, n_tp, shape)
        tp_stage_step = rows.tp_stage.copy()
    else:
        k = np.zeros(
            (n_tp if "touchpoint" in levels else 0, len(groups) + 1, n_bins), dtype=np.int64
        )
        tp_stage_step = np.full(k.shape[0], -1, dtype=np.int64)
    tp_steps = (
        off_tp + np.arange(k.shape[0]) if "touchpoint" in levels else np.zeros(0, dtype=np.int64)
    )

    step_table = pd.DataFrame(step_rows, columns=["level", "step", "stage"])
    step_table["horizon_days"] = horizon
    step_table["within"] = within
    step_table["mature_bins"] = mature_bins
    _add_depth(step_table, r_s, r_p)
    bins = pd.DatetimeIndex(pd.to_datetime(origin + g_us * np.arange(n_bins), unit="us", utc=True))
    return TimeIndex(
        grain=grain,
        bins=bins,
        as_of=pd.Timestamp(end_us, unit="us", tz="UTC"),
        by=by,
        groups=groups,
        steps=step_table,
        n=n,
        n_mature=n_mature,
        y=y,
        k=k,
        tp_steps=tp_steps,
        tp_stage_step=tp_stage_step,
        reaches={"j": r_j, "s": r_s, "t": r_t, "b": r_b, "conv_h": conv_h, "mature": mature},
        first_touches={"j": touches[0], "x": touches[1], "last": tp_last},
        journey_group=jgroup,
        touchpoints=rows.tp_names,
    )


def _add_depth(step_table: pd.DataFrame, r_s: np.ndarray, r_p: np.ndarray) -> None:
    """Add the journeys that reached each step and their mean position at the reach."""
    n_steps = len(step_table)
    journeys = np.bincount(r_s, minlength=n_steps)
    step_table["journeys"] = journeys
    step_table["depth"] = np.bincount(r_s, weights=r_p, minlength=n_steps) / np.maximum(journeys, 1)


def _check_request(
    steps: pd.DataFrame, by: list[str], grain: str | None, levels: Sequence[str]
) -> None:
    """Refuse a step table without the columns, unknown levels or grain, or no rows."""
    check_steps(steps, by, REQUIRED)
    bad = [lv for lv in levels if lv not in ("stage", "touchpoint")]
    if bad or not levels:
        raise ValueError(f"levels must be among 'stage', 'touchpoint', got {list(levels)}")
    if grain is not None and grain not in GRAIN_US:
        raise ValueError(f"grain must be 'D' or 'W', got {grain!r}")
    if len(steps) == 0:
        raise DataError("the step table is empty", fix="build journeys from events first")


def _journey_groups(
    steps: pd.DataFrame, by: list[str], order: np.ndarray | None, jid: np.ndarray
) -> tuple[np.ndarray, list[str]]:
    """Return the segment code of every journey (its first row's values) and the segments."""
    n_j = int(jid[-1]) + 1
    jfirst = np.flatnonzero(np.r_[True, jid[1:] != jid[:-1]])
    if by:
        first_rows = steps[by].iloc[_take(np.arange(len(steps)), order)[jfirst]]
        vals = first_rows.astype(object).where(first_rows.notna(), MISSING)
        labels = (
            vals.astype(str).agg(" / ".join, axis=1) if len(by) > 1 else vals[by[0]].astype(str)
        )
        jgroup, uniq = pd.factorize(labels, sort=True)
        groups = [str(u) for u in uniq]
    else:
        jgroup, groups = np.zeros(n_j, dtype=np.int64), []
    return np.asarray(jgroup, dtype=np.int64), groups


def _conversion_times(jid: np.ndarray, t: np.ndarray, conv: np.ndarray) -> np.ndarray:
    """Return the time of every journey's first conversion (int64 max: none)."""
    jconv = np.full(int(jid[-1]) + 1, np.iinfo(np.int64).max, dtype=np.int64)
    ci = np.flatnonzero(conv)
    if len(ci):
        fc = ci[_first_rows(jid[ci])]
        jconv[jid[fc]] = t[fc]
    return jconv


@dataclass
class _Rows:
    """Hold the non-conversion rows in journey order.

    Journey, time, position, stage and touchpoint codes (``-1``: missing), their names, and
    each touchpoint's modal stage (``-1``: none).
    """

    j: np.ndarray
    t: np.ndarray
    pos: np.ndarray
    st: np.ndarray
    tp: np.ndarray
    st_names: list[str]
    tp_names: list[str]
    tp_stage: np.ndarray


def _coded_rows(
    steps: pd.DataFrame, order: np.ndarray | None, jid: np.ndarray, t: np.ndarray, conv: np.ndarray
) -> _Rows:
    """Code the steps (not the conversion rows) and find each touchpoint's modal stage."""
    keep = ~conv
    pos = (np.arange(len(jid)) - np.searchsorted(jid, jid))[keep]  # 0-based within the journey
    # codes of the text columns, factorized as they come (categorical, arrow or object), then
    # put in journey order; names of the conversion rows' values are dropped
    take = np.flatnonzero(keep) if order is None else order[keep]
    st_code, st_names = _codes(steps["stage"], take)
    tp_code, tp_names = _codes(steps["touchpoint"], take)
    n_st, n_tp = len(st_names), len(tp_names)
    has_st = (st_code >= 0) & (tp_code >= 0)
    tp_stage = np.full(n_tp, -1, dtype=np.int64)
    if n_st and n_tp and has_st.any():
        cnt = np.bincount(tp_code[has_st] * n_st + st_code[has_st], minlength=n_tp * n_st).reshape(
            n_tp, n_st
        )
        tp_stage = np.where(cnt.sum(1) > 0, cnt.argmax(1), -1)
    return _Rows(jid[keep], t[keep], pos, st_code, tp_code, st_names, tp_names, tp_stage)


Reach = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # journey, step code, time, position


def _stage_entries(rows: _Rows) -> tuple[Reach, tuple[np.ndarray, np.ndarray]]:
    """Return the stage entries (visits) and the touchpoints met during a visit to their stage.

    A staged row starts a visit when the journey's previous staged row is at another stage (or
    there is none); the visit is indexed by its first touchpoint. The touchpoints met: distinct
    (visit, touchpoint) pairs of touchpoints at their own (most common) stage.
    """
    n_tp = len(rows.tp_names)
    ok = rows.st >= 0
    sj, ss, stt, sp, sx = rows.j[ok], rows.st[ok], rows.t[ok], rows.pos[ok], rows.tp[ok]
    entry = np.ones(len(sj), dtype=bool)
    if len(sj) > 1:
        entry[1:] = (sj[1:] != sj[:-1]) | (ss[1:] != ss[:-1])
    run_id = np.cumsum(entry) - 1
    own = (sx >= 0) & (rows.tp_stage[np.maximum(sx, 0)] == ss)
    key = run_id[own] * max(n_tp, 1) + sx[own]
    n_keys = (int(run_id[-1]) + 1 if len(run_id) else 0) * max(n_tp, 1)
    if n_keys <= 50_000_000:  # a bitmap of (visit, touchpoint) pairs: no hashing
        seen = np.zeros(n_keys, dtype=bool)
        seen[key] = True
        key = np.flatnonzero(seen)
    else:
        key = key[_first_rows(key)]
    met = (key // max(n_tp, 1), key % max(n_tp, 1))
    return (sj[entry], ss[entry], stt[entry], sp[entry]), met


def _first_touches(rows: _Rows) -> tuple[Reach, np.ndarray]:
    """Return the first row of every (journey, touchpoint), in journey order, and its last time.

    Slots are numbered in order of appearance, so the first rows come out in journey order.
    """
    n_tp = len(rows.tp_names)
    ok = np.flatnonzero(rows.tp >= 0)
    slot, _ = pd.factorize(rows.j[ok] * max(n_tp, 1) + rows.tp[ok])
    n_slots = int(slot.max()) + 1 if len(slot) else 0
    first_idx = np.full(n_slots, len(ok), dtype=np.int64)
    np.minimum.at(first_idx, slot, np.arange(len(ok)))
    tp_last = np.full(n_slots, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(tp_last, slot, rows.t[ok])
    first_idx = ok[first_idx]
    touches = (rows.j[first_idx], rows.tp[first_idx], rows.t[first_idx], rows.pos[first_idx])
    return touches, tp_last


def _reaches(
    rows: _Rows, levels: Sequence[str], visits: Reach, touches: Reach
) -> tuple[list[tuple[str, str, str | None]], Reach, int]:
    """Return the steps (stages, then touchpoints), every reach of one, and the first touchpoint.

    The last is the number of the first touchpoint step (after the stages).

    """
    step_rows: list[tuple[str, str, str | None]] = []
    parts = []
    if "stage" in levels:
        step_rows += [("stage", name, name) for name in rows.st_names]
        parts.append(visits)
    off_tp = len(step_rows)
    if "touchpoint" in levels:
        for x, name in enumerate(rows.tp_names):
            x_stage = rows.tp_stage[x]
            step_rows.append(("touchpoint", name, rows.st_names[x_stage] if x_stage >= 0 else None))
        tp_j, tp_x, tp_t, tp_p = touches
        parts.append((tp_j, tp_x + off_tp, tp_t, tp_p))
    if not step_rows:
        raise DataError(
            "the step table has no stage or touchpoint values to index",
            column=["stage", "touchpoint"],
        )
    reach = (
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]).astype(np.int64),
        np.concatenate([p[2] for p in parts]),
        np.concatenate([p[3] for p in parts]),
    )
    return step_rows, reach, off_tp


def _horizons(
    delay: np.ndarray,
    r_s: np.ndarray,
    converted: np.ndarray,
    n_steps: int,
    horizon_days: float | None,
    cap_days: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``H`` per step (days) and ``F(H)``, the share of its conversions within ``H``."""
    horizon = np.empty(n_steps)
    within = np.empty(n_steps)
    d_conv = delay[converted] / DAY_US
    s_conv = r_s[converted]
    srt = np.lexsort((d_conv, s_conv))
    d_conv, s_conv = d_conv[srt], s_conv[srt]
    bounds = np.searchsorted(s_conv, np.arange(n_steps + 1))
    for s in range(n_steps):
        d = d_conv[bounds[s] : bounds[s + 1]]
        if horizon_days is not None:
            h = float(horizon_days)
        elif len(d):
            h = float(np.clip(np.quantile(d, 0.95), 1.0, cap_days))
        else:
            h = 1.0
        horizon[s] = h
        within[s] = float(np.mean(d <= h)) if len(d) else 1.0
    return horizon, within


def _cube(
    idx_s: np.ndarray, idx_g: np.ndarray, idx_b: np.ndarray, n_rows: int, shape: tuple[int, int]
) -> np.ndarray:
    """Count rows per (step, group, bin), every segment in the last group."""
    n_groups, n_bins = shape
    m = n_rows * (n_groups + 1) * n_bins
    a = np.bincount((idx_s * (n_groups + 1) + idx_g) * n_bins + idx_b, minlength=m)
    b = np.bincount((idx_s * (n_groups + 1) + n_groups) * n_bins + idx_b, minlength=m)
    out = (a + b) if n_groups else a
    return out.reshape(n_rows, n_groups + 1, n_bins).astype(np.int64)


def as_index(
    steps_or_index: pd.DataFrame | TimeIndex,
    by: str | Sequence[str] | None,
    grain: str | None,
    horizon_days: float | None,
    as_of: Any,
) -> TimeIndex:
    """Return the index given, or build it from a step table (:func:`time_index`)."""
    if isinstance(steps_or_index, TimeIndex):
        if by is not None and by_list(by) != steps_or_index.by:
            raise ValueError(f"the index was built by {steps_or_index.by}, not {by}")
        return steps_or_index
    return time_index(steps_or_index, by=by, grain=grain, horizon_days=horizon_days, as_of=as_of)
