"""A distance-based journey typology, as TraMineR and WeightedCluster users build one.

Optimal-matching distances between journeys' stage (or channel) sequences
(:mod:`analysis.models.patterns.distances`), a weighted k-medoids partition (PAM), the number of
clusters chosen by the average silhouette width (ASW), every journey assigned to its nearest
medoid, and each cluster's representative sequences (TraMineR's ``seqrep``, by frequency).

Scale: the work is on *distinct* sequences, each weighted by its number of journeys. When there
are more than ``sample_size`` journeys, ``sample_size`` of them are drawn without replacement,
and PAM runs on the distinct sequences of that sample (weights: how often each was drawn; an
n × n matrix of at most ``sample_size`` rows), as CLARA does; then every distinct sequence is
assigned to the nearest of the k medoids (a distinct × k matrix). At a million journeys that
is a few thousand distinct sequences against k references (bench/patterns.py).

Why our own optimal matching rather than Sequenzo inside: Sequenzo 0.1.42 (the Python port of
TraMineR/WeightedCluster) computes the same distances (our tests check them against it to
1e-9, with its PAM partition) and is fast on a full matrix, but it works on a fixed-width
``SequenceData`` table (one column per position, padded), pins ``scipy<1.17`` and brings
statsmodels, hmmlearn, Cython and more; its ``refseq`` gives distances to one sequence or
between two index sets of the *same* table, not of a million journeys to k medoids without
building that table. The optimal-matching programme is 40 lines of numba; Sequenzo stays the
parity peer (dev extra) and the bench's baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import pandas as pd

from analysis.errors import DataError, did_you_mean
from analysis.models.patterns.distances import (
    alphabet,
    lcs_distances,
    om_distances,
    split_sequence,
    substitution_costs,
)
from analysis.schema import PATH_SEP

#: How many representative sequences :func:`sequence_typology` lists per cluster.
N_REPRESENTATIVES = 5


@dataclass
class KMedoids:
    """A k-medoids partition (:func:`kmedoids`).

    ``medoids``: row indices into the distance matrix; ``labels``: the position in ``medoids``
    of each row's nearest medoid; ``cost``: the weighted sum of distances to the nearest medoid
    (PAM's objective).
    """

    medoids: np.ndarray
    labels: np.ndarray
    cost: float


@numba.njit(cache=True, nogil=True)
def _pam(dist, w, k):
    """Return PAM's medoids: BUILD, then the best swap while one lowers the cost."""
    n = dist.shape[0]
    medoids = np.empty(k, dtype=np.int64)
    is_med = np.zeros(n, dtype=np.bool_)
    near = np.full(n, np.inf)
    for m in range(k):  # BUILD: each new medoid is the one that lowers the cost most
        best_gain = -1.0
        best_h = -1
        for h in range(n):
            if is_med[h]:
                continue
            gain = 0.0
            for j in range(n):
                dj = dist[j, h]
                if m == 0:
                    gain -= w[j] * dj
                elif dj < near[j]:
                    gain += w[j] * (near[j] - dj)
            if best_h < 0 or gain > best_gain:
                best_gain = gain
                best_h = h
        medoids[m] = best_h
        is_med[best_h] = True
        for j in range(n):
            if dist[j, best_h] < near[j]:
                near[j] = dist[j, best_h]
    second = np.empty(n)
    while True:  # SWAP
        for j in range(n):
            d1 = np.inf
            d2 = np.inf
            for m in range(k):
                d = dist[j, medoids[m]]
                if d < d1:
                    d2 = d1
                    d1 = d
                elif d < d2:
                    d2 = d
            near[j] = d1
            second[j] = d2
        best = 0.0
        best_m = -1
        best_h = -1
        for m in range(k):
            i = medoids[m]
            for h in range(n):
                if is_med[h]:
                    continue
                change = 0.0
                for j in range(n):
                    djh = dist[j, h]
                    if dist[j, i] == near[j]:
                        change += w[j] * (min(djh, second[j]) - near[j])
                    elif djh < near[j]:
                        change += w[j] * (djh - near[j])
                if change < best - 1e-10:
                    best = change
                    best_m = m
                    best_h = h
        if best_m < 0:
            return medoids
        is_med[medoids[best_m]] = False
        is_med[best_h] = True
        medoids[best_m] = best_h


def kmedoids(
    dist: np.ndarray, k: int, *, seed: int = 0, weights: np.ndarray | None = None
) -> KMedoids:
    """Return the weighted k-medoids partition of a distance matrix (PAM: BUILD then SWAP).

    The algorithm of R's ``cluster::pam`` and WeightedCluster's ``wcKMedoids(method="PAM")``
    (Sequenzo's ``KMedoids``), weighted: each row counts ``weights[i]`` times. It is
    deterministic; ``seed`` is accepted for symmetry with samplers and not used.

    Parameters
    ----------
    dist : numpy.ndarray
        Square, symmetric distances.
    k : int
        Number of medoids, 1 ≤ k ≤ n.
    seed : int
        Unused (PAM has no random start).
    weights : numpy.ndarray, optional
        One non-negative weight per row (a distinct sequence's number of journeys).
    """
    del seed
    dist = np.ascontiguousarray(dist, dtype=np.float64)
    n = dist.shape[0]
    if dist.ndim != 2 or dist.shape[1] != n:
        raise DataError(f"dist must be a square matrix, got shape {dist.shape}")
    if not 1 <= k <= n:
        raise DataError(f"k={k} medoids among {n} rows", fix=f"choose k between 1 and {n}")
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    medoids = _pam(dist, w, int(k))
    to_med = dist[:, medoids]
    labels = np.argmin(to_med, axis=1)
    labels[medoids] = np.arange(k)  # a medoid belongs to its own cluster, even on ties
    cost = float(np.sum(w * to_med[np.arange(n), labels]))
    return KMedoids(medoids=medoids, labels=labels, cost=cost)


def cluster_quality(dist: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> dict[str, float]:
    """Return the average silhouette width and R² of a partition of weighted rows.

    Row ``i`` stands for ``weights[i]`` identical journeys (distance 0 between them), so the
    figures are those of the partition of the journeys (WeightedCluster's ``ASW`` and ``R2``,
    equal to Sequenzo's ``compute_partition_quality`` in tests/models/test_patterns_sequenzo.py):
    ``a_i`` is the mean distance to the other journeys of its cluster, ``b_i`` the smallest mean
    distance to another cluster, ``s_i = (b_i - a_i) / max(a_i, b_i)`` (0 in a one-journey
    cluster); ``R2`` is the share of the discrepancy ``Σ w_i w_j d_ij / 2W`` between clusters.
    """
    w = np.asarray(weights, dtype=np.float64)
    k = int(labels.max()) + 1
    member = np.zeros((len(labels), k))
    member[np.arange(len(labels)), labels] = 1.0
    size = w @ member
    sums = dist @ (member * w[:, None])  # Σ_j in cluster c of w_j d_ij
    own = sums[np.arange(len(labels)), labels]
    own_n = size[labels] - 1.0
    a = np.divide(own, own_n, out=np.zeros_like(own), where=own_n > 0)
    other = np.where(member > 0, np.inf, sums / np.where(size > 0, size, 1.0))
    b = other.min(axis=1) if k > 1 else np.zeros(len(labels))
    denom = np.maximum(a, b)
    s = np.divide(b - a, denom, out=np.zeros_like(a), where=(denom > 0) & (own_n > 0))
    asw = float(np.sum(w * s) / w.sum()) if k > 1 else float("nan")
    total = float(w @ dist @ w) / (2 * w.sum())
    within = sum(
        float(w[labels == c] @ dist[np.ix_(labels == c, labels == c)] @ w[labels == c])
        / (2 * size[c])
        for c in range(k)
        if size[c] > 0
    )
    r2 = 1.0 - within / total if total > 0 else float("nan")
    return {"asw": asw, "r2": r2}


@dataclass
class Typology:
    """A distance-based journey typology (:func:`sequence_typology`).

    Attributes
    ----------
    k : int
        The number of clusters.
    quality : pandas.DataFrame
        One row per k tried: ``k``, ``asw`` (average silhouette width), ``r2`` (share of the
        discrepancy between clusters), ``cost`` (PAM's objective), ``chosen``.
    medoids : pandas.DataFrame
        ``cluster`` (1 = most journeys), ``sequence`` (joined by PATH_SEP), ``journeys``, ``share``.
    labels : pandas.DataFrame
        One row per journey: ``journey_id``, ``cluster`` (``<NA>`` for a journey with no
        sequence), ``distance`` to its medoid.
    representatives : pandas.DataFrame
        Per cluster its representative sequences, densest first (TraMineR's ``seqrep``):
        ``cluster``, ``rank``, ``sequence``, ``journeys`` (with exactly that sequence),
        ``density`` (the cluster's journeys within 10% of the largest distance of it: TraMineR's
        neighbourhood, the bar height of ``seqrplot``; estimated from the sample when there is
        one), ``coverage`` (the share of the cluster's journeys within the neighbourhoods of the
        representatives so far), ``distance`` (to the medoid).
    sequence : str
        The column the sequences came from.
    excluded : int
        Journeys with an empty sequence, left out of the clusters (their ``cluster`` is ``<NA>``).
    n_distinct : int
        Distinct non-empty sequences.
    sample : int
        Distinct sequences PAM ran on (all of them when the journeys fit ``sample_size``).
    """

    k: int
    quality: pd.DataFrame
    medoids: pd.DataFrame
    labels: pd.DataFrame
    representatives: pd.DataFrame
    sequence: str = "stages"
    excluded: int = 0
    n_distinct: int = 0
    sample: int = 0


def _distinct(journeys: pd.DataFrame, sequence: str) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """Return (normalised sequences, codes of each journey into the distinct ones, counts)."""
    if sequence not in journeys.columns:
        raise DataError(
            f"no column {sequence!r} in the journeys",
            column=sequence,
            fix="pass sequence='stages' or 'channels'" + did_you_mean(sequence, journeys.columns),
        )
    raw = journeys[sequence].astype("string").fillna("").str.strip()
    codes, uniques = pd.factorize(raw, sort=False)
    uniq = pd.Series(uniques, dtype="string")
    counts = np.bincount(codes, minlength=len(uniq)).astype(np.int64)
    return uniq, codes, counts


def _sample(counts: np.ndarray, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (indices, weights) of the distinct sequences a sample of ``size`` journeys hits."""
    if counts.sum() <= size:
        return np.arange(len(counts)), counts.astype(np.float64)
    rng = np.random.default_rng(seed)
    drawn = rng.multivariate_hypergeometric(counts, size, method="marginals")
    idx = np.flatnonzero(drawn)
    return idx, drawn[idx].astype(np.float64)


def _choose_k(
    dist: np.ndarray, weights: np.ndarray, k: int | None, k_max: int
) -> tuple[pd.DataFrame, KMedoids]:
    """Return (quality per k tried, the chosen partition): ``k`` or the best ASW in 2..k_max."""
    if k is not None and not 1 <= k <= len(dist):
        raise DataError(
            f"k={k} clusters of {len(dist)} distinct sequences (in the sample)",
            fix="choose a k between 1 and the number of distinct sequences, or a larger sample_size",
        )
    ks = [k] if k is not None else list(range(2, max(2, k_max) + 1))
    ks = [c for c in ks if c <= len(dist)] or [len(dist)]  # k_max: at most one per sequence
    rows, fits = [], {}
    for c in ks:
        fit = kmedoids(dist, c, weights=weights)
        fits[c] = fit
        q = cluster_quality(dist, fit.labels, weights) if c > 1 else {"asw": np.nan, "r2": 0.0}
        rows.append({"k": c, **q, "cost": fit.cost})
    quality = pd.DataFrame(rows)
    best = quality["asw"].fillna(-1.0).idxmax()
    chosen = int(quality.loc[best, "k"]) if k is None else ks[0]
    quality["chosen"] = quality["k"] == chosen
    return quality, fits[chosen]


def _representatives(
    dist: np.ndarray,
    weights: np.ndarray,
    cluster: np.ndarray,
    seqs: np.ndarray,
    journeys: np.ndarray,
    distance: np.ndarray,
) -> pd.DataFrame:
    """Return each cluster's representative sequences (TraMineR's ``seqrep``, "density").

    On the sample (``dist`` between its distinct sequences, ``weights`` their counts,
    ``cluster`` their clusters): the neighbourhood radius is 10% of the largest distance
    (``pradius=0.1``); a sequence's density is the number of its cluster's sampled journeys
    within the radius; the densest is the first representative, then the densest not within the
    radius of one already chosen, up to :data:`N_REPRESENTATIVES`. ``coverage`` is the share of
    the cluster's sampled journeys within the radius of the representatives so far.
    ``journeys`` and ``distance`` (to the medoid) describe each sequence among all journeys.
    """
    radius = 0.1 * float(dist.max()) if dist.size else 0.0
    near = dist <= radius
    rows = []
    for c in np.unique(cluster):
        idx = np.flatnonzero(cluster == c)
        sub = near[np.ix_(idx, idx)]
        w = weights[idx]
        density = sub.astype(np.float64) @ w
        covered = np.zeros(len(idx), dtype=bool)
        free = np.ones(len(idx), dtype=bool)
        for r in range(1, N_REPRESENTATIVES + 1):
            if not free.any():
                break
            cand = np.flatnonzero(free)
            best = cand[np.lexsort((seqs[idx[cand]], -journeys[idx[cand]], -density[cand]))[0]]
            covered |= sub[best]
            free &= ~sub[best]
            free[best] = False
            i = idx[best]
            rows.append(
                {
                    "cluster": int(c),
                    "rank": r,
                    "sequence": str(seqs[i]),
                    "journeys": int(journeys[i]),
                    "density": float(density[best]),
                    "coverage": float(w[covered].sum() / w.sum()),
                    "distance": float(distance[i]),
                }
            )
    return pd.DataFrame(rows)


def _dss(uniq: pd.Series) -> pd.Series:
    """Return each sequence with repeated successive states collapsed (TraMineR's ``seqdss``)."""
    out = []
    for s in uniq:
        parts = split_sequence(s)
        out.append(PATH_SEP.join(p for i, p in enumerate(parts) if i == 0 or p != parts[i - 1]))
    return pd.Series(out, dtype="string")


def sequence_typology(
    journeys: pd.DataFrame,
    *,
    sequence: str = "stages",
    k: int | None = None,
    k_max: int = 6,
    sample_size: int = 2000,
    sm: str | np.ndarray = "CONSTANT",
    indel: float = 1.0,
    seed: int = 0,
    collapse: bool = False,
) -> Typology:
    """Return the OM / k-medoids typology of the journeys' sequences (TraMineR-style).

    Parameters
    ----------
    journeys : pandas.DataFrame
        One row per journey (:attr:`Journeys.journeys <analysis.journeys.Journeys.journeys>`):
        ``journey_id`` and the ``sequence`` column (states joined by PATH_SEP). Empty or missing
        sequences are counted in :attr:`Typology.excluded`, with cluster ``<NA>``.
    sequence : str
        The column to cluster: ``"stages"`` or ``"channels"``.
    k : int, optional
        The number of clusters; default the k in 2..k_max with the largest ASW.
    k_max : int
        The largest k tried.
    sample_size : int
        Journeys drawn (without replacement) for PAM when there are more; the rest are assigned
        to the nearest medoid.
    sm, indel
        Optimal-matching costs (:func:`~analysis.models.patterns.distances.om_distances`);
        TRATE's rates come from all journeys.
    seed : int
        Seed of the sample.
    collapse : bool
        Collapse repeated successive states first (TraMineR's ``seqdss``: ``"email > email >
        social"`` is ``"email > social"``). Stages are runs already; a channel sequence has one
        state per touchpoint, and without collapsing, optimal matching mostly measures length.
    """
    if "journey_id" not in journeys.columns:
        raise DataError("no column 'journey_id' in the journeys", column="journey_id")
    uniq, codes, counts = _distinct(journeys, sequence)
    if collapse:
        codes_c, uniq_c = pd.factorize(_dss(uniq), sort=False)
        codes = codes_c[codes]
        uniq = pd.Series(uniq_c, dtype="string")
        counts = np.bincount(codes, minlength=len(uniq)).astype(np.int64)
    empty = (uniq == "").to_numpy()
    keep = np.flatnonzero(~empty)
    if len(keep) == 0:
        raise DataError(
            f"every journey's {sequence!r} is empty",
            column=sequence,
            fix="check the stage map (journeys without a mapped stage have no stages)",
        )
    seqs = uniq.to_numpy()[keep].astype(object)
    w_all = counts[keep]
    states, sub = substitution_costs(seqs, sm=sm, states=alphabet(seqs), weights=w_all)
    s_idx, s_w = _sample(w_all, sample_size, seed)
    dist = om_distances(seqs[s_idx], sm=sub, indel=indel, states=states)
    quality, fit = _choose_k(dist, s_w, k, k_max)
    chosen = fit.medoids.shape[0]
    # a journey equally far from two medoids goes to the one PAM chose first (as WeightedCluster)
    med_seqs = seqs[s_idx[fit.medoids]]
    to_med = om_distances(seqs, med_seqs, sm=sub, indel=indel, states=states)
    near = np.argmin(to_med, axis=1)
    near_d = to_med[np.arange(len(seqs)), near]
    # clusters numbered by size, 1 = most journeys
    size = np.bincount(near, weights=w_all, minlength=chosen)
    order = np.argsort(-size, kind="stable")
    rank = np.empty(chosen, dtype=np.int64)
    rank[order] = np.arange(1, chosen + 1)
    reps = _representatives(dist, s_w, rank[near[s_idx]], seqs[s_idx], w_all[s_idx], near_d[s_idx])
    reps["density"] *= w_all.sum() / s_w.sum()  # in journeys (an estimate when sampled)
    n_total = int(w_all.sum())
    medoids = pd.DataFrame(
        {
            "cluster": np.arange(1, chosen + 1),
            "sequence": med_seqs[order].astype(str),
            "journeys": size[order].astype(np.int64),
            "share": size[order] / n_total,
        }
    )
    cl_distinct = np.full(len(uniq), -1, dtype=np.int64)
    cl_distinct[keep] = rank[near]
    d_distinct = np.full(len(uniq), np.nan)
    d_distinct[keep] = near_d
    cluster = pd.array(cl_distinct[codes], dtype="Int64")
    cluster[cl_distinct[codes] < 0] = pd.NA
    labels = pd.DataFrame(
        {
            "journey_id": journeys["journey_id"].to_numpy(),
            "cluster": cluster,
            "distance": d_distinct[codes],
        }
    )
    return Typology(
        k=chosen,
        quality=quality,
        medoids=medoids,
        labels=labels,
        representatives=reps,
        sequence=sequence,
        excluded=int(counts[empty].sum()),
        n_distinct=len(keep),
        sample=len(s_idx),
    )


__all__ = [
    "KMedoids",
    "Typology",
    "cluster_quality",
    "kmedoids",
    "lcs_distances",
    "om_distances",
    "sequence_typology",
]
