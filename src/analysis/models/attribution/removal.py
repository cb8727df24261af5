"""Counterfactual removal on posterior draws: the Bayesian attribution model's stage chain.

On every posterior draw of :class:`~analysis.models.attribution.BayesianAttributionModel`, each
segment's chain of stage visits is rebuilt and solved for P(convert | journey), as it is and
with each channel's exposures removed (see the model's docstring). The removal effects are kept
on disk by the model (:func:`load_effects`, :func:`save_effects`) and summed up into its
attribution table (:func:`attribution_table`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import special

log = logging.getLogger(__name__)

_LN2 = float(np.log(2.0))


def removal_draws(
    alpha: np.ndarray,
    beta: np.ndarray,
    half_life: np.ndarray,
    *,
    level_ages: list[float],
    segment: np.ndarray,
    stage: np.ndarray,
    levels: np.ndarray,
    visits: np.ndarray,
    moves: np.ndarray,
    start: np.ndarray,
    rng: np.random.Generator,
    chunk: int,
) -> np.ndarray:
    """Return P(convert) minus P(convert) with each channel removed, per draw and segment.

    Parameters
    ----------
    alpha, beta, half_life : ndarray
        Posterior draws: intercepts at no exposure (draw, segment, stage), channel effects
        (draw, segment, channel) and the carry-over half-life (draw,).
    level_ages : list of float
        Representative age in days of each carry-over level (levels 2, 3, …).
    segment, stage, levels, visits : ndarray
        The exposure patterns: segment and stage index, exposure level per channel (pattern,
        channel) and settled visits of each pattern.
    moves, start : ndarray
        Counts of where visits go when they move on (segment, stage, stage + conversion) and of
        journeys' first stages (segment, stage): Dirichlet posteriors, drawn per draw.
    rng : numpy.random.Generator
        The Bayesian bootstrap of the exposure mix and the Dirichlet draws.
    chunk : int
        Draws processed at once (memory).

    Returns
    -------
    ndarray
        (draw, segment, channel).
    """
    D, G, S = alpha.shape
    C = beta.shape[-1]
    ages = np.asarray(level_ages, dtype=float)
    out = np.empty((D, G, C + 1))  # P(convert): removed channel c, and the base (last)
    # patterns ordered by their (segment, stage) cell, so that sums per cell are contiguous
    # slices (np.add.reduceat) rather than a product with a dense membership matrix
    cell = segment * S + stage
    order = np.argsort(cell, kind="stable")
    cell_o, pg, ps, lv = cell[order], segment[order], stage[order], levels[order]
    cells, starts = np.unique(cell_o, return_index=True)  # the cells that have patterns

    def per_cell(
        a: np.ndarray,
    ) -> np.ndarray:  # (d, P, ...) -> (d, G*S, ...); 0 where no pattern
        full = np.zeros((a.shape[0], G * S, *a.shape[2:]))
        full[:, cells] = np.add.reduceat(a, starts, axis=1)
        return full

    for lo in range(0, D, chunk):
        sl = slice(lo, min(D, lo + chunk))
        d = sl.stop - sl.start
        w_lv = np.concatenate(
            [
                np.zeros((d, 1)),
                np.ones((d, 1)),
                np.exp(-_LN2 * ages[None, :] / half_life[sl, None]),
            ],
            axis=1,
        )  # (d, levels)
        contrib = w_lv[:, lv] * beta[sl][:, pg, :]  # (d, P, C): each pattern's exposure term
        eta = alpha[sl][:, pg, ps] + contrib.sum(-1)  # (d, P)
        # Bayesian bootstrap of each (segment, stage)'s exposure mix (drawn in the patterns'
        # own order, then reordered: the same draws as before the reordering)
        g = rng.standard_gamma(np.broadcast_to(visits, (d, len(visits))))[:, order]
        tot = per_cell(g)  # (d, G*S)
        wgt = g / np.where(tot[:, cell_o] > 0, tot[:, cell_o], 1.0)
        etas = np.concatenate([eta[..., None] - contrib, eta[..., None]], -1)  # (d, P, C+1)
        adv = per_cell(wgt[..., None] * special.expit(etas)).reshape(d, G, S, C + 1)
        # a stage with no settled visits in a segment: its pooled intercept, no exposures
        empty = tot.reshape(d, G, S) == 0
        if empty.any():
            base_adv = 1.0 / (1.0 + np.exp(-alpha[sl]))
            adv = np.where(empty[..., None], base_adv[..., None], adv)
        out[sl] = _chain_conversion(adv, moves, start, rng)
    return out[..., -1:] - out[..., :-1]


def _chain_conversion(
    adv: np.ndarray, moves: np.ndarray, start: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Return P(convert | journey) per (draw, segment, scenario) from the chance to move on.

    ``adv`` (draw, segment, stage, scenario): P(move on) from each stage; where a visit goes
    when it moves on and where journeys start are drawn from their Dirichlet posteriors.
    """
    d, G, S, _ = adv.shape
    seen_moves = moves.sum(0) > 0  # (S, S+1): moves seen in any segment
    seen_start = start.sum(0) > 0
    a_mv = np.where(seen_moves, moves + 0.5, 0.0)
    q = np.where(
        seen_moves,
        rng.standard_gamma(np.broadcast_to(np.where(seen_moves, a_mv, 1.0), (d, G, S, S + 1))),
        0.0,
    )
    q /= np.where(q.sum(-1, keepdims=True) > 0, q.sum(-1, keepdims=True), 1.0)
    a_st = np.where(seen_start, start + 0.5, 1.0)
    pi = np.where(seen_start, rng.standard_gamma(np.broadcast_to(a_st, (d, G, S))), 0.0)
    pi /= pi.sum(-1, keepdims=True)
    # chain per (draw, segment, scenario): Q = adv * q[:, :, :, :S], R = adv * q[..., S]
    Q = adv.transpose(0, 1, 3, 2)[..., None] * q[:, :, None, :, :S]  # (d, G, C+1, S, S)
    R = adv.transpose(0, 1, 3, 2) * q[:, :, None, :, S]  # (d, G, C+1, S)
    conv = np.linalg.solve(np.eye(S) - Q, R[..., None])[..., 0]  # (d, G, C+1, S)
    return (pi[:, :, None, :] * conv).sum(-1)


