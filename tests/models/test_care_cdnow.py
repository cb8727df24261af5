"""CDNOW parity of the Care models (issue 21): BG/NBD and Gamma-Gamma against the papers.

Truth: Fader, Hardie & Lee (2005), "Counting your customers the easy way", BG/NBD on the
2,357-customer sample with a 39-week calibration period (1997-01-01 .. 1997-09-30):
r = 0.243, α = 4.414, a = 0.793, b = 2.426 (Pareto/NBD: r = 0.553, α = 10.578, s = 0.606,
β = 11.669); Fader & Hardie (2013), "The Gamma-Gamma model of
monetary value", on the same calibration data: p = 6.25, q = 3.74, γ = 15.44; the files'
README (6,919 / 69,659 purchases, 2,357 / 23,570 customers); equation (9) of the 2005 paper
evaluated with scipy for the tracking curve.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import hyp2f1

from analysis.models.care import (
    CDNOW_CALIBRATION_END,
    CDNOW_HOLDOUT_END,
    PUBLISHED_BGNBD_CDNOW,
    fit_repeat_purchases,
    p_alive_matrix,
    read_cdnow,
    rfm_summary,
    tracking_curve,
)

PUBLISHED_GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "v": 15.44}
PUBLISHED_PNBD = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return read_cdnow(sample=True)


@pytest.fixture(scope="module")
def rfm(sample) -> pd.DataFrame:
    return rfm_summary(
        sample,
        value="value",
        calibration_end=CDNOW_CALIBRATION_END,
        observation_end=CDNOW_HOLDOUT_END,
    )


@pytest.fixture(scope="module")
def map_fit(rfm):
    return fit_repeat_purchases(rfm[rfm.columns.drop("monetary_value")], method="map")


def test_read_cdnow_keeps_every_row_and_the_sample_is_in_the_master(sample):
    master = read_cdnow(sample=False)
    assert (len(sample), sample["customer_id"].nunique()) == (6919, 2357)
    assert (len(master), master["customer_id"].nunique()) == (69659, 23570)
    in_master = master[master["customer_id"].isin(sample["customer_id"])]
    cols = ["customer_id", "date", "cds", "value"]
    pd.testing.assert_frame_equal(
        in_master.sort_values(cols).reset_index(drop=True),
        sample[cols].sort_values(cols).reset_index(drop=True),
    )


def test_cdnow_rfm_is_the_papers_calibration_data(sample, rfm):
    assert len(rfm) == 2357  # all first purchases are in the first quarter of 1997
    first = rfm.set_index("customer_id").loc["00004"]  # the sample's customer 0001
    assert first[["frequency", "recency", "T"]].round(2).tolist() == [2, 30.43, 38.86]
    days = sample.drop_duplicates(["customer_id", "date"])
    calib = days[days["date"] <= CDNOW_CALIBRATION_END]
    assert rfm["frequency"].sum() == len(calib) - 2357
    assert rfm["test_frequency"].sum() == len(days) - len(calib)
    assert (rfm["test_T"] == 39).all()


def test_bgnbd_map_reproduces_fader_hardie_lee(map_fit):
    est = map_fit.params.set_index("parameter")["estimate"]
    for name, published in PUBLISHED_BGNBD_CDNOW.items():
        assert est[name] == pytest.approx(published, rel=0.02), name
    # a MAP fit is one point: no interval
    assert map_fit.params["lo"].isna().all()
    assert map_fit.customers["expected_purchases_lo"].isna().all()
    p = map_fit.customers["p_alive"]
    assert ((p > 0) & (p <= 1)).all()


def test_tracking_curve_matches_counts_and_equation_9(sample, rfm, map_fit):
    curve = tracking_curve(sample, map_fit, CDNOW_CALIBRATION_END, CDNOW_HOLDOUT_END)
    assert len(curve) == 78
    assert (curve["period"] == "calibration").sum() == 39
    by_week = curve.set_index("week")
    assert by_week.loc[39, "actual"] == rfm["frequency"].sum()
    assert by_week.loc[78, "actual"] == rfm["frequency"].sum() + rfm["test_frequency"].sum()
    # equation (9): E[X(t)] of a new customer, summed over the cohort at the calibration end
    est = map_fit.params.set_index("parameter")["estimate"]
    r, alpha, a, b = (est[k] for k in ("r", "alpha", "a", "b"))
    t = rfm["T"].to_numpy()
    ex = (
        (a + b - 1)
        / (a - 1)
        * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))
    )
    assert by_week.loc[39, "expected"] == pytest.approx(ex.sum(), rel=1e-6)
    assert np.all(np.diff(curve["expected"]) >= 0)
    # the model tracks the holdout within 10% at week 78 (the published figure's visual fit)
    assert by_week.loc[78, "expected"] == pytest.approx(by_week.loc[78, "actual"], rel=0.1)


def test_p_alive_matrix_is_monotone(map_fit):
    grid = p_alive_matrix(map_fit, max_frequency=5, n_recency=10)
    one = grid[grid["frequency"] == 3].sort_values("recency")["p_alive"].to_numpy()
    assert np.all(np.diff(one) >= 0)  # a later last purchase: more likely alive
    assert (grid.loc[grid["frequency"] == 0, "p_alive"] == 1).all()  # BG/NBD: never dropped out


@pytest.mark.slow
def test_gamma_gamma_map_reproduces_fader_hardie(rfm):
    fit = fit_repeat_purchases(rfm, method="map")
    est = fit.params.set_index("parameter")["estimate"]
    for name, published in PUBLISHED_GAMMA_GAMMA.items():
        assert est[name] == pytest.approx(published, rel=0.02), name
    value = fit.customers["expected_value"]
    assert np.allclose(value, fit.customers["expected_purchases"] * fit.customers["expected_spend"])


@pytest.mark.slow
def test_bgnbd_mcmc_posterior_means_beside_the_published_values(rfm):
    """NUTS with flat priors: the published MLE inside every 90% interval; r and α's posterior
    means near it. a and b have right-skewed posteriors (their means lie 20–30% above the MLE
    on this sample), so only their intervals are checked."""
    fit = fit_repeat_purchases(rfm, method="mcmc", draws=1000, tune=1000, chains=2, seed=1)
    params = fit.params.set_index("parameter")
    published = {**PUBLISHED_BGNBD_CDNOW, **PUBLISHED_GAMMA_GAMMA}
    for name, value in published.items():
        row = params.loc[name]
        assert row["lo"] < value < row["hi"], name
        assert row["r_hat"] < 1.02, name
    for name in ("r", "alpha"):
        assert params.loc[name, "estimate"] == pytest.approx(published[name], rel=0.05), name
    c = fit.customers
    for col in ("p_alive", "expected_purchases", "expected_value"):
        assert (c[col + "_lo"] <= c[col] + 1e-9).all() and (c[col] <= c[col + "_hi"] + 1e-9).all()


@pytest.mark.slow
def test_pareto_nbd_map_reproduces_fader_hardie_lee(sample, rfm):
    fit = fit_repeat_purchases(rfm, model="pnbd", method="map", value=False)
    est = fit.params.set_index("parameter")["estimate"]
    for name, published in PUBLISHED_PNBD.items():
        assert est[name] == pytest.approx(published, rel=0.02), name
    curve = tracking_curve(sample, fit, CDNOW_CALIBRATION_END, CDNOW_HOLDOUT_END)
    week78 = curve.set_index("week").loc[78]
    assert week78["expected"] == pytest.approx(week78["actual"], rel=0.1)
