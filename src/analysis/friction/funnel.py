"""The touchpoint funnel: where inside a journey people fail, compared like with like.

Input is a *step table*, one row per touchpoint of every journey (:meth:`Journeys.touchpoint_steps`).
Stages are the map; people fail at a touchpoint (a payment form, an error page). For every
touchpoint this module measures

- its **reach** (journeys that had it) and its **depth** (rank in the step order);
- the conversion of the journeys that had it against that of the journeys that **reached the
  same step** without it. The step a touchpoint is compared at is where it happens: the deepest
  step the journeys had reached before their first exposure to it (the median over the exposed
  journeys). An error that happens at payment is compared with the journeys that reached payment
  and did not meet it — not with every journey, most of which never got that far (journeys with
  a late error are deep, so across all journeys they convert *more* than average, and a naive
  with/without comparison calls the error helpful);
- the **abandonment hazard** after it: the share of exposed journeys that ended without a
  conversion at most ``horizon`` events (or a time span) after it — anywhere after it, not only
  when it is the last event (people go back to the cart, open a chat, then leave);
- **lost conversions** = exposed × (rate without − rate with), with an interval.

Rates are Bayesian (beta-binomial) with segments partially pooled by empirical Bayes: see
:func:`pool_beta`. Everything is counted with NumPy over integer codes, so a million journeys take
seconds.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from analysis.errors import DataError
from analysis.friction._steps import (
    CodedSteps,
    check_steps,
    code_steps,
    first_and_last,
    journey_starts,
)

START_STEP = "(start)"  # compared_at of a touchpoint that happens before any step of the order
MIN_GROUPS_TO_POOL = 3  # fewer groups than this: no spread to estimate, a uniform prior


# ------------------------------------------------------------------------------ pooling
def pool_beta(k: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Empirical-Bayes Beta priors for binomial counts of groups (partial pooling).

    Each row of ``k`` / ``n`` (shape ``(rows, groups)``) is one quantity (a touchpoint's rate)
    measured in several groups (segments). The groups of a row share a prior
    ``Beta(m κ, (1 − m) κ)``: ``m`` is the row's pooled rate, ``(K + 0.5) / (N + 1)`` over its
    groups, and the concentration ``κ`` comes from how much the groups' rates differ beyond
    binomial noise, by the method of moments of the beta-binomial (Kleinman 1973):
    ``τ² = (S − (G − 1) m (1 − m)) / (N − Σ n² / N − (G − 1))`` with
    ``S = Σ n_g (p̂_g − m)²``, and ``κ = m (1 − m) / τ² − 1``.

    Why this and not a hierarchical model fitted by MCMC: the posterior of each group is then
    conjugate, ``Beta(m κ + k, (1 − m) κ + n − k)``, so thousands of touchpoint × segment rates
    cost microseconds and a million journeys run in seconds, while a small segment is still
    pulled toward its peers as much as the spread between segments says it should be (little
    spread: strong pooling; large spread: each segment mostly speaks for itself). Its known
    weakness, that it treats the estimated κ as known, matters only with few groups, so:

    - κ is kept within ``[2, max(2, median n_g)]``: the prior never outweighs a typical group's
      own data, and no spread at all (τ² ≤ 0) gives that upper bound, not complete pooling;
    - with fewer than 3 groups that have data there is no spread to estimate: the prior is
      uniform, ``Beta(1, 1)`` (no pooling).

    Parameters
    ----------
    k, n : array_like of int, shape (rows, groups)
        Successes and trials (``k <= n``).

    Returns
    -------
    alpha, beta : numpy.ndarray, shape (rows,)
        The prior of each row; the posterior of group ``g`` is ``Beta(alpha + k_g,
        beta + n_g - k_g)``.
    """
    k = np.atleast_2d(np.asarray(k, dtype=float))
    n = np.atleast_2d(np.asarray(n, dtype=float))
    big_k, big_n = k.sum(1), n.sum(1)
    m = (big_k + 0.5) / (big_n + 1.0)
    has = n > 0
    g = has.sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(has, k / np.where(has, n, 1.0), 0.0)
        s = (n * (p - m[:, None]) ** 2).sum(1)
        denom = big_n - (n**2).sum(1) / np.maximum(big_n, 1.0) - (g - 1)
        tau2 = (s - (g - 1) * m * (1 - m)) / denom
        kappa = np.where((tau2 > 0) & (denom > 0), m * (1 - m) / tau2 - 1.0, np.inf)
    typical = np.array([np.median(r[r > 0]) if (r > 0).any() else 0.0 for r in n])
    cap = np.maximum(2.0, typical)
    kappa = np.clip(np.nan_to_num(kappa, nan=np.inf, posinf=np.inf), 2.0, cap)
    pool = g >= MIN_GROUPS_TO_POOL
    alpha = np.where(pool, m * kappa, 1.0)
    beta = np.where(pool, (1 - m) * kappa, 1.0)
    return alpha, beta


