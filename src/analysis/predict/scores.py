"""How good a probability forecast was: the scores of a backtest.

A forecast is a probability per journey (``p``: will it convert within the horizon) set against
what happened (``y``: 1 converted, 0 not). The standard scores come from scikit-learn
(:func:`sklearn.metrics.log_loss`, :func:`~sklearn.metrics.brier_score_loss`,
:func:`~sklearn.metrics.roc_auc_score`); this module adds what a marketing team reads beside them:

- :func:`calibration_table`: the reliability table (equal-width bins of ``p``, binned as
  :func:`sklearn.calibration.calibration_curve` bins them), with a 90% interval of each bin's
  observed rate;
- :func:`expected_calibration_error`: the bins' gaps between forecast and outcome, weighted by
  their journeys (Naeini et al. 2015; Guo et al. 2017);
- :func:`top_decile_lift`: the conversion rate of the 10% of journeys ranked highest, over the
  overall rate (what an audience built from the scores buys);
- :func:`interval_coverage`: the share of observed values inside their forecast intervals;
- :func:`decile_coverage`: per decile of a Bayesian forecast, whether the observed conversion
  rate lies in its 90% predictive interval (the model's draws and the journeys' coin flips);
- :func:`log_loss_difference`: one forecast's log-loss minus another's on the same journeys,
  with a 90% interval (paired: is the gap more than the luck of these journeys?);
- :func:`forecast_scores`: all of them in one dict, one row of a backtest table.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from analysis.errors import DataError, example_rows

__all__ = [
    "calibration_table",
    "decile_coverage",
    "expected_calibration_error",
    "forecast_scores",
    "interval_coverage",
    "log_loss_difference",
    "top_decile_lift",
]


def _forecasts(p: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return ``p`` and ``y`` as arrays after checking them; a DataError names the bad rows."""
    prob = np.asarray(p, dtype=float).ravel()
    outcome = np.asarray(y, dtype=float).ravel()
    if prob.shape != outcome.shape:
        raise DataError(
            f"forecasts: {len(prob)} probabilities but {len(outcome)} outcomes",
            fix="pass one probability and one outcome (0 or 1) per journey",
        )
    bad_p = ~np.isfinite(prob) | (prob < 0) | (prob > 1)
    if bad_p.any():
        raise DataError(
            f"forecasts: {int(bad_p.sum())} probability(ies) missing or outside [0, 1]",
            column="p",
            rows=example_rows(bad_p),
            fix="probabilities are numbers from 0 to 1",
        )
    bad_y = ~np.isin(outcome, (0.0, 1.0))
    if bad_y.any():
        raise DataError(
            f"forecasts: {int(bad_y.sum())} outcome(s) other than 0 or 1",
            column="y",
            rows=example_rows(bad_y),
            fix="outcomes are 1 (converted within the horizon) or 0 (did not)",
        )
    return prob, outcome.astype(int)


