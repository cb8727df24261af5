"""Where journeys advance, stall and drop off: a Bayesian stage-transition model.

:class:`StageTransitionModel` takes the counts of :meth:`analysis.Journeys.stage_transitions`
(``segment, from_stage, to_stage, n``), so that tables from any source can be modelled. It does
not loop over events: the likelihood is on the counts (sufficient statistics), so the cost does
not grow with the data. The time spent in each stage is :mod:`analysis.models.dwell`'s
(:class:`DwellTimeModel` and :func:`expected_time_to_conversion` are importable from here too).

The chain
---------
States are ``(start)``, the stages (See, Think, Do, Care by default) and two absorbing outcomes,
``(conversion)`` and ``(dropoff)``. Every journey starts in ``(start)``, enters a stage, and each
stage visit ends in another stage or an outcome. Moves the stage map does not allow
(:meth:`analysis.schema.StageMap.allowed`) are structural zeros. ``(open)`` exits (journeys that
may still go on) are *not* in the likelihood: they are censored; their numbers are reported. Near
the end of the data a drop-off is not yet visible while an advance is, so counts from all
journeys overstate advancing; ``Journeys.stage_transitions(mature_days=2 * inactivity_days)``
counts only visits whose exit is settled.

Partial pooling
---------------
For segment ``g`` and from-state ``r`` with allowed targets ``A_r``::

    mean[r]          ~ Dirichlet(mean_prior_a)                 shared across segments
    concentration[r] ~ LogNormal(3.5, 1.5)                     how alike segments are
    p[g, r]          ~ Dirichlet(concentration[r] * mean[r])
    n[g, r, A_r]     ~ Multinomial(N[g, r], p[g, r])

NUTS samples ``mean`` and ``concentration`` with ``p`` integrated out (a Dirichlet-multinomial
likelihood: no funnel, a handful of parameters whatever the number of segments), then draws
``p[g, r]`` from its exact conditional ``Dirichlet(concentration * mean + n)`` on every posterior
draw. A segment with 40 journeys is pulled towards the mean; one with 40,000 is not. With
``pooling="none"`` every row has its own ``Dirichlet(prior_a)`` prior and the exact posterior
``Dirichlet(prior_a + n)`` is available without MCMC (``fit(method="conjugate")``).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, ClassVar

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from analysis.models._fit import first_seed
from analysis.models._math import (
    SAMPLE,
    absorption,
    chain_parts,
    conditional_times,
    simulate_journeys,
)
from analysis.models.base import BayesianModel, ModelConfigError, Prior, interval_table
from analysis.models.dwell import DwellTimeModel, expected_time_to_conversion
from analysis.models.transition_counts import tabulate_transitions, tidy_counts, warn_open
from analysis.schema import CONVERSION, DROPOFF, START, StageMap

log = logging.getLogger(__name__)

__all__ = ["DwellTimeModel", "StageTransitionModel", "expected_time_to_conversion"]


class StageTransitionModel(BayesianModel):
    """Hierarchical Dirichlet model of stage-to-stage transitions, per segment.

    Parameters
    ----------
    counts : DataFrame
        ``[segment,] from_stage, to_stage, n`` — as :meth:`analysis.Journeys.stage_transitions`
        returns. ``from_stage`` is ``(start)`` or a stage; ``to_stage`` is a stage,
        ``(conversion)``, ``(dropoff)`` or ``(open)`` (censored; kept out of the likelihood).
        Repeated cells are summed. Without a segment column everything is one segment, ``all``.
    stage_map : StageMap, optional
        Stages (in funnel order) and the allowed moves; default :class:`StageMap` (See, Think,
        Do, Care; every move except a stage to itself).
    group : str or list of str, default "segment"
        Column(s) naming the segment.
    model_config : dict, optional
        - ``pooling`` : ``"partial"`` (default) or ``"none"``.
        - ``mean_prior_a`` : float, default 1.0 — Dirichlet parameter of the shared mean rows
          (partial pooling).
        - ``concentration`` : Prior, default ``LogNormal(mu=3.5, sigma=1.5)`` — per from-state.
        - ``prior_a`` : float, default 1.0 — Dirichlet parameter of every row (no pooling).
    sampler_config : dict, optional
        See :attr:`BayesianModel.BASESAMPLER_CONFIG` (draws 1000, tune 1000, chains 4, seed 0,
        NUTS back end, convergence thresholds, ``on_fail``).

    Raises
    ------
    DataError
        Missing columns, bad counts, unknown states, a move the stage map forbids that appears
        in the data, a segment with no journeys, a stage entered but never left — all listed
        together.
    """

    _model_type: ClassVar[str] = "StageTransitionModel"
    code_modules: ClassVar[tuple[str, ...]] = (
        *BayesianModel.code_modules,
        "analysis.models._math",
        "analysis.models.dwell",
        "analysis.models.transition_counts",
    )
    default_model_config: ClassVar[dict[str, Any]] = {
        "pooling": "partial",
        "mean_prior_a": 1.0,
        "concentration": Prior("LogNormal", mu=3.5, sigma=1.5),
        "prior_a": 1.0,
    }

    @property
    def _check_vars(self) -> list[str]:  # type: ignore[override]
        """Return the variables whose convergence NUTS must show.

        With partial pooling every ``p`` draw is an exact draw given ``mean`` and
        ``concentration``, so their convergence is what NUTS must show (and checking the
        hundreds of ``p`` cells would cost seconds); without pooling NUTS samples ``p`` itself.
        """
        return ["mean", "concentration"] if self.model_config["pooling"] == "partial" else ["p"]

    def __init__(
        self,
        counts: pd.DataFrame,
        *,
        stage_map: StageMap | None = None,
        group: str | list[str] | None = "segment",
        model_config: dict[str, Any] | None = None,
        sampler_config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(counts, model_config=model_config, sampler_config=sampler_config)
        if self.model_config["pooling"] not in ("partial", "none"):
            raise ModelConfigError("model_config['pooling'] must be 'partial' or 'none'")
        self.stage_map = stage_map or StageMap()
        self.group = group
        self._prepare(counts)

    # ------------------------------------------------------------------------------ data
    def _prepare(self, counts: pd.DataFrame) -> None:
        """Check the counts and keep them as arrays (segment, from_state, to_state) and a table."""
        segments, C, open_, allowed = tabulate_transitions(counts, self.stage_map, self.group)
        self.segments = segments
        self.from_states, self.to_states = self.stage_map.from_states, self.stage_map.to_states
        self.stages = list(self.stage_map.stages)
        self.allowed = allowed
        self.counts = C
        self.open = open_
        warn_open(segments, self.stages, C, open_)
        self._table = tidy_counts(segments, self.from_states, self.to_states, C, open_)

    def _fit_data(self) -> pd.DataFrame:
        return self._table

    def _extra_attrs(self) -> dict[str, str]:
        moves = {
            f: [t for t, ok in zip(self.to_states, row, strict=True) if ok]
            for f, row in zip(self.from_states, self.allowed, strict=True)
        }
        return {"stage_map": json.dumps({"stages": self.stages, "transitions": moves})}

    @classmethod
    def _from_fit_data(cls, data: pd.DataFrame, attrs: dict[str, Any], **configs: Any):
        sm = json.loads(attrs["stage_map"])
        stage_map = StageMap(
            stages=tuple(sm["stages"]), touchpoints={}, transitions=sm["transitions"]
        )
        return cls(data, stage_map=stage_map, **configs)

    @property
    def n_journeys(self) -> pd.Series:
        """Journeys per segment (the ``(start)`` row, open ones included)."""
        return pd.Series(
            self.counts[:, 0].sum(1) + self.open[:, 0],
            index=pd.Index(self.segments, name="segment"),
        )

    # ----------------------------------------------------------------------------- model
    def _coords(self) -> dict[str, list[str]]:
        return {
            "segment": self.segments,
            "from_state": self.from_states,
            "to_state": self.to_states,
        }

    def _row_groups(self) -> dict[int, np.ndarray]:
        """Return the from-states with at least two allowed targets, grouped by how many.

        K → rows, so that each group is one batched Dirichlet.
        """
        k = self.allowed.sum(1)
        return {int(n): np.flatnonzero(k == n) for n in np.unique(k) if n >= 2}

    def _initial_points(self, chains: int, rng: np.random.Generator) -> list[dict[str, np.ndarray]]:
        """Return dispersed starts, one per chain.

        Rows near the pooled data's proportions (Dirichlet-perturbed) and concentrations spread
        over the prior's bulk; none are on a boundary.
        """
        pooled = self.counts.sum(0) + 1.0
        points = []
        for _ in range(chains):
            start: dict[str, np.ndarray] = {}
            for k, rows in self._row_groups().items():
                share = np.stack([pooled[r][self.allowed[r]] for r in rows])
                share = share / share.sum(1, keepdims=True)
                if self.model_config["pooling"] == "partial":
                    start[f"mean_k{k}"] = np.stack([rng.dirichlet(20 * s_ + 1) for s_ in share])
                else:
                    start[f"p_k{k}"] = np.stack(
                        [[rng.dirichlet(20 * s_ + 1) for s_ in share] for _ in self.segments]
                    )
            if self.model_config["pooling"] == "partial":
                start["concentration"] = np.exp(
                    rng.uniform(np.log(5.0), np.log(200.0), len(self.from_states))
                )
            points.append(start)
        return points

    def build_model(self):
        """Return the PyMC model (see the module docstring).

        The likelihood is one ``Potential`` over the cells with data (Dirichlet-multinomial with
        partial pooling, multinomial without): a handful of vectorised ops whatever the number
        of segments, which keeps compilation and every gradient cheap.
        """
        import pymc as pm
        import pytensor.tensor as pt
        from pytensor.tensor.special import gammaln

        C, A = self.counts, self.allowed
        G, F, T = C.shape
        cfg = self.model_config
        fixed = np.zeros((F, T))
        for r in np.flatnonzero(A.sum(1) == 1):
            fixed[r, np.flatnonzero(A[r])[0]] = 1.0
        cg, cr, ct = np.nonzero(C)  # cells with data (all allowed: checked at the door)
        n_cell = C[cg, cr, ct].astype(float)
        with pm.Model(coords=self._coords()) as model:
            if cfg["pooling"] == "partial":
                kappa = cfg["concentration"].create("concentration", dims="from_state")
                mean = pt.as_tensor(fixed)
                for k, rows in self._row_groups().items():
                    mu = pm.Dirichlet(
                        f"mean_k{k}", a=np.full((len(rows), k), float(cfg["mean_prior_a"]))
                    )
                    cols = np.stack([np.flatnonzero(A[r]) for r in rows])
                    mean = pt.set_subtensor(mean[rows[:, None], cols], mu)
                mean = pm.Deterministic("mean", mean, dims=("from_state", "to_state"))
                alpha = kappa[:, None] * mean
                # Dirichlet-multinomial, p integrated out (the multinomial coefficient is a constant)
                rows_g, rows_r = np.nonzero(C.sum(2))
                n_row = C.sum(2)[rows_g, rows_r].astype(float)
                a_cell = alpha[cr, ct]
                ll = (gammaln(kappa[rows_r]) - gammaln(n_row + kappa[rows_r])).sum()
                ll = ll + (gammaln(n_cell + a_cell) - gammaln(a_cell)).sum()
            else:
                p = pt.as_tensor(np.broadcast_to(fixed, (G, F, T)).copy())
                for k, rows in self._row_groups().items():
                    pr = pm.Dirichlet(
                        f"p_k{k}", a=np.full((G, len(rows), k), float(cfg["prior_a"]))
                    )
                    cols = np.stack([np.flatnonzero(A[r]) for r in rows])
                    p = pt.set_subtensor(p[:, rows[:, None], cols], pr)
                p = pm.Deterministic("p", p, dims=("segment", "from_state", "to_state"))
                ll = (n_cell * pt.log(p[cg, cr, ct])).sum()
            pm.Potential("loglik", ll)
        return model

    def _postprocess(self, idata: az.InferenceData) -> az.InferenceData:
        """Partial pooling: draw every segment's rows from their exact conditional."""
        post = idata.posterior
        post = post[[v for v in post.data_vars if not v.startswith(("mean_", "p_"))]]
        if (
            self.model_config["pooling"] == "partial" and "mean" in post
        ):  # not in a fallback's draws
            mean = post["mean"].to_numpy()  # (c, d, F, T)
            kappa = post["concentration"].to_numpy()  # (c, d, F)
            alpha = kappa[:, :, None, :, None] * mean[:, :, None] + self.counts[None, None]
            rng = np.random.default_rng(first_seed(self.sampler_config["random_seed"]) + 1)
            g = np.where(alpha > 0, rng.standard_gamma(np.where(alpha > 0, alpha, 1.0)), 0.0)
            p = g / g.sum(-1, keepdims=True)
            post = post.assign(p=(("chain", "draw", "segment", "from_state", "to_state"), p))
        idata.posterior = post.assign_coords(self._coords())
        return idata

    def fit(self, method: str = "nuts", **sampler_overrides: Any) -> az.InferenceData:
        """Fit the model: ``method="nuts"`` (default, MCMC) or ``"conjugate"`` (exact draws).

        The conjugate fit is exact only with ``pooling="none"``.

        Returns ArviZ InferenceData whose posterior holds ``p`` (chain, draw, segment,
        from_state, to_state) — and ``mean``, ``concentration`` with partial pooling.
        """
        if method == "conjugate":
            return self.fit_conjugate(**sampler_overrides)
        if method != "nuts":
            raise ModelConfigError(f"method must be 'nuts' or 'conjugate', got {method!r}")
        return super().fit(**sampler_overrides)

    def _fit_unchecked(self, method: str = "nuts", **fit_kwargs: Any) -> az.InferenceData:
        if method == "conjugate":
            return self.fit_conjugate(**fit_kwargs)
        if method != "nuts":
            raise ModelConfigError(f"method must be 'nuts' or 'conjugate', got {method!r}")
        return super()._fit_unchecked(**fit_kwargs)

    def fit_conjugate(self, **sampler_overrides: Any) -> az.InferenceData:
        """Exact posterior draws of the unpooled model: ``p[g, r] ~ Dirichlet(prior_a + n[g, r])``."""
        if self.model_config["pooling"] != "none":
            raise ModelConfigError(
                "the conjugate fit is exact only without pooling: use model_config={'pooling': 'none'} "
                "(partial pooling needs fit())"
            )
        t0 = time.perf_counter()
        self.idata = self._conjugate_draws({**self.sampler_config, **sampler_overrides})
        self.fit_seconds, self.fit_note = time.perf_counter() - t0, None
        self.idata.fit_data.attrs["fit_seconds"] = float(self.fit_seconds)
        self.fallback = self.failed_checks = self.failed_diagnostics = None
        self.check()
        return self.idata

    fallback_name = (
        "the exact conjugate model without pooling (each segment's transition rows from its own "
        "counts, Dirichlet(1 + n)): no MCMC, wider intervals for small segments"
    )

    def _fallback_fit(self) -> az.InferenceData:
        return self._conjugate_draws(self.sampler_config)

    def _conjugate_draws(self, cfg: dict[str, Any]) -> az.InferenceData:
        """Exact draws of ``p[g, r] ~ Dirichlet(prior_a + n[g, r])``, finished as a conjugate fit."""
        alpha = np.where(self.allowed[None], float(self.model_config["prior_a"]) + self.counts, 0.0)
        rng = np.random.default_rng(first_seed(cfg["random_seed"]))
        shape = (int(cfg["chains"]), int(cfg["draws"]), *alpha.shape)
        g = np.where(
            alpha > 0,
            rng.standard_gamma(np.broadcast_to(np.where(alpha > 0, alpha, 1.0), shape)),
            0.0,
        )
        p = g / g.sum(-1, keepdims=True)
        idata = az.from_dict(
            posterior={"p": p},
            coords=self._coords(),
            dims={"p": ["segment", "from_state", "to_state"]},
        )
        return self._finish(idata, sampler="none", method="conjugate")

    # ------------------------------------------------------------------- posterior quantities
    @property
    def p(self) -> xr.DataArray:
        """Posterior draws of the transition probabilities (chain, draw, segment, from_state, to_state)."""
        return self._require_fit().posterior["p"]

    def transition_probabilities(self) -> pd.DataFrame:
        """Tidy table: segment, from_stage, to_stage, n (observed), mean, lower, upper (90%), allowed cells only."""
        t = interval_table(self.p, name="p").rename(
            columns={"from_state": "from_stage", "to_state": "to_stage"}
        )
        allowed = pd.DataFrame(self.allowed, index=self.from_states, columns=self.to_states).stack()
        ok = allowed.loc[list(zip(t["from_stage"], t["to_stage"], strict=True))].to_numpy()
        t["n"] = self.counts.ravel()
        return t[ok].reset_index(drop=True)[
            ["segment", "from_stage", "to_stage", "n", "mean", "lower", "upper"]
        ]

    def _parts(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Split ``p`` into start → stage, stage → stage, → conversion, → drop-off."""
        conv, drop = self.to_states.index(CONVERSION), self.to_states.index(DROPOFF)
        return chain_parts(p, len(self.stages), conv, drop)

    def _absorb(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """P(conversion | in stage) (…, S) and from start (…)."""
        p0, Q, R, _ = self._parts(p)
        return absorption(p0, Q, R)

    def _da(self, values: np.ndarray, state_dim: str, states: list[str], name: str) -> xr.DataArray:
        post = self.p
        return xr.DataArray(
            values,
            dims=("chain", "draw", "segment", state_dim),
            coords={
                "chain": post.chain,
                "draw": post.draw,
                "segment": self.segments,
                state_dim: states,
            },
            name=name,
        )

    def conversion_probability(self) -> xr.DataArray:
        """Return P(a journey eventually converts) from ``(start)`` and from each stage.

        Absorbing-chain algebra on every draw. Dims: chain, draw, segment, state.
        """
        b, b0 = self._absorb(self.p.to_numpy())
        return self._da(
            np.concatenate([b0[..., None], b], -1),
            "state",
            self.from_states,
            "conversion_probability",
        )

    def dropoff_probability(self) -> xr.DataArray:
        """P(a visit to the stage ends in drop-off). Dims: chain, draw, segment, stage."""
        return self._da(
            self._parts(self.p.to_numpy())[3], "stage", self.stages, "dropoff_probability"
        )

    def dropoff_share(self) -> xr.DataArray:
        """Return the share of journeys that end by dropping off at each stage.

        Expected visits from start × drop-off probability. Dims: chain, draw, segment, stage;
        sums with conversion to 1.
        """
        p0, Q, _, D = self._parts(self.p.to_numpy())
        eye = np.eye(Q.shape[-1])
        visits = np.linalg.solve(np.swapaxes(eye - Q, -1, -2), p0[..., None])[..., 0]  # p0 @ N
        return self._da(visits * D, "stage", self.stages, "dropoff_share")

    def expected_steps(self) -> xr.DataArray:
        """Return the expected number of stage visits until conversion, given conversion.

        From ``(start)`` and from each stage (counting the current visit; the chain conditioned on
        converting). NaN where conversion is impossible. Dims: chain, draw, segment, state.
        """
        p0, Q, _, _ = self._parts(self.p.to_numpy())
        b, b0 = self._absorb(self.p.to_numpy())
        t = conditional_times(Q, b, np.ones_like(b))
        with np.errstate(invalid="ignore", divide="ignore"):
            t0 = (p0 * b * t).sum(-1) / b0
        return self._da(
            np.concatenate([t0[..., None], t], -1), "state", self.from_states, "expected_steps"
        )

    def stage_gains(self, reduction: float = 0.2) -> xr.DataArray:
        """Return the gain in P(conversion from start) when a stage's drop-off falls.

        The drop-off probability is cut by ``reduction`` (the freed mass goes to the row's other cells in proportion). Dims: chain,
        draw, segment, stage. The same definition as ``analysis.synth`` truth's ``stage_gains``.
        """
        if not 0 < reduction <= 1:
            raise ValueError("reduction must be in (0, 1]")
        p = self.p.to_numpy()
        _, base = self._absorb(p)
        drop = self.to_states.index(DROPOFF)
        gains = []
        for s in range(len(self.stages)):
            q = p.copy()
            row = q[..., 1 + s, :]
            d = row[..., drop].copy()
            others = row.sum(-1) - d
            with np.errstate(invalid="ignore", divide="ignore"):
                scale = np.where(others > 0, 1.0 + reduction * d / others, 1.0)
            row *= scale[..., None]
            row[..., drop] = np.where(others > 0, d * (1.0 - reduction), d)
            gains.append(self._absorb(q)[1] - base)
        return self._da(np.stack(gains, -1), "stage", self.stages, "stage_gain")

    def friction(self, reduction: float = 0.2) -> pd.DataFrame:
        """Stages ranked by how much conversion would rise if their drop-off fell by ``reduction``.

        Returns segment, stage, gain mean/lower/upper, ``p_worst`` (posterior probability that the
        stage has the largest gain in its segment) and ``rank`` (1 = the friction point).
        """
        gains = self.stage_gains(reduction)
        t = interval_table(gains, name="gain")
        worst = gains.argmax("stage")
        pw = np.stack([(worst == i).mean(SAMPLE).to_numpy() for i in range(len(self.stages))], -1)
        t["p_worst"] = pw.ravel()
        t["rank"] = t.groupby("segment")["mean"].rank(ascending=False, method="first").astype(int)
        return t.sort_values(["segment", "rank"]).reset_index(drop=True)

    def friction_point(self, reduction: float = 0.2) -> pd.DataFrame:
        """Return the friction point of each segment: its rank-1 row of :meth:`friction`."""
        f = self.friction(reduction)
        return f[f["rank"] == 1].reset_index(drop=True)

    def compare_segments(self, a: str, b: str) -> pd.DataFrame:
        """Compare segment ``a`` with ``b``, per state.

        The difference in conversion probability (mean, 90% interval) and P(a converts better
        than b).
        """
        for s in (a, b):
            if s not in self.segments:
                raise ValueError(f"unknown segment {s!r}; segments: {self.segments}")
        conv = self.conversion_probability()
        diff = conv.sel(segment=a) - conv.sel(segment=b)
        t = interval_table(diff, name="difference")
        t["p_a_better"] = (diff > 0).mean(SAMPLE).to_numpy()
        t.insert(0, "b", b)
        t.insert(0, "a", a)
        return t

    def summary(self) -> pd.DataFrame:
        """Return the headline table per segment.

        Journeys, P(convert from start) with interval, the friction point and the probability
        that it is the worst stage.
        """
        conv = interval_table(self.conversion_probability().sel(state=START), name="conversion")
        fp = self.friction_point()
        out = pd.DataFrame(
            {
                "segment": self.segments,
                "journeys": self.n_journeys.to_numpy(),
                "open": self.open.sum(1),
                "conversion_mean": conv["mean"].to_numpy(),
                "conversion_lower": conv["lower"].to_numpy(),
                "conversion_upper": conv["upper"].to_numpy(),
            }
        )
        return out.merge(
            fp[["segment", "stage", "p_worst"]].rename(columns={"stage": "friction_stage"}),
            on="segment",
        )

    # ---------------------------------------------------------------------------- checking
    def posterior_predictive(self, n_draws: int = 200, seed: int = 0) -> pd.DataFrame:
        """Posterior predictive check of journey conversion rate and length.

        For ``n_draws`` posterior draws, simulates as many journeys per segment as the data has
        and compares the observed statistic with its predictive distribution: ``conversion
        rate`` (conversions / ended journeys) and ``visits per journey`` (stage visits / journeys).
        Returns segment, statistic, observed, predicted mean/lower/upper (90%) and ``p_value``
        (predictive P(statistic ≥ observed)); a p-value near 0 or 1 flags misfit. Open journeys
        count as they are in the data (their later visits are missing), so with many open
        journeys the observed length is slightly low.
        """
        p = self.p.to_numpy().reshape(-1, *self.p.shape[2:])
        rng = np.random.default_rng(seed)
        pick = rng.choice(len(p), size=min(n_draws, len(p)), replace=False)
        p = p[pick]  # (D, G, F, T)
        S = len(self.stages)
        conv_i, drop_i = self.to_states.index(CONVERSION), self.to_states.index(DROPOFF)
        cum = np.cumsum(p, -1)
        cum[..., -1] = 1.0
        rows = []
        for gi, seg in enumerate(self.segments):
            C, open_ = self.counts[gi], self.open[gi]
            n_j = int(C[0].sum() + open_[0])
            ended = C[1:, conv_i].sum() + C[1:, drop_i].sum()
            obs_conv = C[1:, conv_i].sum() / ended if ended else np.nan
            obs_len = C[:, :S].sum() / n_j if n_j else np.nan
            pred_conv, pred_len = simulate_journeys(cum[:, gi], n_j, S, conv_i, rng)
            for name, obs, pred in (
                ("conversion rate", obs_conv, pred_conv),
                ("visits per journey", obs_len, pred_len),
            ):
                rows.append(
                    {
                        "segment": seg,
                        "statistic": name,
                        "observed": obs,
                        "predicted_mean": pred.mean(),
                        "predicted_lower": np.quantile(pred, 0.05),
                        "predicted_upper": np.quantile(pred, 0.95),
                        "p_value": float((pred >= obs).mean()),
                    }
                )
        return pd.DataFrame(rows)
