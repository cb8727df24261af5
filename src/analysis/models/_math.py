"""Numerics the model families share: a log normal CDF in PyTensor and absorbing-chain algebra.

- :func:`log_ndtr`: ``log Φ(z)`` inside a PyMC model (dwell-time and cure likelihoods);
- :func:`chain_parts`, :func:`absorption`, :func:`conditional_times`: the algebra of the stage
  chain (:class:`~analysis.models.transitions.StageTransitionModel`) on every posterior draw,
  which the time to conversion (:mod:`analysis.models.dwell`) needs too;
- :func:`simulate_journeys`: journeys drawn from the chain, for posterior predictive checks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "SAMPLE",
    "absorption",
    "chain_parts",
    "conditional_times",
    "log_ndtr",
    "simulate_journeys",
]

#: The sample dimensions of a posterior.
SAMPLE = ("chain", "draw")


def log_ndtr(z: Any) -> Any:
    """Return log Φ(z) in PyTensor ops that every back end (C, JAX, numba) implements.

    ``erfc`` underflows for large arguments, so beyond ``x = 5`` (``x = -z/√2``) the asymptotic
    series ``log erfc(x) ≈ -x² - log(x √π) + log(1 - 1/(2x²) + 3/(4x⁴) - 15/(8x⁶))`` takes over
    (absolute error < 2e-5 there). Both branches see only arguments that are safe for them, so
    gradients stay finite.
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


def chain_parts(
    p: np.ndarray, n_stages: int, conversion: int, dropoff: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split transition probabilities ``p`` (…, from_state, to_state) into the chain's parts.

    Returns ``p0`` (start → stage), ``Q`` (stage → stage), ``R`` (stage → conversion) and ``D``
    (stage → drop-off); ``conversion`` and ``dropoff`` are the outcomes' ``to_state`` indices.
    """
    S = n_stages
    return p[..., 0, :S], p[..., 1:, :S], p[..., 1:, conversion], p[..., 1:, dropoff]


def absorption(p0: np.ndarray, Q: np.ndarray, R: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return P(conversion | in stage) (…, S) and P(conversion) from the start (…)."""
    eye = np.eye(Q.shape[-1])
    b = np.linalg.solve(eye - Q, R[..., None])[..., 0]
    return b, (p0 * b).sum(-1)


def conditional_times(Q: np.ndarray, b: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Return the expected total ``cost`` until conversion, given conversion, from each stage.

    The chain conditioned on absorbing in conversion moves ``i → j`` with ``Q[i, j] b[j] / b[i]``
    (Doob's h-transform); the expected cost solves ``t = cost + Q' t``. NaN where ``b == 0``.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(b[..., :, None] > 0, b[..., None, :] / b[..., :, None], 0.0)
    Qc = Q * ratio
    eye = np.eye(Q.shape[-1])
    t = np.linalg.solve(eye - Qc, cost[..., None])[..., 0]
    return np.where(b > 0, t, np.nan)


def simulate_journeys(
    cum: np.ndarray,
    n_journeys: int,
    n_stages: int,
    conversion: int,
    rng: np.random.Generator,
    max_steps: int = 200,
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate ``n_journeys`` journeys on each draw of one segment's chain.

    ``cum`` holds the cumulative transition probabilities of the segment (draw, from_state,
    to_state; the last column 1). Every journey starts in ``(start)`` (state 0), moves to a
    stage (states ``1..n_stages``) or an outcome, and stops when absorbed (or after
    ``max_steps``). Returns the share of converted journeys and the mean stage visits per
    journey, one value per draw.
    """
    D = len(cum)
    state = np.zeros((D, n_journeys), dtype=np.int64)  # 0 = start; 1..S stages; S+1.. absorbed
    visits = np.zeros((D, n_journeys), dtype=np.int64)
    alive = np.ones((D, n_journeys), dtype=bool)
    converted = np.zeros((D, n_journeys), dtype=bool)
    d_idx = np.repeat(np.arange(D), n_journeys).reshape(D, n_journeys)
    for _ in range(max_steps):
        if not alive.any():
            break
        u = rng.random(alive.sum())
        cdf = cum[d_idx[alive], state[alive]]
        nxt = (u[:, None] > cdf).sum(-1)
        moved_to_stage = nxt < n_stages
        sub_state = np.where(moved_to_stage, nxt + 1, state[alive])
        sub_conv = nxt == conversion
        visits[alive] += moved_to_stage
        converted[alive] |= sub_conv
        state[alive] = sub_state
        alive[alive] = moved_to_stage
    return converted.mean(1), visits.mean(1)
