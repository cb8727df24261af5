"""This period against the previous one, per step and segment, with the change split into the
segment-mix shift and the within-segment rate change.

A *step* is a touchpoint reached: its rate is the share of the journeys that reached it which
converted, and a journey counts in the period in which it first reached the step. The step
``(journey)`` is every journey, from its first touch (its rate is the journeys' conversion
rate). Open journeys (``outcome == "open"``) are left out of the rates: they may still convert;
their number is in ``open_prev`` / ``open_this``. Recent journeys are the most often open, so a
current period that ends at the end of the data has fewer settled journeys; read those columns.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.friction.funnel import _code, _first_and_last, beta_summary, check_steps, pool_beta
from analysis.schema import DataError

JOURNEY_STEP = "(journey)"  # the step of every journey, from its first touch
ALL = "(all)"  # the by value of a step's total row
_DAY_US = 86_400_000_000


def _periods(c, period_end, period_days) -> tuple[int, int, float]:
    """``(end_us, length_us, days)`` of the current period ``(end − length, end]``."""
    ts = c.start_ts if c.ts is None or not len(c.ts) else np.r_[c.ts, c.start_ts]
    if ts is None or not len(ts):
        raise DataError("the step table has no rows", fix="pass a step table with journeys")
    t_min, t_max = int(ts.min()), int(ts.max())
    if period_end is None:
        end = t_max
    else:
        e = pd.Timestamp(period_end)
        e = e.tz_localize("UTC") if e.tzinfo is None else e.tz_convert("UTC")
        end = int(e.value // 1000)
    if period_days is None:
        length = max((end - t_min) // 4, 1)
        days = length / _DAY_US
    else:
        if not period_days > 0:
            raise ValueError(f"period_days must be > 0, got {period_days}")
        days = float(period_days)
        length = int(round(days * _DAY_US))
    return end, length, days


def period_over_period(
    steps: pd.DataFrame,
    *,
    step: str | Sequence[str] | None = None,
    by: str | list[str] | None = None,
    period_end: str | pd.Timestamp | None = None,
    period_days: float | None = None,
    prob: float = 0.9,
    draws: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Conversion of each step, this period against the previous one, as a posterior
    difference, with the change split into segment mix and within-segment rates.

    Parameters
    ----------
    steps : pandas.DataFrame
        Step table from :meth:`Journeys.touchpoint_steps` (``person_id, journey_index, pos,
        timestamp, touchpoint, converted``; ``conversion`` and ``outcome`` used when present).
    step : str or list of str, optional
        Touchpoints to compare, and/or ``"(journey)"`` (all journeys, by their first touch).
        Default: ``(journey)`` and every touchpoint (conversion rows are ends, not steps).
    by : str or list of str, optional
        Segment column(s) (journey-level values). Each step gets one row per segment and a
        total row whose ``by`` values are ``"(all)"``.
    period_end : timestamp, optional
        End of this period (inclusive; naive times are UTC). Default: the last timestamp.
    period_days : float, optional
        Length of each period. Default: a quarter of the span from the first timestamp to
        ``period_end``. This period is ``(period_end − period_days, period_end]``, the previous
        one the same length just before it.
    prob : float, default 0.9
        Mass of the equal-tailed intervals.
    draws, seed : int
        Posterior draws for the differences and the decomposition; the random seed.

    Returns
    -------
    pandas.DataFrame
        One row per step × (segment and total), in the steps' order of first appearance:

        - ``step``, ``[*by]``;
        - ``n_prev``, ``conv_prev``, ``n_this``, ``conv_this``: closed journeys that reached the
          step in each period and how many converted; ``open_prev``, ``open_this``: open ones
          (left out);
        - ``share_prev``, ``share_this``: the segment's share of the step's journeys (``w``;
          1 on total rows);
        - ``rate_prev``, ``rate_prev_low``, ``rate_prev_high``, ``rate_this``, … : posterior mean
          and ``prob`` interval. Segments: ``Beta(prior + k, prior + n − k)`` with the prior of
          :func:`~analysis.friction.funnel.pool_beta` across the step's segments in that period
          (partial pooling; uniform below three segments); totals: ``Beta(1 + K, 1 + N − K)``;
        - ``diff``, ``diff_low``, ``diff_high``: posterior of ``rate_this − rate_prev``;
          ``p_up``: its probability of being positive;
        - ``change``, ``mix``, ``within`` (with ``_low`` / ``_high`` for the last two): the
          observed change ``R₁ − R₀`` of the step's overall rate ``R = Σ w r`` (observed rates
          ``r = conv / n``) and its **symmetric shift-share** split,
          ``mix = Σ (w₁ − w₀)(r₀ + r₁)/2`` (segment mix shift) and
          ``within = Σ (w₀ + w₁)/2 (r₁ − r₀)`` (within-segment rate change), which add up to
          ``change`` exactly. The symmetric form weighs both periods alike, so the split does
          not depend on which period is the base. Segment rows hold their term of each sum
          (``change`` = ``w₁ r₁ − w₀ r₀``); total rows the sums. A segment with no journeys in
          one period takes the step's overall rate of that period there (its weight is 0, so
          the identity holds). Intervals: the same split over posterior draws of the segment
          rates (a segment without journeys: draws of the step's overall rate), weights fixed.
          Without ``by``, ``mix`` is 0.

        ``attrs``: ``this_start``, ``this_end``, ``prev_start``, ``prev_end`` (UTC; periods are
        open at the start, closed at the end), ``period_days``, ``decomposition`` ("symmetric
        shift-share"), ``prob``.
    """
    by_cols = [by] if isinstance(by, str) else list(by or [])
    check_steps(
        steps,
        by_cols,
        ["person_id", "journey_index", "pos", "touchpoint", "converted", "timestamp"],
    )
    if not 0 < prob < 1:
        raise ValueError(f"prob must be in (0, 1), got {prob}")
    c = _code(steps, by_cols, need_time=True)
    end, length, days = _periods(c, period_end, period_days)
    first, _ = _first_and_last(c)

    names = [JOURNEY_STEP, *c.touchpoints]
    if step is None:
        wanted = names
    else:
        wanted = [step] if isinstance(step, str) else [str(s) for s in step]
        unknown = [s for s in wanted if s not in names]
        if unknown:
            raise DataError(
                f"steps {unknown} are not touchpoints of the step table",
                column="touchpoint",
                fix=f"use {JOURNEY_STEP!r} or touchpoints such as {c.touchpoints[:5]}",
            )
    code_of = {s: i for i, s in enumerate(names)}
    sel = np.array([code_of[s] for s in wanted], dtype=np.int64)

    # units: (journey, step) with the time the journey first reached the step
    n_j = len(c.converted)
    jid = np.r_[np.arange(n_j), c.jid[first]]
    scode = np.r_[np.zeros(n_j, dtype=np.int64), c.tp[first] + 1]
    when = np.r_[c.start_ts, c.ts[first]]
    period = np.full(len(jid), -1)
    period[(when > end - 2 * length) & (when <= end - length)] = 0
    period[(when > end - length) & (when <= end)] = 1
    g_n, s_n = len(c.groups), len(names)
    keep = period >= 0
    jid, scode, period = jid[keep], scode[keep], period[keep]
    cell = (period * s_n + scode) * g_n + c.group[jid]
    size = 2 * s_n * g_n
    closed, conv = c.closed[jid], c.converted[jid]

    def count(mask):
        return (
            np.bincount(cell[mask], minlength=size).reshape(2, s_n, g_n)[:, sel, :].astype(np.int64)
        )

    n, k, n_open = count(closed), count(closed & conv), count(~closed)
    out = _table(wanted, c.groups, by_cols, n, k, n_open, prob, draws, seed)
    out.attrs = {
        "this_start": pd.Timestamp(end - length, unit="us", tz="UTC"),
        "this_end": pd.Timestamp(end, unit="us", tz="UTC"),
        "prev_start": pd.Timestamp(end - 2 * length, unit="us", tz="UTC"),
        "prev_end": pd.Timestamp(end - length, unit="us", tz="UTC"),
        "period_days": days,
        "decomposition": "symmetric shift-share",
        "prob": prob,
    }
    return out