def calibration_table(
    p: Any, y: Any, *, bins: int = 10, prob: float = 0.9, strategy: str = "uniform"
) -> pd.DataFrame:
    """Return the reliability table: per bin of forecasts, the forecast and the observed rate.

    Parameters
    ----------
    p, y : array-like
        Forecast probabilities and outcomes (1 converted, 0 not), one per journey.
    bins : int, default 10
        Equal-width bins of ``p`` on [0, 1] (a forecast on an inner edge goes to the lower bin,
        as in :func:`sklearn.calibration.calibration_curve`).
    prob : float, default 0.9
        Mass of the interval of each bin's observed rate (Jeffreys: Beta(k + ½, n − k + ½)).
    strategy : ``"uniform"`` (default) or ``"quantile"``
        As :func:`sklearn.calibration.calibration_curve`: ``"quantile"`` puts the edges at the
        forecasts' quantiles, so each bin holds about as many journeys (where conversions are
        rare, equal-width bins put nearly every journey in the first).

    Returns
    -------
    pandas.DataFrame
        One row per non-empty bin: ``bin, lower_edge, upper_edge, n, forecast`` (mean forecast),
        ``observed`` (share converted), ``observed_low, observed_high``, ``covered`` (the mean
        forecast lies in the observed rate's interval).
    """
    probs, outcome = _forecasts(p, y)
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, bins + 1)
    elif strategy == "quantile":
        edges = np.quantile(probs, np.linspace(0.0, 1.0, bins + 1)) if len(probs) else np.r_[0, 1]
        edges[0], edges[-1] = 0.0, 1.0
    else:
        raise DataError(f"strategy={strategy!r}: give 'uniform' or 'quantile'")
    bins = len(edges) - 1
    ids = np.searchsorted(edges[1:-1], probs)
    n = np.bincount(ids, minlength=bins)
    hits = np.bincount(ids, weights=outcome, minlength=bins)
    total = np.bincount(ids, weights=probs, minlength=bins)
    keep = n > 0
    k, m = hits[keep], n[keep]
    tail = (1 - prob) / 2
    low = stats.beta.ppf(tail, k + 0.5, m - k + 0.5)
    high = stats.beta.ppf(1 - tail, k + 0.5, m - k + 0.5)
    forecast = total[keep] / m
    return pd.DataFrame(
        {
            "bin": np.flatnonzero(keep),
            "lower_edge": edges[:-1][keep],
            "upper_edge": edges[1:][keep],
            "n": m.astype("int64"),
            "forecast": forecast,
            "observed": k / m,
            "observed_low": low,
            "observed_high": high,
            "covered": (forecast >= low) & (forecast <= high),
        }
    )


def expected_calibration_error(p: Any, y: Any, *, bins: int = 10) -> float:
    """Return the expected calibration error: ``Σ_b (n_b / N) · |forecast_b − observed_b|``.

    The bins are those of :func:`calibration_table`. 0 for a perfectly calibrated forecast; a
    forecast of 0.3 for journeys that convert at 0.2 adds 0.1 times their share.
    """
    t = calibration_table(p, y, bins=bins)
    if t.empty:
        return math.nan
    w = t["n"].to_numpy() / t["n"].sum()
    return float(np.sum(w * np.abs(t["forecast"] - t["observed"]).to_numpy()))


def top_decile_lift(p: Any, y: Any, *, share: float = 0.1) -> float:
    """Return the conversion rate of the ``share`` of journeys ranked highest, over the overall rate.

    The top ``ceil(share · N)`` journeys by forecast (ties broken by their order); NaN when no
    journey converted.
    """
    probs, outcome = _forecasts(p, y)
    if len(probs) == 0 or outcome.sum() == 0:
        return math.nan
    top = max(1, math.ceil(share * len(probs)))
    order = np.argsort(-probs, kind="stable")[:top]
    return float(outcome[order].mean() / outcome.mean())


def interval_coverage(lower: Any, upper: Any, observed: Any) -> float:
    """Return the share of ``observed`` values inside ``[lower, upper]`` (NaN when there are none)."""
    lo, hi, obs = (np.asarray(v, dtype=float).ravel() for v in (lower, upper, observed))
    if not (lo.shape == hi.shape == obs.shape):
        raise DataError(
            f"intervals: {len(lo)} lower, {len(hi)} upper bounds and {len(obs)} observed values",
            fix="pass one interval per observed value",
        )
    if len(obs) == 0:
        return math.nan
    return float(np.mean((obs >= lo) & (obs <= hi)))


