"""The step table (Journeys.touchpoint_steps) and the touchpoint funnel (analysis.friction.funnel)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.friction import pool_beta, step_order, touchpoint_funnel
from analysis.journeys import build_journeys
from analysis.schema import DataError


@pytest.fixture
def tiny(make_events):
    rows = [
        dict(person_id=1, timestamp="2024-01-01T00:00Z", touchpoint="ad", stage="See", segment="a"),
        dict(
            person_id=1, timestamp="2024-01-02T00:00Z", touchpoint="visit", stage=None, segment="b"
        ),
        dict(
            person_id=1,
            timestamp="2024-01-03T00:00Z",
            touchpoint="buy",
            stage="Do",
            conversion=True,
            segment="b",
        ),
        dict(person_id=1, timestamp="2024-01-04T00:00Z", touchpoint="ad", stage="See", segment="b"),
        dict(
            person_id=1,
            timestamp="2024-03-30T00:00Z",
            touchpoint="visit",
            stage="Think",
            segment="b",
        ),
        dict(
            person_id=2,
            timestamp="2024-01-05T00:00Z",
            touchpoint="cart",
            stage="Think",
            segment="c",
        ),
        dict(person_id=2, timestamp="2024-01-05T01:00Z", touchpoint="pay", stage="Do", segment="c"),
        dict(
            person_id=None,
            timestamp="2024-01-05T00:00Z",
            touchpoint="visit",
            stage="Think",
            segment="c",
        ),
    ]
    ev = make_events(rows)
    ev["person_id"] = ev["person_id"].astype("Int64")
    return ev, build_journeys(ev, as_of="2024-04-01")


def test_touchpoint_steps_by_hand(tiny):
    ev, jr = tiny
    s = jr.touchpoint_steps(by="segment", events=ev)
    assert list(s.columns) == [
        "segment",
        "person_id",
        "journey_index",
        "pos",
        "timestamp",
        "touchpoint",
        "stage",
        "conversion",
        "converted",
        "outcome",
        "journey_start",
        "n_touchpoints",
    ]
    assert s.attrs["touchpoint_from"] == "touchpoint"
    assert s["person_id"].tolist() == [1, 1, 1, 1, 1, 2, 2]
    assert s["journey_index"].tolist() == [0, 0, 0, 1, 2, 0, 0]
    assert s["pos"].tolist() == [1, 2, 3, 1, 1, 1, 2], "pos restarts at 1 in every journey"
    assert s["touchpoint"].tolist() == ["ad", "visit", "buy", "ad", "visit", "cart", "pay"]
    assert s["stage"].isna().tolist() == [False, True, False, False, False, False, False]
    assert s["conversion"].tolist() == [False, False, True, False, False, False, False]
    assert s["converted"].tolist() == [True, True, True, False, False, False, False]
    assert s["outcome"].tolist() == ["converted"] * 3 + ["dropoff", "open", "dropoff", "dropoff"]
    assert s["segment"].tolist() == ["a", "a", "a", "b", "b", "c", "c"], "the journey's first value"
    assert s["n_touchpoints"].tolist() == [3, 3, 3, 1, 1, 2, 2]
    assert str(s["timestamp"].dt.tz) == "UTC"
    assert s["timestamp"].iloc[6] == pd.Timestamp("2024-01-05T01:00Z")
    assert (s["journey_start"].iloc[:3] == pd.Timestamp("2024-01-01T00:00Z")).all()
    assert s["journey_start"].iloc[6] == pd.Timestamp("2024-01-05T00:00Z")


def test_touchpoint_steps_without_events_uses_the_channel(tiny):
    ev, jr = tiny
    s = jr.touchpoint_steps()
    assert s.attrs["touchpoint_from"] == "channel"
    assert (s["touchpoint"] == "display").all()
    assert "segment" not in s.columns
    with pytest.raises(DataError):
        jr.touchpoint_steps(events=ev.iloc[:-2])


def test_touchpoint_steps_on_synthetic_journeys(synth_small):
    from dataclasses import replace

    from analysis.identity import stitch_identities

    events, truth = synth_small
    ev = stitch_identities(events)
    jr = build_journeys(ev, as_of=truth.end, inactivity_days=truth.inactivity_days)
    s = jr.touchpoint_steps(by="segment", events=ev)
    assert len(s) == jr.summary["events_used"]
    j = jr.journeys.set_index(["person_id", "journey_index"])
    per = s.groupby(["person_id", "journey_index"])
    assert (per.size() == j["n_touchpoints"]).all()
    assert (per["pos"].max() == j["n_touchpoints"]).all() and (per["pos"].min() == 1).all()
    assert (per["segment"].first() == j["segment"]).all()
    assert (per["conversion"].sum() == j["converted"].astype(int)).all()
    assert (per["timestamp"].min() == j["start"]).all()
    assert sorted(s["touchpoint"].unique()) == sorted(ev["touchpoint"].unique())
    # the table from the engine alone (no data in memory) is the same
    s2 = replace(jr, data=None).touchpoint_steps(by="segment", events=ev)
    pd.testing.assert_frame_equal(s, s2, check_dtype=False)


# ----------------------------------------------------------------------------- the funnel
FUNNEL = ["home", "product", "cart", "checkout", "payment"]


def checkout_steps(n: int = 3000, seed: int = 1, error_share: float = 0.3) -> pd.DataFrame:
    """A shop funnel where ``payment_error`` happens only at payment, the last step before the
    purchase: journeys that meet it mostly fail (20% buy against 80%), often after going back to
    the cart. A harmless ``wishlist`` visit happens anywhere."""
    rng = np.random.default_rng(seed)
    go_on = [0.6, 0.5, 0.7, 0.8]  # home → product → cart → checkout → payment
    rows = []
    for j in range(n):
        path = ["home"]
        for nxt, p in zip(FUNNEL[1:], go_on, strict=True):
            if rng.random() >= p:
                break
            path.append(nxt)
        converted = False
        if path[-1] == "payment":
            if rng.random() < error_share:
                path.append("payment_error")
                converted = rng.random() < 0.2
                if not converted and rng.random() < 0.6:
                    path += ["cart", "help"]  # back to the cart, a help page, then gone
            else:
                converted = rng.random() < 0.8
        if rng.random() < 0.3:
            path.insert(int(rng.integers(1, len(path) + 1)), "wishlist")
        if converted:
            path.append("purchase")
        outcome = "converted" if converted else ("open" if rng.random() < 0.03 else "dropoff")
        seg = "web" if j % 2 else "app"
        for i, tp in enumerate(path, start=1):
            rows.append((seg, j, 0, i, tp, tp == "purchase", converted, outcome))
    cols = [
        "segment",
        "person_id",
        "journey_index",
        "pos",
        "touchpoint",
        "conversion",
        "converted",
        "outcome",
    ]
    return pd.DataFrame(rows, columns=cols)


def test_touchpoint_funnel_conditions_on_depth():
    steps = checkout_steps()
    # the naive comparison over all closed journeys: the error looks helpful
    closed = steps[steps["outcome"] != "open"]
    j = closed.groupby("person_id").agg(
        converted=("converted", "first"), err=("touchpoint", lambda s: (s == "payment_error").any())
    )
    naive_with, naive_without = j.loc[j.err, "converted"].mean(), j.loc[~j.err, "converted"].mean()
    assert naive_with > naive_without + 0.05, (naive_with, naive_without)

    f = touchpoint_funnel(steps)
    learned = f.attrs["order"]
    assert [s for s in learned if s in FUNNEL] == FUNNEL, learned
    assert learned.index("payment_error") == learned.index("payment") + 1, learned
    top = f.iloc[0]
    assert top["touchpoint"] == "payment_error" and top["rank"] == 1
    assert top["compared_at"] == "payment"
    assert top["lost_low"] > 0 and top["p_harm"] > 0.99
    assert top["rate_with"] < 0.35 and top["rate_without"] > 0.7
    # the comparison is the closed journeys that reached payment and never met the error
    exp = j[
        ~j.err & closed.groupby("person_id")["touchpoint"].agg(lambda s: (s == "payment").any())
    ]
    assert top["comparison"] == len(exp) and top["comparison_converted"] == exp["converted"].sum()
    assert top["exposed"] == j.err.sum()
    # lost = exposed × (rate_without − rate_with), near the plug-in value
    plug = top["exposed"] * (
        top["comparison_converted"] / top["comparison"] - top["exposed_converted"] / top["exposed"]
    )
    assert abs(top["lost"] - plug) < 0.05 * abs(plug) + 1
    assert top["lost_low"] < top["lost"] < top["lost_high"]
    # steps every buyer passes go with more conversions, not fewer
    assert (f.set_index("touchpoint").loc[["product", "cart", "checkout"], "lost"] < 0).all()
    # the error is followed by leaving within a few events, even when it is not the last event
    err = f.set_index("touchpoint").loc["payment_error"]
    assert (
        err["hazard"] > 0.6 and err["hazard"] > f.set_index("touchpoint").loc["checkout", "hazard"]
    )
    assert (
        f.set_index("touchpoint").loc["payment_error", "hazard"]
        > touchpoint_funnel(steps, horizon=0).set_index("touchpoint").loc["payment_error", "hazard"]
    )


def test_touchpoint_funnel_by_segment_and_given_order():
    steps = checkout_steps(n=4000, seed=3)
    f = touchpoint_funnel(steps, by="segment", order=[*FUNNEL, "payment_error"])
    assert list(f.columns[:6]) == [
        "segment",
        "touchpoint",
        "depth",
        "compared_at",
        "reach",
        "exposed",
    ]
    firsts = f[f["rank"] == 1]
    assert set(firsts["segment"]) == {"app", "web"}
    assert (firsts["touchpoint"] == "payment_error").all()
    # touchpoints outside the given order have no depth but are still compared
    assert f.loc[f["touchpoint"] == "wishlist", "depth"].isna().all()
    assert f.loc[f["touchpoint"] == "payment_error", "depth"].eq(6).all()
    assert (
        f["reach"].sum()
        == steps[~steps["conversion"]].drop_duplicates(["person_id", "touchpoint"]).shape[0]
    )


def test_touchpoint_funnel_counts_by_hand():
    # journeys: a > b > c (buy); a > b > x > c (drop); a > b (drop); a > x (drop); a > b > x > b (open)
    spec = [("a b c", True), ("a b x c", False), ("a b", False), ("a x", False), ("a b x b", None)]
    rows = []
    for j, (path, conv) in enumerate(spec):
        tps = path.split() + (["buy"] if conv else [])
        out = "open" if conv is None else ("converted" if conv else "dropoff")
        rows += [(j, 0, i, tp, tp == "buy", bool(conv), out) for i, tp in enumerate(tps, start=1)]
    steps = pd.DataFrame(
        rows,
        columns=[
            "person_id",
            "journey_index",
            "pos",
            "touchpoint",
            "conversion",
            "converted",
            "outcome",
        ],
    )
    assert step_order(steps) == ["a", "b", "x", "c"]  # mean distinct ranks 1, 2, 2.67, 3
    assert step_order(steps, ["a", "b"]) == ["a", "b"]
    f = touchpoint_funnel(steps, min_journeys=1, horizon=0).set_index("touchpoint")
    # x: met after b in two of its three journeys (depths 2, 1, 2 → lower median 2): compared at b;
    # exposed: closed journeys that reached b before x: one (a b x c, no purchase);
    # comparison: closed journeys reaching b or deeper without x: a b c (bought), a b
    assert f.loc["x", "compared_at"] == "b"
    assert (f.loc["x", "reach"], f.loc["x", "exposed"], f.loc["x", "exposed_converted"]) == (
        3,
        1,
        0,
    )
    assert (f.loc["x", "comparison"], f.loc["x", "comparison_converted"]) == (2, 1)
    # no segments: uniform priors, Beta(1 + k, 1 + n - k)
    assert f.loc["x", "rate_with"] == pytest.approx(1 / 3)
    assert f.loc["x", "rate_without"] == pytest.approx(2 / 4)
    # hazard with horizon 0: x was the last event of a x (dropoff); a b x c went on; open left out
    assert (f.loc["x", "hazard_n"], f.loc["x", "hazard"]) == (2, pytest.approx(2 / 4))
    assert f.loc["a", "compared_at"] == "(start)" and f.loc["a", "comparison"] == 0
    assert not f.loc["a", "compared"] and pd.isna(f.loc["a", "lost"])
    assert "buy" not in f.index  # the conversion is the end, not a step


def test_pool_beta():
    # fewer than three groups: uniform prior
    a, b = pool_beta([[3, 5]], [[10, 10]])
    assert (a[0], b[0]) == (1.0, 1.0)
    # groups that agree are pooled up to the cap (the median group size)
    a, b = pool_beta([[50, 50, 50, 50]], [[100, 100, 100, 100]])
    assert a[0] + b[0] == pytest.approx(100) and a[0] / (a[0] + b[0]) == pytest.approx(
        0.5, abs=0.01
    )
    # groups that differ a lot are barely pooled
    a, b = pool_beta([[5, 50, 95, 10]], [[100, 100, 100, 100]])
    assert a[0] + b[0] < 5
    # a row without data keeps a weak prior
    a, b = pool_beta([[0, 0, 0]], [[0, 0, 0]])
    assert np.isfinite(a).all() and (a > 0).all() and (b > 0).all()


def test_touchpoint_funnel_any_row_order_missing_values_and_two_columns():
    steps = checkout_steps(n=600, seed=4)
    steps["platform"] = np.where(steps["person_id"] % 3 == 0, "ios", "android")
    steps.loc[steps["person_id"] % 7 == 0, "segment"] = None
    steps.loc[steps.index % 50 == 0, "touchpoint"] = None
    f = touchpoint_funnel(steps, by=["segment", "platform"])
    shuffled = touchpoint_funnel(steps.sample(frac=1, random_state=0), by=["segment", "platform"])
    pd.testing.assert_frame_equal(f, shuffled)
    assert f["segment"].isna().any() and "(no touchpoint)" in set(f["touchpoint"])
    # every compared touchpoint × group is ranked, missing segments included
    assert f.loc[f["compared"], "rank"].notna().all()
    assert (
        f["reach"].sum()
        == steps[~steps["conversion"]]
        .assign(touchpoint=steps["touchpoint"].fillna("(no touchpoint)"))
        .drop_duplicates(["person_id", "touchpoint"])
        .shape[0]
    )
