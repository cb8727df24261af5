"""The semi-Markov forecast: the stage chain from a visit's current stage, with its time so far.

An open journey sits in a stage it entered ``e`` days before the cut-off. The stage chain
(:class:`~analysis.models.transitions.StageTransitionModel`: where a visit goes next) and the
dwell model (:class:`~analysis.models.dwell.DwellTimeModel`: how long a visit lasts, log-normal
per segment and stage) together say what it does in the next ``H`` days: the rest of the
current visit, then fresh visits, until it converts or drops off. Per segment × current stage ×
days already in the stage (a grid), and per posterior draw of both models:

- ``p_convert``: P(the journey converts within ``H`` days);
- ``p_dropoff``: P(it reaches ``(dropoff)`` within ``H`` days: its last visit ends by then);
- ``p_next``: where the current visit goes next (the stages, ``(conversion)``, ``(dropoff)``),
  given that it has lasted ``e`` days;
- ``days``: the expected days to conversion, given that it converts within ``H`` days.

What the model assumes
----------------------
- The chain is first order (semi-Markov): where a visit goes depends only on its stage and
  segment, and a visit's length ``D ~ LogNormal(mu[segment, stage], sigma[stage])`` does not
  depend on where it goes (as :func:`~analysis.models.dwell.expected_time_to_conversion`).
  The next visit starts when the last ends; a conversion happens at the end of its visit.
- The dwell law is fitted to the visits that moved on (drop-offs are left out of it:
  ``DwellTimeModel``'s default); a visit that ends in drop-off is assumed to last as long, and
  the drop-off happens when that visit ends (what :mod:`analysis.synth` simulates).
- What "still open after ``e`` days" says about the current visit (``dropoff``):

  - ``"inactivity"`` (default): a visit that will move on is seen open only while it lasts
    (``D > e``), but a drop-off is seen only ``inactivity_days`` after the visit's end (the
    journey rule), so for ``e < inactivity_days`` an open visit is as consistent with a
    drop-off whatever ``e``: ``P(drop-off | open at e) ∝ p_drop · P(D > e − inactivity)`` and
    ``P(move to j | open at e) ∝ p_j · P(D > e)``. The longer a visit has lasted, the likelier
    it is a drop-off not yet visible (and such a drop-off may already have happened: it counts
    as within the horizon). The end of a drop-off's visit stands in for its last contact, which
    comes no later: this makes ``P(D > e − inactivity)`` an upper bound for ``e`` beyond it.
  - ``"dwell"``: every exit is seen at once (a plain semi-Markov chain): the exit does not
    depend on ``e``, the remaining time is ``D − e`` given ``D > e``.

- Posterior draws of the two models are paired by index (their posteriors are independent);
  each draw's probabilities are computed without simulation noise: the dwell law is integrated
  on a grid of ``steps`` intervals of ``H / steps`` days and the chain's renewal equations
  are solved on it (a visit that ends within a step hands over at the step's end, so a path
  of k further visits may run up to k steps late; the days to conversion count the step's
  middle).
- A journey's current state and days in it come from its last stage visit
  (:func:`open_visits`); a journey with no stage yet enters its first stage now.
- Without NUTS: the transition rows are the exact conjugate posterior without pooling
  (``Dirichlet(1 + n)``, as :func:`~analysis.predict.baselines.markov_forecast`), the dwell
  law ``DwellTimeModel``'s exact fit to completed visits (:func:`exact_dwell_fit`: no pooling;
  open visits left out, so dwells would read short where many are open). Both are fitted on
  the visits entered long enough before the training cut-off for their exit to be settled
  (``Journeys.maturity()``), which keeps both biases small. Fitted models of any kind (NUTS
  with partial pooling) go through :func:`table_from_models`.
- Not used: anything but the stage path and its timing (channels touched, recency, sentiment:
  the feature model's business).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.special import ndtr

from analysis.errors import DataError
from analysis.schema import OPEN, START

if TYPE_CHECKING:
    from analysis.models.dwell import DwellTimeModel
    from analysis.models.transitions import StageTransitionModel
    from analysis.predict.backtest import CutoffSplit
    from analysis.schema import StageMap

__all__ = [
    "ELAPSED_GRID",
    "SemiMarkovTable",
    "chain_forecast",
    "exact_dwell_fit",
    "open_visits",
    "semi_markov_forecast",
    "semi_markov_predictions",
    "semi_markov_table",
    "table_from_models",
]

#: Days already spent in the current stage at which the table is computed (then interpolated).
ELAPSED_GRID = np.concatenate(
    [
        [0, 0.25, 0.5, 0.75, 1, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8, 10, 12, 14, 17, 20, 24, 28, 32],
        [40, 50, 60, 75, 90, 120, 180, 365],
    ]
).astype(float)
_DROPOFF_RULES = ("inactivity", "dwell")
_PROB = 0.9  # the intervals' probability


# --------------------------------------------------------------------------------- the chain
def _survival(x: np.ndarray, mu: np.ndarray, sigma: np.ndarray, cap: float | None) -> np.ndarray:
    """Return P(D > x) of the log-normal (truncated to ``D < cap`` when given); 1 for x ≤ 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (np.log(np.maximum(x, 1e-300)) - mu) / sigma
    s = np.where(x > 0, ndtr(-np.nan_to_num(z, nan=np.inf)), 1.0)  # mu = -inf: an instant stage
    if cap is not None:
        sc = ndtr(-(np.log(cap) - mu) / sigma)
        s = np.where(x < cap, (s - sc) / (1.0 - sc), 0.0)
    return np.clip(s, 0.0, 1.0)


