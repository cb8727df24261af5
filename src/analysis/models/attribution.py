"""Attribution: which channels move people to convert.

Every entry point takes the path table of :meth:`analysis.Journeys.channel_paths`
(``path, conversions, nulls, value``; channels joined by ``" > "``, ChannelAttribution's layout),
so paths from any source can be attributed.

So far: :func:`heuristic_attribution` (rule-based models). Markov removal effects, Shapley values
and the Bayesian model follow (issue 4).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.schema import DataError

__all__ = ["HEURISTIC_MODELS", "explode_paths", "heuristic_attribution", "markov_attribution", "shapley_attribution"]

#: Rule-based models of :func:`heuristic_attribution`, in output order.
HEURISTIC_MODELS: tuple[str, ...] = (
    "first_touch", "last_touch", "last_non_direct", "linear", "time_decay", "position_based",
)


def _check_paths(paths: pd.DataFrame, path: str, conversions: str, value: str | None) -> None:
    if not isinstance(paths, pd.DataFrame):
        raise TypeError(f"paths: expected a DataFrame (Journeys.channel_paths()), got {type(paths).__name__}")
    need = [c for c in (path, conversions, value) if c is not None]
    missing = [c for c in need if c not in paths.columns]
    if missing:
        raise DataError(
            f"path table: missing column(s) {missing}", column=missing,
            fix="pass jr.channel_paths() or name the columns: heuristic_attribution(df, path=..., conversions=..., value=...)",
        )
    for c in need[1:]:
        v = pd.to_numeric(paths[c], errors="coerce")
        bad = v.isna() | (v < 0)
        if bad.any():
            raise DataError(
                f"path table: {int(bad.sum())} value(s) of {c!r} are missing or negative",
                column=c, rows=[int(i) + 1 for i in np.flatnonzero(bad.to_numpy())[:10]],
                fix="conversions and values are numbers >= 0",
            )
    empty = paths[path].isna() | (paths[path].astype(str).str.strip() == "")
    if empty.any():
        raise DataError(
            f"path table: {int(empty.sum())} empty path(s)", column=path,
            rows=[int(i) + 1 for i in np.flatnonzero(empty.to_numpy())[:10]],
            fix="drop journeys without a channel touch, or give them a channel such as '(none)'",
        )


def explode_paths(paths: pd.DataFrame, path: str = "path", sep: str = ">") -> pd.DataFrame:
    """One row per touch: ``path_id`` (the row of ``paths``), ``position`` (0-based),
    ``length`` (touches in the path) and ``channel``. Separators may carry spaces
    (``"a > b"`` and ``"a>b"`` are the same path)."""
    touches = paths[path].astype(str).str.split(sep, regex=False).explode()
    out = pd.DataFrame({"path_id": touches.index.to_numpy(), "channel": touches.str.strip().to_numpy()})
    out["position"] = out.groupby("path_id").cumcount().to_numpy()
    out["length"] = out.groupby("path_id")["position"].transform("size").to_numpy()
    return out


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
    if len(position_weights) != 3 or min(position_weights) < 0 or not np.isclose(sum(position_weights), 1.0):
        raise ValueError("position_weights must be three shares >= 0 (first, middle, last) that sum to 1")
    if value is not None and value not in paths.columns and value == "value":
        value = None  # default column absent: conversions only
    _check_paths(paths, path, conversions, value)
    paths = paths.reset_index(drop=True)

    t = explode_paths(paths, path, sep)
    pos, n = t["position"].to_numpy(), t["length"].to_numpy()
    first, last = pos == 0, pos == n - 1
    weights: dict[str, np.ndarray] = {}
    weights["first_touch"] = first.astype(float)
    weights["last_touch"] = last.astype(float)
    # last non-direct: the largest position whose channel is not direct (else the last touch)
    nd = ~t["channel"].isin(list(direct)).to_numpy()
    nd_pos = pd.Series(np.where(nd, pos, -1)).groupby(t["path_id"].to_numpy()).transform("max").to_numpy()
    target = np.where(nd_pos >= 0, nd_pos, n - 1)
    weights["last_non_direct"] = (pos == target).astype(float)
    weights["linear"] = 1.0 / n
    decay = 2.0 ** (-(n - 1 - pos) / half_life)
    weights["time_decay"] = decay / pd.Series(decay).groupby(t["path_id"].to_numpy()).transform("sum").to_numpy()
    w_first, w_mid, w_last = position_weights
    middle = ~first & ~last
    pb = np.where(n == 1, 1.0,
         np.where(n == 2, np.where(first, w_first, w_last) / (w_first + w_last),
         np.where(first, w_first, np.where(last, w_last, w_mid / np.maximum(n - 2, 1)))))
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


# ===================================================================== comparing attribution models
# compare_attribution: every model's credit in one tidy table; holdout_split and
# attribution_holdout: how well each model's view of a path predicts conversion on held-out journeys.

#: Columns of :func:`compare_attribution`'s long table.
COMPARISON_COLUMNS: tuple[str, ...] = ("channel", "model", "conversions", "lower", "upper", "share")


def _comparison_rows(name: str, table, total_conversions: float | None) -> tuple[list[pd.DataFrame], list[str]]:
    """The long rows of one input table of :func:`compare_attribution`, and its problems."""
    if not isinstance(table, pd.DataFrame):
        return [], [f"{name!r}: expected a DataFrame, got {type(table).__name__}"]
    if "channel" not in table.columns:
        return [], [f"{name!r}: no 'channel' column (columns: {list(table.columns)})"]
    channel = table["channel"].astype(str).to_numpy()
    if len(set(channel)) != len(channel):
        return [], [f"{name!r}: channels repeat; give one row per channel"]

    def rows(model: str, conv, lower=None, upper=None) -> pd.DataFrame:
        nan = np.full(len(channel), np.nan)
        return pd.DataFrame({
            "channel": channel, "model": model,
            "conversions": pd.to_numeric(conv, errors="coerce").to_numpy(float),
            "lower": nan if lower is None else pd.to_numeric(lower, errors="coerce").to_numpy(float),
            "upper": nan if upper is None else pd.to_numeric(upper, errors="coerce").to_numpy(float),
        })

    cols = set(table.columns)
    if "conversions" in cols:  # markov_attribution, the Bayesian model, any channel/conversions table
        lo, hi = "conversions_lower", "conversions_upper"
        if (lo in cols) != (hi in cols):
            return [], [f"{name!r}: has only one of {lo!r} and {hi!r}; give both or neither"]
        return [rows(name, table["conversions"], table.get(lo), table.get(hi))], []
    heuristic = [c for c in table.columns if isinstance(c, str) and c.endswith("_conversions")]
    if heuristic:  # heuristic_attribution: one model per <model>_conversions column
        return [rows(c[: -len("_conversions")], table[c]) for c in heuristic], []
    if "share" in cols:  # shapley_attribution: shares of the total conversions
        if total_conversions is None:
            return [], [f"{name!r}: a table of shares (shapley_attribution) needs total_conversions"]
        return [rows(name, table["share"] * float(total_conversions))], []
    return [], [f"{name!r}: found none of 'conversions', '<model>_conversions' or 'share' "
                f"(columns: {list(table.columns)})"]


def compare_attribution(
    tables: dict[str, pd.DataFrame],
    total_conversions: float | None = None,
    *,
    fill_missing: float | None = 0.0,
    wide: bool = False,
) -> pd.DataFrame:
    """Every model's attributed conversions side by side, in one tidy (long) table.

    Parameters
    ----------
    tables : dict of str to DataFrame
        Model name → its result table, one row per ``channel``. Recognised, in this order:

        - a ``conversions`` column (:func:`markov_attribution`, the Bayesian model, or any table
          ``channel, conversions[, conversions_lower, conversions_upper]``): one model named by
          the key (e.g. ``"markov_1"``); ``conversions_lower/_upper`` become ``lower/upper``;
        - ``<model>_conversions`` columns (:func:`heuristic_attribution`): one model per column,
          named by the column's prefix (``"last_touch"``…), whatever the key;
        - a ``share`` column (:func:`shapley_attribution`): ``share × total_conversions``, named
          by the key.

        All problems (a table without ``channel``, an unknown layout, shares without a total,
        repeated model names) are reported together in one :class:`~analysis.schema.DataError`.
    total_conversions : float, optional
        The conversions to hand out for tables of shares (``paths.conversions.sum()``).
    fill_missing : float or None, default 0.0
        A channel that some models list and another does not: that model's ``conversions``
        and ``share`` are set to ``fill_missing`` (0: the model gave it no credit, which is what
        the heuristic and Markov models mean when a channel never appears in their paths), and
        its ``lower/upper`` too when the model has intervals. ``None`` leaves the row NaN.
    wide : bool, default False
        Return the pivot instead: channels (rows) × models (columns) of ``conversions``.

    Returns
    -------
    DataFrame
        ``channel, model, conversions, lower, upper, share`` — one row per channel and model,
        models in input order, channels sorted by name. ``lower/upper`` are NaN for models
        without intervals; ``share`` is the channel's part of that model's total.
    """
    if not isinstance(tables, dict) or not tables:
        raise TypeError("tables: expected a non-empty dict of model name -> result table")
    parts: list[pd.DataFrame] = []
    problems: list[str] = []
    for name, table in tables.items():
        p, bad = _comparison_rows(str(name), table, total_conversions)
        parts += p
        problems += bad
    names = pd.Series([p["model"].iloc[0] for p in parts if len(p)], dtype=object)
    dup = sorted(set(names[names.duplicated()]))
    if dup:
        problems.append(f"model name(s) {dup} appear twice (two heuristic tables?); rename the keys or columns")
    if problems:
        raise DataError("compare_attribution: " + "; ".join(problems), column="channel",
                        fix="pass results of heuristic_attribution, markov_attribution, shapley_attribution "
                            "or tables channel, conversions[, conversions_lower, conversions_upper]")
    long = pd.concat(parts, ignore_index=True).assign(_listed=True)
    models = list(dict.fromkeys(long["model"]))
    channels = sorted(set(long["channel"]))
    has_interval = long.groupby("model", sort=False)["lower"].apply(lambda s: bool(s.notna().any()))
    full = pd.MultiIndex.from_product([models, channels], names=["model", "channel"])
    long = long.set_index(["model", "channel"]).reindex(full).reset_index()
    if fill_missing is not None:
        missing = long["_listed"].isna().to_numpy()
        long.loc[missing, "conversions"] = fill_missing
        with_iv = missing & long["model"].map(has_interval).to_numpy(bool)
        long.loc[with_iv, ["lower", "upper"]] = fill_missing
    totals = long.groupby("model", sort=False)["conversions"].transform("sum")
    long["share"] = np.divide(long["conversions"], totals, out=np.full(len(long), np.nan), where=totals.to_numpy() != 0)
    long = long[list(COMPARISON_COLUMNS)]
    if wide:
        return long.pivot(index="channel", columns="model", values="conversions")[models]
    return long


def _integer_counts(paths: pd.DataFrame, cols: list[str]) -> dict[str, np.ndarray]:
    out = {}
    for c in cols:
        v = pd.to_numeric(paths[c]).to_numpy(float)
        if not np.allclose(v, np.round(v)):
            raise DataError(f"path table: {c!r} must count journeys (whole numbers) to split them", column=c,
                            fix="pass journey counts, not rates or weights")
        out[c] = np.round(v).astype(np.int64)
    return out


def holdout_split(
    paths: pd.DataFrame,
    *,
    test_share: float = 0.3,
    seed: int = 0,
    conversions: str = "conversions",
    nulls: str = "nulls",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split the journeys of a path table at random into train and test.

    Every journey goes to test with probability ``test_share``, independently (binomial
    thinning of each row's ``conversions`` and ``nulls``), so train + test counts equal the
    input, row by row. Rows left with no journey are dropped from each part; other columns are
    kept (``value`` is split in proportion to the conversions). Seeded: the same seed gives the
    same split.
    """
    if not 0 < test_share < 1:
        raise ValueError("test_share must be in (0, 1)")
    paths = paths.reset_index(drop=True)
    n = _integer_counts(paths, [conversions, nulls])
    rng = np.random.default_rng(seed)
    test_c = rng.binomial(n[conversions], test_share)
    test_n = rng.binomial(n[nulls], test_share)
    parts = []
    for c, m in ((n[conversions] - test_c, n[nulls] - test_n), (test_c, test_n)):
        part = paths.copy()
        if "value" in part.columns:
            frac = np.divide(c, n[conversions], out=np.zeros(len(part)), where=n[conversions] > 0)
            part["value"] = pd.to_numeric(part["value"]).to_numpy(float) * frac
        part[conversions] = c
        part[nulls] = m
        parts.append(part[(c + m) > 0].reset_index(drop=True))
    return parts[0], parts[1]


