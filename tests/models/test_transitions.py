"""StageTransitionModel and DwellTimeModel: input checks, algebra, recovery of synth truth.

Fast tests use the exact conjugate fit (no MCMC) or a few small NUTS fits; the heavier
parameter-recovery study over several seeds is marked ``slow``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import analysis
import analysis.sources  # ColumnMap below: loaded here, not by whichever test ran first
from analysis import synth
from analysis.models import ConvergenceError, ConvergenceWarning, ModelConfigError
from analysis.models.base import interval_table
from analysis.models.transitions import (
    DwellTimeModel,
    StageTransitionModel,
    expected_time_to_conversion,
)
from analysis.schema import CONVERSION, DROPOFF, OPEN, START, DataError, StageMap

FAST = {"draws": 500, "tune": 500, "chains": 4, "progressbar": False}


def coverage(table: pd.DataFrame, truth: pd.DataFrame, keys: list[str], col: str = "p") -> float:
    t = table.merge(truth, on=keys, validate="one_to_one")
    assert len(t) == len(table)
    return float(((t["lower"] <= t[col]) & (t[col] <= t["upper"])).mean())


def truth_map(truth) -> StageMap:
    """The generator's allowed moves as a stage map (what an analyst would declare)."""
    a = truth.allowed
    return StageMap(transitions={f: [t for t in a.columns if a.loc[f, t]] for f in a.index})


def true_p(model: StageTransitionModel, truth) -> np.ndarray:
    """truth.transitions.p as a (segment, from, to) array in the model's order."""
    tr = truth.transitions.set_index(["segment", "from_stage", "to_stage"])["p"]
    idx = pd.MultiIndex.from_product([model.segments, model.from_states, model.to_states])
    return tr.reindex(idx).to_numpy().reshape(len(model.segments), len(model.from_states), -1)


def inject(model: StageTransitionModel, p: np.ndarray) -> StageTransitionModel:
    """Make ``model``'s posterior a single draw equal to ``p`` (to test the algebra)."""
    model.fit_conjugate(chains=1, draws=1)
    model.idata.posterior["p"].values[:] = p[None, None]
    return model


@pytest.fixture(scope="module")
def uncensored():
    """Journeys of 3,000 synthetic persons without end-of-data censoring, and the truth."""
    ev, truth = synth.generate(n_persons=3000, seed=11, censor=False)
    jr = analysis.build_journeys(analysis.stitch_identities(ev))
    return jr, truth


@pytest.fixture(scope="module")
def censored(synth_data):
    ev, truth = synth_data
    return analysis.build_journeys(analysis.stitch_identities(ev)), truth


@pytest.fixture(scope="module")
def pooled_fit(uncensored):
    jr, truth = uncensored
    model = StageTransitionModel(
        jr.stage_transitions(by="segment"), stage_map=truth_map(truth), sampler_config=FAST
    )
    model.fit()
    return model, truth


# ------------------------------------------------------------------------------ input checks
def test_counts_missing_columns():
    with pytest.raises(DataError, match=r"missing column\(s\) \['n'\]") as e:
        StageTransitionModel(pd.DataFrame({"from_stage": ["(start)"], "to_stage": ["See"]}))
    assert "stage_transitions" in e.value.fix


def test_counts_bad_values_and_unknown_states_reported_together():
    counts = pd.DataFrame(
        {
            "segment": ["a", "a", "a"],
            "from_stage": ["(start)", "See", "Nowhere"],
            "to_stage": ["See", "Thinking", "(dropoff)"],
            "n": [10, -1, 2.5],
        }
    )
    with pytest.raises(DataError) as e:
        StageTransitionModel(counts)
    msg = str(e.value)
    assert "3 problems" in msg
    assert "non-negative whole numbers" in msg and "rows:   2, 3" in msg
    assert "unknown from_stage value(s) ['Nowhere']" in msg
    assert "unknown to_stage value(s) ['Thinking']" in msg


def _counts(rows):
    return pd.DataFrame(rows, columns=["segment", "from_stage", "to_stage", "n"])


BASE = [
    ("a", START, "See", 50),
    ("a", "See", "Do", 30),
    ("a", "See", DROPOFF, 20),
    ("a", "Do", CONVERSION, 20),
    ("a", "Do", DROPOFF, 10),
]


