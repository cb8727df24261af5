"""Backtests on the real public data (analysis.predict.real_data), checked against the raw CSVs.

The fast tests check the splits with plain pandas on the raw files: a scored month's sessions
never train its forecast, every session of a scored month is scored once, the sessions read
are the sessions scored plus those trained on, no method sees the outcome; Olist's open leads
and their outcomes are the raw files' leads and deals at the cut-off. The slow ones run the
backtests of ``bench/forecast_real.py`` (Laplace fits) and hold issue 19's bar where it holds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.predict import real_data as rd

RAW_UCI = rd.UCI_DIR / "online_shoppers_intention.csv"
RAW_LEADS = rd.OLIST_DIR / "olist_marketing_qualified_leads_dataset.csv"
RAW_DEALS = rd.OLIST_DIR / "olist_closed_deals_dataset.csv"


@pytest.fixture(scope="module")
def uci() -> rd.UciData:
    return rd.read_uci()


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    """The raw CSV, with each row's session id (the adapter's cookie) and calendar month."""
    df = pd.read_csv(RAW_UCI)
    df["session_id"] = [f"uci-s{i:05d}" for i in range(1, len(df) + 1)]
    df["calendar"] = pd.to_datetime(df["Month"].str[:3], format="%b").dt.month
    return df


def _calendar(raw: pd.DataFrame, month: str) -> int:
    return int(raw.loc[raw["Month"] == month, "calendar"].iloc[0])


def test_uci_sessions_are_the_raw_file(uci, raw):
    s = uci.sessions.set_index("session_id").loc[raw["session_id"]]
    assert uci.rows_read == len(raw) == len(uci.sessions)
    np.testing.assert_array_equal(s["converted"].to_numpy(), raw["Revenue"].astype(int).to_numpy())
    for c in rd.UCI_NUMERIC:
        np.testing.assert_allclose(s[c].to_numpy(), raw[c].to_numpy(), err_msg=c)
    np.testing.assert_array_equal(s["Weekend"].to_numpy(), raw["Weekend"].astype(float).to_numpy())
    assert (s["segment"].to_numpy() == raw["VisitorType"].to_numpy()).all()
    assert (s["month"].to_numpy() == raw["Month"].to_numpy()).all()
    # UCI_MONTHS is calendar order, and holds every month of the file
    assert sorted(rd.UCI_MONTHS, key=lambda m: _calendar(raw, m)) == list(rd.UCI_MONTHS)
    assert set(raw["Month"]) == set(rd.UCI_MONTHS)


@pytest.mark.parametrize("month", rd.UCI_MONTHS[1:])
def test_a_month_split_trains_on_earlier_months_only(uci, raw, month):
    train, test = rd.uci_month_split(uci, month)
    m = _calendar(raw, month)
    train_ids, test_ids = set(train.rows["session_id"]), set(test.rows["session_id"])
    assert train_ids == set(raw.loc[raw["calendar"] < m, "session_id"])
    assert test_ids == set(raw.loc[raw["calendar"] == m, "session_id"])
    # rows read up to the month = rows trained on + rows scored; none in both
    assert len(train.rows) + len(test.rows) == int((raw["calendar"] <= m).sum())
    assert not train_ids & test_ids
    assert set(train.events["cookie_id"]) == train_ids
    calendar = dict(zip(raw["Month"], raw["calendar"], strict=False))
    assert (train.events["Month"].map(calendar) < m).all()


def test_every_scored_session_is_scored_once_without_its_outcome(uci, raw):
    seen: list[str] = []

    def spy(train, test):
        assert "converted" not in test.columns  # no method sees the outcome
        assert not set(test["session_id"]) & set(train.rows["session_id"])
        seen.extend(test["session_id"])
        return np.full(len(test), 0.5)

    keep: dict = {}
    table = rd.uci_backtest(
        uci, rd.UCI_TEST_MONTHS, methods={"base rate": rd.uci_base_rate, "spy": spy}, keep=keep
    )
    scored = raw[raw["Month"].isin(rd.UCI_TEST_MONTHS)]
    assert len(seen) == len(set(seen)) == len(scored)
    assert set(seen) == set(scored["session_id"])
    for month in rd.UCI_TEST_MONTHS:
        m = _calendar(raw, month)
        rows = table[(table["month"] == month) & (table["method"] == "spy")].iloc[0]
        assert rows["n"] == int((raw["calendar"] == m).sum())
        assert rows["positives"] == int(raw.loc[raw["calendar"] == m, "Revenue"].sum())
        assert rows["train_sessions"] == int((raw["calendar"] < m).sum())
        p, _ = keep[(month, "base rate")]
        assert p[0] == pytest.approx(raw.loc[raw["calendar"] < m, "Revenue"].mean())


def test_uci_markov_is_the_segment_rate_of_the_months_before(uci, raw):
    train, test = rd.uci_month_split(uci, "Aug")
    p = pd.Series(rd.uci_markov(train, test.rows), index=test.rows["segment"].to_numpy())
    before = raw[raw["calendar"] < _calendar(raw, "Aug")]
    rate = before.groupby("VisitorType")["Revenue"].agg(["mean", "size"])
    for segment, row in rate[rate["size"] >= 500].iterrows():  # the prior's pull is < 0.005
        assert p[segment].iloc[0] == pytest.approx(row["mean"], abs=0.005)
    assert p.groupby(level=0).nunique().max() == 1  # one probability per segment


def test_olist_open_leads_and_their_outcomes_are_the_raw_files():
    leads = pd.read_csv(RAW_LEADS, parse_dates=["first_contact_date"])
    deals = pd.read_csv(RAW_DEALS, parse_dates=["won_date"])
    won = deals.set_index("mql_id")["won_date"].reindex(leads["mql_id"]).to_numpy()
    events = rd.read_olist_events()
    assert len(events) == len(leads) + len(deals)  # nothing read is dropped
    splits = {}

    def spy(train, test):
        splits["train"], splits["test"] = train, test
        return np.full(len(test.open), train.base_rate)

    cut = pd.Timestamp(rd.OLIST_CUTOFFS[0])
    rd.olist_backtest(events, (str(cut.date()),), train_origins=1, methods={"spy": spy})
    horizon = pd.Timedelta(days=rd.OLIST_HORIZON_DAYS)
    for name, c in (("test", cut), ("train", cut - horizon)):
        open_ = (leads["first_contact_date"] <= c).to_numpy() & ~(won <= c)
        closes = open_ & (won > c) & (won <= c + horizon)
        split = splits[name]
        assert len(split.open) == int(open_.sum()), name
        assert int(split.open["converted_next"].sum()) == int(closes.sum()), name
    # the training outcomes were known at the scoring cut-off
    assert (splits["train"].cutoff + horizon) <= cut.tz_localize("UTC")


@pytest.mark.slow
def test_uci_bayes_beats_the_baselines_on_the_scored_months(uci):
    methods = rd.uci_methods(nuts=False)
    table = rd.uci_backtest(uci, rd.UCI_TEST_MONTHS, methods=methods)
    ll = table.pivot(index="month", columns="method", values="log_loss")
    assert (ll["bayes laplace"] < ll["markov"]).all()
    assert (ll["bayes laplace"] < ll["base rate"]).all()
    # issue 19's bar against the boosted baseline holds in Sep, Oct and Nov (not in Dec: below)
    for month in ("Sep", "Oct", "Nov"):
        assert ll.loc[month, "bayes laplace"] <= ll.loc[month, "boosted"], month
    # the months' own offsets are drawn into the intervals (predict.periods): the deciles'
    # observed rates are covered in Sep, Oct and Dec; November converts at 25% against the
    # training months' 2-21%, a shift past anything the spread of earlier months suggests
    covered = table.pivot(index="month", columns="method", values="decile_coverage")
    assert (covered.loc[["Sep", "Oct", "Dec"], "bayes laplace"] >= 0.8).all(), covered


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="December: the boosted classifier's log-loss is lower (0.2233 vs 0.2377 with every "
    "pair of numbers as an interaction, 0.2466 without); its trees' thresholds and higher-order "
    "interactions are not in the model",
)
def test_uci_bayes_is_no_worse_than_boosted_in_december(uci):
    model = rd.BayesMethod("laplace", model_config=rd.UCI_MODEL_CONFIG)
    methods = {"boosted": rd.uci_boosted, "bayes laplace": model}
    table = rd.uci_backtest(uci, ("Dec",), methods=methods).set_index("method")
    assert table.loc["bayes laplace", "log_loss"] <= table.loc["boosted", "log_loss"]


@pytest.mark.slow
def test_olist_bayes_beats_the_baselines_at_every_cut_off():
    table = rd.olist_backtest(rd.read_olist_events(), methods=rd.olist_methods(nuts=False))
    ll = table.pivot(index="cutoff", columns="method", values="log_loss")
    assert len(ll) == len(rd.OLIST_CUTOFFS)
    assert (ll["bayes laplace"] <= ll["boosted"]).all()
    assert (ll["bayes laplace"] < ll["markov"]).all()
    assert (ll["bayes laplace"] < ll["base rate"]).all()


def test_the_laplace_fit_reaches_its_mode_where_a_flag_nearly_separates_the_outcomes(uci):
    """UCI August with a 0/1 "PageValues > 0" column beside PageValues: full Newton steps
    overshot there and returned a wrong fit (log-loss 3.8) without a sign; with step halving
    the fit reaches its mode and forecasts as well as without the flag."""
    from sklearn.metrics import log_loss

    from analysis.predict import JourneyForecastModel

    train, test = rd.uci_month_split(uci, "Aug")
    numeric = (*rd.UCI_NUMERIC, "PageValues_pos")
    tr, te = (
        s.rows.assign(PageValues_pos=(s.rows["PageValues"] > 0).astype(float))
        for s in (train, test)
    )
    table = rd.uci_features(tr, numeric=numeric, categories=("TrafficType",))
    table["converted"] = tr["converted"].to_numpy()
    table["segment"] = tr["segment"].to_numpy()
    model = JourneyForecastModel(table)
    model.fit(method="laplace")
    levels = {"TrafficType": model.design.categories["TrafficType"]}
    x = rd.uci_features(te, numeric=numeric, categories=("TrafficType",), levels=levels)
    x["segment"] = te["segment"].to_numpy()
    p = model.predict(x)["p"]
    assert log_loss(te["converted"], p) < 0.37  # 0.348 here; 0.338 without the flag


def test_markov_falls_back_to_the_base_rate_when_no_visit_has_ended():
    """Olist at 2018-02-01: its training cut-off (60 days before) has no deal yet, so the chain
    has no exit to learn from; the baseline says the base rate instead of stopping the run."""
    from analysis.predict import base_rate_forecast, markov_forecast, run_backtest
    from analysis.sources.olist import JOURNEY_SETTINGS

    events = rd.read_olist_events()
    table = run_backtest(
        events,
        ["2018-02-01"],
        horizon_days=60,
        methods={"base rate": base_rate_forecast, "markov": markov_forecast},
        inactivity_days=float(JOURNEY_SETTINGS["inactivity_days"]),
    ).set_index("method")
    assert table.loc["markov", "log_loss"] == table.loc["base rate", "log_loss"]