def _renewal(
    w: np.ndarray, Q: np.ndarray, c: np.ndarray, d: np.ndarray, dt: float
) -> tuple[np.ndarray, np.ndarray]:
    """Solve the renewal equations of fresh visits on the time grid.

    ``w`` (…, S, M): P(a visit to stage j ends in step u), u = 1..M. From a visit to stage j
    entered at 0, ``G``, ``Z``, ``T`` at ``n·dt`` are P(converted by then), P(dropped off by
    then) and E[time of conversion; converted by then]::

        G[n] = c F(n) + Σ_u w[u] V[n - u]       V[m] = Σ_k Q[j, k] G_k[m]   (Vd, Vt alike)
        Z[n] = d F(n) + Σ_u w[u] Vd[n - u]
        T[n] = c Σ_u w[u] t_u + Σ_u w[u] (t_u V[n - u] + Vt[n - u])

    (``t_u``: the middle of step u). Returns ``(G, Z, T)`` at ``n = M`` (3, …, S) and ``R``
    (3, …, S, M + 1): ``(V, Vd, Vt)`` in reverse time, ``R[..., m]`` at ``M - m``.
    """
    M = w.shape[-1]
    u = dt * (np.arange(1, M + 1) - 0.5)  # a visit ending in step u: at its middle, on average
    wu = w * u
    base = np.stack([c[..., None] * np.cumsum(w, -1), d[..., None] * np.cumsum(w, -1)])
    base = np.concatenate([base, (c[..., None] * np.cumsum(wu, -1))[None]])  # (3, …, S, M)
    R = np.zeros((3, *w.shape[:-1], M + 1))
    X = np.zeros((3, *w.shape[:-1]))
    for n in range(1, M + 1):  # R[..., M - n + 1:] holds V[n - 1], …, V[0]
        past = R[..., M - n + 1 :]
        X = base[..., n - 1] + np.einsum("...u,c...u->c...", w[..., :n], past)
        X[2] += np.einsum("...u,...u->...", wu[..., :n], past[0])
        R[..., M - n] = np.einsum("...jk,c...k->c...j", Q, X)
    return X, R


