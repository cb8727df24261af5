"""Journey patterns fitted once per run: the saved fit is the fit, and any change misses it."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.models.patterns import saved
from analysis.models.patterns.saved import fit_journey_patterns_cached, patterns_key
from tests.models.test_patterns_mixture import FAST, _two_kinds

pytestmark = pytest.mark.filterwarnings("ignore:journey patterns. r-hat:RuntimeWarning")


def test_the_second_call_loads_the_first_fit_and_a_change_misses_it(tmp_path, monkeypatch):
    journeys = _two_kinds(5, n_a=150, n_b=100)
    args = {"k": 2, "draws": 60, "seed": 1, **FAST}
    fits = []
    real = saved.fit_journey_patterns

    def counted(*a, **k):
        fits.append(1)
        return real(*a, **k)

    monkeypatch.setattr(saved, "fit_journey_patterns", counted)
    first = fit_journey_patterns_cached(journeys, cache_dir=tmp_path, **args)
    again = fit_journey_patterns_cached(journeys, cache_dir=tmp_path, **args)
    assert len(fits) == 1  # the second call fitted nothing
    pd.testing.assert_frame_equal(first.shares, again.shares)
    pd.testing.assert_frame_equal(first.membership, again.membership)
    assert first.k == again.k == 2
    # another seed, or one journey's sequence changed: a new fit
    fit_journey_patterns_cached(journeys, cache_dir=tmp_path, **{**args, "seed": 2})
    edited = journeys.copy()
    edited.loc[0, "stages"] = "Do > Care"
    fit_journey_patterns_cached(edited, cache_dir=tmp_path, **args)
    assert len(fits) == 3
    assert len(list(tmp_path.glob("JourneyPatterns-*.pkl"))) == 3


def test_the_key_follows_what_the_fit_reads_only():
    journeys = _two_kinds(6, n_a=40, n_b=30)
    key = patterns_key(journeys, {"by": "segment"})
    unread = journeys.assign(kind="anything")  # a column the fit does not read
    assert patterns_key(unread, {"by": "segment"}) == key
    assert patterns_key(journeys, {"by": None}) != key
    assert patterns_key(journeys.iloc[::-1], {"by": "segment"}) != key  # order is data
