"""The docs work when pasted: ``docs/bring-your-own-data.md`` is followed literally on an export
the package has never seen, and the reference pages agree with the code.

How a doc marks what is tested
------------------------------
An HTML comment (invisible when the Markdown is rendered) right before a fenced code block:

``<!-- test: input PATH -->``
    The block is the first lines of the example export. The test writes them to ``PATH`` and
    appends more rows of the same kind (:func:`build_export`: a German shop export, ``;``
    delimited, ``dd.mm.yyyy HH:MM`` local times in Europe/Berlin, a decimal comma, ``ja``/``nein``,
    its own action names, and four rows that must be quarantined).
``<!-- test: run -->``
    A ``bash`` block: every command in it runs, in order, from the root of a scratch copy of the
    project (``CJL_ROOT``; ``CJL_CACHE_DIR`` in the scratch folder too, so nothing is written into
    the repository). ``python`` is this interpreter; ``make reports VAR=…`` becomes the command the
    Makefile's ``reports`` recipe runs (checked against the Makefile); a ``report`` command gets
    ``--notebook notebooks/01_journey_overview.ipynb --segment <the last segment of its segments
    file>`` appended, to keep the test short. A command that exits non-zero fails the test.
``<!-- test: same-command -->``
    A ``bash`` block with one command that must be the command the previous ``run`` block ran
    (``python -m analysis report …`` beside ``make reports …``); it is not run again.
``<!-- test: stdout -->``
    The standard output of the last command run must equal the block (the doc shows real
    output; after changing what a command prints, paste the new output into the doc).
``<!-- test: expect PATH -->``
    The file ``PATH``, as the commands before left it, must equal the block.
``<!-- test: write PATH -->``
    The block is a file the reader writes by hand (an edited column map, a segments file): the
    test writes it to ``PATH``.
``<!-- test: fixture NAME=PATH -->``
    Not before a block: the example file ``NAME`` of a later step is the repository's fixture
    ``PATH`` (under ``tests/fixtures/sources``); the test copies it into the scratch project.

Then the test checks what the walkthrough promises: ``check`` accounts for every row (rows read
= kept + quarantined, with the four planted problems quarantined and written by
``--quarantine``), and the report ran: ``reports/latest/index.html``, one HTML per notebook,
a complete manifest naming the data and the map, and the segment's journeys (in the notebook's
text and in the headline figures) and conversions equal to counts computed here with plain
pandas from the CSV.
"""

from __future__ import annotations

import difflib
import hashlib
import inspect
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import analysis
from analysis.schema import CANONICAL_COLUMNS, DEFAULT_STAGE_MAP
from analysis.sources import ColumnMap
from analysis.sources.column_map import ALLOWED_KEYS, REASONS
from analysis.sources.registry import ADAPTERS, get_adapter

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FIXTURES = ROOT / "tests" / "fixtures" / "sources"
NOTEBOOK = "notebooks/01_journey_overview.ipynb"
MARK = re.compile(r"<!--\s*test:\s*(\S+)\s*(.*?)\s*-->")
FENCE = re.compile(r"^```")


