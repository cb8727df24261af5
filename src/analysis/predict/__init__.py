"""Forecasts for open journeys, and how well they held in time (issue 19; being built).

Today: :mod:`~analysis.predict.scores`, the scores every forecast and every baseline is judged
by in a backtest (log-loss, Brier, AUC, expected calibration error and the reliability table,
lift in the top decile, interval coverage). The forecasting models and the backtest in time
come next.
"""

from analysis.predict.scores import (
    calibration_table,
    expected_calibration_error,
    forecast_scores,
    interval_coverage,
    top_decile_lift,
)

__all__ = [
    "calibration_table",
    "expected_calibration_error",
    "forecast_scores",
    "interval_coverage",
    "top_decile_lift",
]
