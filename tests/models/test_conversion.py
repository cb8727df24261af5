"""ConversionModel and conversion_counts: inputs, posterior summaries on hand-made draws (no MCMC),
parameter recovery and the real data (slow)."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

import analysis
from analysis import config
from analysis.models.conversion import ConversionModel, conversion_counts
from analysis.schema import DataError


# ----------------------------------------------------------------------------- counts
def test_conversion_counts_by_hand():
    t = pd.DataFrame(
        {
            "channels": ["email > direct", "email", "social", "social > email", None],
            "page": ["a", "a", "b", None, "b"],
            "converted": [True, False, True, False, False],
        }
    )
    c = conversion_counts(t, ["first_channel", "page"])
    assert c.to_dict("records") == [
        {"first_channel": "(missing)", "page": "b", "n": 1, "conversions": 0},
        {"first_channel": "email", "page": "a", "n": 2, "conversions": 1},
        {"first_channel": "social", "page": "(missing)", "n": 1, "conversions": 0},
        {"first_channel": "social", "page": "b", "n": 1, "conversions": 1},
    ]
    assert c["n"].sum() == 5 and c["conversions"].sum() == 2
    with pytest.raises(DataError, match="not found"):
        conversion_counts(t, "nope")
    with pytest.raises(DataError, match="true/false"):
        conversion_counts(t.assign(converted=[1, 0, 2, 0, 0]), "page")


def test_model_input_errors():
    good = pd.DataFrame({"g": ["a", "b"], "n": [10, 5], "conversions": [3, 1]})
    with pytest.raises(DataError, match="missing column"):
        ConversionModel(good, effects=["h"])
    bad = good.assign(conversions=[11, -1])
    with pytest.raises(DataError) as e:
        ConversionModel(bad, effects="g")
    assert "not whole numbers" in str(e.value)
    with pytest.raises(DataError, match="more conversions than trials"):
        ConversionModel(good.assign(conversions=[11, 1]), effects="g")
    with pytest.raises(DataError, match="empty"):
        ConversionModel(good.iloc[:0], effects="g")


def _hand_fit(model: ConversionModel, p: np.ndarray) -> None:
    """Give the model a posterior of cell probabilities ``p`` (chain, draw, cell) without MCMC."""
    c, d, _ = p.shape
    post = {"intercept": np.zeros((c, d)), "kappa": np.full((c, d), 10.0), "p": p, "mu": p}
    for e in model.effects:
        post[f"sigma_{e}"] = np.full((c, d), 0.5)
        post[f"z_{e}"] = np.zeros((c, d, len(model.levels[e])))
    model.idata = az.from_dict(posterior=post, dims={"p": ["cell"], "mu": ["cell"]})


def test_rates_weight_cells_by_trials():
    counts = pd.DataFrame(
        {
            "channel": ["x", "x", "y"],
            "page": ["p1", "p2", "p1"],
            "n": [10, 30, 20],
            "conversions": [1, 6, 10],
        }
    )
    m = ConversionModel(counts, effects="channel", cells="page")
    p = np.broadcast_to(np.array([0.1, 0.2, 0.5]), (2, 3, 3)).copy()
    p[1] += 0.01  # a second chain a little higher: the mean moves by half of it
    _hand_fit(m, p)
    r = m.rates("channel").set_index("channel")
    assert r.loc["x", "mean"] == pytest.approx((10 * 0.1 + 30 * 0.2) / 40 + 0.005)
    assert r.loc["y", "mean"] == pytest.approx(0.505)
    assert r.loc["x", "raw_rate"] == pytest.approx(7 / 40) and r.loc["x", "n"] == 40
    page = m.rates("page").set_index("page")
    assert page.loc["p1", "mean"] == pytest.approx((10 * 0.1 + 20 * 0.5) / 30 + 0.005)
    overall = m.rates()
    assert overall["n"].item() == 60 and overall["conversions"].item() == 17
    assert overall["mean"].item() == pytest.approx((1 + 6 + 10) / 60 + 0.005)


def _headline_model():
    # channel x: pages p1 (10 trials), p2 (30); channel y: p1 (20); channel z: 5 trials (too few)
    counts = pd.DataFrame(
        {
            "channel": ["x", "x", "y", "z"],
            "page": ["p1", "p2", "p1", "p3"],
            "n": [10, 30, 20, 5],
            "conversions": [1, 6, 10, 5],
        }
    )
    m = ConversionModel(counts, effects="channel", cells="page")
    # 2 chains x 3 draws of the four cells' p (cells sorted by channel, page as above)
    p = np.array(
        [
            [[0.10, 0.20, 0.50, 0.9], [0.12, 0.22, 0.40, 0.9], [0.08, 0.18, 0.45, 0.9]],
            [[0.11, 0.40, 0.30, 0.9], [0.09, 0.21, 0.55, 0.9], [0.10, 0.19, 0.60, 0.9]],
        ]
    )
    _hand_fit(m, p)
    return m, p


def test_conversion_headline_by_hand():
    from analysis.models.conversion import conversion_headline

    m, p = _headline_model()
    journeys = pd.DataFrame(
        {"converted": [True, True, False, True], "duration_days": [2.0, 10.0, 99.0, 4.0]}
    )
    h = conversion_headline(m, journeys, channel="channel", min_journeys=10, prob=0.5, p_min=0.8)
    # the segment's rate per draw: every cell's p weighted by its trials (65 in all)
    overall = (10 * p[..., 0] + 30 * p[..., 1] + 20 * p[..., 2] + 5 * p[..., 3]).ravel() / 65
    assert h["journeys"] == 65 and h["conversions"] == 22
    assert h["conversion_rate"] == pytest.approx(overall.mean())
    assert h["conversion_lower"] == pytest.approx(np.quantile(overall, 0.25))
    assert h["conversion_upper"] == pytest.approx(np.quantile(overall, 0.75))
    assert h["conversion_prob"] == 0.5
    assert (
        h["median_days_to_conversion"] == 4.0
    )  # of 2, 10, 4: the unconverted 99 is not a time to conversion
    # candidates x (40 trials) and y (20); z converts at 0.9 but has 5 < 10 trials
    x = ((10 * p[..., 0] + 30 * p[..., 1]) / 40).ravel()
    y = p[..., 2].ravel()
    assert y.mean() > x.mean()
    assert h["highest_rate_channel"] == "y" and h["highest_rate_channel_journeys"] == 20
    assert h["highest_rate_channel_rate"] == pytest.approx(y.mean())
    assert (
        h["highest_rate_channel_p_best"] == pytest.approx(np.mean(y > x)) == pytest.approx(5 / 6)
    )  # x wins one draw
    assert h["highest_rate_channel_lower"] == pytest.approx(np.quantile(y, 0.25))
    # y is best in 5 of 6 draws: named when 0.8 suffices, not at the default 0.9 (a note instead)
    strict = conversion_headline(m, channel="channel", min_journeys=10)
    assert "highest_rate_channel" not in strict and strict["highest_rate_channel_candidate"] == "y"
    assert strict["highest_rate_channel_note"].startswith(
        "no channel stands out: y has the highest rate in 83%"
    )
    # with z a candidate it is named; without a channel, no such keys
    assert conversion_headline(m, channel="channel", min_journeys=5)["highest_rate_channel"] == "z"
    bare = conversion_headline(m)
    assert "highest_rate_channel" not in bare and "median_days_to_conversion" not in bare
    # no channel with enough journeys: nothing named rather than a noisy winner
    assert "highest_rate_channel" not in conversion_headline(m, channel="channel", min_journeys=100)
    # one candidate (x alone has 40 trials) is best in every draw, trivially: not named
    alone = conversion_headline(m, channel="channel", min_journeys=30, p_min=0.5)
    assert "highest_rate_channel" not in alone and alone["highest_rate_channel_note"].startswith(
        "no channel to compare"
    )


def test_model_effects_drop_single_level_effects():
    from analysis.models.conversion import model_effects

    c = pd.DataFrame(
        {
            "ch": ["a", "a", "b"],
            "vt": ["new", "old", "new"],
            "one": ["k"] * 3,
            "n": [3, 4, 0],
            "conversions": [1, 0, 0],
        }
    )
    # "b" has no trials: ch has one level with trials
    assert model_effects(c, ["ch", "vt", "one"]) == ["vt"]
    assert model_effects(c, ["vt"], min_levels=3) == []


def test_model_without_effects_pools_cells_towards_one_mean():
    counts = pd.DataFrame(
        {"page": ["p1", "p2", "p3"], "n": [10, 30, 20], "conversions": [1, 6, 10]}
    )
    m = ConversionModel(counts, effects=[], cells="page")
    assert m._check_vars == ["intercept", "kappa"]
    # the derived draws: one mean for every cell, p from its exact conditional
    post = {"intercept": np.zeros((2, 50)), "kappa": np.full((2, 50), 1e6)}
    idata = m._postprocess(az.from_dict(posterior=post))
    assert idata.posterior["mu"].shape == (2, 50, 3)
    assert float(idata.posterior["mu"].max()) == float(idata.posterior["mu"].min()) == 0.5
    # kappa huge: every cell's p sits at the common mean, whatever its own rate
    assert float(abs(idata.posterior["p"] - 0.5).max()) < 0.01
    # no effects and no cells: one cell of every trial
    one = ConversionModel(counts, effects=[])
    assert one.n.tolist() == [60] and one.y.tolist() == [17]
    assert not one.cell_spread and one._check_vars == ["intercept"]
    with pytest.raises(Exception, match="both as effect and as cells"):
        ConversionModel(counts, effects="page", cells="page")


def test_one_effect_without_cells_has_no_cell_spread():
    """A cell is a level: kappa would duplicate sigma, so the model is binomial-logit (p = mu)."""
    counts = pd.DataFrame(
        {"channel": ["a", "a", "b"], "n": [10, 30, 20], "conversions": [1, 6, 10]}
    )
    m = ConversionModel(counts, effects="channel")
    assert not m.cell_spread and m.n.tolist() == [40, 20]  # rows of one level are one cell
    assert "kappa" not in m._check_vars
    model = m.build_model()
    assert "kappa" not in model.named_vars and "sigma_channel" in model.named_vars
    # the likelihood is the binomial's: at intercept 0, sigma 1, z = (0, log 3) -> p = 1/2, 3/4
    point = {
        "intercept": 0.0,
        "sigma_channel_log__": 0.0,
        "z_channel": np.array([0.0, np.log(3.0)]),
    }
    got = model.compile_fn(model.potentiallogp, inputs=model.value_vars, on_unused_input="ignore")(
        point
    )
    assert float(got) == pytest.approx(
        7 * np.log(0.5) + 33 * np.log(0.5) + 10 * np.log(0.75) + 10 * np.log(0.25)
    )
    post = {
        "intercept": np.zeros((1, 2)),
        "sigma_channel": np.ones((1, 2)),
        "z_channel": np.zeros((1, 2, 2)),
    }
    idata = m._postprocess(az.from_dict(posterior=post, dims={"z_channel": ["level_channel"]}))
    assert np.array_equal(idata.posterior["p"].to_numpy(), idata.posterior["mu"].to_numpy())
    # with cells or two effects, the cells keep their spread
    assert ConversionModel(
        counts.assign(page=["p", "q", "p"]), effects="channel", cells="page"
    ).cell_spread


# ------------------------------------------------------------------------ recovery (slow)
def simulate(seed: int = 3):
    """Channels × visitor types crossed, landing pages within channels; known truth."""
    rng = np.random.default_rng(seed)
    ch = {"a": -1.0, "b": -2.0, "c": -2.6, "d": -1.5}
    vt = {"new": 0.4, "returning": -0.2}
    kappa = 40.0
    rows = []
    for c, bc in ch.items():
        for v, bv in vt.items():
            for k in range(40):
                n = int(rng.integers(2, 100))
                mu = expit(bc + bv)
                p = rng.beta(kappa * mu, kappa * (1 - mu))
                rows.append(
                    {
                        "channel": c,
                        "visitor": v,
                        "page": f"{c}{k}",
                        "n": n,
                        "conversions": int(rng.binomial(n, p)),
                        "p_true": p,
                    }
                )
    return pd.DataFrame(rows), ch, vt, kappa


@pytest.mark.slow
def test_parameter_recovery():
    data, ch, vt, kappa = simulate()
    m = ConversionModel(
        data,
        effects=["channel", "visitor"],
        cells="page",
        sampler_config={"draws": 1000, "tune": 1000, "chains": 4},
    )
    m.fit()
    assert m.check()["ok"].all()
    # the typical-cell rate per channel (visitor types at their mean) covers the truth
    lr = m.level_rates("channel").set_index("level")
    mean_v = np.mean(list(vt.values()))
    for c, bc in ch.items():
        truth = expit(bc + mean_v)
        assert lr.loc[c, "lower"] - 0.01 < truth < lr.loc[c, "upper"] + 0.01, (
            c,
            truth,
            lr.loc[c].to_dict(),
        )
    sp = m.spreads().set_index("parameter")
    # kappa (how alike the 320 cells are) is loosely identified: within a factor 1.5
    assert kappa / 1.5 < sp.loc["kappa: cells", "mean"] < kappa * 1.5
    # cell rates: 90% intervals cover most true p
    r = m.rates(["channel", "visitor", "page"]).merge(data, on=["channel", "visitor", "page"])
    cover = ((r["lower"] <= r["p_true"]) & (r["p_true"] <= r["upper"])).mean()
    assert 0.8 <= cover <= 0.98
    # pooling beats the raw rate on small cells (mean squared error over the cells of < 30 trials)
    small = r[r["n_x"] < 30]
    assert len(small) >= 20
    assert ((small["mean"] - small["p_true"]) ** 2).mean() < (
        (small["raw_rate"] - small["p_true"]) ** 2
    ).mean()


# ----------------------------------------------------------------------- real data (slow)
@pytest.mark.slow
def test_olist_conversion_by_channel_and_landing_page():
    from analysis.sources import read_olist
    from analysis.sources.olist import JOURNEY_SETTINGS

    leads = pd.read_csv(
        config.EXTERNAL_DIR / "olist_marketing_funnel/olist_marketing_qualified_leads_dataset.csv"
    )
    deals = pd.read_csv(
        config.EXTERNAL_DIR / "olist_marketing_funnel/olist_closed_deals_dataset.csv"
    )
    raw = leads.assign(
        converted=leads["mql_id"].isin(deals["mql_id"]),
        channel=leads["origin"].fillna("unknown").replace({"direct_traffic": "direct"}),
    )
    grand = raw["converted"].mean()

    ev = analysis.stitch_identities(
        read_olist(config.EXTERNAL_DIR / "olist_marketing_funnel").events
    )
    jr = analysis.build_journeys(ev, **JOURNEY_SETTINGS)
    counts = conversion_counts(jr.journeys, ["first_channel", "landing_page_id"])
    m = ConversionModel(
        counts,
        effects="first_channel",
        cells="landing_page_id",
        sampler_config={"draws": 1000, "tune": 1000, "chains": 4},
    )
    m.fit()
    assert m.check()["ok"].all()
    # channels with plenty of leads: posterior mean near the raw rate
    by_ch = m.rates("first_channel").set_index("first_channel")
    raw_ch = raw.groupby("channel")["converted"].agg(["size", "mean"])
    big = raw_ch[raw_ch["size"] >= 1000].index
    assert len(big) == 4
    for c in big:
        assert by_ch.loc[c, "mean"] == pytest.approx(raw_ch.loc[c, "mean"], abs=0.01), c
        assert by_ch.loc[c, "lower"] < raw_ch.loc[c, "mean"] < by_ch.loc[c, "upper"]
    assert by_ch["conversions"].sum() == 842
    # tiny landing pages (a lead or two, one channel): pulled from their raw rate towards their
    # channel, and so between the raw rate and the grand mean when the channel is near it
    pages = m.rates(["first_channel", "landing_page_id"])
    tiny = pages[(pages["n"] <= 2)].merge(
        raw_ch["mean"].rename("channel_rate"), left_on="first_channel", right_index=True
    )
    assert len(tiny) > 50
    moved = (tiny["mean"] - tiny["channel_rate"]).abs() < (
        tiny["raw_rate"] - tiny["channel_rate"]
    ).abs()
    assert moved.all()
    near = tiny[(tiny["channel_rate"] - grand).abs() < 0.02]
    lo = np.minimum(near["raw_rate"], grand) - 0.02
    hi = np.maximum(near["raw_rate"], grand) + 0.02
    assert ((near["mean"] > lo) & (near["mean"] < hi)).all()


@pytest.mark.slow
def test_uci_conversion_by_traffic_and_visitor_type():
    from analysis.sources import read_uci_online_shoppers
    from analysis.sources.uci import journey_settings

    raw = pd.read_csv(config.EXTERNAL_DIR / "uci_online_shoppers/online_shoppers_intention.csv")
    ev = analysis.stitch_identities(
        read_uci_online_shoppers(config.EXTERNAL_DIR / "uci_online_shoppers").events
    )
    jr = analysis.build_journeys(ev, **journey_settings(ev))
    counts = conversion_counts(jr.journeys, ["first_channel", "segment"])
    m = ConversionModel(
        counts,
        effects=["first_channel", "segment"],
        sampler_config={"draws": 1000, "tune": 1000, "chains": 4},
    )
    m.fit()
    assert m.check()["ok"].all()
    vis = m.rates("segment").set_index("segment")
    raw_v = raw.groupby("VisitorType")["Revenue"].mean()
    for v in ["Returning_Visitor", "New_Visitor"]:
        assert vis.loc[v, "mean"] == pytest.approx(raw_v[v], abs=0.01)
    tt = m.rates("first_channel").set_index("first_channel")
    raw_t = raw.groupby("TrafficType")["Revenue"].agg(["size", "mean"])
    raw_t.index = "traffic_type_" + raw_t.index.astype(str)
    for t in raw_t[raw_t["size"] >= 1000].index:
        assert tt.loc[t, "mean"] == pytest.approx(raw_t.loc[t, "mean"], abs=0.01), t
    # traffic types seen once or twice are pulled far from their raw 0% or 33%
    grand = raw["Revenue"].mean()
    for t in raw_t[raw_t["size"] <= 3].index:
        assert abs(tt.loc[t, "mean"] - grand) < abs(raw_t.loc[t, "mean"] - grand), t


# ------------------------------------------------------------------- time to close (cure model)
def test_cure_model_inputs():
    from analysis.models.cure import CureTimeModel

    d = pd.DataFrame(
        {
            "g": ["a", "a", "b", "b"],
            "duration_days": [0.0, 3.0, 10.0, 40.0],
            "censored": [False, False, True, True],
        }
    )
    m = CureTimeModel(d, group="g")
    assert m.counts.to_dict("list") == {
        "group": ["a", "b"],
        "subjects": [2, 2],
        "events": [2, 0],
        "censored": [0, 2],
    }
    assert m._left.tolist() == [1.0, 0.0] and m._n.tolist() == [
        1.0,
        0.0,
    ]  # the 0-day event is left-censored
    assert CureTimeModel(d)._check_vars == ["a_pi", "a_mu", "sigma"]  # one group: no spreads
    with pytest.raises(DataError, match="no subject has the event"):
        CureTimeModel(d.assign(censored=True))
    with pytest.raises(DataError, match="negative"):
        CureTimeModel(d.assign(duration_days=-1.0))


@pytest.mark.slow
def test_olist_time_to_close_model_matches_kaplan_meier():
    """The cure model's share closed by t against a Kaplan-Meier computed here from the raw CSVs."""
    from analysis.models.cure import CureTimeModel
    from analysis.sources import read_olist
    from analysis.sources.olist import JOURNEY_SETTINGS

    leads = pd.read_csv(
        config.EXTERNAL_DIR / "olist_marketing_funnel/olist_marketing_qualified_leads_dataset.csv"
    )
    deals = pd.read_csv(
        config.EXTERNAL_DIR / "olist_marketing_funnel/olist_closed_deals_dataset.csv"
    )
    first = pd.to_datetime(leads.set_index("mql_id")["first_contact_date"])
    won = pd.to_datetime(deals.set_index("mql_id")["won_date"]).reindex(first.index)
    end = max(first.max(), won.max())
    days = ((won.fillna(end) - first) / pd.Timedelta(days=1)).clip(lower=0).to_numpy()
    event = won.notna().to_numpy()

    def km_share(t):  # 1 - S(t), plain product-limit
        s = 1.0
        for u in np.unique(days[event & (days <= t)]):
            at_risk = (days >= u).sum()
            s *= 1 - (event & (days == u)).sum() / at_risk
        return 1 - s

    ev = analysis.stitch_identities(
        read_olist(config.EXTERNAL_DIR / "olist_marketing_funnel").events
    )
    jr = analysis.build_journeys(ev, **JOURNEY_SETTINGS)
    dur = jr.stage_durations(by=None)
    m = CureTimeModel(
        dur[dur["stage"] == "Think"], sampler_config={"draws": 500, "tune": 500, "chains": 4}
    )
    m.fit()
    assert m.check()["ok"].all()
    got = m.closed_by([7, 30, 90, 180, 365]).set_index("days")["mean"]
    for t in got.index:
        assert got[t] == pytest.approx(km_share(t), abs=0.01), t
    s = m.summary().iloc[0]
    # more leads close eventually than closed in the data; closers' median is at least the
    # median of the closes seen (late closers of recent leads are still to come)
    assert s["p_convert"] > event.mean()
    assert s["median_days"] > np.median(days[event])
