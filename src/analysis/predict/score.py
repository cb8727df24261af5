"""Forecasts for the journeys open today: the scored table a CRM or an ad audience takes.

:func:`forecast_open_journeys` fits the chosen model (:class:`JourneyForecastModel`) on the
journeys that were open one horizon ago, and earlier (``train_origins``), whose outcomes are known
by now, and scores every journey open at the end of the data: P(convert within the horizon)
with its 90% interval, and the features that raise it most (``top_reasons``); the semi-Markov
chain adds P(drop off), the likeliest next stage and the expected days to conversion.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analysis.errors import DataError
from analysis.predict.backtest import CutoffSplit, as_utc, cached_split, stack_splits
from analysis.predict.baselines import journey_features
from analysis.predict.forecast import fit_forecast_model
from analysis.predict.model import JourneyForecastModel
from analysis.predict.semi_markov import semi_markov_predictions

__all__ = ["MIN_POSITIVES", "OpenForecast", "forecast_open_journeys", "top_reasons"]

#: Fewer converting training journeys than this: too little to forecast (the report says so).
MIN_POSITIVES = 20


@dataclass
class OpenForecast:
    """The forecast for the journeys open at ``as_of`` (see :func:`forecast_open_journeys`).

    Attributes
    ----------
    table : pandas.DataFrame
        One row per open journey: ``person_id, journey_id, segment, stage`` (the last stage
        reached), ``days_quiet`` (since its last touch), ``touches``, ``p_convert``, ``p_lower``,
        ``p_upper`` (90% interval), ``top_reasons``, and from the semi-Markov chain
        (:func:`~analysis.predict.semi_markov.semi_markov_predictions`) ``chain_p_convert``
        (its own P(convert), which knows the stage and the days in it but not the days quiet
        or the channels: it can disagree with ``p_convert``), ``chain_p_dropoff`` (the chain's
        P(drops off within the horizon)), ``p_dropoff`` (the same, made coherent with
        ``p_convert``: :func:`coherent_dropoff`; drops off within
        the horizon), ``next_stage`` with ``next_stage_p`` and ``expected_days`` (to a
        conversion within the horizon); sorted by ``p_convert``, highest first.
    model : JourneyForecastModel or None
        The fitted model (None when there was too little to fit).
    train : CutoffSplit
        The training journeys (stacked origins) and their outcomes.
    split : CutoffSplit
        What is known at ``as_of`` (the open journeys, without outcomes).
    note : str
        Empty, or why there is too little to forecast (``table`` empty), or why the next-step
        columns are missing.
    """

    table: pd.DataFrame
    model: JourneyForecastModel | None
    train: CutoffSplit
    split: CutoffSplit
    horizon_days: float
    note: str = ""
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def as_of(self) -> pd.Timestamp:
        """The moment of the forecast (the end of the data by default)."""
        return self.split.cutoff


def _reason_text(name: str, value: Any) -> str:
    if name in ("last_stage", "segment"):
        return f"{name.replace('_', ' ')} {value}"
    if name.startswith("ch_"):
        return f"{value:g} {name[3:]} touch(es)"
    texts = {
        "recency_days": "last touch {:.1f} days ago",
        "age_days": "first touch {:.0f} days ago",
        "touches": "{:g} touches",
        "stages_seen": "{:g} stages seen",
    }
    return texts.get(name, name + " {:.3g}").format(value)


def top_reasons(model: JourneyForecastModel, features: pd.DataFrame, *, top: int = 2) -> pd.Series:
    """Return, per journey, the features that raise its log-odds most above a typical journey's.

    A feature's contribution is its standardised columns times their posterior mean slopes
    (the spline columns of one feature, or the levels of one category, summed): 0 for a
    journey at the training mean. Only positive contributions count, and only of what the
    journey has (not the absence of a channel's touches); the text gives the
    journey's value (e.g. ``"3 email touch(es); last stage Do"``).
    """
    x = model.design.transform(features)
    if model.idata is None:
        raise DataError("top_reasons: the model is not fitted", fix="call model.fit() first")
    beta = model.idata.posterior["beta"].mean(("chain", "draw")).to_numpy()
    owner = model.design.owners  # not parsed from the names: a channel may hold "[" or "="
    names = list(dict.fromkeys(owner))
    contrib = np.zeros((len(features), len(names)))
    for j, o in enumerate(owner):
        contrib[:, names.index(o)] += x[:, j] * beta[j]
    absent = np.array([n.startswith("ch_") for n in names])[None, :] & np.column_stack(
        [
            features[n].to_numpy() == 0 if n.startswith("ch_") else np.zeros(len(features), bool)
            for n in names
        ]
    )
    contrib[absent] = 0.0
    order = np.argsort(-contrib, axis=1)[:, :top]
    values = {n: features[n].to_numpy() for n in names if n in features.columns}
    out = []
    for i in range(len(features)):
        parts = [
            _reason_text(names[j], values[names[j]][i])
            for j in order[i]
            if contrib[i, j] > 0.05 and names[j] in values
        ]
        out.append("; ".join(parts))
    return pd.Series(out, index=features.index, dtype=object)


def coherent_dropoff(p_convert: Any, chain_convert: Any, chain_dropoff: Any) -> np.ndarray:
    """Return P(drops off within the horizon) that adds up with ``p_convert``.

    Within the horizon a journey converts, drops off or stays open. The feature model gives
    P(convert); the stage chain gives all three, and its P(convert) can differ (it does not know
    the days quiet or the channels), so its P(drop off) alone could make the two exceed 1. The
    chain is kept for how the rest divides: ``(1 - p_convert) × chain_dropoff /
    (1 - chain_convert)``, the chain's P(drop off | no conversion) times the model's P(no
    conversion). Where the chain is sure of a conversion (``chain_convert`` = 1) the chain's
    ratio is undefined: 0 when ``p_convert`` = 1, else ``1 - p_convert`` (nothing left to stay
    open, by the chain).
    """
    p = np.asarray(p_convert, dtype=float)
    cc = np.asarray(chain_convert, dtype=float)
    cd = np.asarray(chain_dropoff, dtype=float)
    rest = 1.0 - cc
    share = np.divide(cd, rest, out=np.ones_like(cd), where=rest > 1e-12)
    return np.clip((1.0 - p) * np.clip(share, 0.0, 1.0), 0.0, 1.0)


def forecast_open_journeys(
    events: pd.DataFrame,
    *,
    horizon_days: float = 14.0,
    inactivity_days: float = 30.0,
    journey_by: str = "inactivity",
    as_of: Any = None,
    train_origins: int = 4,
    method: str = "laplace",
    sampler_config: dict[str, Any] | None = None,
    splits: dict | None = None,
    **stitch_kwargs: Any,
) -> OpenForecast:
    """Forecast every journey open at ``as_of``: P(convert within ``horizon_days``).

    Parameters
    ----------
    events : pandas.DataFrame
        Canonical touchpoints (stitched or not: they are stitched again at each cut-off, on
        what was known then); a ``segment`` column is the grouping the model pools.
    horizon_days : float, default 14
        The forecast's window.
    inactivity_days, journey_by : as :func:`analysis.build_journeys`.
    as_of : date, optional
        The moment of the forecast; default: the last touchpoint.
    train_origins : int, default 4
        The training journeys are those open at ``as_of − k·horizon_days`` for k = 1 …
        ``train_origins`` (their outcomes are known by ``as_of``): four origins gave the
        backtests four times the rows and better scores than one (bench/README.md).
    method : ``"laplace"`` (default) or ``"nuts"``
        How :class:`JourneyForecastModel` is fitted. The Laplace fit (segments' spread
        integrated over a grid) needs no MCMC and scored as well as NUTS in the backtests.
    sampler_config : dict, optional
        Passed to the model (``random_seed``, ``draws`` …).
    splits : dict, optional
        A cache of cut-off splits shared with :func:`~analysis.predict.backtest.run_backtest`
        on the same events (:func:`~analysis.predict.backtest.cached_split`).
    **stitch_kwargs
        Passed to :func:`analysis.stitch_identities`.

    Returns
    -------
    OpenForecast
        ``table`` is empty with a ``note`` when fewer than :data:`MIN_POSITIVES` training
        journeys converted (too little to forecast).
    """
    ts = pd.to_datetime(events["timestamp"], utc=True)
    if len(ts) == 0:
        raise DataError("forecast: no touchpoints", fix="check the data and the date range")
    now = ts.max() if as_of is None else as_utc(as_of, "as_of")
    horizon = pd.Timedelta(days=float(horizon_days))
    opts = {
        "horizon_days": horizon_days,
        "inactivity_days": inactivity_days,
        "journey_by": journey_by,
        **stitch_kwargs,
    }
    known = events[(ts <= now).to_numpy()]
    start = ts.min()
    origins = [now - k * horizon for k in range(int(train_origins), 0, -1)]
    origins = [c for c in origins if c > start]
    if not origins:
        raise DataError(
            f"forecast: the data span less than one horizon ({horizon_days:g} days) before "
            f"{now:%Y-%m-%d}: nothing to learn from",
            column="timestamp",
            fix="give a shorter horizon_days, or more history",
        )
    train = stack_splits([cached_split(splits, known, c, data_end=now, **opts) for c in origins])
    split = cached_split(splits, known, now, outcomes=False, **opts)
    settings = {
        "horizon_days": float(horizon_days),
        "train_origins": len(origins),
        "method": method,
    }
    positives = int(train.open["converted_next"].sum())
    if positives < MIN_POSITIVES:
        note = (
            f"too little to forecast: {positives} of {len(train.open):,} training journeys "
            f"converted within {horizon_days:g} days (at least {MIN_POSITIVES} are needed)"
        )
        return OpenForecast(pd.DataFrame(), None, train, split, float(horizon_days), note, settings)
    model = fit_forecast_model(train, method=method, sampler_config=sampler_config)
    feats = journey_features(split, channels=model.design.channels)
    pred = model.predict(feats)
    o = split.open
    table = pd.DataFrame(
        {
            "person_id": o["person_id"].to_numpy(),
            "journey_id": o["journey_id"].to_numpy(),
            "segment": feats["segment"].astype(str).to_numpy(),
            "stage": feats["last_stage"].astype(str).to_numpy(),
            "days_quiet": feats["recency_days"].to_numpy(),
            "touches": o["n_touchpoints"].to_numpy(),
            "p_convert": pred["p"].to_numpy(),
            "p_lower": pred["lower"].to_numpy(),
            "p_upper": pred["upper"].to_numpy(),
            "top_reasons": top_reasons(model, feats).to_numpy(),
        }
    )
    note = ""
    try:  # where the journey goes next, from the stage chain and the days it has been in it
        chain = semi_markov_predictions(train, split)
        table["chain_p_convert"] = chain["p_convert"].to_numpy()
        for c in ("p_dropoff", "next_stage", "next_stage_p", "expected_days"):
            table[c] = chain[c].to_numpy()
        table["chain_p_dropoff"] = table["p_dropoff"]
        table["p_dropoff"] = coherent_dropoff(
            table["p_convert"], table["chain_p_convert"], table["chain_p_dropoff"]
        )
    except DataError as e:  # e.g. a stage entered but never left yet: say so, keep P(convert)
        note = f"next steps not forecast: {e.args[0] if e.args else e}"
    table = table.sort_values("p_convert", ascending=False, kind="stable").reset_index(drop=True)
    return OpenForecast(table, model, train, split, float(horizon_days), note, settings)
