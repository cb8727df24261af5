"""Period over period: this period against the previous one, per step and segment.

The change is split into the segment-mix shift and the within-segment rate change.

A *step* is a touchpoint reached: its rate is the share of the journeys that reached it which
converted, and a journey counts in the period in which it first reached the step. The step
``(journey)`` is every journey, from its first touch (its rate is the journeys' conversion
rate). Open journeys (``outcome == "open"``) are left out of the rates: they may still convert;
their number is in ``open_prev`` / ``open_this``. Recent journeys are the most often open, so a
current period that ends at the end of the data has fewer settled journeys; read those columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.errors import DataError
from analysis.friction._steps import check_steps, code_steps, first_and_last
from analysis.friction.funnel import beta_summary, pool_beta

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
        length = round(days * _DAY_US)

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
    """Compare the conversion of each step, this period against the previous one.

    The comparison is a posterior difference, with the change split into segment mix and
    within-segment rates.

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
    c = code_steps(steps, by_cols, need_time=True)
    end, length, days = _periods(c, period_end, period_days)
    first, _ = first_and_last(c)

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
    assert c.ts is not None  # coded with need_time=True
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


@dataclass
class _Split:
    """Hold the counts, weights, posterior draws and shift-share split of a comparison.

    Counts of ``(2 periods, steps, groups)``, the segments' weights and observed rates, the
    posterior draws, and the shift-share split, observed and drawn.
    """

    n: np.ndarray
    k: np.ndarray
    n_open: np.ndarray
    big_n: np.ndarray
    big_k: np.ndarray
    w: np.ndarray
    post: list[tuple[np.ndarray, np.ndarray]]
    seg_draws: list[np.ndarray]
    tot_a: np.ndarray
    tot_b: np.ndarray
    tot_draws: np.ndarray
    mix_d: np.ndarray
    within_d: np.ndarray
    mix_obs: np.ndarray
    within_obs: np.ndarray
    change_obs: np.ndarray
    prob: float

    def interval(self, x: np.ndarray, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
        """Return the equal-tailed ``prob`` interval of draws ``x``."""
        lo = (1 - self.prob) / 2
        return np.quantile(x, lo, axis=axis), np.quantile(x, 1 - lo, axis=axis)


def _split(n, k, n_open, prob, draws, seed) -> _Split:
    """Weigh, draw and split the counts of shape ``(2 periods, steps, groups)``."""
    s_n, g_n = n.shape[1], n.shape[2]
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
    return _Split(
        n=n,
        k=k,
        n_open=n_open,
        big_n=big_n,
        big_k=big_k,
        w=w,
        post=post,
        seg_draws=seg_draws,
        tot_a=tot_a,
        tot_b=tot_b,
        tot_draws=tot_draws,
        mix_d=(w1 - w0) * (d0 + d1) / 2,
        within_d=(w0 + w1) / 2 * (d1 - d0),
        mix_obs=(w[1] - w[0]) * (r[0] + r[1]) / 2,
        within_obs=(w[0] + w[1]) / 2 * (r[1] - r[0]),
        change_obs=w[1] * r[1] - w[0] * r[0],
        prob=prob,
    )


def _segment_row(sp: _Split, si: int, gi: int) -> dict:
    """Return the columns of step ``si`` × segment ``gi`` from ``n_prev`` on."""
    prob, post, n, k, w = sp.prob, sp.post, sp.n, sp.k, sp.w
    (m0, l0, h0), (m1, l1, h1) = (
        beta_summary(post[p][0][si, gi], post[p][1][si, gi], prob) for p in (0, 1)
    )
    diff = sp.seg_draws[1][si, gi] - sp.seg_draws[0][si, gi]
    return {
        "n_prev": n[0, si, gi],
        "conv_prev": k[0, si, gi],
        "open_prev": sp.n_open[0, si, gi],
        "n_this": n[1, si, gi],
        "conv_this": k[1, si, gi],
        "open_this": sp.n_open[1, si, gi],
        "share_prev": w[0, si, gi],
        "share_this": w[1, si, gi],
        "rate_prev": m0,
        "rate_prev_low": l0,
        "rate_prev_high": h0,
        "rate_this": m1,
        "rate_this_low": l1,
        "rate_this_high": h1,
        "diff": diff.mean(),
        **dict(zip(("diff_low", "diff_high"), sp.interval(diff), strict=True)),
        "p_up": (diff > 0).mean(),
        "change": sp.change_obs[si, gi],
        "mix": sp.mix_obs[si, gi],
        **dict(zip(("mix_low", "mix_high"), sp.interval(sp.mix_d[si, gi]), strict=True)),
        "within": sp.within_obs[si, gi],
        **dict(zip(("within_low", "within_high"), sp.interval(sp.within_d[si, gi]), strict=True)),
    }


def _total_row(sp: _Split, si: int) -> dict:
    """Return the columns of step ``si``'s total row from ``n_prev`` on."""
    a0, b0, a1, b1 = sp.tot_a[0, si], sp.tot_b[0, si], sp.tot_a[1, si], sp.tot_b[1, si]
    diff = sp.tot_draws[1, si] - sp.tot_draws[0, si]
    mix_t, within_t = sp.mix_d[si].sum(0), sp.within_d[si].sum(0)
    return {
        "n_prev": sp.big_n[0, si],
        "conv_prev": sp.big_k[0, si],
        "open_prev": sp.n_open[0, si].sum(),
        "n_this": sp.big_n[1, si],
        "conv_this": sp.big_k[1, si],
        "open_this": sp.n_open[1, si].sum(),
        "share_prev": 1.0,
        "share_this": 1.0,
        **dict(
            zip(
                ("rate_prev", "rate_prev_low", "rate_prev_high"),
                beta_summary(a0, b0, sp.prob),
                strict=True,
            )
        ),
        **dict(
            zip(
                ("rate_this", "rate_this_low", "rate_this_high"),
                beta_summary(a1, b1, sp.prob),
                strict=True,
            )
        ),
        "diff": diff.mean(),
        **dict(zip(("diff_low", "diff_high"), sp.interval(diff), strict=True)),
        "p_up": (diff > 0).mean(),
        "change": sp.change_obs[si].sum(),
        "mix": sp.mix_obs[si].sum(),
        **dict(zip(("mix_low", "mix_high"), sp.interval(mix_t), strict=True)),
        "within": sp.within_obs[si].sum(),
        **dict(zip(("within_low", "within_high"), sp.interval(within_t), strict=True)),
    }


def _table(wanted, groups, by_cols, n, k, n_open, prob, draws, seed) -> pd.DataFrame:
    """Build the rows of :func:`period_over_period` from counts of shape ``(2 periods, steps, groups)``."""
    sp = _split(n, k, n_open, prob, draws, seed)
    frames = []
    for si, s in enumerate(wanted):
        rows = []
        if by_cols:
            for gi in range(n.shape[2]):
                seg = {b: groups[b].iloc[gi] for b in by_cols}
                rows.append({"step": s, **seg, **_segment_row(sp, si, gi)})
        rows.append({"step": s, **{b: ALL for b in by_cols}, **_total_row(sp, si)})
        frames.append(pd.DataFrame(rows))
    out = pd.concat(frames, ignore_index=True)
    for col in ("n_prev", "conv_prev", "open_prev", "n_this", "conv_this", "open_this"):
        out[col] = out[col].astype("int64")
    for col in out.columns[len(by_cols) + 7 :]:
        out[col] = out[col].astype("float64")
    return out
