"""The incident scan's other readings: the series behind a plot, and what could have been seen.

:func:`step_series` gives a step's conversion per bin with the baseline's band (for
:func:`analysis.plotting.plot_step_series`); :func:`detectable_drop` how large an incident the
data could have shown (for "nothing found").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from analysis.friction.incident_text import no_incident_text
from analysis.friction.scan import overdispersion, scan, scan_setup
from analysis.friction.time_index import ALL, TimeIndex, as_index


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

    idx = as_index(steps, by, grain, horizon_days, as_of)
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
    """Return how large an incident :func:`~analysis.friction.incidents.incidents` could have seen.

    The smallest relative drop in conversion, lasting ``window_days`` in the middle of the
    data, at the busiest step (the stage, else touchpoint, with the most scored journeys, all
    segments together), that the scan would report at posterior probability ``prob`` — with the
    same prior and overdispersion as :func:`~analysis.friction.incidents.incidents` (the counts
    are the step's own, the conversions their expectation).


    Returns a dict: ``level, step, segment`` ("all"), ``grain``, ``window_days``, ``rate`` (the
    step's conversion), ``journeys_in_window``, ``drop`` (relative, e.g. 0.3 for −30%; ``None``
    when not even a complete stop would be seen), ``rate_during``, ``conversions_lost`` (in the
    window), ``start`` (the bin the probe window starts at), ``prob`` and ``text``
    (:func:`no_incident_text`).
    """
    idx, _, prior = scan_setup(
        steps,
        by=by,
        grain=grain,
        horizon_days=horizon_days,
        as_of=as_of,
        expected_incidents=expected_incidents,
        min_journeys=min_journeys,
    )
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
    L = max(1, round(window_days / idx.grain_days))
    L = min(L, max(lim // 2, 1))
    a = max((lim - L) // 2, 0)
    b = a + L

    def p_found(d: float) -> float:
        yy = n * p
        yy[a:b] *= 1 - d
        pr, _, _ = scan(
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
