"""Hostile names in the data and in the data file's name, through the real report notebooks and
the index page, opened in headless Chromium after their scripts ran: no ``javascript:`` link,
no live ``<script>`` or ``<img onerror>`` from the data, and each hostile text shown as text.

Markdown turns ``[x](javascript:alert(1))`` into a link although ``html.escape`` leaves it as
it is, so every string from data or a path that lands in ``IPython.display.Markdown`` goes
through ``analysis.text.md_escape`` / ``md_code``. The default suite runs the journey
overview (where the load notes name the unmapped touchpoints); every notebook runs under
``slow``.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from analysis import config
from analysis.reports import MAIN_NOTEBOOKS, Segment, run_reports

LINK = "[x](javascript:alert(1))"
CLICK = "[click for details](javascript:alert(document.domain))"
IMG = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert(1)</script>"
FILE_NAME = f"{LINK} {IMG}.csv"  # no '/' in a file name: the script tag goes in the data only

# light settings: a model that does not converge falls back (and says so), which is fine here
LIGHT = {
    "models": ["heuristic", "markov"],
    "draws": 50,
    "tune": 50,
    "chains": 2,
    "horizons": [7, 30],
    "target_accept": 0.9,
    "markov_order": 1,
}


class _Dom(HTMLParser):
    """Tags with their attributes, the text of each script element, and the visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self.text: list[str] = []
        self._in: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag in ("script", "style"):
            self._in.append(tag)
            if tag == "script":
                self.scripts.append("")

    def handle_endtag(self, tag):
        if self._in and self._in[-1] == tag:
            self._in.pop()

    def handle_data(self, data):
        if self._in and self._in[-1] == "script":
            self.scripts[-1] += data
        elif not self._in:
            self.text.append(data)


def _check_dom(dom: str, where: str, must_show: list[str]) -> None:
    page = _Dom()
    page.feed(dom)
    for tag, attrs in page.tags:
        for name, value in attrs.items():
            assert not (name.startswith("on") and tag != "body" and "alert" in (value or "")), (
                f"{where}: live event handler from the data: <{tag} {name}={value!r}>"
            )
            assert not re.match(r"\s*javascript:", value or "", re.IGNORECASE), (
                f"{where}: <{tag} {name}={value!r}>: a javascript: URL"
            )
        assert not (tag == "img" and attrs.get("src") == "x"), f"{where}: an <img> from the data"
    assert not [s for s in page.scripts if s.strip() == "alert(1)"], (
        f"{where}: a live <script> from the data"
    )
    text = re.sub(r"\s+", " ", "".join(page.text))
    for s in must_show:
        assert s in text, f"{where}: {s!r} is not shown as text"
    assert "\\[" not in text and "\\(" not in text, f"{where}: Markdown escapes shown as text"


def _hostile_data(folder: Path, channel_tags: bool = True) -> Path:
    """Synthetic events with hostile channel, touchpoint, campaign and segment values, in a file
    with a hostile name. ``channel_tags=False``: no channel holds ``>`` (the separator of channel
    paths; ``build_journeys`` writes it ``›`` in a channel name, so the attribution models see one
    channel)."""
    from analysis import synth

    events, _ = synth.generate(n_persons=150, seed=2)
    events["channel"] = events["channel"].replace(
        {"referral": LINK, **({"event": SCRIPT} if channel_tags else {})}
    )
    unmapped = events["touchpoint"].isin(["comparison", "survey"])
    events.loc[unmapped, "stage"] = (
        None  # touchpoints not in the stage map: named in the load notes
    )
    events["touchpoint"] = events["touchpoint"].replace({"comparison": CLICK, "survey": IMG})
    events["campaign"] = events["campaign"].replace({"retargeting": SCRIPT, "brand_2024": LINK})
    events["segment"] = events["segment"].replace({"enterprise": IMG})
    path = folder / FILE_NAME
    events.to_csv(path, index=False)
    return path


def _run_and_check(tmp_path: Path, monkeypatch, notebooks: list[str]) -> None:
    from tests.reports.test_reports_browser import _open

    monkeypatch.setattr("analysis.config.CACHE_DIR", tmp_path / "cache")
    data = _hostile_data(tmp_path)  # '>' in a channel name is written '›' in paths (build_journeys)
    segments = [Segment("all"), Segment("evil", {"segment": IMG})]
    res = run_reports(
        data,
        segments,
        notebooks=[config.NOTEBOOKS_DIR / n for n in notebooks],
        reports_dir=tmp_path / "reports",
        parameters=LIGHT,
        heartbeat=0,
    )
    assert not res.failed, res.failed
    for seg in ("all", "evil"):
        for nb in notebooks:
            page = res.run_dir / seg / Path(nb).with_suffix(".html").name
            dom, console = _open(page, tmp_path)
            assert "Traceback" not in dom, f"{seg}/{nb}"
            # the data file's name is in every report's header
            _check_dom(dom, f"{seg}/{nb}", [LINK, IMG] if seg == "all" else [LINK])
            assert not [c for c in console if "Uncaught" in c], console
            if nb.startswith("01"):  # the load notes name the touchpoints not in the stage map
                _check_dom(dom, f"{seg}/{nb}", [CLICK])
    dom, console = _open(res.run_dir / "index.html", tmp_path)
    _check_dom(dom, "index.html", [FILE_NAME])
    assert not [c for c in console if "Uncaught" in c], console


def test_hostile_names_stay_text_in_the_overview_and_the_index(tmp_path, monkeypatch):
    _run_and_check(tmp_path, monkeypatch, ["01_journey_overview.ipynb"])


@pytest.mark.slow
def test_hostile_names_stay_text_in_every_notebook(tmp_path, monkeypatch):
    _run_and_check(tmp_path, monkeypatch, [*MAIN_NOTEBOOKS, "04_conversion_and_time.ipynb"])


def test_md_code_and_md_escape_neutralise_markdown_and_html():
    import mistune

    from analysis.text import md_code, md_escape

    for evil in (LINK, CLICK, IMG, SCRIPT, "`a` *b* _c_ !d ![i](x) <b>"):
        for out in (mistune.html(f"x {md_escape(evil)} y"), mistune.html(f"x {md_code(evil)} y")):
            assert (
                "<a " not in out
                and "<img" not in out
                and "<script" not in out
                and "<em>" not in out
            ), out
            page = _Dom()
            page.feed(out)
            assert evil in "".join(page.text), (evil, out)
