from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from analysis.identity import stitch_identities
from analysis.journeys import build_journeys, channel_stage_counts
from analysis.schema import CONVERSION, DROPOFF, OPEN, START, DataError

STATE = {"converted": CONVERSION, "dropoff": DROPOFF, "open": OPEN}


@pytest.fixture(scope="module")
def built(synth_data):
    events, truth = synth_data
    ev = stitch_identities(events)
    return ev, truth, build_journeys(ev, as_of=truth.end, inactivity_days=truth.inactivity_days)


def assert_journeys_match_truth(ev, truth, jr):
    """Every stitched journey is a true journey: person, start, end, size, outcome, stages."""
    j = jr.journeys
    true_of = (
        pd.DataFrame(
            {
                "person_id": ev["person_id"].astype("int64"),
                "person": truth.event_person.reindex(ev["event_id"]).to_numpy(),
            }
        )
        .drop_duplicates()
        .set_index("person_id")["person"]
    )
    got = j.assign(person=j["person_id"].map(true_of))
    cols = ["person", "start", "end", "n", "converted", "revenue", "outcome", "stages"]
    got = got.rename(columns={"n_touchpoints": "n"})[cols]
    exp = truth.journeys.rename(columns={"n_events": "n"})[cols]
    got = got.sort_values(["person", "start"]).reset_index(drop=True)
    exp = exp.sort_values(["person", "start"]).reset_index(drop=True)
    assert len(got) == len(exp)
    for c in ["person", "n", "converted", "outcome", "stages"]:
        assert (got[c].astype(str).to_numpy() == exp[c].astype(str).to_numpy()).all(), c
    assert (got["start"].to_numpy() == exp["start"].to_numpy()).all()
    assert (got["end"].to_numpy() == exp["end"].to_numpy()).all()
    np.testing.assert_allclose(got["revenue"].to_numpy(), exp["revenue"].fillna(0).to_numpy())


def test_journeys_match_the_true_journeys(built):
    assert_journeys_match_truth(*built)


def test_stage_transitions_match_truth_counts(built):
    _, truth, jr = built
    rows = []
    for seg, stages, outcome in truth.journeys[["segment", "stages", "outcome"]].itertuples(
        index=False
    ):
        seq = [START, *stages.split(" > "), STATE[outcome]]
        rows += [(seg, a, b) for a, b in itertools.pairwise(seq)]
    exp = (
        pd.DataFrame(rows, columns=["segment", "from_stage", "to_stage"])
        .value_counts()
        .rename("n")
        .reset_index()
        .sort_values(["segment", "from_stage", "to_stage"])
        .reset_index(drop=True)
    )
    got = jr.stage_transitions(by="segment")
    pd.testing.assert_frame_equal(got[exp.columns].reset_index(drop=True), exp, check_dtype=False)
    # every journey starts once and ends once
    assert got.loc[got.from_stage == START, "n"].sum() == jr.summary["journeys"]
    ends = got[got.to_stage.isin([CONVERSION, DROPOFF, OPEN])]
    assert ends["n"].sum() == jr.summary["journeys"]
    assert (got.from_stage != got.to_stage).all(), "runs collapse repeated stages"


def test_channel_paths_account_for_every_closed_journey(built):
    _, _, jr = built
    p = jr.channel_paths()
    s = jr.summary
    assert p["conversions"].sum() == s["converted"]
    assert p["nulls"].sum() == s["dropoff"]
    p_open = jr.channel_paths(include_open=True)
    assert p_open["nulls"].sum() == s["dropoff"] + s["open"]
    assert list(p.columns) == ["path", "conversions", "nulls", "value"]
    np.testing.assert_allclose(
        p["value"].sum(), jr.journeys["revenue"][jr.journeys.outcome != "open"].sum()
    )
    by = jr.channel_paths(by="segment")
    assert by["conversions"].sum() == s["converted"]


def test_stage_durations_censoring(built):
    _, _, jr = built
    d = jr.stage_durations(by="segment")
    assert (d["duration_days"] >= 0).all()
    assert (d["censored"] == d["exit"].isin([DROPOFF, OPEN])).all()
    n_runs = jr.stage_transitions(by=None).query(
        "from_stage == @START or to_stage not in [@CONVERSION, @DROPOFF, @OPEN]"
    )
    assert len(d) == n_runs["n"].sum()


