"""analysis.reports.care_sections (notebook 08's cells), the index's Care cell, and notebook 08 end
to end (slow).

Figures are checked against hand-built tables and independent numpy/pandas computations (per-draw
means, quantiles, counts), the claim rule against planted intervals, and every data string
against hostile names.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from analysis import config
from analysis.reports import care_sections as cs
from analysis.reports.render import headline_cells

IMG = "<img src=x onerror=alert(1)>"
ROOT = Path(__file__).parents[2]


def _events():
    t = pd.Timestamp("2024-01-01", tz="UTC")
    return pd.DataFrame(
        {
            "person_id": pd.array([1, 1, 1, 2, 2, 3, 4], dtype="Int64"),
            "timestamp": [t, t + pd.Timedelta(days=3), t + pd.Timedelta(days=9), t, t, t, t],
            "conversion": [False, True, True, True, False, True, True],
            "revenue": [np.nan, 10.0, 20.0, 5.0, np.nan, 7.0, 1.0],
            "segment": ["a", "b", "a", IMG, IMG, "a", "b"],
        }
    )


def test_care_transactions_keep_conversions_and_the_first_purchases_group():
    tx, ok, note = cs.care_transactions(_events(), group="segment")
    assert ok and note == ""
    assert tx["customer_id"].tolist() == ["1", "1", "2", "3", "4"]
    # person 1's first purchase (day 3) is in group b, although its first touch is in a
    assert tx.groupby("customer_id")["group"].first().to_dict() == {
        "1": "b",
        "2": IMG,
        "3": "a",
        "4": "b",
    }
    assert tx["value"].tolist() == [10.0, 20.0, 5.0, 7.0, 1.0]
    assert tx["date"].dt.tz is None
    ev = _events()
    ev.loc[1, "revenue"] = np.nan
    tx, ok, note = cs.care_transactions(ev)
    assert not ok and note.startswith("1 of 5 purchases have no revenue")
    assert set(tx["group"]) == {"all"}


def test_calibration_split_is_fader_hardie_lees_on_cdnows_dates():
    tx = pd.DataFrame({"date": pd.to_datetime(["1997-01-01", "1997-03-31", "1998-06-30"])})
    # the paper's 39-week calibration period ends on 1997-09-30
    assert cs.calibration_split(tx, pd.Timestamp("1998-06-30", tz="UTC")) == pd.Timestamp(
        "1997-09-30"
    )
    assert cs.calibration_split(tx, "1998-06-30", "1997-05-01") == pd.Timestamp("1997-05-01")


def test_repeat_summary_counts_who_bought_again_per_group():
    rfm = pd.DataFrame(
        {
            "customer_id": ["1", "2", "3", "4"],
            "frequency": [2.0, 0.0, 1.0, 0.0],
            "recency": [3.0, 0.0, 1.0, 0.0],
            "T": [10.0, 8.0, 6.0, 4.0],
            "monetary_value": [15.0, 0.0, 9.0, 0.0],
        }
    )
    out = cs.repeat_summary(rfm, pd.Series({"1": "a", "2": "a", "3": "b", "4": "b"}))
    assert out.index.tolist() == ["a", "b", "all"]
    assert out["customers"].tolist() == [2, 2, 4]
    assert out["bought again"].tolist() == [1, 1, 2]
    assert out["repeat purchase days per customer"].tolist() == [1.0, 0.5, 0.75]
    assert out.loc["all", "spend per repeat purchase day"] == 12.0  # of those who bought again
    assert cs.enough_repeaters(rfm, 2) == ""
    msg = cs.enough_repeaters(rfm, 3, what="in the calibration period")
    assert msg.startswith("**Not enough repeat purchases to model Care in the calibration period")
    assert "2 of 4 customers bought again" in msg


def test_expectation_table_gives_the_per_draw_mean_and_its_interval():
    rng = np.random.default_rng(0)
    draws = rng.gamma(2.0, 1.0, size=(400, 6))
    value = draws * 10
    customers = pd.DataFrame({"customer_id": list("uvwxyz"), "p_alive": np.linspace(0.5, 1, 6)})
    groups = pd.Series(dict(zip("uvwxyz", ["g1", "g1", "g2", "g2", "g2", IMG], strict=True)))
    t = cs.expectation_table(customers, draws, value, groups=groups)
    assert t["group"].tolist() == [IMG, "g1", "g2", "all"]
    g2 = draws[:, 2:5].mean(axis=1)
    row = t.set_index("group").loc["g2"]
    assert row["purchases"] == pytest.approx(g2.mean())
    assert (row["purchases_lower"], row["purchases_upper"]) == pytest.approx(
        tuple(np.quantile(g2, [0.05, 0.95]))
    )
    assert row["value"] == pytest.approx(10 * g2.mean())
    assert row["p_alive"] == pytest.approx(customers["p_alive"][2:5].mean())
    # pymc-marketing's (chain, draw, customer) arrays flatten to the same matrix
    arr = xr.DataArray(draws.reshape(2, 200, 6), dims=("chain", "draw", "customer_id"))
    np.testing.assert_array_equal(cs.draw_matrix(arr), draws)
    # one draw (MAP): no interval, and the headline says so
    one = cs.expectation_table(customers, draws[:1], None)
    assert np.isnan(one["purchases_lower"].iloc[0]) and "value" not in one
    h = cs.care_headline(one, 52.0)
    assert "care_lower" not in h and h["care_customers"] == 6
    assert "MAP, no interval" in cs.care_cell(h)
    shown = cs.show_expectations(t, 52.0)
    assert shown.loc["g2"].iloc[2] == (
        f"{g2.mean():,.2f} [{np.quantile(g2, 0.05):,.2f}–{np.quantile(g2, 0.95):,.2f}]"
    )


def test_the_index_cell_gives_the_figure_and_escapes_the_note():
    h = cs.care_headline(
        pd.DataFrame(
            {
                "group": ["all"],
                "customers": [2357],
                "p_alive": [0.5],
                "purchases": [0.523],
                "purchases_lower": [0.471],
                "purchases_upper": [0.58],
            }
        ),
        52.0,
    )
    cell = cs.care_cell(h)
    assert (
        cell
        == "0.52 [0.47–0.58] <span class=small>per customer in 52 weeks, 2,357 customers</span>"
    )
    assert cell in headline_cells(h)
    bad = cs.care_cell(cs.care_headline(None, 52.0, note=f"not enough {IMG}"))
    assert IMG not in bad and "&lt;img" in bad
    assert cs.care_cell({}) == "–"


def _effects(lo, hi, covariates=("fast_ticket", "onboarding")):
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    est = (lo + hi) / 2
    return pd.DataFrame(
        {
            "covariate": list(covariates),
            "process": ["purchase", "dropout_b"][: len(covariates)],
            "coefficient": est,
            "lo": lo,
            "hi": hi,
            "multiplier": np.exp(est),
            "multiplier_lo": np.exp(lo),
            "multiplier_hi": np.exp(hi),
        }
    )


def test_effects_are_named_only_when_their_interval_excludes_none():
    text = cs.effect_sentences(_effects([0.3, -0.5], [0.5, 0.9]))
    assert len(text) == 2
    assert "a support ticket resolved within a day: **×1.49** [1.35–1.65] purchase rate" in text[0]
    assert "onboarding" not in text[0]
    # the quiet effect: width 1.4 -> about x exp(0.7) could not be told from none
    assert f"×{np.exp(0.7):.2f}" in text[1] and text[1].startswith("The other 1 effect")
    none = cs.effect_sentences(_effects([-0.2, -0.4], [0.2, 0.4]))
    assert none[0].startswith("No Care touchpoint stands out") and len(none) == 1
    assert f"×{np.exp(0.3):.2f}" in none[0]  # median width 0.6
    mapfit = _effects([np.nan, np.nan], [np.nan, np.nan])
    assert "MAP" in cs.effect_sentences(mapfit)[0]
    hostile = cs.effect_sentences(_effects([0.3], [0.5], covariates=(IMG,)))
    assert IMG not in hostile[0]
    shown = cs.show_effects(_effects([0.3, -0.5], [0.5, 0.9]))
    assert shown["multiplier [90%]"].iloc[0] == "1.49 [1.35–1.65]"


def test_choose_covariates_keeps_what_enough_customers_have():
    n = 40
    table = pd.DataFrame(
        {
            "fast_ticket": [1.0] * 12 + [0.0] * 28,
            "slow_ticket": [1.0] * 3 + [0.0] * 37,  # too few
            "feedback": [1.0] * 20 + [0.0] * 20,
            "sentiment_mean": np.r_[np.linspace(-1, 1, 20), np.zeros(20)],
            "onboarding": [1.0] * (n - 5) + [0.0] * 5,  # too few without
        }
    )
    purchase, dropout, note = cs.choose_covariates(table, min_customers=10)
    assert purchase == ["fast_ticket", "feedback", "sentiment_mean"] and dropout == []
    assert "slow\\_ticket</code>" in note and "<code>onboarding</code>" in note


def test_tracking_sentence_calibration_display_and_spend_warning():
    curve = pd.DataFrame(
        {
            "week": [1, 2, 3, 4],
            "period": ["calibration", "calibration", "holdout", "holdout"],
            "actual": [1.0, 3.0, 6.0, 11.0],
            "expected": [1.0, 3.5, 7.5, 12.5],
            "expected_lo": [np.nan] * 4,
            "expected_hi": [np.nan] * 4,
            "actual_weekly": [1.0, 2.0, 3.0, 5.0],
            "expected_weekly": [1.0, 2.5, 4.0, 5.0],
        }
    )
    assert cs.tracking_warning(curve) == ""  # 12.5% off: within 20%
    assert "over-predicts the holdout's repeat purchases by 12%" in cs.tracking_warning(
        curve, limit=0.1
    )
    text = cs.tracking_sentence(curve)
    # holdout: 8 made (11 - 3), 9 expected (12.5 - 3.5): 12.5% above; weekly gaps 1 and 0
    assert "**8**" in text and "**9**" in text and "12.5% above" in text and "0.5." in text
    calib = pd.DataFrame(
        {"bin": [0, 1], "n": [5, 5], "expected": [1.0, 2.0], "observed": [1.5, 1.5]}
    )
    calib["error"] = calib["observed"] - calib["expected"]
    calib["se"] = [0.1, 0.2]
    calib.attrs = {"calibration_error": 0.5, "noise_floor": 0.12, "total_error": 0.0}
    table, sentence = cs.calibration_display(calib)
    assert table.index.tolist() == [1, 2] and "**0.500**" in sentence
    params = pd.DataFrame(
        {"model": ["gamma_gamma"] * 2, "parameter": ["p", "q"], "estimate": [6.0, 0.7]}
    )
    assert "q` is 0.70" in cs.spend_warning(params)
    params.loc[1, "estimate"] = 3.7
    assert cs.spend_warning(params) == ""


@pytest.mark.slow
def test_notebook_08_runs_on_a_small_care_sample_and_reaches_the_index(tmp_path):
    """Notebook 08 through the report runner (MAP, a quick fit) on synthetic data with repeat
    purchases, and on data where nobody buys twice (the report says so, no exception)."""
    from analysis import synth

    events, _ = synth.generate(n_persons=1500, seed=3, care=True)
    data = tmp_path / "care.csv"
    events.to_csv(data, index=False)
    once = events[events["conversion"].astype(bool)].drop_duplicates("user_id")
    one_buy = tmp_path / "once.csv"
    pd.concat([events[~events["conversion"].astype(bool)], once]).to_csv(one_buy, index=False)
    env = {**os.environ, "CJL_NOTEBOOK_PARAMS": "care_method=map"}
    for name, path in (("care", data), ("once", one_buy)):
        out = tmp_path / name
        subprocess.run(
            [sys.executable, "-m", "analysis", "report", "--data", str(path), "--segments",
             str(config.REPORTS_DIR / "segments.yml"), "--segment", "all", "--notebook",
             "notebooks/08_care.ipynb", "--out", str(out), "--heartbeat", "0"],
            cwd=ROOT, env=env, check=True, capture_output=True, timeout=900,
        )  # fmt: skip
        run = next(p for p in out.iterdir() if p.is_dir() and p.name != "latest")
        h = json.loads((run / "manifest.json").read_text())["headline"]["all"]
        page = (run / "all" / "08_care.html").read_text()
        assert "Traceback" not in page
        if name == "care":
            assert h["care_customers"] > 0 and 0 < h["care_purchases"] < 50
            assert "Tracking against a holdout" in page
        else:
            assert h["care_note"].startswith("not enough repeat purchases")
            assert "Not enough repeat purchases to model Care" in page
