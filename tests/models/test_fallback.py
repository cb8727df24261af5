"""on_fail="fallback": a fit that fails its checks is replaced by the model's exact fallback,
says so, and is cached like a good fit; the second try escalates what helps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from analysis.models._fit import retry_settings
from analysis.models.base import ConvergenceError
from analysis.models.conversion import ConversionModel
from analysis.models.transitions import DwellTimeModel, StageTransitionModel

NEVER = {"max_divergences": -1}  # a check no fit can pass


def _counts() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "segment": ["a"] * 4 + ["b"] * 4,
            "from_stage": ["(start)", "See", "See", "Do"] * 2,
            "to_stage": ["See", "Do", "(dropoff)", "(conversion)"] * 2,
            "n": [100, 60, 40, 30, 50, 10, 40, 4],
        }
    )


def _fake_nuts(model, cfg):
    """Stand-in for NUTS (no MCMC in the fast suite): exact draws of the fallback, labelled as
    a sampled fit with no divergences, so the checks run as on a real fit (and fail NEVER)."""
    idata = model._fallback_fit()
    post = idata.posterior
    idata.fit_data.attrs["method"] = "nuts"
    idata.add_groups(
        sample_stats=xr.Dataset(
            {
                "diverging": (
                    ("chain", "draw"),
                    np.zeros((post.sizes["chain"], post.sizes["draw"]), bool),
                )
            },
            coords={"chain": post["chain"], "draw": post["draw"]},
        )
    )
    model.fit_note, model.fit_seconds, model.idata = None, 0.1, idata
    return idata


@pytest.fixture
def fake_nuts(monkeypatch):
    calls = []

    def sample(self, cfg):
        calls.append(type(self).__name__)
        return _fake_nuts(self, cfg)

    for cls in (StageTransitionModel, DwellTimeModel, ConversionModel):
        monkeypatch.setattr(cls, "_sample_with_retry", sample)
    return calls


def test_fallback_replaces_a_failed_transition_fit_with_the_conjugate_model(fake_nuts):
    sampler = {"random_seed": 3, "draws": 200, "chains": 2, **NEVER}
    m = StageTransitionModel(_counts(), sampler_config={**sampler, "on_fail": "fallback"})
    m.fit()
    assert m.fallback and "conjugate" in m.fallback and "divergences" in m.failed_checks
    assert "failed its convergence checks" in m.fit_note and m.fallback in m.fit_note
    assert not m.failed_diagnostics["ok"].all() and m.check()["ok"].all()
    # the numbers shown are the fallback's own: the unpooled conjugate model's exact draws
    ref = StageTransitionModel(_counts(), model_config={"pooling": "none"}, sampler_config=sampler)
    ref.fit(method="conjugate")
    np.testing.assert_array_equal(m.p.to_numpy(), ref.p.to_numpy())
    conv = m.conversion_probability()
    assert np.isfinite(conv.to_numpy()).all()
    # the same failure with the strict setting raises
    strict = StageTransitionModel(_counts(), sampler_config={**sampler, "on_fail": "raise"})
    with pytest.raises(ConvergenceError, match="did not converge"):
        strict.fit()


def test_a_failed_fit_is_cached_and_falls_back_again_without_sampling(fake_nuts, tmp_path):
    sampler = {"random_seed": 0, "draws": 100, "chains": 2, **NEVER}
    first = StageTransitionModel(_counts(), sampler_config={**sampler, "on_fail": "fallback"})
    first.fit_cached(cache_dir=tmp_path)
    assert fake_nuts == ["StageTransitionModel"] and len(list(tmp_path.glob("*.nc"))) == 1
    # the strict user asks for the same fit: same cache entry (on_fail is not in the key), no refit
    again = StageTransitionModel(_counts(), sampler_config={**sampler, "on_fail": "raise"})
    with pytest.raises(ConvergenceError):
        again.fit_cached(cache_dir=tmp_path)
    report = StageTransitionModel(_counts(), sampler_config={**sampler, "on_fail": "fallback"})
    report.fit_cached(cache_dir=tmp_path)
    assert fake_nuts == ["StageTransitionModel"]  # sampled once in all
    assert report.fallback == first.fallback
    np.testing.assert_array_equal(report.p.to_numpy(), first.p.to_numpy())


def test_no_fallback_when_the_fit_passes(fake_nuts):
    m = StageTransitionModel(
        _counts(), sampler_config={"draws": 400, "chains": 4, "on_fail": "fallback"}
    )
    m.fit()
    assert m.fallback is None and m.failed_checks is None and m.fit_note is None


def test_dwell_fallback_recovers_lognormal_times_from_completed_visits(fake_nuts):
    rng = np.random.default_rng(1)
    rows = []
    for seg, mu in (("a", 1.0), ("b", 2.0)):
        for stage in ("See", "Do"):
            d = np.exp(rng.normal(mu + (stage == "Do") * 0.5, 0.8, 400))
            rows.append(
                pd.DataFrame(
                    {"segment": seg, "stage": stage, "duration_days": d, "censored": False}
                )
            )
    df = pd.concat(rows, ignore_index=True)
    m = DwellTimeModel(
        df, sampler_config={"draws": 300, "chains": 2, "on_fail": "fallback", **NEVER}
    )
    m.fit()
    assert m.fallback and "completed visits" in m.fallback
    med = m.summary().set_index(["segment", "stage"])["median_days"]
    truth = {("a", "See"): 1.0, ("a", "Do"): 1.5, ("b", "See"): 2.0, ("b", "Do"): 2.5}
    for key, mu in truth.items():
        assert abs(np.log(med[key]) - mu) < 0.12, key
    sig = m.idata.posterior["sigma"].mean(("chain", "draw")).to_numpy()
    np.testing.assert_allclose(sig, 0.8, atol=0.06)
    # without the fallback setting the failure is an error, as before
    strict = DwellTimeModel(df, sampler_config={"draws": 100, "chains": 2, **NEVER})
    with pytest.raises(ConvergenceError):
        strict.fit()


def test_conversion_fallback_gives_each_cell_its_own_beta_rate(fake_nuts):
    counts = pd.DataFrame(
        {"channel": ["a", "b", "c"], "n": [100, 10, 1], "conversions": [30, 1, 1]}
    )
    m = ConversionModel(
        counts,
        effects="channel",
        sampler_config={"draws": 2000, "chains": 2, "on_fail": "fallback", **NEVER},
    )
    m.fit()
    assert m.fallback and "Beta" in m.fallback
    r = m.rates("channel").set_index("channel")["mean"]
    np.testing.assert_allclose(r.to_numpy(), [(30 + 1) / 102, 2 / 12, 2 / 3], atol=0.02)
    assert m.spreads().empty


@pytest.mark.parametrize(
    ("cfg", "expected"),
    [
        (
            {
                "target_accept": 0.9,
                "tune": 500,
                "retry_target_accept": 0.99,
                "retry_tune_factor": 2,
            },
            (0.99, 500),
        ),
        # 0.99 already in force (the dwell model's default): the retry must change something else
        (
            {
                "target_accept": 0.99,
                "tune": 500,
                "retry_target_accept": 0.99,
                "retry_tune_factor": 2,
            },
            (0.99, 1000),
        ),
        (
            {
                "target_accept": 0.99,
                "tune": 500,
                "retry_target_accept": 0.99,
                "retry_tune_factor": None,
            },
            None,
        ),
        (
            {
                "target_accept": 0.9,
                "tune": 500,
                "retry_target_accept": None,
                "retry_tune_factor": None,
            },
            None,
        ),
    ],
)
def test_the_second_try_never_repeats_the_first(cfg, expected):
    got = retry_settings(cfg)
    assert (got[:2] if got else None) == expected


def test_on_fail_warn_keeps_the_failed_draws_and_warns(fake_nuts):
    """The fast twin of test_transitions' slow test_non_convergence_is_loud (warn path)."""
    from analysis.models import ConvergenceWarning

    m = StageTransitionModel(_counts(), sampler_config={**NEVER, "on_fail": "warn"})
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        m.fit()
    assert m.fallback is None and not m.check()["ok"].all()