def test_time_to_conversion_by_hand(make_events):
    # person a: display 1 Jan, direct 3 Jan 12:00 (conversion) -> 2.5 days, not censored; then
    #           email 4 Jan alone (a drop-off by 1 Mar): censored at as_of, 57 days
    # person b: social 20 Feb, still open on 1 Mar (2024 is a leap year): censored at 10 days
    ev = stitch_identities(
        make_events(
            [
                {
                    "timestamp": "2024-01-01",
                    "channel": "display",
                    "user_id": "a",
                    "region": "north",
                },
                {
                    "timestamp": "2024-01-03 12:00",
                    "channel": "direct",
                    "user_id": "a",
                    "conversion": True,
                    "stage": "Do",
                    "region": "south",
                },
                {"timestamp": "2024-01-04", "channel": "email", "user_id": "a", "region": "east"},
                {"timestamp": "2024-02-20", "channel": "social", "user_id": "b", "region": "west"},
            ]
        )
    )
    jr = build_journeys(ev, inactivity_days=14, as_of="2024-03-01")
    t = jr.time_to_conversion(by=["first_channel", "region"])
    assert list(t.columns) == [
        "first_channel",
        "region",
        "person_id",
        "journey_index",
        "outcome",
        "duration_days",
        "censored",
    ]
    t = t.sort_values("duration_days").reset_index(drop=True)
    assert t["first_channel"].tolist() == ["display", "social", "email"]
    assert t["region"].tolist() == ["north", "west", "east"]  # the first touchpoint's value
    assert t["outcome"].tolist() == ["converted", "open", "dropoff"]
    assert t["duration_days"].tolist() == pytest.approx([2.5, 10.0, 57.0])
    assert t["censored"].tolist() == [False, True, True]
    # as_of before a journey's last touch: censored at that touch, never a negative time
    early = build_journeys(ev, inactivity_days=14, as_of="2024-01-02").time_to_conversion()
    assert (early["duration_days"] >= 0).all()
    assert early.loc[early["censored"], "duration_days"].sort_values().tolist() == pytest.approx(
        [0.0, 0.0]
    )
    with pytest.raises(DataError, match="not an attribute"):
        jr.time_to_conversion(by="nope")


def _one_person(make_events, rows):
    return stitch_identities(make_events([{**r, "user_id": "u1"} for r in rows]))


def test_cut_at_conversion_and_inactivity(make_events):
    ev = _one_person(
        make_events,
        [
            {"timestamp": "2024-01-01", "stage": "See", "channel": "display"},
            {
                "timestamp": "2024-01-02",
                "stage": "Do",
                "channel": "direct",
                "conversion": True,
                "revenue": 10.0,
            },
            {"timestamp": "2024-01-03", "stage": "Care", "channel": "email"},
            {
                "timestamp": "2024-02-02",
                "stage": "Think",
                "channel": "social",
            },  # exactly 30 days later
            {"timestamp": "2024-02-20", "stage": "Think", "channel": "email"},
        ],
    )
    jr = build_journeys(ev, inactivity_days=30, as_of="2024-03-01")
    j = jr.journeys
    assert list(j["n_touchpoints"]) == [2, 1, 2]
    assert list(j["outcome"]) == ["converted", "dropoff", "open"]
    assert list(j["stages"]) == ["See > Do", "Care", "Think"]
    assert list(j["revenue"]) == [10.0, 0.0, 0.0]
    # as_of far away: the last journey is a drop-off, not open
    assert list(build_journeys(ev, as_of="2024-06-01").journeys["outcome"]) == [
        "converted",
        "dropoff",
        "dropoff",
    ]
    # 31-day inactivity keeps the 30-day gap inside one journey
    assert list(
        build_journeys(ev, inactivity_days=31, as_of="2024-03-01").journeys["n_touchpoints"]
    ) == [2, 3]


def test_ties_are_broken_by_event_id_and_lookback_cuts_paths(make_events):
    ev = _one_person(
        make_events,
        [
            {"event_id": "b", "timestamp": "2024-01-01", "channel": "email"},
            {"event_id": "a", "timestamp": "2024-01-01", "channel": "display"},
            {"event_id": "c", "timestamp": "2024-01-25", "channel": "social"},
            {
                "event_id": "d",
                "timestamp": "2024-02-15",
                "channel": "direct",
                "stage": "Do",
                "conversion": True,
                "revenue": 5.0,
            },
        ],
    )
    jr = build_journeys(ev, lookback_days=30)
    assert jr.journeys["channels"].iloc[0] == "display > email > social > direct"
    p = jr.channel_paths()
    assert list(p["path"]) == ["social > direct"]  # Jan 1 is 45 days before the conversion
    assert list(build_journeys(ev, lookback_days=60).channel_paths()["path"]) == [
        "display > email > social > direct"
    ]


def test_missing_person_id_says_to_stitch_first(make_events):
    ev = make_events([{"timestamp": "2024-01-01", "user_id": "u1"}])
    with pytest.raises(DataError, match="person_id") as e:
        build_journeys(ev)
    assert "stitch_identities" in str(e.value)


