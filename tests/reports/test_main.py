from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import read_events, synth
from analysis.__main__ import main


def test_synth_cli_writes_sample_that_loads_without_loss(tmp_path):
    out = tmp_path / "events.csv"
    assert main(["synth", "--n-persons", "200", "--seed", "3", "--out", str(out)]) == 0
    loaded = read_events(out)
    expected, _ = synth.generate(n_persons=200, seed=3)
    s = loaded.summary
    assert s["rows_read"] == len(expected) == s["rows_kept"]
    assert s["rows_quarantined"] == 0
    ev = loaded.events
    assert list(ev["event_id"]) == list(expected["event_id"])
    assert (ev["timestamp"] == expected["timestamp"]).all()
    for c in ["channel", "touchpoint", "stage", "segment", "user_id", "device_id"]:
        pd.testing.assert_series_equal(ev[c], expected[c], check_names=False)
    np.testing.assert_allclose(ev["revenue"].to_numpy(), expected["revenue"].to_numpy())
    assert (ev["conversion"] == expected["conversion"]).all()


def test_synth_cli_plants_archetypes_and_says_which(tmp_path, capsys):
    out = tmp_path / "events.csv"
    args = ["synth", "--n-persons", "150", "--seed", "4", "--archetypes", "--out", str(out)]
    assert main(args) == 0
    expected, truth = synth.generate(n_persons=150, seed=4, archetypes=True)
    loaded = read_events(out).events
    assert list(loaded["event_id"]) == list(expected["event_id"])
    said = capsys.readouterr().out
    for name in truth.archetypes.names:
        assert f"planted archetype {name} " in said
    plain, _ = synth.generate(n_persons=150, seed=4)
    assert len(plain) != len(expected) or not plain["stage"].equals(expected["stage"])


def test_report_cli_refuses_unknown_segment(tmp_path, capsys):
    seg = tmp_path / "segments.yml"
    seg.write_text("segments:\n  - name: a\n    filter: {segment: a}\n")
    code = main(
        ["report", "--segments", str(seg), "--segment", "nope", "--out", str(tmp_path / "r")]
    )
    assert code == 2
    assert "unknown segment" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ check
CHECK_CSV = (
    "when;who;cookie;medium;action;amount\n"
    "01.03.2024 09:00;u1;c1;email;site_visit;\n"
    "01.03.2024 09:05;u1;c2;email;purchase;12,50\n"
    "02.03.2024 10:00;;c2;store;store_visit;\n"  # only the cookie: joins u1 through c2
    "03.03.2024 11:00;u2;;paid_search;ad_impression;\n"
    "31.02.2024 11:00;u3;;paid_search;site_visit;\n"  # no 31 February: quarantined
    "04.03.2024 12:00;u2;;direct;brochure;\n"  # not in the stage map: no stage
)
CHECK_MAP = (
    "read: {delimiter: ';', decimal: ','}\n"
    "columns: {timestamp: when, user_id: who, cookie_id: cookie, channel: medium, touchpoint: action, revenue: amount}\n"
    "timestamp: {format: '%d.%m.%Y %H:%M', timezone: Europe/Berlin}\n"
)


def _check_files(tmp_path):
    data, cmap = tmp_path / "export.csv", tmp_path / "map.yml"
    data.write_text(CHECK_CSV)
    cmap.write_text(CHECK_MAP)
    return data, cmap


def test_check_reports_accounting_columns_and_persons(tmp_path, capsys):
    data, cmap = _check_files(tmp_path)
    qfile = tmp_path / "out" / "quarantine.csv"
    code = main(["check", "--data", str(data), "--mapping", str(cmap), "--quarantine", str(qfile)])
    out = capsys.readouterr().out
    assert code == 0
    assert "rows read 6 = kept 5 + quarantined 1" in out
    assert re.search(r"unparseable timestamp\s+1\s+e\.g\. row 6 \(timestamp\)", out)
    assert re.search(r"timestamp\s+from your column 'when'", out)
    assert re.search(
        r"stage\s+derived from the touchpoint by the stage map\s+4\n", out
    )  # brochure has none
    assert re.search(r"online\s+derived from the channel", out)
    assert re.search(r"user_id\s+from your column 'who'\s+4 rows\s+2 distinct", out)
    assert re.search(r"cookie_id\s+from your column 'cookie'\s+3 rows\s+2 distinct", out)
    assert "stages: Think 2, Do 1, See 1, (none) 1" in out
    assert "channels: email 2, store 1, paid_search 1, direct 1" in out
    assert "conversions: 1 (revenue 12.50)" in out
    assert "persons after stitching: 2 " in out  # u1 + c1 + c2, and u2
    q = pd.read_csv(qfile)
    assert q["row"].tolist() == [6] and q["who"].tolist() == ["u3"]
    assert "31.02.2024" in q["reason"].iloc[0]


