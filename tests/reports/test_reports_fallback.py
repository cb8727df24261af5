"""A report whose model fails its convergence checks still finishes: it shows the fallback model,
in a visible box, with an attention line on the index, and the numbers are the fallback's."""

from __future__ import annotations

import numpy as np
import pytest

from analysis import config
from analysis.reports import Segment, run_reports


@pytest.mark.slow  # two real NUTS fits that must fail (~25 s); the default suite checks the box,
# the attention line and the checks table with stand-ins (tests/reports/test_sections.py)
def test_a_failed_fit_shows_the_fallback_box_index_line_and_fallback_numbers(tmp_path, monkeypatch):
    from analysis import synth
    from analysis.models.transitions import StageTransitionModel
    from analysis.reports import open_report, transition_headline

    events, _ = synth.generate(n_persons=400, seed=3)
    data = tmp_path / "events.csv"
    events.to_csv(data, index=False)
    cache = tmp_path / "cache"
    monkeypatch.setenv("CJL_CACHE_DIR", str(cache))  # the kernels' caches
    monkeypatch.setattr(config, "CACHE_DIR", cache)
    # a check no fit can pass, and no second try: every NUTS fit of the notebook fails
    checks = {"max_divergences": -1, "retry_target_accept": None, "retry_tune_factor": None}
    params = {"sampler_checks": checks, "draws": 200, "tune": 200, "seed": 4}
    segs = [Segment("all"), Segment("ent", {"segment": "enterprise"})]
    nb = config.NOTEBOOKS_DIR / "02_stage_transitions.ipynb"
    res = run_reports(
        data,
        segs,
        notebooks=[nb],
        reports_dir=tmp_path / "reports",
        parameters=params,
        log=lambda m: None,
    )
    assert res.exit_code == 0, res.failed
    page = (res.run_dir / "ent" / "02_stage_transitions.html").read_text(encoding="utf-8")
    assert (
        "Stage transitions: fallback model shown." in page
        and "divergences = 0 (threshold -1)" in page
    )
    assert "Time in stage: fallback model shown." in page
    index = (res.run_dir / "index.html").read_text(encoding="utf-8")
    assert "shown with a fallback model" in index
    # the headline is the fallback's: the exact unpooled conjugate model on the same counts and seed
    ctx = open_report(
        {
            "segment": "ent",
            "segment_filter": {"segment": "enterprise"},
            "segments": {s.name: s.filter for s in segs},
            "data_path": str(data),
        }
    )
    jr = ctx.journeys("all")
    counts = jr.stage_transitions(by=ctx.group_by, mature_days=jr.maturity().mature_days)
    ref = StageTransitionModel(
        counts,
        group=ctx.group_by,
        model_config={"pooling": "none"},
        sampler_config={"draws": 200, "random_seed": 4},
    )
    ref.fit(method="conjugate")
    want = transition_headline(ref, ["enterprise"])
    got = res.manifest["headline"]["ent"]
    assert np.isfinite(got["conversion_rate"])
    for key in ("conversion_rate", "conversion_lower", "conversion_upper"):  # the same exact draws,
        assert abs(got[key] - want[key]) < 1e-9, (
            key
        )  # not the failed NUTS fit's (those would differ)