def test_unknown_grouping_column_is_a_clear_error(built):
    _, _, jr = built
    with pytest.raises(DataError, match="cannot group by"):
        jr.stage_transitions(by="no_such_column")


def test_channel_stage_counts_orders_stages(synth_small):
    ev, _ = synth_small
    tab = channel_stage_counts(ev)
    assert list(tab.columns)[:4] == ["See", "Think", "Do", "Care"]
    assert tab.to_numpy().sum() == len(ev)


@pytest.mark.spark
def test_spark_gives_identical_results(synth_small, spark_available):
    events, truth = synth_small
    ev = stitch_identities(events)
    a = build_journeys(ev, as_of=truth.end, engine="duckdb")
    b = build_journeys(ev, as_of=truth.end, engine="spark")
    pd.testing.assert_frame_equal(a.journeys, b.journeys)
    for by in ("segment", None, ["segment", "region"]):
        pd.testing.assert_frame_equal(a.stage_transitions(by=by), b.stage_transitions(by=by))
        pd.testing.assert_frame_equal(a.channel_paths(by=by), b.channel_paths(by=by))
    pd.testing.assert_frame_equal(a.stage_durations(), b.stage_durations())
    assert {k: v for k, v in a.summary.items() if k != "engine"} == {
        k: v for k, v in b.summary.items() if k != "engine"
    }


def test_transition_table_is_in_funnel_order_and_sums_counts(built):
    from analysis.journeys import transition_table

    _, _, jr = built
    counts = jr.stage_transitions(by="segment")
    tab = transition_table(counts)
    assert list(tab.index) == [START, "See", "Think", "Do", "Care"]
    assert list(tab.columns) == ["See", "Think", "Do", "Care", CONVERSION, DROPOFF, OPEN]
    assert tab.to_numpy().sum() == counts["n"].sum()
    assert tab.loc[START].sum() == jr.summary["journeys"]
    assert str(tab.dtypes.unique()[0]) == "int64"


def test_stage_exposures_by_hand(make_events):
    """One journey See → Think → Do → conversion: levels by hand; survey and purchase rows are
    outcomes, not exposures."""
    nan = float("nan")
    ev = make_events(
        [
            {"timestamp": "2024-01-01T00:00:00Z", "stage": "See", "channel": "display"},
            {"timestamp": "2024-01-03T12:00:00Z", "stage": "See", "channel": "social"},
            {"timestamp": "2024-01-05T00:00:00Z", "stage": "Think", "channel": "email"},
            {
                "timestamp": "2024-01-06T00:00:00Z",
                "stage": "Think",
                "channel": "store",
                "sentiment": 0.5,
            },
            {"timestamp": "2024-01-08T00:00:00Z", "stage": "Do", "channel": "direct"},
            {
                "timestamp": "2024-01-09T00:00:00Z",
                "stage": "Do",
                "channel": "store",
                "conversion": True,
                "revenue": 10.0,
            },
        ]
    )
    ev["user_id"] = "u1"
    ev["sentiment"] = ev["sentiment"].astype(float) if "sentiment" in ev else nan
    jr = build_journeys(stitch_identities(ev))
    x = jr.stage_exposures(by=None)
    assert x.attrs["channels"] == ["direct", "display", "email", "social"]  # store: outcomes only
    got = {
        (r.from_stage, r.to_stage): (r.direct, r.display, r.email, r.social, r.n)
        for r in x.itertuples(index=False)
    }
    # levels: 1 during the visit; 2 = 0-3 days, 3 = 3-7, 4 = 7-14 days before the visit began
    assert got == {
        (START, "See"): (0, 0, 0, 0, 1),
        ("See", "Think"): (0, 1, 0, 1, 1),
        ("Think", "Do"): (0, 3, 1, 2, 1),
        ("Do", CONVERSION): (1, 4, 3, 3, 1),
    }


def test_stage_exposures_count_the_same_moves_as_stage_transitions(built):
    _, _, jr = built
    x = jr.stage_exposures(by="segment", mature_days=60)
    t = jr.stage_transitions(by="segment", mature_days=60)
    got = x.groupby(["segment", "from_stage", "to_stage"])["n"].sum()
    exp = t.set_index(["segment", "from_stage", "to_stage"])["n"]
    pd.testing.assert_series_equal(got.sort_index(), exp.sort_index(), check_dtype=False)
    assert set(x.attrs["channels"]) <= set(x.columns)


