"""Time to close when most never close: a mixture cure model with censoring, groups pooled.

A lead (or any subject) either eventually converts — with probability ``pi`` — or never does;
those that do take a log-normal time. Subjects without the event by the end of the data are
censored: they may be among the ones that never convert, or late converters::

    logit pi[g]  = a_pi + s_pi * u[g]              u ~ Normal(0, 1)   groups partially pooled
    mu[g]        = a_mu + s_mu * w[g]              w ~ Normal(0, 1)
    log T | converts ~ Normal(mu[g], sigma)
    event at t:        log pi[g] + log f(t)
    censored at c:     log(1 - pi[g] + pi[g] * S(c))
    shorter than min_days (a 0-day close): log pi[g] + log F(min_days)   (left-censored)

This is what a log-normal dwell model with censoring (:class:`DwellTimeModel`) lacks: it
assumes every subject converts eventually, so where 90% never do it explains them with an
enormous dwell (on Olist's leads: a "median" of about 195,000 days). Here ``pi`` carries them,
and ``exp(mu)`` is the median days to close *among leads that close*, with the censoring of late
closers among recent leads accounted for. ``closed_by(days)`` (= ``pi * F(days)``) is checked
against the Kaplan–Meier share (:func:`analysis.survival.time_to_event_summary`).

The likelihood is on per-group sufficient statistics of the events and on censoring times
binned on the log scale (``bin_width``), so its cost does not grow with the number of subjects.

>>> dur = jr.stage_durations(by="channel")                                  # doctest: +SKIP
>>> m = CureTimeModel(dur[dur.stage == "Think"], group="channel"); m.fit()  # doctest: +SKIP
>>> m.summary()                                                             # doctest: +SKIP
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import expit, ndtr

from analysis.models._math import log_ndtr
from analysis.models._validate import Problems, require_table
from analysis.models.base import BayesianModel, Prior, interval_table
from analysis.schema import DataError

__all__ = ["CureTimeModel"]


class CureTimeModel(BayesianModel):
    """Mixture cure model: P(ever converting) and log-normal time to convert, per group.

    Right-censored at the end of the data (see the module docstring).

    Parameters
    ----------
    durations : DataFrame
        One row per subject: ``[group], duration_days, censored`` — e.g. the Think visits of
        :meth:`analysis.Journeys.stage_durations` on Olist journeys built with
        ``analysis.sources.olist.JOURNEY_SETTINGS`` (a lead's time until its deal; open leads
        censored at the end of the data).
    group : str, optional
        Column of the partially pooled groups; ``None``: one group ``"all"``.
    model_config : dict, optional
        - ``a_pi`` : Prior, default ``Normal(mu=-1.5, sigma=2)`` — log-odds of converting.
        - ``s_pi`` : Prior, default ``HalfNormal(sigma=1)`` — spread of groups' log-odds.
        - ``a_mu`` : Prior, default ``Normal(mu=2, sigma=2)`` — log-days to convert (e^2 ≈ 7).
        - ``s_mu`` : Prior, default ``HalfNormal(sigma=0.5)`` — spread of groups' log-days.
        - ``sigma`` : Prior, default ``HalfNormal(sigma=2)`` — spread of log-days within a group.
        - ``min_days`` : float, default 1/1440 — shorter times (0-day closes) are left-censored.
        - ``bin_width`` : float, default 0.01 — log-day bins of the censoring times.
    sampler_config : dict, optional
        See :attr:`BayesianModel.BASE_SAMPLER_CONFIG`.
    """

    _model_type: ClassVar[str] = "CureTimeModel"
    code_modules: ClassVar[tuple[str, ...]] = (
        *BayesianModel.code_modules,
        "analysis.models._math",
    )
    default_model_config: ClassVar[dict[str, Any]] = {
        "a_pi": Prior("Normal", mu=-1.5, sigma=2.0),
        "s_pi": Prior("HalfNormal", sigma=1.0),
        "a_mu": Prior("Normal", mu=2.0, sigma=2.0),
        "s_mu": Prior("HalfNormal", sigma=0.5),
        "sigma": Prior("HalfNormal", sigma=2.0),
        "min_days": 1.0 / 1440.0,
        "bin_width": 0.01,
    }

    @property
    def _check_vars(self) -> list[str]:  # type: ignore[override]
        if len(self.groups) > 1:
            return ["a_pi", "s_pi", "a_mu", "s_mu", "sigma", "u", "w"]
        return ["a_pi", "a_mu", "sigma"]

    def __init__(
        self,
        durations: pd.DataFrame,
        *,
        group: str | None = None,
        model_config: dict[str, Any] | None = None,
        sampler_config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(durations, model_config=model_config, sampler_config=sampler_config)
        self.group = group
        self._prepare(durations)

    def _prepare(self, df: pd.DataFrame) -> None:
        what = "time to event"
        require_table(
            df,
            what,
            ["duration_days", "censored", *([self.group] if self.group else [])],
            fix="one row per subject with duration_days and censored (and the group column)",
            empty_fix="check the filter that made it",
        )
        problems = Problems(what)
        d = problems.numbers(
            df,
            "duration_days",
            problem="{n} duration(s) are missing or negative",
            fix="durations are days ≥ 0",
            finite=False,
        )
        problems.raise_if_any()
        labels = (
            df[self.group].astype("str").fillna("(missing)")
            if self.group
            else pd.Series("all", index=df.index)
        )
        cat = pd.Categorical(labels)
        self.groups = [str(c) for c in cat.categories]
        g = cat.codes.astype(np.int64)
        G = len(self.groups)
        cens = df["censored"].astype(bool).to_numpy()
        lo = float(np.log(self.model_config["min_days"]))
        x = np.log(np.maximum(d.to_numpy(float), float(self.model_config["min_days"])))
        short = ~cens & (x <= lo)
        exact = ~cens & ~short
        if not (~cens).any():
            raise DataError(
                f"{what}: no subject has the event: time to it cannot be estimated",
                column="censored",
                fix="use a longer data window",
            )
        self._n = np.bincount(g[exact], minlength=G).astype(float)
        self._s1 = np.bincount(g[exact], weights=x[exact], minlength=G)
        self._s2 = np.bincount(g[exact], weights=x[exact] ** 2, minlength=G)
        self._left = np.bincount(g[short], minlength=G).astype(float)
        w = float(self.model_config["bin_width"])
        cb = (
            pd.DataFrame({"g": g[cens], "x": np.round(x[cens] / w) * w})
            .value_counts()
            .reset_index()
        )
        self._cg = cb["g"].to_numpy(np.int64)
        self._cx = cb["x"].to_numpy(float)
        self._cw = cb["count"].to_numpy(float)
        self.counts = pd.DataFrame(
            {
                "group": self.groups,
                "subjects": np.bincount(g, minlength=G),
                "events": np.bincount(g[~cens], minlength=G),
                "censored": np.bincount(g[cens], minlength=G),
            }
        )
        self._table = pd.DataFrame(
            {"group": labels.to_numpy(), "duration_days": d.to_numpy(float), "censored": cens}
        )

    def _fit_data(self) -> pd.DataFrame:
        return self._table

    def _extra_attrs(self) -> dict[str, str]:
        return {"group": json.dumps(self.group)}

    @classmethod
    def _from_fit_data(cls, data: pd.DataFrame, attrs: dict[str, Any], **configs: Any):
        group = json.loads(attrs["group"])
        return cls(data.rename(columns={"group": group}) if group else data, group=group, **configs)

    def _initial_points(self, chains: int, rng: np.random.Generator) -> list[dict[str, np.ndarray]]:
        ev = self.counts["events"].sum() / self.counts["subjects"].sum()
        m = float(self._s1.sum() / max(self._n.sum(), 1.0))
        G = len(self.groups)
        points = []
        for _ in range(chains):
            start = {
                "a_pi": np.asarray(np.log(ev / (1 - ev)) + rng.normal(0, 0.1)),
                "a_mu": np.asarray(m + rng.normal(0, 0.1)),
                "sigma": np.asarray(rng.uniform(1.0, 2.0)),
            }
            if G > 1:
                start |= {
                    "s_pi": np.asarray(rng.uniform(0.2, 0.6)),
                    "s_mu": np.asarray(rng.uniform(0.1, 0.3)),
                    "u": rng.normal(0, 0.1, G),
                    "w": rng.normal(0, 0.1, G),
                }
            points.append(start)
        return points

    def build_model(self) -> Any:
        """Return the PyMC model (see the module docstring)."""
        import pymc as pm
        import pytensor.tensor as pt

        cfg = self.model_config
        with pm.Model(coords={"group": self.groups}) as model:
            a_pi, a_mu = cfg["a_pi"].create("a_pi"), cfg["a_mu"].create("a_mu")
            if len(self.groups) > 1:
                s_pi, s_mu = cfg["s_pi"].create("s_pi"), cfg["s_mu"].create("s_mu")
            sigma = cfg["sigma"].create("sigma")
            if len(self.groups) > 1:
                u = pm.Normal("u", 0.0, 1.0, dims="group")
                w = pm.Normal("w", 0.0, 1.0, dims="group")
                logit_pi = a_pi + s_pi * u
                mu = a_mu + s_mu * w
            else:  # one group: no spread to estimate
                logit_pi = a_pi + pt.zeros(1)
                mu = a_mu + pt.zeros(1)
            log_pi = -pt.log1p(pt.exp(-logit_pi))
            log_1m_pi = -pt.log1p(pt.exp(logit_pi))
            n, s1, s2 = self._n, self._s1, self._s2
            events = (
                (n + self._left) * log_pi
                - n * pt.log(sigma)
                - (s2 - 2 * mu * s1 + n * mu**2) / (2 * sigma**2)
            )
            lo = float(np.log(cfg["min_days"]))
            total = events.sum() + (self._left * log_ndtr((lo - mu) / sigma)).sum()
            zc = (self._cx - mu[self._cg]) / sigma
            cens = pt.logaddexp(log_1m_pi[self._cg], log_pi[self._cg] + log_ndtr(-zc))
            pm.Potential("loglik", total + (self._cw * cens).sum())
        return model

    def _postprocess(self, idata: az.InferenceData) -> az.InferenceData:
        post = idata.posterior
        if len(self.groups) > 1:
            pi = xr.apply_ufunc(expit, post["a_pi"] + post["s_pi"] * post["u"])
            mu = post["a_mu"] + post["s_mu"] * post["w"]
        else:
            one = xr.DataArray(np.ones(1), dims="group", coords={"group": self.groups})
            pi, mu = xr.apply_ufunc(expit, post["a_pi"]) * one, post["a_mu"] * one
        idata.posterior = post.assign(pi=pi, mu=mu, median_days=np.exp(mu))
        return idata

    # ------------------------------------------------------------------------------ results
    def closed_by(self, days: float | list[float]) -> pd.DataFrame:
        """Return P(converted within ``days``) per group: ``pi * F(days)``.

        Comparable with the Kaplan–Meier share. ``group, days, mean, lower, upper``.
        """
        post = self._require_fit().posterior
        t = np.atleast_1d(np.asarray(days, float))
        tt = xr.DataArray(t, dims="days", coords={"days": t})
        share = post["pi"] * xr.apply_ufunc(ndtr, (np.log(tt) - post["mu"]) / post["sigma"])
        return interval_table(share.transpose("chain", "draw", "group", "days"), name="closed_by")

    def summary(self) -> pd.DataFrame:
        """Return per group subjects, events, censored, P(ever converting) and median days.

        The median days to convert are among those who do (mean and 90% interval).
        """
        post = self._require_fit().posterior
        pi = interval_table(post["pi"], name="pi").rename(
            columns={"mean": "p_convert", "lower": "p_convert_lower", "upper": "p_convert_upper"}
        )
        med = interval_table(post["median_days"], name="median").rename(
            columns={"mean": "median_days", "lower": "median_lower", "upper": "median_upper"}
        )
        return self.counts.merge(pi, on="group").merge(med, on="group")
