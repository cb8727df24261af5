"""How long journeys stay in each stage: a Bayesian dwell-time model with censoring.

:class:`DwellTimeModel` takes the visits of :meth:`analysis.Journeys.stage_durations`
(``segment, stage, duration_days, censored``), so that tables from any source can be modelled.
It does not loop over visits: the likelihood is on per-cell sufficient statistics plus binned
censored durations, so the cost does not grow with the data.
:func:`expected_time_to_conversion` combines it with a
:class:`~analysis.models.transitions.StageTransitionModel` (where journeys go) into the days a
journey takes to convert.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, ClassVar

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import ndtr

from analysis.errors import example_rows
from analysis.models._fit import first_seed
from analysis.models._math import (
    SAMPLE,
    absorption,
    chain_parts,
    conditional_times,
    log_ndtr,
)
from analysis.models._validate import Problems, group_labels, require_table
from analysis.models.base import BayesianModel, ModelConfigError, Prior, interval_table
from analysis.schema import CONVERSION, DROPOFF, DataError, StageMap

if TYPE_CHECKING:
    from analysis.models.transitions import StageTransitionModel

log = logging.getLogger(__name__)

__all__ = ["DwellTimeModel", "expected_time_to_conversion"]


class DwellTimeModel(BayesianModel):
    """Time in stage per segment: hierarchical log-normal with right-censoring.

    ``log D[g, s] ~ Normal(mu[g, s], sigma[s])`` days — the time until a visit moves on to another
    stage or converts — with ``mu[g, s] ~ Normal(mu_stage[s], tau[s])`` (segments partially
    pooled). Open visits (still going at ``as_of``) enter through the survival function;
    drop-offs are left out by default (``dropoff`` below). Uncensored visits enter through per-cell sufficient statistics
    (count, Σ log d, Σ log² d) and censored ones binned on log-duration (``bin_width``), so the
    cost does not grow with the number of visits. With ``truncate_days`` (use the journeys'
    ``inactivity_days`` when no visit can outlast it) the law is truncated there.

    Parameters
    ----------
    durations : DataFrame
        ``[segment,] stage, duration_days, censored`` — as
        :meth:`analysis.Journeys.stage_durations` returns (other columns are ignored).
    model_config : dict, optional
        - ``mu_stage`` : Prior, default ``Normal(mu=1.0, sigma=1.5)`` (log-days; e^1 ≈ 2.7 days).
        - ``tau`` : Prior, default ``Gamma(alpha=2, beta=8)`` — spread of segments around a stage
          (log-days; mean 0.25, zero-avoiding: with a handful of segments a prior with mass at 0
          makes a funnel).
        - ``sigma`` : Prior, default ``HalfNormal(sigma=1.5)`` — per stage.
        - ``truncate_days`` : float or None, default None.
        - ``dropoff`` : ``"exclude"`` (default) or ``"censor"`` — what drop-off visits (``exit`` =
          ``(dropoff)``) contribute. A drop-off's last contact falls *inside* its own dwell, so it
          is informative censoring: treated as independent censoring it biased ``mu`` up by
          0.1–0.6 log-days on ``analysis.synth`` data. Excluded, the model is the time until a
          visit moves on (advance or conversion) — what time to conversion needs — with open
          visits censored at ``as_of`` (administrative censoring). ``"censor"`` suits data where
          the end of observation really is independent of the dwell.
        - ``centered`` : bool, default False — non-centred ``mu = mu_stage + tau * z``. With few
          segments ``tau`` is weakly identified; this form with ``target_accept=0.99`` (the
          default here) gave 0 divergences on synthetic data where the centred one did not.
        - ``min_days`` : float, default 1/1440 (one minute) — the resolution: a completed visit
          shorter than this (ties; a stage whose run starts with the conversion itself lasts 0)
          is left-censored, known only to be that short (``n_below_resolution`` counts them). A
          stage all of whose visits are that short and none censored (``instant_stages``) has
          no dwell to model: its days are 0 (``mu`` = -inf), its parameters stay at their priors.
        - ``bin_width`` : float, default 0.01 — log-day bins of censored durations.
    sampler_config : dict, optional
        As :class:`StageTransitionModel`, but ``target_accept`` defaults to 0.99.
    """

    _model_type: ClassVar[str] = "DwellTimeModel"
    code_modules: ClassVar[tuple[str, ...]] = (
        *BayesianModel.code_modules,
        "analysis.models._math",
    )
    default_model_config: ClassVar[dict[str, Any]] = {
        "mu_stage": Prior("Normal", mu=1.0, sigma=1.5),
        "tau": Prior("Gamma", alpha=2.0, beta=8.0),
        "sigma": Prior("HalfNormal", sigma=1.5),
        "truncate_days": None,
        "centered": False,
        "dropoff": "exclude",
        "min_days": 1.0 / 1440.0,
        "bin_width": 0.01,
    }
    default_sampler_config: ClassVar[dict[str, Any]] = {"target_accept": 0.99}

    @property
    def _check_vars(self) -> list[str]:  # type: ignore[override]
        """With an instantaneous stage ``mu`` holds -inf there: check ``z`` (non-centred) instead."""
        if self._instant.any() and not self.model_config["centered"]:
            return ["mu_stage", "tau", "sigma", "z"]
        return ["mu_stage", "tau", "sigma", "mu"]

    def __init__(
        self,
        durations: pd.DataFrame,
        *,
        stages: list[str] | None = None,
        group: str | list[str] | None = "segment",
        model_config: dict[str, Any] | None = None,
        sampler_config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(durations, model_config=model_config, sampler_config=sampler_config)
        if self.model_config["dropoff"] not in ("exclude", "censor"):
            raise ModelConfigError("model_config['dropoff'] must be 'exclude' or 'censor'")
        self.group = group
        self._prepare(durations, stages)

    def _prepare(self, df: pd.DataFrame, stages: list[str] | None) -> None:
        """Check the visits and keep their sufficient statistics per segment and stage."""
        labels, d, stages = self._check_input(df, stages)
        cfg = self.model_config
        segments = list(dict.fromkeys(labels))
        gi = pd.Categorical(labels, categories=segments).codes
        si = pd.Categorical(df["stage"].astype(str), categories=stages).codes
        x = np.log(np.maximum(d.to_numpy(float), float(cfg["min_days"])))
        c = df["censored"].astype(bool).to_numpy()
        self.n_floored = int((d.to_numpy(float) < float(cfg["min_days"])).sum())
        cell = gi * len(stages) + si
        x, c, cell = self._visits_used(df, d.to_numpy(float), x, c, cell)
        self.segments, self.stages = segments, stages
        self._summarise(x, c, cell)
        self._table = pd.DataFrame(
            {
                "segment": labels.to_numpy(),
                "stage": df["stage"].astype(str).to_numpy(),
                "duration_days": d.to_numpy(float),
                "censored": df["censored"].astype(bool).to_numpy(),
            }
        )

    def _check_input(
        self, df: pd.DataFrame, stages: list[str] | None
    ) -> tuple[pd.Series, pd.Series, list[str]]:
        """Return the segment labels, the durations and the stages, or raise what is wrong."""
        what = "stage durations"
        need = ["stage", "duration_days", "censored"]
        require_table(
            df,
            what,
            need,
            source="Journeys.stage_durations()",
            fix="pass jr.stage_durations(by='segment') or a table with [segment,] stage, "
            "duration_days, censored",
            empty_fix="check the segment filter and the stage map",
        )
        known = {*need, "person_id", "journey_index", "exit", "run_index"}
        labels = group_labels(df, self.group, known, what)
        problems = Problems(what)
        d = problems.numbers(
            df,
            "duration_days",
            problem="{n} duration(s) are missing, negative or not numbers",
            fix="durations are days ≥ 0",
        )
        problems.flags(
            df,
            "censored",
            problem="'censored' must be true/false",
            fix="True when the visit's end was not observed",
        )
        if stages is None:
            seen = set(df["stage"])
            default = StageMap().stages
            stages = [s for s in default if s in seen]
            stages = list(
                dict.fromkeys(stages + sorted(set(df["stage"].astype(str)) - set(default)))
            )
        stages = list(stages)
        problems.known(
            df, "stage", stages, problem="unknown stage(s) {values}", fix=f"stages are {stages}"
        )
        problems.raise_if_any()
        return labels, d, stages

    def _visits_used(
        self, df: pd.DataFrame, days: np.ndarray, x: np.ndarray, c: np.ndarray, cell: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return log-days, censoring and cell of the visits the likelihood uses.

        Drop-offs are left out with ``dropoff="exclude"`` (their last contact depends on their
        own dwell: informative censoring), and with ``truncate_days`` so are censored visits
        already beyond it (impossible under the model); a completed visit beyond it is an error.
        """
        cfg = self.model_config
        self.n_dropoff_excluded = 0
        if cfg["dropoff"] == "exclude" and "exit" in df.columns:
            is_drop = (df["exit"].astype(str) == DROPOFF).to_numpy()
            self.n_dropoff_excluded = int(is_drop.sum())
            keep_rows = ~is_drop
            x, c, cell = x[keep_rows], c[keep_rows], cell[keep_rows]
            days = days[keep_rows]
        self.n_beyond_truncation = 0
        if cfg["truncate_days"] is None:
            return x, c, cell
        over = days >= float(cfg["truncate_days"])
        if (over & ~c).any():
            raise DataError(
                f"stage durations: {int((over & ~c).sum())} completed visit(s) last "
                f"truncate_days={cfg['truncate_days']} or longer",
                column="duration_days",
                rows=example_rows(over & ~c),
                fix="raise truncate_days or set it to None (no truncation)",
            )
        if over.any():  # censored beyond the truncation point: impossible under the model
            self.n_beyond_truncation = int(over.sum())
            log.warning(
                "%d censored visit(s) (open journeys) already last longer than truncate_days=%s; "
                "they contradict the truncation and are left out of the likelihood "
                "(truncate_days=None keeps them)",
                self.n_beyond_truncation,
                cfg["truncate_days"],
            )
            c = c & ~over
            keep_rows = ~over
            x, c, cell = x[keep_rows], c[keep_rows], cell[keep_rows]
        return x, c, cell

    def _summarise(self, x: np.ndarray, c: np.ndarray, cell: np.ndarray) -> None:
        """Keep the likelihood's sufficient statistics per cell and the visit counts.

        Visits shorter than ``min_days`` (ties; a stage entered by the conversion itself lasts
        0) are known only to be that short: left-censored, not a point at ``min_days`` (all-zero
        stages would otherwise pull sigma to 0, an unbounded likelihood no sampler survives).
        Censored visits are binned on log duration per cell.
        """
        cfg = self.model_config
        stages = self.stages
        G, S = len(self.segments), len(stages)
        short = ~c & (x <= np.log(float(cfg["min_days"])))
        exact = ~c & ~short
        left = np.bincount(cell[short], minlength=G * S).reshape(G, S)
        n = np.bincount(cell[exact], minlength=G * S).reshape(G, S)
        s1 = np.bincount(cell[exact], weights=x[exact], minlength=G * S).reshape(G, S)
        s2 = np.bincount(cell[exact], weights=x[exact] ** 2, minlength=G * S).reshape(G, S)
        w = float(cfg["bin_width"])
        xb = np.round(x[c] / w) * w
        cb = pd.DataFrame({"cell": cell[c], "x": xb}).value_counts().reset_index()
        if n.sum() + left.sum() == 0 and cb.empty:  # all drop-offs or beyond truncate_days
            raise DataError("stage durations: no visits", fix="check the input")
        uncensored_by_stage = n.sum(0) + left.sum(0)
        no_exit = [
            stages[s]
            for s in range(S)
            if uncensored_by_stage[s] == 0 and (cb["cell"] % S == s).any()
        ]
        if no_exit:
            raise DataError(
                f"stage durations: every visit to stage(s) {no_exit} is censored: their time in "
                "stage cannot be estimated",
                column="censored",
                fix="use a longer data window or drop those stages",
            )
        self._n, self._s1, self._s2 = n, s1, s2
        # a stage every visit of which ends below the resolution (e.g. entered by the conversion
        # itself) is instantaneous: no dwell to model; its days are 0 (see _postprocess)
        cens_by_stage = np.bincount(
            self._cens_cell_of(cb) % S, weights=cb["count"].to_numpy(float), minlength=S
        )
        self._instant = (n.sum(0) == 0) & (left.sum(0) > 0) & (cens_by_stage == 0)
        self.instant_stages = [stages[s] for s in np.flatnonzero(self._instant)]
        self._left = left * ~self._instant[None, :]
        self.n_below_resolution = int(left.sum())
        self._used = pd.DataFrame({"cell": cell, "days": np.exp(x), "censored": c})
        self._cens_cell = cb["cell"].to_numpy()
        self._cens_x = cb["x"].to_numpy(float)
        self._cens_w = cb["count"].to_numpy(float)
        self.n_visits = pd.DataFrame(
            {
                "segment": np.repeat(self.segments, S),
                "stage": np.tile(stages, G),
                "uncensored": (n + left).ravel(),
                "censored": np.bincount(cell[c], minlength=G * S),
            }
        )

    @staticmethod
    def _cens_cell_of(cb: pd.DataFrame) -> np.ndarray:
        return cb["cell"].to_numpy(np.int64) if len(cb) else np.zeros(0, dtype=np.int64)

    def _fit_data(self) -> pd.DataFrame:
        return self._table

    def _extra_attrs(self) -> dict[str, str]:
        return {"stages": json.dumps(self.stages)}

    @classmethod
    def _from_fit_data(cls, data: pd.DataFrame, attrs: dict[str, Any], **configs: Any):
        return cls(data, stages=json.loads(attrs["stages"]), **configs)

    def build_model(self) -> Any:
        """Return the PyMC model (see the class docstring)."""
        import pymc as pm
        import pytensor.tensor as pt

        cfg = self.model_config
        G, S = self._n.shape
        coords = {"segment": self.segments, "stage": self.stages}
        with pm.Model(coords=coords) as model:
            mu_stage = cfg["mu_stage"].create("mu_stage", dims="stage")
            tau = cfg["tau"].create("tau", dims="stage")
            sigma = cfg["sigma"].create("sigma", dims="stage")
            if cfg["centered"]:
                mu = pm.Normal("mu", mu_stage[None, :], tau[None, :], dims=("segment", "stage"))
            else:
                z = pm.Normal("z", 0.0, 1.0, dims=("segment", "stage"))
                mu = pm.Deterministic(
                    "mu", mu_stage[None, :] + tau[None, :] * z, dims=("segment", "stage")
                )
            sig = pt.broadcast_to(sigma[None, :], (G, S))
            n, s1, s2 = self._n, self._s1, self._s2
            # uncensored log-normal on log scale (the Jacobian Σ log d is a constant)
            ll = -n * pt.log(sig) - (s2 - 2 * mu * s1 + n * mu**2) / (2 * sig**2)
            total = ll.sum()
            if self._left.any():  # shorter than min_days: P(D < min_days)
                lo = np.log(float(cfg["min_days"]))
                total = total + (self._left * log_ndtr((lo - mu) / sig)).sum()
            cm = mu.flatten()[self._cens_cell]
            cs = sig.flatten()[self._cens_cell]
            zc = (self._cens_x - cm) / cs
            if cfg["truncate_days"] is None:
                total = total + (self._cens_w * log_ndtr(-zc)).sum()
            else:
                lt = np.log(float(cfg["truncate_days"]))
                lcdf_t = log_ndtr((lt - mu) / sig)  # (G, S)
                lcdf_tc = log_ndtr((lt - cm) / cs)
                total = total - ((n + self._left) * lcdf_t).sum()
                total = (
                    total
                    + (self._cens_w * (pm.math.logdiffexp(lcdf_tc, log_ndtr(zc)) - lcdf_tc)).sum()
                )
            pm.Potential("loglik", total)
        return model

    fallback_name = (
        "a log-normal per segment and stage fitted exactly to the completed visits (no pooling, "
        "no MCMC; open visits are left out, so times may read short where many are open: compare "
        "the Kaplan–Meier curves, which use every visit)"
    )

    def fit_conjugate(self, **sampler_overrides: Any) -> az.InferenceData:
        """Return exact draws of the fallback model (:attr:`fallback_name`): no MCMC.

        As :meth:`StageTransitionModel.fit_conjugate`: the log-normal per segment and stage
        fitted to the completed visits alone (see :meth:`_fallback_fit`).
        """
        self.sampler_config = {**self.sampler_config, **sampler_overrides}
        self.fallback = self.failed_checks = self.failed_diagnostics = None
        self.fit_note = None
        self.idata = self._fallback_fit()
        return self.idata

    def _fallback_fit(self) -> az.InferenceData:
        """Return exact draws of ``log D ~ Normal(mu[g, s], sigma[s])`` from completed visits.

        Flat prior on ``mu``, ``sigma²`` scaled-inverse-χ²(1, 1) (one pseudo-visit of log-sd 1,
        so a stage with one visit per segment still has a proper posterior); visits below the
        resolution count as lasting ``min_days``; a cell without completed visits draws ``mu``
        around its stage's mean with sd 1.5 (the default prior's).
        """
        cfg = self.sampler_config
        rng = np.random.default_rng(first_seed(cfg["random_seed"]))
        chains, draws = int(cfg["chains"]), int(cfg["draws"])
        lo = np.log(float(self.model_config["min_days"]))
        n = self._n + self._left
        s1 = self._s1 + self._left * lo
        s2 = self._s2 + self._left * lo**2
        has = n > 0
        xbar = np.where(has, s1 / np.maximum(n, 1), 0.0)
        ss = np.where(has, s2 - s1 * xbar, 0.0).clip(min=0).sum(0)  # (S,)
        df = 1.0 + n.sum(0) - has.sum(0)
        sigma = np.sqrt((1.0 + ss) / rng.chisquare(np.maximum(df, 1.0), (chains, draws, len(ss))))
        stage_mean = np.where(n.sum(0) > 0, s1.sum(0) / np.maximum(n.sum(0), 1), 1.0)
        centre = np.where(has, xbar, stage_mean[None, :])
        spread = np.where(has, sigma[:, :, None, :] / np.sqrt(np.maximum(n, 1)), 1.5)
        mu = centre + spread * rng.standard_normal((chains, draws, *n.shape))
        idata = az.from_dict(
            posterior={"mu": mu, "sigma": sigma},
            coords={"segment": self.segments, "stage": self.stages},
            dims={"mu": ["segment", "stage"], "sigma": ["stage"]},
        )
        return self._finish(idata, sampler="none", method="conjugate")

    def _postprocess(self, idata: az.InferenceData) -> az.InferenceData:
        post = idata.posterior
        if self._instant.any():  # no dwell: log-days -inf, so median, mean and survival are 0
            inst = xr.DataArray(self._instant, dims="stage", coords={"stage": post["stage"]})
            post = post.assign(mu=post["mu"].where(~inst, -np.inf))
        mu, sigma = post["mu"], post["sigma"]
        median = np.exp(mu)
        if self.model_config["truncate_days"] is None:
            mean = np.exp(mu + sigma**2 / 2)
        else:
            a = (np.log(float(self.model_config["truncate_days"])) - mu) / sigma
            mean = np.exp(mu + sigma**2 / 2) * ndtr(a - sigma) / ndtr(a)
        idata.posterior = post.assign(median_days=median, mean_days=mean)
        return idata

    def mean_days(self) -> xr.DataArray:
        """Return the expected days in stage (chain, draw, segment, stage)."""
        return self._require_fit().posterior["mean_days"]

    def median_days(self) -> xr.DataArray:
        """Return the median days in stage (chain, draw, segment, stage)."""
        return self._require_fit().posterior["median_days"]

    def survival(self, days: np.ndarray | None = None) -> pd.DataFrame:
        """Return P(still in stage after t days) per segment and stage.

        Mean and 90% interval on a grid of ``days`` (default: up to the 99th percentile of the
        durations).
        """
        post = self._require_fit().posterior
        if days is None:
            top = max(float(np.quantile(self._used["days"], 0.99)), 1.0)
            days = np.linspace(top / 500, top, 80)
        days = np.asarray(days, float)
        t = xr.DataArray(days, dims="days", coords={"days": days})
        z = (np.log(t) - post["mu"]) / post["sigma"]
        surv = 1 - xr.apply_ufunc(ndtr, z)
        if self.model_config["truncate_days"] is not None:
            zt = (np.log(float(self.model_config["truncate_days"])) - post["mu"]) / post["sigma"]
            ft = xr.apply_ufunc(ndtr, zt)
            surv = ((ft - xr.apply_ufunc(ndtr, z)) / ft).clip(0, 1)
        return interval_table(
            surv.transpose("chain", "draw", "segment", "stage", "days"), name="survival"
        )

    def kaplan_meier(self) -> pd.DataFrame:
        """Return the empirical survival (Kaplan-Meier) of the visits the model uses.

        Per segment and stage: ``segment, stage, days, survival`` — the model-free check for
        :meth:`survival`.
        """
        u = self._used.sort_values(["cell", "days", "censored"], kind="stable").reset_index(
            drop=True
        )
        size = u.groupby("cell")["days"].transform("size")
        at_risk = size - u.groupby("cell").cumcount()
        with np.errstate(divide="ignore"):  # the last visit of a cell: log(0) = -inf, S = 0
            step = pd.Series(np.log1p(-((~u["censored"]).astype(float) / at_risk).to_numpy()))
        surv = np.exp(step.groupby(u["cell"]).cumsum())
        S = len(self.stages)
        return pd.DataFrame(
            {
                "segment": np.asarray(self.segments, dtype=object)[u["cell"] // S],
                "stage": np.asarray(self.stages, dtype=object)[u["cell"] % S],
                "days": u["days"].to_numpy(),
                "survival": surv.to_numpy(),
            }
        )

    def summary(self) -> pd.DataFrame:
        """segment, stage, median and mean days (mean, 90% interval), visits (uncensored/censored)."""
        med = interval_table(self.median_days(), name="median").rename(
            columns={"mean": "median_days", "lower": "median_lower", "upper": "median_upper"}
        )
        mean = interval_table(self.mean_days(), name="mean").rename(
            columns={"mean": "mean_days", "lower": "mean_lower", "upper": "mean_upper"}
        )
        return med.merge(mean, on=["segment", "stage"]).merge(
            self.n_visits, on=["segment", "stage"]
        )


def expected_time_to_conversion(
    transitions: StageTransitionModel, dwell: DwellTimeModel
) -> xr.DataArray:
    """Return the expected days until conversion, given the journey converts.

    From ``(start)`` (the first stage entry) and from each stage: the conditioned chain's expected visits weighted by the
    mean time in each stage, on paired posterior draws (the shorter posterior sets the number).

    Assumes time in a stage does not depend on where the visit leads (as the models do).
    A stage of the transition model that no journey entered (e.g. See where the data has no
    impressions) has no dwell estimate: it gets 0 days, which changes the result only by its
    posterior visit probability (prior mass alone). Dims: draw, segment, state.
    """
    extra = [s for s in dwell.stages if s not in transitions.stages]
    unvisited = [s for s in transitions.stages if s not in dwell.stages]
    entered = {
        s: int(transitions.counts[..., transitions.to_states.index(s)].sum()) for s in unvisited
    }
    if extra or any(entered.values()):
        raise ValueError(
            f"stages differ: transitions {transitions.stages} vs dwell {dwell.stages}"
            + (
                f"; stages {[s for s, k in entered.items() if k]} were entered but have no dwell estimate"
                if any(entered.values())
                else ""
            )
        )
    if unvisited:
        log.info(
            "stages %s were never entered: 0 days in them for the time to conversion", unvisited
        )
    missing = [s for s in transitions.segments if s not in dwell.segments]
    if missing:
        raise ValueError(f"segments {missing} are not in the dwell-time model")
    p = transitions.p.stack(sample=SAMPLE).transpose("sample", ...).to_numpy()
    m = (
        dwell.mean_days()
        .sel(segment=transitions.segments)
        .reindex(stage=transitions.stages, fill_value=0.0)
        .stack(sample=SAMPLE)
        .transpose("sample", ...)
        .to_numpy()
    )
    k = min(len(p), len(m))
    p, m = p[:k], m[:k]
    conv, drop = transitions.to_states.index(CONVERSION), transitions.to_states.index(DROPOFF)
    p0, Q, R, _ = chain_parts(p, len(transitions.stages), conv, drop)
    b, b0 = absorption(p0, Q, R)
    t = conditional_times(Q, b, m)
    with np.errstate(invalid="ignore", divide="ignore"):
        t0 = (p0 * b * t).sum(-1) / b0
    vals = np.concatenate([t0[..., None], t], -1)
    return xr.DataArray(
        vals,
        dims=("draw", "segment", "state"),
        coords={
            "draw": np.arange(k),
            "segment": transitions.segments,
            "state": transitions.from_states,
        },
        name="days_to_conversion",
    )