def test_channel_paths_exposures_only(make_events):
    ev = make_events(
        [
            {"timestamp": "2024-01-01T00:00:00Z", "channel": "display"},
            {"timestamp": "2024-01-02T00:00:00Z", "channel": "email", "sentiment": 0.2},
            {
                "timestamp": "2024-01-03T00:00:00Z",
                "channel": "store",
                "conversion": True,
                "revenue": 5.0,
            },
            # a second person whose only touchpoint is the purchase
            {
                "timestamp": "2024-01-04T00:00:00Z",
                "channel": "direct",
                "conversion": True,
                "revenue": 7.0,
            },
        ]
    )
    ev["user_id"] = ["a", "a", "a", "b"]
    jr = build_journeys(stitch_identities(ev))
    full = jr.channel_paths().set_index("path")
    assert set(full.index) == {"display > email > store", "direct"}
    only = jr.channel_paths(exposures_only=True).set_index("path")
    assert set(only.index) == {"display", "(none)"}
    assert only["conversions"].sum() == full["conversions"].sum() == 2
    assert only.loc["(none)", "value"] == 7.0


# ------------------------------------------------------------------ journey map and paths
def _map_events(make_events):
    """Three journeys by hand: a converts (See → Think → Do), b drops off (See → Think),
    c is open (See); feedback at See (-0.5) and Think (+0.5)."""
    nan = float("nan")
    rows = [
        ("u1", "2024-01-01", "See", "display", "ad_impression", nan, False),
        ("u1", "2024-01-03", "See", "social", "social_post_view", nan, False),
        ("u1", "2024-01-05", "Think", "email", "content_read", 0.5, False),
        ("u1", "2024-01-06", "Do", "direct", "purchase", nan, True),
        ("u2", "2024-01-02", "See", "display", "ad_impression", -0.5, False),
        ("u2", "2024-01-04", "Think", "email", "site_visit", nan, False),
        ("u3", "2024-02-25", "See", "paid_search", "ad_impression", nan, False),
    ]
    ev = make_events(
        [
            {
                "user_id": u,
                "timestamp": f"{t}T00:00:00Z",
                "stage": s,
                "channel": c,
                "touchpoint": tp,
                "sentiment": se,
                "conversion": conv,
                "revenue": 10.0 if conv else nan,
            }
            for u, t, s, c, tp, se, conv in rows
        ]
    )
    return stitch_identities(ev)


def _cell(m, row, stage, label=""):
    hit = m[(m["row"] == row) & (m["stage"] == stage) & (m["label"] == label)]
    assert len(hit) == 1, (row, stage, label)
    return hit["value"].iloc[0], hit["n"].iloc[0]


def test_journey_map_by_hand(make_events):
    from analysis.journeys import MAP_ROWS, journey_map, journey_map_grid

    ev = _map_events(make_events)
    jr = build_journeys(ev, as_of="2024-03-01")
    assert list(jr.journeys["outcome"]) == ["converted", "dropoff", "open"]
    peers = pd.concat(
        [
            ev,
            make_events(
                [
                    *[{"timestamp": "2024-01-01", "stage": "Do", "channel": "store"}] * 3,
                    {"timestamp": "2024-01-01", "stage": "See", "channel": "event"},
                    *[{"timestamp": "2024-01-01", "stage": "Care", "channel": "email"}] * 2,
                ]
            ),
        ],
        ignore_index=True,
    )
    m = journey_map(jr, ev, peers=peers)
    assert list(m["stage"].cat.categories) == ["See", "Think", "Do", "Care"]
    assert list(m.columns) == ["stage", "row", "rank", "label", "value", "n"]
    assert set(m["row"]) <= set(MAP_ROWS)
    # reach: journeys that visited the stage, of 3
    assert _cell(m, "reach", "See") == (1.0, 3)
    assert _cell(m, "reach", "Think") == (pytest.approx(2 / 3), 2)
    assert _cell(m, "reach", "Do") == (pytest.approx(1 / 3), 1)
    assert _cell(m, "reach", "Care") == (0.0, 0)
    # advance / drop-off of the settled visits (c's open See visit is left out)
    assert _cell(m, "advance rate", "See") == (1.0, 2)
    assert _cell(m, "drop-off rate", "See") == (0.0, 2)
    assert _cell(m, "advance rate", "Think") == (0.5, 2)
    assert _cell(m, "drop-off rate", "Think") == (0.5, 2)
    assert _cell(m, "advance rate", "Do") == (1.0, 1)  # to the conversion
    assert np.isnan(_cell(m, "advance rate", "Care")[0])
    # median days of the visits that moved on: See 4 (a) and 2 (b) days; Think 1; Do 0
    assert _cell(m, "median days in stage", "See") == (3.0, 2)
    assert _cell(m, "median days in stage", "Think") == (1.0, 1)
    assert _cell(m, "median days in stage", "Do") == (0.0, 1)
    assert _cell(m, "sentiment", "See") == (-0.5, 1)
    assert _cell(m, "sentiment", "Think") == (0.5, 1)
    assert np.isnan(_cell(m, "sentiment", "Do")[0]) and _cell(m, "sentiment", "Do")[1] == 0
    # touchpoints and channels: top items with their share of the stage's touchpoints
    tp = m[(m["row"] == "touchpoints") & (m["stage"] == "See")]
    assert list(tp["label"]) == ["ad_impression", "social_post_view"]
    assert list(tp["value"]) == [0.75, 0.25] and list(tp["n"]) == [3, 1]
    ch = m[(m["row"] == "channels") & (m["stage"] == "See")]
    assert list(ch["label"]) == ["display", "paid_search", "social"]  # ties by name
    # absent: what peers use there and these journeys do not
    absent = m[m["row"] == "absent channels"]
    got = {
        (s, lab): (v, n)
        for s, lab, v, n in absent[["stage", "label", "value", "n"]].itertuples(index=False)
    }
    assert got == {
        ("See", "event"): (0.2, 1),
        ("Do", "store"): (0.75, 3),
        ("Care", "email"): (1.0, 2),
    }
    assert m.attrs["journeys"] == 3 and m.attrs["converted"] == 1
    # the same with the peers' count table instead of their events
    m2 = journey_map(jr, ev, peers=channel_stage_counts(peers))
    pd.testing.assert_frame_equal(m, m2)

    grid = journey_map_grid(m)
    assert list(grid.columns) == ["See", "Think", "Do", "Care"]
    assert list(grid.index) == list(MAP_ROWS)
    assert grid.loc["reach", "Think"] == "2 (67%)"
    assert grid.loc["touchpoints", "See"] == "ad_impression (75%)\nsocial_post_view (25%)"
    assert grid.loc["absent channels", "Think"] == "none"
    assert grid.loc["sentiment", "Do"] == "–"
    # no peers: no absent-channel row
    assert "absent channels" not in journey_map_grid(journey_map(jr, ev)).index


