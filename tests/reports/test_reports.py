from __future__ import annotations

import json
import os
import re

import pandas as pd
import pytest

from analysis import config
from analysis.__main__ import main
from analysis.reports import (
    HEADLINE_ENV,
    Segment,
    check_segment_name,
    latest_run,
    load_segments,
    record_headline,
    run_dir_for_resume,
    run_reports,
    segment_dir,
    select_events,
    top_channel_headline,
)
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
    ev = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(
                ["2024-01-01 10:00", "2024-01-02 23:59", "2024-01-03 00:00"], utc=True
            ),
            "segment": ["a", "b", "a"],
        }
    )
    assert len(select_events(ev, {"segment": "a"})) == 2
    assert len(select_events(ev, {"segment": ["a", "b"]}, end_date="2024-01-02")) == 2
    assert len(select_events(ev, {}, start_date="2024-01-02")) == 2
    with pytest.raises(DataError, match="lack"):
        select_events(ev, {"region": "x"})


TINY_CODE = """\
import random
from pathlib import Path

from analysis.reports import record_headline

if counter_dir:  # one line per execution, to see what a resume re-ran
    with open(Path(counter_dir) / f"{segment}.count", "a") as f:
        f.write("run\\n")
if segment == "bad":
    raise RuntimeError("boom in " + segment + "\\nsecond line")
if segment == "B" and marker and Path(marker).exists():
    raise RuntimeError("marker present")
if segment == "B" and hang_while:  # stands for a long notebook: runs until the file goes
    import time
    for _ in range(1200):
        if not Path(hang_while).exists():
            break
        time.sleep(0.1)
print("<b>" + segment + "</b>")
rng = random.Random(seed)
record_headline(journeys=len(Path(data_path).read_text().splitlines()) - 1, conversion_rate=rng.random(),
                conversion_lower=0.01, conversion_upper=0.99, friction_stage="Think",
                top_channel=segment_filter.get("channel", "email"))
"""


