"""analysis.prepared: the cached read + stitch equals a fresh one, and any change of input or
option misses the cache."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.prepared import prepare, prepare_key


@pytest.fixture()
def csv(tmp_path, synth_small):
    events, _ = synth_small
    path = tmp_path / "events.csv"
    events.to_csv(path, index=False)
    return path


def test_cached_result_equals_a_fresh_one(csv, tmp_path):
    cache = tmp_path / "cache"
    first = prepare(csv, cache_dir=cache)
    again = prepare(csv, cache_dir=cache)
    fresh = prepare(csv, cache=False)
    assert not first.from_cache and again.from_cache
    assert len(list(cache.glob("*.pkl"))) == 1
    pd.testing.assert_frame_equal(again.events, fresh.events)
    pd.testing.assert_frame_equal(again.loaded.quarantine, fresh.loaded.quarantine)
    pd.testing.assert_frame_equal(again.stitched.identities, fresh.stitched.identities)
    pd.testing.assert_frame_equal(again.stitched.report(), fresh.stitched.report())
    assert again.loaded.summary == fresh.loaded.summary


def test_a_changed_file_or_option_misses_the_cache(csv, tmp_path):
    cache = tmp_path / "cache"
    before = prepare(csv, cache_dir=cache)
    assert prepare_key(csv, max_links=2) != before.key
    lines = csv.read_text().splitlines()
    csv.write_text("\n".join(lines[:-1]) + "\n")  # one row fewer
    after = prepare(csv, cache_dir=cache)
    assert after.key != before.key and not after.from_cache
    assert after.loaded.summary["rows_read"] == before.loaded.summary["rows_read"] - 1
    mapping = tmp_path / "map.yml"
    mapping.write_text("defaults: {segment: all}\n")
    assert prepare_key(csv, mapping) != prepare_key(csv)
    mapping.write_text("defaults: {segment: other}\n")
    key2 = prepare_key(csv, mapping)
    mapping.write_text("defaults: {segment: all}\n")
    assert prepare_key(csv, mapping) != key2


def test_a_torn_cache_entry_is_rebuilt(csv, tmp_path):
    cache = tmp_path / "cache"
    first = prepare(csv, cache_dir=cache)
    (cache / f"{first.key}.pkl").write_bytes(b"not a pickle")
    again = prepare(csv, cache_dir=cache)
    assert not again.from_cache
    pd.testing.assert_frame_equal(again.events, first.events)
    assert prepare(csv, cache_dir=cache).from_cache  # rewritten whole


def test_prepare_summary_reads_only_the_counts_of_a_cached_entry(csv, tmp_path, monkeypatch):
    """The report runner checks the data with prepare_summary: on a cached entry it reads the
    small JSON beside it (no pickle, no pandas); an entry without one gets one."""
    import pickle

    from analysis.prepared import prepare_summary

    cache = tmp_path / "cache"
    cold = prepare_summary(csv, cache_dir=cache)
    fresh = prepare(csv, cache=False)
    assert not cold["from_cache"]
    assert cold["loaded"]["rows_read"] == fresh.loaded.summary["rows_read"] == len(pd.read_csv(csv))
    assert cold["stitched"]["persons"] == fresh.stitched.summary["persons"]

    def no_unpickling(*a, **k):
        raise AssertionError("the pickle was loaded")

    monkeypatch.setattr(pickle, "load", no_unpickling)
    warm = prepare_summary(csv, cache_dir=cache)
    assert (
        warm["from_cache"]
        and warm["loaded"] == cold["loaded"]
        and warm["stitched"] == cold["stitched"]
    )
    monkeypatch.undo()
    (sidecar,) = cache.glob("*.json")
    sidecar.unlink()  # an entry written before the summaries existed
    again = prepare_summary(csv, cache_dir=cache)
    assert again["from_cache"] and again["loaded"] == cold["loaded"] and sidecar.is_file()
