"""Attribution models: parity with peers on the same input, hand-checked rules, input errors."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.models.attribution import HEURISTIC_MODELS, explode_paths, heuristic_attribution
from analysis.schema import DataError


@pytest.fixture(scope="module")
def ca_data():
    """ChannelAttribution's bundled ``Data.csv``: 10,000 real-format paths."""
    spec = importlib.util.find_spec("cypack")
    if spec is None:
        pytest.fail(
            "channelattribution is not installed (it is in requirements.lock: run make venv)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "Data.csv"
    return pd.read_csv(path, sep=";")


def test_heuristics_identical_to_channelattribution(ca_data):
    import ChannelAttribution as ca

    peer = ca.heuristic_models(
        ca_data, "path", "total_conversions", var_value="total_conversion_value"
    )
    peer = peer.set_index("channel_name").sort_index()
    ours = heuristic_attribution(
        ca_data, conversions="total_conversions", value="total_conversion_value"
    )
    ours = ours.set_index("channel")
    assert list(ours.index) == list(peer.index)
    for theirs, mine in (
        ("first_touch", "first_touch"),
        ("last_touch", "last_touch"),
        ("linear_touch", "linear"),
    ):
        for kind in ("conversions", "value"):
            np.testing.assert_allclose(
                ours[f"{mine}_{kind}"], peer[f"{theirs}_{kind}"], rtol=1e-12, atol=1e-9
            )


def test_every_model_hands_out_exactly_the_total(ca_data):
    ours = heuristic_attribution(
        ca_data, conversions="total_conversions", value="total_conversion_value"
    )
    for m in HEURISTIC_MODELS:
        assert ours[f"{m}_conversions"].sum() == pytest.approx(ca_data["total_conversions"].sum())
        assert ours[f"{m}_value"].sum() == pytest.approx(ca_data["total_conversion_value"].sum())


def test_rules_on_hand_computed_paths():
    paths = pd.DataFrame(
        {
            "path": ["search > social > email > direct", "direct > direct", "display"],
            "conversions": [4, 2, 1],
            "nulls": [0, 0, 5],
            "value": [40.0, 20.0, 10.0],
        }
    )
    out = heuristic_attribution(paths, half_life=1.0).set_index("channel")
    # last non-direct: path 1 -> email; path 2 is all direct -> direct; path 3 -> display
    assert out["last_non_direct_conversions"].to_dict() == {
        "direct": 2.0,
        "display": 1.0,
        "email": 4.0,
        "search": 0.0,
        "social": 0.0,
    }
    # U-shape on 4 touches: 40% first, 10% + 10% middle, 40% last; on 2 touches 50/50
    assert out.loc["search", "position_based_conversions"] == pytest.approx(0.4 * 4)
    assert out.loc["social", "position_based_conversions"] == pytest.approx(0.1 * 4)
    assert out.loc["direct", "position_based_conversions"] == pytest.approx(0.4 * 4 + 2)
    # time decay, half-life 1 touch: weights 1/8, 1/4, 1/2, 1 (normalised by 15/8)
    assert out.loc["search", "time_decay_conversions"] == pytest.approx(4 * (1 / 8) / (15 / 8))
    assert out.loc["email", "time_decay_value"] == pytest.approx(40 * (1 / 2) / (15 / 8))
    assert out.loc["display", "first_touch_value"] == 10.0


def test_spaces_around_separators_do_not_matter():
    a = heuristic_attribution(
        pd.DataFrame({"path": ["a > b", "a>b"], "conversions": [1, 1]}), models=["linear"]
    )
    assert a.set_index("channel")["linear_conversions"].to_dict() == {"a": 1.0, "b": 1.0}
    t = explode_paths(pd.DataFrame({"path": ["x > y > x"]}))
    assert t["channel"].tolist() == ["x", "y", "x"] and t["length"].tolist() == [3, 3, 3]


def test_bad_path_tables_are_named():
    with pytest.raises(DataError, match=r"missing column\(s\) \['conversions'\]"):
        heuristic_attribution(pd.DataFrame({"path": ["a"]}))
    with pytest.raises(DataError, match="missing or negative") as e:
        heuristic_attribution(pd.DataFrame({"path": ["a", "b"], "conversions": [1, -2]}))
    assert e.value.rows == [2]
    with pytest.raises(DataError, match="empty path"):
        heuristic_attribution(pd.DataFrame({"path": ["a", " "], "conversions": [1, 1]}))
    with pytest.raises(ValueError, match="unknown model"):
        heuristic_attribution(pd.DataFrame({"path": ["a"], "conversions": [1]}), models=["u_shape"])
    with pytest.raises(ValueError, match="position_weights"):
        heuristic_attribution(
            pd.DataFrame({"path": ["a"], "conversions": [1]}), position_weights=(0.5, 0.5, 0.5)
        )


def test_attributes_journey_paths(synth_small):
    import analysis

    ev, _ = synth_small
    paths = analysis.build_journeys(analysis.stitch_identities(ev)).channel_paths()
    out = heuristic_attribution(paths)
    assert set(out["channel"]) <= set(ev["channel"])
    assert out["last_touch_conversions"].sum() == pytest.approx(paths["conversions"].sum())
    assert out["linear_value"].sum() == pytest.approx(paths["value"].sum())


@pytest.mark.parametrize("order", [1, 2, 3, pytest.param(4, marks=pytest.mark.slow)])
def test_markov_matches_channelattribution(ca_data, order):
    """ChannelAttribution simulates; with 1e7 simulated paths and a 1% convergence criterion
    its attributed conversions agree with our exact solve within 2% for every channel with at
    least 1% of the conversions (measured: within 1.2% for orders 1-4). Order 4 is slow (the
    peer simulates ~30 s): it runs with ``make test-slow``."""
    import ChannelAttribution as ca

    from analysis.models.attribution import markov_attribution

    peer = ca.markov_model(
        ca_data,
        "path",
        "total_conversions",
        var_null="total_null",
        order=order,
        nsim_start=1e7,
        conv_par=0.01,
        verbose=False,
        flg_pro=False,
    )
    peer = peer.set_index("channel_name")["total_conversions"]
    ours = markov_attribution(
        ca_data, conversions="total_conversions", nulls="total_null", order=order
    )
    ours = ours.set_index("channel")["conversions"]
    assert ours.sum() == pytest.approx(ca_data["total_conversions"].sum())
    big = peer[peer / peer.sum() >= 0.01].index
    assert len(big) >= 8
    rel = (ours[big] - peer[big]).abs() / peer[big]
    assert rel.max() < 0.02, rel.sort_values().tail(3)


def test_markov_removal_effects_by_hand():
    """a > b converts once, b fails once: start → a, b 1/2 each; a → b 1; b → conversion 1/2.
    P(convert) = 1/2·1/2 + 1/2·1/2 = 1/2; without a 1/4 (RE 1/2); without b 0 (RE 1)."""
    from analysis.models.attribution import markov_attribution

    paths = pd.DataFrame({"path": ["a > b", "b"], "conversions": [1, 0], "nulls": [0, 1]})
    out = markov_attribution(paths).set_index("channel")
    assert out["removal_effect"].to_dict() == pytest.approx({"a": 0.5, "b": 1.0})
    assert out["conversions"].to_dict() == pytest.approx({"a": 1 / 3, "b": 2 / 3})
    paths = pd.DataFrame(
        {"path": ["a > b", "c > b", "a"], "conversions": [1, 1, 0], "nulls": [0, 0, 2]}
    )
    out = markov_attribution(paths).set_index("channel")
    # start→a 3/4, start→c 1/4; a→b 1/3, a→null 2/3; c→b 1; b→conv 1: P = 3/4·1/3 + 1/4 = 1/2
    # without a: 1/4 → RE 1/2; without c: 1/4 → RE 1/2; without b: 0 → RE 1
    assert out["removal_effect"].to_dict() == pytest.approx({"a": 0.5, "b": 1.0, "c": 0.5})
    assert out["conversions"].to_dict() == pytest.approx({"a": 0.5, "b": 1.0, "c": 0.5})


def test_markov_order_2_states_by_hand():
    """Order 2: states are windows of two touches (a path shorter than that is one state);
    a > a > b keeps its (a, a) state. Checked against ChannelAttribution's transition matrix
    for these paths: start → (a,b) 1/2, (a,a) 1/4, (c) 1/4; (a,b) → (b,c) 2/3, → conversion 1/3."""
    from analysis.models.attribution import markov_attribution
    from analysis.models.attribution.markov import transition_counts

    paths = pd.DataFrame(
        {"path": ["a > b > c", "a > a > b", "c"], "conversions": [1, 1, 0], "nulls": [1, 0, 1]}
    )
    states, _, _, counts = transition_counts(paths, "path", "conversions", "nulls", ">", order=2)
    assert states == ["a > a", "a > b", "b > c", "c"]
    P = counts / counts.sum(1, keepdims=True)
    assert P[0, 1:5].tolist() == pytest.approx([0.25, 0.5, 0.0, 0.25])
    assert P[2, 3] == pytest.approx(2 / 3) and P[2, 5] == pytest.approx(1 / 3)
    out = markov_attribution(paths, order=2).set_index("channel")["conversions"]
    assert out.to_dict() == pytest.approx(
        {"a": 0.8, "b": 0.8, "c": 0.4}
    )  # CA (simulated): .799, .799, .402


def test_shapley_identical_to_mta(ca_data):
    """mta's exact Shapley uses v(S) = conversions of journeys whose channel set lies within S;
    with that value function ours gives the same shares (mta rounds to 6 decimals)."""
    from mta import MTA

    from analysis.models.attribution import shapley_attribution

    peer = MTA(
        data=ca_data[["path", "total_conversions", "total_null"]].copy(),
        allow_loops=False,
        add_timepoints=False,
        sep=" > ",
    ).shapley()
    peer = pd.Series(dict(peer.attribution["shapley"]))
    ours = shapley_attribution(
        ca_data, conversions="total_conversions", nulls="total_null", value_function="conversions"
    ).set_index("channel")
    assert list(ours.index) == sorted(peer.index)
    np.testing.assert_allclose(ours["share"], peer[ours.index], atol=2e-6)
    # the two value functions differ: conversion rates credit channels differently
    rate = shapley_attribution(
        ca_data, conversions="total_conversions", nulls="total_null"
    ).set_index("channel")
    assert not np.allclose(rate["share"], ours["share"], atol=1e-3)


def test_shapley_conversion_rate_by_hand():
    """v(a) = 1/2, v(b) = 0, v(ab) = 3/6: phi_a = 1/2·1/2 + 1/2·(1/2 - 0) = 1/2, phi_b = 0."""
    from analysis.models.attribution import shapley_attribution

    paths = pd.DataFrame(
        {"path": ["a", "b", "a > b"], "conversions": [1, 0, 2], "nulls": [1, 2, 0]}
    )
    out = shapley_attribution(paths).set_index("channel")["shapley"]
    assert out.to_dict() == pytest.approx({"a": 0.5, "b": 0.0})
    with pytest.raises(ValueError, match="value_function"):
        shapley_attribution(paths, value_function="rate")


def test_markov_draws_give_intervals_that_shrink_with_data(ca_data):
    """Dirichlet posterior draws of every row: the intervals hold the point estimate, their mean
    is near it, and 100x the journeys make them about 10x narrower."""
    from analysis.models.attribution import markov_attribution

    kw = {"conversions": "total_conversions", "nulls": "total_null", "draws": 400, "seed": 1}
    small = markov_attribution(ca_data, **kw).set_index("channel")
    big = markov_attribution(
        ca_data.assign(
            total_conversions=ca_data.total_conversions * 100, total_null=ca_data.total_null * 100
        ),
        **kw,
    ).set_index("channel")
    assert (
        (small.conversions_lower <= small.conversions)
        & (small.conversions <= small.conversions_upper)
    ).all()
    main = small.conversions >= 0.01 * small.conversions.sum()
    rel = (small.conversions_mean - small.conversions).abs() / small.conversions
    assert rel[main].max() < 0.02
    width = {
        name: (d.conversions_upper - d.conversions_lower) / d.conversions
        for name, d in (("small", small), ("big", big))
    }  # relative widths (big attributes 100x the conversions)
    ratio = width["small"] / width["big"]
    assert ratio[main].between(5, 20).all(), ratio[main]
    with pytest.raises(ValueError, match="at most 400 states"):
        markov_attribution(ca_data, order=3, **kw)


ALL_PATH_FUNCTIONS = ["heuristic_attribution", "markov_attribution", "shapley_attribution"]


def _attribute(name, paths, **kw):
    from analysis.models import attribution

    return getattr(attribution, name)(paths, **kw)


@pytest.mark.parametrize("fn", ALL_PATH_FUNCTIONS)
def test_empty_channels_inside_paths_are_named(fn):
    paths = pd.DataFrame(
        {
            "path": ["a > b", "a >  > b", "b >", "> a"],
            "conversions": [1, 1, 0, 1],
            "nulls": [1, 0, 1, 1],
        }
    )
    with pytest.raises(DataError, match="empty channel") as e:
        _attribute(fn, paths)
    assert e.value.column == "path" and e.value.rows == [2, 3, 4]
    assert "'a > b', not 'a >  > b'" in str(e.value) and "fix:" in str(e.value)


@pytest.mark.parametrize("fn", ALL_PATH_FUNCTIONS)
@pytest.mark.parametrize("other", ["|", ",", "/", ";", "→", "->"])
def test_another_separator_is_recognised(fn, other):
    paths = pd.DataFrame(
        {
            "path": [f"a {other} b", "b", f"c {other} a {other} b"],
            "conversions": [1, 0, 2],
            "nulls": [0, 1, 1],
        }
    )
    with pytest.raises(DataError, match="paths look separated by") as e:
        _attribute(fn, paths)
    assert (
        e.value.fix == f"pass sep={other!r}" and e.value.rows == [1, 3] and e.value.column == "path"
    )
    out = _attribute(fn, paths, sep=other)  # the suggested fix works
    assert set(out["channel"]) == {"a", "b", "c"}


def test_arrow_separator_among_gt_paths_is_recognised():
    """Some paths use "->" and others ">": split on ">" the former leave channels ending in "-"."""
    paths = pd.DataFrame({"path": ["a > b", "b->c", "c -> a -> b"], "conversions": [1, 1, 1]})
    with pytest.raises(DataError, match="look separated by '->'") as e:
        heuristic_attribution(paths)
    assert e.value.fix == "pass sep='->'" and e.value.rows == [2, 3]


def test_separator_inside_channel_names_is_not_flagged():
    """A few channel names with '/' (source / medium) in a '>'-separated table are fine."""
    paths = pd.DataFrame(
        {
            "path": ["google / cpc > email", "email", "direct > email", "direct"],
            "conversions": [1, 1, 0, 1],
        }
    )
    assert "google / cpc" in set(heuristic_attribution(paths)["channel"])


@pytest.mark.parametrize("fn", ALL_PATH_FUNCTIONS)
def test_reserved_channel_names_are_refused(fn):
    paths = pd.DataFrame(
        {
            "path": ["a > (start)", "Null > b", "a", "b > (dropoff)"],
            "conversions": [1, 1, 1, 0],
            "nulls": [0, 1, 1, 1],
        }
    )
    with pytest.raises(DataError, match="reserved state name") as e:
        _attribute(fn, paths)
    assert "'(dropoff)', '(start)', 'Null'" in str(e.value)
    assert (
        e.value.rows == [1, 2, 4]
        and e.value.column == "path"
        and "rename the channel" in e.value.fix
    )


@pytest.mark.parametrize("fn", ALL_PATH_FUNCTIONS)
def test_no_conversions_is_an_error(fn):
    paths = pd.DataFrame({"path": ["a > b", "b"], "conversions": [0, 0], "nulls": [3, 1]})
    with pytest.raises(DataError, match="no conversions") as e:
        _attribute(fn, paths)
    assert (
        e.value.column == "conversions" and "nothing to attribute" in str(e.value) and e.value.fix
    )


def test_several_problems_are_listed_together():
    paths = pd.DataFrame(
        {"path": ["a > b", "", "a >  > null"], "conversions": [1, -1, 1], "nulls": [0, 1, 1]}
    )
    with pytest.raises(DataError, match="4 problems") as e:
        _attribute("markov_attribution", paths)
    found = [(p.problem, p.column, p.rows) for p in e.value.problems]
    assert [(c, r) for _, c, r in found] == [
        ("conversions", [2]),
        ("path", [2]),
        ("path", [3]),
        ("path", [3]),
    ]
    assert [
        "negative" in found[0][0],
        "empty path" in found[1][0],
        "empty channel" in found[2][0],
        "reserved" in found[3][0],
    ] == [True] * 4


def test_ordered_shapley_by_hand():
    """a > b > a converts 2: a and b get 1 each (unordered); a's 1 is split over its touches at
    positions 1 and 3. b > c converts 1: b and c get 1/2 at positions 1 and 2. c fails: nothing."""
    from analysis.models.attribution import shapley_attribution

    paths = pd.DataFrame(
        {"path": ["a > b > a", "b > c", "c"], "conversions": [2, 1, 0], "nulls": [0, 1, 4]}
    )
    out, pos = shapley_attribution(paths, value_function="conversions", ordered=True)
    got = {(r.channel, r.position): r.shapley for r in pos.itertuples()}
    assert got == pytest.approx(
        {("a", 1): 0.5, ("a", 3): 0.5, ("b", 1): 0.5, ("b", 2): 1.0, ("c", 2): 0.5}
    )
    assert pos["share"].sum() == pytest.approx(1.0)
    assert out.set_index("channel")["shapley"].to_dict() == pytest.approx(
        {"a": 1.0, "b": 1.5, "c": 0.5}
    )
    with pytest.raises(ValueError, match="ordered=True needs value_function='conversions'"):
        shapley_attribution(paths, ordered=True)


def test_ordered_shapley_agrees_with_unordered(ca_data):
    from analysis.models.attribution import shapley_attribution

    kw = {
        "conversions": "total_conversions",
        "nulls": "total_null",
        "value_function": "conversions",
    }
    plain = shapley_attribution(ca_data, **kw).set_index("channel")
    out, pos = shapley_attribution(ca_data, ordered=True, **kw)
    out = out.set_index("channel")
    # per-channel totals are the exact (2^n coalition) Shapley values; totals sum to the same
    np.testing.assert_allclose(out["shapley"], plain["shapley"], rtol=1e-10)
    assert pos["shapley"].sum() == pytest.approx(plain["shapley"].sum())
    assert pos["position"].min() == 1 and pos["position"].max() > 5
    # every path of length 1: one position, and the unordered result
    first = ca_data.assign(path=ca_data["path"].str.split(">").str[0].str.strip())
    plain1 = shapley_attribution(first, **kw).set_index("channel")
    out1, pos1 = shapley_attribution(first, ordered=True, **kw)
    assert set(pos1["position"]) == {1}
    np.testing.assert_allclose(out1.set_index("channel")["shapley"], plain1["shapley"], rtol=1e-10)
    np.testing.assert_allclose(out1.set_index("channel")["share"], plain1["share"], rtol=1e-10)