def _tiny_notebook(path):
    """A report template in miniature: a parameters cell, then a cell that records headline
    figures, or raises for segment "bad" (and while the file ``marker`` exists)."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(
        'segment: str = "all"  # segment slug\nsegment_filter: dict = {}  # filter\n'
        'data_path: str = ""  # data\nseed: int = 0  # seed\nmarker: str = ""  # fail while it exists\n'
        'counter_dir: str = ""  # count executions here\nhang_while: str = ""  # B waits while it exists'
    )
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(TINY_CODE)]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)
    return path


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    nb = _tiny_notebook(tmp_path / "tiny.ipynb")
    data = tmp_path / "events.csv"  # the runner reads and stitches it once before the notebooks
    data.write_text(
        "event_id,timestamp,user_id,channel,touchpoint,segment\n"
        "e1,2024-01-01T10:00:00Z,u1,display,ad_impression,enterprise\n"
        "e2,2024-01-02T10:00:00Z,u1,direct,purchase,enterprise\n"
        "e3,2024-01-03T10:00:00Z,u2,email,site_visit,good\n"
    )
    monkeypatch.setattr("analysis.config.CACHE_DIR", tmp_path / "cache")
    return nb, data, tmp_path / "reports"


def test_runner_keeps_going_past_a_failing_segment(tiny, tmp_path, caplog):
    nb, data, out = tiny
    seg_file = tmp_path / "segments.yml"
    seg_file.write_text("segments:\n  - name: bad\n  - name: good\n    filter: {segment: good}\n")
    caplog.set_level("INFO", logger="analysis.reports")
    code = main(
        [
            "report",
            "--data",
            str(data),
            "--segments",
            str(seg_file),
            "--segment",
            "bad",
            "--segment",
            "good",
            "--notebook",
            str(nb),
            "--out",
            str(out),
            "--workers",
            "2",
        ]
    )
    assert code == 1
    assert (
        "1 of 2 report(s) failed" in caplog.text
        and "bad / tiny.ipynb: RuntimeError: boom in bad" in caplog.text
    )
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    html = (run / "good" / "tiny.html").read_text()
    assert "&lt;b&gt;good&lt;/b&gt;" in html  # printed data is escaped, not markup
    assert not (run / "bad" / "tiny.html").exists(), (
        "a failed run leaves no finished-looking report"
    )
    assert (run / "bad" / "tiny.failed.ipynb").exists()
    assert not list(out.rglob("*.tmp-*")), "no temporary files left behind"
    index = (run / "index.html").read_text()
    assert "RuntimeError: boom in bad" in index and "second line" in index
    assert '<a href="good/tiny.html">tiny</a>' in index
    manifest = json.loads((run / "manifest.json").read_text())
    assert (
        manifest["segments"]["bad"]["status"] == "failed"
        and manifest["segments"]["good"]["status"] == "ok"
    )
    assert manifest["headline"]["good"]["journeys"] == 3 and "bad" not in manifest["headline"]
    import hashlib

    assert manifest["data_files"]["data"]["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert manifest["parameters"]["segments"] == {"bad": {}, "good": {"segment": "good"}}
    assert set(manifest["segments"]["good"]["notebooks"]["tiny.ipynb"]) >= {"status", "seconds"}
    assert "papermill" in manifest["packages"]
    assert not (run / ".complete").exists() and latest_run(out) is None, (
        "latest moves only to complete runs"
    )


def test_resume_finishes_an_interrupted_run_without_redoing_reports(tiny, tmp_path, capsys):
    nb, data, out = tiny
    marker, counts = tmp_path / "marker", tmp_path / "counts"
    marker.touch()
    counts.mkdir()
    first = run_reports(
        data,
        [Segment("A"), Segment("B")],
        notebooks=[nb],
        reports_dir=out,
        parameters={"marker": str(marker), "counter_dir": str(counts)},
        log=lambda m: None,
    )
    assert first.exit_code == 1 and [f[0] for f in first.failed] == ["B"]
    run = first.run_dir
    a_html = run / "A" / "tiny.html"
    a_mtime = a_html.stat().st_mtime_ns
    assert not (run / ".complete").exists() and latest_run(out) is None
    with pytest.raises(ValueError, match="not allowed"):
        run_dir_for_resume(out, "../../etc")

    marker.unlink()
    logs: list[str] = []
    again = run_reports(None, None, reports_dir=out, resume="latest", log=logs.append)
    assert again.exit_code == 0 and again.run_dir == run
    assert (counts / "A.count").read_text().count("run") == 1, "A was not executed again"
    assert (counts / "B.count").read_text().count("run") == 2
    assert a_html.stat().st_mtime_ns == a_mtime
    assert (run / "B" / "tiny.html").exists() and not (run / "B" / "tiny.failed.ipynb").exists()
    assert (run / ".complete").exists() and latest_run(out) == run.resolve()
    assert any("[1/2] A: tiny.ipynb already done" in line for line in logs)
    assert any(line.startswith("[2/2] B: tiny.ipynb ok in") for line in logs)
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["complete"] and set(manifest["headline"]) == {"A", "B"}
    assert "Incomplete" not in (run / "index.html").read_text()
    with pytest.raises(Exception, match="no incomplete run"):
        run_reports(None, None, reports_dir=out, resume="latest", log=lambda m: None)
    assert main(["report", "--resume", run.name, "--out", str(out)]) == 2  # complete: never redone
    assert "already complete" in capsys.readouterr().err


def test_a_killed_run_is_finished_by_resume_without_redoing_finished_reports(tiny, tmp_path):
    """The whole runner process group is SIGKILLed while segment B's notebook runs (A is done):
    nothing looks finished that is not, and ``--resume`` runs B only and completes the run."""
    import signal
    import subprocess
    import sys
    import time

    nb, data, out = tiny
    hold, counts = tmp_path / "hold", tmp_path / "counts"
    hold.touch()
    counts.mkdir()
    segments = tmp_path / "segments.yml"
    segments.write_text("segments:\n  - name: A\n  - name: B\n")
    env = {**os.environ, "CJL_CACHE_DIR": str(tmp_path / "cache")}
    cmd = [
        sys.executable,
        "-m",
        "analysis",
        "report",
        "--data",
        str(data),
        "--segments",
        str(segments),
        "--segment",
        "A",
        "--segment",
        "B",
        "--notebook",
        str(nb),
        "--out",
        str(out),
        "--workers",
        "1",
        "--param",
        f"counter_dir={counts}",
        "--param",
        f"hang_while={hold}",
    ]
    proc = subprocess.Popen(
        cmd,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not ((counts / "B.count").exists() and list(out.glob("*/A/tiny.html"))):
            assert proc.poll() is None, (
                f"the run ended before it could be killed: {proc.stderr.read()[-2000:]}"
            )
            assert time.monotonic() < deadline, "B never started"
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        hold.unlink()  # lets an orphaned kernel of B finish; it writes nothing
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    [run] = [p for p in out.iterdir() if p.is_dir() and not p.is_symlink()]
    assert (run / "A" / "tiny.html").is_file()
    assert not (run / "B" / "tiny.html").exists(), "a killed report never looks finished"
    assert not (run / ".complete").exists() and latest_run(out) is None
    a_mtime = (run / "A" / "tiny.html").stat().st_mtime_ns

    assert main(["report", "--resume", "latest", "--out", str(out)]) == 0
    assert (counts / "A.count").read_text().count("run") == 1, "A was not executed again"
    assert (counts / "B.count").read_text().count("run") == 2
    assert (run / "A" / "tiny.html").stat().st_mtime_ns == a_mtime
    assert (run / "B" / "tiny.html").is_file() and (run / ".complete").exists()
    assert latest_run(out) == run.resolve()
    assert not list(run.rglob(".*.tmp-*")), "no temporary file is left in the finished run"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["complete"] and set(manifest["headline"]) == {"A", "B"}


def test_two_runs_with_the_same_seed_and_data_have_equal_manifests(tiny):
    nb, data, out = tiny
    runs = [
        run_reports(
            data,
            [Segment("ent", {"segment": "enterprise"})],
            notebooks=[nb],
            reports_dir=out,
            parameters={"seed": 7},
            log=lambda m: None,
        )
        for _ in range(2)
    ]
    assert all(r.exit_code == 0 for r in runs)
    a, b = (json.loads((r.run_dir / "manifest.json").read_text()) for r in runs)
    assert a["run_id"] != b["run_id"], "a rerun never overwrites a finished run"
    assert (runs[0].run_dir / ".complete").exists() and (
        runs[0].run_dir / "ent" / "tiny.html"
    ).exists()
    assert a["headline"] == b["headline"] and a["parameters"] == b["parameters"]
    assert a["headline"]["ent"]["journeys"] == 3
    assert latest_run(out) == runs[1].run_dir.resolve()
    assert os.path.islink(out / "latest") and not list(out.glob(".latest.tmp-*"))


@pytest.mark.slow  # four cold NUTS fits (~50 s even with a cheap sampler)
def test_two_cold_runs_of_a_model_notebook_record_identical_posterior_figures(
    tmp_path, monkeypatch
):
    """The same, on a real report: the stage-transition notebook (two NUTS fits) run twice on
    the same data and seed, each with empty fit caches (so each run samples its own models),
    once with one worker and once with two, records the same posterior figures, to the bit."""
    from analysis import synth

    events, _ = synth.generate(n_persons=600, seed=5)
    data = tmp_path / "events.csv"
    events.to_csv(data, index=False)
    monkeypatch.setenv(
        "JAX_COMPILATION_CACHE_DIR", str(tmp_path / "jax")
    )  # shared: compiled code only
    nb = config.NOTEBOOKS_DIR / "02_stage_transitions.ipynb"
    segs = [Segment("all"), Segment("ent", {"segment": "enterprise"})]
    manifests = []
    for workers in (1, 2):
        cache = tmp_path / f"cache-w{workers}"
        monkeypatch.setenv("CJL_CACHE_DIR", str(cache))  # the kernels' fit caches
        monkeypatch.setattr(config, "CACHE_DIR", cache)  # this process's
        res = run_reports(
            data,
            segs,
            notebooks=[nb],
            reports_dir=tmp_path / "reports",
            workers=workers,
            parameters={"seed": 11},
            log=lambda m: None,
        )
        assert res.exit_code == 0, res.failed
        assert len(list((cache / "models").rglob("*.nc"))) >= 2, "this run fitted its own models"
        manifests.append(res.manifest)
    a, b = manifests
    assert a["headline"] == b["headline"]
    assert a["parameters"] == b["parameters"]
    assert isinstance(a["headline"]["ent"]["friction_gain"], float), (
        "posterior figures were recorded"
    )
    h = a["headline"]["all"]
    assert h.get("friction_stage", h["friction_candidate"]) in {"See", "Think", "Do", "Care"}


def test_index_escapes_data(tiny):
    nb, data, out = tiny
    evil = "<script>alert(1)</script>"
    res = run_reports(
        data,
        [Segment("web", {"channel": evil})],
        notebooks=[nb],
        reports_dir=out,
        log=lambda m: None,
    )
    assert res.exit_code == 0
    index = (res.run_dir / "index.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in index
    assert "<script" not in index


def test_record_headline_merges_into_the_env_file(tmp_path, monkeypatch):
    import numpy as np

    monkeypatch.delenv(HEADLINE_ENV, raising=False)
    assert record_headline(journeys=3) == {"journeys": 3}  # no runner: nothing written
    target = tmp_path / "h" / "headline.json"
    monkeypatch.setenv(HEADLINE_ENV, str(target))
    record_headline(journeys=np.int64(12), conversion_rate=np.float64(0.25))
    merged = record_headline(top_channel="email")
    assert merged == {"journeys": 12, "conversion_rate": 0.25, "top_channel": "email"}
    assert json.loads(target.read_text()) == merged


def test_top_channel_prefers_the_bayesian_table():
    markov = pd.DataFrame(
        {
            "channel": ["email", "social"],
            "conversions": [5.0, 9.0],
            "conversions_lower": [4.0, 8.0],
            "conversions_upper": [6.0, 10.0],
        }
    )
    bayes = pd.DataFrame(
        {
            "channel": ["email", "social"],
            "conversions": [4.0, 1.0],
            "conversions_lower": [1.0, -1.0],
            "conversions_upper": [7.0, 3.0],
        }
    )
    assert top_channel_headline({"markov_1": markov})["top_channel"] == "social"
    got = top_channel_headline({"markov_1": markov, "bayesian": bayes})
    assert got == {
        "top_channel": "email",
        "top_channel_model": "bayesian",
        "top_channel_conversions": 4.0,
        "top_channel_lower": 1.0,
        "top_channel_upper": 7.0,
    }
    assert top_channel_headline({}) == {}


def test_transition_headline_weights_groups_by_journeys(hand_chain):
    """Hand-made chains: a converts 0.5 × 0.4 = 0.20, b 0.5 × 0.8 = 0.40; together (100 and 300
    journeys) 0.35. Cutting drop-off by 20% gains most at Do for a, at See for a + b."""
    from analysis.reports import transition_headline

    model = hand_chain()
    a, b, both = (transition_headline(model, g) for g in (["a"], ["b"], None))
    # a's Do is the likeliest friction point, but not at P(worst) >= 0.9: a candidate, not a headline
    assert a["conversion_lower"] < 0.20 < a["conversion_upper"]
    assert a["friction_candidate"] == "Do" and "friction_stage" not in a
    assert both["conversion_rate"] == pytest.approx(
        0.25 * a["conversion_rate"] + 0.75 * b["conversion_rate"]
    )
    assert both["conversion_rate"] == pytest.approx(0.35, abs=0.02)
    assert both["friction_stage"] == "See" and both["friction_gain"] == pytest.approx(
        0.07, abs=0.015
    )


def test_notebook_imports_lists_every_import(tmp_path):
    import nbformat

    from analysis.reports import notebook_imports

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "%matplotlib inline\nimport json, os.path\nfrom colorsys import rgb_to_hsv"
        ),
        nbformat.v4.new_markdown_cell("import nothing"),
        nbformat.v4.new_code_cell("if True:\n    from . import x\n    import csv as c\n!ls"),
    ]
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, path)
    # ``from x import y``: y may be a submodule (``from analysis import plotting``), so x.y is listed too
    assert notebook_imports(path) == ["json", "os.path", "colorsys", "colorsys.rgb_to_hsv", "csv"]


def test_warm_imports_loads_submodules_named_by_from_imports_and_skips_the_rest():
    """``from email import charset`` warms the submodule; a name that is not a module, or a
    module that does not exist, is skipped without an error (the notebook raises its own)."""
    import subprocess
    import sys

    code = (
        "import sys\nfrom analysis.reports import warm_imports\n"
        "warm_imports(['email', 'email.charset', 'email.message_from_string', 'no_such_module_x'])\n"
        "print('email.charset' in sys.modules, sys.modules.get('rfc3987_syntax', 'absent'))\n"
        "warm_imports(['analysis.journeys'])\nprint('ibis.backends.duckdb' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(config.PROJECT_ROOT / "src")},
    ).stdout.split()
    # jsonschema's optional IRI checker is marked unavailable in warmed kernels (see skip_unused_iri_checker)
    assert out == [
        "True",
        "None",
        "True",
    ]  # and what a module imports on first use (DuckDB's backend)


def test_each_notebook_gets_a_fresh_kernel_with_its_imports_warmed(tiny, tmp_path):
    """Kernels are started ahead of their notebook (imports warm) but never shared: a name set by
    one notebook is not seen by the next, and the module only the second notebook imports (in a
    later cell) is already loaded when its first cell runs."""
    import nbformat

    def write(name, cells):
        nb = nbformat.v4.new_notebook()
        params = nbformat.v4.new_code_cell('segment = "all"\nsegment_filter = {}\ndata_path = ""')
        params.metadata["tags"] = ["parameters"]
        nb.cells = [params] + [nbformat.v4.new_code_cell(c) for c in cells]
        nb.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        }
        nbformat.write(nb, tmp_path / name)
        return tmp_path / name

    first = write("a.ipynb", ["leak = 1"])
    second = write(
        "b.ipynb",
        [
            "import sys\nassert 'leak' not in globals(), 'namespace shared between notebooks'\n"
            "warm = 'wave' in sys.modules",
            "import wave\nassert warm, 'the kernel did not import the notebook modules ahead'",
        ],
    )
    res = run_reports(
        tiny[1], [Segment("all")], notebooks=[first, second], reports_dir=tmp_path / "reports"
    )
    assert res.exit_code == 0, res.failed


def test_bad_data_is_one_clear_error_before_any_notebook_runs(tiny, tmp_path, capsys):
    nb, data, out = tiny
    data.write_text("event_id,when,user_id\ne1,2024-01-01,u1\n")
    code = main(["report", "--data", str(data), "--notebook", str(nb), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert "missing" in err and str(data) in err
    assert not out.exists() or not any(out.iterdir())  # no run folder was started


def test_workers_run_notebooks_of_a_segment_side_by_side_and_keep_their_headlines(tiny, tmp_path):
    """With 2 workers the two notebooks of a segment run at once; each kernel records into its
    own file, and the segment's headline merges them in notebook order (the later wins)."""
    import nbformat

    def write(name, code):
        nb = nbformat.v4.new_notebook()
        params = nbformat.v4.new_code_cell('segment = "all"\nsegment_filter = {}\ndata_path = ""')
        params.metadata["tags"] = ["parameters"]
        nb.cells = [params, nbformat.v4.new_code_cell(code)]
        nb.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        }
        nbformat.write(nb, tmp_path / name)
        return tmp_path / name

    first = write(
        "a.ipynb",
        "from analysis.reports import record_headline\n"
        "record_headline(journeys=len(segment), top_channel='from a')",
    )
    second = write(
        "b.ipynb",
        "from analysis.reports import record_headline\n"
        "record_headline(friction_stage=segment.upper(), top_channel='from b')",
    )
    res = run_reports(
        tiny[1],
        [Segment("one"), Segment("three")],
        notebooks=[first, second],
        reports_dir=tmp_path / "reports",
        workers=2,
    )
    assert res.exit_code == 0, res.failed
    assert res.manifest["headline"] == {
        "one": {"journeys": 3, "top_channel": "from b", "friction_stage": "ONE"},
        "three": {"journeys": 5, "top_channel": "from b", "friction_stage": "THREE"},
    }


