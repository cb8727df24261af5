"""Time to an event with right-censoring, model-free: Kaplan–Meier curves and a summary table.

For a funnel whose end state is rarely recorded as lost — Olist's leads are never marked lost;
most simply never close — the honest figures of "time to close" are:

- the share closed by a horizon, ``1 - S(t)`` of the Kaplan–Meier curve over *all* leads
  (those without a deal censored at the end of the data);
- the median days to close *among leads that closed* (a conditional figure: it says how fast
  deals close, not how fast leads do);
- the Kaplan–Meier median over all leads only when the curve falls below one half; with 10%
  of leads ever closing it never does, and the summary says so instead of inventing a number.

A log-normal dwell model with censoring (:class:`analysis.models.transitions.DwellTimeModel`)
assumes every visit ends eventually; where most never do, its "median" is not a time to close
(on Olist's leads it comes out near 195,000 days). The model to put beside these figures is
:class:`analysis.models.cure.CureTimeModel` (P(ever closing) and the closers' time, censored).

>>> dur = jr.stage_durations(by="channel")                      # doctest: +SKIP
>>> think = dur[dur["stage"] == "Think"]                        # doctest: +SKIP
>>> time_to_event_summary(think, by="channel")                  # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.errors import example_rows
from analysis.schema import DataError

__all__ = ["kaplan_meier", "share_by", "time_to_event_summary"]


def _prepare(df: pd.DataFrame, duration: str, censored: str, by: list[str]) -> pd.DataFrame:
    missing = [c for c in [duration, censored, *by] if c not in df.columns]
    if missing:
        raise DataError(
            f"time to event: column(s) {missing} not found",
            column=missing,
            fix="pass a table with a duration (days) and a censored flag per subject, "
            "e.g. Journeys.stage_durations()",
        )
    d = pd.to_numeric(df[duration], errors="coerce")
    bad = d.isna() | (d < 0)
    if bad.any():
        raise DataError(
            f"time to event: {int(bad.sum())} duration(s) are missing or negative",
            column=duration,
            rows=example_rows(bad),
            fix="durations are days ≥ 0",
        )
    out = pd.DataFrame({c: df[c].astype("str").to_numpy() for c in by})
    out["days"] = d.to_numpy(float)
    out["event"] = ~df[censored].astype(bool).to_numpy()
    return out


def kaplan_meier(
    df: pd.DataFrame,
    *,
    duration: str = "duration_days",
    censored: str = "censored",
    by: str | list[str] | None = None,
) -> pd.DataFrame:
    """Kaplan–Meier survival curve(s): ``[*by], days, at_risk, events, censored, survival``.

    One row per distinct time per group (events before censorings at tied times, as usual);
    ``survival`` is P(no event yet) just after ``days``.

    Examples
    --------
    >>> t = pd.DataFrame({"duration_days": [1, 2, 2, 5], "censored": [False, True, False, False]})
    >>> kaplan_meier(t)["survival"].round(3).tolist()
    [0.75, 0.5, 0.0]
    """
    by = [] if by is None else [by] if isinstance(by, str) else list(by)
    t = _prepare(df, duration, censored, by)
    keys = [*by, "days"]
    g = t.groupby(keys, sort=True).agg(events=("event", "sum"), n=("event", "size")).reset_index()
    g["censored"] = g["n"] - g["events"]
    if by:
        grp = g.groupby(by, sort=False)
        total, before = grp["n"].transform("sum"), grp["n"].cumsum() - g["n"]
    else:
        total, before = g["n"].sum(), g["n"].cumsum() - g["n"]
    g["at_risk"] = total - before
    with np.errstate(divide="ignore"):  # every subject at risk has the event: S = 0 (log = -inf)
        step = pd.Series(np.log1p(-(g["events"] / g["at_risk"]).to_numpy(float)), index=g.index)
    g["survival"] = np.exp(step.groupby([g[c] for c in by]).cumsum() if by else step.cumsum())
    return g[[*keys, "at_risk", "events", "censored", "survival"]].astype(
        {"at_risk": "int64", "events": "int64", "censored": "int64"}
    )


def time_to_event_summary(
    df: pd.DataFrame,
    *,
    duration: str = "duration_days",
    censored: str = "censored",
    by: str | list[str] | None = None,
    horizons: tuple[float, ...] = (7, 30, 90, 180),
) -> pd.DataFrame:
    """Return the time-to-event summary per group.

    Subjects, events, censored, the median days among subjects with the event, the Kaplan–Meier
    median (NaN when the curve never falls to one half: fewer than half ever
    have the event in the data), and ``share_by_<h>d`` = 1 - S(h) for each horizon.

    Examples
    --------
    >>> t = pd.DataFrame({"duration_days": [1, 3, 200, 300], "censored": [False, False, True, True]})
    >>> time_to_event_summary(t, horizons=(2,))[["events", "median_days_events", "km_median_days", "share_by_2d"]]
       events  median_days_events  km_median_days  share_by_2d
    0       2                 2.0             NaN         0.25
    """
    by = [] if by is None else [by] if isinstance(by, str) else list(by)
    t = _prepare(df, duration, censored, by)
    km = kaplan_meier(df, duration=duration, censored=censored, by=by or None)
    groups = (
        t[by].drop_duplicates().sort_values(by).reset_index(drop=True)
        if by
        else pd.DataFrame(index=[0])
    )
    rows = []
    for i in range(len(groups)):
        key = groups.iloc[i].to_dict() if by else {}
        m = np.ones(len(t), bool)
        mk = np.ones(len(km), bool)
        for c, v in key.items():
            m &= (t[c] == v).to_numpy()
            mk &= (km[c] == v).to_numpy()
        sub, curve = t[m], km[mk]
        below = curve[curve["survival"] <= 0.5]
        row = {
            **key,
            "subjects": len(sub),
            "events": int(sub["event"].sum()),
            "censored": int((~sub["event"]).sum()),
            "median_days_events": float(sub.loc[sub["event"], "days"].median())
            if sub["event"].any()
            else np.nan,
            "km_median_days": float(below["days"].iloc[0]) if len(below) else np.nan,
        }
        for h in horizons:
            before = curve[curve["days"] <= h]
            row[f"share_by_{h:g}d"] = float(1 - before["survival"].iloc[-1]) if len(before) else 0.0
        rows.append(row)
    return pd.DataFrame(rows)


def share_by(km: pd.DataFrame, days, *, by: str | list[str] | None = None) -> pd.DataFrame:
    """Return ``1 - S(t)`` of Kaplan–Meier curves at given days.

    The share with the event within ``t`` (a step function: the last step at or before ``t``; 0 before the first event).

    ``km`` is :func:`kaplan_meier` output (grouped by ``by``). Returns ``[*by], days, share``,
    one row per group and day, to set beside a model's figure (e.g.
    :meth:`analysis.models.cure.CureTimeModel.closed_by`).

    Examples
    --------
    >>> t = pd.DataFrame({"duration_days": [1, 2, 2, 5], "censored": [False, True, False, False]})
    >>> share_by(kaplan_meier(t), [0.5, 2, 10])["share"].round(3).tolist()
    [0.0, 0.5, 1.0]
    """
    by = [] if by is None else [by] if isinstance(by, str) else list(by)
    t = np.sort(np.atleast_1d(np.asarray(days, float)))
    groups = km[by].drop_duplicates().reset_index(drop=True) if by else pd.DataFrame(index=[0])
    grid = groups.merge(pd.DataFrame({"days": t}), how="cross")
    curve = km[[*by, "days", "survival"]].astype({"days": float}).sort_values("days")
    out = pd.merge_asof(
        grid.sort_values("days"), curve, on="days", by=by or None, direction="backward"
    )
    out["share"] = 1 - out.pop("survival").fillna(1.0)
    return out.sort_values([*by, "days"]).reset_index(drop=True)[[*by, "days", "share"]]
