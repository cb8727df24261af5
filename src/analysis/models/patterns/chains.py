"""Mixture of Markov chains on distinct sequence patterns: EM, a Gibbs sampler, relabelling.

The data are *patterns*: distinct (sequence, group) pairs with a weight (how many journeys share
them). A pattern enters through its count vector over the model's *cells* (the start cells, then
every from-state's row of to-states, one block per row), so every step costs O(patterns × cells
× archetypes), never O(journeys). :mod:`analysis.models.patterns.mixture` builds the design and
reads the results; this module knows nothing of journeys.

Model (``A`` archetypes, ``G`` groups)::

    theta[a, block]  ~ Dirichlet(prior on the block's supported cells)   start row, exit rows
    m                = softmax(zeta),  zeta ~ Normal(0, 1.5)             shared mean of the shares
    alpha            ~ Gamma(2, rate 0.2)                                pooling strength
    w[g]             ~ Dirichlet(alpha * m)                              shares of group g
    journey of pattern u, archetype a with prob w[g_u, a]:  log p = counts[u] @ log theta[a]

Inference. :func:`em` finds the posterior mode (several starts); :func:`gibbs` then samples the
exact posterior by data augmentation: given the parameters, the split of a pattern's ``n``
journeys over archetypes is Multinomial(n, responsibilities), so the assignment is sampled per
*pattern*, not per journey; given the split, ``theta`` and ``w`` are conjugate Dirichlet draws;
``(alpha, zeta)`` move by random-walk Metropolis. Label switching: every draw is permuted to the
EM mode by the Hungarian method on the Hellinger distance of the archetypes' rows (the state is
permuted too, which the label-symmetric prior allows), so summaries are per archetype.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment
from scipy.special import gammaln, logsumexp, softmax

__all__ = ["Design", "EMFit", "GibbsDraws", "em", "gibbs", "pattern_loglik", "responsibilities"]


@dataclass
class Design:
    """The patterns' count vectors and the block (row) structure of the cells.

    ``counts``: (patterns, cells) sparse counts; ``starts``/``sizes``: the first cell and the
    number of cells of every block (cells are ordered by block); ``group``: (patterns,) group
    codes in ``0..n_groups-1``.
    """

    counts: sp.csr_matrix
    starts: np.ndarray
    sizes: np.ndarray
    group: np.ndarray
    n_groups: int

    @property
    def n_cells(self) -> int:
        """Number of cells."""
        return int(self.counts.shape[1])

    def normalise(self, x: np.ndarray) -> np.ndarray:
        """Return ``x`` (…, cells) divided by its block sums."""
        sums = np.add.reduceat(x, self.starts, axis=-1)
        return x / np.repeat(sums, self.sizes, axis=-1)


@dataclass
class EMFit:
    """A posterior mode: ``log_theta`` (A, cells), ``log_w`` (G, A), ``log_m`` (A,), objective."""

    log_theta: np.ndarray
    log_w: np.ndarray
    log_m: np.ndarray
    loglik: float
    iterations: int


@dataclass
class GibbsDraws:
    """Posterior draws relabelled to the reference, and mean responsibilities.

    theta (C, D, A, cells), w (C, D, G, A), m (C, D, A), alpha (C, D); ``resp`` (patterns, A)
    averaged over the draws.
    """

    theta: np.ndarray
    w: np.ndarray
    m: np.ndarray
    alpha: np.ndarray
    resp: np.ndarray
    accept: float


def pattern_loglik(design: Design, log_theta: np.ndarray) -> np.ndarray:
    """Return log p(pattern | archetype), (patterns, A)."""
    return np.asarray(design.counts @ log_theta.T)


def responsibilities(design: Design, log_theta: np.ndarray, log_w: np.ndarray) -> np.ndarray:
    """Return P(archetype | pattern), (patterns, A), for parameters ``log_theta``, ``log_w``."""
    joint = pattern_loglik(design, log_theta) + log_w[design.group]
    return softmax(joint, axis=1)


def mixture_loglik(design: Design, log_theta: np.ndarray, log_w: np.ndarray) -> np.ndarray:
    """Return log p(pattern) of one journey of every pattern, (patterns,)."""
    joint = pattern_loglik(design, log_theta) + log_w[design.group]
    return np.asarray(logsumexp(joint, axis=1))


def _safe_log(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(np.maximum(x, 1e-300))


def _m_step(
    design: Design, weights: np.ndarray, resp: np.ndarray, support: np.ndarray, smooth: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    wr = resp * weights[:, None]
    cell_counts = np.asarray(design.counts.T @ wr).T  # (A, cells)
    theta = design.normalise((cell_counts + smooth) * support)
    n_g = np.zeros((design.n_groups, resp.shape[1]))
    np.add.at(n_g, design.group, wr)
    w = (n_g + 1.0) / (n_g + 1.0).sum(1, keepdims=True)
    m = (n_g.sum(0) + 1.0) / (n_g.sum() + resp.shape[1])
    return _safe_log(theta), np.log(w), np.log(m)


def em(
    design: Design,
    weights: np.ndarray,
    k: int,
    rng: np.random.Generator,
    *,
    support: np.ndarray,
    smooth: float = 0.5,
    n_init: int = 5,
    max_iter: int = 500,
    tol: float = 1e-8,
) -> EMFit:
    """Return the best of ``n_init`` EM runs for ``k`` archetypes.

    Each run starts from random sharp responsibilities (Dirichlet(0.3) per pattern); the M-step
    adds ``smooth`` to every supported cell's expected count (a Dirichlet(1 + smooth) mode) and
    one journey to every group's share, so no supported cell or archetype gets probability 0.
    Stops when the mean log-likelihood per journey changes by less than ``tol``.
    """
    total = float(weights.sum())
    best: EMFit | None = None
    for _ in range(max(1, n_init)):
        resp = rng.dirichlet(np.full(k, 0.3), size=len(weights))
        previous = -np.inf
        it = 0
        while it < max_iter:
            it += 1
            log_theta, log_w, log_m = _m_step(design, weights, resp, support, smooth)
            joint = pattern_loglik(design, log_theta) + log_w[design.group]
            norm = logsumexp(joint, axis=1)
            resp = np.exp(joint - norm[:, None])
            ll = float(weights @ norm) / total
            if ll - previous < tol:
                break
            previous = ll
        fit = EMFit(log_theta, log_w, log_m, ll, it)
        if best is None or fit.loglik > best.loglik:
            best = fit
    assert best is not None
    return best


def _log_dirichlet(w: np.ndarray, beta: np.ndarray) -> float:
    """Sum over rows of log Dirichlet(w | beta) (``beta`` broadcast to ``w``)."""
    beta = np.broadcast_to(beta, w.shape)
    return float(
        (gammaln(beta.sum(-1)) - gammaln(beta).sum(-1) + ((beta - 1) * np.log(w)).sum(-1)).sum()
    )


def _hyper_logpost(w: np.ndarray, log_alpha: float, zeta: np.ndarray) -> float:
    alpha = np.exp(log_alpha)
    m = softmax(zeta)
    prior = (2.0 * log_alpha - 0.2 * alpha) - (zeta**2).sum() / (2 * 1.5**2)  # Gamma(2, .2) in log
    return _log_dirichlet(w, alpha * m) + prior


def _dirichlet_blocks(
    design: Design, conc: np.ndarray, rng: np.random.Generator, support: np.ndarray
) -> np.ndarray:
    g = rng.standard_gamma(np.where(support, conc, 1.0)) * support
    g = np.maximum(g, 1e-300 * support)
    return design.normalise(g)


def _relabel(theta: np.ndarray, ref_sqrt: np.ndarray) -> np.ndarray:
    """Return the permutation ``perm`` with ``theta[perm]`` closest to the reference."""
    d = ((np.sqrt(theta)[:, None, :] - ref_sqrt[None, :, :]) ** 2).sum(-1)  # (A draw, A ref)
    rows, cols = linear_sum_assignment(d)
    perm = np.empty_like(rows)
    perm[cols] = rows
    return perm


def gibbs(
    design: Design,
    weights: np.ndarray,
    start: EMFit,
    rng: np.random.Generator,
    *,
    support: np.ndarray,
    prior: float = 1.0,
    draws: int = 1000,
    warmup: int = 300,
    chains: int = 2,
    thin: int = 1,
    mh_steps: int = 5,
) -> GibbsDraws:
    """Sample the posterior from the EM mode ``start``; every draw relabelled to it.

    Keeps every ``thin``-th of ``draws * thin`` iterations after ``warmup`` (the split of
    journeys and the shares move together, so successive draws are correlated); the
    responsibilities are averaged over every iteration after warm-up.

    Long because the sampler is one loop of five conditional updates (split, theta, shares,
    hyper-parameters, relabelling) kept together so the state cannot be half-permuted.
    """
    k = start.log_theta.shape[0]
    n_g_groups = design.n_groups
    ref_sqrt = np.sqrt(np.exp(start.log_theta))
    n = np.asarray(weights, np.int64)
    out_theta = np.zeros((chains, draws, k, design.n_cells))
    out_w = np.zeros((chains, draws, n_g_groups, k))
    out_m = np.zeros((chains, draws, k))
    out_alpha = np.zeros((chains, draws))
    resp_sum = np.zeros((len(n), k))
    accepted = 0
    proposed = 0
    for c in range(chains):
        theta = np.exp(start.log_theta)
        w = np.exp(start.log_w)
        zeta = start.log_m - start.log_m.mean()
        log_alpha = np.log(10.0)
        for it in range(warmup + draws * thin):
            joint = pattern_loglik(design, _safe_log(theta)) + np.log(w)[design.group]
            resp = softmax(joint, axis=1)
            split = rng.multinomial(n, resp / resp.sum(1, keepdims=True))
            cell_counts = np.asarray(design.counts.T @ split).T  # (A, cells)
            theta = _dirichlet_blocks(design, cell_counts + prior, rng, support)
            n_g = np.zeros((n_g_groups, k))
            np.add.at(n_g, design.group, split)
            beta = np.exp(log_alpha) * softmax(zeta)
            g = rng.standard_gamma(beta[None, :] + n_g)
            w = np.maximum(g, 1e-300) / np.maximum(g, 1e-300).sum(1, keepdims=True)
            current = _hyper_logpost(w, log_alpha, zeta)
            for _ in range(mh_steps):
                la_new = log_alpha + 0.3 * rng.standard_normal()
                z_new = zeta + 0.2 * rng.standard_normal(k)
                proposal = _hyper_logpost(w, la_new, z_new)
                proposed += 1
                if np.log(rng.random()) < proposal - current:
                    log_alpha, zeta, current = la_new, z_new, proposal
                    accepted += 1
            perm = _relabel(theta, ref_sqrt)
            theta, w, zeta = theta[perm], w[:, perm], zeta[perm]
            if it >= warmup:
                resp_sum += resp  # of the previous state, already in the reference's labels
                d, keep = divmod(it - warmup, thin)
                if keep == 0:
                    out_theta[c, d], out_w[c, d] = theta, w
                    out_m[c, d], out_alpha[c, d] = softmax(zeta), np.exp(log_alpha)
    return GibbsDraws(
        theta=out_theta,
        w=out_w,
        m=out_m,
        alpha=out_alpha,
        resp=resp_sum / (chains * draws * thin),
        accept=accepted / max(proposed, 1),
    )