def chain_forecast(
    p: np.ndarray,
    mu: np.ndarray,
    sigma: np.ndarray,
    *,
    horizon_days: float,
    elapsed: np.ndarray = ELAPSED_GRID,
    dropoff: str = "inactivity",
    inactivity_days: float = 30.0,
    truncate_days: float | None = None,
    steps: int = 256,
) -> dict[str, np.ndarray]:
    """Return the semi-Markov forecast from every state and days already in it, per draw.

    Parameters
    ----------
    p : ndarray (…, 1 + S, S + 2)
        Transition probabilities: from ``(start)`` and the ``S`` stages to the stages,
        ``(conversion)`` and ``(dropoff)`` (the order of ``StageMap.from_states/to_states``);
        ``…`` are draws (and segments).
    mu : ndarray (…, S)
        Log-days of the dwell law per stage (``-inf``: an instantaneous stage).
    sigma : ndarray (…, S)
        Its log-sd per stage.
    horizon_days : float
        ``H``.
    elapsed : array of float, default :data:`ELAPSED_GRID`
        Days already spent in the current stage (``E`` values).
    dropoff : {"inactivity", "dwell"}
        What an open visit says about a drop-off (module docstring).
    inactivity_days : float, default 30
        The gap that ends a journey (``dropoff="inactivity"``).
    truncate_days : float, optional
        Truncate the dwell law there (no visit lasts as long).
    steps : int, default 256
        Intervals of the time grid over the horizon.

    Returns
    -------
    dict of ndarray
        ``p_convert``, ``p_dropoff``, ``days`` (…, 1 + S, E) and ``p_next`` (…, 1 + S, E, S + 2).
        The ``(start)`` row is a journey with no stage yet entering its first now (the same for
        every ``E``); ``days`` is NaN where ``p_convert`` is 0. A visit that has lasted longer
        than the dwell law allows (no probability left) is a drop-off.
    """
    if dropoff not in _DROPOFF_RULES:
        raise DataError(f"dropoff={dropoff!r}: choose one of {list(_DROPOFF_RULES)}")
    if not horizon_days > 0 or int(steps) < 1:
        raise DataError(f"horizon_days={horizon_days!r}, steps={steps!r}: give positive numbers")
    p, mu, sigma = (np.asarray(a, float) for a in (p, mu, sigma))
    S = mu.shape[-1]
    if p.shape[-2:] != (S + 1, S + 2):
        raise DataError(f"p has shape {p.shape}: expected (…, {S + 1}, {S + 2}) for {S} stages")
    elapsed = np.asarray(elapsed, float)
    M, H = int(steps), float(horizon_days)
    dt = H / M
    p0, Q, c, d = p[..., 0, :S], p[..., 1:, :S], p[..., 1:, S], p[..., 1:, S + 1]
    mu_, sg = mu[..., None], sigma[..., None]
    grid = dt * np.arange(M + 1)
    surv = _survival(grid, mu_, sg, truncate_days)  # (…, S, M + 1)
    X, R = _renewal(surv[..., :-1] - surv[..., 1:], Q, c, d, dt)
    u = grid[1:] - dt / 2
    # after the current visit ends in step u, (V, Vd, Vt) at M - u and t_u V, u = 1..M
    K = np.concatenate([R[..., 1:], u * R[:1, ..., 1:]])
    rows: dict[str, list[np.ndarray]] = {k: [] for k in ("p_convert", "p_dropoff", "t", "p_next")}
    for e in elapsed:  # a few dozen grid points, each a vector op over draws, segments, stages
        se = _survival(e + grid, mu_, sg, truncate_days)  # P(D > e + n·dt), (…, S, M + 1)
        we = se[..., :-1] - se[..., 1:]  # P(the visit ends in step u, after e)
        lower = e if dropoff == "dwell" else max(e - float(inactivity_days), 0.0)
        s_low = _survival(np.asarray(lower), mu, sigma, truncate_days)  # (…, S)
        moved = p[..., 1:, :-1] * se[..., :1]  # P(exit to j, seen open at e): stages, conversion
        dropped = d * s_low  # P(exit to drop-off, seen open at e)
        norm = moved.sum(-1) + dropped
        ok = norm > 0
        safe = np.where(ok, norm, 1.0)
        gone = se[..., 0] - se[..., -1]  # P(e < D ≤ e + H)
        sums = np.einsum("...u,c...u->c...", we, K)
        conv = c * gone + sums[0]
        drop = d * (s_low - se[..., -1]) + sums[1]
        t = c * (we @ u) + sums[3] + sums[2]
        nxt = np.concatenate([moved, dropped[..., None]], -1) / safe[..., None]
        rows["p_convert"].append(np.where(ok, conv / safe, 0.0))
        rows["p_dropoff"].append(np.where(ok, drop / safe, 1.0))
        rows["t"].append(np.where(ok, t / safe, 0.0))
        rows["p_next"].append(np.where(ok[..., None], nxt, np.eye(S + 2)[-1]))
    E = len(elapsed)
    fresh = (p0 * X).sum(-1)  # (start): the first stage entered now
    res = {
        key: np.concatenate([np.repeat(f0[..., None, None], E, -1), np.stack(rows[key], -1)], -2)
        for key, f0 in zip(("p_convert", "p_dropoff", "t"), fresh, strict=True)
    }
    start_next = np.concatenate([p0, np.zeros((*p0.shape[:-1], 2))], -1)
    start_next = np.repeat(start_next[..., None, None, :], E, -2)
    res["p_next"] = np.concatenate([start_next, np.stack(rows["p_next"], -2)], -3)
    with np.errstate(invalid="ignore", divide="ignore"):
        res["days"] = np.where(res["p_convert"] > 0, res.pop("t") / res["p_convert"], np.nan)
    res["p_convert"] = res["p_convert"].clip(0.0, 1.0)
    res["p_dropoff"] = res["p_dropoff"].clip(0.0, 1.0)
    return res


