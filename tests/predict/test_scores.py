"""The backtest scores against independent computations and scikit-learn's calibration curve."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.errors import DataError
from analysis.predict import (
    calibration_table,
    expected_calibration_error,
    forecast_scores,
    interval_coverage,
    top_decile_lift,
)


def _forecasts(n: int, seed: int, *, bent: bool = False):
    rng = np.random.default_rng(seed)
    p = rng.beta(1.5, 4.0, n)
    truth = p**2 if bent else p  # bent: the forecast overstates every journey's chance
    return p, (rng.random(n) < truth).astype(int)


def test_reliability_bins_match_scikit_learn():
    from sklearn.calibration import calibration_curve

    p, y = _forecasts(5000, 0)
    p[:5] = [0.1, 0.2, 0.5, 0.9, 1.0]  # forecasts on the bin edges go where sklearn puts them
    t = calibration_table(p, y, bins=10)
    observed, forecast = calibration_curve(y, p, n_bins=10, strategy="uniform")
    np.testing.assert_allclose(t["observed"], observed, rtol=0, atol=1e-12)
    np.testing.assert_allclose(t["forecast"], forecast, rtol=0, atol=1e-12)
    assert t["n"].sum() == len(p)


def test_ece_is_small_for_a_calibrated_forecast_and_large_for_a_bent_one():
    p, y = _forecasts(50_000, 1)
    assert expected_calibration_error(p, y) < 0.01
    p, y = _forecasts(50_000, 1, bent=True)
    # the true gap, E|p - p²| over the forecasts, is about 0.17; the binned ECE sees it
    assert expected_calibration_error(p, y) > 0.1


def test_ece_by_hand():
    # bin 0 (p 0.05): forecast 0.05, observed 1/2; bin 9 (p 0.95): forecast 0.95, observed 1/2
    p = [0.05, 0.05, 0.95, 0.95]
    y = [0, 1, 0, 1]
    assert expected_calibration_error(p, y) == pytest.approx(0.5 * 0.45 + 0.5 * 0.45)
    t = calibration_table(p, y)
    assert list(t["bin"]) == [0, 9] and not t["covered"].any()


def test_observed_intervals_cover_a_calibrated_forecast_in_most_bins():
    p, y = _forecasts(20_000, 2)
    t = calibration_table(p, y)
    assert t["covered"].mean() >= 0.7  # 90% intervals: a few bins may miss by chance
    bent = calibration_table(*_forecasts(20_000, 2, bent=True))
    assert bent["covered"].mean() < 0.5


def test_scores_equal_their_definitions():
    p, y = _forecasts(3000, 3)
    s = forecast_scores(p, y)
    ll = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert s["log_loss"] == pytest.approx(ll, rel=1e-9)
    assert s["brier"] == pytest.approx(np.mean((p - y) ** 2), rel=1e-12)
    pos, neg = p[y == 1], p[y == 0]  # AUC: P(a converter outranks a non-converter), ties half
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    assert s["auc"] == pytest.approx(wins / (len(pos) * len(neg)), rel=1e-12)
    assert (
        s["n"] == 3000 and s["positives"] == y.sum() and s["base_rate"] == pytest.approx(y.mean())
    )


def test_top_decile_lift_and_interval_coverage_by_hand():
    p = np.arange(20) / 20  # the top 10% are the two highest forecasts
    y = np.zeros(20, dtype=int)
    y[[19, 3, 4, 5]] = 1  # one of the top two converted: 0.5 against an overall 0.2
    assert top_decile_lift(p, y) == pytest.approx(0.5 / 0.2)
    assert math.isnan(top_decile_lift(p, np.zeros(20)))
    assert interval_coverage([0, 0, 1], [1, 1, 2], [0.5, 2.0, 1.0]) == pytest.approx(2 / 3)


def test_one_class_gives_no_auc():
    assert math.isnan(forecast_scores([0.2, 0.4], [0, 0])["auc"])


@pytest.mark.parametrize(
    ("p", "y", "says"),
    [
        ([0.2, 1.3, float("nan")], [0, 1, 0], "2 probability(ies) missing or outside [0, 1]"),
        ([0.2, 0.3], [0, 2], "1 outcome(s) other than 0 or 1"),
        ([0.2, 0.3], [0], "2 probabilities but 1 outcomes"),
    ],
)
def test_bad_forecasts_are_named(p, y, says):
    with pytest.raises(DataError) as e:
        forecast_scores(p, y)
    assert says in str(e.value)
    if "outside" in says:
        assert e.value.rows == [2, 3]


def test_quantile_bins_hold_equal_shares_and_agree_with_scikit_learn():
    from sklearn.calibration import calibration_curve

    rng = np.random.default_rng(11)
    p = rng.beta(0.5, 12, 5000)  # rare conversions: nearly every forecast below 0.1
    y = (rng.random(5000) < p).astype(int)
    uniform = calibration_table(p, y)
    assert uniform["n"].iloc[0] > 0.8 * len(p)
    t = calibration_table(p, y, strategy="quantile")
    assert len(t) == 10 and t["n"].between(490, 510).all()
    observed, forecast = calibration_curve(y, p, n_bins=10, strategy="quantile")
    np.testing.assert_allclose(t["observed"], observed)
    np.testing.assert_allclose(t["forecast"], forecast)
