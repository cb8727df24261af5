"""Care touchpoints as BG/NBD covariates (issue 21, item 2).

Truth: a hand-built touchpoint table for the covariate rule; ``analysis.synth``'s Care truth
(``truth.care.customers``: onboarding, ticket, ticket_fast per customer; ``truth.care.effects``:
the planted coefficients under pymc-marketing's names); pymc-marketing's own ``BetaGeoNBD``
log-density for the BG/NBD likelihood written here with scipy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.errors import DataError
from analysis.models.care import rfm_summary
from analysis.models.care_covariates import (
    bgnbd_log_likelihood,
    calibration_table,
    care_covariates,
    fit_repeat_purchases_with_covariates,
    holdout_log_score,
    one_hot,
)
from analysis.synth import generate

T0 = pd.Timestamp("2024-03-01 10:00", tz="UTC")


def _row(who: str, hours: float, tp: str, conversion: bool = False, **kw) -> dict:
    base = {"customer_id": who, "timestamp": T0 + pd.Timedelta(hours=hours), "touchpoint": tp}
    return base | {"channel": kw.pop("channel", "email"), "conversion": conversion} | kw


def _table() -> pd.DataFrame:
    rows = [
        _row("a", -48, "ad_impression", channel="search"),
        _row("a", 0, "purchase", True, channel="direct"),
        _row("a", 5, "onboarding"),
        _row("a", 10, "support_ticket"),
        _row("a", 30, "ticket_resolved"),  # 20 h: fast
        _row("a", 60, "survey", sentiment=0.6),
        _row("b", 0, "purchase", True, channel="store"),
        _row("b", 10, "support_ticket"),
        _row("b", 40, "ticket_resolved"),  # 30 h: slow
        _row("b", 50, "survey", sentiment=-0.4),
        _row("b", 70, "survey", sentiment=-0.2),
        _row("c", 0, "purchase", True, channel="social"),
        _row("c", 100, "support_ticket"),  # open 20 h at `until` (120 h): unknown
        _row("d", 0, "purchase", True, channel="search"),
        _row("d", 10, "support_ticket"),  # open 110 h at `until`: slow
        _row("e", 0, "purchase", True, channel="search"),  # no Care row at all
        _row("f", -5, "onboarding"),  # before the first purchase: not Care of this customer
        _row("f", 0, "purchase", True),
    ]
    return pd.DataFrame(rows)


def test_care_covariates_rule_on_a_hand_built_table() -> None:
    cov = care_covariates(_table(), until=T0 + pd.Timedelta(hours=120)).set_index("customer_id")
    assert list(cov.index) == ["a", "b", "c", "d", "e", "f"]  # nobody dropped
    assert cov["onboarding"].to_dict() == {"a": 1, "b": 0, "c": 0, "d": 0, "e": 0, "f": 0}
    assert cov["fast_ticket"].to_dict() == {"a": 1, "b": 0, "c": 0, "d": 0, "e": 0, "f": 0}
    assert cov["slow_ticket"].to_dict() == {"a": 0, "b": 1, "c": 0, "d": 1, "e": 0, "f": 0}
    assert cov["open_ticket"].to_dict() == {"a": 0, "b": 0, "c": 1, "d": 0, "e": 0, "f": 0}
    assert cov.loc["b", "sentiment_mean"] == pytest.approx(-0.3)
    assert cov.loc["e", "sentiment_mean"] == 0 and cov.loc["e", "feedback"] == 0
    assert cov.loc["a", "first_channel"] == "search" and cov.loc["a", "journey_touches"] == 1
    # at 30 h a's ticket is resolved (fast), b's is open 20 h: unknown yet
    early = care_covariates(_table(), until=T0 + pd.Timedelta(hours=30)).set_index("customer_id")
    assert early.loc["a", "fast_ticket"] == 1 and early.loc["b", "open_ticket"] == 1
    assert early.loc["a", "feedback"] == 0


def test_care_covariates_agree_with_the_generator_truth() -> None:
    events, truth = generate(6000, seed=3, days=540.0, care=True)
    events = events.assign(customer_id=events["event_id"].map(truth.event_person))
    cov = care_covariates(events).set_index("customer_id")
    c = truth.care.customers.set_index("person")
    assert set(cov.index) == set(c.index)
    c = c.reindex(cov.index)
    slow = (c["ticket"] & ~c["ticket_fast"]).astype(float)
    # only Care rows cut off by the window end can disagree
    assert (cov["onboarding"] == c["onboarding"].astype(float)).mean() > 0.99
    assert (cov["fast_ticket"] == c["ticket_fast"].astype(float)).mean() > 0.99
    assert (cov["slow_ticket"] == slow).mean() > 0.99
    with_fb = c["feedback_sentiment"].notna() & (cov["feedback"] == 1)
    assert np.allclose(cov.loc[with_fb, "sentiment_mean"], c.loc[with_fb, "feedback_sentiment"])


def test_bgnbd_log_likelihood_matches_pymc_marketing() -> None:
    import pymc as pm
    from pymc_marketing.clv.distributions import BetaGeoNBD

    rng = np.random.default_rng(0)
    n = 50
    T = rng.uniform(5, 60, n)
    x = rng.integers(0, 8, n).astype(float)
    tx = np.where(x > 0, rng.uniform(0, 1, n) * T, 0.0)
    r, alpha, a, b = 0.7, rng.uniform(2, 9, n), 0.8, rng.uniform(1, 5, n)
    ours = bgnbd_log_likelihood(x, tx, T, r, alpha, a, b)
    dist = BetaGeoNBD.dist(a=a, b=b, r=r, alpha=alpha, T=T)
    theirs = pm.logp(dist, np.stack([tx, x], axis=1)).eval()
    np.testing.assert_allclose(ours, theirs, rtol=1e-8)


def test_calibration_table_counts_the_gap() -> None:
    rng = np.random.default_rng(1)
    e = rng.gamma(2.0, 1.0, 2000)
    exact = calibration_table(e, e)
    assert exact.attrs["calibration_error"] == 0 and len(exact) == 10
    # a calibrated model's error on Poisson counts is of the order of the noise floor
    noisy = calibration_table(e, rng.poisson(e))
    assert 0.3 < noisy.attrs["calibration_error"] / noisy.attrs["noise_floor"] < 3
    assert exact["n"].sum() == 2000
    off = calibration_table(e, 1.2 * e)
    assert off.attrs["calibration_error"] == pytest.approx(0.2 * e.mean(), rel=1e-9)
    assert off.attrs["total_error"] == pytest.approx(1 - 1 / 1.2)


def test_one_hot_and_data_errors() -> None:
    frame = pd.DataFrame({"seg": ["x", "y", "x", None]})
    out = one_hot(frame, "seg")
    assert out.attrs["one_hot"]["seg"] == ["seg_missing", "seg_y"]
    assert out["seg_y"].tolist() == [0, 1, 0, 0]
    with pytest.raises(DataError, match="lacks"):
        care_covariates(_table().drop(columns="touchpoint"))
    rfm = pd.DataFrame(
        {"customer_id": ["a"], "frequency": [1.0], "recency": [2.0], "T": [5.0], "k": ["txt"]}
    )
    with pytest.raises(DataError, match="numeric"):
        fit_repeat_purchases_with_covariates(rfm, purchase_covariates=["k"])
    with pytest.raises(DataError, match="lacks"):
        fit_repeat_purchases_with_covariates(rfm, dropout_covariates=["nope"])


#: Planted acquisition effects for the slow study (as bench/care_recovery.py's ACQUISITION).
ACQUISITION = {
    "first_channel_rate": {"paid_search": 1.4, "social": 0.7},
    "touchpoints_b_per_10": 1.5,
}


def _synthetic(
    seed: int, persons: int, care: object = True
) -> tuple[pd.DataFrame, pd.DataFrame, list[str], object]:
    events, truth = generate(persons, seed=seed, days=540.0, care=care)
    events = events.assign(customer_id=events["event_id"].map(truth.event_person))
    tx = events[events["conversion"]].assign(
        date=lambda d: d["timestamp"].dt.tz_convert("UTC").dt.tz_localize(None)
    )
    start = pd.Timestamp(truth.start).tz_convert("UTC").tz_localize(None)
    end, cal_end = start + pd.Timedelta(days=539), start + pd.Timedelta(days=359)
    full = rfm_summary(tx, observation_end=end)
    days = truth.care.customers.set_index("person")["n_repeat_days"]
    assert (full["frequency"].to_numpy() == full["customer_id"].map(days).to_numpy()).all()
    cov = one_hot(care_covariates(events), "segment", reference="consumer")
    if care is not True:  # the acquisition journeys, as the journeys layer reads them
        from analysis.journeys import build_journeys
        from analysis.journeys.acquisition import acquisition_covariates, acquisition_journeys

        ev = events.assign(person_id=events["customer_id"])
        jr = build_journeys(ev, as_of=truth.end, inactivity_days=truth.inactivity_days)
        acq = acquisition_covariates(acquisition_journeys(jr), channels=["paid_search", "social"])
        cov = cov.merge(acq, on="customer_id", how="left", validate="one_to_one")
        # centred (coefficient unchanged): uncentred, it slows NUTS to its tree-depth limit
        cov["journey_touchpoints"] -= cov["journey_touchpoints"].mean()
    rfm = rfm_summary(tx, observation_end=end, calibration_end=cal_end)
    data = rfm.merge(cov, on="customer_id", how="left", validate="one_to_one")
    return data, full, cov.attrs["one_hot"]["segment"], truth


def test_map_fit_finds_the_planted_directions_and_beats_no_covariates() -> None:
    data, full, seg, truth = _synthetic(5, 6000)
    fit = fit_repeat_purchases_with_covariates(
        data,
        purchase_covariates=["fast_ticket", "slow_ticket", *seg],
        dropout_covariates=["onboarding", *seg],
    )
    eff = fit.effects.set_index("name")["coefficient"]
    true = truth.care.effects.set_index("pymc_marketing")["coefficient"]
    for name in (
        "purchase_coefficient_alpha[fast_ticket]",
        "purchase_coefficient_alpha[slow_ticket]",
    ):
        assert abs(eff[name] - true[name]) < 0.25, name
    # the dropout effect of onboarding needs more customers than a fast test: see the slow study
    assert {"dropout_coefficient_a[onboarding]", "dropout_coefficient_b[onboarding]"} <= set(
        eff.index
    )
    assert fit.effects["lo"].isna().all()  # MAP: no interval
    plain = fit_repeat_purchases_with_covariates(data)
    assert plain.effects.empty
    full_cal = full[full["customer_id"].isin(data["customer_id"])]
    gain = holdout_log_score(fit, full_cal).sum() - holdout_log_score(plain, full_cal).sum()
    assert gain > 0
    table = calibration_table(fit.customers["expected_purchases"], fit.customers["test_frequency"])
    assert table.attrs["calibration_error"] < 0.5


@pytest.mark.slow
def test_recovery_nuts_three_seeds() -> None:
    covered, cases, gains = 0, 0, []
    for seed in (0, 1, 2):
        data, full, seg, truth = _synthetic(seed, 12000)
        kw = {"method": "mcmc", "draws": 300, "tune": 300, "chains": 2, "seed": seed}
        fit = fit_repeat_purchases_with_covariates(
            data,
            purchase_covariates=["fast_ticket", "slow_ticket", *seg],
            dropout_covariates=["onboarding", *seg],
            **kw,
        )
        plain = fit_repeat_purchases_with_covariates(data, **kw)
        eff = fit.effects.set_index("name")
        for _, row in truth.care.effects.iterrows():
            lo, hi = eff.loc[row["pymc_marketing"], ["lo", "hi"]]
            covered += int(lo <= row["coefficient"] <= hi)
            cases += 1
        full_cal = full[full["customer_id"].isin(data["customer_id"])]
        gains.append(
            holdout_log_score(fit, full_cal).sum() - holdout_log_score(plain, full_cal).sum()
        )
    assert covered >= 0.8 * cases
    assert all(g > 0 for g in gains)


def test_dropout_on_b_fixes_the_a_coefficients_at_zero() -> None:
    """dropout_on="b": one coefficient per dropout covariate (b), a's held at exactly 0."""
    rng = np.random.default_rng(0)
    n = 300
    data = pd.DataFrame({"customer_id": np.arange(n), "T": 30.0, "z": rng.integers(0, 2, n) * 1.0})
    data["frequency"] = rng.poisson(2, n).astype(float)
    data["recency"] = np.where(data["frequency"] > 0, rng.uniform(0, 30, n), 0.0)
    fit = fit_repeat_purchases_with_covariates(data, dropout_covariates=["z"], dropout_on="b")
    assert fit.effects["name"].tolist() == ["dropout_coefficient_b[z]"]
    assert (fit.model.fit_result["dropout_coefficient_a"].values == 0).all()
    b = fit.draws()["b"][0]
    ratio = b[data["z"].to_numpy() == 1][0] / b[data["z"].to_numpy() == 0][0]
    assert ratio == pytest.approx(np.exp(fit.effects["coefficient"].iloc[0]))
    assert np.ptp(fit.draws()["a"][0]) == 0  # one a for everyone
    with pytest.raises(DataError, match="dropout_on"):
        fit_repeat_purchases_with_covariates(data, dropout_on="a")


