"""BayesianAttributionModel: recovery of the synthetic truth's channel effects, input checks,
save/load. The truth (``SynthTruth.channel_effects``) is exact absorbing-chain algebra on the
generator's own parameters, independent of the model.

One real NUTS fit runs in the default suite (:func:`test_a_small_fit_converges`, the smoke fit);
the recovery studies run with ``make test-slow``. The attribution tables, save/load and the
removal-effects file are checked on prior draws (:func:`prior_fitted`): they are algebra on
whatever draws the model holds.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

import analysis
from analysis import synth
from analysis.models.attribution import BayesianAttributionModel, heuristic_attribution
from analysis.schema import CONVERSION, DROPOFF, START, DataError


def _fit(n_persons: int, seed: int, **sampler):
    events, truth = synth.generate(n_persons=n_persons, seed=seed)
    jr = analysis.build_journeys(analysis.stitch_identities(events))
    model = BayesianAttributionModel(jr, sampler_config={"random_seed": seed, **sampler})
    model.fit()
    return model, truth, jr


def _against_truth(model, truth) -> pd.DataFrame:
    out = model.attribution(weights=truth.segment_weights).set_index("channel")
    out["truth"] = truth.channel_effects.set_index("channel")["incremental_conversions_per_1000"]
    out["covered"] = (out["per_1000_lower"] <= out["truth"]) & (
        out["truth"] <= out["per_1000_upper"]
    )
    return out


def _last_touch_spearman(jr, out: pd.DataFrame) -> float:
    paths = jr.channel_paths(exposures_only=True)
    lt = heuristic_attribution(paths[paths["path"] != "(none)"]).set_index("channel")[
        "last_touch_conversions"
    ]
    return spearmanr(lt.reindex(out.index).fillna(0), out["truth"]).statistic


@pytest.fixture(scope="module")
def synth600():
    """600 synthetic persons (four segments) and the generator's truth."""
    return synth.generate(n_persons=600, seed=5)


@pytest.fixture(scope="module")
def journeys600(synth600):
    """The journeys of :func:`synth600`."""
    return analysis.build_journeys(analysis.stitch_identities(synth600[0]))


def _prior_fit(model: BayesianAttributionModel, *, chains: int = 2, draws: int = 250, seed=0):
    """Give ``model`` prior draws as its fit: the cheap stand-in for NUTS in API tests.

    Independent exact draws (no divergences), so the convergence checks pass as they do for a
    conjugate fit; the draws go through the model's own post-processing.
    """
    import arviz as az
    import pymc as pm
    import xarray as xr

    with model.build_model(), warnings.catch_warnings():
        # the likelihood is a Potential, which prior draws ignore: that is the point here
        warnings.filterwarnings("ignore", message="The effect of Potentials")
        prior = pm.sample_prior_predictive(draws=chains * draws, random_seed=seed).prior
    prior = prior.isel(chain=0, drop=True)
    post = xr.concat(
        [
            prior.isel(draw=slice(c * draws, (c + 1) * draws)).assign_coords(draw=np.arange(draws))
            for c in range(chains)
        ],
        dim="chain",
    ).assign_coords(chain=np.arange(chains))
    stats = xr.Dataset(
        {"diverging": (("chain", "draw"), np.zeros((chains, draws), dtype=bool))},
        coords={"chain": np.arange(chains), "draw": np.arange(draws)},
    )
    model.fit_seconds = 0.0
    model.idata = model._finish(
        az.InferenceData(posterior=post, sample_stats=stats), sampler="prior", method="prior"
    )
    return model


@pytest.fixture(scope="module")
def prior_fitted(journeys600):
    """A four-segment model whose "fit" is prior draws (no NUTS), and its journeys."""
    return _prior_fit(BayesianAttributionModel(journeys600)), journeys600