def effects_path(folder: Path, code: list[Path], arrays: list[np.ndarray], args: list[Any]) -> Path:
    """Return where the removal effects of these inputs are kept in ``folder``.

    The file name hashes the source ``code`` files, the ``arrays`` (shape, dtype and bytes) and
    the ``args`` (as JSON).
    """
    h = hashlib.sha256()
    for file in code:
        h.update(file.read_bytes())
    for arr in arrays:
        arr = np.ascontiguousarray(arr)
        h.update(f"{arr.shape}{arr.dtype}".encode())
        h.update(arr.tobytes())
    h.update(json.dumps(args).encode())
    return folder / f"removal-effects-{h.hexdigest()[:20]}.npz"


def load_effects(path: Path, segments: list[str], channels: list[str]) -> xr.DataArray | None:
    """Return the removal effects saved at ``path``, or None (absent, torn or foreign)."""
    if not path.is_file():
        return None
    try:
        with np.load(path) as z:
            return xr.DataArray(
                z["effect"],
                dims=("sample", "segment", "channel"),
                coords={"sample": z["sample"], "segment": segments, "channel": channels},
                name="removal_effect",
            )
    except (OSError, ValueError, KeyError) as exc:  # torn or foreign: recompute
        log.warning("ignoring the unreadable %s (%s)", path.name, exc)
        return None


def save_effects(path: Path, effects: xr.DataArray) -> None:
    """Write removal effects to ``path`` atomically (another worker sees none or all of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.npz")
    np.savez(tmp, effect=effects.to_numpy(), sample=effects["sample"].to_numpy())
    os.replace(tmp, path)


def stacked_draws(var: xr.DataArray) -> np.ndarray:
    """Return a posterior variable's draws with chains and draws stacked first: (sample, ...)."""
    return var.stack(sample=("chain", "draw")).transpose("sample", ...).to_numpy()


def draw_interval(name: str, draws: np.ndarray, lo: float, hi: float) -> dict[str, np.ndarray]:
    """Return ``name`` (mean over axis 0), ``name_lower``, ``name_upper`` (quantiles)."""
    return {
        name: draws.mean(0),
        f"{name}_lower": np.quantile(draws, lo, axis=0),
        f"{name}_upper": np.quantile(draws, hi, axis=0),
    }


def attribution_table(
    effects: np.ndarray,
    beta: np.ndarray,
    journeys: pd.Series,
    channels: list[str],
    *,
    prob: float,
    weights: dict[str, float] | pd.Series | None,
    by_segment: bool,
    segments: list[str] | None,
) -> pd.DataFrame:
    """Return the attribution table of :meth:`BayesianAttributionModel.attribution`.

    ``effects`` (draw, segment, channel): removal effects per journey; ``beta`` (draw,
    channel): the channel effects; ``journeys``: modelled journeys per segment (the model's
    segments, in order). The other arguments are the method's.
    """
    all_segments = list(journeys.index)
    J = journeys.to_numpy(float)
    if segments is not None:
        unknown = sorted(set(map(str, segments)) - set(all_segments))
        if unknown:
            raise ValueError(f"segments: unknown {unknown}; the model has {all_segments}")
        keep = np.isin(all_segments, list(map(str, segments)))
        J = np.where(keep, J, 0.0)
        if weights is None and J.sum() == 0:
            raise ValueError("segments: the chosen segments have no modelled journeys")
    if weights is None:
        wts = J / J.sum()
    else:
        wts = pd.Series(weights, dtype=float).reindex(all_segments)
        if wts.isna().any():
            raise ValueError(f"weights: missing segment(s) {list(wts.index[wts.isna()])}")
        wts = wts.to_numpy() * (J > 0 if segments is not None else 1.0)
        wts = wts / wts.sum()
    lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
    if by_segment:
        conv = effects * journeys.to_numpy(float)[None, :, None]
        rows = []
        for gi, g in enumerate(all_segments):
            if segments is not None and g not in set(map(str, segments)):
                continue
            rows.append(
                pd.DataFrame(
                    {
                        "segment": g,
                        "channel": channels,
                        **draw_interval("conversions", conv[:, gi], lo, hi),
                        **draw_interval("per_1000", 1000 * effects[:, gi], lo, hi),
                    }
                )
            )
        out = pd.concat(rows, ignore_index=True)
        tot = out.groupby("segment")["conversions"].transform("sum")
        out["share"] = np.where(tot != 0, out["conversions"] / tot.where(tot != 0, 1.0), 0.0)
        return out
    conv = (effects * J[None, :, None]).sum(1)
    per = 1000 * (effects * wts[None, :, None]).sum(1)
    out = pd.DataFrame(
        {
            "channel": channels,
            **draw_interval("conversions", conv, lo, hi),
            **draw_interval("per_1000", per, lo, hi),
            **draw_interval("beta", beta, lo, hi),
        }
    )
    tot = out["conversions"].sum()
    out["share"] = out["conversions"] / tot if tot != 0 else 0.0
    return out