@pytest.mark.slow
def test_recovery_with_acquisition_effects_nuts_three_seeds() -> None:
    """Care and acquisition effects (first channel, journey length) in their 90% intervals."""
    covered, cases, gains = 0, 0, []
    for seed in (0, 1, 2):
        data, full, seg, truth = _synthetic(seed, 12000, care={"acquisition": ACQUISITION})
        kw = {"method": "mcmc", "draws": 300, "tune": 300, "chains": 2, "seed": seed}
        fit = fit_repeat_purchases_with_covariates(
            data,
            purchase_covariates=[
                "fast_ticket",
                "slow_ticket",
                "first_channel_paid_search",
                "first_channel_social",
                *seg,
            ],
            dropout_covariates=["onboarding", "journey_touchpoints", *seg],
            dropout_on="b",
            **kw,
        )
        plain = fit_repeat_purchases_with_covariates(data, **kw)
        eff = fit.effects.set_index("name")
        true = truth.care.effects
        true = true[true["pymc_marketing"].isin(eff.index)]  # a's are fixed at 0: not estimated
        assert len(true) == 6
        for _, row in true.iterrows():
            lo, hi = eff.loc[row["pymc_marketing"], ["lo", "hi"]]
            covered += int(lo <= row["coefficient"] <= hi)
            cases += 1
        full_cal = full[full["customer_id"].isin(data["customer_id"])]
        gains.append(
            holdout_log_score(fit, full_cal).sum() - holdout_log_score(plain, full_cal).sum()
        )
    assert covered >= 0.8 * cases
    assert all(g > 0 for g in gains)
