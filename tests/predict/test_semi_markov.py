"""The semi-Markov forecast against closed forms and a path simulation written here, and on
synthetic journeys: sensible probabilities, and a backtest it passes against the base rate."""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from analysis.errors import DataError
from analysis.predict import cutoff_split, journey_features, run_backtest
from analysis.predict.semi_markov import (
    chain_forecast,
    exact_dwell_fit,
    open_visits,
    semi_markov_forecast,
    semi_markov_predictions,
    semi_markov_table,
    table_from_models,
)

# --------------------------------------------------------------- a hand-built chain, by hand

# one stage: (start) → A; A → (conversion) 0.3, (dropoff) 0.7; D ~ LogNormal(log 4, 0.7)
ONE = np.array([[1.0, 0.0, 0.0], [0.0, 0.3, 0.7]])
MU1, SG1 = np.log(4.0), 0.7


def _dwell(mu: float, sigma: float):
    return stats.lognorm(s=sigma, scale=np.exp(mu))


@pytest.mark.parametrize("e", [0.0, 1.0, 5.0, 12.0])
def test_one_step_chain_is_the_conditional_log_normal(e):
    """Seen at once, an exit does not depend on the time so far: P(convert within H) is
    p_conversion · P(D ≤ e + H | D > e), and the days to it the conditional mean of D − e."""
    H = 10.0
    out = chain_forecast(ONE, [MU1], [SG1], horizon_days=H, elapsed=[e], dropoff="dwell")
    D = _dwell(MU1, SG1)
    within = (D.cdf(e + H) - D.cdf(e)) / D.sf(e)
    assert out["p_convert"][1, 0] == pytest.approx(0.3 * within, abs=1e-9)
    assert out["p_dropoff"][1, 0] == pytest.approx(0.7 * within, abs=1e-9)
    days = integrate.quad(lambda x: (x - e) * D.pdf(x), e, e + H)[0] / (D.cdf(e + H) - D.cdf(e))
    assert out["days"][1, 0] == pytest.approx(days, abs=0.01)  # grid: steps of H/256 days
    np.testing.assert_allclose(out["p_next"][1, 0], [0.0, 0.3, 0.7])
    # (start) enters A now: the same as A with no time in it
    assert out["p_convert"][0, 0] == pytest.approx(0.3 * D.cdf(H), abs=1e-9)


def test_one_step_chain_with_drop_offs_seen_late_matches_a_simulation():
    """``dropoff="inactivity"``: visits that started ``e`` days ago and are still seen open,
    simulated: a move is seen when the visit ends, a drop-off ``inactivity`` days later."""
    rng = np.random.default_rng(1)
    H, inactivity, n = 10.0, 8.0, 2_000_000
    D = np.exp(MU1 + SG1 * rng.standard_normal(n))
    converts = rng.random(n) < 0.3
    for e in (2.0, 6.0, 15.0):
        seen_open = np.where(converts, D > e, D + inactivity > e)
        out = chain_forecast(
            ONE, [MU1], [SG1], horizon_days=H, elapsed=[e], inactivity_days=inactivity
        )
        kept_conv, kept_d = converts[seen_open], D[seen_open]
        sim_conv = (kept_conv & (kept_d <= e + H)).mean()
        sim_drop = (~kept_conv & (kept_d <= e + H)).mean()  # dropped by e + H (maybe before e)
        se = np.sqrt(0.25 / seen_open.sum())
        assert out["p_convert"][1, 0] == pytest.approx(sim_conv, abs=4 * se)
        assert out["p_dropoff"][1, 0] == pytest.approx(sim_drop, abs=4 * se)
        assert out["p_next"][1, 0, 1] == pytest.approx(kept_conv.mean(), abs=4 * se)
    # the longer a visit lasts unseen, the likelier it is a drop-off not yet visible
    many = chain_forecast(
        ONE, [MU1], [SG1], horizon_days=H, elapsed=np.arange(0, 8.0), inactivity_days=inactivity
    )
    assert np.all(np.diff(many["p_next"][1, :, 2]) > 0)