def test_forbidden_transition_in_data_is_named():
    sm = StageMap(transitions={"Do": [CONVERSION, DROPOFF]})
    rows = [*BASE, ("a", "Do", "See", 3)]
    with pytest.raises(DataError, match=r"forbids appear in the data: a: Do → See \(n=3\)") as e:
        StageTransitionModel(_counts(rows), stage_map=sm)
    assert "stage_map.transitions" in e.value.fix
    StageTransitionModel(_counts(BASE), stage_map=sm)  # without it: fine


def test_segment_without_journeys():
    rows = [*BASE, ("b", "See", DROPOFF, 0)]
    with pytest.raises(DataError, match=r"segment\(s\) \['b'\] have no journeys"):
        StageTransitionModel(_counts(rows))


def test_stage_entered_but_never_left():
    rows = [*BASE, ("a", "See", "Think", 5), ("a", "Think", OPEN, 5)]
    with pytest.raises(
        DataError, match=r"stage\(s\) \['Think'\] were entered but no visit has a known exit"
    ):
        StageTransitionModel(_counts(rows))


def test_stage_map_without_exit_from_a_stage():
    sm = StageMap(transitions={"Care": ["Do"], "Do": ["Care"]})
    with pytest.raises(DataError, match=r"no journey leave stage\(s\) \['Do', 'Care'\]"):
        StageTransitionModel(_counts(BASE[:3]), stage_map=sm)


def test_no_segment_column_means_one_segment():
    m = StageTransitionModel(_counts(BASE).drop(columns="segment"))
    assert m.segments == ["all"]
    with pytest.raises(DataError, match="pass group="):
        StageTransitionModel(_counts(BASE).rename(columns={"segment": "region"}))
    assert StageTransitionModel(
        _counts(BASE).rename(columns={"segment": "region"}), group="region"
    ).segments == ["a"]


def test_config_errors():
    with pytest.raises(ModelConfigError, match=r"'poolng' \(did you mean 'pooling'\?\)"):
        StageTransitionModel(_counts(BASE), model_config={"poolng": "none"})
    with pytest.raises(ModelConfigError, match="'dist' key"):
        StageTransitionModel(_counts(BASE), model_config={"concentration": 3})
    with pytest.raises(ModelConfigError, match="only without pooling"):
        StageTransitionModel(_counts(BASE)).fit(method="conjugate")
    m = StageTransitionModel(
        _counts(BASE), model_config={"concentration": {"dist": "Gamma", "alpha": 2, "beta": 0.1}}
    )
    assert m.model_config["concentration"].dist == "Gamma"


def test_stage_map_transitions_from_yaml(tmp_path):
    path = tmp_path / "map.yml"
    path.write_text("stage_map:\n  transitions: {Care: [Do, (dropoff)]}\n")
    cmap = analysis.sources.ColumnMap.from_yaml(path)
    allowed = cmap.stage_map.allowed()
    assert allowed.loc["Care"].to_dict() == {
        "See": False,
        "Think": False,
        "Do": True,
        "Care": False,
        CONVERSION: False,
        DROPOFF: True,
    }
    assert allowed.loc["See", "Think"] and not allowed.loc["See", "See"]
    path.write_text("stage_map:\n  transitions: {Care: [Nowhere]}\n")
    with pytest.raises(DataError, match="'Nowhere' is not a stage"):
        analysis.sources.ColumnMap.from_yaml(path)


# -------------------------------------------------------------------------- algebra vs truth
def test_absorbing_chain_algebra_matches_generator_truth(uncensored):
    """Conversion probabilities and stage gains computed on the true matrices equal the ones
    the generator recorded (computed there independently)."""
    jr, truth = uncensored
    model = StageTransitionModel(
        jr.stage_transitions(by="segment"),
        stage_map=truth_map(truth),
        model_config={"pooling": "none"},
    )
    inject(model, true_p(model, truth))
    conv = model.conversion_probability().sel(state=START).isel(chain=0, draw=0).to_series()
    np.testing.assert_allclose(
        conv[truth.conversion_probability.index], truth.conversion_probability, rtol=1e-10
    )
    gains = model.stage_gains(truth.friction["reduction_share"]).isel(chain=0, draw=0).to_series()
    want = truth.stage_gains.set_index(["segment", "stage"])["gain"]
    np.testing.assert_allclose(gains[want.index], want, rtol=1e-8, atol=1e-12)
    # every journey ends converted or dropped off somewhere
    total = model.dropoff_share().sum("stage") + model.conversion_probability().sel(state=START)
    np.testing.assert_allclose(total.to_numpy(), 1.0, rtol=1e-10)


