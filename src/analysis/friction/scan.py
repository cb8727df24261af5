"""The model of the incident scan: one window per series, scored exactly.

:func:`scan` scores every window of a series of binomial counts; :func:`scan_iter` rescans with
the found windows masked; :func:`overdispersion` deflates a series' counts;
:func:`draw_rates` gives the rates before and during a window, mixing windows by their
posterior. :func:`analysis.friction.incidents.incidents` runs them over every step × segment.

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
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import betaln, expit, log_ndtr, logsumexp

from analysis.friction.time_index import TimeIndex, as_index


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
        k = max(math.floor(len(v) * (1 - trim)), 1)
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


def scan(
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


def scan_iter(n, y, limit, *, c, rise, prior, max_per_series: int, threshold: float):
    """Scan, then rescan with found windows masked, up to ``max_per_series`` windows a row."""
    n_rows, n_bins = n.shape
    mask = np.zeros((n_rows, n_bins), dtype=np.int64)
    found: list[tuple[int, int, int, float, tuple]] = []
    rows = np.arange(n_rows)
    for _ in range(max_per_series):
        if not len(rows):
            break
        prob, mode, post = scan(
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
def draw_rates(n_raw, y_raw, phi, post, draws: int, rng: np.random.Generator):
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


def fixed_post(a: int, b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the window posterior that is the one window ``[a, b)``."""
    return np.array([a]), np.array([b]), np.array([1.0])


def overlap(a1, b1, a2, b2) -> bool:
    """Return whether the windows ``[a1, b1)`` and ``[a2, b2)`` share a bin."""
    return min(b1, b2) > max(a1, a2)


def prob_less(y1, n1, y2, n2, c=1.0) -> float:
    """P(q1 < c q2) for Beta(1 + y, 1 + n − y) posteriors (normal approximation)."""
    return float(
        np.exp(_onesided(np.float64(n1), np.float64(y1), np.float64(n2), np.float64(y2), c, False))
    )


def frequency_series(idx: TimeIndex, min_journeys: int):
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


def n_series(idx: TimeIndex, min_journeys: int) -> int:
    """How many series :func:`incidents` scans (the prior of one series is spread over them)."""
    rate_ok = idx.n_mature.sum(2).reshape(-1) >= min_journeys
    return int(rate_ok.sum() + frequency_series(idx, min_journeys)[2].sum())


def scan_setup(
    steps: pd.DataFrame | TimeIndex,
    *,
    by: str | Sequence[str] | None,
    grain: str | None,
    horizon_days: float | None,
    as_of: Any,
    expected_incidents: float,
    min_journeys: int,
) -> tuple[TimeIndex, int, float]:
    """Return the index, the number of series scanned and the prior of an incident in one.

    The keyword arguments that :func:`~analysis.friction.incidents.incidents` and
    :func:`~analysis.friction.series.detectable_drop` share: the index of ``steps``
    (:func:`~analysis.friction.time_index.as_index`) and the prior probability of one series,
    ``expected_incidents`` spread over the series scanned (at most 0.5).
    """
    idx = as_index(steps, by, grain, horizon_days, as_of)
    n = n_series(idx, min_journeys)
    return idx, n, min(expected_incidents / max(n, 1), 0.5)
