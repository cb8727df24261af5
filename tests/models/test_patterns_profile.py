"""pattern_profile: what each pattern converts, how fast, and who follows it (issue 20).

Truth is planted in hand-built journeys tables: conversion rates and duration distributions per
pattern, a pattern over-represented in one segment; the intervals are compared with scipy's
Jeffreys interval, with the planted values over many seeds, and with counts done by pandas.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.errors import DataError
from analysis.models.patterns.profile import default_attributes, pattern_profile


def _journeys(n: int, rng: np.random.Generator, **cols) -> pd.DataFrame:
    base = {
        "journey_id": [f"j{i}" for i in range(n)],
        "person_id": np.arange(n),
        "converted": np.zeros(n, bool),
        "outcome": "dropoff",
        "duration_days": rng.exponential(5.0, n),
        "stages": "See > Think",
        "channels": "email > direct",
    }
    return pd.DataFrame(base | cols)


def _membership(journeys: pd.DataFrame, z: np.ndarray, p: np.ndarray | None = None) -> pd.DataFrame:
    m = pd.DataFrame({"journey_id": journeys["journey_id"], "archetype": z})
    if p is not None:
        for i in range(p.shape[1]):
            m[f"p_{i}"] = p[:, i]
    return m


def test_hard_labels_give_the_jeffreys_interval_of_rate_and_share():
    rng = np.random.default_rng(0)
    n = 900
    z = rng.integers(0, 3, n)
    conv = rng.random(n) < np.array([0.1, 0.3, 0.6])[z]
    outcome = np.where(conv, "converted", np.where(rng.random(n) < 0.2, "open", "dropoff"))
    j = _journeys(n, rng, converted=conv, outcome=outcome, segment="all")
    out = pattern_profile(j, _membership(j, z), attributes=[]).outcomes
    for _, r in out.iterrows():
        mine = z == r["pattern"]
        closed = mine & (outcome != "open")
        x = int((mine & conv).sum())
        assert r["journeys"] == mine.sum() and r["closed"] == closed.sum() and r["conversions"] == x
        lo, hi = stats.beta.ppf([0.05, 0.95], x + 0.5, closed.sum() - x + 0.5)
        assert r["lower"] == pytest.approx(lo, abs=1e-9) and r["upper"] == pytest.approx(
            hi, abs=1e-9
        )
        assert r["rate"] == pytest.approx(x / closed.sum())
        slo, shi = stats.beta.ppf([0.05, 0.95], mine.sum() + 0.5, n - mine.sum() + 1.0)
        assert r["share_lower"] == pytest.approx(slo, abs=1e-9)
        assert r["share_upper"] == pytest.approx(shi, abs=1e-9)


def test_planted_over_representation_is_flagged_and_a_neutral_attribute_is_not():
    """Segment A follows pattern 0 half the time, segment B a fifth; region is independent."""
    rng = np.random.default_rng(3)
    seg = np.repeat(["A", "B"], [600, 400])
    z = (rng.random(1000) >= np.where(seg == "A", 0.5, 0.2)).astype(int)
    region = rng.choice(["north", "south"], 1000)
    j = _journeys(1000, rng, segment=seg, region=region)
    over = pattern_profile(j, _membership(j, z)).over_representation
    cell = over.set_index(["attribute", "value", "pattern"])
    assert cell.loc[("segment", "A", 0), "flag"] == "over"
    assert cell.loc[("segment", "B", 0), "flag"] == "under"
    assert cell.loc[("segment", "B", 1), "flag"] == "over"
    assert (over.loc[over["attribute"] == "region", "flag"] == "").all()
    # the point ratio is the crosstab's (counted independently)
    tab = pd.crosstab(seg, z)
    truth = (tab.div(tab.sum(axis=1), axis=0) / (tab.sum(axis=0) / tab.to_numpy().sum())).loc[
        "A", 0
    ]
    assert cell.loc[("segment", "A", 0), "ratio"] == pytest.approx(truth)
    assert set(over["attribute"]) == {"segment", "region", "first_channel"}


def test_ratio_intervals_cover_the_planted_ratio():
    """90% intervals of the planted ratio 0.5 / 0.38 cover it in most of 30 seeds."""
    truth = 0.5 / (0.6 * 0.5 + 0.4 * 0.2)
    hits = 0
    for seed in range(30):
        rng = np.random.default_rng(100 + seed)
        seg = np.repeat(["A", "B"], [300, 200])
        z = (rng.random(500) >= np.where(seg == "A", 0.5, 0.2)).astype(int)
        j = _journeys(500, rng, segment=seg)
        over = pattern_profile(
            j, _membership(j, z), attributes=["segment"], samples=1000, seed=seed
        )
        r = over.over_representation.set_index(["value", "pattern"]).loc[("A", 0)]
        hits += r["lower"] <= truth <= r["upper"]
    assert hits >= 24


def test_median_days_to_convert_and_its_interval_cover_the_planted_median():
    """Converted journeys of pattern 0 last Exp(mean 4) days, of pattern 1 Exp(mean 12)."""
    hits = np.zeros(2)
    for seed in range(25):
        rng = np.random.default_rng(seed)
        z = rng.integers(0, 2, 400)
        days = rng.exponential(np.array([4.0, 12.0])[z])
        j = _journeys(400, rng, converted=True, outcome="converted", duration_days=days)
        out = pattern_profile(j, _membership(j, z), attributes=[], draws=100, seed=seed).outcomes
        for k in (0, 1):
            r = out.iloc[k]
            med = np.quantile(days[z == k], 0.5, method="inverted_cdf")
            assert r["days_to_convert"] == pytest.approx(med)
            hits[k] += r["days_lower"] <= np.log(2) * (4.0, 12.0)[k] <= r["days_upper"]
    assert (hits >= 19).all()


def test_soft_membership_counts_in_proportion_and_widens_the_intervals():
    rng = np.random.default_rng(5)
    n = 1000
    z = rng.integers(0, 2, n)
    conv = rng.random(n) < np.array([0.2, 0.5])[z]
    j = _journeys(n, rng, converted=conv, outcome=np.where(conv, "converted", "dropoff"))
    sharp = np.eye(2)[z]
    fuzzy = 0.7 * sharp + 0.3 * sharp[:, ::-1]
    hard = pattern_profile(j, _membership(j, z, sharp), attributes=[]).outcomes
    soft = pattern_profile(j, _membership(j, z, fuzzy), attributes=[]).outcomes
    # one-hot probabilities are hard labels: the same intervals
    ref = pattern_profile(j, _membership(j, z), attributes=[]).outcomes
    assert np.allclose(hard[["lower", "upper"]], ref[["lower", "upper"]], atol=1e-9)
    # expected counts are the sums of the probabilities
    assert soft["journeys"].to_numpy() == pytest.approx(fuzzy.sum(0))
    assert soft["conversions"].to_numpy() == pytest.approx(fuzzy[conv].sum(0))
    assert ((soft["upper"] - soft["lower"]) > (ref["upper"] - ref["lower"])).all()


def test_bad_membership_is_a_clear_data_error():
    rng = np.random.default_rng(0)
    j = _journeys(10, rng)
    with pytest.raises(DataError, match="no row in the membership table"):
        pattern_profile(j, _membership(j.iloc[:8], np.zeros(8, int)))
    bad = np.full((10, 2), 0.7)
    with pytest.raises(DataError, match="do not sum to 1"):
        pattern_profile(j, _membership(j, np.zeros(10, int), bad).assign(archetype=[0, 1] * 5))
    with pytest.raises(DataError, match="lacks column"):
        pattern_profile(j, _membership(j, np.zeros(10, int)), attributes=["nope"])


def test_default_attributes_skip_ids_and_wide_columns():
    rng = np.random.default_rng(0)
    j = _journeys(50, rng, segment=["a", "b"] * 25, region="x", email=[f"e{i}" for i in range(50)])
    assert default_attributes(j) == ["segment", "first_channel"]


def test_journeys_without_a_pattern_are_left_out_and_counted():
    rng = np.random.default_rng(1)
    j = _journeys(20, rng, segment=["a", "b"] * 10)
    labels = pd.DataFrame(
        {"journey_id": j["journey_id"], "cluster": pd.array([1, 2, None, 1] * 5, dtype="Int64")}
    )
    prof = pattern_profile(j, labels, pattern="cluster")
    assert prof.outcomes["journeys"].sum() == 15 and list(prof.outcomes["pattern"]) == [1, 2]
    assert prof.notes == ["5 journey(s) without a pattern left out"]


def test_a_pattern_no_journey_is_most_likely_to_follow_keeps_its_share():
    """A segment's journeys all lean to pattern 0; pattern 1 still gets its probability mass."""
    rng = np.random.default_rng(2)
    j = _journeys(100, rng)
    p = np.tile([0.8, 0.2], (100, 1))
    out = pattern_profile(j, _membership(j, np.zeros(100, int), p), attributes=[]).outcomes
    assert list(out["pattern"]) == [0, 1]
    assert out["journeys"].to_numpy() == pytest.approx([80.0, 20.0])