def _touches(paths: pd.DataFrame, path: str, sep: str) -> list[list[str]]:
    return [[c.strip() for c in p.split(sep)] for p in paths[path].astype(str)]


def _holdout_predictions(train: pd.DataFrame, test: pd.DataFrame, *, orders, sep: str, path: str,
                         conversions: str, nulls: str, smoothing: float) -> dict[str, np.ndarray]:
    """P(convert | path) for every row of ``test`` by each model of :func:`attribution_holdout`,
    fitted on ``train``."""
    tc, tn = train[conversions].to_numpy(float), train[nulls].to_numpy(float)
    rate = tc.sum() / (tc.sum() + tn.sum())
    tr_touch, te_touch = _touches(train, path, sep), _touches(test, path, sep)

    def by_key(keys_train, keys_test, prior: float, strength: float, fallback: float) -> np.ndarray:
        g = pd.DataFrame({"k": keys_train, "c": tc, "n": tc + tn}).groupby("k").sum()
        c = g["c"].reindex(keys_test).to_numpy(float)
        n = g["n"].reindex(keys_test).to_numpy(float)
        return np.where(np.isnan(n), fallback, (c + strength * prior) / (n + strength))

    preds: dict[str, np.ndarray] = {}
    for k in orders:
        k = int(k)
        states, _, _, counts = _transition_counts(train, path, conversions, nulls, sep, order=k)
        conv_s, null_s = counts.shape[0] - 2, counts.shape[0] - 1
        idx = {s: i + 1 for i, s in enumerate(states)}
        p = np.full(len(test), rate)
        for r, t in enumerate(te_touch):
            i = idx.get(" > ".join(t[-k:]))
            if i is not None:
                out = counts[i, conv_s] + counts[i, null_s]
                if out > 0:
                    p[r] = counts[i, conv_s] / out
        preds[f"markov_{k}"] = p
    preds["last_touch"] = by_key([t[-1] for t in tr_touch], [t[-1] for t in te_touch], 0.5, 2.0, rate)
    preds["channel_set"] = by_key([" > ".join(sorted(set(t))) for t in tr_touch],
                                  [" > ".join(sorted(set(t))) for t in te_touch], rate, smoothing, rate)
    preds["base_rate"] = np.full(len(test), rate)
    return preds


