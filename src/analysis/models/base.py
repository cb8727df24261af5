"""What every model class shares: configs with named priors, sampling, checks, save/load.

The shape follows pymc-marketing's model classes (see ``../shared/DESIGN.md``)::

    model = SomeModel(data, model_config={...}, sampler_config={...})
    idata = model.fit()            # ArviZ InferenceData; convergence is checked
    model.check()                  # r-hat, ESS, divergences as a table
    model.save("fit.nc"); SomeModel.load("fit.nc")

Priors are :class:`Prior` objects or plain dicts (``{"dist": "Gamma", "alpha": 2, "beta": 0.1}``)
merged over the class's ``default_model_config``; unknown keys are errors that say what exists.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import json
import logging
import os
import sys
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

log = logging.getLogger(__name__)

#: What a fit that fails its convergence checks does (``sampler_config["on_fail"]``).
ON_FAIL = ("raise", "warn", "fallback")
#: Sampler settings that do not change the draws: left out of a fit's cache key, so a report
#: run with ``on_fail="fallback"`` and a user with ``"raise"`` share one cached fit.
_NOT_IN_KEY = ("on_fail", "progressbar")

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


class ModelConfigError(ValueError):
    """A model or sampler configuration that cannot be used (unknown key, bad prior…)."""


class ConvergenceWarning(UserWarning):
    """The sampler's output failed a convergence check (``sampler_config["on_fail"] = "warn"``)."""


class ConvergenceError(RuntimeError):
    """The sampler's output failed a convergence check (``sampler_config["on_fail"] = "raise"``)."""

    def __init__(self, message: str, diagnostics: pd.DataFrame) -> None:
        super().__init__(message)
        self.diagnostics = diagnostics


@dataclass(frozen=True)
class Prior:
    """A named PyMC distribution with fixed parameters, e.g. ``Prior("Gamma", alpha=2, beta=0.1)``.

    Written as a dict it is ``{"dist": "Gamma", "alpha": 2, "beta": 0.1}`` (what YAML and
    papermill parameters can carry).
    """

    dist: str
    params: dict[str, Any] = field(default_factory=dict)

    def __init__(self, dist: str, **params: Any) -> None:
        object.__setattr__(self, "dist", str(dist))
        object.__setattr__(self, "params", dict(params))

    @classmethod
    def from_any(cls, value: Any, *, name: str = "prior") -> Prior:
        if isinstance(value, Prior):
            return value
        if isinstance(value, dict) and "dist" in value:
            params = {k: v for k, v in value.items() if k != "dist"}
            return cls(value["dist"], **params)
        raise ModelConfigError(
            f"{name}: expected a Prior or a dict with a 'dist' key, got {value!r}; "
            f"example: {{'dist': 'Gamma', 'alpha': 2, 'beta': 0.1}}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {"dist": self.dist, **self.params}

    def create(self, name: str, **kwargs: Any):
        """The PyMC random variable (inside a model context)."""
        import pymc as pm

        cls = getattr(pm, self.dist, None)
        if cls is None or not hasattr(cls, "dist"):
            raise ModelConfigError(f"prior {name!r}: {self.dist!r} is not a PyMC distribution")
        return cls(name, **self.params, **kwargs)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"Prior({self.dist!r}{', ' if args else ''}{args})"


def _merge(defaults: dict[str, Any], user: dict[str, Any] | None, what: str) -> dict[str, Any]:
    """``defaults | user`` with unknown keys reported together, with suggestions."""
    user = dict(user or {})
    unknown = [k for k in user if k not in defaults]
    if unknown:
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(k, list(defaults), n=1)
            hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ModelConfigError(
            f"unknown {what} key(s): {', '.join(hints)}; known keys: {', '.join(sorted(defaults))}"
        )
    out = dict(defaults)
    for k, v in user.items():
        out[k] = Prior.from_any(v, name=f"{what}[{k!r}]") if isinstance(defaults[k], Prior) else v
    return out


def _jsonable(config: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.to_dict() if isinstance(v, Prior) else v) for k, v in config.items()}


def frame_hash(df: pd.DataFrame) -> str:
    """A content hash of a small table (row order and dtypes normalised)."""
    df = df.reset_index(drop=True)
    cols = sorted(df.columns)
    df = df[cols].sort_values(cols, kind="stable").reset_index(drop=True)
    h = hashlib.sha256(",".join(cols).encode())
    h.update(pd.util.hash_pandas_object(df.astype(str), index=False).values.tobytes())
    return h.hexdigest()[:16]


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