def test_journey_map_agrees_with_stage_transitions(built):
    from analysis.journeys import journey_map

    ev, _, jr = built
    m = journey_map(jr, ev, peers=ev)
    assert not (m["row"] == "absent channels").any()  # peers = the same events: nothing absent
    t = jr.stage_transitions(by=None)
    j = jr.journeys
    outcomes = {CONVERSION, DROPOFF, OPEN}
    for s in ["See", "Think", "Do", "Care"]:
        visited = j["stages"].fillna("").str.split(" > ").map(lambda x, s=s: s in x)
        v, n = _cell(m, "reach", s)
        assert n == visited.sum() and v == pytest.approx(visited.mean())
        assert n <= t.loc[t.to_stage == s, "n"].sum()  # revisits count once
        out = t[t.from_stage == s].set_index("to_stage")["n"]
        settled = out.drop(OPEN, errors="ignore").sum()
        advanced = out[[k for k in out.index if k not in outcomes]].sum() + out.get(CONVERSION, 0)
        v, n = _cell(m, "advance rate", s)
        assert n == settled and v == pytest.approx(advanced / settled)
        assert _cell(m, "drop-off rate", s)[0] == pytest.approx(out.get(DROPOFF, 0) / settled)
        d = jr.stage_durations(by=None)
        assert _cell(m, "median days in stage", s)[1] == ((d.stage == s) & ~d.censored).sum()
    # by segment: one map per segment whose reach adds up to the whole
    ms = journey_map(jr, ev, by="segment")
    reach = ms[ms["row"] == "reach"].groupby("stage", observed=True)["n"].sum()
    whole = m[m["row"] == "reach"].set_index("stage")["n"]
    assert (reach.to_numpy() == whole.reindex(reach.index).to_numpy()).all()
    assert set(ms["segment"]) == set(j["segment"])


def test_top_paths_table_by_hand(make_events):
    from analysis.journeys import top_paths_table

    ev = _map_events(make_events)
    ev.loc[1, "channel"] = "display"  # a: display > display > email > direct
    jr = build_journeys(ev, as_of="2024-03-01")
    t = top_paths_table(jr, n=5)
    assert list(t.columns) == ["kind", "outcome", "rank", "path", "journeys", "share"]
    got = {(k, o): p for k, o, p in t[["kind", "outcome", "path"]].itertuples(index=False)}
    assert got == {  # the open journey (c) is left out
        ("stage", "converted"): "See > Think > Do",
        ("stage", "dropoff"): "See > Think",
        ("channel", "converted"): "display > email > direct",
        ("channel", "dropoff"): "display > email",
    }
    assert (t["share"] == 1.0).all()
    raw = top_paths_table(jr, n=5, collapse=False)
    assert "display > display > email > direct" in set(raw["path"])


