"""Reports in a real browser: headless Chromium (Debian's package; ``make test`` installs it
through ``make system`` when missing) opens a run's index page and a report, after their
scripts ran: the figures are there (a PNG image, plotly's SVG), no script raised, and data
strings show as text."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from analysis.reports import Segment, run_reports

EVIL = "<script>alert(1)</script>"

FIGURES = f"""\
import matplotlib
import matplotlib.pyplot as plt
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from IPython.display import Markdown, display

from analysis import plotting
from analysis.reports import record_headline
from analysis.text import escape

%matplotlib inline
pio.renderers.default = "notebook"  # plotly.js embedded: the page works offline
display(Markdown(f"## Conversions by {{escape({EVIL!r})}}"))  # a heading with data in it
channels = pd.DataFrame({{"channel": ["email", {EVIL!r}], "conversions": [3, 5]}})
fig, ax = plt.subplots(figsize=(4, 3))
ax.bar(channels["channel"], channels["conversions"])
plt.show()
display(channels)
go.Figure(go.Bar(x=["email", "search"], y=[3, 5])).show()
record_headline(journeys=8, conversion_rate=0.3, conversion_lower=0.2, conversion_upper=0.4,
                friction_stage="Think", top_channel={EVIL!r})
"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("Chromium is not installed (make test installs it: make system)")


def _open(page: Path, tmp_path: Path, screenshot: Path | None = None) -> tuple[str, list[str]]:
    """The page's DOM after its scripts ran, and the console lines Chromium logged."""
    base = [
        _chromium(),
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=5000",
    ]
    env = {**os.environ, "HOME": str(tmp_path)}
    run = subprocess.run(
        [*base, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120, env=env
    )
    assert run.returncode == 0, run.stderr[-2000:]
    console = [line for line in run.stderr.splitlines() if "CONSOLE" in line]
    if screenshot is not None:
        shot = subprocess.run(
            [*base, f"--screenshot={screenshot}", "--window-size=1280,1800", page.as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert shot.returncode == 0 and screenshot.stat().st_size > 10_000, shot.stderr[-2000:]
    return run.stdout, console


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    import nbformat

    _chromium()
    tmp = tmp_path_factory.mktemp("browser")
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(
        'segment: str = "all"  # segment\nsegment_filter: dict = {}  # filter\n'
        'data_path: str = ""  # data'
    )
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(FIGURES)]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, tmp / "figures.ipynb")
    data = tmp / "events.csv"  # the runner reads and stitches it once before the notebooks
    data.write_text(
        "event_id,timestamp,user_id,channel,touchpoint\n"
        "e1,2024-01-01T10:00:00Z,u1,display,ad_impression\n"
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("analysis.config.CACHE_DIR", tmp / "cache")
        res = run_reports(
            data, [Segment("all")], notebooks=[tmp / "figures.ipynb"], reports_dir=tmp / "reports"
        )
    assert res.exit_code == 0, res.failed
    return res, tmp


def test_report_renders_figures_in_chromium(run):
    res, tmp = run
    dom, console = _open(res.run_dir / "all" / "figures.html", tmp, screenshot=tmp / "report.png")
    assert "data:image/png;base64" in dom, "the matplotlib figure is embedded"
    assert 'class="main-svg"' in dom, "plotly.js ran and drew its SVG (offline: no CDN)"
    assert not [c for c in console if "Uncaught" in c or "Error" in c], console
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom and EVIL not in dom
    page = (res.run_dir / "all" / "figures.html").read_text()
    assert 'alt="Figure: Conversions by &lt;script&gt;alert(1)&lt;/script&gt;"' in page, (
        "the figure's alternative text is the heading above it, escaped"
    )
    assert "No description has been provided" not in page


def test_index_renders_in_chromium(run):
    res, tmp = run
    dom, console = _open(res.run_dir / "index.html", tmp, screenshot=tmp / "index.png")
    assert 'href="all/figures.html"' in dom
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom and EVIL not in dom
    assert not [c for c in console if "Uncaught" in c or "Error" in c], console


def test_real_overview_report_in_chromium(tmp_path):
    """The journey overview (journey map, Sankey, funnel) of a small synthetic data set, run by
    the report runner and opened in Chromium: every figure drawn, no script error."""
    from analysis import config, synth

    events, _ = synth.generate(n_persons=400, seed=2)
    data = tmp_path / "events.csv"
    events.to_csv(data, index=False)
    res = run_reports(
        data,
        [Segment("all")],
        notebooks=[config.NOTEBOOKS_DIR / "01_journey_overview.ipynb"],
        reports_dir=tmp_path / "reports",
    )
    assert res.exit_code == 0, res.failed
    dom, console = _open(res.run_dir / "all" / "01_journey_overview.html", tmp_path)
    assert dom.count("data:image/png;base64") >= 6, "matplotlib figures embedded"
    assert dom.count('class="sankey-node"') >= 4, (
        "plotly drew the Sankey's nodes (stages, outcomes)"
    )
    assert "Journey map" in dom and "Traceback" not in dom
    assert 'alt="Customer journey map: stages as columns' in dom, (
        "figures carry their notebook's description"
    )
    assert "No description has been provided" not in dom, "every figure has an alternative text"
    page = (res.run_dir / "all" / "01_journey_overview.html").read_text()
    assert not re.findall(r"<script[^>]*\bsrc=[^>]*>", page), "self-contained: no script from a CDN"
    assert not [c for c in console if "Uncaught" in c or "Error" in c], console
