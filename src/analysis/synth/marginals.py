"""Exact marginal transition rows and absorbing-chain algebra (the package docstring says how).

The set of distinct channels touched in a visit has an exact law (Möbius inversion over the
channel subsets), so the marginal rows, conversion probabilities and stage gains of the truth
carry no Monte Carlo error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from analysis.synth.config import CONV, DROP, N_CHANNELS, N_STAGES, STAGES
from analysis.synth.params import Params

MASKS = np.arange(1 << N_CHANNELS)
BITS = ((MASKS[:, None] >> np.arange(N_CHANNELS)) & 1).astype(float)  # (2^C, C)


def exposure_probs(mix: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Return P(set of distinct channels touched = S) for every subset S (last axis, bit masks).

    ``mix``: (..., C) channel probabilities per touch; ``lam``: (...) Poisson rate, touches
    per visit ``1 + Poisson(lam)``. Exact: Möbius inversion of ``P(S ⊆ T)``.
    """
    msum = mix @ BITS.T  # (..., 2^C)
    f = msum * np.exp(lam[..., None] * (msum - 1.0))
    for c in range(N_CHANNELS):
        has = (MASKS >> c) & 1 == 1
        f[..., has] -= f[..., MASKS[has] ^ (1 << c)]
    return np.clip(f, 0.0, None)


def marginal(base: np.ndarray, mix: np.ndarray, lam: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Return the marginal transition rows (G, from, to): the channel-modulated rows averaged."""
    ps = exposure_probs(mix, np.broadcast_to(lam, mix.shape[:-1]))  # (G, stage, M)
    e = np.exp(BITS @ beta)  # (M,)
    b = base[:, 1:, :]  # (G, stage, to)
    bd = b[..., DROP][..., None]  # (G, stage, 1)
    z = bd + (1.0 - bd) * e  # (G, stage, M)
    adv = (ps * e / z).sum(-1)  # E[e^eta / Z]
    stay = (ps / z).sum(-1)  # E[1 / Z]
    p = b * adv[..., None]
    p[..., DROP] = b[..., DROP] * stay
    out = base.copy()
    out[:, 1:, :] = p / p.sum(-1, keepdims=True)
    return out


def absorption(p: np.ndarray) -> np.ndarray:
    """Return P(eventually CONVERSION | a stage is entered), (..., stage), of (..., from, to)."""
    q = p[..., 1:, :N_STAGES]  # stage -> stage
    r = p[..., 1:, CONV]  # stage -> conversion
    eye = np.eye(N_STAGES)
    return np.linalg.solve(eye - q, r[..., None])[..., 0]


def conversion_probability(p: np.ndarray) -> np.ndarray:
    """Return P(eventually CONVERSION from START) for matrices (..., from, to)."""
    b = absorption(p)  # absorption in CONVERSION per stage
    return (p[..., 0, :N_STAGES] * b).sum(-1)


def stage_gain_matrix(p: np.ndarray, share: float) -> np.ndarray:
    """Return the (G, stage) conversion gains when a stage's drop-off is cut by ``share``."""
    base_conv = conversion_probability(p)
    gains = np.zeros((p.shape[0], N_STAGES))
    for s in range(N_STAGES):
        q = p.copy()
        row = q[:, 1 + s, :]
        d = row[:, DROP].copy()
        others = row.sum(-1) - d
        scale = 1.0 + share * d / others
        row *= scale[:, None]
        row[:, DROP] = d * (1.0 - share)
        gains[:, s] = conversion_probability(q) - base_conv
    return gains


@dataclass
class ExactTruth:
    """The exact marginal quantities of the truth (G segments, C channels)."""

    marginal: np.ndarray  # (G, from, to): the marginal transition rows
    conversion: np.ndarray  # (G,): P(a journey converts)
    gains: np.ndarray  # (G, stage): stage gains
    worst: np.ndarray  # (G,): index of the worst stage
    effects_by_segment: np.ndarray  # (G, C): incremental conversions per 1,000 journeys
    effects: np.ndarray  # (C,): the same, segments mixed by their weights


def exact_truth(params: Params, opts: dict[str, Any]) -> ExactTruth:
    """Return the marginal rows, conversion, stage gains and channel effects of the parameters.

    Raises ``RuntimeError`` when ``check_friction`` is set and the planted stage is not the
    worst stage of the planted segment.
    """
    segments = list(params.segments)
    marginal_rows = marginal(params.base, params.mix, params.lam, params.beta)
    conversion = conversion_probability(marginal_rows)
    gains = stage_gain_matrix(marginal_rows, float(opts["reduction_share"]))
    friction_segment = segments.index(opts["friction_segment"])
    worst = gains.argmax(axis=1)
    if opts["check_friction"] and STAGES[worst[friction_segment]] != opts["friction_stage"]:
        raise RuntimeError(
            f"the planted friction stage {opts['friction_stage']!r} is not the worst stage of "
            f"{opts['friction_segment']!r} (worst: {STAGES[worst[friction_segment]]!r}, gains "
            f"{dict(zip(STAGES, gains[friction_segment].round(4), strict=True))}); raise "
            "friction_dropoff_multiplier or pass check_friction=False"
        )
    effects_by_segment = np.zeros((len(segments), N_CHANNELS))
    for c in range(N_CHANNELS):
        betas_without = params.beta.copy()
        betas_without[c] = 0.0
        effects_by_segment[:, c] = 1000.0 * (
            conversion
            - conversion_probability(marginal(params.base, params.mix, params.lam, betas_without))
        )
    return ExactTruth(
        marginal=marginal_rows,
        conversion=conversion,
        gains=gains,
        worst=worst,
        effects_by_segment=effects_by_segment,
        effects=effects_by_segment.T @ params.seg_w,
    )