def test_a_long_report_logs_progress_lines_naming_its_cell(tiny, tmp_path):
    """While a report runs, a line every ``heartbeat`` seconds says how long it has run and
    which code cell runs now (a scheduler's log shows the run is alive); with 0, none."""
    nb, data, out = tiny
    hold = tmp_path / "hold"
    hold.touch()  # B's cell waits while the file exists: until three beats were seen in that cell
    logs: list[str] = []

    def log(line: str) -> None:
        logs.append(line)
        if sum("code cell 3" in m for m in logs) == 3:
            hold.unlink(missing_ok=True)

    res = run_reports(
        data,
        [Segment("B")],
        notebooks=[nb],
        reports_dir=out,
        log=log,
        parameters={"hang_while": str(hold)},
        heartbeat=0.5,
    )
    assert res.exit_code == 0, res.failed
    beats = [line for line in logs if "still running" in line]
    assert len(beats) >= 3, logs
    # code cells: the parameters, papermill's injected parameters, then the cell that waits
    assert re.fullmatch(
        r"… B: tiny\.ipynb still running after \d+ s: code cell 3 of 3 \(import random\), "
        r"\d+ s in it",
        beats[-1],
    ), beats
    assert logs[-2].startswith("[1/1] B: tiny.ipynb ok in"), (
        "the report's own line follows its beats"
    )

    logs.clear()
    res = run_reports(
        data, [Segment("A")], notebooks=[nb], reports_dir=out, log=logs.append, heartbeat=0
    )
    assert res.exit_code == 0 and not [line for line in logs if "still running" in line]