def test_a_small_fit_converges(journeys600):
    """The smoke fit: one real NUTS fit (one segment, 600 persons) converges with the model's
    default sampler settings and gives a full attribution table."""
    model = BayesianAttributionModel(
        journeys600, group=None, sampler_config={"random_seed": 5, "progressbar": False}
    )
    model.fit()
    assert model.check()["ok"].all()
    assert model.fit_note is None  # converged at the first try
    out = model.attribution()
    assert list(out["channel"]) == model.channels
    assert out[["conversions", "per_1000", "beta"]].notna().all().all()
    assert out["share"].sum() == pytest.approx(1.0)
    assert (out["per_1000_lower"] <= out["per_1000_upper"]).all()


@pytest.fixture(scope="module")
def recovered():
    return _fit(5000, 3)


@pytest.mark.slow
def test_recovers_the_ranking_and_covers_the_true_effects(recovered):
    """Recovery (a NUTS fit of 5,000 persons): the ranking, the intervals, better than last
    touch; ``make test-slow``. The smoke fit in the default suite is
    :func:`test_a_small_fit_converges`."""
    model, truth, jr = recovered
    assert model.check()["ok"].all()
    out = _against_truth(model, truth)
    rho = spearmanr(out["per_1000"], out["truth"]).statistic
    print(out[["per_1000", "per_1000_lower", "per_1000_upper", "truth", "covered"]].round(2))
    print(f"Spearman {rho:.3f}, covered {int(out['covered'].sum())}/{len(out)}")
    assert rho >= 0.9
    # 90% intervals: 10 channels, so one miss is expected now and then; the slow study counts
    assert out["covered"].sum() >= 8
    # the log-odds effects themselves
    betas = truth.channel_betas.reindex(out.index)
    assert ((out["beta_lower"] <= betas) & (betas <= out["beta_upper"])).sum() >= 8
    # last touch on the same data (paths of marketing touches only: the purchase row's channel
    # would make it worse) ranks channels by where they sit in the funnel, not by effect
    rho_lt = _last_touch_spearman(jr, out)
    print(f"last touch Spearman {rho_lt:.3f}")
    assert rho_lt < rho - 0.3


def test_by_segment_and_shares(prior_fitted, synth600):
    model, _ = prior_fitted
    seg = model.attribution(by_segment=True)
    assert set(seg["segment"]) == set(synth600[1].segments)
    np.testing.assert_allclose(seg.groupby("segment")["share"].sum(), 1.0)
    overall = model.attribution()
    # conversions brought overall = the sum over segments (same draws, same seed)
    np.testing.assert_allclose(
        seg.groupby("channel")["conversions"].sum().reindex(overall["channel"]).to_numpy(),
        overall["conversions"].to_numpy(),
        rtol=1e-9,
    )


def test_save_load_round_trip(prior_fitted, tmp_path):
    model, _ = prior_fitted
    path = model.save(tmp_path / "bam.nc")
    back = BayesianAttributionModel.load(path, data=model.data)
    assert back.channels == model.channels and back.level_ages == model.level_ages
    pd.testing.assert_frame_equal(back.attribution(), model.attribution())


@pytest.mark.slow
def test_recovery_study_over_seeds():
    """Eight seeds (not the fast test's): Spearman >= 0.9 on average and >= 0.85 on each, the
    90% intervals cover about 90% of the 80 true effects (the channels of one seed share the
    fitted intercepts, so misses come in groups: the band is wide), and the model beats last
    touch on every seed."""
    covered, total, rhos = 0, 0, []
    for seed in (0, 1, 2, 4, 5, 6, 7, 8):
        model, truth, jr = _fit(5000, seed)
        out = _against_truth(model, truth)
        rho = spearmanr(out["per_1000"], out["truth"]).statistic
        rho_lt = _last_touch_spearman(jr, out)
        print(
            f"seed {seed}: Spearman {rho:.3f} (last touch {rho_lt:.3f}), "
            f"covered {int(out['covered'].sum())}/{len(out)}"
        )
        rhos.append(rho)
        covered += int(out["covered"].sum())
        total += len(out)
        assert rho > rho_lt
    print(f"coverage {covered}/{total} = {covered / total:.3f}")
    print(f"Spearman mean {np.mean(rhos):.3f}, min {min(rhos):.3f}")
    assert np.mean(rhos) >= 0.9 and min(rhos) >= 0.85
    assert 0.75 <= covered / total <= 0.98


