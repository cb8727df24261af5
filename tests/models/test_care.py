"""The Care stage's RFM summary and its checks (fast; no model fit).

Truth: a tiny example computed by hand, and a brute-force implementation of the Fader–Hardie /
lifetimes definitions (frequency = purchase days after the first, recency and T in days / 7,
monetary value = mean spend of the repeat purchase days) on random transactions.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from analysis.errors import DataError
from analysis.models.care import rfm_summary
from analysis.plotting.care import plot_p_alive_matrix, plot_tracking


def tiny() -> pd.DataFrame:
    """Three customers; A buys twice on 2024-01-08, C once after the end of observation."""
    rows = [
        ("A", "2024-01-01", 10.0),
        ("A", "2024-01-08", 5.0),
        ("A", "2024-01-08 15:30", 5.0),
        ("A", "2024-01-22", 30.0),
        ("B", "2024-01-15", 7.0),
        ("C", "2024-01-03", 4.0),
        ("C", "2024-02-05", 9.0),
    ]
    return pd.DataFrame(rows, columns=["who", "when", "spend"])


def by_customer(rfm: pd.DataFrame) -> pd.DataFrame:
    return rfm.set_index("customer_id").sort_index()


def test_rfm_summary_hand_computed():
    rfm = by_customer(
        rfm_summary(
            tiny(), customer="who", time="when", value="spend", observation_end="2024-01-29"
        )
    )
    # A: purchase days 01-01, 01-08 (two purchases, one day: 10), 01-22 → 2 repeats,
    # recency 21 days = 3 weeks, T 28 days = 4 weeks, mean repeat spend (10 + 30) / 2
    assert rfm.loc["A"].to_dict() == {"frequency": 2, "recency": 3, "T": 4, "monetary_value": 20}
    assert rfm.loc["B"].to_dict() == {"frequency": 0, "recency": 0, "T": 2, "monetary_value": 0}
    # C's second purchase is after observation_end: ignored
    assert rfm.loc["C", "frequency"] == 0
    assert rfm.loc["C", "T"] == pytest.approx(26 / 7)


def test_rfm_summary_takes_time_zone_aware_ends_and_times_as_utc():
    naive = rfm_summary(tiny(), customer="who", time="when", observation_end="2024-01-29")
    # the same instant written in Berlin time (UTC+1 in January), and the purchases in UTC
    aware = tiny()
    aware["when"] = pd.to_datetime(aware["when"], format="mixed").dt.tz_localize("UTC")
    end = pd.Timestamp("2024-01-29 01:00", tz="Europe/Berlin")
    pd.testing.assert_frame_equal(
        rfm_summary(aware, customer="who", time="when", observation_end=end), naive
    )


def test_rfm_summary_calibration_and_holdout_hand_computed():
    rfm = by_customer(
        rfm_summary(
            tiny(),
            customer="who",
            time="when",
            calibration_end="2024-01-15",
            observation_end="2024-01-29",
        )
    )
    assert rfm.loc["A", ["frequency", "recency", "T", "test_frequency"]].tolist() == [1, 1, 2, 1]
    assert rfm.loc["B", ["frequency", "T", "test_frequency"]].tolist() == [0, 0, 0]
    assert rfm.loc["C", "test_frequency"] == 0  # 02-05 is after observation_end
    assert (rfm["test_T"] == 2).all()
    days = by_customer(rfm_summary(tiny(), customer="who", time="when", time_unit="D"))
    assert days.loc["A", ["frequency", "recency"]].tolist() == [2, 21]


def brute_force(tx: pd.DataFrame, end: pd.Timestamp) -> pd.DataFrame:
    """Fader–Hardie definitions, one customer at a time (independent of pymc-marketing)."""
    rows = []
    kept = tx[tx["date"].dt.normalize() <= end]  # the end day counts whole
    for cid, g in kept.groupby("customer_id"):
        daily = g.groupby(g["date"].dt.normalize())["value"].sum().sort_index()
        first, last = daily.index[0], daily.index[-1]
        repeats = daily.iloc[1:]
        rows.append(
            {
                "customer_id": cid,
                "frequency": float(len(repeats)),
                "recency": (last - first).days / 7,
                "T": (end - first).days / 7,
                "monetary_value": float(repeats.mean()) if len(repeats) else 0.0,
            }
        )
    return pd.DataFrame(rows).set_index("customer_id").sort_index()


def test_rfm_summary_matches_the_definitions_on_random_transactions():
    rng = np.random.default_rng(7)
    n = 400
    tx = pd.DataFrame(
        {
            "customer_id": rng.integers(0, 60, n).astype(str),
            "date": pd.Timestamp("2023-01-01")
            + pd.to_timedelta(rng.integers(0, 200, n), unit="D")
            + pd.to_timedelta(rng.integers(0, 24, n), unit="h"),
            "value": rng.gamma(2.0, 10.0, n).round(2),
        }
    )
    end = pd.Timestamp("2023-06-01")
    assert (tx["date"].dt.normalize() == end).any(), "the end day has purchases (inclusive end)"
    ours = by_customer(rfm_summary(tx, value="value", observation_end=end))
    truth = brute_force(tx, end)
    pd.testing.assert_frame_equal(ours[truth.columns], truth, check_names=False)


@pytest.mark.parametrize(
    ("change", "column", "words"),
    [
        (lambda d: d.drop(columns="spend"), "spend", "lacks"),
        (lambda d: d.assign(when=d["when"].where(d.index != 4, "someday")), "when", "someday"),
        (lambda d: d.assign(spend=d["spend"].where(d.index != 2, -3.0)), "spend", "negative"),
        (lambda d: d.assign(who=d["who"].where(d.index != 1, None)), "who", "missing"),
    ],
)
def test_rfm_summary_bad_input_names_column_and_rows(change, column, words):
    with pytest.raises(DataError) as err:
        rfm_summary(change(tiny()), customer="who", time="when", value="spend")
    assert column in str(err.value.column)
    assert words in str(err.value)
    if words != "lacks":
        assert err.value.rows, "the example rows are named"


def test_rfm_summary_bad_periods():
    with pytest.raises(DataError, match="after observation_end"):
        rfm_summary(tiny(), customer="who", time="when", calibration_end="2024-03-01")
    with pytest.raises(DataError, match="time unit"):
        rfm_summary(tiny(), customer="who", time="when", time_unit="M")


def test_plots_draw_tables():
    weeks = np.arange(1, 11)
    curve = pd.DataFrame(
        {
            "week": weeks,
            "period": np.where(weeks <= 6, "calibration", "holdout"),
            "actual": np.cumsum(weeks),
            "expected": np.cumsum(weeks) * 1.05,
            "expected_lo": np.nan,
            "expected_hi": np.nan,
            "actual_weekly": weeks,
            "expected_weekly": weeks * 1.05,
        }
    )
    ax = plot_tracking(curve)
    assert len(ax.lines) == 3  # actual, expected, the calibration boundary
    assert ax.lines[2].get_xdata()[0] == pytest.approx(6.5)
    grid = pd.DataFrame(
        [(f, r, 10.0, 1 - 0.05 * f + 0.04 * r) for f in range(4) for r in range(0, 11, 5)],
        columns=["frequency", "recency", "T", "p_alive"],
    )
    ax2 = plot_p_alive_matrix(grid)
    assert ax2.images[0].get_array().shape == (4, 3)
    assert "T = 10.0" in ax2.get_title()


class _LinearModel:
    """A stand-in transaction model: a new customer makes exactly t purchases in t weeks."""

    def expected_purchases_new_customer(self, data: pd.DataFrame):
        import xarray as xr

        return xr.DataArray(
            data["t"].to_numpy()[None, None, :], dims=("chain", "draw", "customer_id")
        )


def test_tracking_curve_counts_the_cohort_by_hand():
    from analysis.models.care import CareFit, tracking_curve

    fit = CareFit("bgnbd", "map", 1.0, "W", pd.DataFrame(), pd.DataFrame(), _LinearModel())
    tx = pd.DataFrame(
        {
            "customer_id": ["A", "A", "A", "B", "B", "L", "L"],
            "date": pd.to_datetime(
                [
                    "2024-01-01",  # A first (week 1)
                    "2024-01-10",  # A repeat in week 2
                    "2024-01-10",  # same day: one purchase day
                    "2024-01-08",  # B first (week 2, day 8)
                    "2024-01-30",  # B repeat in week 5 (holdout)
                    "2024-01-20",  # L starts after the calibration end: not in the cohort
                    "2024-01-22",
                ]
            ),
        }
    )
    curve = tracking_curve(tx, fit, "2024-01-14", "2024-02-04").set_index("week")
    assert curve.index.tolist() == [1, 2, 3, 4, 5]
    assert curve["period"].tolist() == ["calibration"] * 2 + ["holdout"] * 3
    assert curve["actual"].tolist() == [0, 1, 1, 1, 2]
    # week w ends on day 7w - 1 after 01-01; A is aged (7w - 1) / 7, B (7w - 8) / 7 once started
    for w in range(1, 6):
        a_age, b_age = (7 * w - 1) / 7, max(0, 7 * w - 8) / 7
        assert curve.loc[w, "expected"] == pytest.approx(a_age + b_age)
    assert curve["expected_lo"].isna().all()  # one draw: no interval
