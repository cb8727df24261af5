"""analysis.reports.pattern_sections (notebook 07's cells) and the index's pattern cell.

Counts are checked against pandas counts of hand-built tables, the channel paths per pattern
against the journeys table (conversions and closed journeys of each pattern), the headline rule
against planted shares, and every data string against hostile names.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from analysis import synth
from analysis.reports import open_report
from analysis.reports import pattern_sections as ps
from analysis.reports.render import headline_cells

IMG = "<img src=x onerror=alert(1)>"


def _journeys():
    return pd.DataFrame(
        {
            "journey_id": [f"j{i}" for i in range(8)],
            "stages": ["See > Think", "See > Think", "See", "Do", "Do", "Think > Do", "", "Do"],
        }
    )


def _membership():
    return pd.DataFrame(
        {"journey_id": [f"j{i}" for i in range(8)], "archetype": [0, 0, 0, 1, 1, 1, 1, 1]}
    )


def test_pattern_sequences_count_each_patterns_distinct_sequences():
    seqs = ps.pattern_sequences(_journeys(), _membership())
    got = {(r.pattern, r.sequence): r.weight for r in seqs.itertuples()}
    assert got == {(0, "See > Think"): 2, (0, "See"): 1, (1, "Do"): 3, (1, "Think > Do"): 1}
    reps = ps.representative_journeys(seqs, n=1)
    assert list(reps["sequence"]) == ["See > Think", "Do"]
    assert reps["share"].tolist() == pytest.approx([2 / 3, 3 / 4])
    assert ps.state_order(seqs, stages=("See", "Think", "Do", "Care")) == ["See", "Think", "Do"]
    assert ps.state_order(seqs) == ["Do", "See", "Think"]  # by journeys: Do 4, See 3, Think 3


def _outcomes(shares, lowers, uppers, labels):
    n = len(shares)
    return pd.DataFrame(
        {
            "pattern": range(n),
            "label": labels,
            "journeys": [100.0] * n,
            "share": shares,
            "share_lower": lowers,
            "share_upper": uppers,
            "closed": [90.0] * n,
            "open": [10.0] * n,
            "conversions": [30.0] * n,
            "rate": [1 / 3] * n,
            "lower": [0.25] * n,
            "upper": [0.42] * n,
            "days_to_convert": [4.25] * n,
            "days_lower": [3.0] * n,
            "days_upper": [6.0] * n,
        }
    )


def test_prevalent_pattern_is_named_only_when_its_interval_clears_the_others():
    clear = _outcomes([0.6, 0.3, 0.1], [0.55, 0.25, 0.07], [0.65, 0.35, 0.13], ["a", "b", "c"])
    h = ps.prevalent_pattern(clear)
    assert h["pattern_prevalent"] == "a" and h["pattern_lower"] == 0.55 and h["pattern_count"] == 3
    close = _outcomes([0.45, 0.42, 0.13], [0.40, 0.37, 0.1], [0.5, 0.47, 0.16], ["a", "b", "c"])
    h = ps.prevalent_pattern(close)
    assert "pattern_prevalent" not in h and h["pattern_note"].startswith(
        "no pattern prevails: a 45% and b 42%"
    )


def test_the_index_cell_names_the_pattern_escaped():
    h = ps.prevalent_pattern(_outcomes([0.7, 0.3], [0.6, 0.2], [0.8, 0.4], [IMG, "b"]))
    cell = ps.pattern_cell(h)
    assert IMG not in cell and "&lt;img" in cell and "70% [60%–80%]" in cell
    assert ps.pattern_cell({"pattern_note": IMG}).startswith("– ") and IMG not in ps.pattern_cell(
        {"pattern_note": IMG}
    )
    assert ps.pattern_cell({}) == "–"
    assert headline_cells(h)[-1] == cell  # the index's last figure column


def test_outcome_table_and_sentence_write_each_interval():
    o = _outcomes([0.6, 0.4], [0.55, 0.35], [0.65, 0.45], ["a", "b"])
    t = ps.outcome_table(o)
    assert t.index.tolist() == ["a", "b"]
    assert t.iloc[0].tolist() == [
        100,
        "60% [55%–65%]",
        "33.3% [25.0%–42.0%]",
        30,
        10,
        "4.2 [3.0–6.0]",
    ]
    assert "median days" not in " ".join(ps.outcome_table(o, time_to_event=False).columns)
    s = ps.outcome_sentence(o.iloc[0])
    assert "**33.3% [25.0%–42.0%]** converted" in s and "**4.2 days** [3.0–6.0]" in s


def test_profile_table_keeps_flagged_rows_and_the_sentence_escapes_values():
    over = pd.DataFrame(
        {
            "attribute": ["segment", "segment", "region", "region"],
            "value": [IMG, "b", "n", "s"],
            "pattern": [0, 0, 0, 1],
            "label": ["x", "x", "x", "y"],
            "journeys": [50.0, 10.0, 30.0, 20.0],
            "value_journeys": [60.0, 40.0, 50.0, 50.0],
            "share_in_value": [0.83, 0.25, 0.6, 0.4],
            "share_overall": [0.6, 0.6, 0.6, 0.4],
            "ratio": [1.39, 0.42, 1.0, 1.0],
            "lower": [1.2, 0.3, 0.8, 0.8],
            "upper": [1.6, 0.6, 1.2, 1.2],
            "p_over": [1.0, 0.0, 0.5, 0.5],
            "flag": ["over", "under", "", ""],
        }
    )
    t = ps.profile_table(over)
    assert (
        t.index.tolist() == ["x", "x"]
        and t["value"].tolist() == [IMG, "b"]
        and t["follows it"].tolist() == ["more often", "less often"]
    )
    text = ps.followers_sentence(over, 0)
    assert IMG not in text and "1.4× [1.2–1.6]" in text
    assert ps.followers_sentence(over, 1).startswith("No segment or attribute value")


def test_attribution_table_gives_each_channels_share_with_its_interval():
    m = pd.DataFrame(
        {
            "channel": ["email", "social"],
            "conversions": [30.0, 10.0],
            "conversions_lower": [25.0, 8.0],
            "conversions_upper": [35.0, 12.0],
        }
    )
    t = ps.attribution_table(
        {"0": m, "1": m.assign(conversions=[5.0, 15.0]), "2": pd.DataFrame()},
        labels={0: "quick", 1: "slow", 2: "never"},
    )
    assert list(t.columns) == ["quick", "slow", "never"]
    assert t.loc["(conversions)"].tolist() == ["40", "20", "0"]
    assert t["never"].tolist()[1:] == ["–", "–"]
    assert t.loc["email", "quick"] == "75% [62%–88%]"
    assert t.loc["social", "slow"] == "75% [40%–60%]"
    # 0.75 + 0.25 = 1.0 each: a tie keeps the order seen
    assert list(t.index) == ["(conversions)", "email", "social"]


def test_pattern_paths_count_each_patterns_closed_journeys_and_conversions(tmp_path):
    events, _ = synth.generate(n_persons=300, seed=5)
    csv = tmp_path / "events.csv"
    events.to_csv(csv, index=False)
    ctx = open_report({"segment": "all", "data_path": str(csv)})
    j = ctx.journeys().journeys
    member = pd.DataFrame({"journey_id": j["journey_id"], "archetype": np.arange(len(j)) % 3})
    paths = ps.pattern_paths(ctx, j, member)
    closed = j.assign(archetype=member["archetype"].to_numpy())[j["outcome"] != "open"]
    truth = closed.groupby("archetype")["converted"].agg(["sum", "size"])
    got = paths.groupby(ps.PATTERN_COLUMN)[["conversions", "nulls"]].sum()
    for a, row in truth.iterrows():
        assert got.loc[str(a), "conversions"] == row["sum"]
        assert got.loc[str(a), "conversions"] + got.loc[str(a), "nulls"] == row["size"]
    # the same paths as notebook 03's, split by pattern
    whole = ctx.journeys().channel_paths(exposures_only=True)
    assert got["conversions"].sum() == whole["conversions"].sum()
    calls = []
    tables = ps.attribution_by_pattern(
        paths, lambda p, **kw: calls.append(kw) or p.assign(channel="x"), k=1
    )
    converting = {str(a) for a, row in truth.iterrows() if row["sum"] > 0}
    assert {p for p, t in tables.items() if len(t)} == converting
    assert set(tables) == {"0", "1", "2"} and calls == [{"k": 1}] * len(converting)


def test_selection_says_the_runner_up_and_its_gap_in_standard_errors():
    sel = pd.DataFrame(
        {
            "k": [1, 2, 3],
            "heldout_loglik": [-2.7, -2.6, -2.62],
            "se": [0.01, 0.0, 0.004],
            "chosen": [False, True, False],
        }
    )
    shown = []
    text = ps.show_selection(sel, 2, 3, show=shown.append)
    assert (
        "**2 patterns**" in text
        and "runner-up is **3**, 0.0200 lower per journey (5 standard errors)" in text
    )
    assert shown[1].index.tolist() == [1, 2, 3]
    assert ps.cluster_labels(pd.DataFrame({"cluster": [1, 2], "sequence": ["See", "Do"]})) == {
        1: "cluster 1: See",
        2: "cluster 2: Do",
    }


def test_sampler_sentence_has_nothing_to_check_when_nothing_varied():
    """One pattern shared by every journey (CDNOW: one purchase each): no r-hat, no ESS."""
    text, ok = ps.sampler_sentence({"r_hat_max": np.nan, "ess_bulk_min": np.nan, "chains": 2})
    assert ok and "nothing to check" in text and "nan" not in text
    text, ok = ps.sampler_sentence({"r_hat_max": np.nan, "ess_bulk_min": 450.0, "chains": 2})
    assert not ok  # one of the two missing is not "nothing varied"


def test_sampler_sentence_flags_a_sampler_that_did_not_converge():
    text, ok = ps.sampler_sentence({"r_hat_max": 1.004, "ess_bulk_min": 450.0, "chains": 2})
    assert ok and "Not converged" not in text
    text, ok = ps.sampler_sentence({"r_hat_max": 1.08, "ess_bulk_min": 24.0, "chains": 2})
    assert not ok and "**Not converged**" in text and "bulk ESS ≥ 200" in text


def test_show_typology_formats_its_tables():
    typ = SimpleNamespace(
        k=2,
        n_distinct=5,
        sample=5,
        excluded=1,
        quality=pd.DataFrame(
            {
                "k": [2, 3],
                "asw": [0.61234, 0.5],
                "r2": [0.5, 0.6],
                "cost": [3.0, 2.0],
                "chosen": [True, False],
            }
        ),
        medoids=pd.DataFrame(
            {"cluster": [1, 2], "sequence": [IMG, "Do"], "journeys": [6, 4], "share": [0.6, 0.4]}
        ),
    )
    shown = []
    ps.show_typology(typ, show=shown.append)
    assert "**2 clusters**" in shown[0].data and "1 journeys without a sequence" in shown[0].data
    assert shown[1].loc[2, "ASW"] == 0.612
    assert shown[2]["share"].tolist() == ["60%", "40%"] and shown[2].index.tolist() == [1, 2]


def test_show_pattern_escapes_the_label_sequences_and_values():
    import mistune

    o = _outcomes([0.7, 0.3], [0.6, 0.2], [0.8, 0.4], [IMG, "b"])
    reps = pd.DataFrame(
        {
            "pattern": [0, 0],
            "rank": [1, 2],
            "sequence": [f"{IMG} > Do", "Do"],
            "journeys": [70, 1],
            "share": [0.7, 0.01],
        }
    )
    over = pd.DataFrame(
        {
            "attribute": [IMG],
            "value": [IMG],
            "pattern": [0],
            "ratio": [2.0],
            "lower": [1.5],
            "upper": [2.5],
            "share_in_value": [0.9],
            "share_overall": [0.45],
            "flag": ["over"],
        }
    )
    shown = []
    ps.show_pattern(
        0,
        label=IMG,
        outcomes_row=o.iloc[0].to_dict(),
        representatives=reps,
        over=over,
        show=shown.append,
    )
    page = "".join(mistune.html(m.data) for m in shown)
    assert "<img" not in page and page.count("&lt;img") == 4
    assert "70 journeys (70%)" in page and "1 journey (1%)" in page and "2.0× [1.5–2.5]" in page
