"""Figures of journey patterns (TraMineR-style): panels, legends, and the counts they draw.

The bars, rows and cells are read back from the figures and compared with counts made
independently from the hand-built sequence tables.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from analysis.plotting.patterns import (
    ENDED,
    plot_pattern_shares,
    plot_representatives,
    plot_sequence_index,
    plot_state_distribution,
    state_colours,
)

STATES = ["See", "Think", "Do", "Care"]


@pytest.fixture
def table():
    rng = np.random.default_rng(0)
    pool = ["See > Think > Do", "See > Think", "Think > Do", "Do", "Care > Do", "See"]
    seqs = rng.choice(pool, 500)
    pattern = np.where(np.char.startswith(seqs.astype(str), "See"), "browsers", "deciders")
    pattern[np.char.startswith(seqs.astype(str), "Care")] = "customers"
    return pd.DataFrame({"pattern": pattern, "sequence": seqs})


def _legend_texts(fig):
    return [t.get_text() for t in fig.legends[0].get_texts()]


def test_state_distribution_stacks_each_states_share_at_each_position(table):
    fig = plot_state_distribution(table, states=STATES, max_positions=4)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 3
    assert _legend_texts(fig) == [*STATES, ENDED]
    for ax in axes:
        name = ax.get_title().split("\n")[0]
        mine = table.loc[table["pattern"] == name, "sequence"].str.split(" > ")
        n = len(mine)
        assert f"n={n:,} ({n / len(table):.0%})" in ax.get_title()
        bars = {c.get_label(): [p.get_height() for p in c.patches] for c in ax.containers}
        assert list(bars) == [*STATES, ENDED]
        for pos in range(4):
            for s in STATES:
                truth = sum(len(t) > pos and t[pos] == s for t in mine) / n
                assert bars[s][pos] == pytest.approx(truth)
            ended = sum(len(t) <= pos for t in mine) / n
            assert bars[ENDED][pos] == pytest.approx(ended)
    plt.close("all")


def test_weights_count_as_repeated_rows(table):
    agg = table.value_counts().rename("n").reset_index()
    a = plot_state_distribution(agg, weight="n", states=STATES)
    b = plot_state_distribution(table, states=STATES)
    for x, y in zip(a.axes, b.axes, strict=True):
        assert x.get_title() == y.get_title()
        hx = [p.get_height() for c in x.containers for p in c.patches]
        hy = [p.get_height() for c in y.containers for p in c.patches]
        assert np.allclose(hx, hy)
    plt.close("all")


def test_sequence_index_draws_one_sorted_row_per_journey_and_samples_at_scale(table):
    fig = plot_sequence_index(table, states=STATES, labels={"deciders": "Deciders"}, max_rows=150)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert axes[0].get_title().startswith("Deciders")  # labels order the panels
    assert _legend_texts(fig) == STATES
    for ax in axes:
        grid = ax.images[0].get_array()
        name = {"Deciders": "deciders"}.get(
            ax.get_title().split("\n")[0], ax.get_title().split("\n")[0]
        )
        n = int((table["pattern"] == name).sum())
        assert grid.shape == (min(n, 150), 5)  # the longest journey has 3 steps: 5 at least
        rows = [tuple(r) for r in np.asarray(grid)]
        assert rows == sorted(rows)  # sorted from the first position on
        if n > 150:
            assert "150 of" in ax.get_ylabel() and "random sample" in ax.get_ylabel()
        else:  # every journey: first states counted as the table says
            first = table.loc[table["pattern"] == name, "sequence"].str.split(" > ").str[0]
            drawn = pd.Series(np.asarray(grid)[:, 0]).map(dict(enumerate(STATES)))
            assert drawn.value_counts().to_dict() == first.value_counts().to_dict()
    plt.close("all")


def test_representatives_heights_are_their_journeys():
    reps = pd.DataFrame(
        {
            "cluster": [1, 1, 2],
            "sequence": ["See > Think", "See", "Do > Care"],
            "journeys": [30, 10, 5],
        }
    )
    fig = plot_representatives(reps, pattern="cluster", totals={1: 80, 2: 5}, states=STATES)
    ax1, ax2 = fig.axes[:2]
    heights = sorted({round(p.get_paths()[0].get_extents().height, 6) for p in ax1.collections})
    assert heights == [10.0, 30.0]
    assert "representative(s) 50% of n=80" in ax1.get_title() and "100% of n=5" in ax2.get_title()
    fig = plot_representatives(reps, pattern="cluster", totals={1: 20_000, 2: 5}, states=STATES)
    assert "<1% of n=20,000" in fig.axes[0].get_title()
    # TraMineR's seqrep: bars as tall as the neighbourhood (density), the title its coverage
    dense = reps.assign(density=[60.0, 50.0, 5.0], coverage=[0.6, 0.9, 1.0])
    fig = plot_representatives(
        dense, pattern="cluster", journeys="density", coverage="coverage", totals={1: 80, 2: 5}
    )
    assert "2 representative(s) cover 90% of n=80" in fig.axes[0].get_title()
    assert fig.axes[0].get_ylim() == (110.0, 0.0) and "neighbourhood" in fig.axes[0].get_ylabel()
    assert len(ax1.collections) == 3 and len(ax2.collections) == 2  # one cell per state drawn
    plt.close("all")


def test_pattern_shares_heat_map_writes_each_cells_interval():
    shares = pd.DataFrame(
        {
            "segment": ["a", "a", "b", "b"],
            "archetype": [0, 1, 0, 1],
            "mean": [0.7, 0.3, 0.2, 0.8],
            "lower": [0.6, 0.2, 0.1, 0.7],
            "upper": [0.8, 0.4, 0.3, 0.9],
        }
    )
    ax = plot_pattern_shares(shares, labels={0: "quick", 1: "slow $ path"})
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["70%\n[60%–80%]", "30%\n[20%–40%]", "20%\n[10%–30%]", "80%\n[70%–90%]"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["quick", r"slow \$ path"]
    plt.close("all")


def test_state_colours_are_stable_and_distinct():
    c = state_colours(STATES)
    assert list(c) == STATES and len(set(c.values())) == 4
    assert state_colours([*STATES, "Extra"])["Do"] == c["Do"]
    many = state_colours([f"s{i}" for i in range(15)])
    assert len(set(many.values())) == 15


def test_positions_drawn_follow_the_journeys_lengths():
    """19 journeys of 12 steps and one of 40: 12 positions (90% are no longer), not 40 nor 10."""
    seqs = [" > ".join(["See", "Think"] * 6)] * 19 + [" > ".join(["Do"] * 40)]
    t = pd.DataFrame({"pattern": "a", "sequence": seqs})
    fig = plot_state_distribution(t, states=STATES)
    assert len(fig.axes[0].containers[0].patches) == 12
    fig = plot_sequence_index(t, states=STATES)
    assert fig.axes[0].images[0].get_array().shape == (20, 12)
    fig = plot_state_distribution(t, states=STATES, max_positions=40)
    assert len(fig.axes[0].containers[0].patches) == 40
    plt.close("all")


def test_long_pattern_names_are_wrapped_and_shortened_in_titles_and_ticks():
    long = " > ".join(["Discover", "Browse", "Consider"] * 8)
    t = pd.DataFrame({"pattern": [0, 0, 1], "sequence": ["See", "See > Do", "Do"]})
    fig = plot_state_distribution(t, labels={0: long, 1: "short"})
    name_lines = fig.axes[0].get_title().split("\n")[:-1]
    assert (
        len(name_lines) == 2
        and all(len(x) <= 38 for x in name_lines)
        and "…" in "".join(name_lines)
    )
    shares = pd.DataFrame(
        {
            "segment": ["a", "a"],
            "archetype": [0, 1],
            "mean": [0.5, 0.5],
            "lower": [0.4, 0.4],
            "upper": [0.6, 0.6],
        }
    )
    ax = plot_pattern_shares(shares, labels={0: long, 1: "short"})
    first = ax.get_xticklabels()[0].get_text().split("\n")
    assert len(first) == 2 and all(len(x) <= 22 for x in first)
    plt.close("all")


def test_no_sequence_draws_a_figure_that_says_so():
    empty = pd.DataFrame({"pattern": [], "sequence": []})
    for plot in (plot_state_distribution, plot_sequence_index, plot_representatives):
        kw = {"journeys": "n"} if plot is plot_representatives else {}
        fig = plot(empty.assign(n=[]), **kw)
        assert "no journey has a sequence" in fig.axes[0].texts[0].get_text()
    plt.close("all")
