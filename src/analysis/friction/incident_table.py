"""The table of :func:`analysis.friction.incidents.incidents`: a finding and its row.

A :class:`Finding` is one window of one series (a step × segment, or a touchpoint's frequency);
:func:`summarise` draws its rates and conversions lost, :func:`incident_row` writes its row of
:data:`INCIDENT_COLUMNS` (with the touchpoints over-represented during the window).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analysis.friction.scan import draw_rates, fixed_post, prob_less
from analysis.friction.time_index import ALL, GRAIN_US, TimeIndex

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


@dataclass
class Finding:
    """One window found in one series, and what :func:`summarise` and the merges add."""

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


def empty_table() -> pd.DataFrame:
    """Return the table of no incident: :data:`INCIDENT_COLUMNS` with their dtypes."""
    df = pd.DataFrame({c: pd.Series(dtype=object) for c in INCIDENT_COLUMNS})
    for c in ("start", "end"):
        df[c] = pd.Series(dtype="datetime64[us, UTC]")
    for c in INCIDENT_COLUMNS:
        if c.startswith(("rate", "conversions", "probability", "horizon")):
            df[c] = pd.Series(dtype=float)
        if c.startswith("journeys"):
            df[c] = pd.Series(dtype="int64")
    return df


def summarise(idx: TimeIndex, f: Finding, n_m, y_m, phi_rate, n_lab, draws, rng, interval) -> None:
    """Draw the rates before and during ``f``'s window and the conversions lost into ``f.summary``.

    The windows are mixed by their posterior (those past the step's mature bins left out).
    """
    assert f.aw is not None and f.bw is not None and f.weights is not None  # set by every scan
    rr = f.step * n_lab + f.group
    lim = int(idx.steps["mature_bins"].iat[f.step])
    within = float(idx.steps["within"].iat[f.step]) or 1.0
    n_raw, y_raw = n_m[rr, :lim], y_m[rr, :lim]
    aw, bw, w = f.aw, f.bw, f.weights
    keep = bw <= lim
    if not keep.any():
        aw, bw, w = fixed_post(f.a, min(f.b, lim))
    else:
        aw, bw, w = aw[keep], bw[keep], w[keep] / w[keep].sum()
    r_out, r_in, ni, _ = draw_rates(n_raw, y_raw, phi_rate[rr], (aw, bw, w), draws, rng)
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
    T = idx.first_touches
    lo = np.searchsorted(T["j"], rj, "left")
    cnt = np.searchsorted(T["j"], rj, "right") - lo
    rep = np.repeat(np.arange(len(rj)), cnt)
    ti = lo[rep] + (np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt))
    ok = T["last"][ti] >= rt[rep]
    return rep[ok], T["x"][ti[ok]]


def _touchpoint_profile(
    idx: TimeIndex, step: int, group: int, a: int, b: int
) -> tuple[np.ndarray, ...]:
    """Return the reaches of ``step`` (in ``group``) and which fall in bins ``[a, b)``.

    Also the pairs (reach, touchpoint at or after it).
    """
    R = idx.reaches
    sel = R["s"] == step
    if group != len(idx.groups):
        assert idx.journey_group is not None  # time_index sets it

        sel &= idx.journey_group[R["j"]] == group
    sel = np.flatnonzero(sel)
    inside = (R["b"][sel] >= a) & (R["b"][sel] < b)
    rep, x = _after(idx, R["j"][sel], R["t"][sel])
    return sel, inside, rep, x


def incident_row(idx: TimeIndex, f: Finding, n_lab: int, interval: float) -> dict[str, Any]:
    """Return the row of :data:`INCIDENT_COLUMNS` of a summarised finding."""
    tab = idx.steps
    g_us = GRAIN_US[idx.grain]
    s = f.summary
    profile = _touchpoint_profile(idx, f.step, f.group, f.a, f.b)
    over = _over_represented(idx, f, profile)
    r_with, r_without, n_with = _with_and_without(idx, f, profile)
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
    step_name = tab["step"].iat[f.step]
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


def _over_represented(
    idx: TimeIndex, f: Finding, profile: tuple[np.ndarray, ...]
) -> list[tuple[str, float]]:
    """Return the touchpoints over-represented during the window, with their lift.

    More frequent after reaching the step inside the window than outside it; highest lift
    first, at most five.
    """
    tab = idx.steps
    _, inside, rep, xs = profile
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
        p_up = prob_less(k_out[x], n_out, k_in[x], n_in)  # P(share in > share out)
        if lift >= 1.5 and p_up >= 0.9:
            over.append((name, float(lift)))
    over.sort(key=lambda t: -t[1])
    return over[:5]


def _with_and_without(
    idx: TimeIndex, f: Finding, profile: tuple[np.ndarray, ...]
) -> tuple[float, float, int]:
    """Return the conversion during the window with and without the incident touchpoint.

    With it: the journeys that had it at or after the reach. Also the number with it.
    """
    tab = idx.steps
    sel, inside, rep, xs = profile
    r_with = r_without = np.nan
    n_with = 0
    if f.touchpoint is not None:
        R = idx.reaches
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
    return r_with, r_without, n_with
