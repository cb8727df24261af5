"""Attribution: which channels move people to convert.

Path models take the path table of :meth:`analysis.Journeys.channel_paths`
(``path, conversions, nulls, value``; channels joined by ``" > "``, ChannelAttribution's layout),
so paths from any source can be attributed:

- :func:`heuristic_attribution`: rule-based credit (first/last touch, linear, time decay, …);
- :func:`markov_attribution`: removal effects of an order-1..4 chain, solved exactly, with
  Dirichlet posterior intervals;
- :func:`shapley_attribution`: exact Shapley values over channel coalitions (ordered variant);
- :func:`compare_attribution` and :func:`attribution_holdout`: every model in one table, and
  held-out predictive scores.

:class:`BayesianAttributionModel` takes :meth:`analysis.Journeys.stage_exposures` instead (stage
visits by channel exposure) and estimates incremental effects by counterfactual removal.
"""

from __future__ import annotations

import json
import logging
from typing import Any, ClassVar

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from analysis.models.base import BayesianModel, Prior
from analysis.schema import (
    CONVERSION,
    DEFAULT_STAGES,
    DROPOFF,
    OPEN,
    START,
    DataError,
    combine_errors,
)

log = logging.getLogger(__name__)

__all__ = [
    "BayesianAttributionModel", "HEURISTIC_MODELS", "attribution_holdout", "compare_attribution", "explode_paths",
    "heuristic_attribution", "holdout_split", "markov_attribution", "shapley_attribution",
]

#: Rule-based models of :func:`heuristic_attribution`, in output order.
HEURISTIC_MODELS: tuple[str, ...] = (
    "first_touch", "last_touch", "last_non_direct", "linear", "time_decay", "position_based",
)


#: State names ChannelAttribution (and our chains) reserve; a channel may not be called so.
_RESERVED_STATES = ("(start)", "(conversion)", "(null)", "(dropoff)", "(open)")
_RESERVED_WORDS = ("start", "conversion", "null")  # case-insensitive
#: Separators people use instead of the one passed (checked when no path contains ``sep``).
_OTHER_SEPS = ("->", "→", ">", "|", ",", ";", "/")