def test_progress_line_names_the_section_and_first_line_of_the_running_cell():
    import nbformat

    from analysis.reports.kernels import Heartbeat

    cells = [
        nbformat.v4.new_markdown_cell("# Report\n## Bayesian *model*"),
        nbformat.v4.new_code_cell("# fit once, cached\nfit = Model(data).fit()"),
        nbformat.v4.new_markdown_cell("no heading here"),
        nbformat.v4.new_code_cell("x = 1"),
    ]
    beat = Heartbeat("seg: nb.ipynb", 0, None)
    assert re.fullmatch(
        r"… seg: nb\.ipynb still running after \d+ s: starting its kernel", beat.line()
    )
    beat.on_cell(cells[0], 0, cells)  # markdown: nothing changes
    assert beat.line().endswith("starting its kernel")
    beat.on_cell(cells[1], 1, cells)
    assert re.fullmatch(
        r"… seg: nb\.ipynb still running after \d+ s: code cell 1 of 2 in «Bayesian model» "
        r"\(fit = Model\(data\)\.fit\(\)\), \d+ s in it",
        beat.line(),
    )


def test_segments_file_parameters_and_notebooks(tmp_path):
    from analysis.reports import load_run_settings

    f = tmp_path / "segments.yml"
    f.write_text(
        "segments:\n  - name: a\nparameters:\n  inactivity_days: 600\n"
        "notebooks:\n  - notebooks/01_journey_overview.ipynb\n"
    )
    settings = load_run_settings(f)
    assert settings["parameters"] == {"inactivity_days": 600}
    assert [p.name for p in settings["notebooks"]] == ["01_journey_overview.ipynb"]
    f.write_text("segments:\n  - name: a\nparameter:\n  x: 1\n")
    with pytest.raises(DataError, match="unknown top-level keys"):
        load_segments(f)
    f.write_text("segments:\n  - name: a\nnotebooks:\n  - notebooks/nope.ipynb\n")
    with pytest.raises(DataError, match="not found"):
        load_run_settings(f)


