"""analysis.reports.context: every notebook declares the shared parameters with one default, and
the groups the pooled models compare follow the segments file."""

from __future__ import annotations

import pandas as pd
import papermill as pm
import pytest

from analysis import config
from analysis.errors import DataError
from analysis.reports.context import (
    OTHER_GROUP,
    PARAMS_ENV,
    REPORT_PARAMETERS,
    SEGMENT_GROUP_COLUMN,
    apply_env_params,
    fit_box,
    model_groups,
    open_report,
)
from analysis.text import md_code

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


def _three_platforms(tmp_path):
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
    return csv


def test_open_report_highlights_the_segments_own_groups_and_takes_the_stage_map(tmp_path):
    csv = _three_platforms(tmp_path)
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

    # "after a second try" follows the model's flag, not the wording of its note
    class Twice(Fake):
        sampled_twice = True
        fit_note = "the note's wording may change"

    class Once(Fake):
        sampled_twice = False

    assert "after a second try" in fit_box("x", Twice())
    assert "after a second try" not in fit_box("x", Once())


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


# ------------------------------------------------------------------ CJL_NOTEBOOK_PARAMS (smoke runs)
def _notebook_globals():
    """A notebook's namespace after its parameter cell (annotated, as papermill leaves it)."""
    return {
        "__annotations__": {"draws": int, "chains": int, "models": list, "segment": str},
        "draws": 500,
        "chains": 4,
        "models": ["markov", "bayesian"],
        "segment": "all",
        "np": object(),  # an import: not a parameter
    }


def test_env_params_override_a_notebooks_globals_with_their_declared_types():
    ns = _notebook_globals()
    env = {
        PARAMS_ENV: "draws=100 chains=2 models='[markov]' inactivity_days=7 segment=2024 tune=50"
    }
    got = apply_env_params(ns, env)
    assert got == {
        "draws": 100,
        "chains": 2,
        "models": ["markov"],
        "inactivity_days": 7.0,  # a shared parameter: a float, as its default
        "segment": "2024",  # declared text
    }
    assert isinstance(got["inactivity_days"], float)
    assert "tune" not in ns and "chains" not in apply_env_params({}, {PARAMS_ENV: "chains=2"}), (
        "a parameter of another notebook (02's chains) is left to it"
    )
    assert ns["draws"] == 100 and ns["chains"] == 2 and ns["models"] == ["markov"]
    assert ns["inactivity_days"] == 7.0 and ns["segment"] == "2024"


@pytest.mark.parametrize("text", ["", "   "])
def test_env_params_unset_or_empty_change_nothing(text):
    ns = _notebook_globals()
    before = dict(ns)
    assert apply_env_params(ns, {PARAMS_ENV: text}) == {} and ns == before
    assert apply_env_params(ns, {}) == {} and ns == before


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("drows=100", r"CJL_NOTEBOOK_PARAMS sets 'drows', which no report notebook declares"),
        ("draws=many", r"CJL_NOTEBOOK_PARAMS: draws='many' is not an integer"),
        ("draws=1.5", r"CJL_NOTEBOOK_PARAMS: draws=1.5 is not an integer"),
        ("time_to_event=maybe", r"CJL_NOTEBOOK_PARAMS: time_to_event='maybe' is not a bool"),
        ("models=markov", r"CJL_NOTEBOOK_PARAMS: models='markov' is not a list"),
        ("draws", r"CJL_NOTEBOOK_PARAMS 'draws' is not key=value"),
        ("models='[markov", r"CJL_NOTEBOOK_PARAMS cannot be read"),
    ],
)
def test_env_params_refuse_an_unknown_name_or_a_bad_value_naming_the_variable(text, message):
    ns = _notebook_globals()
    with pytest.raises(DataError, match=message) as err:
        apply_env_params(ns, {PARAMS_ENV: text})
    assert PARAMS_ENV in str(err.value)
    assert ns["draws"] == 500, "nothing is applied when one item is bad"
    if text.startswith("drows"):
        assert "did you mean 'draws'" in str(err.value)


def test_open_report_applies_the_env_params_before_preparing_and_says_so(tmp_path, monkeypatch):
    csv = _three_platforms(tmp_path)
    ns = {"segment": "all", "data_path": str(csv), "seed": 0, "__annotations__": {"seed": int}}
    monkeypatch.setenv(PARAMS_ENV, "seed=3 inactivity_days=7")
    ctx = open_report(ns)
    assert ns["seed"] == 3 and ctx.params["seed"] == 3 and ctx.params["inactivity_days"] == 7.0
    assert ctx.overridden == {"seed": 3, "inactivity_days": 7.0}
    assert ctx.header().endswith(
        f"**Overridden from the environment ({md_code(PARAMS_ENV)}):** "
        f"{md_code('seed=3')}, {md_code('inactivity_days=7.0')}"
    )
    monkeypatch.delenv(PARAMS_ENV)
    plain = open_report({"segment": "all", "data_path": str(csv)})
    assert plain.overridden == {} and "Overridden" not in plain.header()
