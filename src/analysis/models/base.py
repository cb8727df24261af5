"""What every model class shares: configs with named priors, sampling, checks, save/load.

The shape follows pymc-marketing's model classes (see ``../shared/DESIGN.md``)::

    model = SomeModel(data, model_config={...}, sampler_config={...})
    idata = model.fit()            # ArviZ InferenceData; convergence is checked
    model.check()                  # r-hat, ESS, divergences as a table
    model.save("fit.nc"); SomeModel.load("fit.nc")

Priors are :class:`Prior` objects or plain dicts (``{"dist": "Gamma", "alpha": 2, "beta": 0.1}``)
merged over the class's ``default_model_config``; unknown keys are errors that say what exists
(:mod:`analysis.models.priors`). How NUTS is run lives in :mod:`analysis.models._fit`, what a
cached fit's key is made of in :mod:`analysis.models.cache`.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
import warnings
from pathlib import Path
from typing import Any, ClassVar

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from analysis.models._fit import (
    choose_sampler,
    first_seed,
    is_terminal,
    retry_settings,
    sampler_kwargs,
)
from analysis.models.cache import code_hash, fit_key, frame_hash
from analysis.models.convergence import diagnostic_values, failed_checks
from analysis.models.priors import ModelConfigError, Prior, jsonable, merge_config

log = logging.getLogger(__name__)

#: What a fit that fails its convergence checks does (``sampler_config["on_fail"]``).
ON_FAIL = ("raise", "warn", "fallback")

__all__ = [
    "BayesianModel",
    "ConvergenceError",
    "ConvergenceWarning",
    "ModelConfigError",
    "Prior",
    "interval_table",
]

#: Width of the credible intervals reported everywhere (equal-tailed).
INTERVAL = 0.90


class ConvergenceWarning(UserWarning):
    """The sampler's output failed a convergence check (``sampler_config["on_fail"] = "warn"``)."""


class ConvergenceError(RuntimeError):
    """The sampler's output failed a convergence check (``sampler_config["on_fail"] = "raise"``)."""

    def __init__(self, message: str, diagnostics: pd.DataFrame) -> None:
        super().__init__(message)
        self.diagnostics = diagnostics


def interval_table(
    da: xr.DataArray, *, name: str = "value", prob: float = INTERVAL
) -> pd.DataFrame:
    """Posterior mean and equal-tailed interval of every cell of ``da`` (dims ``chain``, ``draw``, …).

    Returns a tidy frame: one row per cell, the other dims as columns, then ``mean``, ``lower``,
    ``upper`` (``prob`` interval, 90% by default).
    """
    sample = [d for d in ("chain", "draw") if d in da.dims]
    lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
    # both quantiles from one sort; NaN-aware only when there are NaNs (the same values, 3-5x faster)
    q = da.quantile([lo, hi], dim=sample, skipna=bool(np.isnan(da.to_numpy()).any()))
    stats = xr.Dataset(
        {
            "mean": da.mean(sample),
            "lower": q.isel(quantile=0, drop=True),
            "upper": q.isel(quantile=1, drop=True),
        }
    )
    out = stats.to_dataframe().reset_index()
    keep = [d for d in da.dims if d not in sample] + ["mean", "lower", "upper"]
    out = out[keep]
    out.attrs["quantity"] = name
    return out


