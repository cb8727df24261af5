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


def _tiny_notebook(path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('segment: str = "all"  # segment slug\nsegment_filter: dict = {}  # filter\n'
                                       'data_path: str = ""  # data')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(
        'if segment == "bad":\n    raise RuntimeError("boom in " + segment)\nprint("<b>" + segment + "</b>")')]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_runner_keeps_going_past_a_failing_segment(tmp_path):
    from analysis.reports import run_reports

    nb = tmp_path / "tiny.ipynb"
    _tiny_notebook(nb)
    out = tmp_path / "reports"
    logs = []
    res = run_reports("x.csv", [Segment("bad"), Segment("good")], notebooks=[nb],
                      reports_dir=out, log=logs.append)
    assert res.exit_code == 1
    assert [f[0] for f in res.failed] == ["bad"] and "boom in bad" in res.failed[0][2]
    assert [o[0] for o in res.ok] == ["good"]
    html = (out / "good" / "tiny.html").read_text()
    assert "&lt;b&gt;good&lt;/b&gt;" in html  # printed data is escaped, not markup
    assert not (out / "bad" / "tiny.html").exists(), "a failed run leaves no finished-looking report"
    assert (out / "bad" / "tiny.failed.ipynb").exists()
    assert not list(out.rglob("*.tmp-*")), "no temporary files left behind"
    assert any("1 of 2 report(s) failed" in line for line in logs)