# ------------------------------------------------------------------------------ reading the docs
def doc_steps(path: Path) -> list[tuple[str, str, str]]:
    """``(kind, argument, block)`` for every test mark of a Markdown file, in order; ``block`` is
    the fenced block right after the mark ("" for marks without one)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    steps: list[tuple[str, str, str]] = []
    i = 0
    while i < len(lines):
        m = MARK.search(lines[i])
        i += 1
        if not m:
            continue
        kind, arg = m.group(1), m.group(2)
        if kind == "fixture":
            steps.append((kind, arg, ""))
            continue
        while i < len(lines) and not lines[i].strip():
            i += 1
        assert i < len(lines) and FENCE.match(lines[i]), (
            f"{path.name}: no code block after <!-- test: {kind} -->"
        )
        j = i + 1
        while not FENCE.match(lines[j]):
            j += 1
        steps.append((kind, arg, "\n".join(lines[i + 1 : j]) + "\n"))
        i = j + 1
    return steps


def yaml_blocks(path: Path) -> list[str]:
    """Every fenced ``yaml`` block of a Markdown file."""
    return re.findall(
        r"^```ya?ml[^\n]*\n(.*?)^```", path.read_text(encoding="utf-8"), flags=re.M | re.S
    )


def commands(block: str) -> list[str]:
    """The commands of a bash block (continuation lines joined, comments and blanks dropped)."""
    text = block.replace("\\\n", " ")
    return [c.strip() for c in text.splitlines() if c.strip() and not c.strip().startswith("#")]


def make_reports_argv(cmd: str) -> list[str]:
    """``make reports DATA=… MAPPING=…`` → the arguments of ``python -m analysis`` the Makefile's
    recipe passes (the recipe and the ``WORKERS ?=`` default are read, so a change there shows
    up here)."""
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^reports:.*\n\t(.*)$", makefile, flags=re.M).group(1)
    words = shlex.split(cmd)
    assert words[:2] == ["make", "reports"], cmd
    given = dict(w.split("=", 1) for w in words[2:])
    given.setdefault("WORKERS", re.search(r"^WORKERS \?= *(\d+)", makefile, flags=re.M).group(1))
    argv = ["report"]
    for var, flag in (
        ("DATA", "--data"),
        ("MAPPING", "--mapping"),
        ("SEGMENTS", "--segments"),
        ("WORKERS", "--workers"),
    ):
        assert f"{flag} $({var})" in recipe, (
            f"the Makefile's reports recipe no longer passes {flag} $({var})"
        )
        if var in given:
            argv += [flag, given[var]]
    assert set(given) <= {"DATA", "MAPPING", "SEGMENTS", "WORKERS"}, given
    return argv


def analysis_argv(cmd: str) -> list[str]:
    """The arguments after ``python -m analysis`` (or of ``make reports``), without redirection."""
    if cmd.startswith("make "):
        return make_reports_argv(cmd)
    words = shlex.split(cmd.split(">")[0])
    assert words[:3] == ["python", "-m", "analysis"], (
        f"the walkthrough runs only python -m analysis: {cmd}"
    )
    return words[3:]


# ------------------------------------------------------------------------------ the export
MEDIA = {
    "Anzeige gesehen": ["Google Ads", "Instagram"],
    "Website besucht": ["Google Ads", "Instagram", "Newsletter", "Direkt"],
    "Produkt verglichen": ["Direkt"],
    "Beratung": ["Filiale", "Telefon"],
    "Warenkorb": ["Direkt"],
    "Kauf": ["Direkt", "Filiale"],
    "Reklamation": ["Telefon"],
}
#: rows the reader must quarantine: an impossible date, no customer, a time skipped by the
#: spring DST change in Berlin (and, inserted below, an exact duplicate of an earlier row)
PLANTED = [
    "31.02.2024 10:00;K-2003;Direkt;Website besucht;;;ja;Privat;",
    "05.03.2024 12:00;;Newsletter;Website besucht;Newsletter-KW10;;ja;Privat;",
    "31.03.2024 02:30;K-2005;Direkt;Website besucht;;;ja;Privat;",
]


def build_export(path: Path, head: str, n_customers: int = 80, seed: int = 7) -> None:
    """Write ``head`` (the doc's first lines, header included) and then the shop's touchpoints of
    ``n_customers`` customers over the first half of 2024, sorted by time, with the planted rows
    in between."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n_customers):  # a fixture generator: a few hundred rows
        kunde, group = f"K-{2001 + k}", ("Gewerbe" if rng.random() < 0.4 else "Privat")
        t = pd.Timestamp("2024-01-02") + pd.Timedelta(
            days=int(rng.integers(0, 60)),
            hours=int(rng.integers(8, 18)),
            minutes=int(rng.integers(0, 60)),
        )
        while t < pd.Timestamp("2024-06-28"):
            acts = (["Anzeige gesehen"] if rng.random() < 0.6 else []) + [
                str(a)
                for a in rng.choice(
                    ["Website besucht", "Produkt verglichen"], size=int(rng.integers(1, 4))
                )
            ]
            acts += ["Beratung"] if rng.random() < 0.3 else []
            if rng.random() < 0.45:
                acts += ["Warenkorb", "Kauf"] + (["Reklamation"] if rng.random() < 0.2 else [])
            for a in acts:
                m = str(rng.choice(MEDIA[a]))
                camp = {
                    "Google Ads": "Fruehjahr24",
                    "Instagram": "Winter24" if t.month < 3 else "Fruehjahr24",
                    "Newsletter": f"Newsletter-KW{t.isocalendar().week:02d}",
                }.get(m, "")
                rows.append(
                    [
                        t,
                        kunde,
                        m,
                        a,
                        camp,
                        f"{rng.integers(20, 900)},{rng.integers(0, 100):02d}"
                        if a == "Kauf"
                        else "",
                        "nein" if m in ("Filiale", "Telefon") else "ja",
                        group,
                        str(rng.choice(["Hamburg", "Berlin", "Köln"])) if m == "Filiale" else "",
                    ]
                )
                # strictly later each time (no ties within a customer), shop hours only (no DST gap)
                gap = (
                    pd.Timedelta(minutes=int(rng.integers(5, 600)))
                    if rng.random() < 0.6
                    else pd.Timedelta(days=int(rng.integers(1, 7)))
                )
                t = t + gap
                if t.hour < 8 or t.hour > 20:
                    t = t.normalize() + pd.Timedelta(
                        days=1, hours=9, minutes=int(rng.integers(0, 59))
                    )
            t = t + pd.Timedelta(
                days=int(rng.integers(35, 80)) if rng.random() < 0.7 else int(rng.integers(8, 25))
            )
    df = pd.DataFrame(rows).sort_values(0, kind="stable")
    df[0] = df[0].dt.strftime("%d.%m.%Y %H:%M")
    lines = df.astype(str).agg(";".join, axis=1).tolist()
    lines.insert(200, lines[100])  # an exact duplicate
    for i, row in enumerate(PLANTED):
        lines.insert(300 + 200 * i, row)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(head + "\n".join(lines) + "\n", encoding="utf-8")


def journeys_by_hand(csv: Path, segment_value: str, inactivity_days: float = 30) -> int:
    """Journeys of one Kundengruppe, from the CSV with plain pandas: rows that cannot be read
    dropped, then per customer a new journey at the first contact, after a purchase ("Kauf"),
    and after a gap of ``inactivity_days`` or more."""
    df = pd.read_csv(csv, sep=";", dtype=str, keep_default_na=False).drop_duplicates()
    local = pd.to_datetime(df["Zeitpunkt"], format="%d.%m.%Y %H:%M", errors="coerce")
    t = local.dt.tz_localize("Europe/Berlin", nonexistent="NaT", ambiguous="NaT")
    ok = t.notna() & (df["Kunde"] != "")
    d = df[ok].assign(t=t[ok])
    d = d[d["Kundengruppe"] == segment_value].sort_values(["Kunde", "t"])
    g = d.groupby("Kunde")
    prev_t, prev_kauf = g["t"].shift(), g["Aktion"].shift().eq("Kauf")
    new = prev_t.isna() | ((d["t"] - prev_t) >= pd.Timedelta(days=inactivity_days)) | prev_kauf
    return int(new.sum())


def purchases_by_hand(csv: Path, segment_value: str) -> int:
    """Readable, distinct "Kauf" rows of one Kundengruppe (each ends a converted journey)."""
    df = pd.read_csv(csv, sep=";", dtype=str, keep_default_na=False).drop_duplicates()
    local = pd.to_datetime(df["Zeitpunkt"], format="%d.%m.%Y %H:%M", errors="coerce")
    ok = local.dt.tz_localize("Europe/Berlin", nonexistent="NaT", ambiguous="NaT").notna() & (
        df["Kunde"] != ""
    )
    return int((ok & (df["Aktion"] == "Kauf") & (df["Kundengruppe"] == segment_value)).sum())


# ------------------------------------------------------------------------------ the walkthrough
@pytest.fixture
def project(tmp_path):
    """A scratch project root (the notebooks copied; data/raw and reports/ empty) and the
    environment the doc's commands run in."""
    root = tmp_path / "project"
    (root / "notebooks").mkdir(parents=True)
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        shutil.copy(nb, root / "notebooks" / nb.name)
    (root / "data" / "raw").mkdir(parents=True)
    env = {
        **os.environ,
        "CJL_ROOT": str(root),
        "CJL_CACHE_DIR": str(tmp_path / "cache"),
        "PYTHONPATH": os.pathsep.join(
            [str(Path(analysis.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]
        ),
        "MPLBACKEND": "Agg",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "PYTENSOR_FLAGS": f"base_compiledir={tmp_path / 'pytensor'}",
    }
    return root, env


def _run(cmd: str, root: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    argv = analysis_argv(cmd)
    if argv[0] == "report":
        segments = yaml.safe_load((root / argv[argv.index("--segments") + 1]).read_text())[
            "segments"
        ]
        argv += ["--notebook", NOTEBOOK, "--segment", segments[-1]["name"]]
    shell = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "analysis", *argv])
    if ">" in cmd:
        shell += " >" + cmd.split(">", 1)[1]
    res = subprocess.run(
        shell, shell=True, cwd=root, env=env, capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, (
        f"`{cmd}` exited {res.returncode}:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    )
    return res


def test_bring_your_own_data_walkthrough_gives_a_report(project):
    root, env = project
    steps = doc_steps(DOCS / "bring-your-own-data.md")
    kinds = [k for k, _, _ in steps]
    assert kinds.count("input") == 1 and "run" in kinds and "expect" in kinds and "write" in kinds
    ran: list[tuple[str, subprocess.CompletedProcess]] = []
    last_block: list[str] = []
    export = None
    for kind, arg, block in steps:
        if kind == "input":
            export = root / arg
            build_export(export, block)
        elif kind == "fixture":
            name, src = arg.split("=", 1)
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(FIXTURES / src, root / name)
        elif kind == "write":
            (root / arg).parent.mkdir(parents=True, exist_ok=True)
            (root / arg).write_text(block, encoding="utf-8")
        elif kind == "expect":
            assert (root / arg).read_text(encoding="utf-8") == block, f"{arg} differs from the doc"
        elif kind == "run":
            last_block = commands(block)
            ran += [(cmd, _run(cmd, root, env)) for cmd in last_block]
        elif kind == "stdout":
            out = ran[-1][1].stdout
            diff = "".join(
                difflib.unified_diff(block.splitlines(True), out.splitlines(True), "doc", "stdout")
            )
            assert out == block, f"the output of `{ran[-1][0]}` differs from the doc:\n{diff}"
        elif kind == "same-command":
            (cmd,) = commands(block)
            assert analysis_argv(cmd) == analysis_argv(last_block[-1]), (cmd, last_block[-1])
        else:
            raise AssertionError(f"unknown test mark {kind!r}")
    assert export is not None

    # check: every row accounted for; the planted problems quarantined and written out
    n_lines = len(export.read_text(encoding="utf-8").splitlines()) - 1
    checks = [
        (c, r)
        for c, r in ran
        if analysis_argv(c)[0] == "check"
        and "--suggest-mapping" not in c
        and str(export.relative_to(root)) in c
    ]
    assert checks, "the walkthrough never checks the export"
    for _, res in checks:
        assert f"rows read {n_lines:,} = kept {n_lines - 4:,} + quarantined 4" in res.stdout
    qcmd = next(c for c, _ in checks if "--quarantine" in c)
    q = pd.read_csv(
        root / analysis_argv(qcmd)[analysis_argv(qcmd).index("--quarantine") + 1], dtype=str
    )
    raw = pd.read_csv(export, sep=";", dtype=str, keep_default_na=False)
    planted = [row.split(";")[0] for row in PLANTED] + raw.loc[
        raw.duplicated(), "Zeitpunkt"
    ].tolist()
    assert sorted(q["Zeitpunkt"]) == sorted(planted) and len(planted) == 4

    # the report: index, one HTML per notebook, a complete manifest, journeys as counted by hand
    rcmd = next(c for c, _ in ran if analysis_argv(c)[0] == "report")
    argv = analysis_argv(rcmd)
    segs = yaml.safe_load((root / argv[argv.index("--segments") + 1]).read_text())["segments"]
    seg = segs[-1]
    latest = root / "reports" / "latest"
    assert (latest / "index.html").is_file() and (latest / ".complete").is_file()
    html = latest / seg["name"] / "01_journey_overview.html"
    assert html.is_file() and html.stat().st_size > 10_000
    manifest = json.loads((latest / "manifest.json").read_text())
    assert manifest["complete"] is True
    assert manifest["segments"] == {seg["name"]: manifest["segments"][seg["name"]]}
    assert manifest["segments"][seg["name"]]["status"] == "ok"
    assert manifest["parameters"]["data_path"] == argv[argv.index("--data") + 1]
    assert (
        manifest["parameters"]["notebook_parameters"]["mapping_path"]
        == argv[argv.index("--mapping") + 1]
    )
    assert (
        manifest["data_files"]["data"]["sha256"] == hashlib.sha256(export.read_bytes()).hexdigest()
    )
    ((column, value),) = seg["filter"].items()
    assert column == "segment"  # the map sends Kundengruppe to segment
    expected = journeys_by_hand(export, value)
    nb = json.loads((latest / seg["name"] / "01_journey_overview.ipynb").read_text())
    shown = [
        t
        for c in nb["cells"]
        for o in c.get("outputs", [])
        for t in o.get("data", {}).get("text/markdown", [])
    ]
    found = [
        int(m.group(1).replace(",", ""))
        for t in shown
        for m in [re.search(r"form \*\*([\d,]+)\*\* journeys", t)]
        if m
    ]
    assert found == [expected]
    headline = manifest["headline"][seg["name"]]
    assert headline["journeys"] == expected
    assert headline["conversions"] == purchases_by_hand(
        export, value
    )  # every Kauf ends a converted journey


# ------------------------------------------------------------------------------ the reference pages
def test_column_map_reference_covers_every_key_and_its_examples_load(tmp_path):
    text = (DOCS / "column-map.md").read_text(encoding="utf-8")
    for level, keys in ALLOWED_KEYS.items():
        for key in keys:
            name = f"{level}.{key}" if level else key
            assert re.search(rf"^#+ .*`{re.escape(name)}`", text, flags=re.M), (
                f"no section for {name}"
            )
    blocks = yaml_blocks(DOCS / "column-map.md")
    assert len(blocks) >= 15
    for i, block in enumerate(blocks):
        ColumnMap.from_dict(yaml.safe_load(block))  # raises DataError on a bad example
        path = tmp_path / f"map{i}.yml"
        path.write_text(block, encoding="utf-8")
        ColumnMap.from_yaml(path)


def test_touchpoint_schema_page_names_every_column_reason_and_stage():
    text = (DOCS / "touchpoint-schema.md").read_text(encoding="utf-8")
    table = {m.group(1) for m in re.finditer(r"^\| `([a-z_]+)`", text, flags=re.M)}
    assert set(CANONICAL_COLUMNS) <= table, set(CANONICAL_COLUMNS) - table
    for reason in REASONS:
        assert f"`{reason}`" in text, reason
    for tp, stage in DEFAULT_STAGE_MAP.items():
        assert re.search(rf"`{tp}`[^\n]*\b{stage}\b|\b{stage}\b[^\n]*`{tp}`", text), tp


def test_sources_page_and_sources_examples_name_real_adapters_and_options():
    text = (DOCS / "sources.md").read_text(encoding="utf-8")
    for name in ADAPTERS:
        assert re.search(rf"^#+ .*`{name}`", text, flags=re.M), (
            f"docs/sources.md has no section for {name}"
        )
    for doc in ("sources.md", "bring-your-own-data.md"):
        for block in yaml_blocks(DOCS / doc):
            d = yaml.safe_load(block)
            if not (isinstance(d, dict) and "sources" in d):
                continue
            for entry in d["sources"]:
                params = inspect.signature(get_adapter(entry.get("adapter", "events"))).parameters
                options = set(entry) - {"name", "adapter", "path"}
                assert options <= set(params), (doc, entry, options - set(params))


def test_readme_links_the_docs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in ("bring-your-own-data.md", "touchpoint-schema.md", "column-map.md", "sources.md"):
        assert f"docs/{page}" in readme
        assert (DOCS / page).is_file()


# the files the docs name (tests, modules, notebooks, benchmarks): a move must update the docs
_NAMED_PATH = re.compile(r"(?:tests|src/analysis|bench|notebooks)/[A-Za-z0-9_/.-]+\.(?:py|ipynb)")
_DOC_FILES = [
    "README.md",
    "bench/README.md",
    "data/external/README.md",
    "pyproject.toml",
    "Makefile",
]


def named_paths(text: str) -> list[str]:
    """Return the repository paths of tests, modules, notebooks and benchmarks ``text`` names."""
    return _NAMED_PATH.findall(text)


def test_every_path_the_docs_name_exists():
    docs = [ROOT / f for f in _DOC_FILES] + sorted(DOCS.glob("*.md"))
    docs += sorted((ROOT / "tests" / "fixtures").rglob("README.md"))
    missing = [
        f"{doc.relative_to(ROOT)}: {p}"
        for doc in docs
        for p in named_paths(doc.read_text(encoding="utf-8"))
        if not (ROOT / p).exists()
    ]
    assert not missing, "update these references to moved files"
    # the pattern finds what it should (so an empty result means something)
    assert named_paths("see `tests/models/test_base.py` and src/analysis/text.py.") == [
        "tests/models/test_base.py",
        "src/analysis/text.py",
    ]