def attribution_holdout(
    paths: pd.DataFrame,
    *,
    test_share: float = 0.3,
    seed: int = 0,
    orders: tuple[int, ...] | list[int] = (1, 2),
    sep: str = ">",
    path: str = "path",
    conversions: str = "conversions",
    nulls: str = "nulls",
    smoothing: float = 2.0,
) -> pd.DataFrame:
    """Held-out predictive scores: how well each model's view of a path predicts conversion.

    The journeys are split with :func:`holdout_split`; each model is fitted on train and
    predicts ``P(convert | path)`` for every test journey:

    - ``markov_<k>`` (one per ``orders``): from the train order-``k`` transition counts
      (:func:`markov_attribution`'s chain), ``P(last state → conversion) / (P(last state →
      conversion) + P(last state → null))`` — raw frequencies, as the attribution uses them;
      a last state never seen exiting in train backs off to the overall train rate. For
      ``k = 1`` this is the unsmoothed conversion rate of paths ending in that channel;
    - ``last_touch``: the train conversion rate of paths with that last channel, Beta(1, 1)
      smoothed (``(conversions + 1) / (journeys + 2)``); an unseen last channel gets the
      overall train rate;
    - ``channel_set``: the train conversion rate of journeys with exactly that set of channels
      (order ignored, Shapley's view of a journey), shrunk toward the overall rate by
      ``smoothing`` pseudo-journeys;
    - ``base_rate``: the overall train rate for every journey (AUC 0.5 by construction).

    Scores weight every path by its test journeys: log-loss
    (:func:`sklearn.metrics.log_loss`, probabilities clipped to ``[1e-6, 1 - 1e-6]``; lower is
    better) and ROC AUC (:func:`sklearn.metrics.roc_auc_score`; NaN when the test part has only
    one class).

    Returns
    -------
    DataFrame
        ``model, log_loss, auc, n_test_journeys``, one row per model (Markov orders first,
        ``base_rate`` last).
    """
    from sklearn.metrics import log_loss, roc_auc_score

    if smoothing <= 0:
        raise ValueError("smoothing must be > 0 (pseudo-journeys)")
    if any(int(k) < 1 for k in orders):
        raise ValueError("orders must be >= 1")
    _check_paths(paths, path, conversions, None)
    if nulls not in paths.columns:
        raise DataError(f"path table: missing column(s) [{nulls!r}]", column=nulls,
                        fix="holdout scores need the journeys that did not convert (nulls)")
    train, test = holdout_split(paths, test_share=test_share, seed=seed, conversions=conversions, nulls=nulls)
    if train.empty or test.empty:
        raise ValueError("too few journeys to split into train and test")
    preds = _holdout_predictions(train, test, orders=orders, sep=sep, path=path, conversions=conversions,
                                 nulls=nulls, smoothing=smoothing)

    ec, en = test[conversions].to_numpy(float), test[nulls].to_numpy(float)
    y = np.concatenate([np.ones(len(test)), np.zeros(len(test))])
    w = np.concatenate([ec, en])
    keep = w > 0
    rows = []
    for name, p in preds.items():
        q = np.clip(np.concatenate([p, p])[keep], 1e-6, 1 - 1e-6)
        yy, ww = y[keep], w[keep]
        auc = roc_auc_score(yy, q, sample_weight=ww) if len(set(yy)) == 2 else np.nan
        rows.append({"model": name, "log_loss": log_loss(yy, q, sample_weight=ww, labels=[0, 1]),
                     "auc": float(auc), "n_test_journeys": int(round(ww.sum()))})
    return pd.DataFrame(rows)


