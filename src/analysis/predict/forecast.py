"""The chosen forecast: the Bayesian feature model fitted at a cut-off, for a backtest or for use.

- :func:`training_table`: a training split's journeys as the model's rows (features and
  ``converted``);
- :func:`bayes_forecast`: the backtest method (fit on the training split, draws for the test
  split's journeys).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from analysis.predict.baselines import journey_features
from analysis.predict.model import JourneyForecastModel

if TYPE_CHECKING:
    from analysis.predict.backtest import CutoffSplit

__all__ = ["bayes_forecast", "fit_forecast_model", "training_table"]


def training_table(split: CutoffSplit, channels: list[str] | None = None) -> pd.DataFrame:
    """Return the features of ``split``'s open journeys with ``converted`` (their outcome).

    And ``period``, the cut-off each row was open at (several with a rolling origin,
    :func:`~analysis.predict.backtest.stack_splits`): the model measures how much conversion
    moves from one cut-off to the next (:mod:`~analysis.predict.periods`).
    """
    table = journey_features(split, channels=channels)
    table["converted"] = split.open["converted_next"].to_numpy()
    table["period"] = split.open["cutoff"].astype(str).to_numpy()
    return table


def fit_forecast_model(
    train: CutoffSplit,
    *,
    method: str = "laplace",
    sampler_config: dict[str, Any] | None = None,
    model_config: dict[str, Any] | None = None,
) -> JourneyForecastModel:
    """Return the :class:`JourneyForecastModel` fitted on a training split's journeys."""
    cfg = {"progressbar": False, "on_fail": "fallback", **(sampler_config or {})}
    model = JourneyForecastModel(
        training_table(train), period="period", model_config=model_config, sampler_config=cfg
    )
    model.fit(method=method)
    return model


def bayes_forecast(
    train: CutoffSplit,
    test: CutoffSplit,
    *,
    method: str = "laplace",
    sampler_config: dict[str, Any] | None = None,
    max_draws: int = 200,
) -> np.ndarray:
    """Return posterior draws of P(convert within the horizon) for ``test``'s open journeys.

    Draws × journeys; :func:`~analysis.predict.backtest.run_backtest` scores their mean and
    checks their intervals decile by decile.
    """
    model = fit_forecast_model(train, method=method, sampler_config=sampler_config)
    features = journey_features(test, channels=model.design.channels)
    return model.predict_draws(features, max_draws=max_draws)
