"""analysis.reports.context: every notebook declares the shared parameters with one default, and
the groups the pooled models compare follow the segments file."""

from __future__ import annotations

import pandas as pd
import papermill as pm
import pytest

from analysis import config
from analysis.reports.context import (
    OTHER_GROUP,
    REPORT_PARAMETERS,
    SEGMENT_GROUP_COLUMN,
    fit_box,
    model_groups,
    open_report,
)

NOTEBOOKS = sorted(config.NOTEBOOKS_DIR.glob("0*.ipynb"))


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_declares_the_shared_parameters_with_the_same_defaults(nb):
    declared = pm.inspect_notebook(str(nb))
    for name, (default, _) in REPORT_PARAMETERS.items():
        assert name in declared, f"{nb.name} does not declare {name}"
        assert eval(declared[name]["default"]) == default, f"{nb.name}: {name}"
        assert declared[name]["help"], f"{nb.name}: {name} has no comment"


def _events() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "platform": ["desktop", "mobile", "tablet", "mobile", None],
            "country": ["de", "de", "fr", "fr", "de"],
            "segment": "all",
        }
    )


def test_segments_on_one_column_compare_that_columns_values():
    segs = {"all": {}, "desktop": {"platform": "desktop"}, "mobile": {"platform": "mobile"}}
    ev, col, note = model_groups(_events(), segs, {"platform": "mobile"})
    assert col == "platform" and "platform" in note
    assert list(ev["platform"]) == ["desktop", "mobile", "tablet", "mobile", "(missing)"]


def test_segments_on_several_columns_become_one_group_per_segment():
    segs = {
        "all": {},
        "mobile_de": {"platform": "mobile", "country": "de"},
        "fr": {"country": "fr"},
    }
    ev, col, _ = model_groups(_events(), segs, None)
    assert col == SEGMENT_GROUP_COLUMN
    assert list(ev[col]) == [OTHER_GROUP, "mobile_de", "fr", "fr", OTHER_GROUP]


def test_without_segments_the_filter_column_or_segment_is_used():
    assert model_groups(_events(), {}, {"country": "de"})[1] == "country"
    assert model_groups(_events(), {"all": {}}, {})[1] == "segment"


def test_open_report_highlights_the_segments_own_groups_and_takes_the_stage_map(tmp_path):
    csv = tmp_path / "ev.csv"
    rows = []
    for i, (plat, tp) in enumerate(
        [("desktop", "ad_impression"), ("mobile", "site_visit"), ("tablet", "purchase")]
    ):
        rows.append(
            {
                "event_id": f"e{i}",
                "timestamp": f"2024-01-0{i + 1}T10:00:00Z",
                "user_id": f"u{i}",
                "channel": "email",
                "touchpoint": tp,
                "conversion": tp == "purchase",
                "platform": plat,
            }
        )
    pd.DataFrame(rows).to_csv(csv, index=False)
    segs = {
        "all": {},
        "desktop": {"platform": "desktop"},
        "mobile": {"platform": ["mobile", "tablet"]},
    }
    ctx = open_report(
        {
            "segment": "mobile",
            "segment_filter": segs["mobile"],
            "segments": segs,
            "data_path": str(csv),
        }
    )
    assert ctx.group_by == "platform" and ctx.groups == ["mobile", "tablet"]
    assert len(ctx.mine) == 2 and len(ctx.events) == 3
    assert list(ctx.stage_map.stages) == ["See", "Think", "Do", "Care"]
    everyone = open_report({"segment": "all", "segments": segs, "data_path": str(csv)})
    assert everyone.groups == ["desktop", "mobile", "tablet"]


def test_fit_box_names_the_failed_checks_and_escapes_them():
    class Fake:
        fallback = "the <b>exact</b> model"
        failed_checks = "divergences = 3 (threshold 0)"
        fit_note = "sampled twice"

    box = fit_box("Stage <transitions>", Fake())
    assert "divergences = 3" in box and "&lt;b&gt;exact" in box and "<transitions>" not in box

    class Fine:
        fallback = None
        fit_note = None

    assert fit_box("x", Fine()) is None


def test_list_params_names_every_parameter_with_its_default_and_notebooks():
    from analysis.reports import list_parameters

    text = list_parameters(NOTEBOOKS)
    for name in REPORT_PARAMETERS:
        assert f"\n  {name} (" in text
    assert "friction_reduction (float, default 0.2) [02_stage_transitions]" in text
    assert "inactivity_days (float, default 30.0) [every notebook]" in text


def test_make_reports_passes_params_to_the_runner():
    import subprocess

    out = subprocess.run(
        ["make", "-n", "reports", "PARAMS=inactivity_days=0.5 draws=1000"],
        cwd=config.PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = [ln for ln in out.splitlines() if "analysis report" in ln][-1]
    assert "--param 'inactivity_days=0.5' --param 'draws=1000'" in line