# ===================================================================== end of: comparing attribution models


def _transition_counts(paths: pd.DataFrame, path: str, conversions: str, nulls: str | None, sep: str,
                       order: int = 1):
    """Order-``k`` transition counts over states ``(start)``, channel states, ``(conversion)``,
    ``(null)`` — ChannelAttribution's conventions.

    A state is a window of ``k`` consecutive touches (the whole path when it is shorter). Every
    path is start → s1 → … → sm → conversion (weight: its conversions) and → null (its nulls);
    each move carries conversions + nulls. A move from a state to itself is not counted (for
    ``k = 1``: repeated consecutive touches count once).

    Returns the state labels (``" > "``-joined windows), a boolean state × channel membership
    matrix, the channel names and the count matrix.
    """
    t = explode_paths(paths, path, sep)
    pid = t["path_id"].to_numpy()
    pos = t["position"].to_numpy()
    n = t["length"].to_numpy()
    k = int(order)
    keep = (pos <= n - k) | ((n < k) & (pos == 0))  # window starts
    parts = [t["channel"]]
    for j in range(1, k):
        parts.append(t.groupby("path_id")["channel"].shift(-j))
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
    n_states = len(states) + 3  # start, states, conversion, null
    conv_s, null_s = n_states - 2, n_states - 1
    pid = w["path_id"].to_numpy()
    state = codes + 1
    w_conv = pd.to_numeric(paths[conversions]).to_numpy(float)
    w_null = pd.to_numeric(paths[nulls]).to_numpy(float) if nulls is not None else np.zeros(len(paths))
    total = (w_conv + w_null)[pid]
    first = np.concatenate([[True], pid[1:] != pid[:-1]])
    last = np.concatenate([pid[1:] != pid[:-1], [True]])
    prev = np.where(first, 0, np.concatenate([[0], state[:-1]]))
    counts = np.zeros((n_states, n_states))
    np.add.at(counts, (prev, state), total)
    np.add.at(counts, (state[last], conv_s), w_conv[pid[last]])
    np.add.at(counts, (state[last], null_s), w_null[pid[last]])
    return list(states), member, channels, counts


