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

The forecasting models (semi-Markov from the stage chain and dwell times; a Bayesian feature
model with partial pooling) come next.
"""

from analysis.predict.backtest import CutoffSplit, cutoff_split, run_backtest
from analysis.predict.baselines import (
    base_rate_forecast,
    boosted_forecast,
    journey_features,
    markov_forecast,
)
from analysis.predict.scores import (
    calibration_table,
    expected_calibration_error,
    forecast_scores,
    interval_coverage,
    top_decile_lift,
)

__all__ = [
    "CutoffSplit",
    "base_rate_forecast",
    "boosted_forecast",
    "calibration_table",
    "cutoff_split",
    "expected_calibration_error",
    "forecast_scores",
    "interval_coverage",
    "journey_features",
    "markov_forecast",
    "run_backtest",
    "top_decile_lift",
]