# two stages with a loop: A → B .5, conversion .1, drop-off .4; B → A .2, conversion .3, drop .5
TWO = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.5, 0.1, 0.4], [0.2, 0.0, 0.3, 0.5]])
MU2, SG2 = np.log([3.0, 5.0]), np.array([0.8, 0.6])


def _simulate(state: int, e: float, H: float, n: int, rng) -> dict[str, float]:
    """Follow ``n`` journeys in ``state`` (1 = A, 2 = B) since ``e`` days, visit by visit."""
    D = _dwell(MU2[state - 1], SG2[state - 1])
    t = D.ppf(rng.uniform(D.cdf(e), 1.0, n)) - e  # the rest of the current visit
    where = np.full(n, state)
    alive = np.ones(n, dtype=bool)
    converted_at = np.full(n, np.inf)
    dropped_at = np.full(n, np.inf)
    while alive.any():
        i = np.flatnonzero(alive)
        target = (rng.random(len(i))[:, None] > TWO[where[i]].cumsum(1)).sum(1)  # 0 A, 1 B, 2, 3
        conv, drop, move = i[target == 2], i[target == 3], i[target < 2]
        converted_at[conv], dropped_at[drop] = t[conv], t[drop]
        alive[conv] = alive[drop] = False
        where[move] = target[target < 2] + 1
        nxt = where[move] - 1
        t[move] += np.exp(MU2[nxt] + SG2[nxt] * rng.standard_normal(len(move)))
        alive[move] &= t[move] <= H  # past the horizon nothing more counts
    hit = converted_at <= H
    return {
        "p_convert": hit.mean(),
        "p_dropoff": (dropped_at <= H).mean(),
        "days": converted_at[hit].mean(),
    }


@pytest.mark.parametrize(("state", "e"), [(1, 0.0), (1, 6.0), (2, 2.0), (2, 20.0)])
def test_a_chain_with_a_loop_matches_a_path_simulation(state, e):
    H, n = 14.0, 200_000
    out = chain_forecast(TWO, MU2, SG2, horizon_days=H, elapsed=[e], dropoff="dwell")
    sim = _simulate(state, e, H, n, np.random.default_rng(state * 100 + int(e)))
    se = np.sqrt(0.25 / n)
    assert out["p_convert"][state, 0] == pytest.approx(sim["p_convert"], abs=4 * se)
    assert out["p_dropoff"][state, 0] == pytest.approx(sim["p_dropoff"], abs=4 * se)
    assert out["days"][state, 0] == pytest.approx(sim["days"], abs=0.08)


def test_draws_and_segments_are_batched():
    """Leading dimensions are draws and segments: each cell as if computed alone."""
    p = np.stack([TWO, TWO[:, [1, 0, 2, 3]][[0, 2, 1]]])  # the second: A and B swapped
    mu, sg = np.stack([MU2, MU2[::-1]]), np.stack([SG2, SG2[::-1]])
    both = chain_forecast(p, mu, sg, horizon_days=7.0, elapsed=[0.0, 3.0])
    alone = chain_forecast(TWO, MU2, SG2, horizon_days=7.0, elapsed=[0.0, 3.0])
    np.testing.assert_allclose(both["p_convert"][0], alone["p_convert"])
    np.testing.assert_allclose(both["p_convert"][1, 1:], alone["p_convert"][[2, 1]])


def test_bad_arguments_say_what_is_wrong():
    with pytest.raises(DataError, match="dropoff="):
        chain_forecast(ONE, [MU1], [SG1], horizon_days=7.0, dropoff="later")
    with pytest.raises(DataError, match="expected"):
        chain_forecast(TWO, [MU1], [SG1], horizon_days=7.0)


