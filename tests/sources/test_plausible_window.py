"""The plausible timestamp window from an array (``plausible_bounds``) against its definition."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.sources.column_map.map import ColumnMap
from analysis.sources.column_map.timestamps import (
    PLAUSIBLE_FROM,
    PLAUSIBLE_TO,
    plausible_bounds,
    plausible_window,
)

US_LO, US_HI = PLAUSIBLE_FROM.value // 1000, PLAUSIBLE_TO.value // 1000
YEAR = 365 * 86_400 * 10**6


def _by_definition(us: np.ndarray) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The docstring's rule with numpy.quantile (the code before plausible_bounds)."""
    v = us[(us >= US_LO) & (us <= US_HI)]
    if not len(v):
        return PLAUSIBLE_FROM, PLAUSIBLE_TO
    q_lo = int(np.quantile(v, 0.001, method="higher"))
    q_hi = int(np.quantile(v, 0.999, method="lower"))
    if q_lo > q_hi:
        q_lo, q_hi = int(v.min()), int(v.max())
    margin = max(q_hi - q_lo, YEAR)
    return (
        pd.Timestamp(max(q_lo - margin, US_LO), unit="us", tz="UTC"),
        pd.Timestamp(min(q_hi + margin, US_HI), unit="us", tz="UTC"),
    )


times = st.one_of(
    st.integers(US_LO - 5 * YEAR, US_HI + 5 * YEAR),  # some outside the hard limits
    st.integers(1_700_000_000_000_000, 1_700_000_000_000_000 + YEAR // 12),  # a bulk
)


@settings(max_examples=200, deadline=None)
@given(us=st.lists(times, min_size=0, max_size=3000))
def test_bounds_of_an_array_follow_the_definition(us):
    v = np.array(us, dtype=np.int64)
    lo, hi, _ = plausible_bounds(v.copy(), ColumnMap.coerce(None))
    assert (lo, hi) == _by_definition(v)


@pytest.mark.parametrize("n", [1, 2, 3, 999, 1000, 1001, 1002, 2001, 123_457])
def test_bounds_take_the_quantiles_inward_at_every_size(n):
    """Sizes around the 0.1% step: distinct times, so an index off by one shows."""
    rng = np.random.default_rng(n)
    v = 1_600_000_000_000_000 + rng.permutation(n).astype(np.int64) * 10**12  # 11.6 days apart
    lo, hi, _ = plausible_bounds(v.copy(), ColumnMap.coerce(None))
    assert (lo, hi) == _by_definition(v)
    ts = pd.Series(v.view("datetime64[us]")).dt.tz_localize("UTC")
    assert plausible_window(ts, ColumnMap.coerce(None))[:2] == (lo, hi)


def test_bounds_keep_the_sides_a_map_states():
    v = np.array([1_600_000_000_000_000, 1_700_000_000_000_000], dtype=np.int64)
    start = pd.Timestamp("2020-01-01", tz="UTC")
    cmap = ColumnMap.coerce({"timestamp": {"valid_from": "2020-01-01"}})
    lo, hi, how = plausible_bounds(v.copy(), cmap)
    assert lo == start and hi == _by_definition(v)[1]
    assert how.startswith("one side")


def test_bounds_of_a_read_only_array_leave_it_as_it_is():
    v = 1_600_000_000_000_000 + np.arange(5000, dtype=np.int64)[::-1] * 10**9
    v.flags.writeable = False
    before = v.copy()
    lo, hi, _ = plausible_bounds(v, ColumnMap.coerce(None))
    assert (lo, hi) == _by_definition(before)
    np.testing.assert_array_equal(v, before)
