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

The package's modules: :mod:`~analysis.friction.time_index` (the index), :mod:`~analysis.friction.scan`
(the model, and why), :mod:`~analysis.friction.incident_table` (a finding's row),
:mod:`~analysis.friction.series` (the plot's series, "nothing found") and
:mod:`~analysis.friction.incident_text` (the words); this module runs the scan and merges what it
finds. Every public name of theirs is importable from here.

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
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis.friction.incident_table import (
    INCIDENT_COLUMNS,
    Finding,
    empty_table,
    incident_row,
    summarise,
)
from analysis.friction.incident_text import incident_headline, no_incident_text
from analysis.friction.scan import (
    fixed_post,
    frequency_series,
    overdispersion,
    overlap,
    prob_less,
    scan_iter,
    scan_setup,
)
from analysis.friction.series import detectable_drop, step_series
from analysis.friction.time_index import TimeIndex, time_grain, time_index

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
    idx, n_series, prior = scan_setup(
        steps,
        by=by,
        grain=grain,
        horizon_days=horizon_days,
        as_of=as_of,
        expected_incidents=expected_incidents,
        min_journeys=min_journeys,
    )
    if n_series == 0:
        return empty_table()
    sc = _Scan.of(idx, min_journeys, draws, seed, interval)
    c_drop = 1.0 - min_drop
    findings = _rate_findings(
        sc, c_drop, prior=prior, max_per_series=max_per_series, threshold=prob
    ) + _frequency_findings(
        sc, c_drop, min_rise, prior=prior, max_per_series=max_per_series, threshold=prob
    )

    if not findings:
        return empty_table()
    for f in findings:  # rates, conversions lost, with draws
        sc.summarise(f)
    findings = _named_by_touchpoints(sc, findings)
    out = _every_segment_or_some(sc, findings, all_segments_odds)
    final = _without_echoes(sc, out)
    rows_out = [incident_row(idx, f, sc.n_lab, interval) for f in final]
    df = pd.DataFrame(rows_out, columns=INCIDENT_COLUMNS)
    df = df.sort_values("conversions_lost", ascending=False, kind="stable").reset_index(drop=True)
    df.attrs.update(grain=idx.grain, prior=prior, series=n_series, prob=prob, as_of=idx.as_of)
    return df


@dataclass
class _Scan:
    """Hold the series of one scan and what every summary of a finding needs.

    Conversion per step × group (+ all), rows ``step * n_lab + group``, with their
    overdispersion; a touchpoint's frequency per touchpoint × group; the draws, their generator
    and the interval of the summaries.
    """

    idx: TimeIndex
    n_lab: int
    n_m: np.ndarray
    y_m: np.ndarray
    limit: np.ndarray
    rate_ok: np.ndarray
    phi_rate: np.ndarray
    kk: np.ndarray
    nn: np.ndarray
    freq_ok: np.ndarray
    draws: int
    rng: np.random.Generator
    interval: float

    @classmethod
    def of(cls, idx: TimeIndex, min_journeys: int, draws: int, seed: int, interval: float) -> _Scan:
        """Return the series of ``idx`` to scan, with the overdispersion of the rate series."""
        n_lab = len(idx.groups) + 1
        n_steps = len(idx.steps)
        n_m = idx.n_mature.reshape(n_steps * n_lab, -1).astype(float)
        y_m = idx.y.reshape(n_steps * n_lab, -1).astype(float)
        limit = np.repeat(idx.steps["mature_bins"].to_numpy(np.int64), n_lab)
        rate_ok = n_m.sum(1) >= min_journeys
        kk, nn, freq_ok = frequency_series(idx, min_journeys)
        phi_rate = np.ones(len(n_m))
        rows = np.flatnonzero(rate_ok)
        if len(rows):
            phi_rate[rows] = [
                overdispersion(n_m[r, : limit[r]], y_m[r, : limit[r]])[0] for r in rows
            ]
        rng = np.random.default_rng(seed)
        return cls(
            idx, n_lab, n_m, y_m, limit, rate_ok, phi_rate, kk, nn, freq_ok, draws, rng, interval
        )

    def summarise(self, f: Finding) -> None:
        """Draw the rates and conversions lost of ``f`` (:func:`summarise`)."""
        summarise(
            self.idx,
            f,
            self.n_m,
            self.y_m,
            self.phi_rate,
            self.n_lab,
            self.draws,
            self.rng,
            self.interval,
        )


def _rate_findings(
    sc: _Scan, c_drop: float, *, prior: float, max_per_series: int, threshold: float
) -> list[Finding]:
    """Scan the conversion series for windows where it fell."""
    rows = np.flatnonzero(sc.rate_ok)
    if not len(rows):
        return []
    tab = sc.idx.steps
    res = scan_iter(
        sc.n_m[rows] / sc.phi_rate[rows, None],
        sc.y_m[rows] / sc.phi_rate[rows, None],
        sc.limit[rows],
        c=c_drop,
        rise=False,
        prior=prior,
        max_per_series=max_per_series,
        threshold=threshold,
    )
    findings = []
    for i, a, b, p, post in res:
        r = rows[i]
        s, g = divmod(int(r), sc.n_lab)
        findings.append(
            Finding(tab["level"].iat[s], s, g, a, b, p, "rate", post[2], post[0], post[1])
        )
    return findings


def _frequency_findings(
    sc: _Scan,
    c_drop: float,
    min_rise: float,
    *,
    prior: float,
    max_per_series: int,
    threshold: float,
) -> list[Finding]:
    """Scan the touchpoints' frequencies for windows where one rose.

    A window counts when the conversion at the touchpoint's stage fell during it too.
    """
    frows = np.flatnonzero(sc.freq_ok)
    if not len(frows):
        return []
    idx, tab, kk, nn = sc.idx, sc.idx.steps, sc.kk, sc.nn
    phi_freq = np.ones(len(kk))
    phi_freq[frows] = [overdispersion(nn[r], kk[r])[0] for r in frows]
    res = scan_iter(
        nn[frows] / phi_freq[frows, None],
        kk[frows] / phi_freq[frows, None],
        np.full(len(frows), len(idx.bins), dtype=np.int64),
        c=1.0 / (1.0 + min_rise),
        rise=True,
        prior=prior,
        max_per_series=max_per_series,
        threshold=threshold,
    )
    findings = []
    for i, a, b, p, post in res:
        r = frows[i]
        x, g = divmod(int(r), sc.n_lab)
        s = int(idx.tp_stage_step[x])
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
        rr = s * sc.n_lab + g
        ph = sc.phi_rate[rr] if sc.rate_ok[rr] else 1.0
        ni = sc.n_m[rr, a:bb].sum()
        yi = sc.y_m[rr, a:bb].sum()
        no = sc.n_m[rr, :lim_s].sum() - ni
        yo = sc.y_m[rr, :lim_s].sum() - yi
        if ni <= 0 or no <= 0:
            continue
        p_drop = prob_less(yi / ph, ni / ph, yo / ph, no / ph, c_drop)
        if p * p_drop < threshold:
            continue
        aw, bw, w = post
        keep = bw <= lim_s
        if not keep.any():
            aw, bw, w = fixed_post(a, bb)
        else:
            aw, bw, w = aw[keep], bw[keep], w[keep] / w[keep].sum()
        k_in, n_in = kk[r, a:b].sum(), nn[r, a:b].sum()
        k_out, n_out = kk[r].sum() - k_in, nn[r].sum() - n_in
        lift = math.inf if k_out == 0 else (k_in / max(n_in, 1)) / (k_out / max(n_out, 1))
        nf = Finding("stage", s, g, a, bb, p * p_drop, "frequency", w, aw, bw, touchpoint=x)
        nf.lift = lift
        findings.append(nf)
    return findings


def _named_by_touchpoints(sc: _Scan, findings: list[Finding]) -> list[Finding]:
    """Merge frequency findings into the rate finding of their stage.

    Of several touchpoints that rose at once (an error and the support chats that follow it),
    the one with the largest lift names the incident (an event absent outside the window first).
    """
    rate_f = [f for f in findings if f.kind == "rate"]
    freq_f = sorted(
        (f for f in findings if f.kind == "frequency"), key=lambda f: (-f.lift, -f.prob)
    )
    claimed: list[Finding] = []  # frequency findings that name an incident
    alone: list[Finding] = []  # … of those, the ones without a rate finding of their own
    for f in freq_f:
        if any(
            k.step == f.step and k.group == f.group and overlap(k.a, k.b, f.a, f.b) for k in claimed
        ):
            continue  # a touchpoint with a larger lift already names this one
        claimed.append(f)
        same = [
            r
            for r in rate_f
            if r.step == f.step
            and r.group == f.group
            and overlap(r.a, r.b, f.a, f.b)
            and r.touchpoint is None
        ]
        for r in same:
            r.touchpoint, r.lift = f.touchpoint, f.lift
            r.a, r.b = f.a, f.b  # the time the touchpoint was there
            r.aw, r.bw, r.weights = f.aw, f.bw, f.weights
            r.prob = max(r.prob, f.prob)
            sc.summarise(r)
        if not same:
            alone.append(f)
    return rate_f + alone


def _every_segment_or_some(
    sc: _Scan, findings: list[Finding], all_segments_odds: float
) -> list[Finding]:
    """Decide whether each incident holds in every segment or only in some.

    Keep the pooled findings that no segment contradicts (every segment), the segments' own
    findings where the pooled one is contradicted or absent, and call the same step and window
    in every segment an every-segment finding.
    """
    idx, tab = sc.idx, sc.idx.steps
    n_groups = len(idx.groups)
    all_g = n_groups
    if n_groups == 0:
        for f in findings:
            f.every = True
        return findings
    out: list[Finding] = []
    pooled = [f for f in findings if f.group == all_g]
    seg = [f for f in findings if f.group != all_g]
    for f in pooled:
        llr = _segment_llr(f, tab, sc.n_m, sc.y_m, sc.phi_rate, sc.rate_ok, n_groups)
        against = llr[llr < 0].sum()
        if against >= -math.log(all_segments_odds):
            f.every = True
            out.append(f)
        else:
            log.info(
                "incidents: %s shows in segments %s only",
                tab["step"].iat[f.step],
                [idx.labels[g] for g in np.flatnonzero(llr > 0)],
            )
    # segment findings absorbed by an every-segment finding of the same step
    for f in seg:
        if any(o.step == f.step and overlap(o.a, o.b, f.a, f.b) for o in out):
            continue
        out.append(f)
    # the same step and window in every segment, not in the pooled series: every segment
    by_step: dict[int, list[Finding]] = {}
    for f in out:
        if not f.every:
            by_step.setdefault(f.step, []).append(f)
    for s, fs in by_step.items():
        gs = {f.group for f in fs}
        if n_groups >= 2 and len(gs) == n_groups:
            a = int(np.median([f.a for f in fs]))
            b = int(np.median([f.b for f in fs]))
            if all(overlap(f.a, f.b, a, b) for f in fs) and b > a:
                nf = Finding(
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
                nf.touchpoint = next((f.touchpoint for f in fs if f.touchpoint is not None), None)
                sc.summarise(nf)
                out = [f for f in out if f not in fs] + [nf]
    return out


def _without_echoes(sc: _Scan, out: list[Finding]) -> list[Finding]:
    """Merge the overlapping findings of one segment into one incident.

    It is named at the incident touchpoint's stage, else at the deepest step that holds the
    whole loss; the others are its echoes (``also_at``).
    """
    idx = sc.idx
    out.sort(key=lambda f: -f.summary["lost"])
    depth = idx.steps["depth"].to_numpy()
    final: list[Finding] = []
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
            if same_seg and any(overlap(m.a, m.b, o.a, o.b) for m in cluster):
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
    return final


def _segment_llr(f: Finding, tab, n_m, y_m, phi_rate, rate_ok, n_groups: int) -> np.ndarray:
    """Return per segment the log likelihood ratio of its window data, pooled drop vs none.

    Under the pooled relative drop against no drop: binomial, at the segment's own rate outside
    the window, divided by its ``φ``.
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


def _stage(idx: TimeIndex, f: Finding):
    return idx.steps["stage"].iat[f.step]