def _check_paths(paths: pd.DataFrame, path: str, conversions: str, value: str | None, *,
                 nulls: str | None = None, sep: str = ">") -> pd.DataFrame:
    """Check a path table; every problem found is reported in one :class:`DataError`.

    Returns the touches (:func:`explode_paths` of ``paths`` with a fresh 0-based index) so the
    caller need not split the paths again."""
    if not isinstance(paths, pd.DataFrame):
        raise TypeError(f"paths: expected a DataFrame (Journeys.channel_paths()), got {type(paths).__name__}")
    need = [c for c in (path, conversions, value, nulls) if c is not None]
    missing = [c for c in need if c not in paths.columns]
    if missing:
        raise DataError(
            f"path table: missing column(s) {missing}", column=missing,
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
            errors.append(DataError(
                f"path table: {int(bad.sum())} value(s) of {c!r} are missing or negative (or infinite)",
                column=c, rows=rows_of(bad), fix="conversions, nulls and values are finite numbers >= 0",
            ))
    text = paths[path].astype(str).str.strip()
    empty = (paths[path].isna() | (text == "")).to_numpy()
    if empty.any():
        errors.append(DataError(
            f"path table: {int(empty.sum())} empty path(s)", column=path, rows=rows_of(empty),
            fix="drop journeys without a channel touch, or give them a channel such as '(none)'",
        ))
    touches = explode_paths(paths.reset_index(drop=True), path, sep)
    ch = touches["channel"]
    blank = ch.to_numpy() == ""
    in_path = np.zeros(len(paths), dtype=bool)
    in_path[touches["path_id"].to_numpy()[blank]] = True
    in_path &= ~empty
    if in_path.any():
        errors.append(DataError(
            f"path table: {int(in_path.sum())} path(s) with an empty channel (two separators in a row, "
            f"or one at the start or end)", column=path, rows=rows_of(in_path),
            fix=f"every channel between {sep!r} separators needs a name: 'a > b', not 'a >  > b' or 'a > b >'",
        ))
    # a separator other than `sep`: no path contains `sep` (outside the other one), many the other
    filled = text[~empty]
    joined = "\n".join(filled.tolist())
    if len(filled):
        for other in _OTHER_SEPS:
            if other == sep or other not in joined or sep in joined.replace(other, ""):
                continue
            has_other = filled.str.contains(other, regex=False)
            rest = filled.str.replace(other, "", regex=False) if sep in other else filled
            if has_other.mean() >= 0.2 and not rest.str.contains(sep, regex=False).any():
                rows = np.zeros(len(paths), dtype=bool)
                rows[np.flatnonzero(~empty)[has_other.to_numpy()]] = True
                errors.append(DataError(
                    f"path table: paths look separated by {other!r}, not {sep!r} "
                    f"({int(has_other.sum())} of {len(filled)} paths contain {other!r})",
                    column=path, rows=rows_of(rows), fix=f"pass sep={other!r}",
                ))
                break
        else:
            # "a->b" split on ">" leaves channels ending in "-"
            dash = (ch.str.endswith("-") & (touches["position"] < touches["length"] - 1)).to_numpy()
            if sep.strip() == ">" and dash.any():
                rows = np.zeros(len(paths), dtype=bool)
                rows[touches["path_id"].to_numpy()[dash]] = True
                errors.append(DataError(
                    f"path table: {int(rows.sum())} path(s) look separated by '->', not {sep!r} "
                    "(channels end in '-')", column=path, rows=rows_of(rows), fix="pass sep='->'",
                ))
    # reserved state names as channels
    names = pd.unique(ch[~blank].astype(object))
    reserved = [c for c in names if c in _RESERVED_STATES or c.lower() in _RESERVED_WORDS]
    if reserved:
        hit = np.zeros(len(paths), dtype=bool)
        hit[touches["path_id"].to_numpy()[ch.isin(reserved).to_numpy()]] = True
        errors.append(DataError(
            f"path table: channel(s) {sorted(reserved)} use a reserved state name (the chain's "
            f"{', '.join(_RESERVED_STATES)}; start, conversion, null in any case)", column=path,
            rows=rows_of(hit), fix="rename the channel(s), e.g. 'null' -> 'null_channel'",
        ))
    if conv_ok and float(pd.to_numeric(paths[conversions]).sum()) == 0:
        errors.append(DataError(
            f"path table: no conversions ({conversions!r} sums to 0): nothing to attribute "
            "(removal effects and Shapley shares are undefined)", column=conversions,
            fix="pass paths that include converting journeys, or the right column: conversions=...",
        ))
    if errors:
        raise combine_errors(errors)
    return touches


def explode_paths(paths: pd.DataFrame, path: str = "path", sep: str = ">") -> pd.DataFrame:
    """One row per touch: ``path_id`` (the row of ``paths``), ``position`` (0-based),
    ``length`` (touches in the path) and ``channel``. Separators may carry spaces
    (``"a > b"`` and ``"a>b"`` are the same path)."""
    text = paths[path].to_numpy(dtype=object, na_value="nan").astype(str).tolist()
    length = np.fromiter((p.count(sep) + 1 for p in text), dtype=np.int64, count=len(text))
    channel = [c.strip() for c in sep.join(text).split(sep)] if text else []
    codes, names = pd.factorize(np.array(channel, dtype=object), sort=True)
    start = np.repeat(np.cumsum(length) - length, length)
    return pd.DataFrame({
        "path_id": np.repeat(paths.index.to_numpy(), length),
        "channel": pd.Categorical.from_codes(codes, categories=pd.Index(names, dtype=object)),
        "position": np.arange(len(channel), dtype=np.int64) - start,
        "length": np.repeat(length, length),
    })


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
    t = _check_paths(paths, path, conversions, value, sep=sep)
    paths = paths.reset_index(drop=True)
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
                       order: int = 1, touches: pd.DataFrame | None = None):
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
        return _counts_from_states(paths, conversions, nulls, pid[~same], code[~same], channels,
                                   np.eye(len(channels), dtype=bool), channels)
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
    return _counts_from_states(paths, conversions, nulls, w["path_id"].to_numpy(), codes, list(states), member,
                               channels)


def _counts_from_states(paths, conversions, nulls, pid, codes, states, member, channels):
    """The count matrix of :func:`_transition_counts` from each path's state sequence
    (``pid``, ``codes``: rows in path order, self-transitions already dropped)."""
    n_states = len(states) + 3  # start, states, conversion, null
    conv_s, null_s = n_states - 2, n_states - 1
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
    return states, member, channels, counts


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

    Exact: the absorbing chain is solved, no simulation. ``value`` is
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
    touches = _check_paths(paths, path, conversions, value, nulls=nulls, sep=sep)
    paths = paths.reset_index(drop=True)
    _, member, channels, counts = _transition_counts(paths, path, conversions, nulls, sep, order, touches)
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


