"""Upsell as a stage (issue 21, item 3): rates per segment and what precedes the Care → Do move.

Truth: a hand-built touchpoint table for the rule, and ``analysis.synth``'s Care truth: every
upsell purchase (``truth.care.purchases.upsell``), the per-purchase upsell rate
(``truth.care.rates.upsell_rate``) and each customer's probability of upselling by the window
end given their planted BG/NBD draws (``truth.care.customers.p_upsell``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import stitch_identities, synth
from analysis.errors import DataError
from analysis.journeys.upsell import upsell_customers, upsell_precursors, upsell_rates

T0 = pd.Timestamp("2024-03-01", tz="UTC")


def _row(who, day, tp, conversion=False, stage="Care", **kw) -> dict:
    base = {"person_id": who, "timestamp": T0 + pd.Timedelta(days=day), "touchpoint": tp}
    return base | {"conversion": conversion, "stage": stage, "segment": kw.pop("segment", "x")} | kw


def _table() -> pd.DataFrame:
    rows = [
        _row("a", 0, "purchase", True, "Do", campaign="spring"),
        _row("a", 5, "purchase", True, "Do"),  # same product (no attribute): a repeat
        _row("a", 9, "survey"),
        _row("a", 10, "purchase", True, "Do", campaign="upsell"),  # upsell (day 10)
        _row("a", 20, "purchase", True, "Do", campaign="upsell"),  # a second upsell
        _row("b", 0, "purchase", True, "Do"),
        _row("b", 3, "support_ticket"),  # inside b's window (median delay 10 days)
        _row("b", 30, "survey"),  # outside it
        _row("b", 40, "purchase", True, "Do"),  # repeat
        _row("c", 0, "purchase", True, "Do", segment="y"),
        _row("c", 4, "upgrade", True, "Do", segment="y"),  # another touchpoint: upsell
        _row("d", -3, "site_visit", stage="Think"),  # never converts: not a customer
        _row("e", 1, "purchase", True, "Do", campaign="spring"),
        _row("e", 1, "purchase", True, "Do", campaign="upsell"),  # same time: not *later*
    ]
    return pd.DataFrame(rows)


def test_rule_on_a_hand_built_table() -> None:
    cust = upsell_customers(_table()).set_index("person")
    assert list(cust.index) == ["a", "b", "c", "e"]
    assert cust["upsold"].to_dict() == {"a": True, "b": False, "c": True, "e": False}
    assert cust["upsells"].to_dict() == {"a": 2, "b": 0, "c": 1, "e": 0}
    assert cust["later_conversions"].to_dict() == {"a": 3, "b": 1, "c": 1, "e": 0}
    assert cust.loc["a", "upsell_time"] == T0 + pd.Timedelta(days=10)
    rates = upsell_rates(_table()).set_index("segment")
    assert rates.loc["x", ["customers", "n", "upsold"]].tolist() == [3, 3, 1]
    assert rates.loc["x", "rate"] == pytest.approx(1 / 3)
    # Beta(1 + 1, 1 + 2): the 5% and 95% quantiles
    from scipy.stats import beta

    assert rates.loc["x", "lo"] == pytest.approx(beta.ppf(0.05, 2, 3))
    assert rates.loc["x", "hi"] == pytest.approx(beta.ppf(0.95, 2, 3))
    per_conv = upsell_rates(_table(), unit="conversion", by=None).set_index("group")
    assert per_conv.loc["all", ["n", "upsold"]].tolist() == [5, 3]
    # a product column, when present, is the attribute (campaign is then ignored)
    with_product = _table().assign(product="basic")
    assert upsell_customers(with_product)["upsells"].tolist() == [0, 0, 1, 0]


def test_precursors_on_a_hand_built_table() -> None:
    pre = upsell_precursors(_table(), by=None)
    # one upseller in 'all' with a window (a: days 0-10, c: days 0-4): a has a survey before it
    got = pre.set_index("touchpoint")
    assert got.loc["survey", "upsold"] == 2 and got.loc["survey", "share_upsold"] == 0.5
    # b and e: the window is the upsellers' median delay (7 days): b's ticket is in it
    assert got.loc["support_ticket", "share_not"] == 0.5
    assert got.loc["survey", "share_not"] == 0.0
    assert got.loc["survey", "ratio"] == pytest.approx((2 / 4) / (1 / 4))
    assert got["window_days"].iloc[0] == pytest.approx(7.0)


def test_errors_name_the_column() -> None:
    with pytest.raises(DataError, match="conversion"):
        upsell_rates(_table().drop(columns="conversion"))
    with pytest.raises(DataError, match="unit"):
        upsell_rates(_table(), unit="week")
    with pytest.raises(DataError, match="plan"):
        upsell_rates(_table(), product="plan")


@pytest.fixture(scope="module")
def care_data():
    events, truth = synth.generate(2500, seed=3, days=540.0, care=True)
    return stitch_identities(events), truth


def test_the_rule_finds_the_planted_upsells(care_data) -> None:
    events, truth = care_data
    cust = upsell_customers(events)
    c = truth.care.customers
    assert cust["upsells"].sum() == truth.care.purchases["upsell"].sum()
    assert cust["upsold"].sum() == (c["n_upsells"] > 0).sum()
    assert len(cust) == len(c)
    pre = upsell_precursors(events)
    # the planted precursor (a Care repeat_visit the day before every upsell) comes first
    assert (pre.groupby("segment")["touchpoint"].first() == "repeat_visit").all()


def _rates(seed: int, n: int):
    events, truth = synth.generate(n, seed=seed, days=540.0, care=True)
    events = stitch_identities(events)
    c = truth.care.customers
    return upsell_rates(events), upsell_rates(events, unit="conversion"), c, truth.care.rates


@pytest.mark.slow
def test_rates_recover_the_planted_rates_on_three_seeds() -> None:
    """Three seeds × 6,000 persons (about 20 s): the truth inside the 90% intervals."""
    hits, total = 0, 0
    for seed in (0, 1, 2):
        per_customer, per_conversion, c, rates = _rates(seed, 6000)
        expected = c.groupby("segment")["p_upsell"].mean()
        planted = rates.set_index("segment")["upsell_rate"]
        for table, truth_rate in ((per_customer, expected), (per_conversion, planted)):
            t = table.set_index("segment")
            big = t["n"] >= 300
            inside = (t["lo"] <= truth_rate[t.index]) & (truth_rate[t.index] <= t["hi"])
            hits += int(inside[big].sum())
            total += int(big.sum())
            # not absurdly wide: at most 4 binomial standard errors of the truth each side
            se = np.sqrt(truth_rate[t.index] * (1 - truth_rate[t.index]) / t["n"])
            assert ((t["hi"] - t["lo"])[big] < 4 * 1.645 * se[big] + 0.01).all()
    print(hits, total)
    assert total >= 15
    assert hits >= 0.8 * total, (hits, total)