def decile_coverage(
    draws: Any, y: Any, *, bins: int = 10, prob: float = 0.9, seed: int = 0
) -> pd.DataFrame:
    """Return, per decile of the mean forecast, the observed rate and its predictive interval.

    ``draws`` are posterior draws of each journey's probability (draws × journeys). Journeys are
    ranked by their mean and cut into ``bins`` groups of equal size; for each group, each draw
    simulates the journeys' outcomes (a coin flip at the draw's probability), so the interval
    holds both the model's uncertainty and the luck of a finite group: a calibrated model's
    intervals cover the observed rate in about ``prob`` of the groups.

    Returns
    -------
    pandas.DataFrame
        ``decile, n, forecast`` (mean probability), ``observed``, ``lower``, ``upper``, ``covered``.
    """
    d = np.asarray(draws, dtype=float)
    if d.ndim != 2:
        raise DataError(
            f"decile_coverage: draws must be draws × journeys, got shape {d.shape}",
            fix="pass the model's posterior draws (JourneyForecastModel.predict_draws)",
        )
    p, outcome = _forecasts(d.mean(axis=0), y)
    rng = np.random.default_rng(seed)
    rank = np.argsort(np.argsort(p, kind="stable"), kind="stable")
    ids = (rank * bins) // max(len(p), 1)
    tail = (1 - prob) / 2
    rows = []
    for b in range(bins):
        rows_b = np.flatnonzero(ids == b)
        if len(rows_b) == 0:
            continue
        sims = (rng.random((d.shape[0], len(rows_b))) < d[:, rows_b]).mean(axis=1)
        lo, hi = np.quantile(sims, [tail, 1 - tail])
        obs = float(outcome[rows_b].mean())
        rows.append(
            {
                "decile": b + 1,
                "n": len(rows_b),
                "forecast": float(p[rows_b].mean()),
                "observed": obs,
                "lower": float(lo),
                "upper": float(hi),
                "covered": bool(lo <= obs <= hi),
            }
        )
    return pd.DataFrame(rows)


def log_loss_difference(p: Any, q: Any, y: Any, *, prob: float = 0.9) -> dict[str, float]:
    """Return the log-loss of ``p`` minus that of ``q`` on the same journeys, with an interval.

    The journeys' differences ``d_i = loss(p_i, y_i) − loss(q_i, y_i)`` are paired, so their
    mean's standard error is ``sd(d) / √n`` (central limit; thousands of journeys). Negative:
    ``p`` forecast better. Keys: ``diff``, ``lower``, ``upper`` (``prob`` interval).
    """
    pa, outcome = _forecasts(p, y)
    qa, _ = _forecasts(q, y)
    eps = 1e-15
    pa, qa = np.clip(pa, eps, 1 - eps), np.clip(qa, eps, 1 - eps)
    la = -(outcome * np.log(pa) + (1 - outcome) * np.log1p(-pa))
    lb = -(outcome * np.log(qa) + (1 - outcome) * np.log1p(-qa))
    d = la - lb
    if len(d) < 2:
        return {
            "diff": float(d.mean()) if len(d) else math.nan,
            "lower": math.nan,
            "upper": math.nan,
        }
    se = float(d.std(ddof=1) / math.sqrt(len(d)))
    z = float(stats.norm.ppf(0.5 + prob / 2))
    return {
        "diff": float(d.mean()),
        "lower": float(d.mean() - z * se),
        "upper": float(d.mean() + z * se),
    }


def forecast_scores(p: Any, y: Any, *, bins: int = 10) -> dict[str, float]:
    """Return every score of one forecast: one row of a backtest table.

    Keys: ``n``, ``positives``, ``base_rate``, ``log_loss`` and ``brier`` (lower is better),
    ``auc`` (NaN with one class only), ``ece`` (:func:`expected_calibration_error`),
    ``top_decile_lift`` (:func:`top_decile_lift`).
    """
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    probs, outcome = _forecasts(p, y)
    both = 0 < outcome.sum() < len(outcome)
    return {
        "n": float(len(probs)),
        "positives": float(outcome.sum()),
        "base_rate": float(outcome.mean()) if len(outcome) else math.nan,
        "log_loss": float(log_loss(outcome, probs, labels=[0, 1])) if len(probs) else math.nan,
        "brier": float(brier_score_loss(outcome, probs, pos_label=1)) if len(probs) else math.nan,
        "auc": float(roc_auc_score(outcome, probs)) if both else math.nan,
        "ece": expected_calibration_error(probs, outcome, bins=bins),
        "top_decile_lift": top_decile_lift(probs, outcome),
    }