def _ordered_shapley(t: pd.DataFrame, conv: np.ndarray, channels: list[str]) -> pd.DataFrame:
    """Per-touch ordered Shapley credits (Zhao et al. 2018) for the ``"conversions"`` game.

    ``v(S) = sum over channel sets T within S of R(T)`` (``R(T)``: conversions of the journeys
    whose channel set is exactly ``T``) is a sum of unanimity games, so channel ``j`` earns
    ``R(T) / |T|`` from every ``T`` that holds it — per journey, its conversions split equally
    over its distinct channels. That share is then split equally over the channel's touches in
    the journey, each touch credited at its 1-based position. Returns ``channel, position,
    shapley`` summed over journeys (one row per channel and position with credit)."""
    n = len(channels)
    code = pd.Categorical(t["channel"], categories=channels).codes.astype(np.int64)
    pid = t["path_id"].to_numpy()
    keys, inv, touches_of = np.unique(pid * n + code, return_inverse=True, return_counts=True)
    distinct = np.bincount(keys // n, minlength=len(conv))  # distinct channels per journey
    credit = conv[pid] / (distinct[pid] * touches_of[inv])
    long = pd.DataFrame({"channel": t["channel"].to_numpy(), "position": t["position"].to_numpy() + 1,
                         "shapley": credit})[credit > 0]
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
        raise DataError("shapley_attribution: conversion rates need the nulls column", column="nulls",
                        fix="pass nulls=... or value_function='conversions'")
    if ordered and value_function != "conversions":
        raise ValueError("ordered=True needs value_function='conversions' (Zhao et al.'s per-journey game); "
                         "conversion rates have no per-journey split over touch positions")
    t = _check_paths(paths, path, conversions, None, nulls=nulls, sep=sep)
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


# --------------------------------------------------------------------------------------------
# Bayesian attribution: a sequential logistic model of stage visits, counterfactual removal
# --------------------------------------------------------------------------------------------

_LN2 = float(np.log(2.0))


class BayesianAttributionModel(BayesianModel):
    """Which channels move journeys on: a hierarchical logistic model of every stage visit's
    exit, with carry-over that decays with time, segments partially pooled; attribution by
    counterfactual removal on every posterior draw.

    Why visits and not whole journeys
        A journey-level regression of "converted" on "touched channel c" credits whatever
        channel people meet late in the funnel (a store visit, a direct site visit) simply
        because reaching the late stages requires having advanced: exposure is a consequence of
        progress. Here each stage visit is one trial — did the journey move on (to another
        stage or to the conversion) or drop off? — and its regressors are the channels touched
        during that visit or earlier in the journey. Progress so far is then part of the
        condition, not of the outcome. Journey conversion follows from chaining the visits.

    The model
        For a visit of segment ``g`` to stage ``s`` with exposure levels ``L[c]``
        (:meth:`analysis.Journeys.stage_exposures`)::

            x[c] = 0 (not touched) | 1 (during the visit) | 2 ** (-age[L] / half_life) (earlier)
            logit P(move on) = alpha[g, s] + sum_c beta[g, c] * x[c]
            alpha[g, s] = intercept_mu[s] + intercept_sigma * z_alpha[g, s]
            beta[g, c]  = beta[c] + beta_sigma * z_beta[g, c]

        fitted on visits aggregated by (segment, stage, exposure pattern): a binomial per
        pattern, so the cost grows with the number of distinct patterns, not of events. Where a
        visit goes when it moves on (which stage, or the conversion) and where journeys start
        are Dirichlet–multinomial (exact conjugate draws).

    Attribution (:meth:`removal_effects`, :meth:`attribution`)
        On every posterior draw, each segment's stage chain is rebuilt — the probability of
        moving on from each stage averages the logistic over that stage's observed exposure
        patterns (Bayesian-bootstrap weights, so the exposure mix's own uncertainty is in the
        intervals) — and solved for P(convert | journey). Removing channel ``c`` sets its
        exposures to 0 in every pattern; the drop in P(convert) is its incremental effect
        (per journey; × journeys = conversions it brought). Effects are not shares of the total:
        journeys convert without any channel too, and effects interact, so they need not sum
        to the conversions. ``share`` normalises them for comparison with rule-based models.

    Assumptions to keep in mind: exposure is as good as random *given* segment, stage and the
    channels already met (no targeting on unobserved intent); a channel's effect is the same in
    every stage; the exposure mix at a stage does not change when an earlier channel is
    removed (exact when there is no carry-over). It is a model of observational data, not an
    experiment.

    Parameters
    ----------
    exposures : DataFrame or Journeys
        :meth:`analysis.Journeys.stage_exposures` output: ``[group], from_stage, to_stage``, one
        integer exposure-level column per channel, ``n``. Given a :class:`analysis.Journeys`,
        its ``stage_exposures(by=group, mature_days=2 * inactivity_days)`` is used (only visits
        whose exit has had time to show). Rows to ``(open)`` are counted but not modelled.
    group : str or None, default "segment"
        Column of the partially pooled segments; ``None`` (or absent) → one group ``"all"``.
    channels : list of str, optional
        Channel columns; default ``exposures.attrs["channels"]`` or every other integer column.
    level_ages : list of float, optional
        Representative age in days of each carry-over level (levels 2, 3, …); default from
        ``exposures.attrs["levels"]``, else Journeys' defaults (1.5, 5, 10.5, 22).
    model_config : dict
        ``intercept_mu`` (Normal(0, 2)): stage log-odds of moving on; ``intercept_sigma``
        (HalfNormal(1)): spread of segments around it; ``beta`` (Normal(0, 1)): channel
        effect, log-odds per exposure; ``beta_sigma`` (HalfNormal(0.3)): spread of segments'
        effects around the channel's; ``half_life`` (LogNormal(log 7, 1)): days for an earlier
        exposure's weight to halve. Priors may be written as dicts.
    sampler_config : dict
        See :attr:`analysis.models.base.BayesianModel.BASE_SAMPLER_CONFIG`.
    """

    _model_type = "BayesianAttributionModel"
    default_model_config: ClassVar[dict[str, Any]] = {
        "intercept_mu": Prior("Normal", mu=0.0, sigma=2.0),
        "intercept_sigma": Prior("HalfNormal", sigma=1.0),
        "beta": Prior("Normal", mu=0.0, sigma=1.0),
        "beta_sigma": Prior("HalfNormal", sigma=0.3),
        "half_life": Prior("LogNormal", mu=float(np.log(7.0)), sigma=1.0),
        "segment_effects": "none",
        "centering_threshold": 100,
    }
    default_sampler_config: ClassVar[dict[str, Any]] = {"draws": 500, "tune": 1000}
    _check_vars: ClassVar[list[str]] = [
        "intercept_mu", "intercept_sigma", "alpha_centered", "beta", "beta_sigma", "beta_segment", "half_life",
    ]
    _DEFAULT_AGES: ClassVar[tuple[float, ...]] = (1.5, 5.0, 10.5, 22.0)

    def __init__(
        self,
        exposures: Any,
        *,
        group: str | None = "segment",
        channels: list[str] | None = None,
        level_ages: list[float] | None = None,
        model_config: dict[str, Any] | None = None,
        sampler_config: dict[str, Any] | None = None,
    ) -> None:
        if hasattr(exposures, "stage_exposures"):  # a Journeys object
            jr = exposures
            exposures = jr.stage_exposures(
                by=group if group in getattr(jr, "attributes", []) else None,
                mature_days=2 * jr.inactivity_days,
            )
        if not isinstance(exposures, pd.DataFrame):
            raise TypeError(
                "exposures: expected Journeys.stage_exposures() output (a DataFrame) or a Journeys "
                f"object, got {type(exposures).__name__}"
            )
        super().__init__(exposures, model_config=model_config, sampler_config=sampler_config)
        df = exposures
        if channels is None:
            channels = df.attrs.get("channels")
        if channels is None:
            known = {group, "from_stage", "to_stage", "n"}
            channels = [c for c in df.columns if c not in known and pd.api.types.is_integer_dtype(df[c])]
        if level_ages is None:
            levels = df.attrs.get("levels")
            if levels:
                level_ages = [float(v["age_days"]) for k, v in sorted(
                    ((int(k), v) for k, v in levels.items())) if k >= 2]
            else:
                level_ages = list(self._DEFAULT_AGES)
        self.channels = list(channels)
        self.level_ages = [float(a) for a in level_ages]
        self.group = group if (group is not None and group in df.columns) else None
        self._validate(df)
        self._prepare(df)

    # ---------------------------------------------------------------------------- the data
    def _validate(self, df: pd.DataFrame) -> None:
        what = "stage exposures"
        need = ["from_stage", "to_stage", "n", *self.channels]
        missing = [c for c in need if c not in df.columns]
        if missing:
            raise DataError(
                f"{what}: missing column(s) {missing}", column=missing,
                fix="pass Journeys.stage_exposures(by=...) output (or a Journeys object)",
            )
        errors: list[DataError] = []
        if not self.channels:
            errors.append(DataError(f"{what}: no channel columns", fix="pass channels=[...]"))
        n = pd.to_numeric(df["n"], errors="coerce")
        bad = n.isna() | (n < 0) | (n != n.round())
        if bad.any():
            errors.append(DataError(
                f"{what}: {int(bad.sum())} count(s) in 'n' are not whole numbers >= 0", column="n",
                rows=[int(i) + 1 for i in np.flatnonzero(bad.to_numpy())[:10]], fix="n counts visits",
            ))
        top = 1 + len(self.level_ages)
        for c in self.channels:
            v = pd.to_numeric(df[c], errors="coerce")
            badc = v.isna() | (v < 0) | (v > top) | (v != v.round())
            if badc.any():
                errors.append(DataError(
                    f"{what}: channel column {c!r} has {int(badc.sum())} value(s) that are not exposure "
                    f"levels 0..{top}", column=c,
                    rows=[int(i) + 1 for i in np.flatnonzero(badc.to_numpy())[:10]],
                    fix="levels: 0 not touched, 1 during the visit, 2.. earlier (see Journeys.stage_exposures)",
                ))
        reserved = sorted({str(c) for c in self.channels} & {START, CONVERSION, DROPOFF, OPEN})
        if reserved:
            errors.append(DataError(f"{what}: channel(s) named like a state: {reserved}", column="channel",
                                    fix="rename those channels"))
        if errors:
            raise combine_errors(errors)
        visits = df[(df["from_stage"] != START) & (df["to_stage"] != OPEN)]
        outcomes = visits.groupby(visits["to_stage"] == DROPOFF)["n"].sum()
        if visits.empty or outcomes.get(True, 0) == 0 or outcomes.get(False, 0) == 0:
            raise DataError(
                f"{what}: the model needs settled visits that moved on and visits that dropped off; "
                f"found {int(outcomes.get(False, 0))} and {int(outcomes.get(True, 0))}",
                column="to_stage", fix="use more data, or a longer window (mature visits only)",
            )
        if int(visits.loc[visits["to_stage"] == CONVERSION, "n"].sum()) == 0:
            raise DataError(f"{what}: no conversions: nothing to attribute", column="to_stage",
                            fix="check the conversion column of the touchpoints")
        if int(df.loc[df["from_stage"] == START, "n"].sum()) == 0:
            raise DataError(f"{what}: no (start) rows: journeys' first stages are needed", column="from_stage",
                            fix="pass Journeys.stage_exposures() output unchanged")

    def _prepare(self, df: pd.DataFrame) -> None:
        labels = df[self.group].astype(str) if self.group else pd.Series("all", index=df.index)
        self.segments = list(dict.fromkeys(labels))
        stages = [s for s in dict.fromkeys(df.loc[df["from_stage"] != START, "from_stage"].astype(str))]
        order = {s: i for i, s in enumerate(DEFAULT_STAGES)}
        self.stages = sorted(stages, key=lambda s: (order.get(s, len(order)), s))
        self.n_open = int(df.loc[df["to_stage"] == OPEN, "n"].sum())
        G, S, C = len(self.segments), len(self.stages), len(self.channels)
        gi = pd.Categorical(labels, categories=self.segments).codes
        is_start = (df["from_stage"] == START).to_numpy()
        to = df["to_stage"].astype(str).to_numpy()
        n = df["n"].to_numpy(np.int64)
        # start shares and where visits go when they move on: (g, S) and (g, S, S + 1)
        targets = [*self.stages, CONVERSION]
        tidx = {s: i for i, s in enumerate(targets)}
        sidx = {s: i for i, s in enumerate(self.stages)}
        self._start = np.zeros((G, S))
        m = is_start & np.isin(to, self.stages)
        np.add.at(self._start, (gi[m], [sidx[t] for t in to[m]]), n[m])
        visit = ~is_start & (to != OPEN)
        fi = np.array([sidx.get(s, -1) for s in df["from_stage"].astype(str)])
        self._moves = np.zeros((G, S, S + 1))
        mv = visit & np.isin(to, targets)
        np.add.at(self._moves, (gi[mv], fi[mv], [tidx[t] for t in to[mv]]), n[mv])
        # binomial patterns: (g, stage, levels) → visits, moved on
        v = df.loc[visit, self.channels].astype(np.int64)
        key = pd.DataFrame({"g": gi[visit], "s": fi[visit]}).join(v.reset_index(drop=True))
        key["n"] = n[visit]
        key["k"] = np.where(to[visit] != DROPOFF, n[visit], 0)
        pat = key.groupby(["g", "s", *self.channels], sort=True)[["n", "k"]].sum().reset_index()
        self._pg = pat["g"].to_numpy(np.int64)
        self._ps = pat["s"].to_numpy(np.int64)
        self._L = pat[self.channels].to_numpy(np.int64)
        self._pn = pat["n"].to_numpy(float)
        self._pk = pat["k"].to_numpy(float)
        self._cell_visits = np.bincount(self._pg * S + self._ps, weights=self._pn,
                                        minlength=G * S).reshape(G, S)
        self.n_journeys = pd.Series(self._start.sum(1), index=pd.Index(self.segments, name="segment"))
        self.n_visits = int(self._pn.sum())
        self.n_patterns = len(pat)
        self._table = df.reset_index(drop=True)
        log.info("%s: %d visits in %d exposure patterns, %d segments, %d channels",
                 self._model_type, self.n_visits, self.n_patterns, G, C)

    def _fit_data(self) -> pd.DataFrame:
        return self._table

    def _extra_attrs(self) -> dict[str, str]:
        return {"group": json.dumps(self.group), "channels": json.dumps(self.channels),
                "level_ages": json.dumps(self.level_ages)}

    @classmethod
    def _from_fit_data(cls, data: pd.DataFrame, attrs: dict[str, Any], **configs: Any):
        return cls(data, group=json.loads(attrs["group"]), channels=json.loads(attrs["channels"]),
                   level_ages=json.loads(attrs["level_ages"]), **configs)

    def _coords(self) -> dict[str, list[str]]:
        return {"segment": self.segments, "stage": self.stages, "channel": self.channels}

    # ---------------------------------------------------------------------------- the model
    def _initial_points(self, chains: int, rng: np.random.Generator) -> list[dict[str, np.ndarray]]:
        """Stage intercepts near the pooled share of visits that moved on; small effects."""
        S = len(self.stages)
        k = np.bincount(self._ps, weights=self._pk, minlength=S)
        n = np.bincount(self._ps, weights=self._pn, minlength=S)
        base = np.log((k + 1) / (n - k + 1))
        G, C = len(self.segments), len(self.channels)
        points = []
        for _ in range(chains):
            start = {
                "intercept_mu": base + rng.normal(0, 0.2, S),
                "beta": rng.normal(0, 0.1, C),
                "half_life": np.exp(rng.uniform(np.log(2.0), np.log(20.0))),
            }
            if G > 1:
                start["intercept_sigma"] = rng.uniform(0.2, 0.6)
                big = self._cell_visits >= float(self.model_config["centering_threshold"])
                if big.any():
                    start["alpha_big"] = base[np.nonzero(big)[1]] + rng.normal(0, 0.3, int(big.sum()))
                if (~big).any():
                    start["alpha_z"] = rng.normal(0, 0.5, int((~big).sum()))
                effects = self.model_config["segment_effects"]
                if effects != "none":
                    start["beta_sigma"] = rng.uniform(0.05, 0.2)
                if effects == "noncentered":
                    start["z_beta"] = rng.normal(0, 0.5, (G, C))
                elif effects == "centered":
                    start["beta_segment"] = start["beta"][None, :] + rng.normal(0, 0.1, (G, C))
            points.append(start)
        return points

    def build_model(self):
        import pymc as pm
        import pytensor.tensor as pt

        cfg = self.model_config
        G = len(self.segments)
        ages = np.asarray(self.level_ages, dtype=float)
        with pm.Model(coords=self._coords()) as model:
            mu = cfg["intercept_mu"].create("intercept_mu", dims="stage")
            beta = cfg["beta"].create("beta", dims="channel")
            half_life = cfg["half_life"].create("half_life")
            if G > 1:
                a_sd = cfg["intercept_sigma"].create("intercept_sigma")
                # mixed centring: a cell with many visits pins its intercept down (centred is
                # the good geometry), a cell with few leaves it to the prior (non-centred is);
                # either alone makes NUTS take hundreds of steps per draw on typical data
                big = self._cell_visits >= float(cfg["centering_threshold"])
                alpha = pt.zeros((G, len(self.stages)))
                if big.any():
                    gb, sb = np.nonzero(big)
                    a_big = pm.Normal("alpha_big", mu[sb], a_sd, shape=len(gb))
                    alpha = pt.set_subtensor(alpha[gb, sb], a_big)
                if (~big).any():
                    gs, ss = np.nonzero(~big)
                    z = pm.Normal("alpha_z", 0.0, 1.0, shape=len(gs))
                    alpha = pt.set_subtensor(alpha[gs, ss], mu[ss] + a_sd * z)
                alpha = pm.Deterministic("alpha_centered", alpha, dims=("segment", "stage"))
            else:
                alpha = pm.Deterministic("alpha_centered", mu[None, :], dims=("segment", "stage"))
            effects = cfg["segment_effects"] if G > 1 else "none"
            if effects == "noncentered":
                b_sd = cfg["beta_sigma"].create("beta_sigma")
                z_b = pm.Normal("z_beta", 0.0, 1.0, dims=("segment", "channel"))
                beta_g = pm.Deterministic("beta_segment", beta[None, :] + b_sd * z_b,
                                          dims=("segment", "channel"))
            elif effects == "centered":
                b_sd = cfg["beta_sigma"].create("beta_sigma")
                beta_g = pm.Normal("beta_segment", beta[None, :], b_sd, dims=("segment", "channel"))
            else:
                beta_g = pm.Deterministic("beta_segment", pt.broadcast_to(beta[None, :], (G, len(self.channels))),
                                          dims=("segment", "channel"))
            # x = 1[during the visit] + sum over carry-over levels of their decayed weight
            x = pt.as_tensor((self._L == 1).astype(float))
            decay = pt.exp(-_LN2 * ages / half_life)
            for i in range(len(ages)):
                on = self._L == 2 + i
                if on.any():
                    x = x + decay[i] * on.astype(float)
            # exposures centred on their mean per stage (visit-weighted), so that alpha is the
            # log-odds at the stage's usual exposure and is not correlated with every beta
            # (the sampler needs ~10x fewer steps); alpha_raw is re-expressed below
            S = len(self.stages)
            onehot = np.zeros((S, len(self._ps)))
            onehot[self._ps, np.arange(len(self._ps))] = self._pn
            onehot /= np.maximum(onehot.sum(1, keepdims=True), 1.0)
            xbar = pt.dot(pt.as_tensor(onehot), x)  # (S, C)
            eta = alpha[self._pg, self._ps] + ((x - xbar[self._ps]) * beta_g[self._pg]).sum(-1)
            # the intercept at no exposure (what the counterfactuals use)
            pm.Deterministic("alpha", alpha - (xbar[None, :, :] * beta_g[:, None, :]).sum(-1),
                             dims=("segment", "stage"))
            # binomial log-likelihood on logits: k * eta - n * log(1 + e^eta) (+ a constant)
            pm.Potential("loglik", (self._pk * eta - self._pn * pt.softplus(eta)).sum())
        return model

    def _postprocess(self, idata: az.InferenceData) -> az.InferenceData:
        post = idata.posterior
        post = post[[v for v in post.data_vars if not v.startswith(("z_", "alpha_big", "alpha_z"))]]
        idata.posterior = post.assign_coords(self._coords())
        return idata

    # ------------------------------------------------------------------------- attribution
    def _draws(self, max_draws: int | None, seed: int):
        post = self._require_fit().posterior
        alpha = post["alpha"].stack(sample=("chain", "draw")).transpose("sample", ...).to_numpy()
        beta = post["beta_segment"].stack(sample=("chain", "draw")).transpose("sample", ...).to_numpy()
        hl = post["half_life"].stack(sample=("chain", "draw")).to_numpy()
        D = len(hl)
        idx = np.arange(D)
        if max_draws is not None and D > max_draws:
            idx = np.random.default_rng(seed).choice(D, max_draws, replace=False)
            idx.sort()
        return alpha[idx], beta[idx], hl[idx], idx

    def removal_effects(self, *, max_draws: int | None = 1000, seed: int = 0,
                        chunk: int = 100) -> xr.DataArray:
        """Incremental P(convert | journey) of every channel, per segment and posterior draw.

        Returns a DataArray (sample, segment, channel): P(convert) minus P(convert) with the
        channel's exposures removed (see the class docstring). ``max_draws`` caps the draws used
        (a seeded random subset); ``chunk`` draws are processed at once (memory).
        """
        alpha, beta, hl, idx = self._draws(max_draws, seed)
        D, G, S, C = len(hl), len(self.segments), len(self.stages), len(self.channels)
        rng = np.random.default_rng(seed + 1)
        ages = np.asarray(self.level_ages, dtype=float)
        seen_moves = self._moves.sum(0) > 0  # (S, S+1): moves seen in any segment
        seen_start = self._start.sum(0) > 0
        out = np.empty((D, G, C + 1))  # P(convert): removed channel c, and the base (last)
        cell = self._pg * S + self._ps
        for lo in range(0, D, chunk):
            sl = slice(lo, min(D, lo + chunk))
            d = sl.stop - sl.start
            w_lv = np.concatenate([np.zeros((d, 1)), np.ones((d, 1)),
                                   np.exp(-_LN2 * ages[None, :] / hl[sl, None])], axis=1)  # (d, levels)
            x = np.take_along_axis(w_lv[:, None, :], self._L[None].reshape(1, -1, 1).repeat(d, 0), 2)
            x = x.reshape(d, *self._L.shape)  # (d, P, C)
            contrib = x * beta[sl][:, self._pg, :]  # (d, P, C)
            eta = alpha[sl][:, self._pg, self._ps] + contrib.sum(-1)  # (d, P)
            # Bayesian bootstrap of each (segment, stage)'s exposure mix
            g = rng.standard_gamma(np.broadcast_to(self._pn, (d, len(self._pn))))
            tot = np.zeros((d, G * S))
            for k in range(d):
                tot[k] = np.bincount(cell, weights=g[k], minlength=G * S)
            wgt = g / np.where(tot[:, cell] > 0, tot[:, cell], 1.0)
            etas = np.concatenate([eta[..., None] - contrib, eta[..., None]], -1)  # (d, P, C+1)
            pm_ = wgt[..., None] / (1.0 + np.exp(-etas))
            adv = np.zeros((d, G * S, C + 1))
            for k in range(d):
                for j in range(C + 1):
                    adv[k, :, j] = np.bincount(cell, weights=pm_[k, :, j], minlength=G * S)
            adv = adv.reshape(d, G, S, C + 1)
            # a stage with no settled visits in a segment: its pooled intercept, no exposures
            empty = (tot.reshape(d, G, S) == 0)
            if empty.any():
                base_adv = 1.0 / (1.0 + np.exp(-alpha[sl]))
                adv = np.where(empty[..., None], base_adv[..., None], adv)
            a_mv = np.where(seen_moves, self._moves + 0.5, 0.0)
            q = np.where(seen_moves, rng.standard_gamma(np.broadcast_to(np.where(seen_moves, a_mv, 1.0),
                                                                        (d, G, S, S + 1))), 0.0)
            q /= np.where(q.sum(-1, keepdims=True) > 0, q.sum(-1, keepdims=True), 1.0)
            a_st = np.where(seen_start, self._start + 0.5, 1.0)
            pi = np.where(seen_start, rng.standard_gamma(np.broadcast_to(a_st, (d, G, S))), 0.0)
            pi /= pi.sum(-1, keepdims=True)
            # chain per (draw, segment, scenario): Q = adv * q[:, :, :, :S], R = adv * q[..., S]
            Q = adv.transpose(0, 1, 3, 2)[..., None] * q[:, :, None, :, :S]  # (d, G, C+1, S, S)
            R = adv.transpose(0, 1, 3, 2) * q[:, :, None, :, S]  # (d, G, C+1, S)
            conv = np.linalg.solve(np.eye(S) - Q, R[..., None])[..., 0]  # (d, G, C+1, S)
            out[sl] = (pi[:, :, None, :] * conv).sum(-1)
        effect = out[..., -1:] - out[..., :-1]
        return xr.DataArray(
            effect, dims=("sample", "segment", "channel"),
            coords={"sample": idx, "segment": self.segments, "channel": self.channels},
            name="removal_effect",
            attrs={"base": out[..., -1]},
        )

    def attribution(self, *, prob: float = 0.9, weights: dict[str, float] | pd.Series | None = None,
                    by_segment: bool = False, segments: list[str] | None = None,
                    max_draws: int | None = 1000, seed: int = 0) -> pd.DataFrame:
        """Attribution table, one row per channel (per segment and channel with ``by_segment``).

        Columns: ``channel`` (and ``segment``); ``conversions`` (posterior mean of the
        conversions among the modelled journeys that the channel brought: removal effect ×
        journeys), ``conversions_lower/_upper`` (``prob`` interval); ``per_1000`` (incremental
        conversions per 1,000 journeys) with ``per_1000_lower/_upper``; ``share`` (conversions
        over the sum of all channels' conversions); ``beta`` (log-odds effect per exposure,
        posterior mean) with ``beta_lower/_upper``. ``weights`` mixes the segments for the
        overall ``per_1000`` (default: their journey counts). ``segments`` restricts the overall
        figures to some segments (the model is still fitted on all: partial pooling).
        """
        eff = self.removal_effects(max_draws=max_draws, seed=seed).to_numpy()  # (D, G, C)
        J = self.n_journeys.to_numpy(float)
        if segments is not None:
            unknown = sorted(set(map(str, segments)) - set(self.segments))
            if unknown:
                raise ValueError(f"segments: unknown {unknown}; the model has {self.segments}")
            keep = np.isin(self.segments, list(map(str, segments)))
            J = np.where(keep, J, 0.0)
            if weights is None and J.sum() == 0:
                raise ValueError("segments: the chosen segments have no modelled journeys")
        if weights is None:
            wts = J / J.sum()
        else:
            wts = pd.Series(weights, dtype=float).reindex(self.segments)
            if wts.isna().any():
                raise ValueError(f"weights: missing segment(s) {list(wts.index[wts.isna()])}")
            wts = wts.to_numpy() * (J > 0 if segments is not None else 1.0)
            wts = wts / wts.sum()
        lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
        beta = self._require_fit().posterior["beta"].stack(sample=("chain", "draw")).transpose("sample", ...).to_numpy()
        if by_segment:
            conv = eff * self.n_journeys.to_numpy(float)[None, :, None]
            rows = []
            for gi, g in enumerate(self.segments):
                if segments is not None and g not in set(map(str, segments)):
                    continue
                rows.append(pd.DataFrame({
                    "segment": g, "channel": self.channels,
                    **_interval("conversions", conv[:, gi], lo, hi),
                    **_interval("per_1000", 1000 * eff[:, gi], lo, hi),
                }))
            out = pd.concat(rows, ignore_index=True)
            tot = out.groupby("segment")["conversions"].transform("sum")
            out["share"] = np.where(tot != 0, out["conversions"] / tot.where(tot != 0, 1.0), 0.0)
            return out
        conv = (eff * J[None, :, None]).sum(1)
        per = 1000 * (eff * wts[None, :, None]).sum(1)
        out = pd.DataFrame({
            "channel": self.channels,
            **_interval("conversions", conv, lo, hi),
            **_interval("per_1000", per, lo, hi),
            **_interval("beta", beta, lo, hi),
        })
        tot = out["conversions"].sum()
        out["share"] = out["conversions"] / tot if tot != 0 else 0.0
        return out

    def summary(self, prob: float = 0.9) -> pd.DataFrame:
        """The parameters: stage intercepts, channel effects, spreads and the half-life."""
        idata = self._require_fit()
        names = [v for v in ("intercept_mu", "beta", "intercept_sigma", "beta_sigma", "half_life")
                 if v in idata.posterior]
        return az.summary(idata, var_names=names, hdi_prob=prob, kind="stats")


def _interval(name: str, draws: np.ndarray, lo: float, hi: float) -> dict[str, np.ndarray]:
    """``name`` (mean over axis 0), ``name_lower``, ``name_upper`` (quantiles)."""
    return {name: draws.mean(0), f"{name}_lower": np.quantile(draws, lo, axis=0),
            f"{name}_upper": np.quantile(draws, hi, axis=0)}
