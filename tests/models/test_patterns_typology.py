"""The distance-based typology: OM/LCS against hand-written programmes, PAM, ASW, the pipeline.

Independent truths: a plain-Python Needleman–Wunsch programme (the full table, no numba),
transition rates counted with collections.Counter, PAM's objective on the expanded journeys,
scikit-learn's silhouette, and planted archetypes of a small generator. Sequenzo parity is in
tests/models/test_patterns_sequenzo.py.
"""

from __future__ import annotations

from collections import Counter
from itertools import pairwise

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import adjusted_rand_score, silhouette_score

from analysis.errors import DataError
from analysis.models.patterns.distances import substitution_costs
from analysis.models.patterns.typology import (
    cluster_quality,
    kmedoids,
    lcs_distances,
    om_distances,
    sequence_typology,
)
from analysis.schema import PATH_SEP

STATES = ["Care", "Do", "See", "Think"]


def nw_distance(a, b, sub, indel):
    """Plain edit distance: full (len a + 1) × (len b + 1) table."""
    t = [[0.0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        t[i][0] = t[i - 1][0] + indel[a[i - 1]]
    for j in range(1, len(b) + 1):
        t[0][j] = t[0][j - 1] + indel[b[j - 1]]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            t[i][j] = min(
                t[i - 1][j] + indel[a[i - 1]],
                t[i][j - 1] + indel[b[j - 1]],
                t[i - 1][j - 1] + sub[a[i - 1]][b[j - 1]],
            )
    return t[-1][-1]


def lcs_length(a, b):
    t = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            t[i + 1][j + 1] = t[i][j] + 1 if x == y else max(t[i][j + 1], t[i + 1][j])
    return t[-1][-1]


seq_strategy = st.lists(
    st.lists(st.sampled_from(STATES), min_size=0, max_size=7), min_size=2, max_size=8
)


@settings(max_examples=40, deadline=None)
@given(seqs=seq_strategy, data=st.data())
def test_om_equals_a_plain_edit_distance_programme(seqs, data):
    n = len(STATES)
    upper = data.draw(st.lists(st.floats(0.1, 3.0), min_size=n * n, max_size=n * n))
    sub = np.array(upper).reshape(n, n)
    sub = np.triu(sub, 1) + np.triu(sub, 1).T
    indel = np.array(data.draw(st.lists(st.floats(0.1, 2.0), min_size=n, max_size=n)))
    got = om_distances(seqs, sm=sub, indel=indel, states=STATES)
    code = {s: i for i, s in enumerate(STATES)}
    for i, a in enumerate(seqs):
        for j, b in enumerate(seqs):
            want = nw_distance([code[x] for x in a], [code[x] for x in b], sub, indel)
            assert got[i, j] == pytest.approx(want, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(seqs=seq_strategy, refs=seq_strategy)
def test_lcs_and_constant_om_against_plain_programmes(seqs, refs):
    got = lcs_distances(seqs, refs)
    want = np.array([[len(a) + len(b) - 2 * lcs_length(a, b) for b in refs] for a in seqs])
    np.testing.assert_array_equal(got, want)
    # OM with substitution 2 and indel 1 is the LCS distance (TraMineR's identity)
    np.testing.assert_allclose(om_distances(seqs, refs, states=STATES), want, atol=1e-12)


def test_joined_strings_and_lists_give_the_same_distances_and_refs_are_columns():
    rng = np.random.default_rng(3)
    seqs = [list(rng.choice(STATES, rng.integers(1, 6))) for _ in range(30)]
    joined = [PATH_SEP.join(s) for s in seqs]
    full = om_distances(seqs, sm="TRATE")
    np.testing.assert_array_equal(om_distances(joined, sm="TRATE"), full)
    # refs: the same TRATE costs (rates from seqs) give the columns of the full matrix
    states, sub = substitution_costs(seqs, sm="TRATE")
    np.testing.assert_allclose(
        om_distances(seqs, [seqs[4], seqs[9]], sm=sub, states=states), full[:, [4, 9]]
    )
    assert np.allclose(full, full.T) and np.all(np.diag(full) == 0)


def test_trate_costs_from_counted_transitions():
    rng = np.random.default_rng(4)
    seqs = [
        list(rng.choice(STATES, rng.integers(1, 8), p=[0.1, 0.2, 0.4, 0.3])) for _ in range(200)
    ]
    weights = rng.integers(1, 5, len(seqs))
    pairs: Counter = Counter()
    for s, w in zip(seqs, weights, strict=True):
        for a, b in pairwise(s):
            pairs[a, b] += w
    states, costs = substitution_costs(seqs, sm="TRATE", weights=weights)
    assert states == STATES
    for a in STATES:
        out = sum(pairs[a, x] for x in STATES)
        for b in STATES:
            if a != b:
                back = sum(pairs[b, x] for x in STATES)
                want = 2 - pairs[a, b] / out - pairs[b, a] / back
                assert costs[states.index(a), states.index(b)] == pytest.approx(want)
    assert np.all(np.diag(costs) == 0)


def test_bad_costs_and_states_raise_data_errors():
    with pytest.raises(DataError, match="unknown substitution"):
        om_distances([["a"], ["b"]], sm="FUTURE")
    with pytest.raises(DataError, match="expected"):
        om_distances([["a"], ["b"]], sm=np.zeros((3, 3)))
    with pytest.raises(DataError, match="not in the alphabet"):
        om_distances([["a"], ["zz"]], states=["a", "b"])


def test_weighted_pam_on_distinct_rows_equals_pam_on_the_expanded_journeys():
    rng = np.random.default_rng(5)
    distinct = [list(rng.choice(STATES, rng.integers(1, 7))) for _ in range(40)]
    counts = rng.integers(1, 6, len(distinct))
    d = om_distances(distinct)
    expanded = np.repeat(np.arange(len(distinct)), counts)
    big = d[np.ix_(expanded, expanded)]
    for k in (2, 3, 4):
        small = kmedoids(d, k, weights=counts)
        full = kmedoids(big, k)
        assert small.cost == pytest.approx(full.cost)
        assert adjusted_rand_score(small.labels[expanded], full.labels) == pytest.approx(1.0)
        # no single swap lowers the cost (PAM's local optimum)
        for m in range(k):
            for h in range(len(distinct)):
                trial = small.medoids.copy()
                trial[m] = h
                assert (counts * d[:, trial].min(axis=1)).sum() >= small.cost - 1e-9
        q = cluster_quality(d, small.labels, counts)
        asw = silhouette_score(big, small.labels[expanded], metric="precomputed")
        assert q["asw"] == pytest.approx(asw)


ARCHETYPES = {
    "researcher": ["See", "Think", "Think", "Do", "Care"],
    "impulse": ["See", "Do"],
    "returning": ["Care", "Do", "Care", "Do", "Care", "Do"],
}


def planted_journeys(n, seed, noise=0.15, empty=0):
    """Journeys copied from three archetypes with random edits; ``empty`` without stages."""
    rng = np.random.default_rng(seed)
    names = list(ARCHETYPES)
    truth = rng.choice(len(names), n, p=[0.5, 0.3, 0.2])
    rows = []
    for t in truth:
        s = list(ARCHETYPES[names[t]])
        if rng.random() < noise:
            s.insert(int(rng.integers(0, len(s) + 1)), str(rng.choice(STATES)))
        if rng.random() < noise and len(s) > 1:
            s.pop(int(rng.integers(0, len(s))))
        rows.append(PATH_SEP.join(s))
    stages = pd.Series(rows, dtype=object)
    stages.iloc[:empty] = [None if i % 2 else "" for i in range(empty)]
    jr = pd.DataFrame({"journey_id": [f"j{i}" for i in range(n)], "stages": stages})
    return jr, np.array(names)[truth]


def test_typology_recovers_planted_archetypes_and_reports_empty_journeys():
    jr, truth = planted_journeys(3000, seed=1, empty=25)
    typ = sequence_typology(jr, k_max=5)
    assert typ.k == 3
    assert typ.excluded == 25
    assert typ.labels["journey_id"].tolist() == jr["journey_id"].tolist()
    assert typ.labels["cluster"].isna().sum() == 25
    assert typ.medoids["journeys"].sum() + typ.excluded == len(jr)
    assert set(typ.medoids["sequence"]) == {PATH_SEP.join(s) for s in ARCHETYPES.values()}
    ok = typ.labels["cluster"].notna().to_numpy()
    assert adjusted_rand_score(truth[ok], typ.labels["cluster"][ok].astype(int)) > 0.9
    assert typ.quality.loc[typ.quality["chosen"], "k"].item() == 3
    assert typ.quality["asw"].idxmax() == typ.quality.index[typ.quality["chosen"]][0]
    # clusters are numbered by size; the medoid is the top representative of its cluster here
    assert typ.medoids["journeys"].is_monotonic_decreasing
    top = typ.representatives[typ.representatives["rank"] == 1]
    assert top["sequence"].tolist() == typ.medoids["sequence"].tolist()
    # each journey's distance is its OM distance to its cluster's medoid
    sample = typ.labels[ok].sample(50, random_state=0)
    med = typ.medoids.set_index("cluster")["sequence"]
    seqs = jr.set_index("journey_id").loc[sample["journey_id"], "stages"]
    want = [om_distances([s], [med[c]])[0, 0] for s, c in zip(seqs, sample["cluster"], strict=True)]
    np.testing.assert_allclose(sample["distance"], want)


def test_a_sample_finds_the_same_medoids_as_all_journeys():
    jr, _ = planted_journeys(20_000, seed=2)
    full = sequence_typology(jr, k=3, sample_size=30_000)
    sampled = sequence_typology(jr, k=3, sample_size=1500, seed=7)
    assert full.sample == full.n_distinct and sampled.sample < full.n_distinct
    assert set(sampled.medoids["sequence"]) == set(full.medoids["sequence"])
    # densities are in journeys (the sample's counts scaled up), at most the cluster's journeys
    top = sampled.representatives.groupby("cluster")["density"].first()
    size = sampled.medoids.set_index("cluster")["journeys"]
    assert top[1] > 1500 and (top <= size * 1.05).all()
    assert sampled.medoids["journeys"].tolist() == full.medoids["journeys"].tolist()


def test_typology_with_trate_and_a_fixed_k():
    jr, _ = planted_journeys(1000, seed=3)
    typ = sequence_typology(jr, k=2, sm="TRATE")
    assert typ.k == 2 and len(typ.medoids) == 2 and typ.quality["chosen"].all()
    assert (typ.representatives.groupby("cluster")["rank"].max() <= 5).all()


def test_typology_errors_name_the_column():
    jr, _ = planted_journeys(50, seed=4)
    with pytest.raises(DataError, match="no column 'stage'") as e:
        sequence_typology(jr, sequence="stage")
    assert "stages" in str(e.value)
    with pytest.raises(DataError, match="empty"):
        sequence_typology(jr.assign(stages=""))
    few = pd.DataFrame({"journey_id": list("abcd"), "stages": ["See > Do", "See", "Care", None]})
    with pytest.raises(DataError, match="k=5 clusters of 3 distinct"):
        sequence_typology(few, k=5)
    one = sequence_typology(few.assign(stages=["See > Do"] * 3 + [None]))
    assert one.k == 1 and one.excluded == 1 and one.medoids["journeys"].tolist() == [3]


def test_representatives_are_the_densest_non_redundant_sequences():
    jr, _ = planted_journeys(1500, seed=6, noise=0.4)
    typ = sequence_typology(jr, k=3)
    assert typ.sample == typ.n_distinct  # every distinct sequence in PAM: densities are exact
    reps = typ.representatives
    assert set(reps.columns) >= {"cluster", "rank", "sequence", "journeys", "coverage"}
    seqs = jr["stages"].to_numpy()
    lab = typ.labels["cluster"].to_numpy()
    uniq = pd.unique(seqs)
    radius = 0.1 * om_distances(list(uniq)).max()
    for c, g in reps.groupby("cluster"):
        members = seqs[lab == c]
        d = om_distances(list(g["sequence"]), list(members))
        # density: the cluster's journeys within the radius; the first is the densest sequence
        np.testing.assert_allclose(g["density"], (d <= radius).sum(axis=1))
        cand = pd.unique(members)
        dens = (om_distances(list(cand), list(members)) <= radius).sum(axis=1)
        assert g["density"].iloc[0] == dens.max()
        # no representative within the radius of an earlier one; coverage grows to at most 1
        if len(g) > 1:
            between = om_distances(list(g["sequence"]))
            assert between[np.triu_indices(len(g), 1)].min() > radius
        assert g["coverage"].is_monotonic_increasing and g["coverage"].iloc[-1] <= 1
        covered = (d <= radius).any(axis=0).mean()
        assert g["coverage"].iloc[-1] == pytest.approx(covered)


def test_collapse_removes_repeated_states_before_the_distances():
    jr, _ = planted_journeys(800, seed=8)
    repeated = jr.assign(
        stages=[
            PATH_SEP.join(x for s in p.split(PATH_SEP) for x in [s] * (1 + len(s) % 3))
            for p in jr["stages"]
        ]
    )
    plain = sequence_typology(jr, k=3, collapse=True)  # the generator's edits can repeat a state
    collapsed = sequence_typology(repeated, k=3, collapse=True)
    pd.testing.assert_frame_equal(plain.labels, collapsed.labels)
    pd.testing.assert_frame_equal(plain.medoids, collapsed.medoids)
    assert (
        sequence_typology(repeated, k=3).medoids["sequence"].str.len().max()
        > plain.medoids["sequence"].str.len().max()
    )