def test_check_suggests_how_to_cut_journeys(tmp_path, capsys):
    # the export: gaps of 5 min, 24 h 55 min and 25 h (Berlin times) → median 24.9 h: the default
    data, cmap = _check_files(tmp_path)
    assert main(["check", "--data", str(data), "--mapping", str(cmap)]) == 0
    out = capsys.readouterr().out
    assert out.endswith(
        "journeys (how to cut them):\n"
        "  gaps between a person's consecutive events: 3, median 24.9 h, 33% under 1 hour\n"
        "  per person: 2.5 events (median); no session_id values\n"
        "  suggested: journey_by=inactivity, inactivity_days=30 (the default)\n"
        "  why: events are hours to days apart (omnichannel-like): the default 30-day inactivity rule fits\n"
    )
    # a click log with a session_id column (kept as an attribute): by session
    clicks = tmp_path / "clicks.csv"
    clicks.write_text(
        "timestamp,user_id,session_id,channel,touchpoint\n"
        "2024-05-06T09:00:00Z,u1,s1,email,site_visit\n"
        "2024-05-06T09:04:00Z,u1,s1,email,purchase\n"
        "2024-05-08T18:00:00Z,u1,s2,direct,site_visit\n"
        "2024-05-08T18:02:00Z,u1,s2,direct,site_visit\n"
    )
    assert main(["check", "--data", str(clicks)]) == 0
    out = capsys.readouterr().out
    assert "other columns, kept as attributes: session_id" in out
    assert "median 4 min, 67% under 1 hour" in out and "2 sessions (mean)" in out
    assert "suggested: journey_by=session, inactivity_days=0.5\n" in out


def test_check_exits_2_with_the_data_error(tmp_path, capsys):
    data, cmap = _check_files(tmp_path)
    cmap.write_text(CHECK_MAP.replace("channel: medium", "channel: medum"))
    assert main(["check", "--data", str(data), "--mapping", str(cmap)]) == 2
    err = capsys.readouterr().err
    assert "source column 'medum'" in err and "did you mean 'medium'" in err
    assert main(["check", "--data", str(tmp_path / "nope.csv")]) == 2
    assert "file not found" in capsys.readouterr().err


def test_check_a_sources_file(capsys):
    from analysis.sources.combine import read_sources

    spec = Path(__file__).parents[1] / "fixtures" / "sources" / "crm" / "sources.yml"
    assert main(["check", "--data", str(spec)]) == 0
    out = capsys.readouterr().out
    s = read_sources(spec).summary
    assert (
        f"rows read {s['rows_read']:,} = kept {s['rows_kept']:,} + quarantined {s['rows_quarantined']:,}"
        in out
    )
    for name in ("web", "crm_contacts", "crm_deals", "tickets", "nps", "offline"):
        assert re.search(rf"^\s*{name}\s", out, flags=re.M), name
    assert re.search(r"email_hash\s+from the sources", out)
    # a sources file names its maps itself
    assert main(["check", "--data", str(spec), "--mapping", "x.yml"]) == 2


def test_check_suggest_mapping_prints_a_map_that_loads(tmp_path, capsys):
    data, _ = _check_files(tmp_path)
    assert main(["check", "--data", str(data), "--suggest-mapping"]) == 0
    text = capsys.readouterr().out
    (tmp_path / "suggested.yml").write_text(text)
    res = read_events(data, tmp_path / "suggested.yml")
    assert res.summary["rows_read"] == 6
    assert main(["check", "--data", str(data), "--suggest-mapping", "--mapping", "m.yml"]) == 2


def _fresh_python(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter that sees only ``src`` (nothing pre-imported)."""
    import subprocess
    import sys

    from analysis import config

    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(config.PROJECT_ROOT / "src"), "PATH": ""},
    ).stdout.split()


def test_import_analysis_is_light_and_its_public_names_load_on_use():
    """``import analysis`` (and so ``python -m analysis``) loads no pandas; each public name loads
    its module when first used, and is the object that module defines."""
    code = (
        "import sys, analysis\nlight = 'pandas' not in sys.modules\n"
        "from analysis.journeys import build_journeys\nfrom analysis.schema import DataError\n"
        "print(light, analysis.build_journeys is build_journeys, analysis.DataError is DataError,\n"
        "      callable(analysis.synth.generate), 'load_events' in dir(analysis))\n"
        "try:\n    analysis.no_such_name\nexcept AttributeError as e:\n    print('AttributeError')"
    )
    out = _fresh_python(code)
    assert out == ["True"] * 5 + ["AttributeError"]


def test_the_command_line_parser_loads_no_pandas():
    """``python -m analysis --help`` (and every subcommand's parser, ``report`` included) starts
    without pandas or numpy: the ground floor (analysis.text) loads them only to format a table."""
    code = (
        "import sys\nfrom analysis.__main__ import build_parser\nbuild_parser()\n"
        "import analysis.text, analysis.reports\n"
        "print('pandas' in sys.modules, 'numpy' in sys.modules)"
    )
    out = _fresh_python(code)
    assert out == ["False", "False"]