# --------------------------------------------------------------------------------- the table
@dataclass(frozen=True)
class SemiMarkovTable:
    """The semi-Markov forecast per draw × segment × state × days already in the state.

    Attributes
    ----------
    horizon_days : float
        ``H``.
    segments : list of str
        The training segments; a journey of another segment gets their average.
    states : list of str
        ``(start)`` and the stages (the current state of a journey).
    targets : list of str
        Where a visit can go: the stages, ``(conversion)``, ``(dropoff)``.
    elapsed : ndarray (E,)
        The grid of days already spent in the current stage; between its points the table is
        interpolated linearly, beyond its last point held.
    p_convert, p_dropoff, days : ndarray (draw, segment, state, E)
        See :func:`chain_forecast`.
    p_next : ndarray (draw, segment, state, E, target)
        Where the current visit goes next.
    """

    horizon_days: float
    segments: list[str]
    states: list[str]
    targets: list[str]
    elapsed: np.ndarray
    p_convert: np.ndarray
    p_dropoff: np.ndarray
    days: np.ndarray
    p_next: np.ndarray

    def _cells(self, segment: Any, state: Any, elapsed_days: Any) -> tuple[np.ndarray, ...]:
        """Return each journey's segment row, state and grid neighbours with their weight."""
        seg = pd.Index(self.segments).get_indexer(pd.Series(segment, dtype=object).astype(str))
        seg = np.where(seg < 0, len(self.segments), seg)  # the extra row: the segments' average
        st = pd.Index(self.states).get_indexer(pd.Series(state, dtype=object).astype(str))
        st = np.where(st < 0, 0, st)
        e = np.clip(np.asarray(elapsed_days, float), self.elapsed[0], self.elapsed[-1])
        hi = np.clip(np.searchsorted(self.elapsed, e, side="right"), 1, len(self.elapsed) - 1)
        lo = hi - 1
        span = self.elapsed[hi] - self.elapsed[lo]
        w = np.where(span > 0, (e - self.elapsed[lo]) / np.where(span > 0, span, 1.0), 0.0)
        return seg, st, lo, hi, w

    def _interp(self, a: np.ndarray, cells: tuple[np.ndarray, ...]) -> np.ndarray:
        """Return ``a`` (k, segment, state, E [, target]) at the journeys' ``cells``.

        Draws (or statistics) × journey [× target]; a journey of an unknown segment gets the
        segments' average.
        """
        seg, st, lo, hi, w = cells
        with warnings.catch_warnings():  # days: NaN in every segment where none converts
            warnings.simplefilter("ignore", RuntimeWarning)
            a = np.concatenate([a, np.nanmean(a, axis=1, keepdims=True)], 1)
        ww = w[:, None] if a.ndim == 5 else w
        return a[:, seg, st, lo] * (1 - ww) + a[:, seg, st, hi] * ww

    def lookup(self, segment: Any, state: Any, elapsed_days: Any) -> dict[str, np.ndarray]:
        """Return the draws for journeys given by segment, current state and days in it.

        Each argument is one value per journey. A segment the table does not know gets the
        segments' average, a state it does not know is ``(start)``; days already in the stage
        are interpolated linearly between grid points. Returns ``p_convert``, ``p_dropoff``,
        ``days`` (draw × journey) and ``p_next`` (draw × journey × target).
        """
        cells = self._cells(segment, state, elapsed_days)
        keys = ("p_convert", "p_dropoff", "days", "p_next")
        return {k: self._interp(getattr(self, k), cells) for k in keys}

    def summary(self) -> pd.DataFrame:
        """Return one row per segment × state × grid point: means and 90% intervals."""
        lo, hi = (1 - _PROB) / 2, 1 - (1 - _PROB) / 2
        idx = pd.MultiIndex.from_product(
            [self.segments, self.states, self.elapsed], names=["segment", "state", "elapsed_days"]
        )
        out = pd.DataFrame(index=idx)
        with warnings.catch_warnings():  # days: NaN where no draw converts
            warnings.simplefilter("ignore", RuntimeWarning)
            for key in ("p_convert", "p_dropoff", "days"):
                a = getattr(self, key).reshape(len(self.p_convert), -1)
                out[key] = np.nanmean(a, 0)
                out[f"{key}_lower"] = np.nanquantile(a, lo, 0)
                out[f"{key}_upper"] = np.nanquantile(a, hi, 0)
        nxt = self.p_next.mean(0).reshape(-1, len(self.targets))
        out["next_stage"] = np.asarray(self.targets, dtype=object)[nxt.argmax(-1)]
        out["next_stage_p"] = nxt.max(-1)
        return out.reset_index()

    def forecast_draws(self, split: CutoffSplit) -> np.ndarray:
        """Return P(convert within the horizon) per draw × open journey of ``split``."""
        v = open_visits(split)
        return self._interp(
            self.p_convert, self._cells(v["segment"], v["state"], v["elapsed_days"])
        )

    def predictions(self, split: CutoffSplit) -> pd.DataFrame:
        """Return the forecast per open journey of ``split`` (see :func:`semi_markov_predictions`).

        Means are exact (they commute with the interpolation between grid points); interval
        ends are interpolated between the grid points' (exact at them, and between them as
        long as neighbouring points order the draws alike, as a smooth table nearly does), so
        a million journeys take a second, not the minutes their draws' quantiles would.
        """
        v = open_visits(split)
        cells = self._cells(v["segment"], v["state"], v["elapsed_days"])
        lo, hi = (1 - _PROB) / 2, 1 - (1 - _PROB) / 2
        cols: dict[str, Any] = {}
        with warnings.catch_warnings():  # days: NaN where no draw converts
            warnings.simplefilter("ignore", RuntimeWarning)
            for key, name in (
                ("p_convert", "p_convert"),
                ("p_dropoff", "p_dropoff"),
                ("days", "expected_days"),
            ):
                a = getattr(self, key)
                stats = np.stack([np.nanmean(a, 0), *np.nanquantile(a, [lo, hi], 0)])
                cols[name], cols[f"{name}_lower"], cols[f"{name}_upper"] = self._interp(
                    stats, cells
                )
        nxt = self._interp(self.p_next.mean(0, keepdims=True), cells)[0]
        cols["next_stage"] = np.asarray(self.targets, dtype=object)[nxt.argmax(-1)]
        cols["next_stage_p"] = nxt.max(-1)
        return pd.concat([v, pd.DataFrame(cols, index=v.index)], axis=1)