def test_expected_steps_match_simulation():
    """Expected visits to conversion (given conversion) against a brute-force simulation."""
    p = np.zeros((1, 5, 6))  # states: start, See, Think, Do, Care → See..Care, conv, drop
    p[0, 0, [0, 1]] = [0.7, 0.3]
    p[0, 1, [1, 2, 5]] = [0.4, 0.2, 0.4]
    p[0, 2, [0, 2, 5]] = [0.2, 0.5, 0.3]
    p[0, 3, [1, 4, 5]] = [0.25, 0.5, 0.25]
    p[0, 4, [2, 5]] = [0.5, 0.5]
    counts = _counts(
        [
            ("x", START, "See", 1),
            ("x", "See", DROPOFF, 1),
            ("x", "Think", DROPOFF, 1),
            ("x", "Do", DROPOFF, 1),
            ("x", "Care", DROPOFF, 1),
        ]
    )
    model = inject(StageTransitionModel(counts, model_config={"pooling": "none"}), p)
    steps = model.expected_steps().isel(chain=0, draw=0, segment=0).to_series()

    rng = np.random.default_rng(0)
    n = 400_000
    state = np.zeros(n, dtype=int)
    visits = np.zeros(n)
    first = np.full(n, -1)
    done = np.zeros(n, dtype=bool)
    conv = np.zeros(n, dtype=bool)
    cum = np.cumsum(p[0], 1)
    while not done.all():
        idx = np.flatnonzero(~done)
        nxt = (rng.random(len(idx))[:, None] > cum[state[idx]]).sum(1)
        to_stage = nxt < 4
        visits[idx] += to_stage
        first[idx] = np.where(first[idx] < 0, nxt, first[idx])
        conv[idx] = nxt == 4
        done[idx] = ~to_stage
        state[idx] = np.where(to_stage, nxt + 1, state[idx])
    assert abs(steps[START] - visits[conv].mean()) < 0.02
    for s, name in enumerate(["See", "Think"]):
        sel = conv & (first == s)
        assert abs(steps[name] - visits[sel].mean()) < 0.03
    assert np.isfinite(steps["Care"]) and steps["Do"] >= 1


# ----------------------------------------------------------------------- conjugate posterior
def test_conjugate_posterior_is_the_exact_dirichlet(uncensored):
    jr, _ = uncensored
    model = StageTransitionModel(
        jr.stage_transitions(by="segment"), model_config={"pooling": "none"}
    )
    model.fit(method="conjugate", draws=2000)
    alpha = np.where(model.allowed[None], 1.0 + model.counts, 0.0)
    want = alpha / alpha.sum(-1, keepdims=True)
    got = model.p.mean(("chain", "draw")).to_numpy()
    sd = model.p.std(("chain", "draw")).to_numpy() / np.sqrt(8000)
    assert np.all(np.abs(got - want) <= 4.5 * sd + 1e-12)
    assert np.all(model.p.to_numpy()[..., ~model.allowed] == 0.0)  # structural zeros stay zero
    assert model.check()["ok"].all()


def test_mature_counts_remove_the_censoring_bias(censored):
    """Counting all visits overstates advancing (drop-offs are seen late); mature counts do not."""
    jr, truth = censored
    tr = truth.transitions[truth.transitions.allowed]
    err, cov = {}, {}
    for name, counts in (
        ("all", jr.stage_transitions(by="segment")),
        ("mature", jr.stage_transitions(by="segment", mature_days=2 * jr.inactivity_days)),
    ):
        m = StageTransitionModel(
            counts, stage_map=truth_map(truth), model_config={"pooling": "none"}
        )
        m.fit(method="conjugate")
        t = m.transition_probabilities().merge(tr, on=["segment", "from_stage", "to_stage"])
        drop = t[t.to_stage == DROPOFF]
        err[name] = float((drop["mean"] - drop["p"]).mean())
        cov[name] = coverage(
            m.transition_probabilities(), tr, ["segment", "from_stage", "to_stage"]
        )
    assert err["all"] < -0.02  # drop-off visibly understated
    assert abs(err["mature"]) < 0.015
    assert cov["mature"] >= 0.8 > cov["all"]


