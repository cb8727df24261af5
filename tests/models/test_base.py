"""models.base: fit_cached reuses a saved fit only for the same data, configs and code."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.models import base
from analysis.models.transitions import StageTransitionModel


def _counts(n_convert: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "segment": ["a"] * 4,
            "from_stage": ["(start)", "See", "See", "Do"],
            "to_stage": ["See", "Do", "(dropoff)", "(conversion)"],
            "n": [100, 60, 40, n_convert],
        }
    )


def _model(n_convert: int = 30, seed: int = 0) -> StageTransitionModel:
    return StageTransitionModel(
        _counts(n_convert),
        model_config={"pooling": "none"},
        sampler_config={"random_seed": seed, "draws": 50, "chains": 2},
    )


def test_fit_cached_loads_the_same_fit_and_misses_on_any_change(tmp_path, monkeypatch):
    first = _model()
    first.fit_cached(cache_dir=tmp_path, method="conjugate")
    assert len(list(tmp_path.glob("*.nc"))) == 1
    calls = []
    real_fit = StageTransitionModel._fit_unchecked
    monkeypatch.setattr(
        StageTransitionModel,
        "_fit_unchecked",
        lambda self, **kw: (calls.append(kw), real_fit(self, **kw))[1],
    )
    again = _model()
    again.fit_cached(cache_dir=tmp_path, method="conjugate")
    assert calls == []  # loaded, not refitted
    assert (again.idata.posterior["p"] == first.idata.posterior["p"]).all()
    for changed in (_model(n_convert=31), _model(seed=1)):  # other data, other sampler config
        changed.fit_cached(cache_dir=tmp_path, method="conjugate")
    assert len(calls) == 2


def test_cache_key_follows_the_model_code(monkeypatch):
    m = _model()
    key = m.cache_key()
    monkeypatch.setattr(base, "code_hash", lambda cls, modules: "edited")
    assert m.cache_key() != key


def _fit_in_process(cache_dir: str) -> float:
    """Fit (or load) in a fresh process; every real fit appends a line to fits.log and takes a
    second, so that two processes started together overlap."""
    import time

    real_fit = StageTransitionModel._fit_unchecked

    def slow_fit(self, **kw):
        with open(f"{cache_dir}/fits.log", "a") as f:
            f.write("fit\n")
        time.sleep(1.0)
        return real_fit(self, **kw)

    StageTransitionModel._fit_unchecked = slow_fit
    m = _model()
    m.fit_cached(cache_dir=cache_dir, method="conjugate")
    return float(m.idata.posterior["p"].mean())


def test_concurrent_fit_cached_fits_once(tmp_path):
    """Two processes asking for the same fit: one fits, the other waits on the lock and loads."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    with ctx.Pool(2) as pool:
        means = pool.map(_fit_in_process, [str(tmp_path)] * 2, chunksize=1)
    assert (tmp_path / "fits.log").read_text().count("fit") == 1
    assert means[0] == means[1]
    assert len(list(tmp_path.glob("*.nc"))) == 1


def _as_sampled(model: StageTransitionModel) -> StageTransitionModel:
    """A conjugate fit dressed as a NUTS one (its draws are exact, so it converges): the
    convergence checks then run ArviZ's summary, as for a sampled fit."""
    import numpy as np
    import xarray as xr

    model.fit(method="conjugate")
    post = model.idata.posterior
    model.idata.fit_data.attrs["method"] = "nuts"
    div = xr.Dataset(
        {
            "diverging": (
                ("chain", "draw"),
                np.zeros((post.sizes["chain"], post.sizes["draw"]), bool),
            )
        },
        coords={"chain": post["chain"], "draw": post["draw"]},
    )
    model.idata.add_groups(sample_stats=div)
    return model


