"""P(an open journey converts within the horizon): a hierarchical Bayesian logistic model.

The feature model of issue 19. One row per journey open at a cut-off, its features as
:func:`~analysis.predict.baselines.journey_features` makes them (or any table of numbers and
categories, e.g. UCI's session features), and whether it converted in the horizon after::

    logit p[i] = a[g] + Σ_k x[i, k] · (b[k] + tau_b · z[g, k])      g = the journey's segment
    a[g]       = a0 + tau_a · za[g]                                 segments partially pooled
    b[k] ~ Normal(0, 1),  z, za ~ Normal(0, 1),  tau_a ~ HalfNormal(1),  tau_b ~ HalfNormal(0.3)
    converted[i] ~ Bernoulli(p[i])

``x`` is the design (:class:`Design`): numbers that cannot be negative are taken as
``log1p``, the days since the last and the first touch (``recency_days``, ``age_days``) as a
quadratic B-spline (scikit-learn's ``SplineTransformer``; how likely a journey is to go on falls
with the days it has been quiet, not along a straight line), every column standardised on the
training rows; a category becomes one column per level. A segment with few journeys borrows the
others' intercept (``tau_a`` small: segments alike), one with many can differ; segments' own
slopes (``tau_b · z``) only with ``model_config["segment_slopes"]``; with one segment the
segment terms are left out.

``fit()`` samples with NUTS (:class:`~analysis.models.base.BayesianModel`);
``fit(method="laplace")`` (and the fallback after a failed NUTS fit) draws from the Laplace
approximation at the posterior mode of the model without segment slopes (``tau_b = 0``),
which needs no MCMC: seconds on a million rows. :meth:`JourneyForecastModel.predict` gives each
journey's probability with a 90% interval from the posterior draws.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

import arviz as az
import numpy as np
import pandas as pd
from scipy.special import expit

from analysis.models._fit import first_seed
from analysis.models._validate import Problems, require_table
from analysis.models.base import INTERVAL, BayesianModel, ModelConfigError, Prior
from analysis.predict.laplace import laplace_mode
from analysis.predict.periods import PeriodSpread, between_period_spread
from analysis.schema import DataError

__all__ = ["Design", "JourneyForecastModel"]

#: Columns that get a spline instead of a straight line (when present and numeric).
SPLINE_COLUMNS = ("recency_days", "age_days")
#: A logged number zero in at least this share of the rows gets a ``>0`` flag (``zero_flags``).
ZERO_SHARE = 0.2
#: Rows per block when a forecast is computed from the draws (memory: rows × draws floats).
BLOCK = 50_000


@dataclass
class Design:
    """How a features table becomes the model's matrix, learnt on the training rows.

    Built by :meth:`fit` and applied unchanged to the rows to forecast (:meth:`transform`), so a
    forecast uses the training rows' scales, knots and category levels: a level the training rows
    did not have gets zeros in that category's columns.
    """

    numeric: list[str] = field(default_factory=list)
    logged: list[str] = field(default_factory=list)
    splines: dict[str, list[float]] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    interactions: list[list[str]] = field(default_factory=list)
    categories: dict[str, list[str]] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)
    #: the features column of each design column (a spline's or a category's several columns)
    owners: list[str] = field(default_factory=list)
    mean: list[float] = field(default_factory=list)
    scale: list[float] = field(default_factory=list)

    @classmethod
    def fit(
        cls,
        features: pd.DataFrame,
        *,
        spline_knots: int = 4,
        spline_columns: tuple[str, ...] | str = SPLINE_COLUMNS,
        zero_flags: bool = False,
        interactions: list[tuple[str, str]] | tuple[()] | str = (),
    ) -> Design:
        """Learn the design from ``features`` (numbers and categories; no missing numbers).

        ``spline_columns="all"`` gives every number with enough distinct values a spline;
        ``zero_flags`` adds a ``<column>>0`` indicator to each logged number that is zero in
        at least :data:`ZERO_SHARE` of the rows (and then puts its spline's knots on its
        positive values); ``interactions`` are pairs of numbers (or ``<column>>0`` flags)
        whose product becomes a column (``"all"``: every pair of numbers).
        """
        d = cls()
        for c in features.columns:
            col = features[c]
            if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
                d.numeric.append(c)
                if col.min() >= 0 and col.max() > 1:
                    d.logged.append(c)
            else:
                d.categories[c] = sorted(col.astype(str).unique().tolist())
        for c in d.logged if zero_flags else ():
            zero = float((d._numbers(features, c) == 0).mean())
            if ZERO_SHARE <= zero < 1.0:
                d.flags.append(c)
        wanted = d.numeric if spline_columns == "all" else list(spline_columns)
        for c in wanted:
            if c in d.numeric:
                x = d._numbers(features, c)
                if c in d.flags:
                    x = x[x > 0]
                knots = np.unique(np.quantile(x, np.linspace(0, 1, spline_knots)))
                if len(knots) >= 3:
                    d.splines[c] = knots.tolist()
        pairs = (
            [(a, b) for i, a in enumerate(d.numeric) for b in d.numeric[i + 1 :]]
            if isinstance(interactions, str)  # "all"
            else list(interactions)
        )
        for a, b in pairs:
            for name in (a, b):
                base = name.removesuffix(">0")
                if base not in d.numeric or (name.endswith(">0") and base not in d.flags):
                    raise DataError(
                        f"forecast design: interaction term {name!r} is not a number of the "
                        "features (or, with '>0', not a zero-flagged one)",
                        fix=f"use the feature columns {d.numeric}",
                    )
            d.interactions.append([a, b])
        raw, d.names = d._raw(features)
        d.owners = d._owners()
        if len(d.owners) != len(d.names):  # pragma: no cover - a bug, not bad data
            raise RuntimeError(f"design: {len(d.names)} columns but {len(d.owners)} owners")
        mean = raw.mean(axis=0)
        scale = raw.std(axis=0)
        d.mean = mean.tolist()
        d.scale = np.where(scale > 0, scale, 1.0).tolist()
        return d

    def _numbers(self, features: pd.DataFrame, c: str) -> np.ndarray:
        x = features[c].to_numpy(dtype=float)
        return np.log1p(np.clip(x, 0, None)) if c in self.logged else x

    def _raw(self, features: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
        from sklearn.preprocessing import SplineTransformer

        blocks, names = [], []
        for c in self.numeric:
            x = self._numbers(features, c)
            if c in self.flags:
                blocks.append((x > 0).astype(float)[:, None])
                names.append(f"{c}>0")
            if c in self.splines:
                knots = np.asarray(self.splines[c])[:, None]
                st = SplineTransformer(degree=2, knots=knots, extrapolation="constant")
                basis = st.fit(knots).transform(x[:, None])[:, 1:]  # drop one: the intercept
                blocks.append(basis)
                names += [f"{c}[{i}]" for i in range(basis.shape[1])]
            else:
                blocks.append(x[:, None])
                names.append(c)
        for a, b in self.interactions:
            blocks.append((self._term(features, a) * self._term(features, b))[:, None])
            names.append(f"{a}×{b}")
        for c, levels in self.categories.items():
            codes = pd.Categorical(features[c].astype(str), categories=levels).codes
            onehot = np.zeros((len(features), len(levels)))
            seen = codes >= 0
            onehot[np.flatnonzero(seen), codes[seen]] = 1.0
            blocks.append(onehot)
            names += [f"{c}={v}" for v in levels]
        raw = np.hstack(blocks) if blocks else np.zeros((len(features), 0))
        return raw, names

    def _term(self, features: pd.DataFrame, name: str) -> np.ndarray:
        """Return an interaction's factor: a number as the design takes it, or its ``>0`` flag."""
        if name.endswith(">0"):
            return (self._numbers(features, name.removesuffix(">0")) > 0).astype(float)
        return self._numbers(features, name)

    @property
    def channels(self) -> list[str]:
        """Return the channels of the ``ch_<channel>`` touch counts, for ``journey_features``."""
        return [n[3:] for n in self.numeric if n.startswith("ch_")]

    def _owners(self) -> list[str]:
        """Return the feature of each design column, in the order :meth:`_raw` makes them."""
        out: list[str] = []
        for c in self.numeric:
            out += [c] * ((c in self.flags) + (len(self.splines[c]) if c in self.splines else 1))
        for a, b in self.interactions:
            out.append(f"{a.removesuffix('>0')}×{b.removesuffix('>0')}")
        for c, levels in self.categories.items():
            out += [c] * len(levels)
        return out

    def transform(self, features: pd.DataFrame) -> np.ndarray:
        """Return the standardised matrix (rows × :attr:`names`) of ``features``."""
        need = [*self.numeric, *self.categories]
        missing = [c for c in need if c not in features.columns]
        if missing:
            raise DataError(
                f"forecast features: column(s) {missing} of the training rows not found",
                fix="compute the features the model was fitted on (journey_features)",
            )
        raw, _ = self._raw(features)
        return (raw - np.asarray(self.mean)) / np.asarray(self.scale)

    def to_json(self) -> str:
        """Return the design as JSON (saved with a fit)."""
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: str) -> Design:
        """Rebuild a design from :meth:`to_json`."""
        return cls(**json.loads(text))


