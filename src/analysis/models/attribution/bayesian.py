"""A Bayesian model of what channels cause: stage visits' exits on channel exposures."""

from __future__ import annotations

import json
import logging
from typing import Any, ClassVar

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from analysis.models._validate import Problems, require_table
from analysis.models.attribution.removal import (
    attribution_table,
    effects_path,
    load_effects,
    removal_draws,
    save_effects,
    stacked_draws,
)
from analysis.models.base import BayesianModel, Prior
from analysis.models.cache import code_files
from analysis.schema import CONVERSION, DEFAULT_STAGES, DROPOFF, OPEN, START, DataError

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Bayesian attribution: a sequential logistic model of stage visits, counterfactual removal
# --------------------------------------------------------------------------------------------

_LN2 = float(np.log(2.0))


class BayesianAttributionModel(BayesianModel):
    """Estimate which channels move journeys on, by counterfactual removal on every draw.

    A hierarchical logistic model of every stage visit's exit, with carry-over that decays with
    time, segments partially pooled; attribution by counterfactual removal on every posterior
    draw.

    Why visits and not whole journeys
        A journey-level regression of "converted" on "touched channel c" credits whatever
        channel people meet late in the funnel (a store visit, a direct site visit) simply
        because reaching the late stages requires having advanced: exposure is a consequence of
        progress. Here each stage visit is one trial — did the journey move on (to another
        stage or to the conversion) or drop off? — and its regressors are the channels touched
        during that visit or earlier in the journey. Progress so far is then part of the
        condition, not of the outcome. Journey conversion follows from chaining the visits.

    The model
        For a visit of segment ``g`` to stage ``s`` with exposure levels ``L[c]``
        (:meth:`analysis.Journeys.stage_exposures`)::

            x[c] = 0 (not touched) | 1 (during the visit) | 2 ** (-age[L] / half_life) (earlier)
            logit P(move on) = alpha[g, s] + sum_c beta[g, c] * x[c]
            alpha[g, s] ~ Normal(intercept_mu[s], intercept_sigma)
            beta[g, c]  = beta[c]   (segment_effects="none", the default; else
                                     ~ Normal(beta[c], beta_sigma), centred or not)

        (alpha is sampled centred in cells with at least ``centering_threshold`` visits and
        non-centred in the others; exposures are centred per stage while sampling.)

        fitted on visits aggregated by (segment, stage, exposure pattern): a binomial per
        pattern, so the cost grows with the number of distinct patterns, not of events. Where a
        visit goes when it moves on (which stage, or the conversion) and where journeys start
        are Dirichlet–multinomial (exact conjugate draws).

    Attribution (:meth:`removal_effects`, :meth:`attribution`)
        On every posterior draw, each segment's stage chain is rebuilt — the probability of
        moving on from each stage averages the logistic over that stage's observed exposure
        patterns (Bayesian-bootstrap weights, so the exposure mix's own uncertainty is in the
        intervals) — and solved for P(convert | journey). Removing channel ``c`` sets its
        exposures to 0 in every pattern; the drop in P(convert) is its incremental effect
        (per journey; × journeys = conversions it brought). Effects are not shares of the total:
        journeys convert without any channel too, and effects interact, so they need not sum
        to the conversions. ``share`` normalises them for comparison with rule-based models.

    Assumptions to keep in mind: exposure is as good as random *given* segment, stage and the
    channels already met (no targeting on unobserved intent); a channel's effect is the same in
    every stage; the exposure mix at a stage does not change when an earlier channel is
    removed (exact when there is no carry-over). It is a model of observational data, not an
    experiment.

    Parameters
    ----------
    exposures : DataFrame or Journeys
        :meth:`analysis.Journeys.stage_exposures` output: ``[group], from_stage, to_stage``, one
        integer exposure-level column per channel, ``n``. Given a :class:`analysis.Journeys`,
        its ``stage_exposures(by=group, mature_days=2 * inactivity_days)`` is used (only visits
        whose exit has had time to show). Rows to ``(open)`` are counted but not modelled.
    group : str or None, default "segment"
        Column of the partially pooled segments; ``None`` (or absent) → one group ``"all"``.
    channels : list of str, optional
        Channel columns; default ``exposures.attrs["channels"]`` or every other integer column.
    level_ages : list of float, optional
        Representative age in days of each carry-over level (levels 2, 3, …); default from
        ``exposures.attrs["levels"]``, else Journeys' defaults (1.5, 5, 10.5, 22).
    model_config : dict
        ``intercept_mu`` (Normal(0, 2)): stage log-odds of moving on; ``intercept_sigma``
        (HalfNormal(1)): spread of segments around it; ``beta`` (Normal(0, 1)): channel
        effect, log-odds per exposure; ``beta_sigma`` (HalfNormal(0.3)): spread of segments'
        effects around the channel's; ``half_life`` (LogNormal(log 7, 1)): days for an earlier
        exposure's weight to halve. Priors may be written as dicts.
    sampler_config : dict
        See :attr:`analysis.models.base.BayesianModel.BASE_SAMPLER_CONFIG`.
    """

    _model_type = "BayesianAttributionModel"
    default_model_config: ClassVar[dict[str, Any]] = {
        "intercept_mu": Prior("Normal", mu=0.0, sigma=2.0),
        "intercept_sigma": Prior("HalfNormal", sigma=1.0),
        "beta": Prior("Normal", mu=0.0, sigma=1.0),
        "beta_sigma": Prior("HalfNormal", sigma=0.3),
        "half_life": Prior("LogNormal", mu=float(np.log(7.0)), sigma=1.0),
        "segment_effects": "none",
        "centering_threshold": 100,
    }
    default_sampler_config: ClassVar[dict[str, Any]] = {"draws": 500, "tune": 1000}
    _check_vars: ClassVar[list[str]] = [
        "intercept_mu",
        "intercept_sigma",
        "alpha_centered",
        "beta",
        "beta_sigma",
        "beta_segment",
        "half_life",
    ]
    _DEFAULT_AGES: ClassVar[tuple[float, ...]] = (1.5, 5.0, 10.5, 22.0)
    #: Hashed into the fit cache key and the removal-effects file's name besides this module:
    #: the chain solved per draw, and the stage names and order (the schema's package
    #: ``__init__`` only re-exports them).
    code_modules: ClassVar[tuple[str, ...]] = (
        *BayesianModel.code_modules,
        "analysis.models.attribution.removal",
        "analysis.schema.events",
    )

    def __init__(
        self,
        exposures: Any,
        *,
        group: str | None = "segment",
        channels: list[str] | None = None,
        level_ages: list[float] | None = None,
        model_config: dict[str, Any] | None = None,
        sampler_config: dict[str, Any] | None = None,
    ) -> None:
        if hasattr(exposures, "stage_exposures"):  # a Journeys object
            jr = exposures
            exposures = jr.stage_exposures(
                by=group if group in getattr(jr, "attributes", []) else None,
                mature_days=2 * jr.inactivity_days,
            )
        if not isinstance(exposures, pd.DataFrame):
            raise TypeError(
                "exposures: expected Journeys.stage_exposures() output (a DataFrame) or a Journeys "
                f"object, got {type(exposures).__name__}"
            )
        super().__init__(exposures, model_config=model_config, sampler_config=sampler_config)
        df = exposures
        if channels is None:
            channels = df.attrs.get("channels")
        if channels is None:
            known = {group, "from_stage", "to_stage", "n"}
            channels = [
                c for c in df.columns if c not in known and pd.api.types.is_integer_dtype(df[c])
            ]
        if level_ages is None:
            levels = df.attrs.get("levels")
            if levels:
                level_ages = [
                    float(v["age_days"])
                    for k, v in sorted(((int(k), v) for k, v in levels.items()))
                    if k >= 2
                ]
            else:
                level_ages = list(self._DEFAULT_AGES)
        self.channels = list(channels)
        self.level_ages = [float(a) for a in level_ages]
        self.group = group if (group is not None and group in df.columns) else None
        self._validate(df)
        self._prepare(df)

    # ---------------------------------------------------------------------------- the data
    def _validate(self, df: pd.DataFrame) -> None:
        what = "stage exposures"
        require_table(
            df,
            what,
            ["from_stage", "to_stage", "n", *self.channels],
            fix="pass Journeys.stage_exposures(by=...) output (or a Journeys object)",
        )
        problems = Problems(what)
        if not self.channels:
            problems.add("no channel columns", fix="pass channels=[...]")
        problems.counts(
            df, "n", problem="{n} count(s) in 'n' are not whole numbers >= 0", fix="n counts visits"
        )
        top = 1 + len(self.level_ages)
        for c in self.channels:
            v = pd.to_numeric(df[c], errors="coerce")
            badc = v.isna() | (v < 0) | (v > top) | (v != v.round())
            if badc.any():
                problems.add(
                    f"channel column {c!r} has {int(badc.sum())} value(s) that are not exposure "
                    f"levels 0..{top}",
                    column=c,
                    mask=badc,
                    fix="levels: 0 not touched, 1 during the visit, 2.. earlier (see Journeys.stage_exposures)",
                )
        reserved = sorted({str(c) for c in self.channels} & {START, CONVERSION, DROPOFF, OPEN})
        if reserved:
            problems.add(
                f"channel(s) named like a state: {reserved}",
                column="channel",
                fix="rename those channels",
            )
        problems.raise_if_any()
        visits = df[(df["from_stage"] != START) & (df["to_stage"] != OPEN)]
        outcomes = visits.groupby(visits["to_stage"] == DROPOFF)["n"].sum()
        if visits.empty or outcomes.get(True, 0) == 0 or outcomes.get(False, 0) == 0:
            raise DataError(
                f"{what}: the model needs settled visits that moved on and visits that dropped off; "
                f"found {int(outcomes.get(False, 0))} and {int(outcomes.get(True, 0))}",
                column="to_stage",
                fix="use more data, or a longer window (mature visits only)",
            )
        if int(visits.loc[visits["to_stage"] == CONVERSION, "n"].sum()) == 0:
            raise DataError(
                f"{what}: no conversions: nothing to attribute",
                column="to_stage",
                fix="check the conversion column of the touchpoints",
            )
        if int(df.loc[df["from_stage"] == START, "n"].sum()) == 0:
            raise DataError(
                f"{what}: no (start) rows: journeys' first stages are needed",
                column="from_stage",
                fix="pass Journeys.stage_exposures() output unchanged",
            )

    def _prepare(self, df: pd.DataFrame) -> None:
        labels = df[self.group].astype(str) if self.group else pd.Series("all", index=df.index)
        self.segments = list(dict.fromkeys(labels))
        stages = [
            s for s in dict.fromkeys(df.loc[df["from_stage"] != START, "from_stage"].astype(str))
        ]
        order = {s: i for i, s in enumerate(DEFAULT_STAGES)}
        self.stages = sorted(stages, key=lambda s: (order.get(s, len(order)), s))
        self.n_open = int(df.loc[df["to_stage"] == OPEN, "n"].sum())
        G, S, C = len(self.segments), len(self.stages), len(self.channels)
        gi = pd.Categorical(labels, categories=self.segments).codes
        is_start = (df["from_stage"] == START).to_numpy()
        to = df["to_stage"].astype(str).to_numpy()
        n = df["n"].to_numpy(np.int64)
        # start shares and where visits go when they move on: (g, S) and (g, S, S + 1)
        targets = [*self.stages, CONVERSION]
        tidx = {s: i for i, s in enumerate(targets)}
        sidx = {s: i for i, s in enumerate(self.stages)}
        self._start = np.zeros((G, S))
        m = is_start & np.isin(to, self.stages)
        np.add.at(self._start, (gi[m], [sidx[t] for t in to[m]]), n[m])
        visit = ~is_start & (to != OPEN)
        fi = np.array([sidx.get(s, -1) for s in df["from_stage"].astype(str)])
        self._moves = np.zeros((G, S, S + 1))
        mv = visit & np.isin(to, targets)
        np.add.at(self._moves, (gi[mv], fi[mv], [tidx[t] for t in to[mv]]), n[mv])
        # binomial patterns: (g, stage, levels) → visits, moved on
        v = df.loc[visit, self.channels].astype(np.int64)
        key = pd.DataFrame({"g": gi[visit], "s": fi[visit]}).join(v.reset_index(drop=True))
        key["n"] = n[visit]
        key["k"] = np.where(to[visit] != DROPOFF, n[visit], 0)
        pat = key.groupby(["g", "s", *self.channels], sort=True)[["n", "k"]].sum().reset_index()
        self._pg = pat["g"].to_numpy(np.int64)
        self._ps = pat["s"].to_numpy(np.int64)
        self._L = pat[self.channels].to_numpy(np.int64)
        self._pn = pat["n"].to_numpy(float)
        self._pk = pat["k"].to_numpy(float)
        self._cell_visits = np.bincount(
            self._pg * S + self._ps, weights=self._pn, minlength=G * S
        ).reshape(G, S)
        self.n_journeys = pd.Series(
            self._start.sum(1), index=pd.Index(self.segments, name="segment")
        )
        self.n_visits = int(self._pn.sum())
        self.n_patterns = len(pat)
        self._table = df.reset_index(drop=True)
        log.info(
            "%s: %d visits in %d exposure patterns, %d segments, %d channels",
            self._model_type,
            self.n_visits,
            self.n_patterns,
            G,
            C,
        )

    def _fit_data(self) -> pd.DataFrame:
        return self._table

    def _extra_attrs(self) -> dict[str, str]:
        return {
            "group": json.dumps(self.group),
            "channels": json.dumps(self.channels),
            "level_ages": json.dumps(self.level_ages),
        }

    @classmethod
    def _from_fit_data(cls, data: pd.DataFrame, attrs: dict[str, Any], **configs: Any):
        return cls(
            data,
            group=json.loads(attrs["group"]),
            channels=json.loads(attrs["channels"]),
            level_ages=json.loads(attrs["level_ages"]),
            **configs,
        )

    def _coords(self) -> dict[str, list[str]]:
        return {"segment": self.segments, "stage": self.stages, "channel": self.channels}

    # ---------------------------------------------------------------------------- the model
    def _initial_points(self, chains: int, rng: np.random.Generator) -> list[dict[str, np.ndarray]]:
        """Stage intercepts near the pooled share of visits that moved on; small effects."""
        S = len(self.stages)
        k = np.bincount(self._ps, weights=self._pk, minlength=S)
        n = np.bincount(self._ps, weights=self._pn, minlength=S)
        base = np.log((k + 1) / (n - k + 1))
        G, C = len(self.segments), len(self.channels)
        points = []
        for _ in range(chains):
            start = {
                "intercept_mu": base + rng.normal(0, 0.2, S),
                "beta": rng.normal(0, 0.1, C),
                "half_life": np.exp(rng.uniform(np.log(2.0), np.log(20.0))),
            }
            if G > 1:
                start["intercept_sigma"] = rng.uniform(0.2, 0.6)
                big = self._cell_visits >= float(self.model_config["centering_threshold"])
                if big.any():
                    start["alpha_big"] = base[np.nonzero(big)[1]] + rng.normal(
                        0, 0.3, int(big.sum())
                    )
                if (~big).any():
                    start["alpha_z"] = rng.normal(0, 0.5, int((~big).sum()))
                effects = self.model_config["segment_effects"]
                if effects != "none":
                    start["beta_sigma"] = rng.uniform(0.05, 0.2)
                if effects == "noncentered":
                    start["z_beta"] = rng.normal(0, 0.5, (G, C))
                elif effects == "centered":
                    start["beta_segment"] = start["beta"][None, :] + rng.normal(0, 0.1, (G, C))
            points.append(start)
        return points

    def _segment_intercepts(self, mu: Any) -> Any:
        """Create ``alpha_centered`` (segment, stage): the segments' intercepts around ``mu``.

        Called inside the model's context, before :meth:`_segment_effects`.
        """
        import pymc as pm
        import pytensor.tensor as pt

        cfg = self.model_config
        G = len(self.segments)
        if G == 1:
            return pm.Deterministic("alpha_centered", mu[None, :], dims=("segment", "stage"))
        a_sd = cfg["intercept_sigma"].create("intercept_sigma")
        # mixed centring: a cell with many visits pins its intercept down (centred is
        # the good geometry), a cell with few leaves it to the prior (non-centred is);
        # either alone makes NUTS take hundreds of steps per draw on typical data
        big = self._cell_visits >= float(cfg["centering_threshold"])
        alpha = pt.zeros((G, len(self.stages)))
        if big.any():
            gb, sb = np.nonzero(big)
            a_big = pm.Normal("alpha_big", mu[sb], a_sd, shape=len(gb))
            alpha = pt.set_subtensor(alpha[gb, sb], a_big)
        if (~big).any():
            gs, ss = np.nonzero(~big)
            z = pm.Normal("alpha_z", 0.0, 1.0, shape=len(gs))
            alpha = pt.set_subtensor(alpha[gs, ss], mu[ss] + a_sd * z)
        return pm.Deterministic("alpha_centered", alpha, dims=("segment", "stage"))

    def _segment_effects(self, beta: Any) -> Any:
        """Create ``beta_segment`` (segment, channel): the channel effects in each segment.

        ``segment_effects`` "none" (or one segment): ``beta`` itself; "centered" or
        "noncentered": partially pooled around it. Called inside the model's context.
        """
        import pymc as pm
        import pytensor.tensor as pt

        cfg = self.model_config
        G = len(self.segments)
        effects = cfg["segment_effects"] if G > 1 else "none"
        if effects == "noncentered":
            b_sd = cfg["beta_sigma"].create("beta_sigma")
            z_b = pm.Normal("z_beta", 0.0, 1.0, dims=("segment", "channel"))
            return pm.Deterministic(
                "beta_segment", beta[None, :] + b_sd * z_b, dims=("segment", "channel")
            )
        if effects == "centered":
            b_sd = cfg["beta_sigma"].create("beta_sigma")
            return pm.Normal("beta_segment", beta[None, :], b_sd, dims=("segment", "channel"))
        return pm.Deterministic(
            "beta_segment",
            pt.broadcast_to(beta[None, :], (G, len(self.channels))),
            dims=("segment", "channel"),
        )

    def build_model(self) -> Any:
        """Return the PyMC model: stage intercepts, channel effects, carry-over, binomial visits."""
        import pymc as pm
        import pytensor.tensor as pt

        cfg = self.model_config
        G = len(self.segments)
        ages = np.asarray(self.level_ages, dtype=float)
        with pm.Model(coords=self._coords()) as model:
            mu = cfg["intercept_mu"].create("intercept_mu", dims="stage")
            beta = cfg["beta"].create("beta", dims="channel")
            half_life = cfg["half_life"].create("half_life")
            alpha = self._segment_intercepts(mu)
            beta_g = self._segment_effects(beta)
            effects = cfg["segment_effects"] if G > 1 else "none"
            # x = 1[during the visit] + sum over carry-over levels of their decayed weight, and
            # exposures are centred on their mean per stage (visit-weighted), so that alpha is
            # the log-odds at the stage's usual exposure and is not correlated with every beta
            # (the sampler needs ~10x fewer steps); alpha_raw is re-expressed below.
            # x is linear in the level weights w = [1, decay...], so the centred exposures of
            # each level are constants (levels, P, C) and the slope is one matrix product per
            # step: ~3x faster per gradient than building x, and no gathers (whose gradients
            # are scatter-adds, which XLA runs element by element on CPU)
            S, P, C = len(self.stages), len(self._ps), len(self.channels)
            levels = [1] + [2 + i for i in range(len(ages)) if (self._L == 2 + i).any()]
            decay = pt.exp(-_LN2 * ages[[lv - 2 for lv in levels[1:]]] / half_life)
            w = pt.concatenate([pt.ones(1), decay]) if len(levels) > 1 else pt.ones(1)
            weights = np.zeros((S, P))  # per stage: each pattern's share of the stage's visits
            weights[self._ps, np.arange(P)] = self._pn
            weights /= np.maximum(weights.sum(1, keepdims=True), 1.0)
            on = np.stack([(self._L == lv).astype(float) for lv in levels])  # (levels, P, C)
            level_mean = np.einsum("sp,jpc->jsc", weights, on)  # (levels, S, C)
            centred = (on - level_mean[:, self._ps, :]).reshape(len(levels) * P, C)
            xbar = pt.tensordot(w, pt.as_tensor(level_mean), axes=1)  # (S, C) at the current w
            if effects == "none":
                per_level = pt.dot(pt.as_tensor(centred), beta).reshape((len(levels), P))
            else:
                in_segment = np.zeros((P, G))
                in_segment[np.arange(P), self._pg] = 1.0
                per_level = (
                    pt.dot(pt.as_tensor(centred), beta_g.T).reshape((len(levels), P, G))
                    * in_segment[None]
                ).sum(-1)
            in_cell = np.zeros((P, G * S))
            in_cell[np.arange(P), self._pg * S + self._ps] = 1.0
            eta = pt.dot(pt.as_tensor(in_cell), alpha.reshape((G * S,))) + pt.dot(w, per_level)
            # the intercept at no exposure (what the counterfactuals use)
            pm.Deterministic(
                "alpha",
                alpha - (xbar[None, :, :] * beta_g[:, None, :]).sum(-1),
                dims=("segment", "stage"),
            )
            # binomial log-likelihood on logits: k * eta - n * log(1 + e^eta) (+ a constant)
            pm.Potential("loglik", (self._pk * eta - self._pn * pt.softplus(eta)).sum())
        return model

    def _postprocess(self, idata: az.InferenceData) -> az.InferenceData:
        post = idata.posterior
        post = post[[v for v in post.data_vars if not v.startswith(("z_", "alpha_big", "alpha_z"))]]
        idata.posterior = post.assign_coords(self._coords())
        return idata

    # ------------------------------------------------------------------------- attribution
    def _draws(self, max_draws: int | None, seed: int):
        post = self._require_fit().posterior
        alpha, beta = stacked_draws(post["alpha"]), stacked_draws(post["beta_segment"])
        hl = stacked_draws(post["half_life"])
        D = len(hl)
        idx = np.arange(D)
        if max_draws is not None and D > max_draws:
            idx = np.random.default_rng(seed).choice(D, max_draws, replace=False)
            idx.sort()
        return alpha[idx], beta[idx], hl[idx], idx

    def removal_effects(
        self, *, max_draws: int | None = 1000, seed: int = 0, chunk: int = 100
    ) -> xr.DataArray:
        """Incremental P(convert | journey) of every channel, per segment and posterior draw.

        Returns a DataArray (sample, segment, channel): P(convert) minus P(convert) with the
        channel's exposures removed (see the class docstring). ``max_draws`` caps the draws used
        (a seeded random subset); ``chunk`` draws are processed at once (memory). The result is
        kept per fit and arguments: a report asking for the overall and the by-segment table
        computes it once. A model from :meth:`fit_cached` also keeps it on disk (in
        ``derived_cache_dir``, keyed by the draws, the chain inputs, the arguments and the code
        of this module and its :attr:`code_modules`), so a re-rendered report loads it.
        """
        idata, args = self._require_fit(), (max_draws, seed)
        memo = self.__dict__.get("_removal_memo")
        if memo is None or memo[0] is not idata or memo[1] != args:
            memo = (idata, args, self._removal_effects_cached(max_draws, seed, chunk))
            self.__dict__["_removal_memo"] = memo
        return memo[2].copy()

    def _removal_effects_cached(self, max_draws: int | None, seed: int, chunk: int) -> xr.DataArray:
        folder = getattr(self, "derived_cache_dir", None)
        if folder is None:
            return self._removal_effects(max_draws, seed, chunk)
        from pathlib import Path

        post = self._require_fit().posterior
        path = effects_path(
            Path(folder),
            code_files(type(self), self.code_modules),
            [
                *(post[v].to_numpy() for v in ("alpha", "beta", "half_life")),
                self._moves,
                self._start,
                self._pn,
                self._pg,
                self._ps,
                self._L,
            ],
            [self.segments, self.channels, list(self.level_ages), max_draws, seed, chunk],
        )
        out = load_effects(path, self.segments, self.channels)
        if out is None:
            out = self._removal_effects(max_draws, seed, chunk)
            save_effects(path, out)
        return out

    def _removal_effects(self, max_draws: int | None, seed: int, chunk: int) -> xr.DataArray:
        alpha, beta, hl, idx = self._draws(max_draws, seed)
        effect = removal_draws(
            alpha,
            beta,
            hl,
            level_ages=self.level_ages,
            segment=self._pg,
            stage=self._ps,
            levels=self._L,
            visits=self._pn,
            moves=self._moves,
            start=self._start,
            rng=np.random.default_rng(seed + 1),
            chunk=chunk,
        )
        return xr.DataArray(
            effect,
            dims=("sample", "segment", "channel"),
            coords={"sample": idx, "segment": self.segments, "channel": self.channels},
            name="removal_effect",
        )

    def attribution(
        self,
        *,
        prob: float = 0.9,
        weights: dict[str, float] | pd.Series | None = None,
        by_segment: bool = False,
        segments: list[str] | None = None,
        max_draws: int | None = 1000,
        seed: int = 0,
    ) -> pd.DataFrame:
        """Attribution table, one row per channel (per segment and channel with ``by_segment``).

        Columns: ``channel`` (and ``segment``); ``conversions`` (posterior mean of the
        conversions among the modelled journeys that the channel brought: removal effect ×
        journeys), ``conversions_lower/_upper`` (``prob`` interval); ``per_1000`` (incremental
        conversions per 1,000 journeys) with ``per_1000_lower/_upper``; ``share`` (conversions
        over the sum of all channels' conversions); ``beta`` (log-odds effect per exposure,
        posterior mean) with ``beta_lower/_upper``. ``weights`` mixes the segments for the
        overall ``per_1000`` (default: their journey counts). ``segments`` restricts the overall
        figures to some segments (the model is still fitted on all: partial pooling).
        """
        eff = self.removal_effects(max_draws=max_draws, seed=seed).to_numpy()  # (D, G, C)
        beta = stacked_draws(self._require_fit().posterior["beta"])
        return attribution_table(
            eff,
            beta,
            self.n_journeys,
            self.channels,
            prob=prob,
            weights=weights,
            by_segment=by_segment,
            segments=segments,
        )

    def summary(self, prob: float = 0.9) -> pd.DataFrame:
        """Summarise the parameters: stage intercepts, channel effects, spreads, half-life."""
        idata = self._require_fit()
        names = [
            v
            for v in ("intercept_mu", "beta", "intercept_sigma", "beta_sigma", "half_life")
            if v in idata.posterior
        ]
        return az.summary(idata, var_names=names, hdi_prob=prob, kind="stats")
