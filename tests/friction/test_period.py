"""Period over period (analysis.friction.period) against a by-hand computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.friction import period_over_period
from analysis.schema import DataError


def _steps(spec):
    """spec: (segment, [(day of January 2024, touchpoint), ...], outcome) per journey."""
    rows = []
    for j, (seg, events, outcome) in enumerate(spec):
        conv = outcome == "converted"
        events = events + ([(events[-1][0], "buy")] if conv else [])
        for i, (day, tp) in enumerate(events, start=1):
            rows.append(
                (
                    seg,
                    j,
                    0,
                    i,
                    pd.Timestamp(2024, 1, day, 12, tz="UTC"),
                    tp,
                    tp == "buy",
                    conv,
                    outcome,
                )
            )
    return pd.DataFrame(
        rows,
        columns=[
            "segment",
            "person_id",
            "journey_index",
            "pos",
            "timestamp",
            "touchpoint",
            "conversion",
            "converted",
            "outcome",
        ],
    )


# previous period (Jan 11, Jan 21], this period (Jan 21, Jan 31]
SPEC = [
    ("a", [(12, "home"), (13, "cart")], "converted"),
    ("a", [(14, "home"), (14, "cart")], "converted"),
    ("a", [(15, "home")], "dropoff"),
    ("a", [(16, "home")], "dropoff"),
    ("b", [(17, "home")], "dropoff"),
    ("a", [(22, "home"), (23, "cart")], "converted"),
    ("b", [(24, "home"), (24, "cart")], "converted"),
    ("b", [(25, "home"), (26, "cart")], "dropoff"),
    ("b", [(26, "home")], "dropoff"),
    (
        "b",
        [(20, "home"), (27, "cart")],
        "dropoff",
    ),  # started in the previous period, cart in this one
    ("a", [(30, "home"), (30, "cart")], "open"),  # open: left out of the rates, counted apart
    ("a", [(5, "home"), (6, "cart")], "converted"),  # before both periods
]


def test_period_over_period_by_hand():
    st = _steps(SPEC)
    out = period_over_period(st, by="segment", period_end="2024-01-31T23:59Z", period_days=10)
    assert out.attrs["this_start"] == pd.Timestamp("2024-01-21T23:59Z")
    assert out.attrs["prev_start"] == pd.Timestamp("2024-01-11T23:59Z")
    assert list(out["step"].unique()) == ["(journey)", "home", "cart"]
    j = out[out["step"] == "(journey)"].set_index("segment")
    # (journey): a 4 (2 bought) → 1 (1); b 2 (0) → 3 (1), by the journey's first touch
    assert j.loc["a", ["n_prev", "conv_prev", "n_this", "conv_this"]].tolist() == [4, 2, 1, 1]
    assert j.loc["b", ["n_prev", "conv_prev", "n_this", "conv_this"]].tolist() == [2, 0, 3, 1]
    assert j.loc["a", "open_this"] == 1 and j.loc["(all)", "open_this"] == 1
    w0, w1 = np.array([4, 2]) / 6, np.array([1, 3]) / 4
    r0, r1 = np.array([2 / 4, 0 / 2]), np.array([1 / 1, 1 / 3])
    assert j.loc[["a", "b"], "share_prev"].to_numpy() == pytest.approx(w0)
    assert j.loc[["a", "b"], "share_this"].to_numpy() == pytest.approx(w1)
    mix = (w1 - w0) * (r0 + r1) / 2
    within = (w0 + w1) / 2 * (r1 - r0)
    assert j.loc[["a", "b"], "mix"].to_numpy() == pytest.approx(mix)
    assert j.loc[["a", "b"], "within"].to_numpy() == pytest.approx(within)
    tot = j.loc["(all)"]
    change = (1 + 1) / 4 - 2 / 6
    assert tot["change"] == pytest.approx(change)
    assert tot["mix"] == pytest.approx(mix.sum()) and tot["within"] == pytest.approx(within.sum())
    assert tot["mix"] + tot["within"] == pytest.approx(change)
    # rates: two segments → uniform priors, Beta(1 + k, 1 + n - k); totals likewise
    assert j.loc["a", "rate_prev"] == pytest.approx(3 / 6) and j.loc[
        "b", "rate_this"
    ] == pytest.approx(2 / 5)
    assert tot["rate_prev"] == pytest.approx(3 / 8) and tot["rate_this"] == pytest.approx(3 / 6)
    assert tot["rate_prev_low"] < tot["rate_prev"] < tot["rate_prev_high"]
    assert tot["diff"] == pytest.approx(3 / 6 - 3 / 8, abs=0.02)
    assert tot["diff_low"] < tot["diff"] < tot["diff_high"] and 0 < tot["p_up"] < 1

    cart = out[out["step"] == "cart"].set_index("segment")
    # cart, by when it was reached: a 2 (2) → 1 (1); b 0 → 3 (1)
    assert cart.loc["a", ["n_prev", "conv_prev", "n_this", "conv_this"]].tolist() == [2, 2, 1, 1]
    assert cart.loc["b", ["n_prev", "conv_prev", "n_this", "conv_this"]].tolist() == [0, 0, 3, 1]
    # b had no cart journeys before: it takes the step's previous rate (1.0), with weight 0
    w0, w1 = np.array([1.0, 0.0]), np.array([1 / 4, 3 / 4])
    r0, r1 = np.array([1.0, 1.0]), np.array([1.0, 1 / 3])
    assert cart.loc[["a", "b"], "mix"].to_numpy() == pytest.approx((w1 - w0) * (r0 + r1) / 2)
    assert cart.loc[["a", "b"], "within"].to_numpy() == pytest.approx((w0 + w1) / 2 * (r1 - r0))
    assert cart.loc["(all)", "change"] == pytest.approx(2 / 4 - 1.0)
    assert cart.loc["(all)", "mix"] + cart.loc["(all)", "within"] == pytest.approx(2 / 4 - 1.0)


def test_period_over_period_defaults_and_choices():
    st = _steps(SPEC)
    out = period_over_period(st)  # no segments: one row per step, mix 0
    assert "segment" not in out.columns and len(out) == 3
    assert (out["mix"] == 0).all()
    assert out["within"].to_numpy() == pytest.approx(out["change"].to_numpy())
    # default: the last quarter of the span, ending at the last timestamp
    span = pd.Timestamp("2024-01-30T12:00Z") - pd.Timestamp("2024-01-05T12:00Z")
    assert out.attrs["this_end"] == pd.Timestamp("2024-01-30T12:00Z")
    assert out.attrs["this_end"] - out.attrs["this_start"] == span / 4
    one = period_over_period(st, step="cart", period_end="2024-01-31T23:59Z", period_days=10)
    assert one["step"].tolist() == ["cart"] and one["n_this"].item() == 4
    with pytest.raises(DataError):
        period_over_period(st, step="checkout")


def test_period_over_period_pools_three_segments():
    rng = np.random.default_rng(0)
    spec = []
    for seg, p in (("a", 0.3), ("b", 0.35), ("c", 0.4)):
        for _ in range(200):
            day = int(rng.integers(12, 31))
            spec.append((seg, [(day, "home")], "converted" if rng.random() < p else "dropoff"))
    spec += [("tiny", [(25, "home")], "converted")] * 6  # six journeys, all bought
    out = period_over_period(
        _steps(spec), by="segment", period_end="2024-01-31T23:59Z", period_days=10
    )
    this = out[out["step"] == "(journey)"].set_index("segment")
    pooled = this.loc["(all)", "conv_this"] / this.loc["(all)", "n_this"]
    tiny = this.loc["tiny"]
    uniform = (1 + 6) / (2 + 6)
    # the tiny segment is pulled toward its peers, much more than a uniform prior pulls it
    assert tiny["rate_this"] < pooled + 0.5 * (uniform - pooled)
    assert tiny["rate_this"] > pooled
    # the big segments barely move
    a = this.loc["a"]
    assert a["rate_this"] == pytest.approx(a["conv_this"] / a["n_this"], abs=0.02)
