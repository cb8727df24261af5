"""Rule-based attribution: first and last touch, last non-direct, linear, time decay, U-shaped.

It takes the path table of :meth:`analysis.Journeys.channel_paths` (``path, conversions, nulls,
value``; channels joined by ``" > "``, ChannelAttribution's layout).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.schema import check_paths

#: Rule-based models of :func:`heuristic_attribution`, in output order.
HEURISTIC_MODELS: tuple[str, ...] = (
    "first_touch",
    "last_touch",
    "last_non_direct",
    "linear",
    "time_decay",
    "position_based",
)


def heuristic_attribution(
    paths: pd.DataFrame,
    *,
    models: tuple[str, ...] | list[str] = HEURISTIC_MODELS,
    path: str = "path",
    conversions: str = "conversions",
    value: str | None = "value",
    sep: str = ">",
    direct: tuple[str, ...] | list[str] = ("direct",),
    half_life: float = 2.0,
    position_weights: tuple[float, float, float] = (0.4, 0.2, 0.4),
) -> pd.DataFrame:
    """Rule-based attribution of conversions (and conversion value) to channels.

    Parameters
    ----------
    paths : DataFrame
        ``path, conversions[, value]`` — one row per distinct path (as
        :meth:`analysis.Journeys.channel_paths`); rows with 0 conversions get no credit.
    models : sequence of str
        Any of :data:`HEURISTIC_MODELS`:

        - ``first_touch`` / ``last_touch``: all credit to the first / last touch;
        - ``last_non_direct``: to the last touch whose channel is not in ``direct`` (the last
          touch when every touch is direct);
        - ``linear``: equal credit to every touch (a channel touched twice gets two shares), as
          ChannelAttribution's ``linear_touch``;
        - ``time_decay``: touch ``i`` of ``n`` weighs ``2 ** (-(n - 1 - i) / half_life)`` —
          the half-life is in *touches* before the conversion, because a path table carries no
          timestamps;
        - ``position_based`` (U-shaped): ``position_weights`` = (first, middle, last) shares,
          the middle share split evenly over the middle touches; a path of two touches gives
          ``first / (first + last)`` and ``last / (first + last)``; one touch gets everything.
    path, conversions, value : str
        Column names; ``value=None`` attributes conversions only.
    sep : str
        Channel separator (surrounding spaces ignored).

    Returns
    -------
    DataFrame
        One row per channel (sorted by name): ``channel``, then for every model
        ``<model>_conversions`` and (with ``value``) ``<model>_value`` — ChannelAttribution's
        layout. Each model's column sums to the total conversions (value).
    """
    unknown = [m for m in models if m not in HEURISTIC_MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; choose from {list(HEURISTIC_MODELS)}")
    if half_life <= 0:
        raise ValueError("half_life must be > 0 (touches)")
    if (
        len(position_weights) != 3
        or min(position_weights) < 0
        or not np.isclose(sum(position_weights), 1.0)
    ):
        raise ValueError(
            "position_weights must be three shares >= 0 (first, middle, last) that sum to 1"
        )
    if value is not None and value not in paths.columns and value == "value":
        value = None  # default column absent: conversions only
    t = check_paths(paths, path, conversions, value, sep=sep)
    paths = paths.reset_index(drop=True)
    pos, n = t["position"].to_numpy(), t["length"].to_numpy()
    first, last = pos == 0, pos == n - 1
    weights: dict[str, np.ndarray] = {}
    weights["first_touch"] = first.astype(float)
    weights["last_touch"] = last.astype(float)
    # last non-direct: the largest position whose channel is not direct (else the last touch)
    nd = ~t["channel"].isin(list(direct)).to_numpy()
    nd_pos = (
        pd.Series(np.where(nd, pos, -1))
        .groupby(t["path_id"].to_numpy())
        .transform("max")
        .to_numpy()
    )
    target = np.where(nd_pos >= 0, nd_pos, n - 1)
    weights["last_non_direct"] = (pos == target).astype(float)
    weights["linear"] = 1.0 / n
    decay = 2.0 ** (-(n - 1 - pos) / half_life)
    weights["time_decay"] = (
        decay / pd.Series(decay).groupby(t["path_id"].to_numpy()).transform("sum").to_numpy()
    )
    w_first, w_mid, w_last = position_weights
    middle = ~first & ~last
    pb = np.where(
        n == 1,
        1.0,
        np.where(
            n == 2,
            np.where(first, w_first, w_last) / (w_first + w_last),
            np.where(first, w_first, np.where(last, w_last, w_mid / np.maximum(n - 2, 1))),
        ),
    )
    weights["position_based"] = np.where(middle | first | last, pb, 0.0)

    conv = pd.to_numeric(paths[conversions]).to_numpy(float)[t["path_id"].to_numpy()]
    cols: dict[str, np.ndarray] = {}
    for m in models:
        cols[f"{m}_conversions"] = weights[m] * conv
        if value is not None:
            val = pd.to_numeric(paths[value]).to_numpy(float)[t["path_id"].to_numpy()]
            cols[f"{m}_value"] = weights[m] * val
    credit = pd.DataFrame(cols)
    credit["channel"] = t["channel"].to_numpy()
    return credit.groupby("channel", sort=True).sum().reset_index()