def test_mature_days_counts(censored):
    jr, _ = censored
    full = jr.stage_transitions(by=None)
    assert jr.stage_transitions(by=None, mature_days=0).equals(full)
    mature = jr.stage_transitions(by=None, mature_days=60)
    merged = full.merge(
        mature, on=["from_stage", "to_stage"], how="left", suffixes=("", "_m")
    ).fillna(0)
    assert (merged["n_m"] <= merged["n"]).all() and merged["n_m"].sum() < merged["n"].sum()
    assert jr.stage_transitions(by=None, mature_days=10_000).empty
    with pytest.raises(ValueError, match="mature_days"):
        jr.stage_transitions(mature_days=-1)


def test_friction_point_found_without_mcmc(censored):
    jr, truth = censored
    counts = jr.stage_transitions(by="segment", mature_days=2 * jr.inactivity_days)
    m = StageTransitionModel(counts, stage_map=truth_map(truth), model_config={"pooling": "none"})
    m.fit(method="conjugate")
    fp = m.friction_point(truth.friction["reduction_share"]).set_index("segment")
    seg, stage = truth.friction["segment"], truth.friction["stage"]
    assert fp.loc[seg, "stage"] == stage
    assert fp.loc[seg, "p_worst"] > 0.9


def test_posterior_predictive_check_passes_on_the_right_model(uncensored):
    jr, _ = uncensored
    m = StageTransitionModel(jr.stage_transitions(by="segment"), model_config={"pooling": "none"})
    m.fit(method="conjugate")
    ppc = m.posterior_predictive(n_draws=200, seed=1)
    assert set(ppc["statistic"]) == {"conversion rate", "visits per journey"}
    assert ppc["p_value"].between(0.01, 0.99).all(), ppc


def test_posterior_predictive_flags_a_wrong_model(uncensored):
    """Shift the posterior towards drop-off: the check must notice."""
    jr, _ = uncensored
    m = StageTransitionModel(jr.stage_transitions(by="segment"), model_config={"pooling": "none"})
    m.fit(method="conjugate")
    p = m.idata.posterior["p"].values
    drop = m.to_states.index(DROPOFF)
    p[..., 1:, :] *= 0.8
    p[..., 1:, drop] += 0.2
    ppc = m.posterior_predictive(n_draws=100, seed=1)
    conv = ppc[(ppc.statistic == "conversion rate") & (ppc.segment == "consumer")]
    assert float(conv["p_value"].iloc[0]) < 0.01  # predicts far fewer conversions than seen


# ----------------------------------------------------------------------------------- NUTS
def test_pooled_fit_recovers_truth(pooled_fit):
    model, truth = pooled_fit
    assert model.check()["ok"].all()
    tr = truth.transitions[truth.transitions.allowed]
    cov = coverage(model.transition_probabilities(), tr, ["segment", "from_stage", "to_stage"])
    assert 0.75 <= cov <= 1.0  # one seed, 72 cells; the slow study checks 80-97% over seeds
    fp = model.friction_point(truth.friction["reduction_share"]).set_index("segment")
    assert fp.loc[truth.friction["segment"], "stage"] == truth.friction["stage"]
    summ = model.summary().set_index("segment")
    conv = truth.conversion_probability
    inside = (summ["conversion_lower"] <= conv[summ.index]) & (
        conv[summ.index] <= summ["conversion_upper"]
    )
    assert inside.mean() >= 0.75
    cmp = model.compare_segments("consumer", "small_business").set_index("state")
    assert cmp.loc[START, "p_a_better"] > 0.95  # truth: consumer converts clearly better
    assert conv["consumer"] > conv["small_business"] + 0.05


def test_save_and_load_round_trip(pooled_fit, tmp_path, uncensored):
    model, _ = pooled_fit
    path = model.save(tmp_path / "fit.nc")
    back = StageTransitionModel.load(path, data=uncensored[0].stage_transitions(by="segment"))
    assert back.allowed.tolist() == model.allowed.tolist()
    np.testing.assert_array_equal(back.p.to_numpy(), model.p.to_numpy())
    assert back.model_config["concentration"] == model.model_config["concentration"]
    assert back.sampler_config["draws"] == FAST["draws"]
    other = uncensored[0].stage_transitions(by="segment").assign(n=lambda d: d.n + 1)
    with pytest.raises(ValueError, match="fitted on other data"):
        StageTransitionModel.load(path, data=other)
    with pytest.raises(ValueError, match="holds a 'StageTransitionModel'"):
        DwellTimeModel.load(path)