def _table(wanted, groups, by_cols, n, k, n_open, prob, draws, seed) -> pd.DataFrame:
    """The rows of :func:`period_over_period` from counts of shape ``(2 periods, steps, groups)``."""
    s_n, g_n = n.shape[1], n.shape[2]
    lo = (1 - prob) / 2
    rng = np.random.default_rng(seed)
    big_n, big_k = n.sum(2), k.sum(2)  # (2, steps)
    with np.errstate(divide="ignore", invalid="ignore"):
        overall = big_k / big_n  # the step's observed rate in each period (nan without journeys)
        w = np.where(big_n[..., None] > 0, n / big_n[..., None], 0.0)
        r = np.where(n > 0, k / np.where(n > 0, n, 1), overall[..., None])
    r = np.nan_to_num(r)

    # segment posteriors (pooled across the step's segments, per period) and their draws
    post = []
    for p in (0, 1):
        a, b = pool_beta(k[p], n[p])
        post.append((a[:, None] + k[p], b[:, None] + n[p] - k[p]))
    seg_draws = [rng.beta(a[..., None], b[..., None], size=(s_n, g_n, draws)) for a, b in post]
    # the step's total rate in each period, Beta(1 + K, 1 + N − K); a segment without journeys
    # in a period takes it there, in the draws as in the observed split
    tot_a, tot_b = 1.0 + big_k, 1.0 + big_n - big_k
    tot_draws = rng.beta(tot_a[..., None], tot_b[..., None], size=(2, s_n, draws))
    for p in (0, 1):
        empty = n[p] == 0
        seg_draws[p][empty] = np.broadcast_to(tot_draws[p][:, None, :], seg_draws[p].shape)[empty]
    w0, w1 = w[0][..., None], w[1][..., None]
    d0, d1 = seg_draws
    mix_d = (w1 - w0) * (d0 + d1) / 2
    within_d = (w0 + w1) / 2 * (d1 - d0)
    mix_obs = (w[1] - w[0]) * (r[0] + r[1]) / 2
    within_obs = (w[0] + w[1]) / 2 * (r[1] - r[0])
    change_obs = w[1] * r[1] - w[0] * r[0]

    def q(x, axis=-1):
        return np.quantile(x, lo, axis=axis), np.quantile(x, 1 - lo, axis=axis)

    frames = []
    for si, s in enumerate(wanted):
        rows = []
        if by_cols:
            for gi in range(g_n):
                (m0, l0, h0), (m1, l1, h1) = (
                    beta_summary(post[p][0][si, gi], post[p][1][si, gi], prob) for p in (0, 1)
                )
                diff = d1[si, gi] - d0[si, gi]
                rows.append(
                    {
                        "step": s,
                        **{b: groups[b].iloc[gi] for b in by_cols},
                        "n_prev": n[0, si, gi],
                        "conv_prev": k[0, si, gi],
                        "open_prev": n_open[0, si, gi],
                        "n_this": n[1, si, gi],
                        "conv_this": k[1, si, gi],
                        "open_this": n_open[1, si, gi],
                        "share_prev": w[0, si, gi],
                        "share_this": w[1, si, gi],
                        "rate_prev": m0,
                        "rate_prev_low": l0,
                        "rate_prev_high": h0,
                        "rate_this": m1,
                        "rate_this_low": l1,
                        "rate_this_high": h1,
                        "diff": diff.mean(),
                        **dict(zip(("diff_low", "diff_high"), q(diff), strict=True)),
                        "p_up": (diff > 0).mean(),
                        "change": change_obs[si, gi],
                        "mix": mix_obs[si, gi],
                        **dict(zip(("mix_low", "mix_high"), q(mix_d[si, gi]), strict=True)),
                        "within": within_obs[si, gi],
                        **dict(
                            zip(("within_low", "within_high"), q(within_d[si, gi]), strict=True)
                        ),
                    }
                )
        a0, b0, a1, b1 = tot_a[0, si], tot_b[0, si], tot_a[1, si], tot_b[1, si]
        diff = tot_draws[1, si] - tot_draws[0, si]
        mix_t, within_t = mix_d[si].sum(0), within_d[si].sum(0)
        rows.append(
            {
                "step": s,
                **{b: ALL for b in by_cols},
                "n_prev": big_n[0, si],
                "conv_prev": big_k[0, si],
                "open_prev": n_open[0, si].sum(),
                "n_this": big_n[1, si],
                "conv_this": big_k[1, si],
                "open_this": n_open[1, si].sum(),
                "share_prev": 1.0,
                "share_this": 1.0,
                **dict(
                    zip(
                        ("rate_prev", "rate_prev_low", "rate_prev_high"),
                        beta_summary(a0, b0, prob),
                        strict=True,
                    )
                ),
                **dict(
                    zip(
                        ("rate_this", "rate_this_low", "rate_this_high"),
                        beta_summary(a1, b1, prob),
                        strict=True,
                    )
                ),
                "diff": diff.mean(),
                **dict(zip(("diff_low", "diff_high"), q(diff), strict=True)),
                "p_up": (diff > 0).mean(),
                "change": change_obs[si].sum(),
                "mix": mix_obs[si].sum(),
                **dict(zip(("mix_low", "mix_high"), q(mix_t), strict=True)),
                "within": within_obs[si].sum(),
                **dict(zip(("within_low", "within_high"), q(within_t), strict=True)),
            }
        )
        frames.append(pd.DataFrame(rows))
    out = pd.concat(frames, ignore_index=True)
    for col in ("n_prev", "conv_prev", "open_prev", "n_this", "conv_this", "open_this"):
        out[col] = out[col].astype("int64")
    for col in out.columns[len(by_cols) + 7 :]:
        out[col] = out[col].astype("float64")
    return out
