"""Connected components by large-star/small-star on Spark, against scipy's."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components as scipy_components

pytestmark = pytest.mark.spark


def _spark_labels(spark, edges: list[tuple[int, int]], n: int, stats=None) -> np.ndarray:
    """Component label (smallest node) of nodes 0..n-1; isolated nodes label themselves."""
    from analysis.spark import connected_components

    df = spark.createDataFrame(edges, "src long, dst long")
    got = dict(connected_components(df, stats=stats).toPandas().itertuples(index=False))
    return np.array([got.get(i, i) for i in range(n)])


def _scipy_min_labels(edges: list[tuple[int, int]], n: int) -> np.ndarray:
    """scipy's components, each labelled by its smallest node."""
    src = np.array([e[0] for e in edges], dtype=np.int64)
    dst = np.array([e[1] for e in edges], dtype=np.int64)
    g = coo_matrix((np.ones(len(src)), (src, dst)), shape=(n, n))
    lab = scipy_components(g, directed=False)[1]
    smallest = {}
    for node, comp in enumerate(lab):
        smallest.setdefault(comp, node)
    return np.array([smallest[c] for c in lab])


@settings(
    max_examples=4,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.integers(2, 25).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=2 * n),
        )
    )
)
def test_components_equal_scipy_on_random_graphs(spark, graph):
    n, edges = graph
    np.testing.assert_array_equal(_spark_labels(spark, edges, n), _scipy_min_labels(edges, n))


def test_a_long_scrambled_path_takes_several_rounds_and_is_one_component(spark):
    rng = np.random.default_rng(3)
    order = rng.permutation(200) + 1000  # a path through the nodes in random order
    edges = [(int(a), int(b)) for a, b in itertools.pairwise(order)]
    edges += [(5, 6), (7, 7)]  # a second component and a self-loop
    stats: dict = {}
    from analysis.spark import connected_components

    df = spark.createDataFrame(edges, "src long, dst long")
    got = dict(connected_components(df, stats=stats).toPandas().itertuples(index=False))
    assert {got[int(x)] for x in order} == {1000}
    assert got[6] == 5 and got[5] == 5 and 7 not in got  # a self-loop alone is no edge
    assert stats["rounds"] > 2  # a path of 200 needs several large/small-star rounds
    assert len(got) == 200 + 2


def test_dense_index_numbers_in_order_without_gaps(spark):
    from analysis.spark import dense_index

    rng = np.random.default_rng(0)
    vals = [
        (int(t), f"v{int(v):04d}")
        for t, v in zip(rng.integers(0, 4, 300), rng.permutation(300), strict=True)
    ]
    df = spark.createDataFrame(vals, "t int, s string").repartition(5)
    got = dense_index(df, ["t", "s"], "k").toPandas().sort_values("k")
    assert got["k"].tolist() == list(range(1, 301))
    assert list(zip(got["t"], got["s"], strict=True)) == sorted(vals)
