"""Parity with Sequenzo (the Python port of TraMineR/WeightedCluster), run live.

On data sets Sequenzo ships (mvad: 712 school-to-work sequences of 70 months; biofam: 2,000
family-life sequences of 16 years) our optimal-matching distances (CONSTANT and TRATE costs),
LCS distances, PAM partitions and cluster-quality figures equal Sequenzo's. Variable-length
sequences (journeys) are checked with Sequenzo's void padding.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from analysis.models.patterns.typology import (
    cluster_quality,
    kmedoids,
    lcs_distances,
    om_distances,
    sequence_typology,
)
from analysis.schema import PATH_SEP

sequenzo = pytest.importorskip("sequenzo")
from sequenzo.clustering.k_medoids import KMedoids  # noqa: E402
from sequenzo.clustering.validation.partition_quality import (  # noqa: E402
    compute_partition_quality,
)

TOL = 1e-9


def quiet(fn, *args, **kwargs):
    """Sequenzo prints progress to stdout."""
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args, **kwargs)


def load(name, rows=None):
    df = sequenzo.load_dataset(name).iloc[:rows].reset_index(drop=True)
    df["row"] = np.arange(len(df))
    time_cols = {
        "mvad": [c for c in df.columns if c[-3:-2] == "." and c[-2:].isdigit()],
        "biofam": [str(a) for a in range(15, 31)],
    }[name]
    states = sorted(pd.unique(df[time_cols].to_numpy().ravel()).astype(str))
    df[time_cols] = df[time_cols].astype(str)
    sd = quiet(sequenzo.SequenceData, df, time=time_cols, states=states, id_col="row")
    return df, df[time_cols].to_numpy().tolist(), states, sd


def distinct_then_expand(seqs, fn, **kwargs):
    """Our distances on the distinct sequences, expanded to every row (what the typology does)."""
    joined = pd.Series([PATH_SEP.join(s) for s in seqs])
    codes, uniq = pd.factorize(joined)
    d = fn(list(uniq), **kwargs)
    return d[np.ix_(codes, codes)]


@pytest.fixture(scope="module")
def mvad():
    """The first 300 of mvad's 712 sequences: the default suite stays fast (all in the slow test)."""
    return load("mvad", rows=300)


@pytest.mark.parametrize("sm", ["CONSTANT", "TRATE"])
def test_om_distances_equal_sequenzo_on_mvad(mvad, sm):
    _, seqs, states, sd = mvad
    theirs = np.asarray(quiet(sequenzo.get_distance_matrix, sd, method="OM", sm=sm, indel=1), float)
    if sm == "TRATE":
        # TRATE's rates come from every row (weights = counts of each distinct sequence)
        joined = pd.Series([PATH_SEP.join(s) for s in seqs])
        codes, uniq = pd.factorize(joined)
        d = om_distances(list(uniq), sm=sm, states=states, weights=np.bincount(codes))
        ours = d[np.ix_(codes, codes)]
    else:
        ours = distinct_then_expand(seqs, om_distances, states=states)
    assert theirs.shape == (300, 300)
    assert np.abs(ours - theirs).max() <= TOL


def test_lcs_distances_equal_sequenzo_on_mvad(mvad):
    _, seqs, _, sd = mvad
    theirs = np.asarray(quiet(sequenzo.get_distance_matrix, sd, method="LCS"), float)
    assert np.abs(distinct_then_expand(seqs, lcs_distances) - theirs).max() <= TOL


@pytest.mark.parametrize("weighted", [False, True])
def test_pam_partition_and_quality_equal_sequenzo_on_mvad(mvad, weighted):
    df, _, _, sd = mvad
    dist = np.asarray(quiet(sequenzo.get_distance_matrix, sd, method="OM", sm="CONSTANT", indel=1))
    w = df["weight"].to_numpy(float) if weighted else None
    ones = np.ones(len(dist)) if w is None else w
    for k in range(2, 7):
        theirs = np.asarray(quiet(KMedoids, dist, k, weights=w, method="PAM")) - 1  # 1-based medoid
        ours = kmedoids(dist, k, weights=w)
        assert adjusted_rand_score(theirs, ours.labels) == 1.0
        # the same medoid sequences (rows may differ among identical sequences)
        their_meds = np.unique(theirs)
        assert np.all(dist[np.ix_(their_meds, ours.medoids)].min(axis=1) == 0)
        assert ours.cost == pytest.approx((ones * dist[:, their_meds].min(axis=1)).sum(), abs=TOL)
        q = compute_partition_quality(dist, ours.labels, w)
        mine = cluster_quality(dist, ours.labels, ones)
        assert mine["asw"] == pytest.approx(q["ASW"], abs=TOL)
        assert mine["r2"] == pytest.approx(q["R2"], abs=TOL)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mvad", "biofam"])
def test_whole_data_sets_distances_partition_and_chosen_k_equal_sequenzo(name):
    _, seqs, states, sd = load(name)
    theirs = np.asarray(quiet(sequenzo.get_distance_matrix, sd, method="LCS"), float)
    assert np.abs(distinct_then_expand(seqs, lcs_distances) - theirs).max() <= TOL
    for sm in ("TRATE", "CONSTANT"):
        theirs = np.asarray(quiet(sequenzo.get_distance_matrix, sd, method="OM", sm=sm, indel=1))
        joined = pd.Series([PATH_SEP.join(s) for s in seqs])
        codes, uniq = pd.factorize(joined)
        d = om_distances(list(uniq), sm=sm, states=states, weights=np.bincount(codes))
        assert np.abs(d[np.ix_(codes, codes)] - theirs).max() <= TOL
    # the typology on distinct sequences (weights = counts) picks Sequenzo's k and partition
    dist = theirs  # CONSTANT, the last one
    asw = {}
    for k in range(2, 7):
        lab = np.asarray(quiet(KMedoids, dist, k, method="PAM"))
        asw[k] = compute_partition_quality(dist, lab)["ASW"]
    best = max(asw, key=asw.get)
    jr = pd.DataFrame({"journey_id": np.arange(len(seqs)), "stages": joined})
    typ = sequence_typology(jr, k_max=6, sample_size=len(seqs))
    assert typ.k == best
    np.testing.assert_allclose(typ.quality.set_index("k")["asw"], pd.Series(asw), atol=TOL)
    theirs_lab = np.asarray(quiet(KMedoids, dist, best, method="PAM"))
    assert adjusted_rand_score(theirs_lab, typ.labels["cluster"].astype(int)) == 1.0


def test_variable_length_om_equals_sequenzo_with_void_padding():
    """Journeys differ in length: Sequenzo pads with the void state (code 0, TraMineR's '%')."""
    rng = np.random.default_rng(1)
    states = ["Care", "Do", "See", "Think"]
    seqs = [list(rng.choice(states, rng.integers(1, 9))) for _ in range(80)]
    width = max(map(len, seqs))
    cols = [f"t{i}" for i in range(width)]
    wide = pd.DataFrame([s + ["%"] * (width - len(s)) for s in seqs], columns=cols)
    wide.insert(0, "id", range(len(seqs)))
    sd = quiet(sequenzo.SequenceData, wide, time=cols, states=[*states, "%"], id_col="id")
    void = len(states) + 1
    sd.seqdata = sd.seqdata.where(sd.seqdata != void, 0)  # code 0: out of the sequence
    theirs = np.asarray(
        quiet(sequenzo.get_distance_matrix, sd, method="OM", sm="CONSTANT", indel=1)
    )
    assert np.abs(om_distances(seqs, states=states) - theirs).max() <= TOL
    assert len({len(s) for s in seqs}) > 5
