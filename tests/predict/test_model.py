"""The Bayesian feature model: recovery of a known logistic law, pooling, forecasts, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from analysis.errors import DataError
from analysis.predict import JourneyForecastModel, decile_coverage, expected_calibration_error
from analysis.predict.scores import log_loss_difference

SEGMENTS = {"a": -2.6, "b": -2.0, "c": -1.6, "small": -2.3}  # true intercepts (log-odds)
SLOPES = np.array([0.9, -0.6, 0.4])  # per feature, on the raw scale


def _simulate(n: int, segment: str, rng: np.random.Generator) -> pd.DataFrame:
    """Rows of a known law: logit p = a[segment] + x · SLOPES, x standard normal (not logged)."""
    x = rng.standard_normal((n, len(SLOPES)))
    p = expit(SEGMENTS[segment] + x @ SLOPES)
    out = pd.DataFrame(x, columns=["u", "v", "w"])
    out["segment"] = segment
    out["converted"] = (rng.random(n) < p).astype(int)
    out["p_true"] = p
    return out


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(1)
    train = pd.concat([_simulate(3000, s, rng) for s in SEGMENTS], ignore_index=True)
    model = JourneyForecastModel(train.drop(columns="p_true"), sampler_config={"draws": 500})
    model.fit(method="laplace")
    return model, train


def test_laplace_fit_recovers_the_generators_slopes(fitted):
    model, train = fitted
    beta = model.idata.posterior["beta"]
    # the design standardises each feature: its slope is the raw slope times the feature's sd
    truth = SLOPES * train[["u", "v", "w"]].std(ddof=0).to_numpy()
    lo, hi = beta.quantile([0.005, 0.995], ("chain", "draw")).to_numpy()
    assert ((lo <= truth) & (truth <= hi)).all(), (lo, truth, hi)
    assert np.abs(beta.mean(("chain", "draw")).to_numpy() - truth).max() < 0.12


def test_forecasts_match_the_true_probabilities_and_their_intervals_hold(fitted):
    model, _ = fitted
    rng = np.random.default_rng(2)
    test = pd.concat([_simulate(5000, s, rng) for s in SEGMENTS], ignore_index=True)
    pred = model.predict(test)
    assert (pred["lower"] <= pred["p"]).all() and (pred["p"] <= pred["upper"]).all()
    assert np.abs(pred["p"] - test["p_true"]).mean() < 0.01
    assert expected_calibration_error(pred["p"], test["converted"]) < 0.015
    table = decile_coverage(model.predict_draws(test), test["converted"])
    assert table["covered"].sum() >= 8
    # the truth's log-loss is not beaten by more than luck, and the base rate is beaten clearly
    gap = log_loss_difference(pred["p"], test["p_true"], test["converted"])
    assert gap["lower"] < 0.002
    base = np.full(len(test), test["converted"].mean())
    assert log_loss_difference(pred["p"], base, test["converted"])["upper"] < -0.02


def test_a_segment_with_100_conversions_is_still_calibrated():
    """Partial pooling: a segment subsampled to 100 training conversions borrows the slopes."""
    rng = np.random.default_rng(3)
    big = [_simulate(6000, s, rng) for s in ("a", "b", "c")]
    small = _simulate(4000, "small", rng)
    small = small[small["converted"].cumsum() <= 100]  # the first rows up to 100 conversions
    assert small["converted"].sum() == 100
    train = pd.concat([*big, small], ignore_index=True).drop(columns="p_true")
    model = JourneyForecastModel(train)
    model.fit(method="laplace")
    test = _simulate(20000, "small", rng)
    p = model.predict(test)["p"]
    assert expected_calibration_error(p, test["converted"]) <= 0.05
    assert np.abs(p - test["p_true"]).mean() < 0.02


def test_an_unseen_segment_gets_the_shared_coefficients(fitted):
    model, _ = fitted
    rows = pd.DataFrame({"u": [0.0, 1.0], "v": [0.0, 0.0], "w": [0.0, 0.0]})
    shared = model.predict(rows.assign(segment="new"))
    again = model.predict(rows.assign(segment="also new"))
    pd.testing.assert_frame_equal(shared, again)
    assert shared["p"].iloc[1] > shared["p"].iloc[0]  # u raises the odds


def test_segments_alike_are_pooled_hard_and_unlike_ones_less():
    """The spread of the segments' intercepts is learnt: near 0 when they share one rate."""
    rng = np.random.default_rng(4)
    same = pd.concat(
        [_simulate(2000, "b", rng).assign(segment=s) for s in "pqrs"], ignore_index=True
    )
    apart = pd.concat([_simulate(2000, s, rng) for s in SEGMENTS], ignore_index=True)
    taus = []
    for data in (same, apart):
        m = JourneyForecastModel(data.drop(columns="p_true"))
        m.fit(method="laplace")
        taus.append(float(m.idata.posterior["tau_intercept"].mean()))
    assert taus[0] < 0.25 < taus[1]


def test_bad_training_rows_are_named():
    data = pd.DataFrame({"u": [0.1, np.nan, 0.3], "converted": [0, 1, 2]})
    with pytest.raises(DataError) as err:
        JourneyForecastModel(data)
    text = str(err.value)
    assert "column: converted" in text and "rows:   3" in text
    assert "column: u" in text and "rows:   2" in text
    with pytest.raises(DataError, match="converted"):
        JourneyForecastModel(pd.DataFrame({"u": [0.1]}))


def test_save_and_load_give_the_same_forecasts(fitted, tmp_path):
    model, train = fitted
    model.save(tmp_path / "fit.nc")
    back = JourneyForecastModel.load(tmp_path / "fit.nc")
    rows = train.head(50).drop(columns=["converted", "p_true"])
    pd.testing.assert_frame_equal(model.predict(rows), back.predict(rows))


def test_top_reasons_name_features_whatever_their_channel_names():
    """A channel name may hold "[" or "=" (names come from the data): reasons still name it."""
    from analysis.predict import top_reasons

    rng = np.random.default_rng(5)
    hostile = "ch_[x](javascript:alert(1))=y"
    data = _simulate(3000, "a", rng).drop(columns=["p_true", "converted"])
    data[hostile] = rng.poisson(1.0, len(data)).astype(float)
    data["converted"] = (rng.random(len(data)) < expit(-2 + data[hostile])).astype(int)
    model = JourneyForecastModel(data)
    model.fit(method="laplace")
    assert model.design.owners.count(hostile) == 1
    rows = data.drop(columns="converted").head(200)
    reasons = top_reasons(model, rows)
    assert (
        reasons[rows[hostile] >= 3]
        .str.contains("[x](javascript:alert(1))=y touch", regex=False)
        .all()
    )