# ------------------------------------------------------------------------------- bad input
def _table(**over):
    rows = [
        ("all", START, "See", 0, 0, 10),
        ("all", "See", "Do", 1, 0, 6),
        ("all", "See", DROPOFF, 0, 1, 4),
        ("all", "Do", CONVERSION, 1, 1, 3),
        ("all", "Do", DROPOFF, 0, 0, 3),
    ]
    df = pd.DataFrame(rows, columns=["segment", "from_stage", "to_stage", "email", "store", "n"])
    for k, v in over.items():
        df[k] = v
    return df


def test_bad_exposure_tables_are_named():
    with pytest.raises(DataError, match="missing column"):
        BayesianAttributionModel(_table().drop(columns="n"), channels=["email", "store"])
    bad = _table()
    bad.loc[2, "email"] = 9
    with pytest.raises(DataError, match=r"'email'.*exposure levels") as e:
        BayesianAttributionModel(bad, channels=["email", "store"])
    assert "row" in str(e.value)
    bad = _table()
    bad.loc[1, "n"] = -1
    with pytest.raises(DataError, match="whole numbers"):
        BayesianAttributionModel(bad, channels=["email", "store"])
    none = _table()
    none = none[none["to_stage"] != CONVERSION]
    with pytest.raises(DataError, match="no conversions"):
        BayesianAttributionModel(none, channels=["email", "store"])
    with pytest.raises(DataError, match="named like a state"):
        BayesianAttributionModel(
            _table().rename(columns={"email": CONVERSION}), channels=[CONVERSION, "store"]
        )
    with pytest.raises(TypeError, match="stage_exposures"):
        BayesianAttributionModel([1, 2, 3])


def test_patterns_and_chain_inputs_are_counted():
    m = BayesianAttributionModel(_table(), channels=["email", "store"])
    assert m.n_visits == 16 and m.n_journeys.sum() == 10
    assert m.stages == ["See", "Do"]
    assert m.n_patterns == 4


def test_segments_subset(prior_fitted):
    model, _ = prior_fitted
    seg = model.attribution(by_segment=True)
    one = model.attribution(segments=["enterprise"])
    ent = seg[seg["segment"] == "enterprise"].set_index("channel")
    np.testing.assert_allclose(
        one.set_index("channel")["conversions"], ent["conversions"], rtol=1e-9
    )
    np.testing.assert_allclose(one.set_index("channel")["per_1000"], ent["per_1000"], rtol=1e-9)
    assert set(model.attribution(by_segment=True, segments=["enterprise"])["segment"]) == {
        "enterprise"
    }
    with pytest.raises(ValueError, match="unknown"):
        model.attribution(segments=["nope"])


