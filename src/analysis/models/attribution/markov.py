"""Markov-chain attribution: removal effects of an order-1..4 chain, solved exactly.

It takes the path table of :meth:`analysis.Journeys.channel_paths` (``path, conversions, nulls,
value``; channels joined by ``" > "``, ChannelAttribution's layout).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.schema import check_paths, explode_paths


def transition_counts(
    paths: pd.DataFrame,
    path: str,
    conversions: str,
    nulls: str | None,
    sep: str,
    order: int = 1,
    touches: pd.DataFrame | None = None,
):
    """Count the order-``k`` transitions of a path table.

    States ``(start)``, channel states, ``(conversion)``, ``(null)`` — ChannelAttribution's
    conventions.

    A state is a window of ``k`` consecutive touches (the whole path when it is shorter). Every
    path is start → s1 → … → sm → conversion (weight: its conversions) and → null (its nulls);
    each move carries conversions + nulls. A move from a state to itself is not counted (for
    ``k = 1``: repeated consecutive touches count once).

    Returns the state labels (``" > "``-joined windows), a boolean state × channel membership
    matrix, the channel names and the count matrix. ``touches``: :func:`explode_paths` of
    ``paths`` when already at hand.
    """
    t = explode_paths(paths, path, sep) if touches is None else touches
    pid = t["path_id"].to_numpy()
    pos = t["position"].to_numpy()
    n = t["length"].to_numpy()
    k = int(order)
    if k == 1:  # states are the channels: integer codes, no labels
        ch = pd.Categorical(t["channel"])
        code = ch.codes.astype(np.int64)
        same = np.zeros(len(code), dtype=bool)
        same[1:] = (pid[1:] == pid[:-1]) & (code[1:] == code[:-1])
        channels = [str(c) for c in ch.categories]
        return _counts_from_states(
            paths,
            conversions,
            nulls,
            pid[~same],
            code[~same],
            channels,
            np.eye(len(channels), dtype=bool),
            channels,
        )
    keep = (pos <= n - k) | ((n < k) & (pos == 0))  # window starts
    chan = t["channel"].astype(object)
    parts = [chan]
    for j in range(1, k):
        parts.append(chan.groupby(t["path_id"].to_numpy()).shift(-j))
    label = parts[0].astype(str)
    for j in range(1, k):
        label = label + np.where(parts[j].isna(), "", " > " + parts[j].fillna("").astype(str))
    w = pd.DataFrame({"path_id": pid[keep], "state": label.to_numpy()[keep]})
    # no self-transitions
    sp, ss = w["path_id"].to_numpy(), w["state"].to_numpy()
    same = np.zeros(len(w), dtype=bool)
    same[1:] = (sp[1:] == sp[:-1]) & (ss[1:] == ss[:-1])
    w = w[~same].reset_index(drop=True)
    codes, states = pd.factorize(w["state"], sort=True)
    channels = sorted(set(t["channel"]))
    member = np.zeros((len(states), len(channels)), dtype=bool)
    cidx = {c: i for i, c in enumerate(channels)}
    for si, st in enumerate(states):  # distinct states only (at most a few thousand)
        for c in st.split(" > "):
            member[si, cidx[c]] = True
    return _counts_from_states(
        paths, conversions, nulls, w["path_id"].to_numpy(), codes, list(states), member, channels
    )


def _counts_from_states(paths, conversions, nulls, pid, codes, states, member, channels):
    """Return the count matrix of :func:`transition_counts` from each path's state sequence.

    ``pid``, ``codes``: rows in path order, self-transitions already dropped.
    """
    n_states = len(states) + 3  # start, states, conversion, null
    conv_s, null_s = n_states - 2, n_states - 1
    state = codes + 1
    w_conv = pd.to_numeric(paths[conversions]).to_numpy(float)
    w_null = (
        pd.to_numeric(paths[nulls]).to_numpy(float) if nulls is not None else np.zeros(len(paths))
    )
    new_path = pid[1:] != pid[:-1]
    last = np.append(new_path, True)
    prev = np.zeros_like(state)  # (start) at the first touch of every path
    prev[1:] = np.where(new_path, 0, state[:-1])
    # bincount adds in row order, as np.add.at did: the same sums, bit for bit
    counts = np.bincount(
        prev * n_states + state, weights=(w_conv + w_null)[pid], minlength=n_states * n_states
    ).reshape(n_states, n_states)
    counts[:, conv_s] += np.bincount(state[last], weights=w_conv[pid[last]], minlength=n_states)
    counts[:, null_s] += np.bincount(state[last], weights=w_null[pid[last]], minlength=n_states)
    return states, member, channels, counts


def _conversion_from_start(P: np.ndarray, removed: np.ndarray | None = None) -> np.ndarray:
    """Return P(absorbed in conversion from start) for transition matrices ``P`` (..., S, S).

    With ``removed`` (a channel state index per leading batch), that channel becomes a dead end.
    """
    S = P.shape[-1]
    transient = S - 2
    Q = P[..., :transient, :transient].copy()
    R = P[..., :transient, S - 2].copy()
    if removed is not None:  # (batch, transient) mask of dead states
        Q = np.where(removed[:, None, :], 0.0, Q)  # moving into a removed state ends the journey
        R = np.where(removed, 0.0, R)
    b_ = np.linalg.solve(np.eye(transient) - Q, R[..., None])[..., 0]
    return b_[..., 0]


def _conversion_with_removals(P: np.ndarray, dead: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return P(conversion from start) for matrices ``P`` (..., S, S), as is and with removals.

    Each row of ``dead`` (k, S - 2: transient states a removal kills) is removed in turn — from
    one inverse per matrix instead of ``k + 1`` solves.

    With ``N = (I - Q)^-1`` (expected visits) and ``b = N R`` (conversion from each state), a
    journey converts with the states ``D`` dead iff it converts before it first enters ``D``;
    the first entry is at ``d`` with probability ``h_d``, ``N[0, D] = h N[D, D]``, so
    ``P(convert | D removed) = b_0 - h . b_D`` (exact; equals :func:`_conversion_from_start`
    with ``removed`` up to float rounding). Returns ``(base (...), removed (..., k))``.
    """
    S = P.shape[-1]
    transient = S - 2
    N = np.linalg.inv(np.eye(transient) - P[..., :transient, :transient])
    b = (N @ P[..., :transient, S - 2, None])[..., 0]
    removed = np.empty((*b.shape[:-1], len(dead)))
    one = dead.sum(1) == 1  # order 1: every channel kills one state, all at once
    if one.any():
        d = dead[one].argmax(1)
        removed[..., one] = b[..., :1] - N[..., 0, d] / N[..., d, d] * b[..., d]
    for c in np.flatnonzero(~one):
        D = np.flatnonzero(dead[c])
        NDD = N[..., D[:, None], D[None, :]]
        h = np.linalg.solve(np.swapaxes(NDD, -1, -2), N[..., 0, D, None])[..., 0]
        removed[..., c] = b[..., 0] - (h * b[..., D]).sum(-1)
    return b[..., 0], removed