def test_convergence_figures_are_saved_with_the_fit_and_recomputed_when_the_draws_change(
    tmp_path, monkeypatch
):
    model = _as_sampled(
        StageTransitionModel(
            _counts(30),
            model_config={"pooling": "none"},
            sampler_config={"random_seed": 0, "draws": 500, "chains": 4},
        )
    )
    first = model.check()
    assert first["ok"].all()
    path = model.save(tmp_path / "m.nc")
    calls = []
    real = base.az.summary
    monkeypatch.setattr(base.az, "summary", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    back = StageTransitionModel.load(path)
    pd.testing.assert_frame_equal(back.check(), first)
    assert calls == []  # read from the saved fit, not recomputed
    # other draws (one chain shifted): the stored figures no longer apply, so they are recomputed
    p = back.idata.posterior["p"]
    back.idata.posterior["p"] = p.where(p["chain"] != 0, p * 0.5)
    again = back.check()
    assert calls == [1]
    assert not again.set_index("check").loc["max r-hat", "ok"]


def test_interval_table_equals_numpy_quantiles_with_and_without_missing_draws():
    import numpy as np
    import xarray as xr

    rng = np.random.default_rng(0)
    da = xr.DataArray(
        rng.normal(size=(3, 200, 2, 5)),
        dims=("chain", "draw", "segment", "stage"),
        coords={"segment": ["a", "b"], "stage": list("vwxyz")},
    )
    for missing in (False, True):
        if missing:
            da = da.copy()
            da.values[0, :7, 1, 2] = np.nan  # NaN draws are skipped, not propagated
        t = base.interval_table(da, prob=0.8).set_index(["segment", "stage"])
        flat = da.transpose("chain", "draw", ...).to_numpy().reshape(600, 2, 5)
        np.testing.assert_allclose(t["mean"].to_numpy().reshape(2, 5), np.nanmean(flat, 0))
        for col, q in (("lower", 0.1), ("upper", 0.9)):
            np.testing.assert_allclose(
                t[col].to_numpy().reshape(2, 5), np.nanquantile(flat, q, axis=0)
            )


#: Lenient checks: a short fit of a simple model passes them (4 chains, as every other test asks).
LENIENT = {
    "random_seed": 0,
    "draws": 200,
    "tune": 200,
    "chains": 4,
    "progressbar": False,
    "ess_min_per_chain": 25,
    "rhat_max": 1.05,
}


def _check_retries(sampler: dict, seen: list, tmp_path) -> None:
    """Fit three models and check what the retry did (``seen``: the target_accept of each try).

    Passed at the first try: sampled once, no note. A check no fit can pass (divergences <= -1):
    the retry runs at the higher target_accept, then the warning, and the note is saved with the
    fit. Retries switched off: sampled once.
    """
    import warnings

    ok = StageTransitionModel(_counts(30), sampler_config=sampler)
    ok.fit()
    assert seen == [0.9] and ok.fit_note is None

    seen.clear()
    never = StageTransitionModel(
        _counts(30), sampler_config={**sampler, "max_divergences": -1, "on_fail": "warn"}
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        never.fit()
    assert seen == [0.9, 0.99]
    assert "(target_accept 0.9, 200 tuning steps) failed (divergences" in never.fit_note
    assert "again with target_accept 0.99" in never.fit_note
    assert never.idata.fit_data.attrs["fit_note"] == never.fit_note
    assert never.sampled_twice and not ok.sampled_twice
    assert any(
        "did not converge" in str(w.message) and "sampled twice" in str(w.message) for w in caught
    )
    loaded = StageTransitionModel.load(never.save(tmp_path / "m.nc"))
    assert loaded.fit_note == never.fit_note and loaded.sampled_twice

    seen.clear()
    off = StageTransitionModel(
        _counts(30),
        sampler_config={
            **sampler,
            "max_divergences": -1,
            "on_fail": "warn",
            "retry_target_accept": None,
            "retry_tune_factor": None,
        },
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        off.fit()
    assert seen == [0.9] and off.fit_note is None


@pytest.mark.slow  # three real NUTS fits; the fast twin below fakes the sampler
def test_a_failed_nuts_fit_is_sampled_again_with_smaller_steps_and_says_so(tmp_path, monkeypatch):
    """``retry_target_accept``: a fit that fails a check is sampled once more at that
    target_accept; the kept fit carries a note (saved with it); the checks still apply."""

    import pymc as pm

    seen = []
    real = pm.sample
    monkeypatch.setattr(
        pm, "sample", lambda *a, **k: (seen.append(k["target_accept"]), real(*a, **k))[1]
    )
    # lenient checks: a short fit of a simple model passes; 4 chains, as every other test asks,
    # because the first NUTS fit of the process fixes JAX's CPU device count for the rest
    _check_retries(LENIENT, seen, tmp_path)


def test_the_second_try_and_its_note_without_mcmc(tmp_path, monkeypatch):
    """The retry logic of the test above, with ``pm.sample`` replaced by exact draws dressed as
    NUTS ones (no divergences, so only the impossible check fails)."""

    import numpy as np
    import xarray as xr

    seen = []

    def fake_sample(self, cfg, sampler, target_accept, tune, kwargs):
        seen.append(target_accept)
        idata = self._conjugate_draws(cfg)
        shape = (idata.posterior.sizes["chain"], idata.posterior.sizes["draw"])
        idata.add_groups(
            sample_stats=xr.Dataset({"diverging": (("chain", "draw"), np.zeros(shape, bool))})
        )
        return idata

    monkeypatch.setattr(base.BayesianModel, "_sample", fake_sample)
    _check_retries(LENIENT, seen, tmp_path)