def _transition_draws(model: StageTransitionModel) -> np.ndarray:
    """Return the transition draws (draw, segment, from_state, to_state), chains stacked."""
    p = model.p.to_numpy()
    return p.reshape(-1, *p.shape[2:])


def _dwell_draws(
    dwell: DwellTimeModel, segments: list[str], stages: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``mu`` (draw, segment, stage) and ``sigma`` (draw, 1, stage) for the chain's cells.

    A segment the dwell model lacks gets its segments' average ``mu``; a stage it lacks (no
    completed visit to it) the other stages' average ``mu`` and ``sigma``.
    """
    post = dwell.idata.posterior  # type: ignore[union-attr]
    mu = post["mu"].stack(sample=("chain", "draw")).transpose("sample", "segment", "stage")
    sigma = post["sigma"].stack(sample=("chain", "draw")).transpose("sample", "stage")
    mu_a, sg_a = mu.to_numpy(), sigma.to_numpy()
    finite = np.where(np.isfinite(mu_a), mu_a, np.nan)
    seg = pd.Index(list(mu["segment"].to_numpy())).get_indexer(segments)
    st = pd.Index(list(mu["stage"].to_numpy())).get_indexer(stages)
    seg_mean = np.nanmean(finite, 1)  # (draw, stage)
    m = np.where(seg[None, :, None] >= 0, mu_a[:, seg], seg_mean[:, None, :])  # (draw, G, stage)
    stage_mu = np.nanmean(np.where(np.isfinite(m), m, np.nan), -1, keepdims=True)
    m = np.where(st[None, None, :] >= 0, m[..., st], stage_mu)
    s = np.where(st[None, :] >= 0, sg_a[:, st], sg_a.mean(-1, keepdims=True))
    return m, s[:, None, :]


def table_from_models(
    transitions: StageTransitionModel,
    dwell: DwellTimeModel,
    *,
    horizon_days: float,
    inactivity_days: float = 30.0,
    **options: Any,
) -> SemiMarkovTable:
    """Return the :class:`SemiMarkovTable` of two fitted models (draws paired by index).

    ``transitions`` fitted any way (NUTS or conjugate), ``dwell`` likewise; ``options`` as
    :func:`chain_forecast` (``elapsed``, ``dropoff``, ``truncate_days``, ``steps``).
    """
    p = _transition_draws(transitions)
    mu, sigma = _dwell_draws(dwell, list(transitions.segments), list(transitions.stages))
    k = min(len(p), len(mu))
    res = chain_forecast(
        p[:k],
        mu[:k],
        sigma[:k],
        horizon_days=horizon_days,
        inactivity_days=inactivity_days,
        **options,
    )
    return SemiMarkovTable(
        horizon_days=float(horizon_days),
        segments=[str(s) for s in transitions.segments],
        states=list(transitions.from_states),
        targets=list(transitions.to_states),
        elapsed=np.asarray(options.get("elapsed", ELAPSED_GRID), float),
        **res,
    )


def exact_dwell_fit(
    durations: pd.DataFrame, *, draws: int = 200, seed: int = 0, **kwargs: Any
) -> DwellTimeModel:
    """Return a :class:`~analysis.models.dwell.DwellTimeModel` fitted without MCMC.

    Its exact conjugate fit to the completed visits (no pooling: what ``on_fail="fallback"``
    shows after a failed NUTS fit; the class has no public way to ask for it without NUTS
    first). ``durations`` as ``Journeys.stage_durations()``; ``kwargs`` go to the model
    (``group``, ``stages``, ``model_config``). A stage none of whose visits ended (all open or
    dropped off) cannot be fitted: its rows are left out (:func:`table_from_models` gives it
    the other stages' average).
    """
    from analysis.models.dwell import DwellTimeModel

    moved = durations[~durations["censored"].astype(bool)]
    durations = durations[durations["stage"].isin(set(moved["stage"]))]
    if durations.empty:
        raise DataError(
            "semi-Markov forecast: no stage visit of the training journeys has ended",
            fix="choose a later cut-off (more history before it)",
        )
    cfg = {"draws": int(draws), "chains": 1, "random_seed": int(seed), "progressbar": False}
    dwell = DwellTimeModel(durations, sampler_config=cfg, **kwargs)
    dwell.fit_conjugate()
    return dwell


def semi_markov_table(
    train: CutoffSplit,
    *,
    horizon_days: float | None = None,
    draws: int = 200,
    seed: int = 0,
    elapsed_grid: Any = ELAPSED_GRID,
    mature_days: float | str | None = "auto",
    stage_map: StageMap | None = None,
    **options: Any,
) -> SemiMarkovTable:
    """Fit the stage chain and the dwell law on a split's journeys, without MCMC, and tabulate.

    Parameters
    ----------
    train : CutoffSplit
        Its ``journeys`` (built at its cut-off) are the training data; nothing else is used.
    horizon_days : float, optional
        ``H``; default ``train.horizon_days``.
    draws, seed : int
        Posterior draws of each model (exact: the conjugate transition rows without pooling,
        ``DwellTimeModel``'s exact fit to completed visits), and their seed.
    elapsed_grid : array of float, default :data:`ELAPSED_GRID`
        Days already spent in a stage at which to compute the table.
    mature_days : float, "auto" or None, default "auto"
        Fit both models only on visits entered that many days before the cut-off
        (``Journeys.stage_transitions``; ``"auto"``: ``journeys.maturity()``; None: all
        visits). Recent visits show advances at once but drop-offs only after
        ``inactivity_days`` (the chain would overstate advancing), and only their short visits
        have ended (the dwell fit, which leaves open visits out, would read short). On
        ``analysis.synth`` backtests "auto" gave lower log-loss and calibration error than
        None on 7 of 8 cut-offs (seeds 1-4).
    stage_map : StageMap, optional
        The one the journeys were built with (default:
        :func:`~analysis.predict.baselines.stage_map_of` the training journeys).
    **options
        ``dropoff``, ``truncate_days``, ``steps``: see :func:`chain_forecast`.

    Returns
    -------
    SemiMarkovTable
    """
    from analysis.models.transitions import StageTransitionModel
    from analysis.predict.baselines import stage_map_of

    jr = train.journeys
    if mature_days == "auto":
        mature_days = jr.maturity().mature_days
    md = None if mature_days is None else float(mature_days)
    counts = jr.stage_transitions(mature_days=md)
    if counts.empty or not (counts["to_stage"] != OPEN).any():
        raise DataError(
            "semi-Markov forecast: the training journeys have no stage transition",
            fix="choose a later cut-off, or a smaller mature_days",
        )
    sm = stage_map or stage_map_of(jr.journeys)
    transitions = StageTransitionModel(counts, stage_map=sm, model_config={"pooling": "none"})
    transitions.fit_conjugate(draws=int(draws), chains=1, random_seed=int(seed))
    dwell = exact_dwell_fit(jr.stage_durations(mature_days=md), draws=draws, seed=seed)
    return table_from_models(
        transitions,
        dwell,
        horizon_days=float(train.horizon_days if horizon_days is None else horizon_days),
        inactivity_days=float(jr.inactivity_days),
        elapsed=np.asarray(elapsed_grid, float),
        **options,
    )


# ------------------------------------------------------------------------- open journeys
def open_visits(split: CutoffSplit) -> pd.DataFrame:
    """Return each open journey's segment, current state and days already in it.

    One row per ``split.open`` row (same index): ``segment``, ``state`` (the stage of its last
    stage visit, or ``(start)`` when it has none yet) and ``elapsed_days``: from that visit's
    first touch to the cut-off (the censored duration of the open visit in
    ``journeys.stage_durations()``; 0 at ``(start)``).
    """
    o = split.open
    if "cutoff" in o and len(o) and (pd.to_datetime(o["cutoff"], utc=True) != split.cutoff).any():
        raise DataError(
            "open_visits: the split stacks several cut-offs (stack_splits); its journeys are "
            "the latest cut-off's only",
            fix="pass one cutoff_split",
        )
    durations = split.journeys.stage_durations()
    cur = durations[durations["exit"] == OPEN].drop_duplicates(["person_id", "journey_index"])
    key = pd.MultiIndex.from_frame(o[["person_id", "journey_index"]].astype(str))
    cur_key = pd.MultiIndex.from_frame(cur[["person_id", "journey_index"]].astype(str))
    pos = cur_key.get_indexer(key)
    has = pos >= 0
    take = np.where(has, pos, 0)
    stage = cur["stage"].astype(str).to_numpy()[take] if len(cur) else np.full(len(o), START)
    days = cur["duration_days"].to_numpy(float)[take] if len(cur) else np.zeros(len(o))
    return pd.DataFrame(
        {
            "segment": o["segment"].astype(str) if "segment" in o else "all",
            "state": np.where(has, stage, START),
            "elapsed_days": np.where(has, days, 0.0),
        },
        index=o.index,
    )


# -------------------------------------------------------------------------- the backtest
def semi_markov_forecast(train: CutoffSplit, test: CutoffSplit, **kwargs: Any) -> np.ndarray:
    """Return posterior draws of P(convert within the horizon) for ``test``'s open journeys.

    Draws × journeys, as :func:`~analysis.predict.forecast.bayes_forecast` (a method of
    :func:`~analysis.predict.backtest.run_backtest`); the horizon is ``test.horizon_days``.
    ``kwargs`` go to :func:`semi_markov_table`.
    """
    kwargs.setdefault("horizon_days", test.horizon_days)
    return semi_markov_table(train, **kwargs).forecast_draws(test)


def semi_markov_predictions(train: CutoffSplit, test: CutoffSplit, **kwargs: Any) -> pd.DataFrame:
    """Return the semi-Markov forecast per open journey of ``test`` (rows as ``test.open``).

    Columns: ``segment``, ``state``, ``elapsed_days`` (:func:`open_visits`); ``p_convert``
    (within ``test.horizon_days``), ``p_dropoff`` and ``expected_days`` (to conversion, given a
    conversion within the horizon), each with ``_lower`` and ``_upper`` (90% posterior interval);
    ``next_stage`` (where the current visit most likely goes: a stage, ``(conversion)`` or
    ``(dropoff)``) and ``next_stage_p``. ``kwargs`` go to :func:`semi_markov_table`.
    """
    kwargs.setdefault("horizon_days", test.horizon_days)
    return semi_markov_table(train, **kwargs).predictions(test)
