"""The Care option of the generator (issue 21): repeat purchases, spend, Care touchpoints, upsell.

Checks against independent truth: the BG/NBD expectation (Fader, Hardie & Lee 2005, written
here) and the conditional one of the recorded per-customer parameters, the Gamma-Gamma means,
the planted Care effects as they show in the event table, the schema, and that the option off
(or the rows it adds removed) leaves the generator's output unchanged.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from scipy.special import hyp2f1

from analysis import read_events, synth
from analysis.synth.care import DEFAULT_CARE

N, SEED, DAYS = 8000, 11, 540.0
NO_EFFECTS = {
    "effects": {
        "fast_ticket_rate_multiplier": 1.0,
        "slow_ticket_rate_multiplier": 1.0,
        "onboarding_b_multiplier": 1.0,
    }
}


@pytest.fixture(scope="module")
def planted():
    """Events and truth with the default Care effects over 540 days."""
    return synth.generate(N, seed=SEED, days=DAYS, care=True)


@pytest.fixture(scope="module")
def plain():
    """Events and truth with every Care effect set to 1 (pure BG/NBD per segment)."""
    return synth.generate(N, seed=SEED + 1, days=DAYS, care=NO_EFFECTS)


def bgnbd_expected(t, r, alpha, a, b):
    """E[X(t)] of the BG/NBD model, Fader, Hardie & Lee (2005), eq. 9."""
    t = np.asarray(t, float)
    z = t / (alpha + t)
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, z))


def _csv_hash(events: pd.DataFrame) -> str:
    return hashlib.sha256(events.to_csv(index=False).encode()).hexdigest()


def test_option_off_is_byte_identical():
    base = synth.generate(600, seed=4)[0]
    assert _csv_hash(synth.generate(600, seed=4, care=False)[0]) == _csv_hash(base)
    assert _csv_hash(synth.generate(600, seed=4, care=None)[0]) == _csv_hash(base)


def test_care_rows_removed_leave_the_journey_process_unchanged():
    # the Care stream is separate: with p_repeat=0 on both sides, the acquisition rows agree
    without = synth.generate(600, seed=4, p_repeat=0.0)[0]
    events, truth = synth.generate(600, seed=4, p_repeat=0.0, care=True)
    assert len(events) > len(without)
    acquisition = events[(truth.event_journey != -1).to_numpy()].reset_index(drop=True)
    cols = [c for c in events.columns if c != "event_id"]
    pd.testing.assert_frame_equal(acquisition[cols], without[cols])


def test_repeat_counts_match_the_bgnbd_expectation(plain):
    _, truth = plain
    c = truth.care.customers
    assert len(c) > 1500
    laws = truth.care.bgnbd.set_index("segment").loc[c["segment"]]
    expected_each = bgnbd_expected(c["T"], *(laws[k].to_numpy() for k in ("r", "alpha", "a", "b")))
    diff = c["n_repeat"] - expected_each
    assert abs(diff.mean()) < 4 * diff.std() / np.sqrt(len(c))  # every segment together
    for g, law in truth.care.bgnbd.set_index("segment").iterrows():
        seg = c[c["segment"] == g]
        if len(seg) < 100:
            continue
        expected = bgnbd_expected(seg["T"], law.r, law.alpha, law.a, law["b"]).mean()
        se = seg["n_repeat"].std() / np.sqrt(len(seg))
        assert abs(seg["n_repeat"].mean() - expected) < 4 * se, (
            g,
            seg["n_repeat"].mean(),
            expected,
        )
        # the recorded draws follow the segment's laws
        assert abs(seg["lam"].mean() - law.r / law.alpha) < 4 * seg["lam"].std() / np.sqrt(len(seg))
        assert abs(seg["p"].mean() - law.a / (law.a + law["b"])) < 4 * seg["p"].std() / np.sqrt(
            len(seg)
        )


def test_repeat_counts_match_the_recorded_lambda_and_p(planted):
    _, truth = planted
    c = truth.care.customers
    lam, p, T = c["lam"], c["p"], c["T"]
    conditional = (1 - np.exp(-lam * p * T)) / p  # E[X(T) | lambda, p] of the BG/NBD process
    diff = c["n_repeat"] - conditional
    assert abs(diff.mean()) < 4 * diff.std() / np.sqrt(len(c))
    # dropout: a customer is dead only after a repeat purchase, and dead ones stop buying
    dead = ~c["alive_at_end"]
    assert (c.loc[dead, "n_repeat"] >= 1).all()
    assert (c.loc[dead, "dropout_week"] < c.loc[dead, "T"]).all()


def test_spend_matches_the_gamma_gamma_means(planted):
    _, truth = planted
    c = truth.care.customers.set_index("person")
    buys = truth.care.purchases.join(c[["segment", "nu"]], on="person")
    for g, law in truth.care.gamma_gamma.set_index("segment").iterrows():
        b = buys[buys["segment"] == g]
        if len(b) < 200:
            continue
        # given nu, each spend is Gamma(p, rate nu): z * nu / p has mean 1 and variance 1/p
        ratio = b["revenue"] * b["nu"] / law.p
        assert abs(ratio.mean() - 1) < 4 / np.sqrt(law.p * len(b)), g
        # over customers, E[p / nu] = p gamma / (q - 1): compare the per-customer mean spends
        per_customer = b.groupby("person")["revenue"].mean()
        se = per_customer.std() / np.sqrt(len(per_customer))
        assert abs(per_customer.mean() - law.mean_spend) < 4 * se, g


def _from_events(events: pd.DataFrame, truth) -> pd.DataFrame:
    """Per customer, from the event table: tickets, resolution, onboarding, repeat purchases."""
    ev = events.assign(person=truth.event_person.to_numpy())
    buys = ev[ev["conversion"]]
    first = buys.groupby("person")["timestamp"].min()
    out = pd.DataFrame({"first": first})
    out["n_repeat"] = buys.groupby("person").size() - 1
    weeks = (truth.end - out["first"]).dt.total_seconds() / (7 * 86400)
    out["rate"] = out["n_repeat"] / weeks
    care = ev[ev["stage"] == "Care"]
    opened = care[care["touchpoint"] == "support_ticket"].groupby("person")["timestamp"].min()
    resolved = care[care["touchpoint"] == "ticket_resolved"].groupby("person")["timestamp"].min()
    hours = (resolved - opened).dt.total_seconds() / 3600
    out["ticket"] = np.where(
        hours.reindex(out.index) < 24,
        "fast",
        np.where(hours.reindex(out.index).notna(), "slow", "none"),
    )
    onboarded = care.loc[care["touchpoint"] == "onboarding", "person"].unique()
    out["onboarding"] = out.index.isin(onboarded)
    return out


def test_care_effects_show_in_the_events_in_the_planted_direction(planted):
    events, truth = planted
    d = _from_events(events, truth)
    rate = d.groupby("ticket")["rate"].mean()
    assert rate["fast"] > rate["none"] > rate["slow"], rate
    # onboarding lowers the dropout probability: onboarded customers buy more per week
    by_onboarding = d.groupby("onboarding")["rate"].mean()
    assert by_onboarding[True] > by_onboarding[False]
    # the recorded rates carry the planted multipliers (up to sampling error of lambda0)
    c = truth.care.customers
    effects = truth.care.effects.set_index(["effect", "parameter"])
    # alpha_i = alpha * exp(-coefficient): E[lambda] scales by exp(coefficient)
    eff = np.exp(effects["coefficient"]).xs("lambda", level="parameter")
    none = c[~c["ticket"]]["lam"]
    for kind, mask in (
        ("fast_ticket", c["ticket_fast"]),
        ("slow_ticket", c["ticket"] & ~c["ticket_fast"]),
    ):
        ratio = c.loc[mask, "lam"].mean() / none.mean()
        assert abs(np.log(ratio) - np.log(eff[kind])) < 0.25, (kind, ratio)
    # the effects table is the option's
    assert np.isclose(eff["fast_ticket"], DEFAULT_CARE["effects"]["fast_ticket_rate_multiplier"])
    b_mult = effects.loc[("onboarding", "b"), "multiplier"]
    assert b_mult == DEFAULT_CARE["effects"]["onboarding_b_multiplier"]
    assert effects.loc[("onboarding", "a"), "coefficient"] == 0
    # the onboarded draw p from Beta(a, b * multiplier): their mean p is a / (a + b * multiplier)
    laws = truth.care.bgnbd.set_index("segment").loc[c["segment"]]
    a, b = laws["a"].to_numpy(), laws["b"].to_numpy() * np.where(c["onboarding"], b_mult, 1.0)
    diff = c["p"].to_numpy() - a / (a + b)
    assert abs(diff.mean()) < 4 * diff.std() / np.sqrt(len(c))
    on = c["onboarding"].to_numpy()
    assert c["p"][on].mean() < c["p"][~on].mean()


def test_truth_counts_agree_with_the_events(planted):
    events, truth = planted
    d = _from_events(events, truth)
    c = truth.care.customers.set_index("person")
    assert set(c.index) == set(d.index)
    assert (d["n_repeat"] == c.loc[d.index, "n_repeat"]).all()
    assert (truth.persons.set_index("person")["n_events"].sum()) == len(events)
    buys = truth.care.purchases.set_index("event_id")
    rows = events.set_index("event_id").loc[buys.index]
    assert (rows["touchpoint"] == "purchase").all() and (rows["stage"] == "Do").all()
    assert np.allclose(rows["revenue"], buys["revenue"])
    assert (rows["timestamp"] < truth.end).all()
    # distinct purchase days after the first purchase's day: what a daily RFM summary counts
    conv = events["conversion"].to_numpy()
    ev = events[conv].assign(person=truth.event_person.to_numpy()[conv])
    day = ev["timestamp"].dt.floor("D")
    first_day = day.groupby(ev["person"]).transform("min")
    days = ev[day != first_day].assign(day=day).drop_duplicates(["person", "day"])
    per_person = days.groupby("person").size().reindex(c.index, fill_value=0)
    assert (per_person == c["n_repeat_days"]).all()
    assert (c["n_repeat_days"] <= c["n_repeat"]).all()
    # resolution times: within a day exactly for the fast tickets
    t = c[c["ticket"]]
    assert ((t["resolution_days"] < 1) == t["ticket_fast"]).all()


def test_upsell_rate_and_its_care_to_do_move(planted):
    events, truth = planted
    buys = truth.care.purchases.join(
        truth.care.customers.set_index("person")["segment"], on="person"
    )
    rates = truth.care.rates.set_index("segment")["upsell_rate"]
    for g, b in buys.groupby("segment"):
        if len(b) < 200:
            continue
        se = np.sqrt(rates[g] * (1 - rates[g]) / len(b))
        assert abs(b["upsell"].mean() - rates[g]) < 4 * se, g
    # every upsell purchase follows a Care repeat_visit then a Do add_to_cart of the same person
    ev = events.assign(person=truth.event_person.to_numpy())
    up = ev[ev["campaign"] == "upsell"]
    assert len(up) == 3 * int(buys["upsell"].sum())
    for _, g in list(up.groupby("person"))[:50]:
        seq = list(zip(g["stage"], g["touchpoint"], strict=True))
        assert seq[:3] == [("Care", "repeat_visit"), ("Do", "add_to_cart"), ("Do", "purchase")]


def test_every_care_row_passes_the_schema(tmp_path):
    events, truth = synth.generate(1500, seed=2, days=365, care=True)
    path = tmp_path / "care.csv"
    events.to_csv(path, index=False)
    loaded = read_events(path)
    assert len(loaded.quarantine) == 0
    assert len(loaded.events) == len(events)
    assert loaded.events["event_id"].is_unique
    care = loaded.events[(truth.event_journey == -1).to_numpy()]
    assert set(care["stage"]) == {"Care", "Do"}
    assert set(care.loc[care["stage"] == "Care", "touchpoint"]) >= {
        "onboarding",
        "support_ticket",
        "ticket_resolved",
        "survey",
    }
    assert care["sentiment"].between(-1, 1).sum() == care["touchpoint"].eq("survey").sum()
    assert events["timestamp"].is_monotonic_increasing


def test_bad_care_options_are_refused():
    with pytest.raises(ValueError, match="unknown keys"):
        synth.generate(50, seed=0, care={"bgnbd_typo": 1})
    with pytest.raises(ValueError, match="q > 1"):
        synth.generate(50, seed=0, care={"gamma_gamma": {"consumer": {"p": 1, "q": 1, "gamma": 1}}})


ACQUISITION = {
    "first_channel_rate": {"paid_search": 1.4, "social": 0.7},
    "touchpoints_rate_per_10": 0.8,
    "touchpoints_b_per_10": 1.5,
}


def test_acquisition_effects_scale_lambda_exactly_and_are_in_the_truth():
    """The same seed with and without the option: the same Gamma draws, lambda times the effect."""
    _, base = synth.generate(2500, seed=5, days=DAYS, care=True)
    _, acq = synth.generate(2500, seed=5, days=DAYS, care={"acquisition": ACQUISITION})
    c0, c1 = base.care.customers, acq.care.customers
    assert (c0["person"] == c1["person"]).all()
    assert (c0["first_channel"] == c1["first_channel"]).all()
    rate = ACQUISITION["first_channel_rate"]
    m = c1["first_channel"].map(rate).fillna(1.0) * 0.8 ** (c1["journey_touchpoints"] / 10)
    np.testing.assert_allclose(c1["lam"] / c0["lam"], m, rtol=1e-12)
    eff = acq.care.effects.set_index("pymc_marketing")
    assert eff.loc["purchase_coefficient_alpha[first_channel_paid_search]", "coefficient"] == (
        pytest.approx(np.log(1.4))
    )
    assert eff.loc["dropout_coefficient_b[journey_touchpoints]", "coefficient"] == (
        pytest.approx(np.log(1.5))
    )
    assert eff.loc["dropout_coefficient_a[journey_touchpoints]", "coefficient"] == 0
    assert len(base.care.effects) == 4  # the default truth is unchanged
    # the touchpoints are the true journey's: its events before (and with) the first purchase
    first_conv = acq.journeys[acq.journeys["converted"]].drop_duplicates("person")
    n = first_conv.set_index("person")["n_events"]
    assert (c1["journey_touchpoints"] == c1["person"].map(n)).all()
    with pytest.raises(ValueError, match="first_channel_rate"):
        synth.generate(50, seed=0, care={"acquisition": {"first_channel_rate": {"email": 0}}})


def test_p_upsell_matches_the_share_of_upsold_customers(planted):
    """The recorded P(an upsell by the window end) against the simulated upsells, per segment."""
    c = planted[1].care.customers
    for g, d in c.groupby("segment"):
        if len(d) < 300:
            continue
        share = (d["n_upsells"] > 0).mean()
        se = np.sqrt((d["p_upsell"] * (1 - d["p_upsell"])).sum()) / len(d)
        assert abs(share - d["p_upsell"].mean()) < 4 * se, g
