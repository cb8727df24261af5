"""Periods: the spread of conversion between periods beyond the features, and its forecasts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from scipy.stats import norm

from analysis.errors import DataError
from analysis.predict import JourneyForecastModel, decile_coverage
from analysis.predict.periods import MIN_PERIODS, between_period_spread

SLOPE = 0.8


def _periods(n_periods: int, spread: float, rows: int, seed: int, even: bool = False):
    """Rows whose log-odds are -2 + SLOPE·u + the period's own offset ~ Normal(0, spread).

    ``even``: the offsets are the normal's quantiles at (i + 0.5) / n, so a few periods already
    show the spread they were drawn with.
    """
    rng = np.random.default_rng(seed)
    if even:
        offset = spread * norm.ppf((np.arange(n_periods) + 0.5) / n_periods)
    else:
        offset = rng.normal(0.0, spread, n_periods)
    period = np.repeat(np.arange(n_periods), rows)
    u = rng.standard_normal(len(period))
    p = expit(-2.0 + SLOPE * u + offset[period])
    return pd.DataFrame(
        {"u": u, "period": period.astype(str), "converted": (rng.random(len(p)) < p).astype(int)}
    )


@pytest.mark.parametrize("spread", [0.0, 0.6])
def test_the_spread_is_recovered_from_known_offsets(spread):
    # many periods, the true linear predictor: the moment estimate is near the generator's spread
    estimates = []
    for seed in range(5):
        rng = np.random.default_rng(seed)
        offset = rng.normal(0.0, spread, 40)
        period = np.repeat(np.arange(40), 2000)
        eta = -2.0 + rng.standard_normal(len(period))
        y = rng.random(len(period)) < expit(eta + offset[period])
        estimates.append(between_period_spread(eta, y, period).spread)
    assert abs(np.mean(estimates) - spread) < 0.08, estimates


def test_too_few_periods_give_no_spread_and_say_so():
    data = _periods(MIN_PERIODS - 1, 1.0, 500, 0)
    res = between_period_spread(np.full(len(data), -2.0), data["converted"], data["period"])
    assert res.spread == 0.0
    assert len(res.offsets) == MIN_PERIODS - 1
    assert "not estimated" in res.note and res.note.startswith(f"{MIN_PERIODS - 1} training")


def test_a_new_periods_rate_is_covered_only_when_the_spread_is_drawn():
    # train on 12 periods that differ; forecast 10 new ones: the interval of each new period's
    # rate must hold its observed rate about 90% of the time, which the coefficients alone miss
    train = _periods(12, 0.7, 1500, 1, even=True)
    with_period = JourneyForecastModel(train, period="period")
    with_period.fit(method="laplace")
    without = JourneyForecastModel(train.drop(columns="period"))
    without.fit(method="laplace")
    assert 0.4 < with_period.period_spread.spread < 1.0
    covered = {"with": 0, "without": 0}
    for seed in range(10):
        test = _periods(1, 0.7, 1500, 100 + seed)
        y = test["converted"].to_numpy()
        for name, model in (("with", with_period), ("without", without)):
            draws = model.predict_draws(test[["u"]])
            table = decile_coverage(draws, y, bins=1)
            covered[name] += int(table["covered"].iloc[0])
    assert covered["with"] >= 8, covered
    assert covered["without"] <= 6, covered


def test_a_period_column_is_not_a_feature():
    train = _periods(4, 0.3, 300, 2)
    model = JourneyForecastModel(train, period="period")
    assert model.design.names == ["u"]
    # without period= a text column would be a category: the caller must say which it is
    assert "period=0" in JourneyForecastModel(train).design.names


def test_interactions_recover_a_known_product_effect():
    rng = np.random.default_rng(3)
    n = 20_000
    u, v = rng.standard_normal(n), rng.standard_normal(n)
    p = expit(-1.5 + 0.5 * u + 0.3 * v + 0.6 * u * v)
    data = pd.DataFrame({"u": u, "v": v, "converted": (rng.random(n) < p).astype(int)})
    model = JourneyForecastModel(data, model_config={"interactions": "all"})
    assert model.design.names == ["u", "v", "u×v"]
    model.fit(method="laplace")
    beta = model.idata.posterior["beta"].sel(feature="u×v")
    # standardised column: the raw product's slope times its sd
    truth = 0.6 * float(np.std(u * v))
    lo, hi = beta.quantile([0.005, 0.995]).to_numpy()
    assert lo <= truth <= hi, (lo, truth, hi)
    with pytest.raises(DataError, match="interaction term 'w'"):
        JourneyForecastModel(data, model_config={"interactions": [("u", "w")]})


def test_zero_flags_mark_mostly_zero_counts():
    rng = np.random.default_rng(4)
    n = 2000
    pages = np.where(rng.random(n) < 0.7, 0.0, rng.gamma(2.0, 20.0, n))
    data = pd.DataFrame({"pages": pages, "converted": (rng.random(n) < 0.1).astype(int)})
    names = JourneyForecastModel(data, model_config={"zero_flags": True}).design.names
    assert names == ["pages>0", "pages"]
    assert JourneyForecastModel(data).design.names == ["pages"]
