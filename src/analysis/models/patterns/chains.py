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

import math
from dataclasses import dataclass

import numba
import numpy as np
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment
from scipy.special import gammaln, softmax

__all__ = ["Design", "Draws", "EMFit", "em", "gibbs", "pattern_loglik", "responsibilities"]


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

    def __post_init__(self) -> None:
        self.counts = sp.csr_matrix(self.counts)
        self.counts_t = sp.csr_matrix(self.counts.T)
        n = len(self.group)
        self.group_matrix = sp.csr_matrix(
            (np.ones(n), (self.group, np.arange(n))), shape=(self.n_groups, n)
        )
        self.blocks = [
            sp.csr_matrix(self.counts[:, a : a + b])
            for a, b in zip(self.starts, self.sizes, strict=True)
        ]
        # the blocks' CSR arrays end to end, for the compiled block moves (block_sweep)
        self.block_indptr = np.stack([m.indptr.astype(np.int64) for m in self.blocks])
        self.block_nnz = np.cumsum([0] + [m.nnz for m in self.blocks]).astype(np.int64)
        self.block_indices = np.concatenate([m.indices for m in self.blocks]).astype(np.int64)
        self.block_data = np.concatenate([m.data for m in self.blocks]).astype(np.float64)

    @property
    def n_cells(self) -> int:
        """Number of cells."""
        return int(self.counts.shape[1])

    def normalise(self, x: np.ndarray) -> np.ndarray:
        """Return ``x`` (…, cells) divided by its block sums."""
        sums = np.add.reduceat(x, self.starts, axis=-1)
        return x / np.repeat(sums, self.sizes, axis=-1)


def _lse(x: np.ndarray) -> np.ndarray:
    """Row-wise log-sum-exp of a 2-D array (no checks; rows have a finite maximum)."""
    mx = x.max(1)
    return mx + np.log(np.exp(x - mx[:, None]).sum(1))


@dataclass
class EMFit:
    """A posterior mode: ``log_theta`` (A, cells), ``log_w`` (G, A), ``log_m`` (A,), objective."""

    log_theta: np.ndarray
    log_w: np.ndarray
    log_m: np.ndarray
    loglik: float
    iterations: int


@dataclass
class Draws:
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
    return _lse(pattern_loglik(design, log_theta) + log_w[design.group])


