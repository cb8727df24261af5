"""Journey archetypes in the synthetic generator (issue 20): off changes nothing, on is recorded."""

from __future__ import annotations

import hashlib
import itertools

import numpy as np
import pandas as pd
import pytest

from analysis.schema import CONVERSION, DROPOFF, START
from analysis.synth import generate
from analysis.synth.archetypes import DEFAULT_ARCHETYPE_SHARES, DEFAULT_ARCHETYPES


def _digest(frame: pd.DataFrame) -> str:
    return hashlib.sha256(pd.util.hash_pandas_object(frame, index=True).to_numpy()).hexdigest()


def test_archetypes_off_changes_nothing():
    events, truth = generate(800, seed=5)
    again, truth_off = generate(800, seed=5, archetypes=None, archetype_shares=None)
    assert _digest(events) == _digest(again)
    assert _digest(truth.journeys) == _digest(truth_off.journeys)
    assert truth.archetypes is None and "archetype" not in truth.journeys


@pytest.fixture(scope="module")
def planted():
    return generate(4000, seed=11, archetypes=True, censor=False)


def test_journey_archetype_shares_follow_the_segment_shares(planted):
    _, truth = planted
    j = truth.journeys
    arche = truth.archetypes
    assert arche.names == [a["name"] for a in DEFAULT_ARCHETYPES]
    share = arche.shares.set_index(["segment", "archetype"])["share"]
    for seg, group in j.groupby("segment"):
        n = len(group)
        if n < 300:
            continue
        observed = group["archetype"].value_counts(normalize=True)
        for a, name in enumerate(arche.names):
            p = DEFAULT_ARCHETYPE_SHARES[seg][a]
            assert share[(seg, name)] == pytest.approx(p)
            # binomial: 4 standard errors
            assert abs(observed.get(name, 0.0) - p) < 4 * np.sqrt(p * (1 - p) / n), (seg, name)


def test_stage_sequences_follow_each_archetype_exact_rows(planted):
    """Counted transitions of each archetype's journeys match its exact marginal rows."""
    _, truth = planted
    t = truth.archetypes.transitions
    exit_state = {"converted": CONVERSION, "dropoff": DROPOFF}
    for name, group in truth.journeys.groupby("archetype"):
        counts: dict[tuple[str, str], int] = {}
        for stages, outcome in group[["stages", "outcome"]].itertuples(index=False):
            seq = [START, *stages.split(" > "), exit_state[outcome]]
            for a, b in itertools.pairwise(seq):
                counts[(a, b)] = counts.get((a, b), 0) + 1
        rows = t[t["archetype"] == name]
        for frm, row in rows.groupby("from_stage"):
            n = sum(counts.get((frm, to), 0) for to in row["to_stage"])
            if n < 200:
                continue
            for to, p in row[["to_stage", "p"]].itertuples(index=False):
                got = counts.get((frm, to), 0) / n
                assert abs(got - p) < 4 * np.sqrt(p * (1 - p) / n) + 1e-3, (name, frm, to)


def test_archetypes_differ_in_conversion_as_recorded(planted):
    _, truth = planted
    conv = truth.journeys.groupby("archetype")["converted"].mean()
    exact = truth.archetypes.conversion_probability
    n = truth.journeys["archetype"].value_counts()
    for name in exact.index:
        se = np.sqrt(exact[name] * (1 - exact[name]) / n[name])
        assert abs(conv[name] - exact[name]) < 4 * se + 1e-3
    assert exact["impulse"] > exact["researcher"] > exact["browser"]


def test_archetype_options_are_checked():
    with pytest.raises(ValueError, match="archetype_shares"):
        generate(50, seed=0, archetypes=True, archetype_shares={"consumer": (1, 0, 0, 0)})
    with pytest.raises(ValueError, match="incidents"):
        generate(
            50,
            seed=0,
            archetypes=True,
            incidents=[
                {"touchpoint": "x_error", "stage": "Do", "start": "2024-02-01", "end": "2024-02-10"}
            ],
        )