def _conversion_from_start(P: np.ndarray, removed: np.ndarray | None = None) -> np.ndarray:
    """P(absorbed in conversion from start) for transition matrices ``P`` (..., S, S); with
    ``removed`` (a channel state index per leading batch), that channel becomes a dead end."""
    S = P.shape[-1]
    transient = S - 2
    Q = P[..., :transient, :transient].copy()
    R = P[..., :transient, S - 2].copy()
    if removed is not None:  # (batch, transient) mask of dead states
        Q = np.where(removed[:, None, :], 0.0, Q)  # moving into a removed state ends the journey
        R = np.where(removed, 0.0, R)
    b_ = np.linalg.solve(np.eye(transient) - Q, R[..., None])[..., 0]
    return b_[..., 0]


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

    Exact: the absorbing chain is solved, no simulation. Posterior draws (Dirichlet rows) are not
    there yet (issue 4). ``value`` is
    shared by the *conversion* removal effects; ChannelAttribution computes a separate
    value-weighted removal effect (up to 7% apart per channel on its ``Data.csv``): matching
    that convention is still open.

    Uncertainty (``draws > 0``): every transition row gets the posterior
    ``Dirichlet(counts + prior_a)`` over the moves seen from that state (a move never seen stays
    impossible), and the removal effects and attributed conversions are recomputed on each of
    ``draws`` draws (vectorised: one batched solve per draw and channel; chains of up to 400
    states, i.e. order 1–2 on typical data).

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
    _check_paths(paths, path, conversions, value)
    paths = paths.reset_index(drop=True)
    _, member, channels, counts = _transition_counts(paths, path, conversions, nulls, sep, order)
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
    out = pd.DataFrame({
        "channel": channels,
        "removal_effect": effect,
        "conversions": share * pd.to_numeric(paths[conversions]).sum(),
    })
    if value is not None:
        out["value"] = share * pd.to_numeric(paths[value]).sum()
    if draws:
        if P.shape[0] > 400:
            raise ValueError(f"draws need a chain of at most 400 states; order {order} has {P.shape[0]}")
        rng = np.random.default_rng(seed)
        seen = counts > 0
        alpha = np.where(seen, counts + prior_a, 1.0)
        g = np.where(seen, rng.standard_gamma(np.broadcast_to(alpha, (draws, *alpha.shape))), 0.0)
        tot = g.sum(-1, keepdims=True)
        Pd = np.divide(g, tot, out=np.zeros_like(g), where=tot > 0)
        base_d = _conversion_from_start(Pd)  # (draws,)
        rem = np.stack([_conversion_from_start(Pd, removed=np.broadcast_to(dead[c], (draws, dead.shape[1])))
                        for c in range(k)], -1)  # (draws, k)
        eff = np.where(base_d[:, None] > 0, 1.0 - rem / base_d[:, None], 0.0)
        tot_eff = eff.sum(1, keepdims=True)
        conv_d = np.divide(eff, tot_eff, out=np.zeros_like(eff), where=tot_eff > 0) * pd.to_numeric(
            paths[conversions]).sum()
        lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
        for name, d in (("removal_effect", eff), ("conversions", conv_d)):
            out[f"{name}_mean"] = d.mean(0)
            out[f"{name}_lower"] = np.quantile(d, lo, axis=0)
            out[f"{name}_upper"] = np.quantile(d, hi, axis=0)
    return out


