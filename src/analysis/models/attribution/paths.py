"""Path models: rule-based credit, Markov removal effects, Shapley values.

They take the path table of :meth:`analysis.Journeys.channel_paths` (``path, conversions, nulls,
value``; channels joined by ``" > "``, ChannelAttribution's layout).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.schema import DataError

#: Rule-based models of :func:`heuristic_attribution`, in output order.
HEURISTIC_MODELS: tuple[str, ...] = (
    "first_touch",
    "last_touch",
    "last_non_direct",
    "linear",
    "time_decay",
    "position_based",
)


#: State names ChannelAttribution (and our chains) reserve; a channel may not be called so.
_RESERVED_STATES = ("(start)", "(conversion)", "(null)", "(dropoff)", "(open)")
_RESERVED_WORDS = ("start", "conversion", "null")  # case-insensitive
#: Separators people use instead of the one passed (checked when no path contains ``sep``).
_OTHER_SEPS = ("->", "→", ">", "|", ",", ";", "/")


def check_paths(
    paths: pd.DataFrame,
    path: str,
    conversions: str,
    value: str | None,
    *,
    nulls: str | None = None,
    sep: str = ">",
) -> pd.DataFrame:
    """Check a path table; every problem found is reported in one :class:`DataError`.

    Returns the touches (:func:`explode_paths` of ``paths`` with a fresh 0-based index) so the
    caller need not split the paths again.
    """
    if not isinstance(paths, pd.DataFrame):
        raise TypeError(
            f"paths: expected a DataFrame (Journeys.channel_paths()), got {type(paths).__name__}"
        )
    need = [c for c in (path, conversions, value, nulls) if c is not None]
    missing = [c for c in need if c not in paths.columns]
    if missing:
        raise DataError(
            f"path table: missing column(s) {missing}",
            column=missing,
            fix="pass jr.channel_paths() or name the columns: heuristic_attribution(df, path=..., conversions=..., value=...)",
        )
    from analysis.schema import combine_errors

    def rows_of(mask: np.ndarray) -> list[int]:
        return [int(i) + 1 for i in np.flatnonzero(mask)[:10]]

    errors: list[DataError] = []
    conv_ok = True
    for c in need[1:]:
        v = pd.to_numeric(paths[c], errors="coerce")
        bad = (v.isna() | (v < 0) | np.isinf(v)).to_numpy()
        if bad.any():
            conv_ok = conv_ok and c != conversions
            errors.append(
                DataError(
                    f"path table: {int(bad.sum())} value(s) of {c!r} are missing or negative (or infinite)",
                    column=c,
                    rows=rows_of(bad),
                    fix="conversions, nulls and values are finite numbers >= 0",
                )
            )
    text = paths[path].astype(str).str.strip()
    empty = (paths[path].isna() | (text == "")).to_numpy()
    if empty.any():
        errors.append(
            DataError(
                f"path table: {int(empty.sum())} empty path(s)",
                column=path,
                rows=rows_of(empty),
                fix="drop journeys without a channel touch, or give them a channel such as '(none)'",
            )
        )
    touches = explode_paths(paths.reset_index(drop=True), path, sep)
    ch = touches["channel"]
    code = ch.cat.codes.to_numpy()
    names = list(ch.cat.categories)  # the distinct channels (sorted): per-row work only on a hit
    blank = code == names.index("") if "" in names else np.zeros(len(code), dtype=bool)
    in_path = np.zeros(len(paths), dtype=bool)
    in_path[touches["path_id"].to_numpy()[blank]] = True
    in_path &= ~empty
    if in_path.any():
        errors.append(
            DataError(
                f"path table: {int(in_path.sum())} path(s) with an empty channel (two separators in a row, "
                f"or one at the start or end)",
                column=path,
                rows=rows_of(in_path),
                fix=f"every channel between {sep!r} separators needs a name: 'a > b', not 'a >  > b' or 'a > b >'",
            )
        )
    # a separator other than `sep`: no path contains `sep` (outside the other one), many the other
    filled = text[~empty]
    if len(filled):
        # the paths' bytes back to back: a separator absent there is in no path (no join needed)
        raw = _text_bytes(_path_text(filled))
        joined = None
        for other in _OTHER_SEPS:
            if other == sep or other.encode() not in raw:
                continue
            if joined is None:
                joined = "\n".join(filled.tolist())
            if other not in joined or sep in joined.replace(other, ""):
                continue
            has_other = filled.str.contains(other, regex=False)
            rest = filled.str.replace(other, "", regex=False) if sep in other else filled
            if has_other.mean() >= 0.2 and not rest.str.contains(sep, regex=False).any():
                rows = np.zeros(len(paths), dtype=bool)
                rows[np.flatnonzero(~empty)[has_other.to_numpy()]] = True
                errors.append(
                    DataError(
                        f"path table: paths look separated by {other!r}, not {sep!r} "
                        f"({int(has_other.sum())} of {len(filled)} paths contain {other!r})",
                        column=path,
                        rows=rows_of(rows),
                        fix=f"pass sep={other!r}",
                    )
                )
                break
        else:
            # "a->b" split on ">" leaves channels ending in "-"
            ends = np.array([c.endswith("-") for c in names], dtype=bool)
            if sep.strip() == ">" and ends.any():
                dash = ends[code] & (touches["position"] < touches["length"] - 1).to_numpy()
                if dash.any():
                    rows = np.zeros(len(paths), dtype=bool)
                    rows[touches["path_id"].to_numpy()[dash]] = True
                    errors.append(
                        DataError(
                            f"path table: {int(rows.sum())} path(s) look separated by '->', not {sep!r} "
                            "(channels end in '-')",
                            column=path,
                            rows=rows_of(rows),
                            fix="pass sep='->'",
                        )
                    )
    # reserved state names as channels
    reserved = [
        c for c in names if c != "" and (c in _RESERVED_STATES or c.lower() in _RESERVED_WORDS)
    ]
    if reserved:
        hit = np.zeros(len(paths), dtype=bool)
        hit[touches["path_id"].to_numpy()[ch.isin(reserved).to_numpy()]] = True
        errors.append(
            DataError(
                f"path table: channel(s) {sorted(reserved)} use a reserved state name (the chain's "
                f"{', '.join(_RESERVED_STATES)}; start, conversion, null in any case)",
                column=path,
                rows=rows_of(hit),
                fix="rename the channel(s), e.g. 'null' -> 'null_channel'",
            )
        )
    if conv_ok and float(pd.to_numeric(paths[conversions]).sum()) == 0:
        errors.append(
            DataError(
                f"path table: no conversions ({conversions!r} sums to 0): nothing to attribute "
                "(removal effects and Shapley shares are undefined)",
                column=conversions,
                fix="pass paths that include converting journeys, or the right column: conversions=...",
            )
        )
    if errors:
        raise combine_errors(errors)
    return touches


def _path_text(col: pd.Series):
    """The path column as one Arrow string array (missing paths read ``"nan"``, other values as
    ``str``), without a Python ``str`` per row when the column is already Arrow-backed.
    """
    import pyarrow as pa

    if isinstance(col.dtype, pd.StringDtype):
        arr = pa.array(col, from_pandas=True)
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        return arr.fill_null("nan") if arr.null_count else arr
    return pa.array(col.to_numpy(dtype=object, na_value="nan").astype(str))


def _text_bytes(arr) -> bytes:
    """The UTF-8 bytes of all strings of an Arrow string array, back to back (no separators)."""
    import pyarrow as pa

    if len(arr) == 0:
        return b""
    _, offsets, data = arr.buffers()
    width = 8 if pa.types.is_large_string(arr.type) else 4
    off = np.frombuffer(
        offsets,
        dtype=np.int64 if width == 8 else np.int32,
        count=len(arr) + 1,
        offset=arr.offset * width,
    )
    return b"" if data is None else data.to_pybytes()[int(off[0]) : int(off[-1])]


def explode_paths(paths: pd.DataFrame, path: str = "path", sep: str = ">") -> pd.DataFrame:
    """One row per touch: ``path_id`` (the row of ``paths``), ``position`` (0-based),
    ``length`` (touches in the path) and ``channel``. Separators may carry spaces
    (``"a > b"`` and ``"a>b"`` are the same path).
    """
    import pyarrow.compute as pc

    if not sep and len(paths):
        raise ValueError("empty separator")
    if len(
        paths
    ):  # split in Arrow; only the distinct raw pieces (a few per channel) become Python str
        pieces = pc.split_pattern(_path_text(paths[path]), sep)
        length = pc.list_value_length(pieces).to_numpy().astype(np.int64)
        enc = pc.list_flatten(pieces).dictionary_encode()
        raw_code = enc.indices.to_numpy().astype(np.int64)
        stripped = [c.strip() for c in enc.dictionary.to_pylist()]
    else:
        length, raw_code, stripped = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), []
    names = sorted(set(stripped))
    where = {c: i for i, c in enumerate(names)}
    codes = np.array([where[c] for c in stripped], dtype=np.int64)[raw_code]
    start = np.repeat(np.cumsum(length) - length, length)
    return pd.DataFrame(
        {
            "path_id": np.repeat(paths.index.to_numpy(), length),
            "channel": pd.Categorical.from_codes(codes, categories=pd.Index(names, dtype=object)),
            "position": np.arange(len(codes), dtype=np.int64) - start,
            "length": np.repeat(length, length),
        }
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


def _transition_counts(
    paths: pd.DataFrame,
    path: str,
    conversions: str,
    nulls: str | None,
    sep: str,
    order: int = 1,
    touches: pd.DataFrame | None = None,
):
    """Order-``k`` transition counts over states ``(start)``, channel states, ``(conversion)``,
    ``(null)`` — ChannelAttribution's conventions.

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
    """The count matrix of :func:`_transition_counts` from each path's state sequence
    (``pid``, ``codes``: rows in path order, self-transitions already dropped).
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
    """P(absorbed in conversion from start) for transition matrices ``P`` (..., S, S); with
    ``removed`` (a channel state index per leading batch), that channel becomes a dead end.
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
    """P(conversion from start) for transition matrices ``P`` (..., S, S), as is and with each
    row of ``dead`` (k, S - 2: transient states a removal kills) removed — from one inverse per
    matrix instead of ``k + 1`` solves.

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
    _, member, channels, counts = _transition_counts(
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