class JourneyForecastModel(BayesianModel):
    """Hierarchical Bayesian logistic model of conversion within a horizon (module docstring).

    Parameters
    ----------
    data : DataFrame
        One row per training journey: the feature columns, ``converted`` (0/1) and, optionally,
        ``segment`` (the grouping whose intercepts and slopes are pooled).
    model_config : dict, optional
        - ``intercept`` : Prior, default ``Normal(mu=-2, sigma=2)`` — log-odds of a typical
          journey (most open journeys do not convert within a couple of weeks).
        - ``beta`` : Prior, default ``Normal(mu=0, sigma=1)`` — per standardised feature.
        - ``tau_intercept`` : Prior, default ``HalfNormal(sigma=1)`` — spread of the segments'
          intercepts (the Laplace fit reads its ``sigma``: a half-normal).
        - ``tau_beta`` : Prior, default ``HalfNormal(sigma=0.3)`` — spread of the segments'
          slopes around the shared ones.
        - ``segment_slopes`` : bool, default False — let each segment's slopes differ from the
          shared ones (``tau_b · z``). Off by default: on the synthetic data the segments'
          slopes were alike (``tau_b`` ≈ 0.08) and the extra segments × features parameters
          made NUTS ~5x slower, for log-loss within 0.001.
        - ``spline_knots`` : int, default 4 — knots of each spline.
        - ``spline_columns`` : tuple of str or "all", default the recency and age — the
          numbers that get a spline (:meth:`Design.fit`).
        - ``zero_flags`` : bool, default False — a ``>0`` indicator for numbers mostly zero.
        - ``interactions`` : list of (str, str), default none — products of two numbers (or
          ``>0`` flags) as columns.
    sampler_config : dict, optional
        See :attr:`BayesianModel.BASE_SAMPLER_CONFIG`; 2 chains × 500 draws by default here (the
        forecast needs means and 90% intervals, not tails), ``target_accept`` 0.99 (with four
        segments the spread of their intercepts is weakly identified: 3 divergences at 0.9 on
        the synthetic sample, none at 0.99).

    Raises
    ------
    DataError
        No ``converted`` column, outcomes other than 0/1, missing numbers, no rows.
    """

    _model_type: ClassVar[str] = "JourneyForecastModel"
    default_model_config: ClassVar[dict[str, Any]] = {
        "intercept": Prior("Normal", mu=-2.0, sigma=2.0),
        "beta": Prior("Normal", mu=0.0, sigma=1.0),
        "tau_intercept": Prior("HalfNormal", sigma=1.0),
        "tau_beta": Prior("HalfNormal", sigma=0.3),
        "segment_slopes": False,
        "spline_knots": 4,
        "spline_columns": SPLINE_COLUMNS,
        "zero_flags": False,
        "interactions": (),
        "interaction_sigma": 0.25,
    }
    default_sampler_config: ClassVar[dict[str, Any]] = {
        "draws": 500,
        "tune": 500,
        "chains": 2,
        "target_accept": 0.99,
    }
    fallback_name: ClassVar[str | None] = (
        "the Laplace approximation at the posterior mode, segments sharing their slopes (no MCMC)"
    )

    def __init__(
        self,
        data: pd.DataFrame,
        *,
        group: str | None = "segment",
        period: str | None = None,
        model_config: dict[str, Any] | None = None,
        sampler_config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(data, model_config=model_config, sampler_config=sampler_config)
        for k in ("intercept", "beta", "tau_intercept", "tau_beta"):
            if not isinstance(self.model_config[k], Prior):
                raise ModelConfigError(f"model_config[{k!r}] must be a prior")
        self.group = group if group and group in data.columns else None
        self.period = period if period and period in data.columns else None
        self._check(data)
        features = data.drop(columns=[c for c in ("converted", self.group, self.period) if c])
        self.periods = data[self.period].astype(str).to_numpy() if self.period else None
        self._spread: tuple[int, PeriodSpread] | None = None
        cfg = self.model_config
        self.design = Design.fit(
            features,
            spline_knots=int(cfg["spline_knots"]),
            spline_columns=cfg["spline_columns"],
            zero_flags=bool(cfg["zero_flags"]),
            interactions=(
                "all"
                if cfg["interactions"] == "all"
                else [(str(a), str(b)) for a, b in cfg["interactions"]]
            ),
        )
        self.x = self.design.transform(features)
        self.y = data["converted"].to_numpy(dtype=float)
        labels = data[self.group].astype(str) if self.group else pd.Series("all", data.index)
        self.segments = sorted(labels.unique().tolist())
        self.g = pd.Categorical(labels, categories=self.segments).codes.astype(np.int64)

    def _check(self, data: pd.DataFrame) -> None:
        require_table(
            data,
            "forecast model",
            ["converted"],
            missing="column(s) {missing} not found",
            fix="one row per training journey with converted = 1 or 0",
        )
        if data.empty:
            raise DataError("forecast model: no training journeys", fix="choose an earlier cut-off")
        problems = Problems("forecast model")
        y = pd.to_numeric(data["converted"], errors="coerce")
        bad = ~y.isin([0, 1])
        if bad.any():
            problems.add(
                f"{int(bad.sum())} outcome(s) other than 0 or 1",
                column="converted",
                mask=bad.to_numpy(),
                fix="converted is 1 when the journey converted within the horizon, else 0",
            )
        for c in data.columns:
            if c != "converted" and pd.api.types.is_numeric_dtype(data[c]):
                bad_x = ~np.isfinite(data[c].to_numpy(dtype=float))
                if bad_x.any():
                    problems.add(
                        f"{int(bad_x.sum())} missing or infinite number(s)",
                        column=c,
                        mask=bad_x,
                        fix="fill them (0 touches) or drop the column",
                    )
        problems.raise_if_any()

    @property
    def _check_vars(self) -> list[str]:  # type: ignore[override]
        pooled = ["tau_intercept", "za"] if len(self.segments) > 1 else []
        return ["intercept", "beta", *pooled]

    def _extra_attrs(self) -> dict[str, str]:
        return {"group": self.group or "", "period": self.period or ""}

    @classmethod
    def _from_fit_data(cls, data: pd.DataFrame, attrs: dict[str, Any], **configs: Any):
        group, period = attrs.get("group") or None, attrs.get("period") or None
        return cls(data, group=group, period=period, **configs)

    def _beta_sigma(self) -> np.ndarray:
        """Return each design column's prior sd: ``beta``'s, ``interaction_sigma`` for products."""
        sigma = float(self.model_config["beta"].params.get("sigma", 1.0))
        inter = float(self.model_config["interaction_sigma"])
        return np.array([inter if "×" in n else sigma for n in self.design.names])

    def _beta_precision(self) -> np.ndarray:
        return 1 / self._beta_sigma() ** 2

    def build_model(self) -> Any:
        """Return the PyMC model (see the module docstring)."""
        import pymc as pm

        cfg = self.model_config
        coords = {"feature": self.design.names, "segment": self.segments}
        with pm.Model(coords=coords) as model:
            a0 = cfg["intercept"].create("intercept")
            if self.design.interactions:  # the products get their own (smaller) prior sd
                mu = float(cfg["beta"].params.get("mu", 0.0))
                b = pm.Normal("beta", mu, self._beta_sigma(), dims="feature")
            else:
                b = cfg["beta"].create("beta", dims="feature")
            x = pm.Data("x", self.x)
            eta = a0 + pm.math.dot(x, b)
            if len(self.segments) > 1:
                tau_a = cfg["tau_intercept"].create("tau_intercept")
                za = pm.Normal("za", 0.0, 1.0, dims="segment")
                eta = eta + tau_a * za[self.g]
                if cfg["segment_slopes"]:
                    tau_b = cfg["tau_beta"].create("tau_beta")
                    z = pm.Normal("z", 0.0, 1.0, dims=("segment", "feature"))
                    eta = eta + tau_b * (x * z[self.g]).sum(axis=1)
            pm.Bernoulli("converted", logit_p=eta, observed=self.y)
        return model

    # ----------------------------------------------------------------------------- Laplace
    def _fit_laplace(self, **sampler_overrides: Any) -> az.InferenceData:
        """Draw from the Laplace approximation (:meth:`_fallback_fit`) as the kept fit."""
        self.sampler_config = {**self.sampler_config, **sampler_overrides}
        self.fallback = self.failed_checks = self.failed_diagnostics = None
        self.idata = self._fallback_fit()
        return self.idata

    def _fit_unchecked(self, **fit_kwargs: Any) -> az.InferenceData:
        if fit_kwargs.get("method") == "laplace":
            return self._fit_laplace(**{k: v for k, v in fit_kwargs.items() if k != "method"})
        return super()._fit_unchecked(**fit_kwargs)

    def fit(self, method: str = "nuts", **sampler_overrides: Any) -> az.InferenceData:
        """Sample with NUTS (default), or draw from the Laplace approximation (``"laplace"``)."""
        if method == "laplace":
            return self._fit_laplace(**sampler_overrides)
        if method != "nuts":
            raise ModelConfigError(f"method must be 'nuts' or 'laplace', got {method!r}")
        return super().fit(**sampler_overrides)

    def _fallback_fit(self) -> az.InferenceData:
        """Return draws of the model without segment slopes from Laplace approximations.

        For a given spread ``tau_a`` of the segments' intercepts the log-posterior of the
        intercept, the slopes and the segments' offsets is concave: Newton's method finds its
        mode and the inverse Hessian there its covariance (the Laplace approximation, accurate
        for a logistic model with thousands of rows). ``tau_a`` itself is integrated over a grid
        (as INLA does): each grid value is weighted by its Laplace marginal likelihood times its
        prior, and each draw picks a value by weight, then the coefficients from its Gaussian.
        So the segments are partially pooled, by as much as the data say, without MCMC.
        """
        from scipy import stats

        cfg = self.sampler_config
        rng = np.random.default_rng(first_seed(cfg["random_seed"]))
        chains, draws = int(cfg["chains"]), int(cfg["draws"])
        k = self.x.shape[1]
        seg = len(self.segments) if len(self.segments) > 1 else 0
        prior_a = self.model_config["intercept"].params
        prior_b = self.model_config["beta"].params
        mean0 = np.r_[
            float(prior_a.get("mu", 0.0)), np.full(k, float(prior_b.get("mu", 0.0))), np.zeros(seg)
        ]
        prec = np.r_[
            1 / float(prior_a.get("sigma", 2.0)) ** 2, self._beta_precision(), np.ones(seg)
        ]
        x = self._full_matrix(self.x, self.g)
        grid = np.exp(np.linspace(np.log(0.02), np.log(3.0), 16)) if seg else np.ones(1)
        fits, logw = [], []
        start = None
        tau_prior = self.model_config["tau_intercept"]
        scale = float(tau_prior.params.get("sigma", 1.0))
        for tau in grid:
            if seg:
                prec[1 + k :] = 1 / tau**2
            fit = laplace_mode(x, self.y, mean0, prec, start=start)
            start = fit.mode
            fits.append(fit)
            a = fit.mode[1 + k :]
            # log p(y | tau) by Laplace, up to a constant: log-likelihood and the offsets' prior
            # at the mode, and the curvature; then the prior of tau on a log grid (Jacobian tau)
            logw.append(
                fit.loglik
                - 0.5 * float(a @ a) / tau**2
                - seg * np.log(tau)
                - 0.5 * fit.logdet
                + stats.halfnorm.logpdf(tau, scale=scale)
                + np.log(tau)
            )
        w = np.exp(np.asarray(logw) - max(logw))
        w /= w.sum()
        pick = rng.choice(len(grid), size=chains * draws, p=w)
        flat = np.empty((chains * draws, len(mean0)))
        for i in np.unique(pick):
            rows = np.flatnonzero(pick == i)
            flat[rows] = rng.multivariate_normal(
                fits[i].mode, fits[i].cov, size=len(rows), method="cholesky"
            )
        sample = flat.reshape(chains, draws, -1)
        post = {"intercept": sample[..., 0], "beta": sample[..., 1 : 1 + k]}
        dims = {"beta": ["feature"]}
        coords: dict[str, Any] = {"feature": self.design.names}
        if seg:
            post["a_segment"] = sample[..., 1 + k :]
            post["tau_intercept"] = grid[pick].reshape(chains, draws)
            dims["a_segment"] = ["segment"]
            coords["segment"] = self.segments
        idata = az.from_dict(posterior=post, coords=coords, dims=dims)
        return self._finish(idata, sampler="none", method="laplace")

    def _full_matrix(self, x: np.ndarray, g: np.ndarray) -> np.ndarray:
        """Return ``[1, x, one-hot segment]`` (the Laplace fit's design)."""
        cols = [np.ones((len(x), 1)), x]
        if len(self.segments) > 1:
            onehot = np.zeros((len(x), len(self.segments)))
            onehot[np.arange(len(x)), g] = 1.0
            cols.append(onehot)
        return np.hstack(cols)

    # ----------------------------------------------------------------------------- forecast
    def _segment_codes(self, features: pd.DataFrame) -> np.ndarray:
        if not self.group or self.group not in features.columns:
            return np.zeros(len(features), dtype=np.int64)
        return pd.Categorical(
            features[self.group].astype(str), categories=self.segments
        ).codes.astype(np.int64)  # -1: a segment the training rows did not have

    def _coefficients(self, max_draws: int) -> dict[str, np.ndarray]:
        """Return the draws as flat arrays, thinned to at most ``max_draws``."""
        post = self._require_fit().posterior
        out: dict[str, np.ndarray] = {}
        for name in ("intercept", "beta", "a_segment", "za", "z", "tau_intercept", "tau_beta"):
            if name in post:
                arr = post[name].to_numpy()
                out[name] = arr.reshape(-1, *arr.shape[2:])
        total = len(out["intercept"])
        keep = np.linspace(0, total - 1, min(max_draws, total)).round().astype(int)
        return {k: v[keep] for k, v in out.items()}

    def predict_draws(self, features: pd.DataFrame, *, max_draws: int = 200) -> np.ndarray:
        """Return P(convert within the horizon) per draw and journey (draws × rows, float32).

        A segment the training rows did not have gets the shared coefficients (its offsets at
        their mean, zero).
        """
        x = self.design.transform(features).astype(np.float32)
        eta = self._eta(x, self._segment_codes(features), self._coefficients(max_draws))
        spread = self.period_spread.spread if self.period_spread else 0.0
        if spread > 0:  # the forecast period's own offset, one per draw (periods.py)
            rng = np.random.default_rng(first_seed(self.sampler_config["random_seed"]))
            eta += rng.normal(0.0, spread, (len(eta), 1)).astype(np.float32)
        return expit(eta, out=eta)

    @property
    def period_spread(self) -> PeriodSpread | None:
        """Return the training periods' spread beyond the features (``period=``; else None)."""
        if self.periods is None:
            return None
        idata = self._require_fit()
        if self._spread is None or self._spread[0] != id(idata):
            eta = self._eta(self.x.astype(np.float32), self.g, self._coefficients(50))
            spread = between_period_spread(eta.mean(axis=0), self.y, self.periods)
            self._spread = (id(idata), spread)
        return self._spread[1]

    def _eta(self, x: np.ndarray, g: np.ndarray, c: dict[str, np.ndarray]) -> np.ndarray:
        """Return the linear predictor per draw and row (float32; segment -1: shared terms)."""
        known = g >= 0
        coef, cols = [c["intercept"][:, None], c["beta"]], [np.ones((len(x), 1), np.float32), x]
        offsets = c.get("a_segment")
        if offsets is None and "za" in c:
            offsets = c["tau_intercept"][:, None] * c["za"]
        if offsets is not None:  # one column per segment: 1 on its rows (0 for an unknown one)
            onehot = np.zeros((len(x), offsets.shape[1]), np.float32)
            onehot[np.flatnonzero(known), g[known]] = 1.0
            coef.append(offsets)
            cols.append(onehot)
        eta = np.hstack(coef).astype(np.float32) @ np.hstack(cols).T  # one product, float32
        if "z" in c:
            for k in np.unique(g[known]):  # each segment's own slopes, on its rows
                rows = np.flatnonzero(g == k)
                slopes = (c["tau_beta"][:, None] * c["z"][:, k, :]).astype(np.float32)
                eta[:, rows] += slopes @ x[rows].T
        return eta

    def predict(
        self, features: pd.DataFrame, *, prob: float = INTERVAL, max_draws: int = 200
    ) -> pd.DataFrame:
        """Return each journey's ``p`` (posterior mean), ``lower`` and ``upper`` (``prob`` interval).

        Computed in blocks of :data:`BLOCK` rows, so a million journeys need ~40 MB at a time.
        """
        parts = []
        tail = (1 - prob) / 2
        for start in range(0, len(features), BLOCK):
            draws = self.predict_draws(features.iloc[start : start + BLOCK], max_draws=max_draws)
            lo, hi = _quantiles(draws, [tail, 1 - tail])
            parts.append(pd.DataFrame({"p": draws.mean(axis=0), "lower": lo, "upper": hi}))
        if not parts:
            return pd.DataFrame({"p": [], "lower": [], "upper": []}, dtype=float)
        out = pd.concat(parts, ignore_index=True)
        out.index = features.index
        return out


def _quantiles(draws: np.ndarray, probs: list[float]) -> list[np.ndarray]:
    """Return ``np.quantile(draws, probs, axis=0)`` (linear) from a full sort.

    NumPy sorts short columns with SIMD; its partition (``np.quantile``) is ~10x slower here.
    """
    s = np.sort(draws, axis=0)
    out = []
    for q in probs:
        pos = q * (len(s) - 1)
        lo = int(np.floor(pos))
        hi = min(lo + 1, len(s) - 1)
        out.append(s[lo] + np.float32(pos - lo) * (s[hi] - s[lo]))
    return out
