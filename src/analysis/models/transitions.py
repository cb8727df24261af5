"""Where journeys advance, stall and drop off: Bayesian stage-transition and dwell-time models.

:class:`StageTransitionModel` takes the counts of :meth:`analysis.Journeys.stage_transitions`
(``segment, from_stage, to_stage, n``) and :class:`DwellTimeModel` the visits of
:meth:`analysis.Journeys.stage_durations` (``segment, stage, duration_days, censored``), so that
tables from any source can be modelled. Neither loops over events: the transition likelihood is
on the counts (sufficient statistics) and the dwell likelihood on per-cell sufficient statistics
plus binned censored durations, so the cost does not grow with the data.

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
from scipy.special import ndtr

from analysis.models.base import BayesianModel, ModelConfigError, Prior, _first_seed, interval_table
from analysis.schema import CONVERSION, DROPOFF, OPEN, START, DataError, StageMap, combine_errors

log = logging.getLogger(__name__)

__all__ = ["DwellTimeModel", "StageTransitionModel", "expected_time_to_conversion"]

_SAMPLE = ("chain", "draw")


# ------------------------------------------------------------------------------ input checks
def _group_labels(
    df: pd.DataFrame, group: str | list[str] | None, known: set[str], what: str
) -> pd.Series:
    """The segment label of every row: the ``group`` column(s), or ``"all"``."""
    cols = [] if group is None else [group] if isinstance(group, str) else list(group)
    if isinstance(group, str) and group == "segment" and "segment" not in df.columns:
        extra = [c for c in df.columns if c not in known]
        if extra:
            raise DataError(
                f"{what}: no 'segment' column, and the extra columns {extra} are not used",
                column=extra,
                fix=f"pass group={extra[0]!r} (or a list of columns) to say which columns name the segment",
            )
        cols = []
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataError(
            f"{what}: group column(s) {missing} not found",
            column=missing,
            fix=f"use one of the columns {list(df.columns)} or group=None",
        )
    if not cols:
        return pd.Series("all", index=df.index)
    return df[cols].astype(str).agg(" / ".join, axis=1)


def _rows(mask: np.ndarray | pd.Series) -> list[int]:
    """1-based row numbers of a table (as a spreadsheet shows them after the header)."""
    return [int(i) + 1 for i in np.flatnonzero(np.asarray(mask))][:10]


def _check_counts_column(
    df: pd.DataFrame, col: str, what: str, errors: list[DataError]
) -> np.ndarray | None:
    vals = pd.to_numeric(df[col], errors="coerce")
    bad = vals.isna() | (vals < 0) | (vals != np.round(vals))
    if bad.any():
        errors.append(
            DataError(
                f"{what}: {int(bad.sum())} row(s) of {col!r} are not non-negative whole numbers "
                f"(e.g. {df.loc[bad, col].head(3).tolist()})",
                column=col,
                rows=_rows(bad),
                fix="counts must be integers ≥ 0; fix or drop those rows",
            )
        )
        return None
    return vals.to_numpy(dtype=np.int64)


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
        See :attr:`BayesianModel.BASE_SAMPLER_CONFIG` (draws 1000, tune 1000, chains 4, seed 0,
        NUTS back end, convergence thresholds, ``on_fail``).

    Raises
    ------
    DataError
        Missing columns, bad counts, unknown states, a move the stage map forbids that appears
        in the data, a segment with no journeys, a stage entered but never left — all listed
        together.
    """

    _model_type: ClassVar[str] = "StageTransitionModel"
    default_model_config: ClassVar[dict[str, Any]] = {
        "pooling": "partial",
        "mean_prior_a": 1.0,
        "concentration": Prior("LogNormal", mu=3.5, sigma=1.5),
        "prior_a": 1.0,
    }

    @property
    def _check_vars(self) -> list[str]:  # type: ignore[override]
        """With partial pooling every ``p`` draw is an exact draw given ``mean`` and
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
        what = "stage transition counts"
        if not isinstance(counts, pd.DataFrame):
            raise TypeError(
                f"{what}: expected a DataFrame (Journeys.stage_transitions()), got {type(counts).__name__}"
            )
        need = ["from_stage", "to_stage", "n"]
        missing = [c for c in need if c not in counts.columns]
        if missing:
            raise DataError(
                f"{what}: missing column(s) {missing}",
                column=missing,
                fix="pass jr.stage_transitions(by='segment') or a table with columns [segment,] from_stage, to_stage, n",
            )
        if counts.empty:
            raise DataError(
                f"{what}: the table is empty (no journeys with a staged touchpoint)",
                fix="check the segment filter and the stage map (summary['journeys_without_stage'])",
            )
        errors: list[DataError] = []
        labels = _group_labels(counts, self.group, set(need), what)
        n = _check_counts_column(counts, "n", what, errors)
        frm, to = self.stage_map.from_states, self.stage_map.to_states
        fs, ts = counts["from_stage"].astype(str), counts["to_stage"].astype(str)
        bad_f = ~fs.isin(frm)
        bad_t = ~ts.isin([*to, OPEN])
        for bad, col, states in ((bad_f, "from_stage", frm), (bad_t, "to_stage", [*to, OPEN])):
            if bad.any():
                vals = sorted(set(counts.loc[bad, col].astype(str)))
                errors.append(
                    DataError(
                        f"{what}: unknown {col} value(s) {vals[:8]}; expected one of {states}",
                        column=col,
                        rows=_rows(bad),
                        fix="pass the stage map the journeys were built with (stage_map=StageMap(stages=[...]))",
                    )
                )
        if errors:
            raise combine_errors(errors)

        segments = list(dict.fromkeys(labels))
        g = pd.Categorical(labels, categories=segments).codes
        fi = pd.Categorical(fs, categories=frm).codes
        ti = pd.Categorical(ts, categories=[*to, OPEN]).codes
        full = np.zeros((len(segments), len(frm), len(to) + 1), dtype=np.int64)
        np.add.at(full, (g, fi, ti), n)
        C, open_ = full[..., :-1], full[..., -1]
        allowed = self.stage_map.allowed().loc[frm, to].to_numpy()

        # structure: every stage must be able to leave and to reach an outcome
        reach = allowed[1:, len(frm) - 1 :].any(1)  # stage -> an outcome directly
        q = allowed[1:, : len(frm) - 1]
        for _ in range(len(q)):
            reach = reach | (q & reach[None, :]).any(1)
        if not reach.all():
            dead = [s for s, ok in zip(frm[1:], reach, strict=True) if not ok]
            errors.append(
                DataError(
                    f"the stage map lets no journey leave stage(s) {dead} for an outcome "
                    "(every stage needs a path to (conversion) or (dropoff))",
                    column="to_stage",
                    fix="allow (dropoff) (and any real moves) from those stages in stage_map.transitions",
                )
            )
        forbidden = (C > 0) & ~allowed[None]
        if forbidden.any():
            cells = [
                f"{segments[a]}: {frm[b]} → {to[c]} (n={C[a, b, c]})"
                for a, b, c in np.argwhere(forbidden)
            ]
            errors.append(
                DataError(
                    f"{len(cells)} transition(s) the stage map forbids appear in the data: "
                    + "; ".join(cells[:8]),
                    column=["from_stage", "to_stage"],
                    fix="if the move can really happen, allow it in stage_map.transitions; otherwise find "
                    "why the data has it (a touchpoint mapped to the wrong stage?)",
                )
            )
        no_journeys = [
            s for s, k in zip(segments, (C[:, 0].sum(1) + open_[:, 0]), strict=True) if k == 0
        ]
        if no_journeys:
            errors.append(
                DataError(
                    f"segment(s) {no_journeys} have no journeys (no (start) transitions)",
                    column="segment" if self.group == "segment" else self.group,
                    fix="drop them from the counts (or from reports/segments.yml), or check the segment filter",
                )
            )
        entered = C[:, :, : len(frm) - 1].sum((0, 1)) + 0  # entries per stage
        exits = C[:, 1:].sum((0, 2))
        never_left = [
            s for s, e, x in zip(frm[1:], entered, exits, strict=True) if e > 0 and x == 0
        ]
        if never_left:
            errors.append(
                DataError(
                    f"stage(s) {never_left} were entered but no visit has a known exit (all are (open)): "
                    "there is nothing to estimate where they lead",
                    column="to_stage",
                    fix="use a longer data window, or mature counts: jr.stage_transitions(by=..., mature_days=...)",
                )
            )
        if errors:
            raise combine_errors(errors)

        self.segments = segments
        self.from_states, self.to_states = frm, to
        self.stages = list(self.stage_map.stages)
        self.allowed = allowed
        self.counts = C
        self.open = open_
        exits_all = C[:, 1:].sum(2) + open_[:, 1:]
        open_share = np.divide(
            open_[:, 1:], exits_all, out=np.zeros(open_[:, 1:].shape), where=exits_all > 0
        )
        if (open_share > 0.10).any():
            worst = np.unravel_index(open_share.argmax(), open_share.shape)
            log.warning(
                "%.0f%% of %s's visits to %s are still open (censored, not in the likelihood); recent "
                "visits over-state advancing: consider jr.stage_transitions(mature_days=2 * inactivity_days)",
                100 * open_share[worst],
                segments[worst[0]],
                self.stages[worst[1]],
            )
        self._table = pd.DataFrame(
            {
                "segment": np.repeat(segments, len(frm) * len(to)),
                "from_stage": np.tile(np.repeat(frm, len(to)), len(segments)),
                "to_stage": np.tile(to, len(segments) * len(frm)),
                "n": C.ravel(),
            }
        )
        opened = pd.DataFrame(
            {
                "segment": np.repeat(segments, len(frm)),
                "from_stage": np.tile(frm, len(segments)),
                "to_stage": OPEN,
                "n": open_.ravel(),
            }
        )
        self._table = pd.concat([self._table, opened], ignore_index=True)
        self._table = self._table[self._table["n"] > 0].reset_index(drop=True)

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
        """From-states with at least two allowed targets, grouped by how many (K → rows), so that
        each group is one batched Dirichlet.
        """
        k = self.allowed.sum(1)
        return {int(n): np.flatnonzero(k == n) for n in np.unique(k) if n >= 2}

    def _initial_points(self, chains: int, rng: np.random.Generator) -> list[dict[str, np.ndarray]]:
        """Dispersed starts: rows near the pooled data's proportions (Dirichlet-perturbed) and
        concentrations spread over the prior's bulk; none are on a boundary.
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
        """The PyMC model (see the module docstring).

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
            rng = np.random.default_rng(_first_seed(self.sampler_config["random_seed"]) + 1)
            g = np.where(alpha > 0, rng.standard_gamma(np.where(alpha > 0, alpha, 1.0)), 0.0)
            p = g / g.sum(-1, keepdims=True)
            post = post.assign(p=(("chain", "draw", "segment", "from_state", "to_state"), p))
        idata.posterior = post.assign_coords(self._coords())
        return idata

    def fit(self, method: str = "nuts", **sampler_overrides: Any) -> az.InferenceData:
        """Fit the model: ``method="nuts"`` (default, MCMC) or ``"conjugate"`` (exact draws;
        only with ``pooling="none"``).

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
        rng = np.random.default_rng(_first_seed(cfg["random_seed"]))
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

    def _parts(self, p: np.ndarray):
        S = len(self.stages)
        conv, drop = self.to_states.index(CONVERSION), self.to_states.index(DROPOFF)
        return p[..., 0, :S], p[..., 1:, :S], p[..., 1:, conv], p[..., 1:, drop]

    def _absorb(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """P(conversion | in stage) (…, S) and from start (…)."""
        p0, Q, R, _ = self._parts(p)
        eye = np.eye(Q.shape[-1])
        b = np.linalg.solve(eye - Q, R[..., None])[..., 0]
        return b, (p0 * b).sum(-1)

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
        """P(a journey eventually converts) from ``(start)`` and from each stage (absorbing-chain
        algebra on every draw). Dims: chain, draw, segment, state.
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
        """Share of journeys that end by dropping off at each stage (expected visits from start ×
        drop-off probability). Dims: chain, draw, segment, stage; sums with conversion to 1.
        """
        p0, Q, _, D = self._parts(self.p.to_numpy())
        eye = np.eye(Q.shape[-1])
        visits = np.linalg.solve(np.swapaxes(eye - Q, -1, -2), p0[..., None])[..., 0]  # p0 @ N
        return self._da(visits * D, "stage", self.stages, "dropoff_share")

    def expected_steps(self) -> xr.DataArray:
        """Expected number of stage visits until conversion, given the journey converts, from
        ``(start)`` and from each stage (counting the current visit; the chain conditioned on
        converting). NaN where conversion is impossible. Dims: chain, draw, segment, state.
        """
        p0, Q, _, _ = self._parts(self.p.to_numpy())
        b, b0 = self._absorb(self.p.to_numpy())
        t = _conditional_times(Q, b, np.ones_like(b))
        with np.errstate(invalid="ignore", divide="ignore"):
            t0 = (p0 * b * t).sum(-1) / b0
        return self._da(
            np.concatenate([t0[..., None], t], -1), "state", self.from_states, "expected_steps"
        )

    def stage_gains(self, reduction: float = 0.2) -> xr.DataArray:
        """Gain in P(conversion from start) when a stage's drop-off probability is cut by
        ``reduction`` (the freed mass goes to the row's other cells in proportion). Dims: chain,
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
        pw = np.stack([(worst == i).mean(_SAMPLE).to_numpy() for i in range(len(self.stages))], -1)
        t["p_worst"] = pw.ravel()
        t["rank"] = t.groupby("segment")["mean"].rank(ascending=False, method="first").astype(int)
        return t.sort_values(["segment", "rank"]).reset_index(drop=True)

    def friction_point(self, reduction: float = 0.2) -> pd.DataFrame:
        """The friction point of each segment: its rank-1 row of :meth:`friction`."""
        f = self.friction(reduction)
        return f[f["rank"] == 1].reset_index(drop=True)

    def compare_segments(self, a: str, b: str) -> pd.DataFrame:
        """Segment ``a`` against ``b``: per state, the difference in conversion probability
        (mean, 90% interval) and P(a converts better than b).
        """
        for s in (a, b):
            if s not in self.segments:
                raise ValueError(f"unknown segment {s!r}; segments: {self.segments}")
        conv = self.conversion_probability()
        diff = conv.sel(segment=a) - conv.sel(segment=b)
        t = interval_table(diff, name="difference")
        t["p_a_better"] = (diff > 0).mean(_SAMPLE).to_numpy()
        t.insert(0, "b", b)
        t.insert(0, "a", a)
        return t

    def summary(self) -> pd.DataFrame:
        """Headline table per segment: journeys, P(convert from start) with interval, the friction
        point and the probability that it is the worst stage.
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
            state = np.zeros(
                (len(p), n_j), dtype=np.int64
            )  # 0 = start; 1..S stages; S+1.. absorbed
            visits = np.zeros((len(p), n_j), dtype=np.int64)
            alive = np.ones((len(p), n_j), dtype=bool)
            converted = np.zeros((len(p), n_j), dtype=bool)
            d_idx = np.repeat(np.arange(len(p)), n_j).reshape(len(p), n_j)
            for _ in range(200):
                if not alive.any():
                    break
                u = rng.random(alive.sum())
                cdf = cum[d_idx[alive], gi, state[alive]]
                nxt = (u[:, None] > cdf).sum(-1)
                moved_to_stage = nxt < S
                sub_state = np.where(moved_to_stage, nxt + 1, state[alive])
                sub_conv = nxt == conv_i
                visits[alive] += moved_to_stage
                converted[alive] |= sub_conv
                state[alive] = sub_state
                alive[alive] = moved_to_stage
            pred_conv = converted.mean(1)
            pred_len = visits.mean(1)
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


def _conditional_times(Q: np.ndarray, b: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Expected total ``cost`` until conversion, given conversion, from each stage.

    The chain conditioned on absorbing in conversion moves ``i → j`` with ``Q[i, j] b[j] / b[i]``
    (Doob's h-transform); the expected cost solves ``t = cost + Q' t``. NaN where ``b == 0``.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(b[..., :, None] > 0, b[..., None, :] / b[..., :, None], 0.0)
    Qc = Q * ratio
    eye = np.eye(Q.shape[-1])
    t = np.linalg.solve(eye - Qc, cost[..., None])[..., 0]
    return np.where(b > 0, t, np.nan)


def _log_ndtr(z):
    """Log Φ(z) in PyTensor ops that every back end (C, JAX, numba) implements.

    ``erfc`` underflows for large arguments, so beyond ``x = 5`` (``x = -z/√2``) the asymptotic
    series ``log erfc(x) ≈ -x² - log(x √π) + log(1 - 1/(2x²) + 3/(4x⁴) - 15/(8x⁶))`` takes over
    (absolute error < 2e-5 there). Both branches see only arguments that are safe for them, so gradients stay finite.
    """
    import pytensor.tensor as pt

    x = -z / np.sqrt(2.0)
    small = x < 5.0
    xs = pt.switch(small, x, 0.0)
    xl = pt.switch(small, 5.0, x)
    log_erfc = pt.switch(
        small,
        pt.log(pt.erfc(xs)),
        -(xl**2)
        - pt.log(xl)
        - 0.5 * np.log(np.pi)
        + pt.log1p(-0.5 / xl**2 + 0.75 / xl**4 - 1.875 / xl**6),
    )
    return log_erfc - np.log(2.0)


# -------------------------------------------------------------------------------- dwell time
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
        what = "stage durations"
        need = ["stage", "duration_days", "censored"]
        if not isinstance(df, pd.DataFrame):
            raise TypeError(
                f"{what}: expected a DataFrame (Journeys.stage_durations()), got {type(df).__name__}"
            )
        missing = [c for c in need if c not in df.columns]
        if missing:
            raise DataError(
                f"{what}: missing column(s) {missing}",
                column=missing,
                fix="pass jr.stage_durations(by='segment') or a table with [segment,] stage, duration_days, censored",
            )
        if df.empty:
            raise DataError(
                f"{what}: the table is empty", fix="check the segment filter and the stage map"
            )
        known = {*need, "person_id", "journey_index", "exit", "run_index"}
        labels = _group_labels(df, self.group, known, what)
        errors = []
        d = pd.to_numeric(df["duration_days"], errors="coerce")
        bad = d.isna() | (d < 0) | ~np.isfinite(d)
        if bad.any():
            errors.append(
                DataError(
                    f"{what}: {int(bad.sum())} duration(s) are missing, negative or not numbers",
                    column="duration_days",
                    rows=_rows(bad),
                    fix="durations are days ≥ 0",
                )
            )
        cens = df["censored"]
        if cens.isna().any() or not set(pd.unique(cens)) <= {True, False}:
            bad_c = cens.isna() | ~cens.isin([True, False, 0, 1])
            errors.append(
                DataError(
                    f"{what}: 'censored' must be true/false",
                    column="censored",
                    rows=_rows(bad_c),
                    fix="True when the visit's end was not observed",
                )
            )
        stages = (
            list(stages)
            if stages is not None
            else list(
                dict.fromkeys(
                    [s for s in StageMap().stages if s in set(df["stage"])]
                    + sorted(set(df["stage"].astype(str)) - set(StageMap().stages))
                )
            )
        )
        bad_s = ~df["stage"].astype(str).isin(stages)
        if bad_s.any():
            errors.append(
                DataError(
                    f"{what}: unknown stage(s) {sorted(set(df.loc[bad_s, 'stage'].astype(str)))[:8]}",
                    column="stage",
                    rows=_rows(bad_s),
                    fix=f"stages are {stages}",
                )
            )
        if errors:
            raise combine_errors(errors)
        cfg = self.model_config
        segments = list(dict.fromkeys(labels))
        gi = pd.Categorical(labels, categories=segments).codes
        si = pd.Categorical(df["stage"].astype(str), categories=stages).codes
        x = np.log(np.maximum(d.to_numpy(float), float(cfg["min_days"])))
        c = cens.astype(bool).to_numpy()
        self.n_floored = int((d.to_numpy(float) < float(cfg["min_days"])).sum())
        G, S = len(segments), len(stages)
        cell = gi * S + si
        # drop-offs: their last contact depends on their own dwell (informative censoring)
        self.n_dropoff_excluded = 0
        if cfg["dropoff"] == "exclude" and "exit" in df.columns:
            is_drop = (df["exit"].astype(str) == DROPOFF).to_numpy()
            self.n_dropoff_excluded = int(is_drop.sum())
            keep_rows = ~is_drop
            x, c, cell = x[keep_rows], c[keep_rows], cell[keep_rows]
            d_used = d.to_numpy(float)[keep_rows]
        else:
            d_used = d.to_numpy(float)
        self.n_beyond_truncation = 0
        if cfg["truncate_days"] is not None:
            over = d_used >= float(cfg["truncate_days"])
            if (over & ~c).any():
                raise DataError(
                    f"{what}: {int((over & ~c).sum())} completed visit(s) last truncate_days="
                    f"{cfg['truncate_days']} or longer",
                    column="duration_days",
                    rows=_rows(over & ~c),
                    fix="raise truncate_days or set it to None (no truncation)",
                )
            if over.any():  # censored beyond the truncation point: impossible under the model
                self.n_beyond_truncation = int(over.sum())
                log.warning(
                    "%d censored visit(s) (open journeys) already last longer than truncate_days=%s; "
                    "they contradict the truncation and are left out of the likelihood (truncate_days=None "
                    "keeps them)",
                    self.n_beyond_truncation,
                    cfg["truncate_days"],
                )
                c = c & ~over
                keep_rows = ~over
                x, c, cell = x[keep_rows], c[keep_rows], cell[keep_rows]
        # visits shorter than min_days (ties; a stage entered by the conversion itself lasts 0) are
        # known only to be that short: left-censored, not a point at min_days (all-zero stages would
        # otherwise pull sigma to 0, an unbounded likelihood no sampler survives)
        short = ~c & (x <= np.log(float(cfg["min_days"])))
        exact = ~c & ~short
        left = np.bincount(cell[short], minlength=G * S).reshape(G, S)
        n = np.bincount(cell[exact], minlength=G * S).reshape(G, S)
        s1 = np.bincount(cell[exact], weights=x[exact], minlength=G * S).reshape(G, S)
        s2 = np.bincount(cell[exact], weights=x[exact] ** 2, minlength=G * S).reshape(G, S)
        # censored: bins of log duration per cell
        w = float(cfg["bin_width"])
        xb = np.round(x[c] / w) * w
        cb = pd.DataFrame({"cell": cell[c], "x": xb}).value_counts().reset_index()
        if (
            n.sum() + left.sum() == 0 and cb.empty
        ):  # every visit was a drop-off or beyond truncate_days
            raise DataError(f"{what}: no visits", fix="check the input")
        uncensored_by_stage = n.sum(0) + left.sum(0)
        no_exit = [
            stages[s]
            for s in range(S)
            if uncensored_by_stage[s] == 0 and (cb["cell"] % S == s).any()
        ]
        if no_exit:
            raise DataError(
                f"{what}: every visit to stage(s) {no_exit} is censored: their time in stage "
                "cannot be estimated",
                column="censored",
                fix="use a longer data window or drop those stages",
            )
        self.segments, self.stages = segments, stages
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
                "segment": np.repeat(segments, S),
                "stage": np.tile(stages, G),
                "uncensored": (n + left).ravel(),
                "censored": np.bincount(cell[c], minlength=G * S),
            }
        )
        self._table = pd.DataFrame(
            {
                "segment": labels.to_numpy(),
                "stage": df["stage"].astype(str).to_numpy(),
                "duration_days": d.to_numpy(float),
                "censored": cens.astype(bool).to_numpy(),
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

    def build_model(self):
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
                total = total + (self._left * _log_ndtr((lo - mu) / sig)).sum()
            cm = mu.flatten()[self._cens_cell]
            cs = sig.flatten()[self._cens_cell]
            zc = (self._cens_x - cm) / cs
            if cfg["truncate_days"] is None:
                total = total + (self._cens_w * _log_ndtr(-zc)).sum()
            else:
                lt = np.log(float(cfg["truncate_days"]))
                lcdf_t = _log_ndtr((lt - mu) / sig)  # (G, S)
                lcdf_tc = _log_ndtr((lt - cm) / cs)
                total = total - ((n + self._left) * lcdf_t).sum()
                total = (
                    total
                    + (self._cens_w * (pm.math.logdiffexp(lcdf_tc, _log_ndtr(zc)) - lcdf_tc)).sum()
                )
            pm.Potential("loglik", total)
        return model

    fallback_name = (
        "a log-normal per segment and stage fitted exactly to the completed visits (no pooling, "
        "no MCMC; open visits are left out, so times may read short where many are open: compare "
        "the Kaplan–Meier curves, which use every visit)"
    )

    def _fallback_fit(self) -> az.InferenceData:
        """Exact draws of ``log D ~ Normal(mu[g, s], sigma[s])`` from the completed visits:
        flat prior on ``mu``, ``sigma²`` scaled-inverse-χ²(1, 1) (one pseudo-visit of log-sd 1,
        so a stage with one visit per segment still has a proper posterior); visits below the
        resolution count as lasting ``min_days``; a cell without completed visits draws ``mu``
        around its stage's mean with sd 1.5 (the default prior's).
        """
        cfg = self.sampler_config
        rng = np.random.default_rng(_first_seed(cfg["random_seed"]))
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
        """Expected days in stage (chain, draw, segment, stage)."""
        return self._require_fit().posterior["mean_days"]

    def median_days(self) -> xr.DataArray:
        """Median days in stage (chain, draw, segment, stage)."""
        return self._require_fit().posterior["median_days"]

    def survival(self, days: np.ndarray | None = None) -> pd.DataFrame:
        """P(still in stage after t days) per segment and stage: mean and 90% interval on a grid
        (default: up to the 99th percentile of the durations).
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
        """Empirical survival (Kaplan-Meier) of the visits the model uses, per segment and stage:
        ``segment, stage, days, survival`` — the model-free check for :meth:`survival`.
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
    """Expected days until conversion, given the journey converts, from ``(start)`` (the first
    stage entry) and from each stage: the conditioned chain's expected visits weighted by the
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
    p = transitions.p.stack(sample=_SAMPLE).transpose("sample", ...).to_numpy()
    m = (
        dwell.mean_days()
        .sel(segment=transitions.segments)
        .reindex(stage=transitions.stages, fill_value=0.0)
        .stack(sample=_SAMPLE)
        .transpose("sample", ...)
        .to_numpy()
    )
    k = min(len(p), len(m))
    p, m = p[:k], m[:k]
    p0, Q, _, _ = transitions._parts(p)
    b, b0 = transitions._absorb(p)
    t = _conditional_times(Q, b, m)
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