def _isatty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def available_samplers() -> list[str]:
    """NUTS back ends that are installed: ``pymc`` always, ``numpyro`` and ``nutpie`` if present."""
    out = ["pymc"]
    if importlib.util.find_spec("numpyro") and importlib.util.find_spec("jax"):
        out.append("numpyro")
    if importlib.util.find_spec("nutpie"):
        out.append("nutpie")
    return out


def _jax_setup(chains: int) -> None:
    """Prepare JAX for a small model's fit.

    - Keep compiled programs on disk (``.cache/jax``; ``JAX_COMPILATION_CACHE_DIR`` overrides
      it), small ones included: a new process then skips most of the XLA compilation that
      dominates the fit.
    - Before JAX starts its CPU backend, ask for one CPU device per chain (at least one per
      core), so that numpyro runs the chains in parallel (``chain_method="parallel"``) rather
      than one after another. Has no effect once JAX has started (then chains run in turn).
    """
    import jax
    from jax._src import xla_bridge

    from analysis import config

    if not jax.config.jax_compilation_cache_dir:
        path = os.environ.get("JAX_COMPILATION_CACHE_DIR") or str(config.CACHE_DIR / "jax")
        jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    forced = "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", "")
    if (
        not forced
        and not xla_bridge.backends_are_initialized()
        and xla_bridge.num_cpu_devices.value < 0
    ):
        jax.config.update("jax_num_cpu_devices", max(int(chains), os.cpu_count() or 1))


def _code_hash(cls: type) -> str:
    """sha256 of the source files defining ``cls`` and this base module: a change to the model's
    code (not only to its data or configs) makes saved fits miss, so none is served stale.
    """
    import inspect

    h = hashlib.sha256()
    for path in sorted({inspect.getfile(cls), __file__}):
        h.update(Path(path).read_bytes())
    return h.hexdigest()[:16]


def _retry_settings(cfg: dict[str, Any]) -> tuple[float, int, str] | None:
    """``(target_accept, tune, words)`` of the second try after a failed fit, or None.

    ``target_accept`` rises to ``retry_target_accept`` where that is higher; where it is not
    (the first fit already took small steps) the tuning grows by ``retry_tune_factor``, so the
    second try never repeats the first.
    """
    first, tune = float(cfg["target_accept"]), int(cfg["tune"])
    retry = cfg.get("retry_target_accept")
    factor = cfg.get("retry_tune_factor")
    if retry and float(retry) > first:
        return float(retry), tune, f"target_accept {float(retry):g} (smaller steps)"
    if factor and float(factor) > 1:
        tune2 = int(round(tune * float(factor)))
        return first, tune2, f"{tune2} tuning steps (target_accept {first:g} was already in force)"
    return None