def test_top_paths_table_ranks_and_shares(built):
    from analysis.journeys import top_paths_table

    _, _, jr = built
    t = top_paths_table(jr, n=4)
    assert (t.groupby(["kind", "outcome"])["rank"].max() == 4).all()
    assert (t.groupby(["kind", "outcome"])["share"].sum() <= 1 + 1e-12).all()
    s = t[(t.kind == "stage") & (t.outcome == "converted")]
    assert s["journeys"].is_monotonic_decreasing
    assert (
        s["journeys"].iloc[0]
        == (jr.journeys.query("outcome == 'converted'")["stages"] == s["path"].iloc[0]).sum()
    )


def test_stage_flow_counts_the_true_journeys_step_by_step(built):
    """Each true journey (the generator's record) is walked step by step, one row per step; the
    flow of the stitched journeys has exactly those links."""
    from analysis.journeys import LATER_STAGES, stage_flow

    _, truth, jr = built
    max_steps = 3
    steps = truth.journeys[["stages", "outcome"]].reset_index(drop=True)
    steps["stage"] = steps["stages"].str.split(" > ")
    walked = steps.explode("stage").reset_index(names="journey")
    walked["step"] = walked.groupby("journey").cumcount() + 1
    walked = walked[walked["step"] <= max_steps]
    longer = steps.index[steps["stage"].str.len() > max_steps]
    later = pd.DataFrame({"journey": longer, "stage": LATER_STAGES, "step": max_steps + 1})
    ends = steps.reset_index(names="journey")[["journey", "outcome"]]
    walked = pd.concat([walked[["journey", "stage", "step"]], later], ignore_index=True)
    last = walked.groupby("journey")["step"].max()
    ends = ends.assign(stage=ends["outcome"].map(STATE), step=ends["journey"].map(last) + 1)
    walked = pd.concat([walked, ends[["journey", "stage", "step"]]]).sort_values(
        ["journey", "step"]
    )
    nxt = walked.groupby("journey")[["stage", "step"]].shift(-1)
    links = pd.DataFrame(
        {
            "from_step": walked["step"],
            "from_stage": walked["stage"],
            "to_step": nxt["step"],
            "to_stage": nxt["stage"],
        }
    ).dropna()
    exp = links.value_counts().rename("n").reset_index()
    exp["to_step"] = exp["to_step"].astype(int)

    got = stage_flow(jr.journeys, max_steps=max_steps)
    key = ["from_step", "from_stage", "to_step", "to_stage"]
    pd.testing.assert_frame_equal(
        got.sort_values(key, ignore_index=True),
        exp[[*key, "n"]].sort_values(key, ignore_index=True),
        check_dtype=False,
    )
    n = len(jr.journeys)
    assert (got["to_step"] == got["from_step"] + 1).all()
    assert got.loc[got["from_step"] == 1, "n"].sum() == n
    outcomes = got[got["to_stage"].isin(STATE.values())].groupby("to_stage")["n"].sum()
    assert outcomes.to_dict() == jr.journeys["outcome"].map(STATE).value_counts().to_dict()


def test_stage_flow_by_hand_and_its_errors():
    from analysis.journeys import stage_flow

    j = pd.DataFrame(
        {
            "stages": ["See > Think > Do", "See > Think", "See > Think", "Do", None],
            "outcome": ["converted", "dropoff", "dropoff", "open", "dropoff"],
        }
    )
    got = stage_flow(j, max_steps=2)
    assert set(map(tuple, got.to_numpy().tolist())) == {
        (1, "See", 2, "Think", 3),
        (2, "Think", 3, "(later stages)", 1),
        (3, "(later stages)", 4, CONVERSION, 1),
        (2, "Think", 3, DROPOFF, 2),
        (1, "Do", 2, OPEN, 1),
        (1, "(no stage)", 2, DROPOFF, 1),
    }
    with pytest.raises(DataError, match="outcome"):
        stage_flow(j.assign(outcome="won"))
    with pytest.raises(DataError, match="stages"):
        stage_flow(j.drop(columns="stages"))
    with pytest.raises(ValueError, match="max_steps"):
        stage_flow(j, max_steps=0)