def test_cli_params_are_checked_against_the_notebooks(tiny, capsys):
    nb, data, out = tiny
    code = main(
        [
            "report",
            "--data",
            str(data),
            "--notebook",
            str(nb),
            "--out",
            str(out),
            "--param",
            "countr_dir=/tmp",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "unknown notebook parameter" in err and "did you mean 'counter_dir'" in err
    assert (
        main(
            [
                "report",
                "--data",
                str(data),
                "--notebook",
                str(nb),
                "--out",
                str(out),
                "--param",
                "no_equals_sign",
            ]
        )
        == 2
    )
    code = main(
        [
            "report",
            "--data",
            str(data),
            "--notebook",
            str(nb),
            "--out",
            str(out),
            "--segment",
            "all",
            "-p",
            "seed=7",
            "-p",
            "marker=2017-02-01",
            "-p",
            "counter_dir=",
        ]
    )
    assert code == 0
    (run,) = [p for p in out.iterdir() if p.is_dir() and not p.is_symlink()]
    params = json.loads((run / "manifest.json").read_text())["parameters"]["notebook_parameters"]
    assert params == {"seed": 7, "marker": "2017-02-01", "counter_dir": ""}  # a date stays text


def test_index_shows_attention_in_red_and_escaped():
    from analysis.reports import render_index

    manifest = {
        "run_id": "r1",
        "parameters": {"data_path": "d.csv", "notebooks": ["n.ipynb"], "segments": {"a": {}}},
        "segments": {
            "a": {"status": "ok", "notebooks": {"n.ipynb": {"status": "ok", "seconds": 1.0}}}
        },
        "headline": {"a": {"journeys": 3, "attention": "model <b>x</b> did not converge"}},
    }
    page = render_index(manifest)
    assert "<div class=failed>model &lt;b&gt;x&lt;/b&gt; did not converge</div>" in page


def test_describe_images_uses_the_cells_alt_else_the_heading_above(tmp_path):
    import nbformat

    from analysis.reports import describe_images, render_html

    png = {"image/png": "iVBORw0KGgo="}

    def fig_cell(n: int, alt: str | None = None, markdown: str | None = None):
        cell = nbformat.v4.new_code_cell("")
        outs = (
            [nbformat.v4.new_output("display_data", data={"text/markdown": markdown})]
            if markdown
            else []
        )
        outs += [nbformat.v4.new_output("display_data", data=dict(png)) for _ in range(n)]
        cell.outputs = outs
        if alt:
            cell.metadata["alt"] = alt
        return cell

    nb = nbformat.v4.new_notebook()
    kept = fig_cell(1)
    kept.outputs[0].metadata["image/png"] = {"alt": "written by the notebook"}
    nb.cells = [
        fig_cell(1),  # no heading above yet: left to nbconvert
        nbformat.v4.new_markdown_cell("# Overview\n\n## Top **paths** by `channel`"),
        fig_cell(1),
        fig_cell(2),
        fig_cell(1, alt="Heatmap of touchpoints"),
        kept,
        fig_cell(1, markdown="### <b>Segment</b> & more"),
    ]
    assert describe_images(nb) == 6
    alts = [
        [o.metadata.get("image/png", {}).get("alt") for o in c.outputs if "image/png" in o.data]
        for c in nb.cells
        if c.cell_type == "code"
    ]
    assert alts == [
        [None],
        ["Figure: Top paths by channel"],
        ["Figure: Top paths by channel (1 of 2)", "Figure: Top paths by channel (2 of 2)"],
        ["Heatmap of touchpoints"],
        ["written by the notebook"],
        ["Figure: <b>Segment</b> & more"],
    ]
    page = render_html(nb)
    assert 'alt="Figure: Top paths by channel (2 of 2)"' in page
    assert 'alt="Figure: &lt;b&gt;Segment&lt;/b&gt; &amp; more"' in page, (
        "data in an alt text is escaped"
    )
    assert page.count("No description has been provided") == 1  # the first image, with no heading


def test_every_figure_cell_of_the_notebooks_describes_its_figure():
    """A figure in a report has an alternative text (screen readers, e-mail clients that block
    images): each notebook cell that draws with ``analysis.plotting`` says what it shows."""
    import nbformat

    from analysis import config

    missing = []
    for path in sorted(config.NOTEBOOKS_DIR.glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code" and re.search(
                r"plotting\.plot_(?!stage_sankey|stage_flow)", cell.source
            ):
                if len(cell.metadata.get("alt", "")) < 20:
                    missing.append((path.name, cell.get("id")))
    assert not missing, (
        f"figure cells without metadata['alt'] (a sentence on what the figure shows): {missing}"
    )


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "segments file not found"),
        ("segments: [\n  - name: a\n", "not valid YAML (line"),
        ("segments:\n  - name: a\n    filter: {channel: email\n", "not valid YAML"),
        ("segments:\n  - name: ../../etc\n", "'../../etc' is not allowed"),
        ("segments:\n  - name: '..\\..'\n", "is not allowed"),
        ("segments:\n  - name: /etc/passwd\n", "'/etc/passwd' is not allowed"),
        ('segments:\n  - name: "evil\\n"\n', "'evil\\n' is not allowed"),
        ('segments:\n  - name: "a\\nb"\n', "is not allowed"),
        ("segments:\n  - name: a\n    filter: [channel, email]\n", "`filter:` must be a mapping"),
        ("segments:\n  - name: a\n  - name: a\n", "defined twice"),
        (b"segments:\n  - name: caf\xe9\n", "not UTF-8"),
    ],
)
def test_a_bad_segments_file_is_a_clear_error_and_writes_nothing(
    tiny, tmp_path, capsys, content, message
):
    nb, data, out = tiny
    seg_file = tmp_path / "segments.yml"
    if isinstance(content, bytes):
        seg_file.write_bytes(content)
    elif content is not None:
        seg_file.write_text(content)
    code = main(
        [
            "report",
            "--data",
            str(data),
            "--notebook",
            str(nb),
            "--out",
            str(out),
            "--segments",
            str(seg_file),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2, err
    assert "cannot read the segments file" in err and message in err and str(seg_file) in err
    assert "Traceback" not in err
    assert not out.exists() or not any(out.iterdir()), "nothing is written under the reports folder"


class _Killed(BaseException):
    """Stands for SIGKILL at one point of the runner (nothing after it runs)."""


def test_a_kill_as_a_report_finishes_never_leaves_it_done_without_its_status(
    tiny, tmp_path, monkeypatch
):
    """Killed when B's report writes its status file: B must not look finished (before the fix
    its HTML was already visible, so --resume kept it and the run completed with no headline for
    B), and --resume redoes B and records its headline."""
    import analysis.reports.runner as runner

    nb, data, out = tiny
    counts = tmp_path / "counts"
    counts.mkdir()
    real = runner.atomic_write

    def killing_write(path, text):
        if path.parent.name == ".status" and path.parent.parent.name == "B":
            raise _Killed()
        return real(path, text)

    monkeypatch.setattr(runner, "atomic_write", killing_write)
    with pytest.raises(_Killed):
        run_reports(
            data,
            [Segment("A"), Segment("B")],
            notebooks=[nb],
            reports_dir=out,
            parameters={"counter_dir": str(counts)},
            log=lambda m: None,
        )
    monkeypatch.setattr(runner, "atomic_write", real)
    [run] = [p for p in out.iterdir() if p.is_dir() and not p.is_symlink()]
    assert (run / "A" / "tiny.html").is_file()
    assert not (run / "B" / "tiny.html").exists(), "no HTML without its status"

    assert main(["report", "--resume", "latest", "--out", str(out)]) == 0
    assert (counts / "A.count").read_text().count("run") == 1, "A was kept"
    assert (counts / "B.count").read_text().count("run") == 2, "B was redone"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["complete"] and set(manifest["headline"]) == {"A", "B"}
    assert manifest["headline"]["B"]["journeys"] == 3
    assert not list(run.rglob(".*.tmp-*"))


def test_resume_redoes_a_report_whose_html_has_no_status(tiny, tmp_path):
    """A run left by a runner killed between the HTML and its status (an HTML without an ``ok``
    status file): --resume redoes that report rather than counting it done."""
    nb, data, out = tiny
    counts = tmp_path / "counts"
    counts.mkdir()
    marker = tmp_path / "marker"
    marker.touch()  # B fails: the run stays incomplete
    res = run_reports(
        data,
        [Segment("A"), Segment("B")],
        notebooks=[nb],
        reports_dir=out,
        parameters={"counter_dir": str(counts), "marker": str(marker)},
        log=lambda m: None,
    )
    assert res.exit_code == 1
    run = res.run_dir
    (run / "A" / ".status" / "tiny.json").unlink()  # A's HTML is there, its status is not
    marker.unlink()
    assert main(["report", "--resume", "latest", "--out", str(out)]) == 0
    assert (counts / "A.count").read_text().count("run") == 2, "A (HTML without status) was redone"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["complete"] and set(manifest["headline"]) == {"A", "B"}