def shapley_attribution(
    paths: pd.DataFrame,
    *,
    value_function: str = "conversion_rate",
    path: str = "path",
    conversions: str = "conversions",
    nulls: str | None = "nulls",
    sep: str = ">",
    max_channels: int = 20,
) -> pd.DataFrame:
    """Exact Shapley values of channels over coalitions (unordered: a journey is its channel set).

    ``v(S)`` is computed from the journeys whose set of channels lies within ``S``:

    - ``"conversion_rate"`` (default): their conversions / their journeys (conversions + nulls);
      0 when there are none;
    - ``"conversions"``: their conversions — mta's ``MTA.shapley`` convention.

    All ``2^n`` coalitions are evaluated at once: conversions and nulls are summed per channel
    set (a bitmask), a subset-sum (zeta) transform gives ``v`` for every coalition, and each
    channel's value is the weighted sum of its marginal contributions — ``O(n 2^n)``, about a
    second for 20 channels.

    Returns
    -------
    DataFrame
        ``channel, shapley`` (the value) and ``share`` (shapley / sum), one row per channel.
    """
    if value_function not in ("conversion_rate", "conversions"):
        raise ValueError("value_function must be 'conversion_rate' or 'conversions'")
    if nulls is not None and nulls not in paths.columns and nulls == "nulls":
        nulls = None
    if value_function == "conversion_rate" and nulls is None:
        raise DataError("shapley_attribution: conversion rates need the nulls column", column="nulls",
                        fix="pass nulls=... or value_function='conversions'")
    _check_paths(paths, path, conversions, None)
    paths = paths.reset_index(drop=True)
    t = explode_paths(paths, path, sep)
    channels = sorted(set(t["channel"]))
    n = len(channels)
    if n > max_channels:
        raise ValueError(f"{n} channels: exact Shapley needs 2^{n} coalitions; group channels or raise max_channels")
    bit = t["channel"].map({c: i for i, c in enumerate(channels)}).to_numpy()
    mask = np.zeros(len(paths), dtype=np.int64)
    np.bitwise_or.at(mask, t["path_id"].to_numpy(), np.left_shift(1, bit).astype(np.int64))
    size = 1 << n
    conv = np.bincount(mask, weights=pd.to_numeric(paths[conversions]).to_numpy(float), minlength=size)
    total = conv.copy()
    if nulls is not None:
        total += np.bincount(mask, weights=pd.to_numeric(paths[nulls]).to_numpy(float), minlength=size)
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
