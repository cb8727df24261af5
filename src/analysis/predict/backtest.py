"""Backtests in time: what was known at a cut-off, and what happened in the horizon after it.

A forecast made at a cut-off may only use the events up to it: :func:`cutoff_split` stitches
identities and builds journeys on those events alone (stitching on later events could merge
persons through identifiers nobody had seen yet), and scores the journeys still open then. Their
outcome comes from later events: the person converted within ``horizon_days`` after the cut-off.
To find "the person" among later events, the events up to the horizon's end are stitched too, and
each person known at the cut-off is followed to the person its events belong to then (a later
login can tie a cookie seen before the cut-off to a purchase after it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis.errors import DataError

__all__ = [
    "CutoffSplit",
    "cached_split",
    "cutoff_split",
    "run_backtest",
    "score_methods",
    "stack_splits",
]


@dataclass
class CutoffSplit:
    """What was known at a cut-off, and the outcome of each journey open then.

    Attributes
    ----------
    cutoff : pandas.Timestamp
        The cut-off (UTC); events at it count as known.
    horizon_days : float
        The outcome window after the cut-off.
    known : pandas.DataFrame
        The events up to the cut-off, stitched on themselves alone (``person_id``).
    journeys : analysis.journeys.Journeys
        Journeys built on ``known`` with ``as_of=cutoff``.
    open : pandas.DataFrame
        The journeys open at the cut-off (``journeys.journeys`` rows) with ``converted_next``:
        1 when the person converted within the horizon after the cut-off, else 0, and
        ``cutoff`` (the cut-off; rows of :func:`stack_splits` keep their own).
    """

    cutoff: pd.Timestamp
    horizon_days: float
    known: pd.DataFrame
    journeys: Any
    open: pd.DataFrame

    @property
    def base_rate(self) -> float:
        """Return the share of open journeys whose person converted within the horizon."""
        return float(self.open["converted_next"].mean()) if len(self.open) else float("nan")


def as_utc(value: Any, what: str) -> pd.Timestamp:
    """Return ``value`` as a UTC timestamp (a naive one is taken as UTC).

    ``what`` names the value in the DataError raised when it is not a date.
    """
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as e:
        raise DataError(
            f"{what}: {value!r} is not a date", fix="give a date, e.g. 2024-03-01"
        ) from e
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _next_converters(
    events: pd.DataFrame,
    ts: pd.Series,
    cutoff: pd.Timestamp,
    end: pd.Timestamp,
    stitch_kwargs: dict,
) -> pd.Series:
    """Return, per event id up to the cut-off, whether its person converted in (cutoff, end]."""
    from analysis.identity import stitch_identities

    upto = events[(ts <= end).to_numpy()]
    whole = stitch_identities(upto, **stitch_kwargs)
    when = pd.to_datetime(whole["timestamp"], utc=True)
    after = (when > cutoff) & whole["conversion"].astype(bool)
    buyers = set(whole.loc[after, "person_id"])
    return whole.set_index("event_id")["person_id"].isin(buyers)


def cutoff_split(
    events: pd.DataFrame,
    cutoff: Any,
    *,
    horizon_days: float = 14.0,
    inactivity_days: float = 30.0,
    journey_by: str = "inactivity",
    data_end: Any = None,
    outcomes: bool = True,
    **stitch_kwargs: Any,
) -> CutoffSplit:
    """Split touchpoints at a cut-off into what was known then and what happened next.

    Parameters
    ----------
    events : pandas.DataFrame
        Canonical touchpoints (``analysis.load_events``), not yet stitched: every identifier
        column is used, and ``event_id`` follows an event from the cut-off's persons to later ones.
    cutoff : date
        The moment of the forecast (a date is midnight UTC); events at it count as known.
    horizon_days : float, default 14
        The outcome window: did the person convert within this many days after the cut-off?
    inactivity_days, journey_by : as :func:`analysis.build_journeys`.
    data_end : date, optional
        Until when the data are complete (default: their last touchpoint); the horizon must end
        by then, or outcomes would be cut short.
    outcomes : bool, default True
        False: the journeys open at the cut-off without their outcome (no ``converted_next``;
        the horizon may run past the data): what a forecast made today scores.
    **stitch_kwargs
        Passed to :func:`analysis.stitch_identities` (``max_links`` …), for both stitchings.

    Returns
    -------
    CutoffSplit
        Nothing in ``known``, ``journeys`` or the rows of ``open`` depends on events after the
        cut-off; only ``open["converted_next"]`` does.
    """
    from analysis.identity import stitch_identities
    from analysis.journeys import build_journeys

    if "event_id" not in events.columns or events["event_id"].duplicated().any():
        raise DataError(
            "cutoff_split: events need a unique event_id",
            column="event_id",
            fix="pass the events as analysis.load_events returns them",
        )
    cut = as_utc(cutoff, "cutoff")
    if not horizon_days > 0:
        raise DataError(f"horizon_days={horizon_days!r}: give a positive number of days")
    end = cut + pd.Timedelta(days=float(horizon_days))
    ts = pd.to_datetime(events["timestamp"], utc=True)
    complete = ts.max() if data_end is None else as_utc(data_end, "data_end")
    if outcomes and complete < end:
        raise DataError(
            f"the data end on {complete:%Y-%m-%d %H:%M}, before the horizon after the cut-off "
            f"({end:%Y-%m-%d %H:%M}): outcomes would be cut short",
            column="timestamp",
            fix="choose an earlier cut-off or a shorter horizon_days",
        )
    known = stitch_identities(events[(ts <= cut).to_numpy()], **stitch_kwargs)
    jr = build_journeys(known, inactivity_days=inactivity_days, as_of=cut, journey_by=journey_by)
    table = jr.journeys
    open_ = table[table["outcome"] == "open"].reset_index(drop=True)
    if not outcomes:
        open_["cutoff"] = cut
        return CutoffSplit(cut, float(horizon_days), known, jr, open_)
    converts = _next_converters(events, ts, cut, end, stitch_kwargs)
    by_person = (
        pd.Series(converts.reindex(known["event_id"]).to_numpy(), index=known["person_id"])
        .groupby(level=0)
        .any()
    )
    label = by_person.reindex(open_["person_id"]).fillna(False).to_numpy(dtype=bool)
    open_["converted_next"] = label.astype(np.int64)
    open_["cutoff"] = cut
    return CutoffSplit(cut, float(horizon_days), known, jr, open_)


def cached_split(cache: dict | None, events: pd.DataFrame, cutoff: Any, **opts: Any) -> CutoffSplit:
    """Return :func:`cutoff_split` ``(events, cutoff, **opts)``, kept in ``cache`` when given.

    A backtest and a forecast on the same data build many of the same splits (each stitches
    the events twice). A split depends on the events up to its horizon's end only, so one
    ``cache`` dict may serve every call on one events table, cropped or not; ``data_end`` (a
    check, not an input) is not part of the key. Never share a cache between two tables.
    """
    if cache is None:
        return cutoff_split(events, cutoff, **opts)
    defaults = {"horizon_days": 14.0, "inactivity_days": 30.0, "journey_by": "inactivity"}
    settings = {**defaults, "outcomes": True, **opts}
    for k in ("horizon_days", "inactivity_days"):
        settings[k] = float(settings[k])
    settings.pop("data_end", None)
    key = (as_utc(cutoff, "cutoff"), *((k, repr(v)) for k, v in sorted(settings.items())))
    if key not in cache:
        cache[key] = cutoff_split(events, cutoff, **opts)
    return cache[key]


def stack_splits(splits: list[CutoffSplit]) -> CutoffSplit:
    """Return one training split made of several cut-offs' open journeys (a rolling origin).

    ``open`` holds every split's rows, each with its own ``cutoff`` (features are computed at
    it); a journey open at two cut-offs appears twice, with what was known at each.
    ``known``, ``journeys`` and ``cutoff`` are the latest split's (the stage chain is fitted on
    the latest journeys).
    """
    if not splits:
        raise DataError("stack_splits: no splits given", fix="pass at least one CutoffSplit")
    latest = max(splits, key=lambda s: s.cutoff)
    rows = pd.concat([s.open for s in splits], ignore_index=True)
    return CutoffSplit(latest.cutoff, latest.horizon_days, latest.known, latest.journeys, rows)


def run_backtest(
    events: pd.DataFrame,
    cutoffs: Any,
    *,
    horizon_days: float = 14.0,
    inactivity_days: float = 30.0,
    journey_by: str = "inactivity",
    methods: dict[str, Any] | None = None,
    data_end: Any = None,
    train_origins: int = 1,
    keep: dict[Any, Any] | None = None,
    splits: dict | None = None,
    **stitch_kwargs: Any,
) -> pd.DataFrame:
    """Score forecasts made at each cut-off against what happened in the horizon after it.

    At a cut-off ``c`` each method is fitted on the journeys open at ``c − horizon_days`` (and,
    with ``train_origins = k``, at ``c − 2·horizon_days`` … ``c − k·horizon_days``, stacked:
    :func:`stack_splits`); their outcomes were known by ``c``: only events up to ``c`` are used.
    It then scores the journeys open at ``c``.

    Parameters
    ----------
    events : pandas.DataFrame
        Canonical touchpoints, not yet stitched (see :func:`cutoff_split`).
    cutoffs : list of dates
        The moments of the forecasts; each needs ``horizon_days`` of data after it.
    horizon_days, inactivity_days : float
        The outcome window, and the gap that ends a journey.
    journey_by : str, default "inactivity"
        As :func:`analysis.build_journeys` (``"session"``: one journey per session).
    methods : dict, optional
        Name → ``f(train_split, test_split) -> probabilities``; default: the baselines
        (``base rate``, ``markov``, ``boosted``) of :mod:`analysis.predict.baselines`.
    data_end : date, optional
        Until when the data are complete (default: their last touchpoint).
    train_origins : int, default 1
        How many earlier cut-offs, one horizon apart, make the training rows.
    keep : dict, optional
        Filled with ``(cutoff, method) → (forecast, outcomes)`` for plots (a reliability curve).
    splits : dict, optional
        A cache of the cut-off splits (:func:`cached_split`), e.g. shared with
        :func:`~analysis.predict.score.forecast_open_journeys` on the same events.

    A method returns one probability per test journey, or posterior draws (draws × journeys):
    then ``p`` is their mean and ``decile_coverage`` the share of deciles of ``p`` whose observed
    rate lies in its 90% predictive interval
    (:func:`~analysis.predict.scores.decile_coverage`).

    Returns
    -------
    pandas.DataFrame
        One row per cut-off × method: ``cutoff, method, train_journeys`` and
        :func:`~analysis.predict.scores.forecast_scores` (``n, positives, base_rate, log_loss,
        brier, auc, ece, top_decile_lift``), ``decile_coverage`` and ``seconds`` (fit and
        forecast).
    """
    from analysis.predict.baselines import base_rate_forecast, boosted_forecast, markov_forecast

    methods = methods or {
        "base rate": base_rate_forecast,
        "markov": markov_forecast,
        "boosted": boosted_forecast,
    }
    if int(train_origins) < 1:
        raise DataError(f"train_origins={train_origins!r}: give 1 or more")
    ts = pd.to_datetime(events["timestamp"], utc=True)
    horizon = pd.Timedelta(days=float(horizon_days))
    rows = []
    for c in cutoffs:
        cut = as_utc(c, "cutoff")
        known = events[(ts <= cut).to_numpy()]
        opts = {
            "horizon_days": horizon_days,
            "inactivity_days": inactivity_days,
            "journey_by": journey_by,
            **stitch_kwargs,
        }
        train = stack_splits(
            [
                cached_split(splits, known, cut - k * horizon, data_end=cut, **opts)
                for k in range(int(train_origins), 0, -1)
            ]
        )
        test = cached_split(splits, events, cut, data_end=data_end, **opts)
        y = test.open["converted_next"].to_numpy()
        scored = score_methods(methods, train, test, y, keep=keep, key=cut)
        # "method" placed second: a key keeps its first place when ``**r`` sets its value
        rows += [
            {"cutoff": cut, "method": "", "train_journeys": len(train.open), **r} for r in scored
        ]
    return pd.DataFrame(rows)


def score_methods(
    methods: dict[str, Any],
    train: Any,
    test: Any,
    y: np.ndarray,
    *,
    keep: dict[Any, Any] | None = None,
    key: Any = None,
) -> list[dict[str, Any]]:
    """Fit and score each method on one train/test pair: one backtest row per method.

    ``method(train, test)`` returns one probability per test row, or draws × rows; ``y`` holds
    the test rows' outcomes. Rows: ``method``, :func:`~analysis.predict.scores.forecast_scores`,
    ``decile_coverage`` (draws only, else NaN) and ``seconds``; ``keep[(key, method)]`` gets
    ``(p, y)``.
    """
    import time

    from analysis.predict.scores import decile_coverage, forecast_scores

    rows = []
    for name, forecast in methods.items():
        t0 = time.perf_counter()
        out = np.asarray(forecast(train, test), dtype=float)
        seconds = time.perf_counter() - t0
        p = out.mean(axis=0) if out.ndim == 2 else out
        cover = decile_coverage(out, y)["covered"].mean() if out.ndim == 2 else np.nan
        if keep is not None:
            keep[(key, name)] = (p, y)
        rows.append(
            {
                "method": name,
                **forecast_scores(p, y),
                "decile_coverage": float(cover),
                "seconds": seconds,
            }
        )
    return rows