@pytest.mark.slow  # real NUTS fits (the smoke fits: pooled_fit, the dwell one below)
def test_conjugate_and_mcmc_agree_on_the_unpooled_model(uncensored):
    jr, _ = uncensored
    counts = jr.stage_transitions(by="segment")
    exact = StageTransitionModel(counts, model_config={"pooling": "none"})
    exact.fit(method="conjugate", draws=4000)
    mcmc = StageTransitionModel(counts, model_config={"pooling": "none"}, sampler_config=FAST)
    mcmc.fit()
    import arviz as az

    mcse = az.mcse(mcmc.idata, var_names=["p"])["p"].to_numpy()
    diff = np.abs(
        mcmc.p.mean(("chain", "draw")).to_numpy() - exact.p.mean(("chain", "draw")).to_numpy()
    )
    sd_exact = exact.p.std(("chain", "draw")).to_numpy() / np.sqrt(16000)
    ok = diff <= 4 * np.sqrt(np.nan_to_num(mcse) ** 2 + sd_exact**2) + 1e-9
    assert ok[..., mcmc.allowed].all()


@pytest.mark.slow  # real NUTS fits (the smoke fits: pooled_fit, the dwell one below)
def test_non_convergence_is_loud(uncensored):
    counts = uncensored[0].stage_transitions(by="segment")
    bad = {"draws": 15, "tune": 5, "chains": 2, "progressbar": False}
    with pytest.raises(ConvergenceError, match="did not converge") as e:
        StageTransitionModel(counts, sampler_config=bad).fit()
    assert not e.value.diagnostics["ok"].all()
    with pytest.warns(ConvergenceWarning):
        StageTransitionModel(counts, sampler_config={**bad, "on_fail": "warn"}).fit()


# ------------------------------------------------------------------------------- dwell time
def test_dwell_smoke_fit():
    """The dwell family's NUTS smoke fit (the recovery study on synthetic journeys is slow):
    log-normal visits of two segments and two stages, a quarter censored, recovered."""
    rng = np.random.default_rng(0)
    mu = {("a", "Think"): 1.0, ("a", "Do"): 0.0, ("b", "Think"): 1.5, ("b", "Do"): 0.3}
    rows = []
    for (seg, stage), m in mu.items():
        d = np.exp(rng.normal(m, 0.8, 120))
        cut = rng.random(120) < 0.25  # censored at a uniform share of their duration
        rows += [
            {
                "segment": seg,
                "stage": stage,
                "duration_days": x * (rng.uniform(0.2, 1) if c else 1),
                "censored": bool(c),
            }
            for x, c in zip(d, cut, strict=True)
        ]
    fast = {**FAST, "draws": 300, "tune": 300}
    dwell = DwellTimeModel(pd.DataFrame(rows), stages=["Think", "Do"], sampler_config=fast)
    dwell.fit()
    assert dwell.check()["ok"].all()
    got = dwell.idata.posterior["mu"].mean(("chain", "draw")).to_pandas()
    for (seg, stage), m in mu.items():
        assert abs(got.loc[seg, stage] - m) < 0.3
    assert (dwell.summary()["median_days"] > 0).all()


@pytest.mark.slow  # real NUTS fits (the smoke fits: pooled_fit, the dwell one below)
def test_dwell_time_recovery_and_time_to_conversion(uncensored, pooled_fit):
    jr, truth = uncensored
    dwell = DwellTimeModel(
        jr.stage_durations(by="segment"),
        model_config={"truncate_days": jr.inactivity_days},
        sampler_config=FAST,
    )
    dwell.fit()
    assert dwell.check()["ok"].all()
    assert dwell.n_dropoff_excluded > 0
    mu = interval_table(dwell.idata.posterior["mu"])
    cov = coverage(mu, truth.dwell[["segment", "stage", "mu"]], ["segment", "stage"], col="mu")
    assert cov >= 0.75
    summ = dwell.summary().merge(truth.dwell, on=["segment", "stage"], suffixes=("", "_true"))
    inside = (summ["mean_lower"] <= summ["mean_days_true"]) & (
        summ["mean_days_true"] <= summ["mean_upper"]
    )
    assert inside.mean() >= 0.75
    days = expected_time_to_conversion(pooled_fit[0], dwell).mean("draw").to_pandas()
    assert (days["Do"] < days["Think"]).all() and (days["Think"] > 0).all()
    surv = dwell.survival(np.array([0.5, 5.0, 29.0]))
    s = surv.set_index(["segment", "stage", "days"])["mean"].unstack("days")
    assert (s[0.5] > s[5.0]).all() and (s[29.0] < 0.05).all()