# ------------------------------------------------------------------------- journeys by session
SESSION_ROWS = [
    # u1: session s1 (See, Think), s2 (Think, Do: a purchase), s3 (See), then a contact without
    # a session four days later; u2: one session of two contacts
    {
        "event_id": "e1",
        "timestamp": "2024-01-01 09:00",
        "user_id": "u1",
        "session_id": "s1",
        "stage": "See",
    },
    {
        "event_id": "e2",
        "timestamp": "2024-01-01 09:10",
        "user_id": "u1",
        "session_id": "s1",
        "stage": "Think",
    },
    {
        "event_id": "e3",
        "timestamp": "2024-01-02 10:00",
        "user_id": "u1",
        "session_id": "s2",
        "stage": "Think",
    },
    {
        "event_id": "e4",
        "timestamp": "2024-01-02 10:05",
        "user_id": "u1",
        "session_id": "s2",
        "stage": "Do",
        "conversion": True,
    },
    {
        "event_id": "e5",
        "timestamp": "2024-01-05 12:00",
        "user_id": "u1",
        "session_id": "s3",
        "stage": "See",
    },
    {
        "event_id": "e6",
        "timestamp": "2024-01-09 08:00",
        "user_id": "u1",
        "session_id": None,
        "stage": "Think",
    },
    {
        "event_id": "f2",
        "timestamp": "2024-01-03 09:05",
        "user_id": "u2",
        "session_id": "s9",
        "stage": "Think",
    },
    {
        "event_id": "f1",
        "timestamp": "2024-01-03 09:05",
        "user_id": "u2",
        "session_id": "s9",
        "stage": "See",
    },
]


def _cuts(jr):
    j = jr.journeys
    return list(zip(j["person_id"], j["n_touchpoints"], j["outcome"], j["stages"], strict=True))


def test_journeys_by_session_by_hand(make_events):
    ev = stitch_identities(make_events(SESSION_ROWS))
    # by inactivity (30 days): u1's six contacts are one journey up to the purchase, then one open
    by_gap = build_journeys(ev, as_of="2024-01-10")
    assert _cuts(by_gap) == [
        (1, 4, "converted", "See > Think > Do"),
        (1, 2, "open", "See > Think"),
        (2, 2, "open", "See > Think"),
    ]
    assert by_gap.summary["journey_by"] == "inactivity"
    # by session: s1 is a journey of its own, closed (a drop-off) because s2 started; e6 has no
    # session, so the 30-day gap rule keeps it with s3; f1 before f2 (same time: by event_id)
    jr = build_journeys(ev, as_of="2024-01-10", journey_by="session")
    assert _cuts(jr) == [
        (1, 2, "dropoff", "See > Think"),
        (1, 2, "converted", "Think > Do"),
        (1, 2, "open", "See > Think"),
        (2, 2, "open", "See > Think"),
    ]
    assert jr.journeys["session_id"].tolist() == ["s1", "s2", "s3", "s9"]  # at the first touchpoint
    s = jr.summary
    assert (
        s["journey_by"],
        s["journeys"],
        s["dropoff"],
        s["open"],
        s["events_without_session"],
    ) == ("session", 4, 1, 2, 1)
    # 2-day inactivity: e6 (no session) is 3.8 days after e5, so a journey of its own; u2's session
    # ended 7 days before as_of: a drop-off although it is u2's last
    short = build_journeys(ev, as_of="2024-01-10", journey_by="session", inactivity_days=2)
    assert _cuts(short) == [
        (1, 2, "dropoff", "See > Think"),
        (1, 2, "converted", "Think > Do"),
        (1, 1, "dropoff", "See"),
        (1, 1, "open", "Think"),
        (2, 2, "dropoff", "See > Think"),
    ]
    # a session seen again after another one is a new journey: consecutive contacts decide
    back = stitch_identities(
        make_events(
            [
                {"timestamp": f"2024-01-01 09:0{i}", "user_id": "u", "session_id": s}
                for i, s in enumerate(["a", "b", "a"])
            ]
        )
    )
    assert build_journeys(back, journey_by="session").summary["journeys"] == 3


def test_journeys_by_session_errors(make_events):
    ev = stitch_identities(make_events(SESSION_ROWS).drop(columns="session_id"))
    with pytest.raises(DataError, match="no session_id column") as e:
        build_journeys(ev, journey_by="session")
    assert "clickstream adapter" in str(e.value) and "journey_by='inactivity'" in str(e.value)
    with pytest.raises(ValueError, match="journey_by must be one of"):
        build_journeys(ev, journey_by="visit")


@pytest.mark.spark
def test_spark_journeys_by_session(make_events, spark_available):
    ev = stitch_identities(make_events(SESSION_ROWS))
    a = build_journeys(ev, as_of="2024-01-10", journey_by="session", inactivity_days=2)
    b = build_journeys(
        ev, as_of="2024-01-10", journey_by="session", inactivity_days=2, engine="spark"
    )
    pd.testing.assert_frame_equal(a.journeys, b.journeys)
    pd.testing.assert_frame_equal(a.stage_transitions(by=None), b.stage_transitions(by=None))
    assert a.maturity() == b.maturity()