class BayesianModel:
    """Base class: configs, ``fit``, convergence checks, ``save``/``load``.

    Subclasses set ``_model_type``, ``default_model_config``, ``default_sampler_config`` (merged
    over :attr:`BASE_SAMPLER_CONFIG`), implement :meth:`build_model` and may override
    :meth:`_postprocess` (add derived draws to the posterior) and :meth:`_fit_data`.
    """

    _model_type: ClassVar[str] = "BayesianModel"
    default_model_config: ClassVar[dict[str, Any]] = {}
    default_sampler_config: ClassVar[dict[str, Any]] = {}
    #: Variables whose r-hat / ESS are checked (free parameters and their transforms).
    _check_vars: ClassVar[list[str]] = []
    #: The project modules the model's code depends on besides its own module (module names):
    #: their source is hashed into a cached fit's key (:meth:`cache_key`), so editing any of
    #: them refits. This default is the base machinery; a model whose module imports more of
    #: the project declares ``code_modules = (*BayesianModel.code_modules, "analysis.models._math")``
    #: (``tests/models/test_code_modules.py`` checks that none is missing).
    code_modules: ClassVar[tuple[str, ...]] = (
        "analysis.config",
        "analysis.errors",
        "analysis.models._fit",
        "analysis.models._validate",
        "analysis.models.base",
        "analysis.models.cache",
        "analysis.models.convergence",
        "analysis.models.priors",
        "analysis.schema",
    )

    #: Sampler settings every model understands.
    #:
    #: - ``draws``, ``tune``, ``chains``, ``target_accept``, ``random_seed`` as in ``pm.sample``;
    #: - ``nuts_sampler``: ``"numpyro"`` (JAX; default when installed: fastest cold start here,
    #:   see ``bench/transitions.py``), ``"pymc"`` or ``"nutpie"``;
    #: - ``chain_method`` (numpyro): ``"parallel"`` (default; one CPU device per chain when JAX
    #:   has not started yet, else one chain after another) or ``"vectorized"`` (lock-step; several
    #:   times slower here);
    #: - ``dense_mass``: adapt a dense mass matrix (default True: simplex coordinates are
    #:   correlated, and with a diagonal one NUTS needs ~10x more steps per draw): numpyro
    #:   ``dense_mass``, PyMC ``init="jitter+adapt_full"``, nutpie's low-rank modified mass matrix;
    #: - ``progressbar``: ``None`` shows one only on a terminal;
    #: - ``rhat_max`` (1.01), ``ess_min_per_chain`` (100, bulk and tail), ``max_divergences`` (0);
    #: - ``on_fail``: what a fit that fails its checks (after the second try) does:
    #:   ``"raise"`` (:class:`ConvergenceError`), ``"warn"`` (:class:`ConvergenceWarning`; the
    #:   failed draws are kept) or ``"fallback"``: the model's nearest model that needs no MCMC
    #:   (``fallback_name``; e.g. the exact conjugate model without pooling) replaces the draws,
    #:   ``fallback`` and ``failed_checks`` say so, and ``failed_diagnostics`` keeps the failed
    #:   table. A model without a fallback raises as with ``"raise"``. Reports use
    #:   ``"fallback"``: a report never fails because a sampler did not converge on someone's data;
    #: - ``retry_target_accept`` (0.99) and ``retry_tune_factor`` (2): when a NUTS fit fails a
    #:   check, sample once more with ``target_accept`` raised to ``retry_target_accept`` (smaller
    #:   steps: what divergences in a funnel usually need) — or, where the first fit already ran
    #:   at that value, with ``retry_tune_factor`` times the tuning steps (a better-adapted step
    #:   size and mass matrix: what low ESS at a high target_accept needs) — and keep that fit;
    #:   ``fit_note`` says so, and the checks still apply to it. Both ``None``: no second try.
    BASE_SAMPLER_CONFIG: ClassVar[dict[str, Any]] = {
        "draws": 1000,
        "tune": 1000,
        "chains": 4,
        "target_accept": 0.9,
        "random_seed": 0,
        "nuts_sampler": "auto",
        "chain_method": "parallel",
        "dense_mass": True,
        "progressbar": None,
        "rhat_max": 1.01,
        "ess_min_per_chain": 100,
        "max_divergences": 0,
        "on_fail": "raise",
        "retry_target_accept": 0.99,
        "retry_tune_factor": 2,
    }

    #: What replaces the draws with ``on_fail="fallback"`` (None: no fallback; see :meth:`_fallback_fit`).
    fallback_name: ClassVar[str | None] = None

    def __init__(
        self,
        data: pd.DataFrame,
        *,
        model_config: dict[str, Any] | None = None,
        sampler_config: dict[str, Any] | None = None,
    ) -> None:
        self.model_config = merge_config(self.default_model_config, model_config, "model_config")
        self.sampler_config = merge_config(
            {**self.BASE_SAMPLER_CONFIG, **self.default_sampler_config},
            sampler_config,
            "sampler_config",
        )
        if self.sampler_config["on_fail"] not in ON_FAIL:
            raise ModelConfigError(
                f"sampler_config['on_fail'] must be one of {list(ON_FAIL)}, "
                f"got {self.sampler_config['on_fail']!r}"
            )
        self.data = data
        self.idata: az.InferenceData | None = None
        self.model: Any = None  # the PyMC model, once built
        self.diagnostics: pd.DataFrame | None = None
        #: set by :meth:`fit_cached`: where results computed from the draws may be kept
        self.derived_cache_dir: Path | None = None
        self.fit_seconds: float | None = None
        #: how the kept fit came about when not at the first try (see ``retry_target_accept``)
        self.fit_note: str | None = None
        #: with ``on_fail="fallback"`` after a failed fit: the model shown instead (else None),
        #: the failed checks in words, and the failed fit's convergence table
        self.fallback: str | None = None
        self.failed_checks: str | None = None
        self.failed_diagnostics: pd.DataFrame | None = None

    # --------------------------------------------------------------------------- to override
    def build_model(self) -> Any:  # pragma: no cover - abstract
        """Return the PyMC model (every model class implements it)."""
        raise NotImplementedError

    def _postprocess(self, idata: az.InferenceData) -> az.InferenceData:
        return idata

    def _fit_data(self) -> pd.DataFrame:
        return self.data

    def _initial_points(
        self, chains: int, rng: np.random.Generator
    ) -> list[dict[str, np.ndarray]] | None:
        """Return dispersed starting points, one dict per chain, or None for PyMC's jittered ones.

        A point holds constrained values by variable name. Giving them spares the JAX back end an eager, op-by-op
        (and so compile-heavy) evaluation of the log-density at every jittered point.
        """
        return None

    def _extra_attrs(self) -> dict[str, str]:
        """Return the constructor arguments besides data and configs, as strings, for :meth:`load`."""
        return {}

    def _fallback_fit(self) -> az.InferenceData:
        """Return the posterior draws of the fallback model (:attr:`fallback_name`).

        They are finished with :meth:`_finish` (``method="conjugate"``: exact draws, no MCMC). Models that have one
        override this and set ``fallback_name``.
        """
        raise NotImplementedError

    # --------------------------------------------------------------------------------- fit
    @property
    def sampled_twice(self) -> bool:
        """Return whether the kept fit is the second try (the first failed its checks).

        Only a second try writes :attr:`fit_note`, which is saved with the fit, so a fit loaded
        from the cache answers the same.
        """
        return bool(self.fit_note)

    @property
    def data_hash(self) -> str:
        """Content hash of the data the model is fitted to (:func:`~analysis.models.cache.frame_hash`)."""
        return frame_hash(self._fit_data())

    def fit(self, **sampler_overrides: Any) -> az.InferenceData:
        """Sample the posterior with NUTS, add derived draws, check convergence.

        ``sampler_overrides`` update ``sampler_config`` for this call. Returns the
        InferenceData (also kept as ``self.idata``). A fit that fails r-hat, ESS or divergence
        checks is sampled once more (``retry_target_accept``, ``retry_tune_factor``); if that
        fails too, ``on_fail`` decides: :class:`ConvergenceError`, a warning, or the fallback
        model's draws.
        """
        cfg = merge_config(self.sampler_config, sampler_overrides, "sampler_config")
        self._sample_with_retry(cfg)
        self._enforce(cfg)
        return self.idata

    def _fit_unchecked(self, **fit_kwargs: Any) -> az.InferenceData:
        """Run what :meth:`fit_cached` runs on a cache miss: the fit, before ``on_fail`` applies.

        A model with other fit methods, e.g. ``method="conjugate"``, overrides this.
        """
        return self._sample_with_retry(
            merge_config(self.sampler_config, fit_kwargs, "sampler_config")
        )

    def _sample_with_retry(self, cfg: dict[str, Any]) -> az.InferenceData:
        """NUTS draws into ``self.idata`` (a second fit when the first fails a check), unchecked."""
        sampler = choose_sampler(cfg["nuts_sampler"])
        self.model = self.build_model()
        self.fallback = self.failed_checks = self.failed_diagnostics = None
        starts = self._initial_points(
            int(cfg["chains"]), np.random.default_rng(first_seed(cfg["random_seed"]))
        )
        kwargs = sampler_kwargs(sampler, cfg, starts)
        log.info(
            "%s: sampling %d chains × %d draws (+%d tune) with %s",
            self._model_type,
            cfg["chains"],
            cfg["draws"],
            cfg["tune"],
            sampler,
        )
        t0 = time.perf_counter()
        first, tune = float(cfg["target_accept"]), int(cfg["tune"])
        idata = self._sample(cfg, sampler, first, tune, kwargs)
        self.fit_seconds = time.perf_counter() - t0
        log.info("%s: sampled in %.1f s", self._model_type, self.fit_seconds)
        self.fit_note = None
        self.idata = self._finish(idata, sampler=sampler, method="nuts")
        second = retry_settings(cfg)
        if second is None:
            return self.idata
        failed = failed_checks(self.check())
        if not failed:
            return self.idata
        target2, tune2, how = second
        log.warning(
            "%s: the fit (target_accept %g, %d tuning steps) failed (%s); sampling again with %s",
            self._model_type,
            first,
            tune,
            failed,
            how,
        )
        idata = self._sample(cfg, sampler, target2, tune2, kwargs)
        self.fit_seconds = time.perf_counter() - t0
        self.fit_note = (
            f"sampled twice: the first fit (target_accept {first:g}, {tune} tuning steps) failed "
            f"({failed}), so again with {how}; this is the second fit"
        )
        log.info("%s: sampled again in %.1f s in all", self._model_type, self.fit_seconds)
        self.idata = self._finish(idata, sampler=sampler, method="nuts")
        return self.idata

    def _sample(
        self,
        cfg: dict[str, Any],
        sampler: str,
        target_accept: float,
        tune: int,
        kwargs: dict[str, Any],
    ) -> az.InferenceData:
        """One ``pm.sample`` of :attr:`model` with ``target_accept`` and ``tune`` steps."""
        import pymc as pm

        progress = is_terminal() if cfg["progressbar"] is None else bool(cfg["progressbar"])
        with self.model, warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*There are not enough devices.*")
            return pm.sample(
                draws=int(cfg["draws"]),
                tune=tune,
                chains=int(cfg["chains"]),
                target_accept=target_accept,
                random_seed=cfg["random_seed"],
                nuts_sampler=sampler,
                progressbar=progress,
                compute_convergence_checks=False,
                idata_kwargs={"log_likelihood": False},
                **kwargs,
            )

    def cache_key(self, **fit_kwargs: Any) -> str:
        """Return the hash of everything a fit depends on.

        That is: model type, data, configs, constructor extras, ``fit`` arguments, the package
        version and the source code of the model's module and of its :attr:`code_modules`.
        """
        from analysis.config import VERSION

        return fit_key(
            self._model_type,
            self.data_hash,
            self.model_config,
            {**self.sampler_config, **fit_kwargs},
            self._extra_attrs(),
            VERSION,
            code_hash(type(self), self.code_modules),
        )

    def fit_cached(
        self, cache_dir: str | Path | None = None, **fit_kwargs: Any
    ) -> az.InferenceData:
        """Run :meth:`fit`, unless a fit of the same data and configs is saved in ``cache_dir``.

        ``cache_dir`` defaults to ``.cache/models``; a saved fit is loaded (a re-rendered report
        does not refit). Convergence is checked either way.

        Processes asking for the same fit at once (report workers running segments that share
        a pooled model) take turns on a lock file: one fits, the others wait and load its fit.

        The NUTS draws are cached whether or not they pass the checks; ``on_fail`` is applied
        after loading (with ``"fallback"`` the fallback's exact draws are recomputed: they cost
        no MCMC).

        Afterwards ``derived_cache_dir`` (``cache_dir/derived``) is set: a model may keep costly
        results computed from the draws there (keyed by the draws themselves), so a re-rendered
        report does not recompute them either.
        """
        import fcntl

        from analysis import config

        cache_dir = Path(cache_dir) if cache_dir is not None else config.CACHE_DIR / "models"
        path = cache_dir / f"{self._model_type}-{self.cache_key(**fit_kwargs)}.nc"
        overrides = {k: v for k, v in fit_kwargs.items() if k in self.sampler_config}
        cfg = merge_config(self.sampler_config, overrides, "sampler_config")
        self.derived_cache_dir = cache_dir / "derived"
        if not path.exists():
            cache_dir.mkdir(parents=True, exist_ok=True)
            with open(path.with_suffix(".lock"), "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
                if not path.exists():  # nobody fitted it while we waited
                    # saved before it is checked: a fit that fails its checks is cached too, so
                    # the next segment (or a re-run) does not sample it again to fail again
                    self._fit_unchecked(**fit_kwargs)
                    self.save(path)
                    self._enforce(cfg)
                    return self.idata
        loaded = type(self).load(path)
        self.idata, self.fit_seconds, self.fit_note = (
            loaded.idata,
            loaded.fit_seconds,
            loaded.fit_note,
        )
        self.fallback = self.failed_checks = self.failed_diagnostics = None
        log.info("%s: loaded the cached fit %s", self._model_type, path.name)
        self._enforce(cfg)
        return self.idata

    def _finish(self, idata: az.InferenceData, *, sampler: str, method: str) -> az.InferenceData:
        idata = self._postprocess(idata)
        fit_data = xr.Dataset.from_dataframe(self._fit_data().reset_index(drop=True))
        fit_data.attrs.update(
            {
                "model_type": self._model_type,
                "model_config": json.dumps(jsonable(self.model_config)),
                "sampler_config": json.dumps(jsonable(self.sampler_config)),
                "data_hash": self.data_hash,
                "method": method,
                "sampler": sampler,
                "fit_seconds": float(self.fit_seconds or 0.0),
                "fit_note": self.fit_note or "",
                **self._extra_attrs(),
            }
        )
        if "fit_data" in idata.groups():
            del idata.fit_data
        idata.add_groups(fit_data=fit_data)
        return idata

    # ------------------------------------------------------------------------------ checks
    def check(self) -> pd.DataFrame:
        """Return the convergence table: one row per check, with its value, threshold and ``ok``.

        The checks are r-hat, bulk/tail ESS and divergences. Conjugate fits (exact independent draws) pass by design.
        """
        idata = self._require_fit()
        cfg = self.sampler_config
        chains = idata.posterior.sizes["chain"]
        ess_min = float(cfg["ess_min_per_chain"]) * chains
        if idata.fit_data.attrs.get("method") == "conjugate":
            rows = [("exact draws (conjugate)", 0.0, 0.0, True)]
        else:
            v = diagnostic_values(idata, list(self._check_vars))
            rows = [
                (
                    "max r-hat",
                    v["max_rhat"],
                    float(cfg["rhat_max"]),
                    v["max_rhat"] <= cfg["rhat_max"],
                ),
                ("min bulk ESS", v["min_ess_bulk"], ess_min, v["min_ess_bulk"] >= ess_min),
                ("min tail ESS", v["min_ess_tail"], ess_min, v["min_ess_tail"] >= ess_min),
                (
                    "divergences",
                    v["divergences"],
                    float(cfg["max_divergences"]),
                    v["divergences"] <= cfg["max_divergences"],
                ),
            ]
            rows = [(name, float(value), thr, bool(ok)) for name, value, thr, ok in rows]
        self.diagnostics = pd.DataFrame(rows, columns=["check", "value", "threshold", "ok"])
        return self.diagnostics

    def _enforce(self, cfg: dict[str, Any]) -> None:
        diag = self.check()
        lines = failed_checks(diag)
        if not lines:
            return
        if cfg["on_fail"] == "fallback" and self.fallback_name is not None:
            self._use_fallback(lines, diag)
            return
        if self.fit_note:  # smaller steps did not do it: the model is too rich for the data
            lines += f" ({self.fit_note})"
            fixes = (
                "more data, or a simpler model (fewer segments, e.g. group=None; merged "
                "stages); more tune/draws (sampler_config) only if the checks barely failed"
            )
        else:
            fixes = (
                "more tune/draws (sampler_config), target_accept=0.95+, or a simpler model "
                "(fewer segments, merged stages)"
            )
        msg = (
            f"{self._model_type}: the sampler did not converge: {lines}. Do not use these results. "
            f"Fixes: {fixes}; model.check() shows the table."
        )
        if cfg["on_fail"] in ("raise", "fallback"):
            raise ConvergenceError(msg, diag)
        log.warning(msg)
        warnings.warn(msg, ConvergenceWarning, stacklevel=3)

    def _use_fallback(self, failed: str, diag: pd.DataFrame) -> None:
        """Replace the failed NUTS draws by the fallback model's exact draws, and say so."""
        tries = "after a second try" if self.fit_note else "at the first try"
        self.failed_checks, self.failed_diagnostics = failed, diag
        seconds = self.fit_seconds
        self.idata = self._fallback_fit()
        self.fit_seconds = seconds
        self.fallback = self.fallback_name
        self.fit_note = (
            f"the NUTS fit failed its convergence checks {tries} ({failed}); shown instead: "
            f"{self.fallback_name}"
        )
        log.warning("%s: %s", self._model_type, self.fit_note)

    def _require_fit(self) -> az.InferenceData:
        if self.idata is None:
            raise RuntimeError(
                f"{self._model_type} is not fitted yet: call .fit() first (or .load())"
            )
        return self.idata

    # ----------------------------------------------------------------------------- save/load
    def save(self, path: str | Path) -> Path:
        """Write the InferenceData (posterior, configs, data and its hash) to a netCDF file."""
        idata = self._require_fit()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # a name of its own per process: report workers fitting the same model at once must not
        # write one temporary file together (HDF5 refuses the second writer: "unable to lock file")
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        try:
            idata.to_netcdf(str(tmp))
            tmp.replace(path)
        finally:
            if tmp.exists():
                tmp.unlink()
        return path

    @classmethod
    def load(cls, path: str | Path, *, data: pd.DataFrame | None = None):
        """Rebuild a fitted model from :meth:`save`'s file.

        With ``data`` given, its hash must match the one stored (else ``ValueError``): the
        check that a cached fit belongs to the data at hand.
        """
        idata = az.from_netcdf(str(path))
        if "fit_data" not in idata.groups():
            raise ValueError(f"{path}: not a saved model (no fit_data group)")
        attrs = idata.fit_data.attrs
        if attrs.get("model_type") != cls._model_type:
            raise ValueError(
                f"{path}: holds a {attrs.get('model_type')!r}, not a {cls._model_type!r}"
            )
        stored = idata.fit_data.to_dataframe().reset_index(drop=True)
        stored = stored.drop(columns=[c for c in stored.columns if c == "index"], errors="ignore")
        model = cls._from_fit_data(
            stored,
            attrs,
            model_config=json.loads(attrs["model_config"]),
            sampler_config=json.loads(attrs["sampler_config"]),
        )
        if model.data_hash != attrs["data_hash"]:
            raise ValueError(f"{path}: stored data does not match its hash (file corrupted?)")
        if data is not None:
            other = cls._from_fit_data(data, attrs, model_config=json.loads(attrs["model_config"]))
            if other.data_hash != attrs["data_hash"]:
                raise ValueError(
                    f"{path}: fitted on other data (hash {attrs['data_hash']}, given {other.data_hash}); refit"
                )
        model.idata = idata
        model.fit_seconds = float(attrs.get("fit_seconds", 0.0))
        model.fit_note = attrs.get("fit_note") or None
        return model

    @classmethod
    def _from_fit_data(cls, data: pd.DataFrame, attrs: dict[str, Any], **configs: Any):
        """Return the model for ``data`` as :meth:`load` rebuilds it (``attrs``: the saved ones)."""
        return cls(data, **configs)
