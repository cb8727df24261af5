"""Forecasts for open journeys, and how well they held in time (issue 19; being built).

Today:

- :mod:`~analysis.predict.backtest`: :func:`cutoff_split`, what was known at a cut-off (events,
  persons and journeys built on them alone) and each open journey's outcome in the horizon after
  it, the person followed through later identifiers;
- :mod:`~analysis.predict.scores`: the scores every forecast and every baseline is judged by
  (log-loss, Brier, AUC, expected calibration error and the reliability table, lift in the top
  decile, interval coverage).

- :mod:`~analysis.predict.baselines`: the forecasts a model must beat (the base rate, the stage
  chain's absorbing probability, a gradient-boosted classifier on :func:`journey_features`), and
  :func:`run_backtest`, which scores them at each cut-off.

- :mod:`~analysis.predict.model`: :class:`JourneyForecastModel`, the chosen forecast: a
  hierarchical Bayesian logistic model of conversion within the horizon on the journey's
  features (segments partially pooled; NUTS, or a Laplace approximation without MCMC);
- :mod:`~analysis.predict.forecast`: it fitted at a cut-off (:func:`bayes_forecast`, the
  backtest method);
- :mod:`~analysis.predict.semi_markov`: the semi-Markov forecast from the stage chain and the
  dwell times (the journey's current stage and its days in it): P(convert), P(drop off), the
  next stage, expected days, with intervals; compared in the backtests, and the next-step
  columns of the scored table;
- :mod:`~analysis.predict.score`: :func:`forecast_open_journeys`, the scored table of the
  journeys open today (P(convert within the horizon), its interval, the top reasons).
"""

from analysis.predict.backtest import CutoffSplit, cutoff_split, run_backtest, stack_splits
from analysis.predict.baselines import (
    base_rate_forecast,
    boosted_forecast,
    journey_features,
    markov_forecast,
)
from analysis.predict.forecast import bayes_forecast, fit_forecast_model, training_table
from analysis.predict.model import Design, JourneyForecastModel
from analysis.predict.score import OpenForecast, forecast_open_journeys, top_reasons
from analysis.predict.scores import (
    calibration_table,
    decile_coverage,
    expected_calibration_error,
    forecast_scores,
    interval_coverage,
    top_decile_lift,
)
from analysis.predict.semi_markov import (
    SemiMarkovTable,
    semi_markov_forecast,
    semi_markov_predictions,
    semi_markov_table,
)

__all__ = [
    "CutoffSplit",
    "Design",
    "JourneyForecastModel",
    "OpenForecast",
    "SemiMarkovTable",
    "base_rate_forecast",
    "bayes_forecast",
    "boosted_forecast",
    "calibration_table",
    "cutoff_split",
    "decile_coverage",
    "expected_calibration_error",
    "fit_forecast_model",
    "forecast_open_journeys",
    "forecast_scores",
    "interval_coverage",
    "journey_features",
    "markov_forecast",
    "run_backtest",
    "semi_markov_forecast",
    "semi_markov_predictions",
    "semi_markov_table",
    "stack_splits",
    "top_decile_lift",
    "top_reasons",
    "training_table",
]