def _conversion_from_start_sparse(P: np.ndarray, dead: np.ndarray) -> float:
    """:func:`_conversion_from_start` for one large, sparse transition matrix."""
    from scipy.sparse import csr_matrix, identity
    from scipy.sparse.linalg import spsolve

    S = P.shape[0]
    alive = (~dead).astype(float)
    Q = csr_matrix(P[: S - 2, : S - 2] * alive[None, :])
    R = P[: S - 2, S - 2] * alive
    b = spsolve((identity(S - 2, format="csc") - Q).tocsc(), R)
    return float(b[0])


def markov_attribution(
    paths: pd.DataFrame,
    *,
    order: int = 1,
    path: str = "path",
    conversions: str = "conversions",
    nulls: str | None = "nulls",
    value: str | None = "value",
    sep: str = ">",
    draws: int = 0,
    prior_a: float = 0.5,
    seed: int = 0,
    prob: float = 0.9,
) -> pd.DataFrame:
    """Markov-chain removal-effect attribution, solved exactly (absorbing-chain algebra).

    Conventions (peers differ; these are ChannelAttribution's):

    - states ``(start)``, windows of ``order`` consecutive touches (the whole path when it is
      shorter), ``(conversion)``, ``(null)``; a path with ``c`` conversions and ``m`` nulls
      contributes ``c + m`` to each of its moves, ``c`` to its last state → conversion and ``m``
      to last state → null;
    - a move from a state to itself is not counted (order 1: repeated touches count once);
    - removing a channel sends every journey that would enter a state containing it to
      ``(null)``; its removal effect is ``1 - P(convert | removed) / P(convert)``, and
      conversions (and value) are shared in proportion to the removal effects.

    Exact: the absorbing chain is solved, no simulation. ``value`` is
    shared by the *conversion* removal effects; ChannelAttribution computes a separate
    value-weighted removal effect (up to 7% apart per channel on its ``Data.csv``): matching
    that convention is still open.

    Uncertainty (``draws > 0``): every transition row gets the posterior
    ``Dirichlet(counts + prior_a)`` over the moves seen from that state (a move never seen stays
    impossible), and the removal effects and attributed conversions are recomputed on each of
    ``draws`` draws (vectorised: one batched inverse per draw gives every channel's removal;
    chains of up to 400 states, i.e. order 1–2 on typical data).

    Returns
    -------
    DataFrame
        ``channel, removal_effect, conversions`` and, with ``value``, ``value`` (point
        estimates from the observed transition frequencies). With ``draws``, also
        ``removal_effect_mean/_lower/_upper`` and ``conversions_mean/_lower/_upper`` (``prob``
        equal-tailed interval).
    """
    if order not in (1, 2, 3, 4):
        raise ValueError("order must be 1, 2, 3 or 4")
    if draws < 0 or prior_a <= 0:
        raise ValueError("draws must be >= 0 and prior_a > 0")
    if value is not None and value not in paths.columns and value == "value":
        value = None
    if nulls is not None and nulls not in paths.columns and nulls == "nulls":
        nulls = None
    touches = check_paths(paths, path, conversions, value, nulls=nulls, sep=sep)
    paths = paths.reset_index(drop=True)
    _, member, channels, counts = transition_counts(
        paths, path, conversions, nulls, sep, order, touches
    )
    rows = counts.sum(1, keepdims=True)
    P = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    k = len(channels)
    dead = np.zeros((k, P.shape[0] - 2), dtype=bool)  # transient states: start + channel states
    dead[:, 1:] = member.T  # removing a channel kills every state that contains it
    if P.shape[0] <= 400:
        base = _conversion_from_start(P[None])[0]
        removed = _conversion_from_start(np.broadcast_to(P, (k, *P.shape)), removed=dead)
    else:  # higher orders: thousands of states, few moves each -> sparse solves
        base = _conversion_from_start_sparse(P, np.zeros(P.shape[0] - 2, dtype=bool))
        removed = np.array([_conversion_from_start_sparse(P, d) for d in dead])
    effect = 1.0 - removed / base if base > 0 else np.zeros(k)
    share = effect / effect.sum() if effect.sum() > 0 else np.zeros(k)
    out = pd.DataFrame(
        {
            "channel": channels,
            "removal_effect": effect,
            "conversions": share * pd.to_numeric(paths[conversions]).sum(),
        }
    )
    if value is not None:
        out["value"] = share * pd.to_numeric(paths[value]).sum()
    if draws:
        if P.shape[0] > 400:
            raise ValueError(
                f"draws need a chain of at most 400 states; order {order} has {P.shape[0]}"
            )
        rng = np.random.default_rng(seed)
        seen = counts > 0
        alpha = np.where(seen, counts + prior_a, 1.0)
        g = np.where(seen, rng.standard_gamma(np.broadcast_to(alpha, (draws, *alpha.shape))), 0.0)
        tot = g.sum(-1, keepdims=True)
        Pd = np.divide(g, tot, out=np.zeros_like(g), where=tot > 0)
        base_d, rem = _conversion_with_removals(Pd, dead)  # (draws,), (draws, k)
        eff = np.where(base_d[:, None] > 0, 1.0 - rem / base_d[:, None], 0.0)
        tot_eff = eff.sum(1, keepdims=True)
        conv_d = (
            np.divide(eff, tot_eff, out=np.zeros_like(eff), where=tot_eff > 0)
            * pd.to_numeric(paths[conversions]).sum()
        )
        lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
        for name, d in (("removal_effect", eff), ("conversions", conv_d)):
            out[f"{name}_mean"] = d.mean(0)
            out[f"{name}_lower"] = np.quantile(d, lo, axis=0)
            out[f"{name}_upper"] = np.quantile(d, hi, axis=0)
    return out
