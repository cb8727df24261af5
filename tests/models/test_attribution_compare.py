"""Comparing attribution models: the side-by-side table and held-out predictive scores.

(Kept apart from test_attribution_paths.py, the path models' own tests.)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.models.attribution import (
    attribution_holdout,
    compare_attribution,
    heuristic_attribution,
    holdout_split,
    markov_attribution,
    shapley_attribution,
)
from analysis.schema import DataError


def _tables():
    heur = pd.DataFrame(
        {
            "channel": ["a", "b", "c"],
            "first_touch_conversions": [6.0, 4.0, 0.0],
            "first_touch_value": [60.0, 40.0, 0.0],
            "last_touch_conversions": [2.0, 3.0, 5.0],
            "last_touch_value": [20.0, 30.0, 50.0],
        }
    )
    markov = pd.DataFrame(
        {
            "channel": ["a", "b", "c"],
            "removal_effect": [0.5, 0.3, 0.2],
            "conversions": [5.0, 3.0, 2.0],
            "conversions_mean": [5.1, 2.9, 2.0],
            "conversions_lower": [4.0, 2.0, 1.0],
            "conversions_upper": [6.0, 4.0, 3.0],
        }
    )
    shapley = pd.DataFrame(
        {"channel": ["a", "b", "c"], "shapley": [0.2, 0.1, 0.1], "share": [0.5, 0.25, 0.25]}
    )
    bayes = pd.DataFrame(
        {
            "channel": ["a", "b"],
            "conversions": [7.0, 3.0],  # no row for c
            "conversions_lower": [6.0, 2.0],
            "conversions_upper": [8.0, 4.0],
            "sd": [0.5, 0.5],
        }
    )
    plain = pd.DataFrame({"channel": ["b", "a"], "conversions": [4.0, 6.0]})  # no c, no intervals
    return heur, markov, shapley, bayes, plain


def test_compare_puts_every_model_side_by_side():
    heur, markov, shapley, bayes, plain = _tables()
    out = compare_attribution(
        {
            "heuristic": heur,
            "markov_1": markov,
            "shapley": shapley,
            "bayesian": bayes,
            "other": plain,
        },
        total_conversions=10,
    )
    assert list(out.columns) == ["channel", "model", "conversions", "lower", "upper", "share"]
    assert list(dict.fromkeys(out["model"])) == [
        "first_touch",
        "last_touch",
        "markov_1",
        "shapley",
        "bayesian",
        "other",
    ]
    assert len(out) == 6 * 3  # every model × every channel
    t = out.set_index(["model", "channel"])
    assert t.loc[("last_touch", "c"), "conversions"] == 5.0
    assert np.isnan(t.loc[("last_touch", "c"), "lower"])  # heuristics have no intervals
    assert t.loc[("markov_1", "a"), ["conversions", "lower", "upper"]].tolist() == [5.0, 4.0, 6.0]
    assert t.loc[("shapley", "a"), "conversions"] == pytest.approx(5.0)  # share × total
    # a channel a model does not list: no credit (0), intervals 0 where the model has intervals
    assert t.loc[("bayesian", "c"), ["conversions", "lower", "upper", "share"]].tolist() == [
        0.0,
        0.0,
        0.0,
        0.0,
    ]
    assert t.loc[("other", "c"), "conversions"] == 0.0 and np.isnan(t.loc[("other", "c"), "lower"])
    assert t.loc[("other", "a"), "share"] == pytest.approx(0.6)
    assert out.groupby("model")["share"].sum().to_numpy() == pytest.approx(np.ones(6))


def test_compare_missing_as_nan_and_wide():
    heur, markov, _, bayes, _ = _tables()
    out = compare_attribution({"markov_1": markov, "bayesian": bayes}, fill_missing=None).set_index(
        ["model", "channel"]
    )
    assert out.loc[("bayesian", "c")].isna().all()
    assert out.loc[("bayesian", "a"), "share"] == pytest.approx(0.7)
    w = compare_attribution({"heuristic": heur, "markov_1": markov, "bayesian": bayes}, wide=True)
    assert list(w.columns) == ["first_touch", "last_touch", "markov_1", "bayesian"]
    assert list(w.index) == ["a", "b", "c"]
    assert w.loc["c", "bayesian"] == 0.0 and w.loc["b", "markov_1"] == 3.0


def test_compare_reports_every_problem_at_once():
    heur, markov, shapley, _, _ = _tables()
    with pytest.raises(DataError) as e:
        compare_attribution(
            {
                "shapley": shapley,
                "x": pd.DataFrame({"conversions": [1]}),
                "y": markov.drop(columns="conversions_upper"),
                "h1": heur,
                "h2": heur,
            }
        )
    msg = str(e.value)
    for part in ("needs total_conversions", "no 'channel' column", "only one of", "appear twice"):
        assert part in msg
    with pytest.raises(DataError, match="found none of"):
        compare_attribution({"z": pd.DataFrame({"channel": ["a"], "credit": [1.0]})})


def test_compare_accepts_the_real_model_outputs():
    paths = pd.DataFrame(
        {"path": ["a > b", "b", "c > a", "c"], "conversions": [3, 1, 2, 0], "nulls": [1, 4, 2, 5]}
    )
    total = paths["conversions"].sum()
    out = compare_attribution(
        {
            "heuristic": heuristic_attribution(paths),
            "markov_1": markov_attribution(paths, draws=50),
            "shapley": shapley_attribution(paths),
        },
        total,
    )
    sums = out.groupby("model", sort=False)["conversions"].sum()
    assert sums.to_numpy() == pytest.approx(np.full(len(sums), total))
    assert out.loc[out.model == "markov_1", "lower"].notna().all()


def _last_channel_paths(seed=0, journeys=60):
    """Random paths over 4 channels; whether a journey converts depends only on its last channel."""
    rng = np.random.default_rng(seed)
    rate = {"a": 0.05, "b": 0.2, "c": 0.5, "d": 0.8}
    rows = {}
    for _ in range(300):
        p = " > ".join(rng.choice(list(rate), size=rng.integers(1, 5)))
        rows[p] = None
    paths = pd.DataFrame({"path": list(rows)})
    last = paths["path"].str.split(" > ").str[-1].map(rate)
    conv = rng.binomial(journeys, last)
    return paths.assign(conversions=conv, nulls=journeys - conv)


def test_holdout_split_is_seeded_and_keeps_totals():
    paths = _last_channel_paths().assign(value=lambda d: d.conversions * 10.0)
    train, test = holdout_split(paths, test_share=0.3, seed=4)
    again, _ = holdout_split(paths, test_share=0.3, seed=4)
    other, _ = holdout_split(paths, test_share=0.3, seed=5)
    pd.testing.assert_frame_equal(train, again)
    assert not train.equals(other)
    both = pd.concat([train, test]).groupby("path")[["conversions", "nulls", "value"]].sum()
    orig = paths.set_index("path")[["conversions", "nulls", "value"]]
    pd.testing.assert_frame_equal(both.reindex(orig.index).astype(float), orig.astype(float))
    n = paths.conversions.sum() + paths.nulls.sum()
    assert (test.conversions.sum() + test.nulls.sum()) / n == pytest.approx(0.3, abs=0.02)
    with pytest.raises(DataError, match="whole numbers"):
        holdout_split(paths.assign(nulls=paths.nulls + 0.5))


def test_holdout_scores_find_the_last_channel_signal():
    paths = _last_channel_paths()
    out = attribution_holdout(paths, seed=1).set_index("model")
    assert list(out.index) == ["markov_1", "markov_2", "last_touch", "channel_set", "base_rate"]
    assert list(out.columns) == ["log_loss", "auc", "n_test_journeys"]
    base = out.loc["base_rate"]
    assert base["auc"] == 0.5
    for m in ("last_touch", "markov_1"):
        assert out.loc[m, "log_loss"] < base["log_loss"]
        assert out.loc[m, "auc"] > 0.6
    assert out["n_test_journeys"].nunique() == 1
    _, test = holdout_split(paths, seed=1)
    assert out["n_test_journeys"].iloc[0] == test.conversions.sum() + test.nulls.sum()
    pd.testing.assert_frame_equal(attribution_holdout(paths, seed=1).set_index("model"), out)


def test_holdout_predictions_by_hand():
    """Train: a converts 3 of 4, b 0 of 4, 'a > b' 1 of 2 (overall 4/10). Test paths end in a, b
    and the unseen x; order 2 knows 'a > b' but not 'b > a'."""
    from analysis.models.attribution.compare import holdout_predictions

    train = pd.DataFrame(
        {"path": ["a", "b", "a > b"], "conversions": [3, 0, 1], "nulls": [1, 4, 1]}
    )
    test = pd.DataFrame(
        {"path": ["c > a", "b", "x", "a > b", "b > a"], "conversions": [1] * 5, "nulls": [1] * 5}
    )
    p = holdout_predictions(
        train,
        test,
        orders=(1, 2),
        sep=">",
        path="path",
        conversions="conversions",
        nulls="nulls",
        smoothing=2.0,
    )
    rate = 0.4
    # order 1: exits of a = 3 conv / 1 null; of b = 1 conv / 5 null (b and a > b end in b)
    assert p["markov_1"] == pytest.approx([3 / 4, 1 / 6, rate, 1 / 6, 3 / 4])
    # order 2: states a, b, 'a > b'; 'c > a' and 'b > a' are unseen -> back off to the train rate
    assert p["markov_2"] == pytest.approx([rate, 0.0, rate, 1 / 2, rate])
    assert p["last_touch"] == pytest.approx([4 / 6, 2 / 8, rate, 2 / 8, 4 / 6])  # Beta(1, 1)
    # channel sets {a}: 3/4, {b}: 0/4, {a, b}: 1/2, shrunk by 2 pseudo-journeys at 0.4
    assert p["channel_set"] == pytest.approx([rate, 0.8 / 6, rate, 1.8 / 4, 1.8 / 4])
    assert p["base_rate"] == pytest.approx([rate] * 5)