@pytest.mark.parametrize("effects", ["none", "noncentered", "centered"])
def test_likelihood_equals_a_direct_computation(journeys600, effects):
    """The model's likelihood term equals the binomial log-likelihood computed here in numpy,
    straight from the definition (x = 1 during the visit, 2^(-age / half_life) for earlier
    touches; exposures centred per stage, visit-weighted), at a random parameter point."""
    model = BayesianAttributionModel(journeys600, model_config={"segment_effects": effects})
    pm_model = model.build_model()
    rng = np.random.default_rng(1)
    point = {
        v.name: rng.normal(0, 0.5, size=pm_model.initial_point()[v.name].shape)
        for v in pm_model.value_vars
    }
    outputs = pm_model.replace_rvs_by_values(
        [
            pm_model["loglik"],
            pm_model["alpha_centered"],
            pm_model["beta_segment"],
            pm_model["half_life"],
        ]
    )
    loglik, alpha_c, beta_g, half_life = pm_model.compile_fn(
        outputs, inputs=pm_model.value_vars, on_unused_input="ignore"
    )(point)

    L, ps, pg, n, k = model._L, model._ps, model._pg, model._pn, model._pk
    x = (L == 1).astype(float)
    for i, age in enumerate(model.level_ages):
        x += np.where(L == 2 + i, 2.0 ** (-age / half_life), 0.0)
    xbar = np.stack(
        [
            np.average(x[ps == s], axis=0, weights=n[ps == s])
            if (ps == s).any()
            else np.zeros(x.shape[1])
            for s in range(len(model.stages))
        ]
    )
    eta = alpha_c[pg, ps] + ((x - xbar[ps]) * beta_g[pg]).sum(1)
    expected = (k * eta - n * np.logaddexp(0.0, eta)).sum()
    assert loglik == pytest.approx(expected, rel=1e-10)


def test_a_cached_fit_keeps_its_removal_effects_on_disk(prior_fitted, tmp_path, monkeypatch):
    """Loaded by fit_cached, the model saves its removal effects (keyed by the draws) and a later
    load reuses them, equal to the computed ones; a fit with other draws does not."""
    model, jr = prior_fitted
    fresh = model.removal_effects()  # computed in memory (fit(), no cache folder)
    assert model.derived_cache_dir is None
    first = BayesianAttributionModel(jr, sampler_config=dict(model.sampler_config))
    model.save(tmp_path / f"{first._model_type}-{first.cache_key()}.nc")  # where fit_cached looks
    first.fit_cached(cache_dir=tmp_path)
    np.testing.assert_array_equal(first.removal_effects().to_numpy(), fresh.to_numpy())
    assert len(list((tmp_path / "derived").glob("removal-effects-*.npz"))) == 1

    def not_again(*a, **k):
        raise AssertionError("recomputed")

    again = BayesianAttributionModel(jr, sampler_config=dict(model.sampler_config))
    again.fit_cached(cache_dir=tmp_path)
    monkeypatch.setattr(BayesianAttributionModel, "_removal_effects", not_again)
    loaded = again.removal_effects()
    np.testing.assert_array_equal(loaded.to_numpy(), fresh.to_numpy())
    assert list(loaded["channel"].values) == list(fresh["channel"].values)
    # other draws (another seed's subset): another file, computed
    with pytest.raises(AssertionError, match="recomputed"):
        again.removal_effects(seed=1)


@pytest.mark.slow
def test_two_small_segments_converge_with_the_default_settings():
    """Two segments of 30-60 people each: with only two groups the segment spread of the stage
    intercepts is barely identified, and at target_accept 0.9 NUTS often failed a check (5 of
    15 such data sets of 80 and 150 persons tried, mostly divergences; here seeds 1, 7 and 8).
    With the defaults (``retry_target_accept`` 0.99) every fit converges; where the first try
    failed, ``fit_note`` says the fit was sampled again."""
    from analysis.models.base import ConvergenceError

    failed, retried = [], 0
    for seed in (1, 2, 3, 7, 8):
        events, _ = synth.generate(n_persons=150, seed=seed)
        events = analysis.stitch_identities(
            events[events["segment"].isin(["consumer", "small_business"])]
        )
        jr = analysis.build_journeys(events, inactivity_days=30)
        model = BayesianAttributionModel(jr, group="segment", sampler_config={"progressbar": False})
        assert len(model.segments) == 2
        try:
            model.fit()
        except ConvergenceError as e:
            failed.append((seed, str(e)))
            continue
        assert model.check()["ok"].all()
        retried += model.fit_note is not None
    assert not failed, failed
    assert retried >= 1, "no data set needed the second try: the study no longer tests it"
