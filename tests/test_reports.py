from __future__ import annotations

import pandas as pd
import pytest

from analysis.reports import Segment, check_segment_name, load_segments, segment_dir, select_events
from analysis.schema import DataError


@pytest.mark.parametrize("name", ["../../etc", "..", "a/b", "", "/abs", "a b", ".hidden", "x" * 65])
def test_bad_segment_names_are_refused(name, tmp_path):
    with pytest.raises(ValueError, match="not allowed"):
        check_segment_name(name)
    with pytest.raises(ValueError):
        segment_dir(tmp_path, name)


def test_segment_dir_stays_inside_reports(tmp_path):
    assert segment_dir(tmp_path, "enterprise") == (tmp_path / "enterprise").resolve()


def test_load_segments_adds_all_and_checks_names(tmp_path):
    f = tmp_path / "segments.yml"
    f.write_text("segments:\n  - name: ent\n    filter: {segment: enterprise}\n")
    segs = load_segments(f)
    assert [s.name for s in segs] == ["all", "ent"]
    assert segs[1].filter == {"segment": "enterprise"}
    f.write_text("segments:\n  - name: ../../etc\n")
    with pytest.raises(DataError, match="not allowed"):
        load_segments(f)
    f.write_text("segments:\n  - name: a\n    filtr: {x: 1}\n")
    with pytest.raises(DataError, match="unknown keys"):
        load_segments(f)


def test_repository_segments_file_is_valid():
    segs = load_segments()
    assert segs[0] == Segment("all")
    assert len(segs) >= 2


def test_select_events_filters_segment_and_dates():
    ev = pd.DataFrame({
        "timestamp": pd.to_datetime(["2024-01-01 10:00", "2024-01-02 23:59", "2024-01-03 00:00"], utc=True),
        "segment": ["a", "b", "a"],
    })
    assert len(select_events(ev, {"segment": "a"})) == 2
    assert len(select_events(ev, {"segment": ["a", "b"]}, end_date="2024-01-02")) == 2
    assert len(select_events(ev, {}, start_date="2024-01-02")) == 2
    with pytest.raises(DataError, match="lack"):
        select_events(ev, {"region": "x"})
