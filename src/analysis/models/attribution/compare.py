"""Every attribution model's credit in one table, and held-out predictive scores."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.models.attribution.markov import transition_counts
from analysis.schema import DataError, check_paths

# ===================================================================== comparing attribution models
# compare_attribution: every model's credit in one tidy table; holdout_split and
# attribution_holdout: how well each model's view of a path predicts conversion on held-out journeys.

#: Columns of :func:`compare_attribution`'s long table.
COMPARISON_COLUMNS: tuple[str, ...] = ("channel", "model", "conversions", "lower", "upper", "share")


def _comparison_rows(
    name: str, table, total_conversions: float | None
) -> tuple[list[pd.DataFrame], list[str]]:
    """Return the long rows of one input table of :func:`compare_attribution`, and its problems."""
    if not isinstance(table, pd.DataFrame):
        return [], [f"{name!r}: expected a DataFrame, got {type(table).__name__}"]
    if "channel" not in table.columns:
        return [], [f"{name!r}: no 'channel' column (columns: {list(table.columns)})"]
    channel = table["channel"].astype(str).to_numpy()
    if len(set(channel)) != len(channel):
        return [], [f"{name!r}: channels repeat; give one row per channel"]

    def rows(model: str, conv, lower=None, upper=None) -> pd.DataFrame:
        nan = np.full(len(channel), np.nan)
        return pd.DataFrame(
            {
                "channel": channel,
                "model": model,
                "conversions": pd.to_numeric(conv, errors="coerce").to_numpy(float),
                "lower": nan
                if lower is None
                else pd.to_numeric(lower, errors="coerce").to_numpy(float),
                "upper": nan
                if upper is None
                else pd.to_numeric(upper, errors="coerce").to_numpy(float),
            }
        )

    cols = set(table.columns)
    if (
        "conversions" in cols
    ):  # markov_attribution, the Bayesian model, any channel/conversions table
        lo, hi = "conversions_lower", "conversions_upper"
        if (lo in cols) != (hi in cols):
            return [], [f"{name!r}: has only one of {lo!r} and {hi!r}; give both or neither"]
        return [rows(name, table["conversions"], table.get(lo), table.get(hi))], []
    heuristic = [c for c in table.columns if isinstance(c, str) and c.endswith("_conversions")]
    if heuristic:  # heuristic_attribution: one model per <model>_conversions column
        return [rows(c[: -len("_conversions")], table[c]) for c in heuristic], []
    if "share" in cols:  # shapley_attribution: shares of the total conversions
        if total_conversions is None:
            return [], [
                f"{name!r}: a table of shares (shapley_attribution) needs total_conversions"
            ]
        return [rows(name, table["share"] * float(total_conversions))], []
    return [], [
        f"{name!r}: found none of 'conversions', '<model>_conversions' or 'share' "
        f"(columns: {list(table.columns)})"
    ]


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
        problems.append(
            f"model name(s) {dup} appear twice (two heuristic tables?); rename the keys or columns"
        )
    if problems:
        raise DataError(
            "compare_attribution: " + "; ".join(problems),
            column="channel",
            fix="pass results of heuristic_attribution, markov_attribution, shapley_attribution "
            "or tables channel, conversions[, conversions_lower, conversions_upper]",
        )
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
    long["share"] = np.divide(
        long["conversions"], totals, out=np.full(len(long), np.nan), where=totals.to_numpy() != 0
    )
    long = long[list(COMPARISON_COLUMNS)]
    if wide:
        return long.pivot(index="channel", columns="model", values="conversions")[models]
    return long


def _integer_counts(paths: pd.DataFrame, cols: list[str]) -> dict[str, np.ndarray]:
    out = {}
    for c in cols:
        v = pd.to_numeric(paths[c]).to_numpy(float)
        if not np.allclose(v, np.round(v)):
            raise DataError(
                f"path table: {c!r} must count journeys (whole numbers) to split them",
                column=c,
                fix="pass journey counts, not rates or weights",
            )
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


def holdout_predictions(
    train: pd.DataFrame,
    test: pd.DataFrame,
    *,
    orders,
    sep: str,
    path: str,
    conversions: str,
    nulls: str,
    smoothing: float,
) -> dict[str, np.ndarray]:
    """Predict P(convert | path) for every row of ``test`` by each model of the holdout.

    The models of :func:`attribution_holdout`, fitted on ``train``; one array per model name.
    """
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
        states, _, _, counts = transition_counts(train, path, conversions, nulls, sep, order=k)
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
    preds["last_touch"] = by_key(
        [t[-1] for t in tr_touch], [t[-1] for t in te_touch], 0.5, 2.0, rate
    )
    preds["channel_set"] = by_key(
        [" > ".join(sorted(set(t))) for t in tr_touch],
        [" > ".join(sorted(set(t))) for t in te_touch],
        rate,
        smoothing,
        rate,
    )
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
    check_paths(paths, path, conversions, None)
    if nulls not in paths.columns:
        raise DataError(
            f"path table: missing column(s) [{nulls!r}]",
            column=nulls,
            fix="holdout scores need the journeys that did not convert (nulls)",
        )
    train, test = holdout_split(
        paths, test_share=test_share, seed=seed, conversions=conversions, nulls=nulls
    )
    if train.empty or test.empty:
        raise ValueError("too few journeys to split into train and test")
    preds = holdout_predictions(
        train,
        test,
        orders=orders,
        sep=sep,
        path=path,
        conversions=conversions,
        nulls=nulls,
        smoothing=smoothing,
    )

    ec, en = test[conversions].to_numpy(float), test[nulls].to_numpy(float)
    y = np.concatenate([np.ones(len(test)), np.zeros(len(test))])
    w = np.concatenate([ec, en])
    keep = w > 0
    rows = []
    for name, p in preds.items():
        q = np.clip(np.concatenate([p, p])[keep], 1e-6, 1 - 1e-6)
        yy, ww = y[keep], w[keep]
        auc = roc_auc_score(yy, q, sample_weight=ww) if len(set(yy)) == 2 else np.nan
        rows.append(
            {
                "model": name,
                "log_loss": log_loss(yy, q, sample_weight=ww, labels=[0, 1]),
                "auc": float(auc),
                "n_test_journeys": round(ww.sum()),
            }
        )
    return pd.DataFrame(rows)


# ===================================================================== end of: comparing attribution models
