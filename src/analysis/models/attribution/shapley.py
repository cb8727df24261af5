"""Shapley attribution: exact Shapley values of channels over coalitions (and touch positions).

It takes the path table of :meth:`analysis.Journeys.channel_paths` (``path, conversions, nulls,
value``; channels joined by ``" > "``, ChannelAttribution's layout).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.schema import DataError, check_paths


def _ordered_shapley(t: pd.DataFrame, conv: np.ndarray, channels: list[str]) -> pd.DataFrame:
    """Per-touch ordered Shapley credits (Zhao et al. 2018) for the ``"conversions"`` game.

    ``v(S) = sum over channel sets T within S of R(T)`` (``R(T)``: conversions of the journeys
    whose channel set is exactly ``T``) is a sum of unanimity games, so channel ``j`` earns
    ``R(T) / |T|`` from every ``T`` that holds it — per journey, its conversions split equally
    over its distinct channels. That share is then split equally over the channel's touches in
    the journey, each touch credited at its 1-based position. Returns ``channel, position,
    shapley`` summed over journeys (one row per channel and position with credit).
    """
    n = len(channels)
    code = pd.Categorical(t["channel"], categories=channels).codes.astype(np.int64)
    pid = t["path_id"].to_numpy()
    keys, inv, touches_of = np.unique(pid * n + code, return_inverse=True, return_counts=True)
    distinct = np.bincount(keys // n, minlength=len(conv))  # distinct channels per journey
    credit = conv[pid] / (distinct[pid] * touches_of[inv])
    long = pd.DataFrame(
        {
            "channel": t["channel"].to_numpy(),
            "position": t["position"].to_numpy() + 1,
            "shapley": credit,
        }
    )[credit > 0]
    return long.groupby(["channel", "position"], sort=True, as_index=False)["shapley"].sum()


def shapley_attribution(
    paths: pd.DataFrame,
    *,
    value_function: str = "conversion_rate",
    path: str = "path",
    conversions: str = "conversions",
    nulls: str | None = "nulls",
    sep: str = ">",
    max_channels: int = 20,
    ordered: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Exact Shapley values of channels over coalitions (unordered: a journey is its channel set).

    ``v(S)`` is computed from the journeys whose set of channels lies within ``S``:

    - ``"conversion_rate"`` (default): their conversions / their journeys (conversions + nulls);
      0 when there are none;
    - ``"conversions"``: their conversions — mta's ``MTA.shapley`` convention.

    All ``2^n`` coalitions are evaluated at once: conversions and nulls are summed per channel
    set (a bitmask), a subset-sum (zeta) transform gives ``v`` for every coalition, and each
    channel's value is the weighted sum of its marginal contributions — ``O(n 2^n)``, about a
    second for 20 channels.

    Parameters
    ----------
    paths : DataFrame
        ``path, conversions[, nulls]``, one row per distinct path.
    value_function : {"conversion_rate", "conversions"}
        The coalition value, see above.
    path, conversions, nulls : str
        Column names (``nulls`` is needed by ``"conversion_rate"`` only).
    sep : str
        Channel separator (surrounding spaces ignored).
    max_channels : int
        Refuse more channels than this (``2^n`` coalitions); not used with ``ordered``.
    ordered : bool
        Also credit every touch *position* — the ordered Shapley value of Zhao, Mahboobi &
        Bagheri (2018, "Shapley value methods for attribution modeling in online advertising",
        arXiv:1804.05327), with ``value_function="conversions"`` only. That game is a sum of
        unanimity games, one per channel set ``T`` with ``R(T)`` conversions, so the exact
        Shapley value is ``phi_j = sum over T holding j of R(T) / |T|``: every converting
        journey's conversions are split equally over its *distinct* channels. With
        ``ordered=True`` each channel's share of a journey is further split equally over that
        channel's touches in the journey (``a > b > a`` with 1 conversion: ``a`` earns 1/4 at
        position 1 and 1/4 at position 3, ``b`` 1/2 at position 2). Positions are 1-based
        touches as written in the path. Per-channel totals are exactly the unordered values,
        and no ``2^n`` coalitions are enumerated (linear in the touches).

    Returns
    -------
    DataFrame, or (DataFrame, DataFrame) with ``ordered=True``
        ``channel, shapley`` (the value) and ``share`` (shapley / sum), one row per channel.
        With ``ordered=True`` a second, long table follows: ``channel, position, shapley,
        share`` — one row per channel and touch position with credit > 0 (``share`` of the total
        over all channels and positions); summed by channel it gives the first table.
    """
    if value_function not in ("conversion_rate", "conversions"):
        raise ValueError("value_function must be 'conversion_rate' or 'conversions'")
    if nulls is not None and nulls not in paths.columns and nulls == "nulls":
        nulls = None
    if value_function == "conversion_rate" and nulls is None:
        raise DataError(
            "shapley_attribution: conversion rates need the nulls column",
            column="nulls",
            fix="pass nulls=... or value_function='conversions'",
        )
    if ordered and value_function != "conversions":
        raise ValueError(
            "ordered=True needs value_function='conversions' (Zhao et al.'s per-journey game); "
            "conversion rates have no per-journey split over touch positions"
        )
    t = check_paths(paths, path, conversions, None, nulls=nulls, sep=sep)
    paths = paths.reset_index(drop=True)
    channels = sorted(set(t["channel"]))
    n = len(channels)
    if ordered:
        long = _ordered_shapley(t, pd.to_numeric(paths[conversions]).to_numpy(float), channels)
        total = long["shapley"].sum()
        long["share"] = long["shapley"] / total if total != 0 else 0.0
        out = long.groupby("channel")["shapley"].sum().reindex(channels, fill_value=0.0)
        out = out.rename_axis("channel").reset_index()
        out["share"] = out["shapley"] / total if total != 0 else 0.0
        return out, long
    if n > max_channels:
        raise ValueError(
            f"{n} channels: exact Shapley needs 2^{n} coalitions; group channels or raise max_channels"
        )
    bit = t["channel"].map({c: i for i, c in enumerate(channels)}).to_numpy()
    mask = np.zeros(len(paths), dtype=np.int64)
    np.bitwise_or.at(mask, t["path_id"].to_numpy(), np.left_shift(1, bit).astype(np.int64))
    size = 1 << n
    conv = np.bincount(
        mask, weights=pd.to_numeric(paths[conversions]).to_numpy(float), minlength=size
    )
    total = conv.copy()
    if nulls is not None:
        total += np.bincount(
            mask, weights=pd.to_numeric(paths[nulls]).to_numpy(float), minlength=size
        )
    for i in range(n):  # zeta transform: f(S) = sum over subsets of S
        for f in (conv, total):
            view = f.reshape(-1, 2, 1 << i)
            view[:, 1, :] += view[:, 0, :]
    if value_function == "conversions":
        v = conv
    else:
        v = np.divide(conv, total, out=np.zeros(size), where=total > 0)
    masks = np.arange(size)
    popcount = np.zeros(size, dtype=np.int64)
    for i in range(n):
        popcount += (masks >> i) & 1
    from math import factorial

    weight = np.array([factorial(s) * factorial(n - s - 1) / factorial(n) for s in range(n)])
    phi = np.empty(n)
    for i in range(n):
        without = masks[(masks >> i) & 1 == 0]
        phi[i] = float((weight[popcount[without]] * (v[without | (1 << i)] - v[without])).sum())
    out = pd.DataFrame({"channel": channels, "shapley": phi})
    out["share"] = phi / phi.sum() if phi.sum() != 0 else 0.0
    return out
