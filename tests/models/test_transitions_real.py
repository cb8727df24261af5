"""Stage-transition and dwell-time models on shapes that real data has and synthetic data lacks:
a stage entered by the conversion itself (every visit 0 days long) and stages nobody entered
(Olist has no See or Care contacts). Both broke notebook 02 on the Olist data."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import pytest

import analysis
from analysis import config
from analysis.models.transitions import (
    DwellTimeModel,
    StageTransitionModel,
    expected_time_to_conversion,
)


def durations(think_days, do_days, think_censored=None) -> pd.DataFrame:
    think_censored = think_censored or [False] * len(think_days)
    return pd.DataFrame(
        {
            "segment": "all",
            "stage": ["Think"] * len(think_days) + ["Do"] * len(do_days),
            "duration_days": [*think_days, *do_days],
            "censored": [*think_censored, *([False] * len(do_days))],
        }
    )


def test_zero_length_visits_are_left_censored_and_an_all_zero_stage_is_instant():
    d = durations([0.0, 2.0, 5.0, 0.0, 9.0], [0.0, 0.0, 0.0])
    m = DwellTimeModel(d)
    assert m.stages == ["Think", "Do"]
    assert m.instant_stages == ["Do"]
    assert m.n_below_resolution == 5  # two Think visits and the three Do visits
    assert m._left[0].tolist() == [2, 0]  # Think: left-censored in the likelihood; Do: not modelled
    assert m._n[0].tolist() == [3, 0]  # exact durations: Think's three positive ones only
    assert m.n_visits.set_index("stage")["uncensored"].to_dict() == {"Think": 5, "Do": 3}
    assert m._check_vars == ["mu_stage", "tau", "sigma", "z"]
    # a stage with a censored visit is not instant (its time is unknown, not 0)
    m2 = DwellTimeModel(
        durations([1.0, 3.0, 4.0], [0.0]).pipe(
            lambda x: pd.concat(
                [
                    x,
                    pd.DataFrame(
                        {
                            "segment": ["all"],
                            "stage": ["Do"],
                            "duration_days": [2.0],
                            "censored": [True],
                        }
                    ),
                ],
                ignore_index=True,
            )
        )
    )
    assert m2.instant_stages == []


def _with_mean_days(model: DwellTimeModel, days: dict[str, float], draws: int = 50) -> None:
    """A posterior with fixed mean days per stage (no MCMC)."""
    vals = np.array([[days[s] for s in model.stages]] * len(model.segments))
    model.idata = az.from_dict(
        posterior={"mean_days": np.broadcast_to(vals, (2, draws, *vals.shape)).copy()},
        coords={"segment": model.segments, "stage": model.stages},
        dims={"mean_days": ["segment", "stage"]},
    )


def test_expected_time_to_conversion_with_stages_nobody_entered():
    # See and Care are in the stage map but in no journey (as in Olist)
    counts = pd.DataFrame(
        {
            "from_stage": ["(start)", "Think", "Think", "Do"],
            "to_stage": ["Think", "Do", "(dropoff)", "(conversion)"],
            "n": [2000, 800, 1200, 800],
        }
    )
    tm = StageTransitionModel(counts, group=None, model_config={"pooling": "none"})
    tm.fit(method="conjugate", draws=50, chains=2)
    dm = DwellTimeModel(durations([1.0, 5.0, 9.0], [0.0, 0.0]), group=None)
    _with_mean_days(dm, {"Think": 5.0, "Do": 0.0})
    t = expected_time_to_conversion(tm, dm)
    assert list(t["state"].values) == ["(start)", "See", "Think", "Do", "Care"]
    # a converting journey spends one Think visit (5 days) and an instant Do visit; detours
    # through the unvisited stages have posterior probability ~1/2000 and 0 days
    assert float(t.sel(state="(start)").mean()) == pytest.approx(5.0, abs=0.05)
    assert float(t.sel(state="Do").mean()) == pytest.approx(0.0, abs=0.05)
    # a stage that journeys did enter but the dwell model lacks is still an error
    dm_think = DwellTimeModel(durations([1.0, 5.0, 9.0], []), group=None)
    _with_mean_days(dm_think, {"Think": 5.0})
    with pytest.raises(ValueError, match=r"entered but have no dwell estimate"):
        expected_time_to_conversion(tm, dm_think)


@pytest.mark.slow
def test_olist_notebook_02_path_converges():
    """What notebook 02 does with its defaults (inactivity 30 days, mature visits) on Olist."""
    from analysis.sources import read_olist

    ev = analysis.stitch_identities(
        read_olist(config.EXTERNAL_DIR / "olist_marketing_funnel").events
    )
    jr = analysis.build_journeys(ev, inactivity_days=30)
    counts = jr.stage_transitions(by="segment", mature_days=60)
    dur = jr.stage_durations(by="segment", mature_days=60)
    sampler = {"draws": 500, "tune": 500, "chains": 4, "random_seed": 0}
    tm = StageTransitionModel(counts, group="segment", sampler_config=sampler)
    tm.fit()
    dm = DwellTimeModel(dur, group="segment", sampler_config=sampler)
    dm.fit()
    assert dm.check()["ok"].all() and tm.check()["ok"].all()
    assert dm.instant_stages == ["Do"]
    summ = dm.summary().set_index("stage")
    assert summ.loc["Do", "median_days"] == 0.0
    # Think: deals closed within the 30-day journeys; its median near the raw median of those
    think = dur[(dur["stage"] == "Think") & ~dur["censored"]]["duration_days"]
    assert summ.loc["Think", "median_days"] == pytest.approx(think.median(), rel=0.25)
    t = expected_time_to_conversion(tm, dm)
    assert np.isfinite(float(t.sel(state="(start)").mean()))
