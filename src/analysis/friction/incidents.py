"""Incidents: friction in time — a step whose conversion dropped for a while.

Input is the step table of :meth:`analysis.journeys.Journeys.touchpoint_steps` (one row per
touchpoint of every journey). Every journey is indexed by **when it reached a step** (its first
touchpoint at that stage, or its first time with that touchpoint), in bins of a day or a week
(:func:`time_grain`). Per step and segment this module follows the conversion of the journeys
that reached the step, bin by bin, against a Bayesian baseline, and reports the windows where it
fell as *incidents* (:func:`incidents`): step, segment, window, rate before and during with
intervals, conversions lost with an interval, the touchpoints over-represented during the window
and a posterior probability. :func:`step_series` gives the rate per bin with the baseline's band
(for the plot), :func:`detectable_drop` how large an incident the data could have shown (for
"nothing found"), :func:`incident_headline` the sentence a marketer reads.

The model (and why)
-------------------
For one step and segment, bin ``t`` has ``n_t`` journeys that reached the step and ``y_t`` of
them converted. An *epidemic-window* change-point model (the "epidemic" alternative of Levin &
Kline 1985: the rate leaves its baseline for a while and comes back), scored exactly with
conjugate marginal likelihoods as in Fearnhead (2006):

- **no incident** (``M0``): one rate ``q`` in every bin, ``q ~ Beta(1, 1)``;
- **incident in ``[a, b)``** (``M_ab``): rate ``q_in`` in the window, ``q_out`` everywhere
  else (before *and* after the window: the baseline), independent ``Beta(1, 1)`` priors
  restricted to a material drop, ``q_in < (1 − min_drop) q_out``.

Both marginal likelihoods are closed form (Beta functions), so *every* window on the grain is
scored exactly: ``BF_ab = B(1 + y_in, 1 + n_in − y_in) B(1 + y_out, 1 + n_out − y_out) /
(B(1 + Y, 1 + N − Y) B(1, 1))``, times the posterior over prior mass of the one-sided
restriction (``P(q_in < c q_out | data) / (c / 2)``, the posterior probability by a normal
approximation of the two Beta posteriors). Windows have a uniform prior over all ``[a, b)`` no
longer than half of the series (an incident longer than that is the baseline); the posterior
over windows gives the window (its mode) and, with the rates drawn per sampled window, the
intervals. The prior probability that a series has an incident is small: ``expected_incidents
/ number of series scanned`` (0.5 by default: a priori one incident in two reports, all steps ×
segments together). Because ``E[BF] = 1`` under no incident (exactly for the conjugate Bayes
factor; the one-sided factor is a normal approximation), Markov's inequality bounds the
chance that a series with nothing in it reaches posterior probability ``prob`` by
``π0 (1 − prob) / ((1 − π0) prob)``; summed over the series, the expected number of false
alarms per report is at most ``expected_incidents (1 − prob) / prob`` ≈ 0.056 at the defaults,
however many steps × segments are scanned. A real incident pays ``log(number of series)`` ≈ 5
nats for that, against Bayes factors of hundreds of nats.

Why not a dynamic GLM (a local-level logistic model, as GA4's and Adobe's anomaly bands): its
band flags bins one by one, so a three-week outage is 21 separate alarms (or none, when the level
adapts to the drop within days — a random walk absorbs a sustained change, which is exactly what
an incident is), and it needs MCMC or a Kalman approximation per series; with thousands of
step × segment series that is minutes, and it gives no window, no "rate before vs during" and no
posterior probability that something happened at all. The window model states the question asked
(did the rate leave its baseline for a while, when, how far?), is exact and conjugate, and scans
a year of days for a thousand series in seconds.

What it guards against
----------------------
- **Open journeys.** The outcome is "converted within ``H`` days of reaching the step", with
  ``H`` the 95% quantile of the delay from reaching the step to converting (per step, capped at
  a quarter of the data's span); only bins at least ``H`` before the data's end are scored
  (journeys reaching the step later have not had time to convert, and their conversion would
  read as an incident at the end of every series). Rates and conversions lost are scaled by
  ``1 / F(H)`` (``F(H)``: the share of conversions that come within ``H``) to read as eventual
  conversion.
- **Extra-binomial variation.** Real series vary more than binomially (weekdays, campaigns).
  Each series' counts are divided by its overdispersion ``φ ≥ 1``, a robust (median) Pearson
  estimate over its bins — the incident bins are a minority, so the median ignores them — so
  an ordinary Tuesday is not an incident and intervals widen accordingly.
- **Echoes.** A failure at payment lowers the conversion of every step upstream of it (those
  journeys would have reached payment during the window) by the same relative amount, and of
  every touchpoint inside the stage. Findings of one segment whose windows overlap are one
  incident seen from several steps. It is named at the stage of its incident touchpoint when it
  has one (the error event is the signature), else at the deepest step (latest in the journey)
  among those that hold the whole loss (upper bound of lost conversions at least the largest
  mean): downstream of a failure nothing changes, upstream is an echo. The others are listed in
  ``also_at``.
- **Every segment or one.** The pooled series (all segments) is scanned too. A pooled window is
  "every segment" unless some segments' own data in that window contradict it: per segment, the
  log likelihood ratio of its window counts under the pooled relative drop against no drop (at
  its own rate outside the window); when the negative ones add up below
  ``−log(all_segments_odds)`` (10:1 by default: an outage is a priori more often everywhere
  than somewhere), the pooled finding is dropped and the segments' own findings stand.

An incident touchpoint (an error event that only exists during the incident) is found by the same
scan on its *frequency*: the share of visits to its stage during which it happened, rising in a
window (``q_in > 2 q_out`` by default). Its step has no "before" rate, so the conversion is
measured at its stage: journeys that reached the stage during the window against those outside
it, and, during the window, with it against without it. Its window (the time it was there) is
the incident's window when the stage's conversion also fell.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import betaln, expit, log_ndtr, logsumexp

from analysis.errors import DataError
from analysis.friction.funnel import check_steps

log = logging.getLogger(__name__)

__all__ = [
    "INCIDENT_COLUMNS",
    "TimeIndex",
    "detectable_drop",
    "incident_headline",
    "incidents",
    "no_incident_text",
    "step_series",
    "time_grain",
    "time_index",
]

DAY_US = 86_400_000_000
GRAIN_US = {"D": DAY_US, "W": 7 * DAY_US}
#: spans up to this many days are binned by day, longer ones by week (see :func:`time_grain`)
DAILY_MAX_DAYS = 366
_MONDAY_US = 4 * DAY_US  # 1970-01-05, the first Monday after the epoch
REQUIRED = ["person_id", "journey_index", "pos", "timestamp", "touchpoint", "stage", "conversion"]
ALL = "all"
MISSING = "(missing)"

#: the columns of :func:`incidents`, in order
INCIDENT_COLUMNS = [
    "level",
    "step",
    "stage",
    "touchpoint",
    "by",
    "segment",
    "start",
    "end",
    "grain",
    "journeys_before",
    "journeys_during",
    "rate_before",
    "rate_before_low",
    "rate_before_high",
    "rate_during",
    "rate_during_low",
    "rate_during_high",
    "conversions_lost",
    "conversions_lost_low",
    "conversions_lost_high",
    "rate_with_touchpoint",
    "rate_without_touchpoint",
    "journeys_with_touchpoint",
    "over_represented",
    "also_at",
    "probability",
    "horizon_days",
]


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
    # row-level arrays for the per-incident comparisons
    _reach: dict[str, np.ndarray] = field(repr=False, default_factory=dict)
    _tp: dict[str, np.ndarray] = field(repr=False, default_factory=dict)
    _jgroup: np.ndarray = field(repr=False, default=None)
    touchpoints: list[str] = field(default_factory=list)

    @property
    def grain_days(self) -> float:
        return GRAIN_US[self.grain] / DAY_US

    @property
    def labels(self) -> list[str]:
        """Group labels of the second axis of the cubes (the last is ``"all"``)."""
        return [*self.groups, ALL]


def _by_list(by: str | Sequence[str] | None) -> list[str]:
    if by is None:
        return []
    return [by] if isinstance(by, str) else list(by)


def _journey_codes(steps: pd.DataFrame) -> tuple[np.ndarray | None, np.ndarray]:
    """Row order (person, journey, pos) — ``None`` when the rows already are in it, as
    ``touchpoint_steps`` gives them — and the journey code of every row in that order.
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
    """Integer codes (``-1``: missing) of ``values[take]`` and the names, sorted, of the values
    that occur there.
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

    A **stage** is reached at every entry into it (a visit: a run of the journey's staged rows at
    that stage), indexed by the visit's first touchpoint — a journey that comes back to payment
    during an outage met it then, not when it first got there. A **touchpoint** is reached at its
    first row in the journey. The conversion row itself is the outcome, never a step.
    """
    by = _by_list(by)
    check_steps(steps, by, REQUIRED)
    bad = [lv for lv in levels if lv not in ("stage", "touchpoint")]
    if bad or not levels:
        raise ValueError(f"levels must be among 'stage', 'touchpoint', got {list(levels)}")
    if grain is not None and grain not in GRAIN_US:
        raise ValueError(f"grain must be 'D' or 'W', got {grain!r}")
    if len(steps) == 0:
        raise DataError("the step table is empty", fix="build journeys from events first")

    order, jid = _journey_codes(steps)
    t = _take(_us(steps["timestamp"]), order)
    conv = _take(steps["conversion"].to_numpy(dtype=bool), order)
    n_j = int(jid[-1]) + 1
    t_min, t_max = int(t.min()), int(t.max())
    end_us = t_max if as_of is None else int(_us([as_of])[0])
    span_days = max((end_us - t_min) / DAY_US, 0.0)
    grain = grain or time_grain(span_days)
    g_us = GRAIN_US[grain]
    origin = _origin(t_min, grain)
    n_bins = int((end_us - origin) // g_us) + 1

    # journey -> segment
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
    jgroup = np.asarray(jgroup, dtype=np.int64)
    n_groups = len(groups)

    # journey -> first conversion time
    jconv = np.full(n_j, np.iinfo(np.int64).max, dtype=np.int64)
    ci = np.flatnonzero(conv)
    if len(ci):
        fc = ci[_first_rows(jid[ci])]
        jconv[jid[fc]] = t[fc]

    keep = ~conv
    rows_j, rows_t = jid[keep], t[keep]
    rows_pos = (np.arange(len(jid)) - np.searchsorted(jid, jid))[keep]  # 0-based within the journey
    # codes of the text columns, factorized as they come (categorical, arrow or object), then
    # put in journey order; names of the conversion rows' values are dropped
    take = np.flatnonzero(keep) if order is None else order[keep]
    st_code, st_names = _codes(steps["stage"], take)
    tp_code, tp_names = _codes(steps["touchpoint"], take)
    del take
    n_st, n_tp = len(st_names), len(tp_names)

    # modal stage of each touchpoint
    has_st = (st_code >= 0) & (tp_code >= 0)
    tp_stage = np.full(n_tp, -1, dtype=np.int64)
    if n_st and n_tp and has_st.any():
        cnt = np.bincount(tp_code[has_st] * n_st + st_code[has_st], minlength=n_tp * n_st).reshape(
            n_tp, n_st
        )
        tp_stage = np.where(cnt.sum(1) > 0, cnt.argmax(1), -1)

    # stage entries (visits): a staged row starts one when the journey's previous staged row is
    # at another stage (or there is none); the visit is indexed by its first touchpoint
    ok = st_code >= 0
    sj, ss, stt, sp, sx = rows_j[ok], st_code[ok], rows_t[ok], rows_pos[ok], tp_code[ok]
    entry = np.ones(len(sj), dtype=bool)
    if len(sj) > 1:
        entry[1:] = (sj[1:] != sj[:-1]) | (ss[1:] != ss[:-1])
    run_id = np.cumsum(entry) - 1
    st_j, st_s, st_t, st_p = sj[entry], ss[entry], stt[entry], sp[entry]
    # touchpoints met during a visit to their own (most common) stage: distinct (visit, touchpoint)
    own = (sx >= 0) & (tp_stage[np.maximum(sx, 0)] == ss)
    key = run_id[own] * max(n_tp, 1) + sx[own]
    n_keys = (int(run_id[-1]) + 1 if len(run_id) else 0) * max(n_tp, 1)
    if n_keys <= 50_000_000:  # a bitmap of (visit, touchpoint) pairs: no hashing
        seen = np.zeros(n_keys, dtype=bool)
        seen[key] = True
        key = np.flatnonzero(seen)
        del seen
    else:
        key = key[_first_rows(key)]
    f_run, f_x = key // max(n_tp, 1), key % max(n_tp, 1)
    del sj, ss, stt, sp, sx, entry, run_id, own, key

    # first and last row of every (journey, touchpoint): slots numbered in order of appearance,
    # so the first rows come out in journey order
    ok = np.flatnonzero(tp_code >= 0)
    slot, _ = pd.factorize(rows_j[ok] * max(n_tp, 1) + tp_code[ok])
    n_slots = int(slot.max()) + 1 if len(slot) else 0
    first_idx = np.full(n_slots, len(ok), dtype=np.int64)
    np.minimum.at(first_idx, slot, np.arange(len(ok)))
    tp_last = np.full(n_slots, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(tp_last, slot, rows_t[ok])
    first_idx = ok[first_idx]
    tp_j, tp_x, tp_t, tp_p = (
        rows_j[first_idx],
        tp_code[first_idx],
        rows_t[first_idx],
        rows_pos[first_idx],
    )
    del slot, ok, first_idx

    # steps: stages then touchpoints
    step_rows, parts = [], []
    if "stage" in levels:
        step_rows += [("stage", name, name) for name in st_names]
        parts.append((st_j, st_s, st_t, st_p))
    off_tp = len(step_rows)
    if "touchpoint" in levels:
        for x, name in enumerate(tp_names):
            step_rows.append(
                ("touchpoint", name, st_names[tp_stage[x]] if tp_stage[x] >= 0 else None)
            )
        parts.append((tp_j, tp_x + off_tp, tp_t, tp_p))
    n_steps = len(step_rows)
    if n_steps == 0:
        raise DataError(
            "the step table has no stage or touchpoint values to index",
            column=["stage", "touchpoint"],
        )
    r_j = np.concatenate([p[0] for p in parts])
    r_s = np.concatenate([p[1] for p in parts]).astype(np.int64)
    r_t = np.concatenate([p[2] for p in parts])
    r_p = np.concatenate([p[3] for p in parts])
    r_b = (r_t - origin) // g_us
    r_g = jgroup[r_j]
    delay = jconv[r_j] - r_t  # huge when the journey did not convert

    # horizon per step
    cap_days = max(span_days / 4.0, 1.0)
    converted = jconv[r_j] < np.iinfo(np.int64).max
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
    h_us = np.round(horizon * DAY_US).astype(np.int64)
    mature_bins = np.clip((end_us - h_us[np.arange(n_steps)] - origin) // g_us, 0, n_bins).astype(
        np.int64
    )
    mature = r_b < mature_bins[r_s]
    conv_h = delay <= h_us[r_s]

    def cube(idx_s, idx_g, idx_b, weights=None, n_rows=n_steps):
        m = n_rows * (n_groups + 1) * n_bins
        a = np.bincount(
            (idx_s * (n_groups + 1) + idx_g) * n_bins + idx_b, weights=weights, minlength=m
        )
        b = np.bincount(
            (idx_s * (n_groups + 1) + n_groups) * n_bins + idx_b, weights=weights, minlength=m
        )
        out = (a + b) if n_groups else a
        return out.reshape(n_rows, n_groups + 1, n_bins).astype(np.int64)

    n = cube(r_s, r_g, r_b)
    n_mature = cube(r_s[mature], r_g[mature], r_b[mature])
    mc = mature & conv_h
    y = cube(r_s[mc], r_g[mc], r_b[mc])

    # frequency of touchpoints among the visits to their stage
    if "touchpoint" in levels and "stage" in levels and n_st:
        k = cube(f_x, jgroup[st_j[f_run]], (st_t[f_run] - origin) // g_us, n_rows=n_tp)
        tp_stage_step = tp_stage.copy()
    else:
        k = np.zeros((n_tp if "touchpoint" in levels else 0, n_groups + 1, n_bins), dtype=np.int64)
        tp_stage_step = np.full(k.shape[0], -1, dtype=np.int64)
    tp_steps = (
        off_tp + np.arange(k.shape[0]) if "touchpoint" in levels else np.zeros(0, dtype=np.int64)
    )

    journeys = np.bincount(r_s, minlength=n_steps)
    depth = np.bincount(r_s, weights=r_p, minlength=n_steps) / np.maximum(journeys, 1)
    step_table = pd.DataFrame(step_rows, columns=["level", "step", "stage"])
    step_table["horizon_days"] = horizon
    step_table["within"] = within
    step_table["mature_bins"] = mature_bins
    step_table["journeys"] = journeys
    step_table["depth"] = depth
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
        _reach={"j": r_j, "s": r_s, "t": r_t, "b": r_b, "conv_h": conv_h, "mature": mature},
        _tp={"j": tp_j, "x": tp_x, "last": tp_last},
        _jgroup=jgroup,
        touchpoints=tp_names,
    )


# ------------------------------------------------------------------------------------ the model
def _windows(n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Every window ``[a, b)`` of 1 to ``n_bins // 2`` bins (at least 1)."""
    max_len = max(n_bins // 2, 1)
    a = [np.arange(0, n_bins - L + 1) for L in range(1, min(max_len, n_bins) + 1)]
    b = [x + L for L, x in enumerate(a, start=1)]
    if not a:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(a).astype(np.int64), np.concatenate(b).astype(np.int64)


def overdispersion(
    n: np.ndarray, y: np.ndarray, *, min_var: float = 3.0, min_bins: int = 8, trim: float = 0.25
) -> np.ndarray:
    """Robust overdispersion ``φ ≥ 1`` of binomial series (rows of ``n`` / ``y``).

    The mean of the squared Pearson residuals ``z²`` (against the series' overall rate) over the
    bins whose binomial variance ``n p (1 − p)`` is at least ``min_var``, leaving out the largest
    ``trim`` share (an incident's bins are among them, and it must not inflate the baseline's
    noise), divided by the same trimmed mean of a χ²₁ (``F₃(q) / (1 − trim)`` with ``q`` its
    ``1 − trim`` quantile); clipped to ``[1, 100]``; 1 with fewer than ``min_bins`` such bins.
    A trimmed mean, not a median: the median of ``z²`` of small counts jumps between a few values
    and made ``φ`` ≈ 2 on pure binomial series.
    """
    from scipy.stats import chi2

    n = np.atleast_2d(np.asarray(n, float))
    y = np.atleast_2d(np.asarray(y, float))
    p = y.sum(1, keepdims=True) / np.maximum(n.sum(1, keepdims=True), 1.0)
    var = n * p * (1 - p)
    use = var >= min_var
    with np.errstate(divide="ignore", invalid="ignore"):
        z2 = np.where(use, (y - n * p) ** 2 / np.where(use, var, 1.0), np.nan)
    out = np.ones(n.shape[0])
    ref = chi2(3).cdf(chi2(1).ppf(1 - trim)) / (1 - trim)
    for r in np.flatnonzero(use.sum(1) >= min_bins):
        v = np.sort(z2[r][use[r]])
        k = max(int(math.floor(len(v) * (1 - trim))), 1)
        out[r] = float(np.clip(v[:k].mean() / ref, 1.0, 100.0))
    return out


def _onesided(ni, yi, no, yo, c: float, rise: bool) -> np.ndarray:
    """Log P(q_in < c q_out | data) (drop) or log P(q_out < c q_in | data) (rise), normal approx."""
    mi = (1.0 + yi) / (2.0 + ni)
    mo = (1.0 + yo) / (2.0 + no)
    vi = mi * (1 - mi) / (3.0 + ni)
    vo = mo * (1 - mo) / (3.0 + no)
    if rise:
        d, v = c * mi - mo, c * c * vi + vo
    else:
        d, v = c * mo - mi, c * c * vo + vi
    return log_ndtr(d / np.sqrt(v))


def _log_bf(ni, yi, no, yo, c: float, rise: bool) -> np.ndarray:
    """Log Bayes factor of "a different rate in the window (one-sided, material)" vs one rate."""
    lbf = (
        betaln(1 + yi, 1 + ni - yi)
        + betaln(1 + yo, 1 + no - yo)
        - betaln(1 + yi + yo, 1 + ni + no - yi - yo)
    )  # betaln(1, 1) = 0
    return lbf + _onesided(ni, yi, no, yo, c, rise) - math.log(c / 2.0)


@dataclass
class _Finding:
    level: str
    step: int
    group: int  # index into labels (n_groups = all)
    a: int
    b: int
    prob: float
    kind: str  # "rate" or "frequency"
    weights: np.ndarray | None = None  # posterior over windows (aw, bw) near the mode
    aw: np.ndarray | None = None
    bw: np.ndarray | None = None
    touchpoint: int | None = None  # touchpoint code (frequency findings)
    lift: float = 0.0  # the touchpoint's share in the window over outside
    segment: str = ""
    every: bool = False
    also: list = field(default_factory=list)
    summary: dict = field(default_factory=dict)


def _scan(
    n: np.ndarray,
    y: np.ndarray,
    limit: np.ndarray,
    *,
    c: float,
    rise: bool,
    prior: float,
    mask: np.ndarray | None = None,
    chunk: int = 16,
):
    """Scan rows of (deflated) counts for one window each.

    ``limit``: per row, the number of bins that count (later bins are not scored). Returns
    per row: posterior probability of an incident, the mode window (a, b), and a function giving
    the window posterior near the mode.
    """
    n_rows, n_bins = n.shape
    a_all, b_all = _windows(n_bins)
    prob = np.zeros(n_rows)
    mode = np.zeros((n_rows, 2), dtype=np.int64)
    post: list[tuple[np.ndarray, np.ndarray, np.ndarray] | None] = [None] * n_rows
    lprior = math.log(prior) - math.log1p(-prior)
    for lo in range(0, n_rows, chunk):
        sl = slice(lo, min(lo + chunk, n_rows))
        nc = np.concatenate([np.zeros((sl.stop - lo, 1)), np.cumsum(n[sl], 1)], 1)
        yc = np.concatenate([np.zeros((sl.stop - lo, 1)), np.cumsum(y[sl], 1)], 1)
        lim = limit[sl][:, None]
        nt = nc[np.arange(sl.stop - lo), limit[sl]][:, None]
        yt = yc[np.arange(sl.stop - lo), limit[sl]][:, None]
        ni = nc[:, b_all] - nc[:, a_all]
        yi = yc[:, b_all] - yc[:, a_all]
        no, yo = nt - ni, yt - yi
        valid = (
            (b_all[None, :] <= lim) & ((b_all - a_all)[None, :] <= lim // 2) & (ni > 0) & (no > 0)
        )
        if mask is not None:
            mc = np.concatenate([np.zeros((sl.stop - lo, 1)), np.cumsum(mask[sl], 1)], 1)
            valid &= (mc[:, b_all] - mc[:, a_all]) == 0
        with np.errstate(invalid="ignore", divide="ignore"):
            lbf = np.where(
                valid, _log_bf(ni, np.minimum(yi, ni), no, np.minimum(yo, no), c, rise), -np.inf
            )
        count = valid.sum(1)
        for r in range(sl.stop - lo):
            row = lo + r
            if count[r] == 0:
                continue
            lb = lbf[r]
            m = float(logsumexp(lb[valid[r]])) - math.log(count[r])
            prob[row] = float(expit(lprior + m))
            i = int(np.argmax(lb))
            mode[row] = a_all[i], b_all[i]
            near = valid[r] & (a_all < b_all[i]) & (b_all > a_all[i])
            w = np.exp(lb[near] - lb[i])
            post[row] = (a_all[near], b_all[near], w / w.sum())
    return prob, mode, post


def _scan_iter(n, y, limit, *, c, rise, prior, max_per_series: int, threshold: float):
    """Scan, then rescan with found windows masked, up to ``max_per_series`` windows a row."""
    n_rows, n_bins = n.shape
    mask = np.zeros((n_rows, n_bins), dtype=np.int64)
    found: list[tuple[int, int, int, float, tuple]] = []
    rows = np.arange(n_rows)
    for _ in range(max_per_series):
        if not len(rows):
            break
        prob, mode, post = _scan(
            n[rows], y[rows], limit[rows], c=c, rise=rise, prior=prior, mask=mask[rows]
        )
        hit = prob >= threshold
        for i in np.flatnonzero(hit):
            r = rows[i]
            found.append((int(r), int(mode[i, 0]), int(mode[i, 1]), float(prob[i]), post[i]))
            mask[r, mode[i, 0] : mode[i, 1]] = 1
        rows = rows[hit]
    return found


# ------------------------------------------------------------------------------------ summaries
def _draw_rates(n_raw, y_raw, phi, post, draws: int, rng: np.random.Generator):
    """Draws of (rate outside, rate inside, journeys inside) mixing windows by their posterior."""
    aw, bw, w = post
    pick = rng.choice(len(w), size=draws, p=w)
    nc = np.r_[0.0, np.cumsum(n_raw)]
    yc = np.r_[0.0, np.cumsum(y_raw)]
    ni, yi = nc[bw[pick]] - nc[aw[pick]], yc[bw[pick]] - yc[aw[pick]]
    no, yo = nc[-1] - ni, yc[-1] - yi
    r_in = rng.beta(1 + yi / phi, 1 + (ni - yi) / phi)
    r_out = rng.beta(1 + yo / phi, 1 + (no - yo) / phi)
    return r_out, r_in, ni, no


def _fixed_post(a: int, b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.array([a]), np.array([b]), np.array([1.0])


def _iou(a1, b1, a2, b2) -> float:
    inter = max(0, min(b1, b2) - max(a1, a2))
    union = max(b1, b2) - min(a1, a2)
    return inter / union if union > 0 else 0.0


def _overlap(a1, b1, a2, b2) -> bool:
    return min(b1, b2) > max(a1, a2)


def _prob_less(y1, n1, y2, n2, c=1.0) -> float:
    """P(q1 < c q2) for Beta(1 + y, 1 + n − y) posteriors (normal approximation)."""
    return float(
        np.exp(_onesided(np.float64(n1), np.float64(y1), np.float64(n2), np.float64(y2), c, False))
    )


def _as_index(steps_or_index, by, grain, horizon_days, as_of) -> TimeIndex:
    if isinstance(steps_or_index, TimeIndex):
        if by is not None and _by_list(by) != steps_or_index.by:
            raise ValueError(f"the index was built by {steps_or_index.by}, not {by}")
        return steps_or_index
    return time_index(steps_or_index, by=by, grain=grain, horizon_days=horizon_days, as_of=as_of)


def _frequency_series(idx: TimeIndex, min_journeys: int):
    """Rows (touchpoint × group): visits to its stage with the touchpoint, visits to its stage."""
    n_lab = len(idx.groups) + 1
    n_tp = idx.k.shape[0]
    f_stage = idx.tp_stage_step
    if not n_tp:
        z = np.zeros((0, len(idx.bins)))
        return z, z, np.zeros(0, bool)
    kk = idx.k.reshape(n_tp * n_lab, -1).astype(float)
    nn = np.where(f_stage[:, None, None] >= 0, idx.n[np.maximum(f_stage, 0)], 0)
    nn = nn.reshape(n_tp * n_lab, -1).astype(float)
    return kk, nn, (kk.sum(1) >= 5) & (nn.sum(1) >= min_journeys)


def _n_series(idx: TimeIndex, min_journeys: int) -> int:
    """How many series :func:`incidents` scans (the prior of one series is spread over them)."""
    rate_ok = idx.n_mature.sum(2).reshape(-1) >= min_journeys
    return int(rate_ok.sum() + _frequency_series(idx, min_journeys)[2].sum())


def incidents(
    steps: pd.DataFrame | TimeIndex,
    *,
    by: str | Sequence[str] | None = None,
    grain: str | None = None,
    prob: float = 0.9,
    min_drop: float = 0.1,
    min_rise: float = 1.0,
    expected_incidents: float = 0.5,
    all_segments_odds: float = 10.0,
    horizon_days: float | None = None,
    as_of: Any = None,
    min_journeys: int = 30,
    max_per_series: int = 3,
    interval: float = 0.9,
    draws: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Incidents: windows where the conversion of the journeys that reached a step fell.

    Parameters
    ----------
    steps : DataFrame or TimeIndex
        The step table (:meth:`Journeys.touchpoint_steps`) or its :func:`time_index`.
    by : str or list of str, optional
        Segment column(s) (e.g. ``"segment"``, ``"platform"``). Without it every journey is in
        one group, ``"all"``.
    grain : {"D", "W"}, optional
        :func:`time_grain` of the span when omitted.
    prob : float, default 0.9
        Posterior probability an incident needs to be reported.
    min_drop : float, default 0.1
        A material drop: the alternative is ``rate during < (1 − min_drop) × rate outside``.
    min_rise : float, default 1.0
        For an incident touchpoint: its share must rise by more than this (×2 by default).
    expected_incidents : float, default 0.5
        The prior: incidents expected a priori in one report, all series together (the prior
        probability of one series is this over the number of series scanned).
    all_segments_odds : float, default 10
        Prior odds of "every segment" against "only the segments that show it".
    horizon_days, as_of : optional
        See :func:`time_index`.
    min_journeys : int, default 30
        Series with fewer mature journeys are not scanned.
    max_per_series : int, default 3
        Windows sought per series (rescanning with the found windows masked).
    interval : float, default 0.9
        Width of the equal-tailed intervals.
    draws, seed : int
        Posterior draws for the intervals and their seed.

    Returns
    -------
    DataFrame
        :data:`INCIDENT_COLUMNS`, one row per incident, ranked by ``conversions_lost``:
        ``level`` ("stage"/"touchpoint") and ``step`` where conversion is measured, its
        ``stage``; ``touchpoint``: the incident touchpoint (an event whose share rose during the
        window, e.g. an error) or missing; ``by`` (the segment column(s), " / "-joined, or
        missing) and ``segment`` (a value, or ``"all"`` for every segment); ``start`` and
        ``end`` (UTC, ``end`` exclusive) and ``grain``; ``journeys_before`` (outside the window)
        and ``journeys_during`` that reached the step; ``rate_before`` (the baseline: outside
        the window, before and after it) and ``rate_during`` with ``_low``/``_high`` interval
        bounds; ``conversions_lost`` = journeys during × (rate before − rate during) with its
        interval; ``rate_with_touchpoint`` / ``rate_without_touchpoint`` /
        ``journeys_with_touchpoint`` during the window (for an incident touchpoint);
        ``over_represented``: list of ``(touchpoint, lift)`` more frequent after reaching the
        step during the window than outside it (lift ``inf``: absent outside), highest first;
        ``also_at``: other steps (and segments) where the same incident showed; ``probability``
        (posterior probability of an incident in the series); ``horizon_days`` (``H``).
        Empty, with these columns, when nothing is found.
    """
    if not 0 < prob < 1:
        raise ValueError(f"prob must be in (0, 1), got {prob}")
    idx = _as_index(steps, by, grain, horizon_days, as_of)
    rng = np.random.default_rng(seed)
    n_groups = len(idx.groups)
    n_lab = n_groups + 1
    labels = idx.labels
    n_steps = len(idx.steps)
    tab = idx.steps

    # ---- series to scan: conversion per step × group (+ all); frequency per touchpoint × group
    n_m = idx.n_mature.reshape(n_steps * n_lab, -1).astype(float)
    y_m = idx.y.reshape(n_steps * n_lab, -1).astype(float)
    limit = np.repeat(tab["mature_bins"].to_numpy(np.int64), n_lab)
    rate_ok = n_m.sum(1) >= min_journeys
    f_stage = idx.tp_stage_step
    kk, nn, freq_ok = _frequency_series(idx, min_journeys)
    n_series = int(rate_ok.sum() + freq_ok.sum())
    if n_series == 0:
        return _empty()
    prior = min(expected_incidents / n_series, 0.5)

    phi_rate = np.ones(len(n_m))
    rows = np.flatnonzero(rate_ok)
    if len(rows):
        phi_rate[rows] = [overdispersion(n_m[r, : limit[r]], y_m[r, : limit[r]])[0] for r in rows]
    phi_freq = np.ones(len(kk))
    frows = np.flatnonzero(freq_ok)

    findings: list[_Finding] = []
    c_drop = 1.0 - min_drop
    if len(rows):
        res = _scan_iter(
            n_m[rows] / phi_rate[rows, None],
            y_m[rows] / phi_rate[rows, None],
            limit[rows],
            c=c_drop,
            rise=False,
            prior=prior,
            max_per_series=max_per_series,
            threshold=prob,
        )
        for i, a, b, p, post in res:
            r = rows[i]
            s, g = divmod(int(r), n_lab)
            findings.append(
                _Finding(tab["level"].iat[s], s, g, a, b, p, "rate", post[2], post[0], post[1])
            )
    if len(frows):
        n_bins = len(idx.bins)
        phi_freq[frows] = [overdispersion(nn[r], kk[r])[0] for r in frows]
        lim = np.full(len(frows), n_bins, dtype=np.int64)
        res = _scan_iter(
            nn[frows] / phi_freq[frows, None],
            kk[frows] / phi_freq[frows, None],
            lim,
            c=1.0 / (1.0 + min_rise),
            rise=True,
            prior=prior,
            max_per_series=max_per_series,
            threshold=prob,
        )
        for i, a, b, p, post in res:
            r = frows[i]
            x, g = divmod(int(r), n_lab)
            s = int(f_stage[x])
            # the conversion at the touchpoint's stage during its window must have fallen too
            lim_s = int(tab["mature_bins"].iat[s])
            bb = min(b, lim_s)
            if bb <= a:
                log.info(
                    "incidents: %s rose from bin %d but its stage is not mature yet",
                    idx.touchpoints[x],
                    a,
                )
                continue
            rr = s * n_lab + g
            ph = phi_rate[rr] if rate_ok[rr] else 1.0
            ni = n_m[rr, a:bb].sum()
            yi = y_m[rr, a:bb].sum()
            no = n_m[rr, :lim_s].sum() - ni
            yo = y_m[rr, :lim_s].sum() - yi
            if ni <= 0 or no <= 0:
                continue
            p_drop = _prob_less(yi / ph, ni / ph, yo / ph, no / ph, c_drop)
            if p * p_drop < prob:
                continue
            aw, bw, w = post
            keep = bw <= lim_s
            if not keep.any():
                aw, bw, w = _fixed_post(a, bb)
            else:
                aw, bw, w = aw[keep], bw[keep], w[keep] / w[keep].sum()
            k_in, n_in = kk[r, a:b].sum(), nn[r, a:b].sum()
            k_out, n_out = kk[r].sum() - k_in, nn[r].sum() - n_in
            lift = math.inf if k_out == 0 else (k_in / max(n_in, 1)) / (k_out / max(n_out, 1))
            nf = _Finding("stage", s, g, a, bb, p * p_drop, "frequency", w, aw, bw, touchpoint=x)
            nf.lift = lift
            findings.append(nf)

    if not findings:
        return _empty()

    # ---- summaries of every finding (rates, lost, with draws)
    for f in findings:
        _summarise(idx, f, n_m, y_m, phi_rate, n_lab, draws, rng, interval)

    # ---- merge: frequency findings into the rate finding of their stage. Of several touchpoints
    # that rose at once (an error and the support chats that follow it), the one with the
    # largest lift names the incident (an event absent outside the window first)
    rate_f = [f for f in findings if f.kind == "rate"]
    freq_f = sorted(
        (f for f in findings if f.kind == "frequency"), key=lambda f: (-f.lift, -f.prob)
    )
    claimed: list[_Finding] = []  # frequency findings that name an incident
    alone: list[_Finding] = []  # … of those, the ones without a rate finding of their own
    for f in freq_f:
        if any(
            k.step == f.step and k.group == f.group and _overlap(k.a, k.b, f.a, f.b)
            for k in claimed
        ):
            continue  # a touchpoint with a larger lift already names this one
        claimed.append(f)
        same = [
            r
            for r in rate_f
            if r.step == f.step
            and r.group == f.group
            and _overlap(r.a, r.b, f.a, f.b)
            and r.touchpoint is None
        ]
        for r in same:
            r.touchpoint, r.lift = f.touchpoint, f.lift
            r.a, r.b = f.a, f.b  # the time the touchpoint was there
            r.aw, r.bw, r.weights = f.aw, f.bw, f.weights
            r.prob = max(r.prob, f.prob)
            _summarise(idx, r, n_m, y_m, phi_rate, n_lab, draws, rng, interval)
        if not same:
            alone.append(f)
    findings = rate_f + alone

    # ---- every segment or some: pooled findings
    all_g = n_groups
    out: list[_Finding] = []
    if n_groups == 0:
        for f in findings:
            f.every = True
        out = findings
    else:
        pooled = [f for f in findings if f.group == all_g]
        seg = [f for f in findings if f.group != all_g]
        for f in pooled:
            llr = _segment_llr(f, tab, n_m, y_m, phi_rate, rate_ok, n_groups)
            against = llr[llr < 0].sum()
            if against >= -math.log(all_segments_odds):
                f.every = True
                out.append(f)
            else:
                log.info(
                    "incidents: %s shows in segments %s only",
                    tab["step"].iat[f.step],
                    [labels[g] for g in np.flatnonzero(llr > 0)],
                )
        # segment findings absorbed by an every-segment finding of the same step
        for f in seg:
            if any(o.step == f.step and _overlap(o.a, o.b, f.a, f.b) for o in out):
                continue
            out.append(f)
        # the same step and window in every segment, not in the pooled series: every segment
        by_step: dict[int, list[_Finding]] = {}
        for f in out:
            if not f.every:
                by_step.setdefault(f.step, []).append(f)
        for s, fs in by_step.items():
            gs = {f.group for f in fs}
            if n_groups >= 2 and len(gs) == n_groups:
                a = int(np.median([f.a for f in fs]))
                b = int(np.median([f.b for f in fs]))
                if all(_overlap(f.a, f.b, a, b) for f in fs) and b > a:
                    nf = _Finding(
                        fs[0].level,
                        s,
                        all_g,
                        a,
                        b,
                        min(f.prob for f in fs),
                        "rate",
                        np.array([1.0]),
                        np.array([a]),
                        np.array([b]),
                        every=True,
                    )
                    nf.touchpoint = next(
                        (f.touchpoint for f in fs if f.touchpoint is not None), None
                    )
                    _summarise(idx, nf, n_m, y_m, phi_rate, n_lab, draws, rng, interval)
                    out = [f for f in out if f not in fs] + [nf]

    # ---- echoes: overlapping findings of one segment are one incident
    out.sort(key=lambda f: -f.summary["lost"])
    depth = tab["depth"].to_numpy()
    final: list[_Finding] = []
    used = [False] * len(out)
    for i, f in enumerate(out):
        if used[i]:
            continue
        cluster = [f]
        used[i] = True
        for j in range(i + 1, len(out)):
            o = out[j]
            if used[j]:
                continue
            same_seg = (o.group == f.group) or f.every or o.every
            if same_seg and any(_overlap(m.a, m.b, o.a, o.b) for m in cluster):
                cluster.append(o)
                used[j] = True
        every = [m for m in cluster if m.every]
        cands = every or cluster
        with_tp = [m for m in cands if m.touchpoint is not None]
        if with_tp:  # the incident touchpoint's own stage names it
            rep = max(with_tp, key=lambda m: (m.lift, m.summary["lost"]))
        else:  # the deepest step that holds the whole loss
            top = max(m.summary["lost"] for m in cands)
            whole = [m for m in cands if m.summary["lost_iv"][1] >= top]
            rep = max(whole, key=lambda m: (depth[m.step], m.summary["lost"]))
        for m in cluster:
            if m is rep:
                continue
            rep.also.append(("step", m))
            if (
                rep.touchpoint is None
                and m.touchpoint is not None
                and _stage(idx, m) == _stage(idx, rep)
            ):
                rep.touchpoint = m.touchpoint
        final.append(rep)

    rows_out = [_row(idx, f, n_lab, interval) for f in final]
    df = pd.DataFrame(rows_out, columns=INCIDENT_COLUMNS)
    df = df.sort_values("conversions_lost", ascending=False, kind="stable").reset_index(drop=True)
    df.attrs.update(grain=idx.grain, prior=prior, series=n_series, prob=prob, as_of=idx.as_of)
    return df


def _segment_llr(f: _Finding, tab, n_m, y_m, phi_rate, rate_ok, n_groups: int) -> np.ndarray:
    """Per segment, log likelihood ratio of its window data under the pooled relative drop vs no
    drop (binomial, at the segment's own rate outside the window; divided by its ``φ``).
    """
    n_lab = n_groups + 1
    lim = int(tab["mature_bins"].iat[f.step])
    b = min(f.b, lim)

    def counts(g):
        rr = f.step * n_lab + g
        ni, yi = n_m[rr, f.a : b].sum(), y_m[rr, f.a : b].sum()
        return ni, yi, n_m[rr, :lim].sum() - ni, y_m[rr, :lim].sum() - yi, rr

    ni, yi, no, yo, _ = counts(n_groups)
    rho = ((yi + 0.5) / (ni + 1)) / ((yo + 0.5) / (no + 1))
    out = np.zeros(n_groups)
    for g in range(n_groups):
        ni, yi, no, yo, rr = counts(g)
        if ni <= 0 or no <= 0:
            continue
        q0 = (yo + 0.5) / (no + 1)
        q1 = min(rho * q0, 1 - 1e-9)
        llr = yi * math.log(q1 / q0) + (ni - yi) * math.log((1 - q1) / (1 - q0))
        out[g] = llr / (phi_rate[rr] if rate_ok[rr] else 1.0)
    return out


def _stage(idx: TimeIndex, f: _Finding):
    return idx.steps["stage"].iat[f.step]


def _empty() -> pd.DataFrame:
    df = pd.DataFrame({c: pd.Series(dtype=object) for c in INCIDENT_COLUMNS})
    for c in ("start", "end"):
        df[c] = pd.Series(dtype="datetime64[us, UTC]")
    for c in INCIDENT_COLUMNS:
        if c.startswith(("rate", "conversions", "probability", "horizon")):
            df[c] = pd.Series(dtype=float)
        if c.startswith("journeys"):
            df[c] = pd.Series(dtype="int64")
    return df


def _summarise(
    idx: TimeIndex, f: _Finding, n_m, y_m, phi_rate, n_lab, draws, rng, interval
) -> None:
    rr = f.step * n_lab + f.group
    lim = int(idx.steps["mature_bins"].iat[f.step])
    within = float(idx.steps["within"].iat[f.step]) or 1.0
    n_raw, y_raw = n_m[rr, :lim], y_m[rr, :lim]
    aw, bw, w = f.aw, f.bw, f.weights
    keep = bw <= lim
    if not keep.any():
        aw, bw, w = _fixed_post(f.a, min(f.b, lim))
    else:
        aw, bw, w = aw[keep], bw[keep], w[keep] / w[keep].sum()
    r_out, r_in, ni, no = _draw_rates(n_raw, y_raw, phi_rate[rr], (aw, bw, w), draws, rng)
    r_out, r_in = np.minimum(r_out / within, 1.0), np.minimum(r_in / within, 1.0)
    lost = ni * (r_out - r_in)
    lo, hi = (1 - interval) / 2, 1 - (1 - interval) / 2
    nc = np.r_[0, np.cumsum(n_raw)]
    f.summary = {
        "before": (r_out.mean(), *np.quantile(r_out, [lo, hi])),
        "during": (r_in.mean(), *np.quantile(r_in, [lo, hi])),
        "lost": float(lost.mean()),
        "lost_iv": tuple(np.quantile(lost, [lo, hi])),
        "n_during": int(nc[f.b if f.b <= lim else lim] - nc[min(f.a, lim)]),
        "n_before": int(nc[-1] - (nc[f.b if f.b <= lim else lim] - nc[min(f.a, lim)])),
    }


def _after(idx: TimeIndex, rj: np.ndarray, rt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (reach ``i``, touchpoint ``x``): the journey ``rj[i]`` has ``x`` at or after ``rt[i]``."""
    T = idx._tp
    lo = np.searchsorted(T["j"], rj, "left")
    cnt = np.searchsorted(T["j"], rj, "right") - lo
    rep = np.repeat(np.arange(len(rj)), cnt)
    ti = lo[rep] + (np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt))
    ok = T["last"][ti] >= rt[rep]
    return rep[ok], T["x"][ti[ok]]


def _touchpoint_profile(idx: TimeIndex, step: int, group: int, a: int, b: int):
    """The reaches of ``step`` (in ``group``), which of them fall in bins ``[a, b)``, and the
    pairs (reach, touchpoint at or after it).
    """
    R = idx._reach
    sel = R["s"] == step
    if group != len(idx.groups):
        sel &= idx._jgroup[R["j"]] == group
    sel = np.flatnonzero(sel)
    inside = (R["b"][sel] >= a) & (R["b"][sel] < b)
    rep, x = _after(idx, R["j"][sel], R["t"][sel])
    return sel, inside, rep, x


def _row(idx: TimeIndex, f: _Finding, n_lab: int, interval: float) -> dict[str, Any]:
    tab = idx.steps
    g_us = GRAIN_US[idx.grain]
    s = f.summary
    # over-represented touchpoints after reaching the step, inside vs outside the window
    sel, inside, rep, xs = _touchpoint_profile(idx, f.step, f.group, f.a, f.b)
    n_x = len(idx.touchpoints)
    k_in = np.bincount(xs[inside[rep]], minlength=n_x)
    k_out = np.bincount(xs[~inside[rep]], minlength=n_x)
    n_in, n_out = int(inside.sum()), int((~inside).sum())
    over = []
    step_name = tab["step"].iat[f.step]
    for x in np.flatnonzero(k_in >= 5):
        name = idx.touchpoints[x]
        if tab["level"].iat[f.step] == "touchpoint" and name == step_name:
            continue
        sh_in, sh_out = k_in[x] / max(n_in, 1), k_out[x] / max(n_out, 1)
        lift = math.inf if k_out[x] == 0 else sh_in / sh_out
        p_up = _prob_less(k_out[x], n_out, k_in[x], n_in)  # P(share in > share out)
        if lift >= 1.5 and p_up >= 0.9:
            over.append((name, float(lift)))
    over.sort(key=lambda t: -t[1])
    over = over[:5]
    # with / without the incident touchpoint (at or after the reach) during the window
    r_with = r_without = np.nan
    n_with = 0
    if f.touchpoint is not None:
        R = idx._reach
        has = np.zeros(len(sel), dtype=bool)
        has[rep[xs == f.touchpoint]] = True
        mat = R["mature"][sel] & inside
        conv = R["conv_h"][sel]
        w, wo = has & mat, ~has & mat
        within = float(tab["within"].iat[f.step]) or 1.0
        n_with = int(w.sum())
        if n_with:
            r_with = min(float(conv[w].mean()) / within, 1.0)
        if wo.sum():
            r_without = min(float(conv[wo].mean()) / within, 1.0)
    also = []
    for kind, v in f.also:
        if kind == "step":
            name = tab["step"].iat[v.step]
            lab = idx.labels[v.group]
            also.append(name if (v.group == f.group or v.every) else f"{name} ({lab})")
    also = list(dict.fromkeys(also))
    seg = ALL if (f.every or f.group == len(idx.groups)) else idx.labels[f.group]
    start = idx.bins[0] + pd.Timedelta(microseconds=g_us * f.a)
    end = idx.bins[0] + pd.Timedelta(microseconds=g_us * f.b)
    return {
        "level": tab["level"].iat[f.step],
        "step": step_name,
        "stage": tab["stage"].iat[f.step],
        "touchpoint": idx.touchpoints[f.touchpoint] if f.touchpoint is not None else None,
        "by": " / ".join(idx.by) if idx.by else None,
        "segment": seg,
        "start": start,
        "end": end,
        "grain": idx.grain,
        "journeys_before": s["n_before"],
        "journeys_during": s["n_during"],
        "rate_before": s["before"][0],
        "rate_before_low": s["before"][1],
        "rate_before_high": s["before"][2],
        "rate_during": s["during"][0],
        "rate_during_low": s["during"][1],
        "rate_during_high": s["during"][2],
        "conversions_lost": s["lost"],
        "conversions_lost_low": s["lost_iv"][0],
        "conversions_lost_high": s["lost_iv"][1],
        "rate_with_touchpoint": r_with,
        "rate_without_touchpoint": r_without,
        "journeys_with_touchpoint": n_with,
        "over_represented": over,
        "also_at": also,
        "probability": f.prob,
        "horizon_days": float(tab["horizon_days"].iat[f.step]),
    }


# ------------------------------------------------------------------------------------ the plot's table
def step_series(
    steps: pd.DataFrame | TimeIndex,
    *,
    by: str | Sequence[str] | None = None,
    grain: str | None = None,
    found: pd.DataFrame | None = None,
    horizon_days: float | None = None,
    as_of: Any = None,
    interval: float = 0.9,
    min_journeys: int = 30,
) -> pd.DataFrame:
    """Conversion per step, segment and time bin, with the baseline and its band (for a plot).

    Returns one row per (level, step, segment, bin) of the series with at least ``min_journeys``
    journeys: ``level, step, stage, segment`` (``"all"`` for every segment), ``bin`` (its start,
    UTC), ``journeys`` (that reached the step in the bin), ``mature`` (the bin is at least ``H``
    before the data's end, so its conversion is scored), ``conversions`` (within ``H``), ``rate``
    (scaled by ``1 / F(H)``; missing for bins not mature), ``baseline`` (the rate outside the
    incidents of ``found``) and ``band_low`` / ``band_high`` (the ``interval`` range of a bin's
    rate with that many journeys under the baseline, overdispersion included: normal
    approximation), ``incident`` (the bin is inside an incident of ``found`` for this step and
    segment, or for every segment).
    """
    from scipy.stats import norm

    idx = _as_index(steps, by, grain, horizon_days, as_of)
    tab = idx.steps
    labels = idx.labels
    n_lab = len(labels)
    n_bins = len(idx.bins)
    z = float(norm.ppf(0.5 + interval / 2))
    parts = []
    for s in range(len(tab)):
        lim = int(tab["mature_bins"].iat[s])
        within = float(tab["within"].iat[s]) or 1.0
        for g in range(n_lab):
            nm, ym, na = idx.n_mature[s, g], idx.y[s, g], idx.n[s, g]
            if nm.sum() < min_journeys:
                continue
            inc = np.zeros(n_bins, dtype=bool)
            if found is not None and len(found):
                hit = found[
                    (found["level"] == tab["level"].iat[s])
                    & (found["step"] == tab["step"].iat[s])
                    & found["segment"].isin([labels[g], ALL])
                ]
                for st, en in zip(hit["start"], hit["end"], strict=True):
                    inc |= (idx.bins >= st) & (idx.bins < en)
            base = ~inc & (np.arange(n_bins) < lim)
            N, Y = nm[base].sum(), ym[base].sum()
            p = (1 + Y) / (2 + N)
            phi = overdispersion(nm[:lim], ym[:lim])[0]
            with np.errstate(divide="ignore", invalid="ignore"):
                sd = np.sqrt(
                    phi * p * (1 - p) / np.where(na > 0, na, np.nan) + p * (1 - p) / (3 + N / phi)
                )
                rate = np.where(
                    (np.arange(n_bins) < lim) & (nm > 0),
                    ym / np.where(nm > 0, nm, 1) / within,
                    np.nan,
                )
            parts.append(
                pd.DataFrame(
                    {
                        "level": tab["level"].iat[s],
                        "step": tab["step"].iat[s],
                        "stage": tab["stage"].iat[s],
                        "segment": labels[g],
                        "bin": idx.bins,
                        "journeys": na,
                        "mature": np.arange(n_bins) < lim,
                        "conversions": ym,
                        "rate": np.minimum(rate, 1.0),
                        "baseline": min(p / within, 1.0),
                        "band_low": np.clip((p - z * sd) / within, 0, 1),
                        "band_high": np.clip((p + z * sd) / within, 0, 1),
                        "incident": inc,
                    }
                )
            )
    if not parts:
        return pd.DataFrame(
            columns=[
                "level",
                "step",
                "stage",
                "segment",
                "bin",
                "journeys",
                "mature",
                "conversions",
                "rate",
                "baseline",
                "band_low",
                "band_high",
                "incident",
            ]
        )
    return pd.concat(parts, ignore_index=True)


# ------------------------------------------------------------------------------------ nothing found
def detectable_drop(
    steps: pd.DataFrame | TimeIndex,
    *,
    by: str | Sequence[str] | None = None,
    grain: str | None = None,
    window_days: float = 14.0,
    prob: float = 0.9,
    min_drop: float = 0.1,
    expected_incidents: float = 0.5,
    min_journeys: int = 30,
    horizon_days: float | None = None,
    as_of: Any = None,
) -> dict[str, Any]:
    """How large an incident :func:`incidents` could have seen: the smallest relative drop in
    conversion, lasting ``window_days`` in the middle of the data, at the busiest step (the
    stage, else touchpoint, with the most scored journeys, all segments together), that the scan
    would report at posterior probability ``prob`` — with the same prior and overdispersion as
    :func:`incidents` (the counts are the step's own, the conversions their expectation).

    Returns a dict: ``level, step, segment`` ("all"), ``grain``, ``window_days``, ``rate`` (the
    step's conversion), ``journeys_in_window``, ``drop`` (relative, e.g. 0.3 for −30%; ``None``
    when not even a complete stop would be seen), ``rate_during``, ``conversions_lost`` (in the
    window), ``start`` (the bin the probe window starts at), ``prob`` and ``text``
    (:func:`no_incident_text`).
    """
    idx = _as_index(steps, by, grain, horizon_days, as_of)
    tab = idx.steps
    g = len(idx.groups)
    tot = idx.n_mature[:, g].sum(1) * (idx.y[:, g].sum(1) > 0)
    stage_rows = np.flatnonzero((tab["level"] == "stage").to_numpy() & (tot > 0))
    cand = stage_rows if len(stage_rows) else np.flatnonzero(tot > 0)
    out: dict[str, Any] = {
        "segment": ALL,
        "grain": idx.grain,
        "window_days": float(window_days),
        "prob": prob,
    }
    if not len(cand):
        out.update(
            level=None,
            step=None,
            rate=None,
            journeys_in_window=0,
            drop=None,
            rate_during=None,
            conversions_lost=None,
        )
        out["text"] = no_incident_text(out)
        return out
    s = int(cand[np.argmax(tot[cand])])
    lim = int(tab["mature_bins"].iat[s])
    within = float(tab["within"].iat[s]) or 1.0
    n = idx.n_mature[s, g, :lim].astype(float)
    y = idx.y[s, g, :lim].astype(float)
    p = y.sum() / n.sum()
    phi = overdispersion(n, y)[0]
    L = max(1, int(round(window_days / idx.grain_days)))
    L = min(L, max(lim // 2, 1))
    a = max((lim - L) // 2, 0)
    b = a + L
    prior = min(expected_incidents / max(_n_series(idx, min_journeys), 1), 0.5)

    def p_found(d: float) -> float:
        yy = n * p
        yy[a:b] *= 1 - d
        pr, _, _ = _scan(
            n[None] / phi, yy[None] / phi, np.array([lim]), c=1 - min_drop, rise=False, prior=prior
        )
        return float(pr[0])

    out.update(
        level=tab["level"].iat[s],
        step=tab["step"].iat[s],
        rate=float(min(p / within, 1.0)),
        journeys_in_window=int(n[a:b].sum()),
    )
    if lim < 2 or p_found(1.0) < prob:
        out.update(drop=None, rate_during=None, conversions_lost=None)
    else:
        lo, hi = 0.0, 1.0
        for _ in range(30):
            mid = (lo + hi) / 2
            if p_found(mid) >= prob:
                hi = mid
            else:
                lo = mid
        out.update(
            drop=hi,
            rate_during=out["rate"] * (1 - hi),
            conversions_lost=float(n[a:b].sum() * out["rate"] * hi),
        )
    out["start"] = idx.bins[min(a, len(idx.bins) - 1)]
    out["text"] = no_incident_text(out)
    return out


# ------------------------------------------------------------------------------------ words
def _pct(x: float) -> str:
    return f"{x:.0%}" if x >= 0.095 or x == 0 else f"{x:.1%}"


def _about(x: float) -> str:
    """Two significant figures, thousands separated: 123 → "120", 1234 → "1,200"."""
    x = float(x)
    if not math.isfinite(x):
        return "?"
    if abs(x) < 10:
        return f"{round(x):,.0f}"
    digits = int(math.floor(math.log10(abs(x)))) - 1
    return f"{round(x, -digits):,.0f}"


def _step_words(level: str, step: Any) -> str:
    return f"{step} stage" if level == "stage" else f"{step} step"


def _dates(start: pd.Timestamp, end_excl: pd.Timestamp) -> str:
    last = end_excl - pd.Timedelta(days=1)
    if last < start:
        last = start
    if start.normalize() == last.normalize():
        return f"on {start.day} {start:%b %Y}"
    if start.year != last.year:
        return f"from {start.day} {start:%b %Y} to {last.day} {last:%b %Y}"
    return f"from {start.day} {start:%b} to {last.day} {last:%b %Y}"


def _who(by: Any, segment: Any) -> str:
    has_by = by is not None and not (isinstance(by, float) and math.isnan(by))
    if segment == ALL:
        return f"every {by}" if has_by else "all journeys"
    return f"{by} {segment}" if has_by else str(segment)


def incident_headline(row: pd.Series | dict, *, conversions: str = "conversions") -> str:
    """One incident in words a marketer reads, e.g. "Do stage (payment_error events), every
    platform: conversion 41% → 12% from 3 Mar to 24 Mar 2024, about 120 conversions lost
    [100–140]". ``conversions`` names what is lost ("purchases", "sign-ups").
    """
    r = row
    what = _step_words(r["level"], r["step"])
    tp = r.get("touchpoint")
    if tp is not None and not (isinstance(tp, float) and math.isnan(tp)):
        what += f" ({tp} events)"
    lo = max(float(r["conversions_lost_low"]), 0.0)
    hi = max(float(r["conversions_lost_high"]), 0.0)
    return (
        f"{what}, {_who(r.get('by'), r['segment'])}: conversion {_pct(r['rate_before'])} → "
        f"{_pct(r['rate_during'])} {_dates(pd.Timestamp(r['start']), pd.Timestamp(r['end']))}, "
        f"about {_about(max(float(r['conversions_lost']), 0.0))} {conversions} lost "
        f"[{_about(lo)}–{_about(hi)}]"
    )


def no_incident_text(d: dict[str, Any], *, conversions: str = "conversions") -> str:
    """The "nothing found" sentence with how large an incident could have been seen
    (:func:`detectable_drop`).
    """
    head = "No incident found: no step's conversion fell for a while, in any segment."
    if d.get("step") is None:
        return head + " There are too few scored journeys to see one."
    where = _step_words(d["level"], d["step"])
    if d.get("drop") is None:
        return (
            head + f" Even a complete stop of conversion at the {where} (the busiest step) for "
            f"{d['window_days']:g} days would not have shown: too few journeys."
        )
    return (
        head + f" The data could have shown a fall at the {where} (the busiest step) from "
        f"{_pct(d['rate'])} to {_pct(d['rate_during'])} (−{d['drop']:.0%}) lasting {d['window_days']:g} days, "
        f"about {_about(d['conversions_lost'])} {conversions} lost; smaller ones would go unseen."
    )