# --------------------------------------------------------------------------------- maturity
def test_maturity_by_hand(make_events):
    # visits (stage runs) and the days from entry to their last contact:
    #   a: See 1 Jan → 17 Jan (16), Think 20 Jan → 21 Jan (1, the unstaged contact counts), Do 22 Jan (0)
    #   b: See 20 Feb → 22 Feb (2), Think 24 Feb (0; open on 1 Mar)       c: Think 15 Feb (0; dropoff)
    rows = [
        ("a", "2024-01-01", "See"),
        ("a", "2024-01-09", "See"),
        ("a", "2024-01-17", "See"),
        ("a", "2024-01-20", "Think"),
        ("a", "2024-01-21", None),
        ("a", "2024-01-22", "Do"),
        ("b", "2024-02-20", "See"),
        ("b", "2024-02-22", "See"),
        ("b", "2024-02-24", "Think"),
        ("c", "2024-02-15", "Think"),
    ]
    ev = stitch_identities(
        make_events(
            [
                {"user_id": u, "timestamp": t, "stage": s, "conversion": s == "Do"}
                for u, t, s in rows
            ]
        )
    )
    jr = build_journeys(ev, inactivity_days=10, as_of="2024-03-01")
    # the median span is 0.5 days: 10.5 days before 1 Mar is 19 Feb 12:00; b's two visits are newer
    m = jr.maturity(quantile=0.5)
    assert (m.visit_days, m.mature_days, m.visits, m.excluded, m.excluded_open) == (
        0.5,
        10.5,
        6,
        2,
        1,
    )
    assert m.cutoff == pd.Timestamp("2024-02-19 12:00", tz="UTC")
    assert (m.first_excluded, m.last_excluded) == (
        pd.Timestamp("2024-02-20", tz="UTC"),
        pd.Timestamp("2024-02-24", tz="UTC"),
    )
    assert m.share_excluded == pytest.approx(2 / 6)
    assert m.text == (
        "Only visits entered by 2024-02-19 12:00 UTC (10.5 days before the end of the data) "
        "are modelled (their exit has had time to show): 2 of 6 visits (33%) entered from "
        "2024-02-20 to 2024-02-24 are left out; 1 of them still open."
    )
    # the cut-off is the one stage_durations and stage_transitions apply
    assert len(jr.stage_durations(by=None, mature_days=m.mature_days)) == m.visits - m.excluded
    # every span (16 days) would make 26: capped at 2 * inactivity_days = 20 → 10 Feb; c is out too
    m = jr.maturity(quantile=1.0)
    assert (m.visit_days, m.mature_days, m.excluded, m.excluded_open) == (16.0, 20.0, 3, 1)
    assert m.first_excluded == pd.Timestamp("2024-02-15", tz="UTC")
    # no span: 10 days → 20 Feb 00:00, and a visit entered at that instant is kept
    m = jr.maturity(quantile=0.0)
    assert (m.mature_days, m.excluded) == (10.0, 1)
    assert "1 of 6 visits (17%) entered on 2024-02-24 are left out; 1 of them still open" in m.text
    assert (
        build_journeys(ev, inactivity_days=10, as_of="2024-09-01")
        .maturity()
        .text.startswith("All 6 stage visits are modelled")
    )
    with pytest.raises(ValueError, match="quantile"):
        jr.maturity(quantile=95)


def test_a_channel_named_with_the_path_separator_stays_one_channel_in_paths(make_events):
    """'>' separates the channels of a path: a channel named '<b>x</b>' (hostile or not) is
    written with '›' in journeys and paths, so a path still splits into its channels."""
    from analysis.schema import explode_paths

    ev = make_events(
        [
            {
                "user_id": "u1",
                "timestamp": "2024-01-01T10:00:00Z",
                "channel": "<b>x</b>",
                "touchpoint": "site_visit",
            },
            {
                "user_id": "u1",
                "timestamp": "2024-01-02T10:00:00Z",
                "channel": "email",
                "touchpoint": "site_visit",
            },
            {
                "user_id": "u1",
                "timestamp": "2024-01-03T10:00:00Z",
                "channel": "direct",
                "touchpoint": "purchase",
                "conversion": True,
            },
        ]
    )
    jr = build_journeys(stitch_identities(ev))
    assert jr.summary["channels_renamed"] == ["<b>x</b>"]
    paths = jr.channel_paths(exposures_only=True)
    assert list(paths["path"]) == ["<b›x</b› > email"]
    assert sorted(explode_paths(paths)["channel"].astype(str)) == ["<b›x</b›", "email"]
