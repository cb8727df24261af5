"""The forecasts a model must beat in a backtest, on the features known at the cut-off.

Each baseline is fitted on a training split (journeys open at an earlier cut-off, whose outcome
was known by the scoring cut-off) and scores the journeys of the scoring split:

- :func:`base_rate_forecast`: every journey gets the training share that converted;
- :func:`markov_forecast`: P(a journey eventually converts | the stage it is in), the absorbing
  probability of the stage chain fitted exactly (conjugate, unpooled) to the training cut-off's
  journeys, by segment (a journey with no stage yet starts at ``(start)``); it ignores the horizon,
  which is the point of comparing with it;
- :func:`boosted_forecast`: scikit-learn's ``HistGradientBoostingClassifier`` on
  :func:`journey_features` (categorical features native), its documented defaults.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from analysis.errors import DataError
from analysis.schema import DEFAULT_STAGES, START, StageMap

if TYPE_CHECKING:
    from analysis.predict.backtest import CutoffSplit

__all__ = [
    "base_rate_forecast",
    "boosted_forecast",
    "journey_features",
    "markov_forecast",
    "stage_map_of",
]

_SEP = " > "


def journey_features(split: CutoffSplit, channels: list[str] | None = None) -> pd.DataFrame:
    """Return the features of the journeys open at the cut-off, one row per ``split.open`` row.

    ``age_days`` (since the first touch to the row's cut-off), ``recency_days`` (since the last),
    ``touches``,
    ``stages_seen``, ``last_stage`` and ``segment`` (categorical), and ``ch_<channel>`` touches
    per channel (``channels``: the columns to make, e.g. the training split's; default: this
    split's channels).
    """
    o = split.open
    n = len(o)
    # stacked training rows (stack_splits) carry their own cut-off
    cut = pd.to_datetime(o["cutoff"], utc=True) if "cutoff" in o else split.cutoff
    day = pd.Timedelta(days=1)
    s_rows, s_codes, s_names, s_last = _tokens(o["stages"])
    seen = _token_counts(s_rows, s_codes, n, len(s_names)) > 0
    seen[:, s_names == ""] = False
    last_names = np.where(s_names == "", START, s_names)
    out = pd.DataFrame(
        {
            "age_days": (cut - pd.to_datetime(o["start"], utc=True)) / day,
            "recency_days": (cut - pd.to_datetime(o["end"], utc=True)) / day,
            "touches": o["n_touchpoints"].astype(float),
            "stages_seen": seen.sum(axis=1).astype(float),
            "last_stage": last_names[s_last].astype(str),
            "segment": o["segment"].astype(str) if "segment" in o else "all",
        },
        index=o.index,
    )
    c_rows, c_codes, c_names, _ = _tokens(o["channels"])
    table = _token_counts(c_rows, c_codes, n, len(c_names))
    present = {name: i for i, name in enumerate(c_names) if name != ""}
    names = sorted(present) if channels is None else list(channels)
    for c in names:
        out[f"ch_{c}"] = table[:, present[c]].astype(float) if c in present else 0.0
    for c in ("last_stage", "segment"):
        out[c] = out[c].astype("category")
    return out


def _tokens(paths: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split ``" > "``-joined paths with Arrow, without Python lists.

    Returns each token's row and code, the codes' names, and each row's last token's code (an
    empty path is one token ``""``).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(paths.fillna("").astype(str))
    if isinstance(arr, pa.ChunkedArray):  # e.g. read from Parquet in row groups
        arr = arr.cast(pa.large_string()).combine_chunks()
    lists = pc.split_pattern(arr, pattern=_SEP)
    enc = pc.list_flatten(lists).dictionary_encode()
    codes = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    rows = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False).astype(np.int64)
    last = codes[lists.offsets.to_numpy()[1:] - 1]
    return rows, codes, np.asarray(enc.dictionary.to_pylist(), dtype=object), last


def _token_counts(rows: np.ndarray, codes: np.ndarray, n: int, k: int) -> np.ndarray:
    """Return the rows × codes table of token counts."""
    return np.bincount(rows * k + codes, minlength=n * k).reshape(n, k)


def base_rate_forecast(train: CutoffSplit, test: CutoffSplit) -> np.ndarray:
    """Return the training base rate for every journey of ``test``."""
    return np.full(len(test.open), train.base_rate)


def stage_map_of(journeys: pd.DataFrame) -> StageMap:
    """Return a stage map for the stages in ``journeys["stages"]`` paths.

    The default See → Think → Do → Care when every stage is one of them; else the stages in the
    order journeys reach them (mean position of each stage's first visit), as a map of one's own
    would list them (e.g. Discover, Browse, Consider, Checkout, Retain).
    """
    paths = journeys["stages"].fillna("").astype(str).str.split(_SEP).explode()
    paths = paths[paths != ""]
    if paths.empty or paths.isin(DEFAULT_STAGES).all():
        return StageMap()
    pos = paths.groupby(level=0).cumcount()
    first = pd.DataFrame({"stage": paths.to_numpy(), "pos": pos.to_numpy(), "j": paths.index})
    first = first.drop_duplicates(["j", "stage"])
    order = first.groupby("stage")["pos"].mean().sort_values(kind="stable")
    return StageMap(stages=tuple(order.index), touchpoints={})


def markov_forecast(
    train: CutoffSplit, test: CutoffSplit, *, stage_map: StageMap | None = None
) -> np.ndarray:
    """Return each test journey's absorbing probability of conversion from its current stage.

    ``stage_map``: the one the journeys were built with (default: :func:`stage_map_of` the
    training journeys).
    """
    from analysis.models.transitions import StageTransitionModel

    counts = train.journeys.stage_transitions()
    if counts.empty:
        return base_rate_forecast(train, test)
    sm = stage_map or stage_map_of(train.journeys.journeys)
    try:
        model = StageTransitionModel(counts, stage_map=sm, model_config={"pooling": "none"})
    except DataError:  # no visit has ended yet (e.g. Olist's leads before any deal): no chain
        return base_rate_forecast(train, test)
    model.fit_conjugate(draws=200, chains=1, random_seed=0)
    conv = model.conversion_probability().mean(("chain", "draw")).to_pandas()  # segment × state
    feats = journey_features(test)
    # a segment the training cut-off did not see gets the segments' mean; a stage it did not
    # see (or none yet) starts at (start)
    table = conv.reindex(feats["segment"].astype(str)).fillna(conv.mean(axis=0))
    state = feats["last_stage"].astype(str).where(lambda s: s.isin(conv.columns), START)
    cols = conv.columns.get_indexer(state)
    return table.to_numpy()[np.arange(len(feats)), cols]


def boosted_forecast(train: CutoffSplit, test: CutoffSplit, *, seed: int = 0) -> np.ndarray:
    """Return a gradient-boosted classifier's P(convert within the horizon) for ``test``."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    x_train = journey_features(train)
    y = train.open["converted_next"].to_numpy()
    if len(np.unique(y)) < 2:
        return base_rate_forecast(train, test)
    channels = [c[3:] for c in x_train.columns if c.startswith("ch_")]
    x_test = journey_features(test, channels=channels)
    for c in ("last_stage", "segment"):  # the test's categories in the training's order
        x_test[c] = pd.Categorical(x_test[c].astype(str), categories=x_train[c].cat.categories)
    clf = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=seed)
    clf.fit(x_train, y)
    return clf.predict_proba(x_test)[:, 1]