def _safe_log(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(np.maximum(x, 1e-300))


def _m_step(
    design: Design, weights: np.ndarray, resp: np.ndarray, support: np.ndarray, smooth: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    wr = resp * weights[:, None]
    cell_counts = np.asarray(design.counts_t @ wr).T  # (A, cells)
    theta = design.normalise((cell_counts + smooth) * support)
    n_g = np.asarray(design.group_matrix @ wr)
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
    tol: float = 1e-7,
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
            norm = _lse(joint)
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


def _relabel(theta: np.ndarray, ref_sqrt: np.ndarray) -> np.ndarray:
    """Return the permutation ``perm`` with ``theta[perm]`` closest to the reference."""
    d = ((np.sqrt(theta)[:, None, :] - ref_sqrt[None, :, :]) ** 2).sum(-1)  # (A draw, A ref)
    rows, cols = linear_sum_assignment(d)
    perm = np.empty_like(rows)
    perm[cols] = rows
    return perm


def _log_dir_q(x: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Row-wise log Dirichlet(x | beta) over the last axis (array per row)."""
    return gammaln(beta.sum(-1)) - gammaln(beta).sum(-1) + ((beta - 1) * np.log(x)).sum(-1)


class _Chain:
    """One chain's state and its moves (see :func:`gibbs`)."""

    def __init__(
        self,
        design: Design,
        weights: np.ndarray,
        start: EMFit,
        rng: np.random.Generator,
        support: np.ndarray,
        prior: float,
    ) -> None:
        self.d, self.n, self.rng, self.support, self.prior = design, weights, rng, support, prior
        self.theta = np.exp(start.log_theta)
        self.w = np.exp(start.log_w)
        self.zeta = start.log_m - start.log_m.mean()
        self.log_alpha = float(np.log(10.0))
        k = self.theta.shape[0]
        expected = np.asarray(design.counts_t @ (weights[:, None] * self._resp())).T
        block_n = np.add.reduceat(expected, design.starts, axis=1)  # (A, blocks)
        group_n = np.asarray(design.group_matrix @ weights)
        # Dirichlet proposal concentrations ~ the data behind each block, adapted in warm-up
        self.log_kappa_theta = np.log(np.maximum(block_n, 1.0) * 2.0 + 10.0)
        self.log_kappa_w = np.log(np.maximum(group_n, 1.0) * 2.0 + 10.0)
        self.accept = np.zeros(2)  # accepted, proposed (block and share moves)
        self.k = k

    def _loglik_matrix(self) -> np.ndarray:
        return pattern_loglik(self.d, _safe_log(self.theta))

    def _resp(self) -> np.ndarray:
        return softmax(self._loglik_matrix() + np.log(self.w)[self.d.group], axis=1)

    def augment(self) -> np.ndarray:
        """Split every pattern's journeys over the archetypes; draw theta, w given the split."""
        d, rng = self.d, self.rng
        resp = self._resp()
        split = rng.multinomial(self.n.astype(np.int64), resp / resp.sum(1, keepdims=True))
        cell_counts = np.asarray(d.counts_t @ split).T
        g = rng.standard_gamma(np.where(self.support, cell_counts + self.prior, 1.0))
        g = np.maximum(g * self.support, 1e-300 * self.support)
        self.theta = d.normalise(g)
        beta = np.exp(self.log_alpha) * softmax(self.zeta)
        gw = np.maximum(rng.standard_gamma(beta[None, :] + d.group_matrix @ split), 1e-300)
        self.w = gw / gw.sum(1, keepdims=True)
        return resp

    def marginal_moves(self, adapt: float) -> None:
        """Metropolis-Hastings on w and on every (archetype, row) block, assignments summed out.

        The groups' shares move in parallel; proposals are Dirichlet around the current values.
        """
        d, rng = self.d, self.rng
        ll = self._loglik_matrix()
        log_w = np.log(self.w)
        per = self.n * _lse(ll + log_w[d.group])
        beta = np.exp(self.log_alpha) * softmax(self.zeta)
        # shares: every group at once (independent given theta and the hyper-parameters)
        kappa = np.exp(self.log_kappa_w)[:, None]
        q_fwd = kappa * self.w + 1.0
        prop = np.maximum(rng.standard_gamma(q_fwd), 1e-300)
        prop /= prop.sum(1, keepdims=True)
        per_new = self.n * _lse(ll + np.log(prop)[d.group])
        gain = np.asarray(d.group_matrix @ (per_new - per))
        log_r = (
            gain
            + ((beta - 1) * (np.log(prop) - log_w)).sum(1)
            + _log_dir_q(self.w, kappa * prop + 1.0)
            - _log_dir_q(prop, q_fwd)
        )
        ok = np.log(rng.random(len(self.w))) < log_r
        self.w[ok] = prop[ok]
        self.accept += (ok.sum(), ok.size)
        if adapt:
            self.log_kappa_w -= adapt * (ok - 0.3)
        joint = ll + np.log(self.w)[d.group]
        # exp-space with a fixed shift per pattern: a proposal changes one column only
        expo = np.exp(joint - joint.max(1)[:, None])
        kappa = np.exp(self.log_kappa_theta)  # (A, blocks)
        # every move's proposal drawn up front (its shape is known: a move changes only its own
        # (archetype, row) block, and each block moves once a sweep), then the compiled sweep
        shape = np.repeat(kappa, d.sizes, axis=1) * self.theta + 1.0
        gam = np.maximum(rng.standard_gamma(shape), 1e-300)
        unif = rng.random(kappa.shape)
        accepted, proposed = block_sweep(
            expo,
            self.n,
            self.theta,
            self.support,
            gam,
            unif,
            kappa,
            d.starts.astype(np.int64),
            d.sizes.astype(np.int64),
            d.block_indptr,
            d.block_nnz,
            d.block_indices,
            d.block_data,
            float(self.prior),
        )
        self.accept += (accepted.sum(), proposed.sum())
        if adapt:
            self.log_kappa_theta -= adapt * np.where(accepted, 0.7, -0.3) * proposed

    def hyper(self, steps: int) -> None:
        """Random-walk Metropolis on (log alpha, zeta) given the shares."""
        rng = self.rng
        current = _hyper_logpost(self.w, self.log_alpha, self.zeta)
        for _ in range(steps):
            la_new = self.log_alpha + 0.3 * rng.standard_normal()
            z_new = self.zeta + 0.2 * rng.standard_normal(self.k)
            proposal = _hyper_logpost(self.w, la_new, z_new)
            if np.log(rng.random()) < proposal - current:
                self.log_alpha, self.zeta, current = la_new, z_new, proposal

    def permute(self, perm: np.ndarray) -> None:
        """Relabel the state (the prior is symmetric in the labels)."""
        self.theta, self.w, self.zeta = self.theta[perm], self.w[:, perm], self.zeta[perm]
        self.log_kappa_theta = self.log_kappa_theta[perm]


@numba.njit(cache=True, nogil=True)
def _log_dir(x: np.ndarray, beta: np.ndarray) -> float:
    total, lg = 0.0, 0.0
    for i in range(len(x)):
        total += beta[i]
        lg += math.lgamma(beta[i]) - (beta[i] - 1.0) * math.log(x[i])
    return math.lgamma(total) - lg


@numba.njit(cache=True, nogil=True)
def block_sweep(
    expo: np.ndarray,
    n: np.ndarray,
    theta: np.ndarray,
    support: np.ndarray,
    gam: np.ndarray,
    unif: np.ndarray,
    kappa: np.ndarray,
    starts: np.ndarray,
    sizes: np.ndarray,
    indptr: np.ndarray,
    nnz: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    prior: float,
) -> tuple[np.ndarray, np.ndarray]:
    """One Metropolis-Hastings move per (archetype, row) block, the assignments summed out.

    ``expo`` (patterns, A): exp of each pattern's joint log-probability per archetype, shifted
    per pattern; ``theta`` (A, cells) and ``expo`` are updated in place on acceptance. The
    proposal of block (a, b) is Dirichlet(kappa[a, b] · current + 1), from the gamma variates
    ``gam`` drawn beforehand; ``unif`` (A, blocks) decides. Returns (accepted, proposed) per
    (a, b). Each move costs O(patterns): the other archetypes enter through the row sums.
    """
    n_pat, k = expo.shape
    n_blocks = len(starts)
    accepted = np.zeros((k, n_blocks), dtype=np.bool_)
    proposed = np.zeros((k, n_blocks), dtype=np.bool_)
    total = 0.0
    rowsum = np.empty(n_pat)
    for p in range(n_pat):
        r = 0.0
        for a in range(k):
            r += expo[p, a]
        rowsum[p] = r
        total += n[p] * math.log(r)
    col = np.empty(n_pat)
    for b in range(n_blocks):
        s0, size = starts[b], sizes[b]
        idx = np.empty(size, dtype=np.int64)
        m = 0
        for j in range(size):
            if support[s0 + j]:
                idx[m] = s0 + j
                m += 1
        if m < 2:
            continue
        idx = idx[:m]
        for a in range(k):
            cur = np.empty(m)
            new = np.empty(m)
            gsum = 0.0
            for j in range(m):
                cur[j] = theta[a, idx[j]]
                new[j] = gam[a, idx[j]]
                gsum += new[j]
            delta = np.zeros(size)
            prior_term = 0.0
            for j in range(m):
                new[j] = max(new[j] / gsum, 1e-300)
                d = math.log(new[j]) - math.log(cur[j])
                delta[idx[j] - s0] = d
                prior_term += (prior - 1.0) * d
            total_new = 0.0
            base = nnz[b]
            for p in range(n_pat):
                e = 0.0
                for q in range(indptr[b, p], indptr[b, p + 1]):
                    e += data[base + q] * delta[indices[base + q]]
                c = expo[p, a] * math.exp(e)
                col[p] = c
                rest = max(rowsum[p] - expo[p, a], 0.0)
                v = rest + c
                total_new += n[p] * (math.log(v) if v > 0 else -np.inf)
            kap = kappa[a, b]
            log_r = (
                total_new
                - total
                + prior_term
                + _log_dir(cur, kap * new + 1.0)
                - _log_dir(new, kap * cur + 1.0)
            )
            proposed[a, b] = True
            if math.log(unif[a, b]) < log_r:
                accepted[a, b] = True
                for j in range(m):
                    theta[a, idx[j]] = new[j]
                for p in range(n_pat):
                    rowsum[p] = max(rowsum[p] - expo[p, a], 0.0) + col[p]
                    expo[p, a] = col[p]
                total = total_new
    return accepted, proposed


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
) -> Draws:
    """Sample the posterior from the EM mode ``start``; every draw relabelled to it.

    One iteration: the data-augmentation step (split of each pattern's journeys, then theta and
    w given the split, conjugate), Metropolis-Hastings moves on w and on every (archetype, row)
    block of theta with the assignments summed out (the split of a pattern with many journeys
    is nearly determined by the parameters, so augmentation alone crawls), the pooling
    hyper-parameters, and the Hungarian relabelling. Proposal widths adapt during ``warmup``
    only. Keeps every ``thin``-th of ``draws * thin`` iterations after ``warmup``; the
    responsibilities are averaged over every iteration after warm-up.
    """
    k = start.log_theta.shape[0]
    ref_sqrt = np.sqrt(np.exp(start.log_theta))
    out_theta = np.zeros((chains, draws, k, design.n_cells))
    out_w = np.zeros((chains, draws, design.n_groups, k))
    out_m = np.zeros((chains, draws, k))
    out_alpha = np.zeros((chains, draws))
    resp_sum = np.zeros((len(weights), k))
    accepted = np.zeros(2)
    for c in range(chains):
        chain = _Chain(design, weights, start, rng, support, prior)
        for it in range(warmup + draws * thin):
            resp = chain.augment()
            chain.marginal_moves(adapt=0.5 / np.sqrt(1 + it) if it < warmup else 0.0)
            chain.hyper(mh_steps)
            chain.permute(_relabel(chain.theta, ref_sqrt))
            if it >= warmup:
                resp_sum += resp  # of the previous state, already in the reference's labels
                d, keep = divmod(it - warmup, thin)
                if keep == 0:
                    out_theta[c, d], out_w[c, d] = chain.theta, chain.w
                    out_m[c, d] = softmax(chain.zeta)
                    out_alpha[c, d] = np.exp(chain.log_alpha)
        accepted += chain.accept
    return Draws(
        theta=out_theta,
        w=out_w,
        m=out_m,
        alpha=out_alpha,
        resp=resp_sum / (chains * draws * thin),
        accept=float(accepted[0] / max(accepted[1], 1)),
    )


def _relabelled(
    design: Design,
    weights: np.ndarray,
    start: EMFit,
    theta: np.ndarray,
    w: np.ndarray,
    m: np.ndarray,
) -> np.ndarray:
    """Permute every draw (C, D, …) to the EM mode in place; return the mean responsibilities."""
    ref_sqrt = np.sqrt(np.exp(start.log_theta))
    resp = np.zeros((len(weights), theta.shape[2]))
    for c in range(theta.shape[0]):
        for d in range(theta.shape[1]):
            perm = _relabel(theta[c, d], ref_sqrt)
            theta[c, d], w[c, d], m[c, d] = theta[c, d][perm], w[c, d][:, perm], m[c, d][perm]
            resp += responsibilities(design, _safe_log(theta[c, d]), np.log(w[c, d]))
    return resp / (theta.shape[0] * theta.shape[1])


def nuts(
    design: Design,
    weights: np.ndarray,
    start: EMFit,
    *,
    support: np.ndarray,
    prior: float = 1.0,
    draws: int = 1000,
    tune: int = 500,
    chains: int = 2,
    seed: int = 0,
    target_accept: float = 0.9,
    progress: bool = False,
) -> tuple[Draws, dict[str, float]]:
    """Sample the same posterior with NUTS (PyMC; numpyro when installed), assignments summed out.

    Every chain starts at the EM mode ``start``; draws are relabelled to it (Hungarian) in case
    a chain switched labels. Returns the draws and ``{"divergences": …}``.
    """
    import pymc as pm
    import pytensor.tensor as pt

    from analysis.models._fit import choose_sampler, sampler_kwargs

    k = start.log_theta.shape[0]
    theta0 = np.exp(start.log_theta)
    blocks = []
    for s0, size in zip(design.starts, design.sizes, strict=True):
        blocks.append(np.flatnonzero(support[s0 : s0 + size]) + s0)
    cells = np.concatenate(blocks)
    counts = design.counts[:, cells].toarray()
    init: dict[str, np.ndarray] = {}
    with pm.Model():
        logs = []
        for b, idx in enumerate(blocks):
            if len(idx) < 2:
                logs.append(pt.zeros((k, len(idx))))
                continue
            row = pm.Dirichlet(f"theta_{b}", a=np.full((k, len(idx)), prior))
            x = theta0[:, idx]
            init[f"theta_{b}"] = x / x.sum(1, keepdims=True)
            logs.append(pt.log(row))
        log_theta = pt.concatenate(logs, axis=1)
        zeta = pm.Normal("zeta", 0.0, 1.5, shape=k)
        alpha = pm.Gamma("alpha", 2.0, 0.2)
        w = pm.Dirichlet("w", a=alpha * pt.special.softmax(zeta), shape=(design.n_groups, k))
        joint = pt.dot(counts, log_theta.T) + pt.log(w)[design.group]
        pm.Potential("loglik", pt.dot(weights, pm.math.logsumexp(joint, axis=1).ravel()))
        init.update(w=np.exp(start.log_w), zeta=start.log_m - start.log_m.mean())
        init["alpha"] = np.asarray(10.0)
        sampler = choose_sampler("auto")
        cfg = {"dense_mass": True, "chains": chains, "chain_method": "parallel"}
        idata = pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            target_accept=target_accept,
            random_seed=seed,
            nuts_sampler=sampler,
            progressbar=progress,
            compute_convergence_checks=False,
            **sampler_kwargs(sampler, cfg, [init] * chains),
        )
    post = idata.posterior
    theta = np.zeros((chains, draws, k, design.n_cells))
    for b, idx in enumerate(blocks):
        if len(idx) == 1:
            theta[..., idx] = 1.0
        elif len(idx) > 1:
            theta[..., idx] = post[f"theta_{b}"].to_numpy()
    w_draws = post["w"].to_numpy().copy()
    zeta_d = post["zeta"].to_numpy()
    m = np.exp(zeta_d - zeta_d.max(-1, keepdims=True))
    m /= m.sum(-1, keepdims=True)
    resp = _relabelled(design, weights, start, theta, w_draws, m)
    out = Draws(
        theta=theta,
        w=w_draws,
        m=m,
        alpha=post["alpha"].to_numpy(),
        resp=resp,
        accept=float(idata.sample_stats["acceptance_rate"].mean())
        if "acceptance_rate" in idata.sample_stats
        else float("nan"),
    )
    return out, {"divergences": int(idata.sample_stats["diverging"].sum())}