def test_dwell_input_errors():
    ok = pd.DataFrame(
        {
            "segment": "a",
            "stage": ["See", "Do"],
            "duration_days": [1.0, 2.0],
            "censored": [False, False],
        }
    )
    DwellTimeModel(ok)
    with pytest.raises(DataError, match="missing, negative or not numbers") as e:
        DwellTimeModel(ok.assign(duration_days=[1.0, -2.0]))
    assert e.value.rows == [2]
    with pytest.raises(DataError, match=r"every visit to stage\(s\) \['Do'\] is censored"):
        DwellTimeModel(ok.assign(censored=[False, True]))
    with pytest.raises(DataError, match="completed visit"):
        DwellTimeModel(ok.assign(duration_days=[1.0, 40.0]), model_config={"truncate_days": 30})
    with pytest.raises(ModelConfigError, match="dropoff"):
        DwellTimeModel(ok, model_config={"dropoff": "keep"})


# ------------------------------------------------------------------------- slow: the study
@pytest.mark.slow
def test_recovery_study_over_seeds():
    """Three seeds × 4 segments × 18 cells: 90% intervals cover the truth 80-97% of the time, the
    planted friction point is found every time, and a 1% segment is closer to the truth with
    partial pooling than without."""
    hits, errs = [], {"partial": 0.0, "none": 0.0}
    for seed in (1, 2, 3):
        ev, truth = synth.generate(
            8000, seed=seed, censor=False, segment_weights=(0.5, 0.3, 0.19, 0.01)
        )
        jr = analysis.build_journeys(analysis.stitch_identities(ev))
        counts = jr.stage_transitions(by="segment")
        tr = truth.transitions[truth.transitions.allowed]
        pooled = StageTransitionModel(
            counts, stage_map=truth_map(truth), sampler_config={"random_seed": seed}
        )
        pooled.fit()
        assert pooled.check()["ok"].all()
        t = pooled.transition_probabilities().merge(tr, on=["segment", "from_stage", "to_stage"])
        hits += list((t["lower"] <= t["p"]) & (t["p"] <= t["upper"]))
        fp = pooled.friction_point(truth.friction["reduction_share"]).set_index("segment")
        assert fp.loc[truth.friction["segment"], "stage"] == truth.friction["stage"], seed
        flat = StageTransitionModel(
            counts, stage_map=truth_map(truth), model_config={"pooling": "none"}
        )
        flat.fit(method="conjugate")
        small = truth.segment_weights.idxmin()
        for name, m in (("partial", pooled), ("none", flat)):
            est = m.transition_probabilities().merge(tr, on=["segment", "from_stage", "to_stage"])
            est = est[est.segment == small]
            errs[name] += float(((est["mean"] - est["p"]) ** 2).sum())
    cov = float(np.mean(hits))
    print(
        f"recovery study: 90% coverage {cov:.3f} over {len(hits)} cells; squared error of the small segment {errs}"
    )
    assert 0.80 <= cov <= 0.97, f"coverage {cov:.3f} over {len(hits)} cells"
    assert errs["partial"] < errs["none"], errs


def test_kaplan_meier_without_censoring_is_one_minus_the_ecdf():
    rng = np.random.default_rng(3)
    d = pd.DataFrame(
        {
            "segment": "a",
            "stage": "See",
            "duration_days": rng.lognormal(1, 0.5, 200),
            "censored": False,
        }
    )
    km = DwellTimeModel(d).kaplan_meier().sort_values("days")
    ecdf = np.arange(1, 201) / 200
    np.testing.assert_allclose(km["survival"].to_numpy(), 1 - ecdf, atol=1e-12)
    # the shortest visit censored: no step there, and the next one is 1/199 (one fewer at risk)
    d.loc[d.duration_days.idxmin(), "censored"] = True
    km2 = DwellTimeModel(d).kaplan_meier().sort_values("days")["survival"].to_numpy()
    assert km2[0] == 1.0 and km2[1] == pytest.approx(1 - 1 / 199) and km2[-1] == 0.0


def test_stage_durations_mature_days(censored):
    jr, _ = censored
    full = jr.stage_durations(by="segment")
    mature = jr.stage_durations(by="segment", mature_days=2 * jr.inactivity_days)
    assert 0 < len(mature) < len(full)
    assert (mature["exit"] == OPEN).mean() < 0.2 * max((full["exit"] == OPEN).mean(), 1e-9) + 1e-3