def beta_summary(
    a: np.ndarray, b: np.ndarray, prob: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posterior mean and equal-tailed ``prob`` interval of ``Beta(a, b)``."""
    lo = (1 - prob) / 2
    return a / (a + b), stats.beta.ppf(lo, a, b), stats.beta.ppf(1 - lo, a, b)


# ------------------------------------------------------------------------------ order
def _learned_order(c: CodedSteps, first: np.ndarray) -> list[str]:
    t = len(c.touchpoints)
    if t == 0:
        return []
    jf, tf = c.jid[first], c.tp[first]
    idx = np.arange(len(jf))
    start = np.maximum.accumulate(np.where(journey_starts(jf), idx, 0))
    rank = (idx - start + 1).astype(float)
    cnt = np.bincount(tf, minlength=t)
    mean_rank = np.bincount(tf, weights=rank, minlength=t) / np.maximum(cnt, 1)
    names = np.array(c.touchpoints, dtype=object)
    o = np.lexsort((names, -cnt, mean_rank))  # by mean rank, then the more frequent, then name
    return [c.touchpoints[i] for i in o]


def step_order(steps: pd.DataFrame, order: Sequence[str] | None = None) -> list[str]:
    """Return the ordered steps of the journeys at touchpoint level.

    Parameters
    ----------
    steps : pandas.DataFrame
        Step table (:meth:`Journeys.touchpoint_steps`): ``person_id, journey_index, pos,
        touchpoint``; rows with ``conversion`` true are the journeys' ends, not steps.
    order : list of str, optional
        The order the user gives (an ordered list in the column map): returned as it is.

    Returns
    -------
    list of str
        Without ``order``, learned from the data's typical order: each touchpoint's *distinct
        rank* in a journey (1 for the first distinct touchpoint the journey met, 2 for the
        second new one, …; repeats do not count), averaged over the journeys that had it,
        ascending (ties: the more frequent first, then by name). The distinct rank, unlike the
        relative position ``pos / length``, does not put a step late merely because many
        journeys end there (in a funnel, cart is the last event of most journeys that reach it),
        and repeated page views do not push later steps back.
    """
    if order is not None:
        order = [str(o) for o in order]
        dup = sorted({o for o in order if order.count(o) > 1})
        if dup:
            raise ValueError(f"the step order names {dup} more than once")
        return order
    check_steps(steps, [], ["person_id", "journey_index", "pos", "touchpoint"])
    c = code_steps(steps.assign(converted=False) if "converted" not in steps.columns else steps, [])
    first, _ = first_and_last(c)
    return _learned_order(c, first)


# ------------------------------------------------------------------------------ funnel
def _horizon_us(horizon: int | str | pd.Timedelta) -> int | None:
    if isinstance(horizon, int | np.integer) and not isinstance(horizon, bool):
        if horizon < 0:
            raise ValueError(f"horizon must be >= 0 events, got {horizon}")
        return None
    try:
        td = pd.Timedelta(horizon)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"horizon must be a number of events or a time span, got {horizon!r}"
        ) from err
    return int(td / pd.Timedelta(microseconds=1))


def touchpoint_funnel(
    steps: pd.DataFrame,
    *,
    by: str | list[str] | None = None,
    order: Sequence[str] | None = None,
    horizon: int | str | pd.Timedelta = 3,
    prob: float = 0.9,
    min_journeys: int = 20,
    draws: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Measure friction per touchpoint, ranked by lost conversions.

    Conversion with and without the touchpoint among journeys that reached the same step,
    abandonment after it and conversions lost.

    Parameters
    ----------
    steps : pandas.DataFrame
        Step table from :meth:`Journeys.touchpoint_steps` (``person_id, journey_index, pos,
        touchpoint, converted``; ``conversion``, ``outcome``, ``stage``, ``timestamp`` used when
        present). Conversion rows are the journeys' ends, not touchpoints of the funnel; open
        journeys (``outcome == "open"``: they may still convert) count in ``reach`` only.
    by : str or list of str, optional
        Segment column(s) of the step table (journey-level values, as ``touchpoint_steps(by=)``
        gives them). Each touchpoint's rates are partially pooled across the segments
        (:func:`pool_beta`).
    order : list of str, optional
        The step order (see :func:`step_order`); default: learned from the data. Touchpoints not
        in a given order still get a row (``depth`` missing) but do not make journeys deeper.
    horizon : int or time span, default 3
        Abandonment after a touchpoint: the journey ended without a conversion with at most this
        many further events after it (``0``: it was the last event), or, given a time span
        (``"30min"``, ``pd.Timedelta``), within that time after it (needs ``timestamp``).
    prob : float, default 0.9
        Mass of the equal-tailed intervals.
    min_journeys : int, default 20
        A touchpoint × segment is compared only when both the exposed and the comparison
        journeys number at least this many; otherwise its ``lost``, ``p_harm`` and ``rank`` are
        missing (its rates are still given).
    draws, seed : int
        Posterior draws for ``lost`` and ``p_harm``; the random seed.

    Returns
    -------
    pandas.DataFrame
        One row per touchpoint × segment, sorted by ``lost`` (descending; not compared last):

        - ``[*by]``, ``touchpoint``, ``stage`` (its most frequent stage, when the table has one);
        - ``depth``: its rank in the order (1 = first step);
        - ``compared_at``: the step it is compared at — the median, over the exposed journeys,
          of the deepest step reached before the first exposure (``(start)``: before any);
        - ``reach``: journeys that had it (open ones included);
        - ``exposed`` / ``exposed_converted``: closed journeys that had reached ``compared_at``
          when they first met it, and how many of them converted;
        - ``comparison`` / ``comparison_converted``: closed journeys that reached
          ``compared_at`` (or deeper) and never met it;
        - ``rate_with``, ``rate_with_low``, ``rate_with_high``; ``rate_without``,
          ``rate_without_low``, ``rate_without_high``: posterior mean and ``prob`` interval of
          the conversion rate of the two groups;
        - ``p_harm``: posterior probability that ``rate_with < rate_without``;
        - ``hazard``, ``hazard_low``, ``hazard_high``, ``hazard_n``: share of the closed
          journeys that had it and ended without a conversion within ``horizon`` after it
          (after its last occurrence, i.e. after any occurrence), of ``hazard_n`` journeys;
        - ``lost``, ``lost_low``, ``lost_high``: ``exposed × (rate_without − rate_with)``,
          posterior mean and ``prob`` interval (negative: the touchpoint goes with more
          conversions than its peers);
        - ``compared`` (both groups ≥ ``min_journeys``), ``rank`` (1 = most conversions lost,
          within the segment).

        ``attrs``: ``order`` (the step order used), ``order_learned``, ``horizon``, ``prob``,
        ``journeys``, ``closed``.

    Examples
    --------
    >>> steps = jr.touchpoint_steps(by="segment", events=events)   # doctest: +SKIP
    >>> touchpoint_funnel(steps, by="segment").head()              # doctest: +SKIP
    """
    by_cols = [by] if isinstance(by, str) else list(by or [])
    check_steps(steps, by_cols)
    if not 0 < prob < 1:
        raise ValueError(f"prob must be in (0, 1), got {prob}")
    h_us = _horizon_us(horizon)
    if h_us is not None and "timestamp" not in steps.columns:
        raise DataError(
            "a time horizon needs the step table's timestamp column",
            column="timestamp",
            fix="pass horizon as a number of events, or a step table with timestamps",
        )
    c = code_steps(steps, by_cols, need_time=h_us is not None)
    first, last = first_and_last(c)
    learned = order is None
    order_list = _learned_order(c, first) if learned else step_order(steps, order)
    t, g_n = len(c.touchpoints), len(c.groups)

    # depth of each touchpoint code (0: not in the order)
    rank_of = {s: i + 1 for i, s in enumerate(order_list)}
    depth_tp = np.array([rank_of.get(s, 0) for s in c.touchpoints], dtype=np.int64)
    counts = _exposure_counts(c, first, depth_tp, len(order_list) + 1)
    hn, hk = _abandonment_counts(c, last, horizon, h_us)
    n1, k1, n0, k0 = counts["n1"], counts["k1"], counts["n0"], counts["k0"]
    out = _posterior_table(c, by_cols, n1, k1, n0, k0, hn, hk, prob, min_journeys, draws, seed)
    out.insert(len(by_cols) + 1, "depth", np.repeat(depth_tp, g_n).astype(float))
    out["depth"] = out["depth"].where(out["depth"] > 0).astype("Int64")
    names = [START_STEP, *order_list]
    h = counts["compared_at"]
    out.insert(len(by_cols) + 2, "compared_at", np.repeat([names[i] for i in h], g_n) if t else [])
    out.insert(len(by_cols) + 3, "reach", counts["reach"].ravel())
    if c.stage is not None and t:
        out.insert(len(by_cols) + 1, "stage", np.repeat(_modal_stage(c), g_n))
    out = _ranked(out[out["reach"] > 0], by_cols)
    out.attrs = {
        "order": order_list,
        "order_learned": learned,
        "horizon": horizon,
        "prob": prob,
        "journeys": len(c.converted),
        "closed": int(c.closed.sum()),
    }
    return out


def _journey_depths(
    c: CodedSteps, d_row: np.ndarray, n_depth: int
) -> tuple[np.ndarray, np.ndarray]:
    """Depth reached before each row, and the depth each journey reached (its running maximum)."""
    off = c.jid * (n_depth + 1)
    run = np.maximum.accumulate(d_row + off) - off if len(d_row) else d_row
    before = np.zeros_like(run)
    before[1:] = run[:-1]
    before[journey_starts(c.jid)] = 0
    j_depth = np.zeros(len(c.converted), dtype=np.int64)
    ends = np.ones(len(c.jid), dtype=bool)
    ends[:-1] = c.jid[1:] != c.jid[:-1]
    j_depth[c.jid[ends]] = run[ends]  # the running maximum at the journey's last row
    return before, j_depth


def _exposure_counts(
    c: CodedSteps, first: np.ndarray, depth_tp: np.ndarray, n_depth: int
) -> dict[str, np.ndarray]:
    """Count reach, exposed and comparison journeys per touchpoint × group.

    ``reach``, the exposed (``n1``, ``k1``) and comparison journeys (``n0``, ``k0``) at the
    touchpoint's ``compared_at`` depth (per touchpoint).
    """
    t, g_n = len(c.touchpoints), len(c.groups)
    d_row = depth_tp[c.tp] if t else np.zeros(0, dtype=np.int64)
    before, j_depth = _journey_depths(c, d_row, n_depth)
    jf, tf, bf = c.jid[first], c.tp[first], before[first]
    # compared_at: the lower median of the depth reached before the first exposure
    h = np.zeros(t, dtype=np.int64)
    if len(tf):
        o = np.lexsort((bf, tf))
        counts = np.bincount(tf, minlength=t)
        starts = np.r_[0, np.cumsum(counts)[:-1]]
        has = counts > 0
        h[has] = bf[o][starts[has] + (counts[has] - 1) // 2]

    gj = c.group
    closed, conv = c.closed, c.converted
    cell = tf * g_n + gj[jf]

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(cell[mask], minlength=t * g_n).reshape(t, g_n).astype(np.int64)

    cf, vf = closed[jf], conv[jf]
    with_mask = cf & (bf >= h[tf])
    deep = cf & (j_depth[jf] >= h[tf])
    e_n, e_k = count(deep), count(deep & vf)
    # closed journeys (and conversions) per group reaching at least each depth
    hist_n = np.zeros((g_n, n_depth + 1), dtype=np.int64)
    hist_k = np.zeros((g_n, n_depth + 1), dtype=np.int64)
    np.add.at(hist_n, (gj[closed], j_depth[closed]), 1)
    np.add.at(hist_k, (gj[closed & conv], j_depth[closed & conv]), 1)
    at_least_n = np.cumsum(hist_n[:, ::-1], axis=1)[:, ::-1]
    at_least_k = np.cumsum(hist_k[:, ::-1], axis=1)[:, ::-1]
    return {
        "compared_at": h,
        "reach": count(np.ones(len(tf), dtype=bool)),
        "n1": count(with_mask),
        "k1": count(with_mask & vf),
        "n0": at_least_n[:, h].T - e_n,
        "k0": at_least_k[:, h].T - e_k,
    }


def _abandonment_counts(
    c: CodedSteps, last: np.ndarray, horizon: int | str | pd.Timedelta, h_us: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Count, per touchpoint × group, closed journeys that had it and those that abandoned.

    Abandoned: ended unconverted within ``horizon`` after the touchpoint's last occurrence.
    """
    t, g_n = len(c.touchpoints), len(c.groups)
    jl, tl = c.jid[last], c.tp[last]
    if h_us is None:
        soon = (c.last_pos[jl] - c.pos[last]) <= int(horizon)  # a number of events

    else:
        assert c.end_ts is not None and c.ts is not None  # a time horizon codes the timestamps
        soon = (c.end_ts[jl] - c.ts[last]) <= h_us
    lcell = tl * g_n + c.group[jl]
    closed, conv = c.closed[jl], c.converted[jl]

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(lcell[mask], minlength=t * g_n).reshape(t, g_n).astype(np.int64)

    return count(closed), count(closed & ~conv & soon)


def _ranked(out: pd.DataFrame, by_cols: list[str]) -> pd.DataFrame:
    """Sort by conversions lost and number the compared rows within each segment."""
    out = out.sort_values(
        ["lost", *by_cols, "touchpoint"],
        ascending=[False, *[True] * len(by_cols), True],
        na_position="last",
        kind="stable",
    )
    ranked = out["compared"].to_numpy()
    rank = pd.Series(np.nan, index=out.index)
    if by_cols:
        rank[ranked] = out[ranked].groupby(by_cols, sort=False, dropna=False).cumcount() + 1
    else:
        rank[ranked] = np.arange(1, ranked.sum() + 1)
    out["rank"] = rank.astype("Int64")
    return out.reset_index(drop=True)


def _modal_stage(c: CodedSteps) -> list:
    st = pd.Series(c.stage)
    codes, uniq = pd.factorize(st)
    t = len(c.touchpoints)
    ok = codes >= 0
    if not ok.any():
        return [None] * t
    tab = np.bincount(c.tp[ok] * len(uniq) + codes[ok], minlength=t * len(uniq)).reshape(
        t, len(uniq)
    )
    best = tab.argmax(1)
    return [uniq[b] if tab[i, b] > 0 else None for i, b in enumerate(best)]


def _posterior_table(
    c, by_cols, n1, k1, n0, k0, hn, hk, prob, min_journeys, draws, seed
) -> pd.DataFrame:
    t, g_n = n1.shape
    rows = t * g_n
    lo_q = (1 - prob) / 2

    def post(k, n):
        a, b = pool_beta(k, n)
        return (a[:, None] + k).ravel(), (b[:, None] + n - k).ravel()

    a1, b1 = post(k1, n1)
    a0, b0 = post(k0, n0)
    ah, bh = post(hk, hn)
    r1, r1l, r1h = beta_summary(a1, b1, prob)
    r0, r0l, r0h = beta_summary(a0, b0, prob)
    hz, hzl, hzh = beta_summary(ah, bh, prob)
    exposed = n1.ravel().astype(float)
    compared = (n1.ravel() >= min_journeys) & (n0.ravel() >= min_journeys)
    lost = np.full(rows, np.nan)
    lost_l, lost_h, p_harm = lost.copy(), lost.copy(), lost.copy()
    if compared.any():
        rng = np.random.default_rng(seed)
        idx = np.flatnonzero(compared)
        w = rng.beta(a1[idx, None], b1[idx, None], size=(len(idx), draws))
        wo = rng.beta(a0[idx, None], b0[idx, None], size=(len(idx), draws))
        ld = exposed[idx, None] * (wo - w)
        lost[idx] = ld.mean(1)
        lost_l[idx], lost_h[idx] = np.quantile(ld, [lo_q, 1 - lo_q], axis=1)
        p_harm[idx] = (w < wo).mean(1)
    out = pd.DataFrame(
        {
            "touchpoint": np.repeat(np.array(c.touchpoints, dtype=object), g_n),
            "exposed": n1.ravel(),
            "exposed_converted": k1.ravel(),
            "comparison": n0.ravel(),
            "comparison_converted": k0.ravel(),
            "rate_with": r1,
            "rate_with_low": r1l,
            "rate_with_high": r1h,
            "rate_without": r0,
            "rate_without_low": r0l,
            "rate_without_high": r0h,
            "p_harm": p_harm,
            "hazard": hz,
            "hazard_low": hzl,
            "hazard_high": hzh,
            "hazard_n": hn.ravel(),
            "lost": lost,
            "lost_low": lost_l,
            "lost_high": lost_h,
            "compared": compared,
        }
    )
    if by_cols:
        grp = c.groups.iloc[np.tile(np.arange(g_n), t)].reset_index(drop=True)
        for i, b in enumerate(by_cols):
            out.insert(i, b, grp[b].to_numpy())
    return out


def funnel_losses(map_table: pd.DataFrame, *, conversion_after: str | None = "Do") -> pd.DataFrame:
    """Return the funnel's steps as :func:`analysis.plotting.plot_funnel` draws them.

    Columns ``step, journeys, next_step, lost, lost_share`` (journeys reaching the step but not
    the next, and their share; negative where journeys enter at the next step).


    ``map_table`` is :func:`analysis.journeys.journey_map` (one group; its ``reach`` rows, funnel
    order) or a table ``stage, n`` in funnel order. ``conversion_after`` inserts a ``converted``
    step (``map_table.attrs["converted"]``) after that stage (at the end when absent).
    """
    r = (
        map_table[map_table["row"] == "reach"].sort_values("stage")
        if "row" in map_table
        else map_table
    )
    steps = [str(s) for s in r["stage"]]
    counts = [int(n) for n in r["n"]]
    if conversion_after is not None and "converted" in map_table.attrs:
        at = steps.index(conversion_after) + 1 if conversion_after in steps else len(steps)
        steps.insert(at, "converted")
        counts.insert(at, int(map_table.attrs["converted"]))
    nxt = [*steps[1:], None]
    lost = [c - n for c, n in zip(counts, [*counts[1:], None], strict=True) if n is not None] + [
        np.nan
    ]
    share = [(c - n) / c if c else np.nan for c, n in itertools.pairwise(counts)] + [np.nan]
    return pd.DataFrame(
        {"step": steps, "journeys": counts, "next_step": nxt, "lost": lost, "lost_share": share}
    )