def _first_seed(seed: Any) -> int:
    if seed is None:
        return 0
    if isinstance(seed, (list, tuple)):
        return int(seed[0])
    return int(seed)


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
        self.model_config = _merge(self.default_model_config, model_config, "model_config")
        self.sampler_config = _merge(
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
        self.model = None
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
    def build_model(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _postprocess(self, idata: az.InferenceData) -> az.InferenceData:
        return idata

    def _fit_data(self) -> pd.DataFrame:
        return self.data

    def _initial_points(
        self, chains: int, rng: np.random.Generator
    ) -> list[dict[str, np.ndarray]] | None:
        """Dispersed starting points, one dict per chain (constrained values by variable name),
        or None for PyMC's jittered ones. Giving them spares the JAX back end an eager, op-by-op
        (and so compile-heavy) evaluation of the log-density at every jittered point.
        """
        return None

    def _extra_attrs(self) -> dict[str, str]:
        """Constructor arguments besides data and configs, as strings, for :meth:`load`."""
        return {}

    def _fallback_fit(self) -> az.InferenceData:
        """Posterior draws of the fallback model (:attr:`fallback_name`), finished with
        :meth:`_finish` (``method="conjugate"``: exact draws, no MCMC). Models that have one
        override this and set ``fallback_name``.
        """
        raise NotImplementedError

    # --------------------------------------------------------------------------------- fit
    @property
    def data_hash(self) -> str:
        return frame_hash(self._fit_data())

    @staticmethod
    def _sampler(choice: str) -> str:
        """The NUTS back end to use for the configured ``nuts_sampler``."""
        have = available_samplers()
        if choice == "auto":
            return "numpyro" if "numpyro" in have else "pymc"
        if choice not in ("pymc", "numpyro", "nutpie"):
            raise ModelConfigError(
                f"nuts_sampler must be 'auto', 'pymc', 'numpyro' or 'nutpie', got {choice!r}"
            )
        if choice not in have:
            raise ModelConfigError(f"nuts_sampler {choice!r} is not installed; installed: {have}")
        return choice

    def fit(self, **sampler_overrides: Any) -> az.InferenceData:
        """Sample the posterior with NUTS, add derived draws, check convergence.

        ``sampler_overrides`` update ``sampler_config`` for this call. Returns the
        InferenceData (also kept as ``self.idata``). A fit that fails r-hat, ESS or divergence
        checks is sampled once more (``retry_target_accept``, ``retry_tune_factor``); if that
        fails too, ``on_fail`` decides: :class:`ConvergenceError`, a warning, or the fallback
        model's draws.
        """
        cfg = _merge(self.sampler_config, sampler_overrides, "sampler_config")
        self._sample_with_retry(cfg)
        self._enforce(cfg)
        return self.idata

    def _fit_unchecked(self, **fit_kwargs: Any) -> az.InferenceData:
        """What :meth:`fit_cached` runs on a cache miss: the fit, before ``on_fail`` applies
        (a model with other fit methods, e.g. ``method="conjugate"``, overrides this).
        """
        return self._sample_with_retry(_merge(self.sampler_config, fit_kwargs, "sampler_config"))

    def _sample_with_retry(self, cfg: dict[str, Any]) -> az.InferenceData:
        """NUTS draws into ``self.idata`` (a second fit when the first fails a check), unchecked."""
        import pymc as pm

        sampler = self._sampler(cfg["nuts_sampler"])
        self.model = self.build_model()
        self.fallback = self.failed_checks = self.failed_diagnostics = None
        progress = _isatty() if cfg["progressbar"] is None else bool(cfg["progressbar"])
        kwargs: dict[str, Any] = {}
        dense = bool(cfg["dense_mass"])
        starts = self._initial_points(
            int(cfg["chains"]), np.random.default_rng(_first_seed(cfg["random_seed"]))
        )
        if starts is not None:
            kwargs["initvals"] = starts
        if sampler == "numpyro":
            _jax_setup(int(cfg["chains"]))
            kwargs["nuts_sampler_kwargs"] = {
                "chain_method": cfg["chain_method"],
                "nuts_kwargs": {"dense_mass": dense},
            }
            if starts is not None:
                kwargs["nuts_sampler_kwargs"]["jitter"] = False
        elif sampler == "pymc":
            jitter = "" if starts is not None else "jitter+"
            kwargs["init"] = f"{jitter}adapt_full" if dense else f"{jitter}adapt_diag"
            kwargs["cores"] = min(int(cfg["chains"]), os.cpu_count() or 1)
        elif sampler == "nutpie" and dense:
            kwargs["nuts_sampler_kwargs"] = {"low_rank_modified_mass_matrix": True}
        log.info(
            "%s: sampling %d chains × %d draws (+%d tune) with %s",
            self._model_type,
            cfg["chains"],
            cfg["draws"],
            cfg["tune"],
            sampler,
        )

        def sample(target_accept: float, tune: int) -> az.InferenceData:
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

        t0 = time.perf_counter()
        first, tune = float(cfg["target_accept"]), int(cfg["tune"])
        idata = sample(first, tune)
        self.fit_seconds = time.perf_counter() - t0
        log.info("%s: sampled in %.1f s", self._model_type, self.fit_seconds)
        self.fit_note = None
        self.idata = self._finish(idata, sampler=sampler, method="nuts")
        second = _retry_settings(cfg)
        if second is None:
            return self.idata
        failed = self._failed_checks(self.check())
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
        idata = sample(target2, tune2)
        self.fit_seconds = time.perf_counter() - t0
        self.fit_note = (
            f"sampled twice: the first fit (target_accept {first:g}, {tune} tuning steps) failed "
            f"({failed}), so again with {how}; this is the second fit"
        )
        log.info("%s: sampled again in %.1f s in all", self._model_type, self.fit_seconds)
        self.idata = self._finish(idata, sampler=sampler, method="nuts")
        return self.idata

    def cache_key(self, **fit_kwargs: Any) -> str:
        """Hash of everything a fit depends on: model type, data, configs, constructor extras,
        ``fit`` arguments, the package version and the model's source code.
        """
        from analysis.config import VERSION as __version__

        parts = [
            self._model_type,
            self.data_hash,
            json.dumps(_jsonable(self.model_config), sort_keys=True),
            json.dumps(
                _jsonable(
                    {
                        k: v
                        for k, v in {**self.sampler_config, **fit_kwargs}.items()
                        if k not in _NOT_IN_KEY
                    }
                ),
                sort_keys=True,
                default=str,
            ),
            json.dumps(self._extra_attrs(), sort_keys=True),
            __version__,
            _code_hash(type(self)),
        ]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:20]

    def fit_cached(
        self, cache_dir: str | Path | None = None, **fit_kwargs: Any
    ) -> az.InferenceData:
        """:meth:`fit`, unless a fit of the same data and configs is saved in ``cache_dir``
        (default ``.cache/models``): then load it (a re-rendered report does not refit).
        Convergence is checked either way.

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
        cfg = _merge(self.sampler_config, overrides, "sampler_config")
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
                "model_config": json.dumps(_jsonable(self.model_config)),
                "sampler_config": json.dumps(_jsonable(self.sampler_config)),
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
        """Convergence table: one row per check (r-hat, bulk/tail ESS, divergences) with its
        value, threshold and ``ok``. Conjugate fits (exact independent draws) pass by design.
        """
        idata = self._require_fit()
        cfg = self.sampler_config
        chains = idata.posterior.sizes["chain"]
        ess_min = float(cfg["ess_min_per_chain"]) * chains
        if idata.fit_data.attrs.get("method") == "conjugate":
            rows = [("exact draws (conjugate)", 0.0, 0.0, True)]
        else:
            v = self._diagnostic_values(idata)
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

    def _diagnostic_values(self, idata: az.InferenceData) -> dict[str, Any]:
        """Max r-hat, min bulk and tail ESS (over ``_check_vars``) and divergences of the fit.

        Computed once per fit and kept in the fit's ``fit_data`` attributes, so a fit saved by
        :meth:`fit_cached` carries them and a re-rendered report does not recompute them
        (ArviZ's summary costs ~0.3-0.6 s per model). They are reused only when the variables
        and a fingerprint of their draws match: a changed posterior is checked afresh.
        """
        var_names = [v for v in self._check_vars if v in idata.posterior]
        var_names = var_names or [
            str(v) for v in idata.posterior.data_vars
        ]  # none of them: check all
        h = hashlib.sha256()
        for v in var_names:
            arr = np.ascontiguousarray(idata.posterior[v].to_numpy())
            h.update(f"{v}{arr.shape}{arr.dtype}".encode())
            h.update(arr.tobytes())
        if "diverging" in idata.sample_stats:
            h.update(np.ascontiguousarray(idata.sample_stats["diverging"].to_numpy()).tobytes())
        fingerprint = h.hexdigest()[:20]
        attrs = idata.fit_data.attrs if "fit_data" in idata.groups() else None
        if attrs is not None and attrs.get("diagnostics"):
            stored = json.loads(attrs["diagnostics"])
            if stored.get("fingerprint") == fingerprint and stored.get("vars") == var_names:
                return stored
        with warnings.catch_warnings():  # structural zeros are constant: r-hat is NaN there
            warnings.simplefilter("ignore", RuntimeWarning)
            summ = az.summary(idata, var_names=var_names, kind="diagnostics")
        summ = summ[np.isfinite(summ["r_hat"])]  # constant cells (structural zeros)
        values = {
            "vars": var_names,
            "fingerprint": fingerprint,
            "max_rhat": float(summ["r_hat"].max()),
            "min_ess_bulk": float(summ["ess_bulk"].min()),
            "min_ess_tail": float(summ["ess_tail"].min()),
            "divergences": int(idata.sample_stats["diverging"].sum())
            if "diverging" in idata.sample_stats
            else 0,
        }
        if attrs is not None:
            attrs["diagnostics"] = json.dumps(values)
        return values

    @staticmethod
    def _failed_checks(diag: pd.DataFrame) -> str:
        """The failed rows of a :meth:`check` table in words ("" when all passed)."""
        return "; ".join(
            f"{r.check} = {r.value:.4g} (threshold {r.threshold:.4g})"
            for r in diag[~diag["ok"]].itertuples()
        )

    def _enforce(self, cfg: dict[str, Any]) -> None:
        diag = self.check()
        lines = self._failed_checks(diag)
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
        """The model for ``data`` as :meth:`load` rebuilds it (``attrs``: the saved ones)."""
        return cls(data, **configs)
