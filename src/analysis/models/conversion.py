"""Conversion rates by group with partial pooling: a hierarchical beta-binomial-logit model.

The data are counts — one row per cell with ``n`` trials (leads, sessions, journeys) and
``conversions`` — as :func:`conversion_counts` makes them from a table with one row per trial.
A *cell* is a combination of the grouping columns: the *effects* (a few levels each, e.g. the
channel, the visitor type; crossed) and optionally the *cells* columns (many small groups, e.g.
the landing page, which are thereby nested in the effects' combinations)::

    logit mu[cell] = intercept + Σ_k sigma_k * z_k[level_k(cell)]     crossed effects
    z_k[level]     ~ Normal(0, 1)                                     non-centred
    sigma_k        ~ HalfNormal(1)                  how much the levels of effect k differ
    p[cell]        ~ Beta(kappa * mu[cell], kappa * (1 - mu[cell]))   cells pooled towards mu
    kappa          ~ LogNormal(3.5, 1.5)            how alike cells of one mean are
    conversions[cell] ~ Binomial(n[cell], p[cell])

NUTS samples the intercept, the ``z`` and ``sigma`` of the effects and ``kappa`` with ``p``
integrated out (a beta-binomial likelihood: no funnel however many cells, a few dozen parameters),
then draws every cell's ``p`` from its exact conditional ``Beta(kappa mu + conversions, kappa (1 -
mu) + n - conversions)`` on each posterior draw — as :class:`StageTransitionModel` does for its
rows. A landing page with two leads is pulled towards its channel's mean; a channel with two
thousand is not. The likelihood is on the counts (sufficient statistics): the cost grows with
the number of cells, not of trials.

With a single effect and no cells columns (or no grouping at all) every cell *is* a level: the
beta layer would describe the same spread as ``sigma`` (a ridge between ``kappa`` and ``sigma``
that NUTS mixes poorly: r-hat 1.02 on the sample's ten channels), so it is left out and
``p[cell] = mu[cell]`` (a binomial-logit model; no ``kappa``).

>>> counts = conversion_counts(jr.journeys, ["first_channel", "landing_page_id"])  # doctest: +SKIP
>>> model = ConversionModel(counts, effects=["first_channel"], cells=["landing_page_id"])  # doctest: +SKIP
>>> model.fit()                                                                    # doctest: +SKIP
>>> model.rates("first_channel")  # per level: n, conversions, raw rate, posterior rate  # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import expit

from analysis.models._fit import first_seed
from analysis.models._validate import Problems, require_table
from analysis.models.base import BayesianModel, ModelConfigError, Prior, interval_table
from analysis.models.conversion_headline import conversion_headline
from analysis.schema import PATH_SEP, DataError

__all__ = ["ConversionModel", "conversion_counts", "conversion_headline", "model_effects"]

MISSING_LEVEL = "(missing)"


def conversion_counts(
    table: pd.DataFrame, by: str | list[str], *, converted: str = "converted"
) -> pd.DataFrame:
    """Trials and conversions per group, from a table with one row per trial.

    Parameters
    ----------
    table : DataFrame
        One row per trial, e.g. :attr:`analysis.Journeys.journeys` (a journey per lead or
        session) with a boolean ``converted`` column.
    by : str or list of str
        Grouping columns. ``"first_channel"``, when the table has no such column, is the first
        channel of the journey's ``channels`` path (the channel that brought the person).
        Missing values become the level ``"(missing)"`` (counted, not dropped).
    converted : str, default "converted"
        The boolean outcome column.

    Returns
    -------
    DataFrame
        ``[*by], n, conversions`` (int64), one row per group present, sorted by ``by``.

    Examples
    --------
    >>> t = pd.DataFrame({"channel": ["a", "a", "b"], "converted": [True, False, False]})
    >>> conversion_counts(t, "channel")
      channel  n  conversions
    0       a  2            1
    1       b  1            0
    """
    by = [by] if isinstance(by, str) else list(by)
    t = table
    if "first_channel" in by and "first_channel" not in t.columns:
        if "channels" not in t.columns:
            raise DataError(
                "'first_channel' needs a 'channels' path column (Journeys.journeys)",
                column="channels",
                fix="pass jr.journeys, or group by a column of the table",
            )
        t = t.assign(
            first_channel=t["channels"].astype("str").str.split(PATH_SEP, regex=False).str[0]
        )
    require_table(
        t,
        "conversion counts",
        [*by, converted],
        missing="column(s) {missing} not found",
        fix=f"use columns of the table: {list(t.columns)[:20]}",
    )
    problems = Problems("conversion counts")
    problems.flags(
        t, converted, problem="{column!r} must be true/false", fix="one boolean outcome per trial"
    )
    problems.raise_if_any()
    conv = t[converted]
    keys = pd.DataFrame({c: t[c].astype("str").fillna(MISSING_LEVEL) for c in by})
    keys["_conv"] = conv.astype(bool).to_numpy()
    out = (
        keys.groupby(by, sort=True)
        .agg(n=("_conv", "size"), conversions=("_conv", "sum"))
        .reset_index()
    )
    out["n"] = out["n"].astype("int64")
    out["conversions"] = out["conversions"].astype("int64")
    return out


def _var(name: str) -> str:
    return re.sub(r"\W", "_", name)


class ConversionModel(BayesianModel):
    """Hierarchical beta-binomial-logit model of conversion.

    Crossed, partially pooled effects and partially pooled cells (see the module docstring).

    Parameters
    ----------
    counts : DataFrame
        ``<effect and cells columns>, n, conversions`` — as :func:`conversion_counts` returns
        (repeated cells are summed; other columns are ignored).
    effects : str or list of str
        Crossed grouping effects with few levels each, e.g. ``["channel", "visitor_type"]``.
        May be empty (``[]``): every cell is then pooled towards one mean (e.g. a segment of one
        channel, with landing pages as cells). An effect with a single level adds nothing but a
        ridge (its ``sigma * z`` and the intercept are not identified apart) and slows NUTS:
        drop it (:func:`model_effects`).
    cells : str or list of str, optional
        Columns of many small groups (e.g. ``"landing_page_id"``): a cell is a combination of
        effect levels and these, pooled towards its effects' mean. Default: none (a cell is a
        combination of effect levels; cell-level spread is then their interaction; with one
        effect there is none, and ``kappa`` is left out: see the module docstring).
    model_config : dict, optional
        - ``intercept`` : Prior, default ``Normal(mu=0, sigma=2.5)`` — log-odds of a typical cell.
        - ``sigma`` : Prior, default ``HalfNormal(sigma=1)`` — spread (log-odds) of each effect's
          levels, one per effect.
        - ``kappa`` : Prior, default ``LogNormal(mu=3.5, sigma=1.5)`` — concentration of cells
          around their mean (large: alike; small: cells differ a lot).
    sampler_config : dict, optional
        See :attr:`BayesianModel.BASE_SAMPLER_CONFIG`; ``target_accept`` defaults to 0.99 here:
        an effect with two or three levels leaves its ``sigma`` weakly identified, and the
        non-centred draws near ``sigma = 0`` diverged at 0.9 (32 divergences in the recovery
        test, 4 channels × 2 visitor types) and at 0.95 (15), none at 0.99.

    Raises
    ------
    DataError
        Missing columns, counts that are not whole numbers ≥ 0, conversions above n, an empty
        table — all listed together.

    Examples
    --------
    >>> m = ConversionModel(counts, effects=["channel", "visitor_type"],         # doctest: +SKIP
    ...                     sampler_config={"draws": 500, "tune": 500})
    >>> m.fit(); m.rates("channel")                                            # doctest: +SKIP
    """

    _model_type: ClassVar[str] = "ConversionModel"
    code_modules: ClassVar[tuple[str, ...]] = (
        *BayesianModel.code_modules,
        "analysis.models.conversion_headline",
        "analysis.text",
    )
    default_model_config: ClassVar[dict[str, Any]] = {
        "intercept": Prior("Normal", mu=0.0, sigma=2.5),
        "sigma": Prior("HalfNormal", sigma=1.0),
        "kappa": Prior("LogNormal", mu=3.5, sigma=1.5),
    }
    default_sampler_config: ClassVar[dict[str, Any]] = {"target_accept": 0.99}

    def __init__(
        self,
        counts: pd.DataFrame,
        *,
        effects: str | list[str],
        cells: str | list[str] | None = None,
        model_config: dict[str, Any] | None = None,
        sampler_config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(counts, model_config=model_config, sampler_config=sampler_config)
        self.effects = [effects] if isinstance(effects, str) else [str(e) for e in effects]
        self.cell_columns = (
            [] if cells is None else [cells] if isinstance(cells, str) else [str(c) for c in cells]
        )
        overlap = set(self.effects) & set(self.cell_columns)
        if overlap:
            raise ModelConfigError(
                f"{sorted(overlap)} named both as effect and as cells: name each column once"
            )
        self._prepare(counts)
        #: whether cells scatter around their mean (``kappa``): not when a cell is one effect level
        self.cell_spread = bool(self.cell_columns) or len(self.effects) >= 2

    # ------------------------------------------------------------------------------ data
    def _prepare(self, counts: pd.DataFrame) -> None:
        """Check the counts, sum repeated cells and index every effect's levels."""
        what = "conversion counts"
        cols = list(dict.fromkeys([*self.effects, *self.cell_columns]))
        require_table(
            counts,
            what,
            [*cols, "n", "conversions"],
            source="conversion_counts()",
            fix="pass conversion_counts(table, by=[...]) with every effect and cells column in `by`",
            empty_fix="check the filter that made it",
        )
        problems = Problems(what)
        vals = {
            c: problems.counts(
                counts,
                c,
                problem="{n} value(s) of {column!r} are not whole numbers ≥ 0",
                fix="counts are integers ≥ 0",
            )
            for c in ("n", "conversions")
        }
        n, conversions = vals["n"], vals["conversions"]
        if n is not None and conversions is not None and (conversions > n).any():
            over = conversions > n
            problems.add(
                f"{int(over.sum())} row(s) have more conversions than trials",
                column=["n", "conversions"],
                mask=over,
                fix="conversions count trials that converted: at most n",
            )
        problems.raise_if_any()
        assert n is not None and conversions is not None  # raised above otherwise
        keys = counts[cols].astype("str").fillna(MISSING_LEVEL)
        t = keys.assign(n=n, conversions=conversions)
        if cols:
            t = t.groupby(cols, sort=True, as_index=False)[["n", "conversions"]].sum()
        else:  # no grouping at all: one cell of every trial
            t = t[["n", "conversions"]].sum().to_frame().T
        t = t[t["n"] > 0].reset_index(drop=True)
        self._table = t
        self.columns = cols
        self.n = t["n"].to_numpy(np.int64)
        self.y = t["conversions"].to_numpy(np.int64)
        self.levels: dict[str, list[str]] = {}
        self.index: dict[str, np.ndarray] = {}
        for e in self.effects:
            cat = pd.Categorical(t[e])
            self.levels[e] = [str(x) for x in cat.categories]
            self.index[e] = cat.codes.astype(np.int64)

    def _fit_data(self) -> pd.DataFrame:
        return self._table

    def _extra_attrs(self) -> dict[str, str]:
        return {"effects": json.dumps(self.effects), "cells": json.dumps(self.cell_columns)}

    @classmethod
    def _from_fit_data(cls, data: pd.DataFrame, attrs: dict[str, Any], **configs: Any):
        return cls(
            data,
            effects=json.loads(attrs["effects"]),
            cells=json.loads(attrs["cells"]) or None,
            **configs,
        )

    @property
    def _check_vars(self) -> list[str]:  # type: ignore[override]
        return [
            "intercept",
            *(["kappa"] if self.cell_spread else []),
            *[f"sigma_{_var(e)}" for e in self.effects],
            *[f"z_{_var(e)}" for e in self.effects],
        ]

    # ----------------------------------------------------------------------------- model
    def _initial_points(self, chains: int, rng: np.random.Generator) -> list[dict[str, np.ndarray]]:
        """Near the pooled rate, every level at the mean, spreads and kappa in the prior's bulk."""
        pooled = (self.y.sum() + 0.5) / (self.n.sum() + 1.0)
        base = float(np.log(pooled / (1 - pooled)))
        points = []
        for _ in range(chains):
            start: dict[str, np.ndarray] = {"intercept": np.asarray(base + rng.normal(0, 0.1))}
            if self.cell_spread:
                start["kappa"] = np.asarray(np.exp(rng.uniform(np.log(10.0), np.log(100.0))))
            for e in self.effects:
                start[f"sigma_{_var(e)}"] = np.asarray(rng.uniform(0.2, 0.8))
                start[f"z_{_var(e)}"] = rng.normal(0, 0.1, len(self.levels[e]))
            points.append(start)
        return points

    def _eta(self, intercept, sigmas, zs):
        eta = intercept
        for e, s, z in zip(self.effects, sigmas, zs, strict=True):
            eta = eta + s * z[..., self.index[e]]
        return eta

    def build_model(self):
        """Return the PyMC model (see the module docstring).

        One beta-binomial ``Potential`` over the cells — binomial without :attr:`cell_spread` —
        (the binomial coefficient is a constant and left out).
        """
        import pymc as pm
        from pytensor.tensor.special import betaln

        cfg = self.model_config
        coords = {f"level_{_var(e)}": self.levels[e] for e in self.effects}
        n, y = self.n.astype(float), self.y.astype(float)
        with pm.Model(coords=coords) as model:
            intercept = cfg["intercept"].create("intercept")
            sigmas, zs = [], []
            for e in self.effects:
                v = _var(e)
                sigmas.append(cfg["sigma"].create(f"sigma_{v}"))
                zs.append(pm.Normal(f"z_{v}", 0.0, 1.0, dims=f"level_{v}"))
            eta = self._eta(intercept, sigmas, zs)
            if self.cell_spread:
                kappa = cfg["kappa"].create("kappa")
                mu = pm.math.sigmoid(eta)
                a, b = kappa * mu, kappa * (1.0 - mu)
                pm.Potential("loglik", (betaln(a + y, b + n - y) - betaln(a, b)).sum())
            else:  # a cell is a level: binomial on the logit
                # log sigmoid(eta) = -log1pexp(-eta), log (1 - sigmoid(eta)) = -log1pexp(eta)
                pm.Potential(
                    "loglik", -(y * pm.math.log1pexp(-eta) + (n - y) * pm.math.log1pexp(eta)).sum()
                )
        return model

    fallback_name = (
        "each cell's own rate, Beta(1 + conversions, 1 + non-conversions), exact (no pooling, no "
        "MCMC): small groups keep their raw rates, with wide intervals"
    )

    def _fallback_fit(self) -> az.InferenceData:
        """Exact draws of every cell's rate without pooling: ``p ~ Beta(1 + y, 1 + n - y)``."""
        cfg = self.sampler_config
        rng = np.random.default_rng(first_seed(cfg["random_seed"]))
        shape = (int(cfg["chains"]), int(cfg["draws"]), len(self.n))
        p = rng.beta(1.0 + self.y, 1.0 + self.n - self.y, size=shape)
        dims = ("chain", "draw", "cell")
        post = xr.Dataset(
            {"mu": (dims, p), "p": (dims, p)}, coords={"cell": np.arange(len(self.n))}
        )
        idata = az.InferenceData(
            posterior=post.assign_coords(chain=np.arange(shape[0]), draw=np.arange(shape[1]))
        )
        return self._finish(idata, sampler="none", method="conjugate")

    def _postprocess(self, idata: az.InferenceData) -> az.InferenceData:
        """Add every cell's mean (``mu``) and its exact conditional draw of ``p``.

        Both have dims (chain, draw, cell); ``p = mu`` without :attr:`cell_spread`.
        """
        if "intercept" not in idata.posterior:  # the fallback's draws: p is there already
            return idata
        post = idata.posterior
        eta = self._eta(
            post["intercept"].to_numpy()[..., None],
            [post[f"sigma_{_var(e)}"].to_numpy()[..., None] for e in self.effects],
            [post[f"z_{_var(e)}"].to_numpy() for e in self.effects],
        )
        mu = np.broadcast_to(
            expit(eta), (*eta.shape[:2], len(self.n))
        ).copy()  # no effects: one mean
        if self.cell_spread:
            kappa = post["kappa"].to_numpy()[..., None]
            rng = np.random.default_rng(first_seed(self.sampler_config["random_seed"]) + 1)
            p = rng.beta(kappa * mu + self.y, kappa * (1 - mu) + self.n - self.y)
        else:
            p = mu.copy()
        dims = ("chain", "draw", "cell")
        idata.posterior = post.assign(mu=(dims, mu), p=(dims, p)).assign_coords(
            cell=np.arange(len(self.n))
        )
        return idata

    # ------------------------------------------------------------------- posterior quantities
    def rates(self, by: str | list[str] | None = None, prob: float = 0.9) -> pd.DataFrame:
        """Return the posterior conversion rate of each group's trials, beside the raw rate.

        A group's rate is its cells' ``p`` weighted by trials (the rate the model gives that
        group's leads or sessions, whatever their mix of the other columns).

        Parameters
        ----------
        by : str or list of str, optional
            Effect or cells columns. ``None``: all trials together.

        Returns
        -------
        DataFrame
            ``[*by], n, conversions, raw_rate, mean, lower, upper`` (``prob`` interval).
        """
        groups, draws = self.rate_draws(by)
        da = xr.DataArray(
            draws, dims=("chain", "draw", "group"), coords={"group": np.arange(len(groups))}
        )
        out = interval_table(da, name="rate", prob=prob)
        return pd.concat([groups, out[["mean", "lower", "upper"]]], axis=1)

    def rate_draws(self, by: str | list[str] | None = None) -> tuple[pd.DataFrame, np.ndarray]:
        """Return posterior draws of each group's rate (its cells' ``p`` weighted by trials).

        For figures :meth:`rates` does not summarise (e.g. the probability that a group is best).

        Returns
        -------
        groups : DataFrame
            ``[*by], n, conversions, raw_rate``, one row per group (one row for ``by=None``).
        draws : ndarray
            ``(chain, draw, group)``, groups in the order of ``groups``.
        """
        by = [] if by is None else [by] if isinstance(by, str) else list(by)
        bad = [c for c in by if c not in self.columns]
        if bad:
            raise ValueError(f"rates(by={bad}): not columns of the model; columns: {self.columns}")
        t = self._table
        if by:
            groups = t[by].drop_duplicates().sort_values(by).reset_index(drop=True)
            codes = t[by].merge(groups.reset_index(), on=by, how="left")["index"].to_numpy()
        else:
            groups, codes = pd.DataFrame(index=range(1)), np.zeros(len(t), dtype=np.int64)
        G = len(groups)
        W = np.zeros((len(t), G))
        W[np.arange(len(t)), codes] = self.n
        n_g = W.sum(0)
        p = self._require_fit().posterior["p"].to_numpy()
        conv_g = np.bincount(codes, weights=self.y, minlength=G)
        groups = groups.assign(
            n=n_g.astype("int64"), conversions=conv_g.astype("int64"), raw_rate=conv_g / n_g
        )
        return groups, (p @ W) / n_g

    def level_rates(self, effect: str, prob: float = 0.9) -> pd.DataFrame:
        """Return the mean rate of a *typical* cell at each level of one effect.

        The other effects are at their average (0): ``inv_logit(intercept + sigma * z[level])``.
        ``level, mean, lower, upper``.
        """
        if effect not in self.effects:
            raise ValueError(f"unknown effect {effect!r}; effects: {self.effects}")
        post = self._require_fit().posterior
        v = _var(effect)
        da = xr.apply_ufunc(expit, post["intercept"] + post[f"sigma_{v}"] * post[f"z_{v}"])
        return interval_table(da.rename({f"level_{v}": "level"}), name="rate", prob=prob)

    def spreads(self, prob: float = 0.9) -> pd.DataFrame:
        """Return each effect's ``sigma`` (log-odds spread of its levels) and ``kappa``.

        Columns: parameter, levels, mean, lower, upper.
        """
        post = self._require_fit().posterior
        if "intercept" not in post:  # the fallback (no pooling) has no spreads
            return pd.DataFrame(columns=["parameter", "levels", "mean", "lower", "upper"])
        names = [(f"sigma: {e}", f"sigma_{_var(e)}", len(self.levels[e])) for e in self.effects]
        if self.cell_spread:
            names.append(("kappa: cells", "kappa", len(self.n)))
        rows = []
        for label, var, k in names:
            t = interval_table(post[var].expand_dims(parameter=[label]), name=var, prob=prob)
            rows.append(
                {"parameter": label, "levels": k, **t[["mean", "lower", "upper"]].iloc[0].to_dict()}
            )
        return pd.DataFrame(rows, columns=["parameter", "levels", "mean", "lower", "upper"])

    def summary(self) -> pd.DataFrame:
        """Return the overall posterior rate beside the raw rate, then the spreads.

        The rate is that of all trials; the spreads are each effect's and ``kappa``:
        ``quantity, n, conversions, raw_rate, mean, lower, upper``.
        """
        overall = self.rates().assign(quantity="conversion rate (all trials)")
        sp = self.spreads().rename(columns={"parameter": "quantity"}).drop(columns="levels")
        cols = ["quantity", "n", "conversions", "raw_rate", "mean", "lower", "upper"]
        return pd.concat([overall, sp], ignore_index=True).reindex(columns=cols)


def model_effects(counts: pd.DataFrame, effects: list[str], *, min_levels: int = 2) -> list[str]:
    """Return the effects worth modelling.

    Those of ``effects`` with at least ``min_levels`` levels among the groups of ``counts`` that
    have trials. A segment of one channel has one
    ``first_channel`` level, and a one-level effect only adds a ridge to the posterior
    (:class:`ConversionModel`).

    Examples
    --------
    >>> c = pd.DataFrame({"ch": ["a", "a"], "vt": ["new", "old"], "n": [3, 4], "conversions": [1, 0]})
    >>> model_effects(c, ["ch", "vt"])
    ['vt']
    """
    has = counts[pd.to_numeric(counts["n"], errors="coerce") > 0] if "n" in counts else counts
    return [
        e for e in effects if has[e].astype("str").fillna(MISSING_LEVEL).nunique() >= min_levels
    ]
