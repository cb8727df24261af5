"""Headline figures of a fitted conversion model for a report's index page.

:func:`conversion_headline` is importable from :mod:`analysis.models.conversion` too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from analysis.models.conversion import ConversionModel

__all__ = ["conversion_headline"]


def conversion_headline(
    model: ConversionModel,
    journeys: pd.DataFrame | None = None,
    *,
    channel: str | None = None,
    min_journeys: int = 30,
    prob: float = 0.9,
    span_days: float | None = None,
    p_min: float = 0.9,
) -> dict[str, Any]:
    """Headline figures of a fitted :class:`ConversionModel` for a report's index page.

    Parameters
    ----------
    model : ConversionModel
        Fitted on one segment's journeys (one trial per journey).
    journeys : DataFrame, optional
        The same journeys (:attr:`analysis.Journeys.journeys`: ``converted``, ``duration_days``)
        for the median days to conversion.
    channel : str, optional
        A column of the model (effect or cells) whose best level is named.
    min_journeys : int, default 30
        Levels of ``channel`` with fewer trials are not candidates: a channel of three journeys
        that all converted is no headline.
    prob : float, default 0.9
        Interval probability.
    span_days : float, optional
        Days the data span (:func:`analysis.text.data_span_days`): a time to conversion
        beyond it is an extrapolation, never a headline (``median_days_to_conversion_note``
        says so instead; :func:`analysis.text.time_headline`).

    Returns
    -------
    dict
        - ``journeys``, ``conversions``: the model's trials and conversions (int);
        - ``conversion_rate``, ``conversion_lower``, ``conversion_upper``, ``conversion_prob``:
          posterior mean and ``prob`` interval of the rate of all the model's trials (every cell's
          ``p`` weighted by its trials, draw by draw: the segment's rate over its groups);
        - ``median_days_to_conversion``: median ``duration_days`` (first touch → conversion) of
          the converted journeys, a plain descriptive figure (when ``journeys`` has any);
        - when ``channel`` is given and a level has ``min_journeys`` trials: the level with the
          highest mean rate as ``highest_rate_channel_candidate`` with its ``_rate``, ``_lower``,
          ``_upper``, ``_journeys`` and ``_p_best`` (share of draws in which it has the highest
          rate of the candidates); it is named ``highest_rate_channel`` only when ``_p_best`` is
          at least ``p_min`` and there are two candidates or more (a headline is a claim), else
          ``highest_rate_channel_note`` says that no channel stands out, or that there is
          nothing to compare.

    Examples
    --------
    >>> conversion_headline(model, jr.journeys, channel="first_channel")    # doctest: +SKIP
    {'journeys': 3725, 'conversions': 792, 'conversion_rate': 0.213, ...}
    """
    overall, draws = model.rate_draws()
    lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
    d = draws[..., 0].ravel()
    out: dict[str, Any] = {
        "journeys": int(overall["n"].iloc[0]),
        "conversions": int(overall["conversions"].iloc[0]),
        "conversion_rate": float(d.mean()),
        "conversion_lower": float(np.quantile(d, lo)),
        "conversion_upper": float(np.quantile(d, hi)),
        "conversion_prob": float(prob),
    }
    if journeys is not None:
        won = journeys.loc[journeys["converted"].astype(bool), "duration_days"]
        if len(won):
            from analysis.text import time_headline

            out |= time_headline(
                "median_days_to_conversion",
                float(won.median()),
                float("nan") if span_days is None else span_days,
            )
    if channel is not None:
        groups, draws = model.rate_draws(channel)
        ok = np.flatnonzero(groups["n"].to_numpy() >= min_journeys)
        if len(ok):
            cand = draws[..., ok].reshape(-1, len(ok))
            best = int(np.argmax(cand.mean(0)))
            g = cand[:, best]
            name = str(groups[channel].iloc[ok[best]])
            p_best = float((cand.argmax(1) == best).mean())
            if len(ok) < 2:  # best of one is no finding
                out["highest_rate_channel_note"] = (
                    f"no channel to compare: only {name} has {min_journeys} journeys or more"
                )
            elif p_best >= p_min:
                out["highest_rate_channel"] = name
            else:
                out["highest_rate_channel_note"] = (
                    f"no channel stands out: {name} has the highest rate in {p_best:.0%} of the posterior "
                    f"draws (< {p_min:.0%})"
                )
            out |= {
                "highest_rate_channel_candidate": name,
                "highest_rate_channel_rate": float(g.mean()),
                "highest_rate_channel_lower": float(np.quantile(g, lo)),
                "highest_rate_channel_upper": float(np.quantile(g, hi)),
                "highest_rate_channel_journeys": int(groups["n"].iloc[ok[best]]),
                "highest_rate_channel_p_best": p_best,
            }
    return out