# ------------------------------------------------------------------ synthetic journeys
@pytest.fixture(scope="module")
def splits():
    from analysis import synth

    events, _ = synth.generate(2000, seed=6)
    ts = pd.to_datetime(events["timestamp"], utc=True)
    cut = pd.Timestamp("2024-04-15", tz="UTC")
    train = cutoff_split(events[(ts <= cut).to_numpy()], "2024-04-01", data_end=cut)
    return events, train, cutoff_split(events, cut)


@pytest.fixture(scope="module")
def table(splits):
    return semi_markov_table(splits[1], draws=100, steps=128)


def test_open_visits_are_the_journeys_current_stage(splits):
    test = splits[2]
    v = open_visits(test)
    assert v.index.equals(test.open.index)
    last = test.open["stages"].fillna("").str.rsplit(" > ", n=1).str[-1]
    assert (v["state"] == last.where(last != "", "(start)")).all()
    f = journey_features(test)  # the current visit began after the first touch, by the last
    assert (v["elapsed_days"] <= f["age_days"] + 1e-9).all()
    assert (v["elapsed_days"] >= f["recency_days"] - 1e-9).all()
    assert v["elapsed_days"].gt(0).mean() > 0.9


def test_the_table_holds_probabilities(table):
    pc, pd_ = table.p_convert, table.p_dropoff
    assert ((pc >= 0) & (pc <= 1) & (pd_ >= 0) & (pd_ <= 1)).all()
    assert (pc + pd_ <= 1 + 1e-9).all()
    np.testing.assert_allclose(table.p_next.sum(-1), 1.0)
    days = table.days[np.isfinite(table.days)]
    assert ((days >= 0) & (days <= table.horizon_days)).all()


def test_a_fresh_visit_goes_where_the_counts_say(splits, table):
    """At no time in the stage, the next step is the transition row: the posterior mean of
    Dirichlet(1 + n) over the allowed cells, n counted from the training journeys."""
    jr = splits[1].journeys
    counts = jr.stage_transitions(mature_days=jr.maturity().mature_days)  # as the table's
    counts = counts[counts["to_stage"] != "(open)"]
    n = counts.pivot_table(
        index=["segment", "from_stage"], columns="to_stage", values="n", aggfunc="sum"
    ).reindex(columns=table.targets)
    nxt = table.p_next[:, :, :, 0, :]  # elapsed 0
    for g, seg in enumerate(table.segments):
        for s, state in enumerate(table.states):
            row = n.loc[(seg, state)].fillna(0.0).to_numpy()
            allowed = np.array(
                [
                    t != state and not (state == "(start)" and t.startswith("("))
                    for t in table.targets
                ]
            )
            a = np.where(allowed, 1.0 + row, 0.0)
            mean = a / a.sum()
            sd = np.sqrt(mean * (1 - mean) / (a.sum() + 1))
            got = nxt[:, g, s].mean(0)
            assert np.all(np.abs(got - mean) <= 4 * sd / np.sqrt(len(nxt)) + 1e-12), (seg, state)


def test_a_longer_horizon_converts_more(splits, table):
    longer = semi_markov_table(splits[1], draws=100, steps=128, horizon_days=28.0)
    gain = longer.p_convert - table.p_convert  # same seed: the same posterior draws
    assert gain.min() > -1e-3 and gain.mean() > 0.01


def test_predictions_line_up_with_the_open_journeys(splits, table):
    test = splits[2]
    pr = table.predictions(test)
    assert pr.index.equals(test.open.index)
    for name in ("p_convert", "p_dropoff", "expected_days"):
        ok = pr[name].notna()
        assert (pr.loc[ok, f"{name}_lower"] <= pr.loc[ok, name] + 1e-12).all()
        assert (pr.loc[ok, name] <= pr.loc[ok, f"{name}_upper"] + 1e-12).all()
    assert pr["next_stage"].isin(table.targets).all()
    assert pr["next_stage_p"].between(1 / len(table.targets), 1).all()
    draws = table.forecast_draws(test)
    assert draws.shape == (100, len(test.open))
    np.testing.assert_allclose(draws.mean(0), pr["p_convert"])
    # intervals interpolated between grid points: close to the interpolated draws' quantiles
    q = np.quantile(draws, [0.05, 0.95], 0)
    np.testing.assert_allclose(pr["p_convert_lower"], q[0], atol=0.005)
    np.testing.assert_allclose(pr["p_convert_upper"], q[1], atol=0.005)


