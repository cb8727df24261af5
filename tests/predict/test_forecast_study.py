"""The forecast's backtest on a large synthetic world (slow: ~2 min; bench/forecast_backtest.py runs
three seeds and the clickstream simulator)."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from analysis.predict import (
    base_rate_forecast,
    bayes_forecast,
    boosted_forecast,
    expected_calibration_error,
    markov_forecast,
    run_backtest,
)
from analysis.predict.scores import log_loss_difference


@pytest.mark.slow
def test_the_bayesian_model_holds_against_the_baselines_on_20000_persons():
    from analysis import synth

    events, _ = synth.generate(20000, seed=5)
    methods = {
        "base rate": base_rate_forecast,
        "markov": markov_forecast,
        "boosted": boosted_forecast,
        "bayes": functools.partial(bayes_forecast, method="laplace"),
    }
    keep: dict = {}
    table = run_backtest(
        events, ["2024-04-15", "2024-05-15"], train_origins=4, methods=methods, keep=keep
    )
    for cut, part in table.groupby("cutoff"):
        ll = part.set_index("method")["log_loss"]
        assert ll["bayes"] < min(ll["markov"], ll["base rate"])
        p, y = keep[(cut, "bayes")]
        gap = log_loss_difference(p, keep[(cut, "boosted")][0], y)
        assert gap["lower"] <= 0  # no worse than the boosted trees beyond the journeys' luck
        assert part.set_index("method").loc["bayes", "decile_coverage"] >= 0.8
    ps = np.concatenate([v[0] for k, v in keep.items() if k[1] == "bayes"])
    ys = np.concatenate([v[1] for k, v in keep.items() if k[1] == "bayes"])
    assert expected_calibration_error(ps, ys) <= 0.02