def test_an_unknown_segment_gets_the_segments_average(table):
    known = table.lookup(table.segments, ["Do"] * len(table.segments), [3.0] * len(table.segments))
    new = table.lookup(["nobody"], ["Do"], [3.0])
    np.testing.assert_allclose(new["p_convert"][:, 0], known["p_convert"].mean(1))


def test_a_stage_without_completed_visits_borrows_the_others_dwell():
    """No visit to Care ended: its dwell is the other stages' average, and the table is whole."""
    from analysis.models.transitions import StageTransitionModel

    counts = pd.DataFrame(
        [
            ("(start)", "See", 30),
            ("(start)", "Care", 4),
            ("See", "Think", 20),
            ("See", "(dropoff)", 10),
            ("Think", "Do", 12),
            ("Think", "(dropoff)", 8),
            ("Do", "(conversion)", 7),
            ("Do", "(dropoff)", 5),
            ("Care", "(dropoff)", 2),
            ("Care", "(open)", 2),
        ],
        columns=["from_stage", "to_stage", "n"],
    )
    tm = StageTransitionModel(counts, group=None, model_config={"pooling": "none"})
    tm.fit_conjugate(draws=50, chains=1, random_seed=0)
    rng = np.random.default_rng(0)
    durations = pd.DataFrame(
        {
            "stage": np.repeat(["See", "Think", "Do"], 20),
            "duration_days": rng.lognormal(1.0, 0.5, 60),
            "censored": False,
        }
    )
    dwell = exact_dwell_fit(durations, draws=50, group=None)
    tab = table_from_models(tm, dwell, horizon_days=14.0, steps=64)
    assert np.isfinite(tab.p_convert).all() and np.isfinite(tab.p_dropoff).all()
    assert tab.segments == ["all"] and tab.states[-1] == "Care"


def test_the_backtest_scores_the_semi_markov_draws(splits):
    """run_backtest takes its draws; it ranks who converts next far better than the base rate,
    and is about as well calibrated."""
    events = splits[0]
    fast = partial(semi_markov_forecast, draws=50, steps=96)
    table = run_backtest(
        events,
        ["2024-04-15"],
        horizon_days=14,
        methods={"base rate": lambda tr, te: np.full(len(te.open), tr.base_rate), "sm": fast},
    ).set_index("method")
    assert table.loc["sm", "auc"] > table.loc["base rate", "auc"] + 0.2
    assert table.loc["sm", "log_loss"] < table.loc["base rate", "log_loss"]
    assert table.loc["sm", "ece"] < 0.05
    assert table.loc["sm", "decile_coverage"] >= 0.6  # 90% intervals, decile by decile


def test_predictions_of_the_function_match_the_table(splits, table):
    train, test = splits[1], splits[2]
    pr = semi_markov_predictions(train, test, draws=100, steps=128)
    np.testing.assert_allclose(pr["p_convert"], table.predictions(test)["p_convert"])


def test_a_stage_map_of_ones_own():
    """Stages named otherwise (Discover … Retain) are the table's states, in journey order."""
    from analysis import synth

    events, _ = synth.generate(600, seed=7)
    names = {"See": "Discover", "Think": "Consider", "Do": "Checkout", "Care": "Retain"}
    events["stage"] = events["stage"].map(names)
    split = cutoff_split(events, "2024-04-15")
    tab = semi_markov_table(split, draws=20, steps=32, mature_days=None)
    assert tab.states[0] == "(start)" and set(tab.states[1:]) == set(names.values())
    assert tab.states.index("Discover") < tab.states.index("Checkout")
    draws = semi_markov_forecast(split, split, draws=20, steps=32, mature_days=None)
    assert draws.shape == (20, len(split.open)) and np.isfinite(draws).all()
