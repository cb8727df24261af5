"""Notebook 08's upsell section: rates in words, named only when the interval clears the others."""

from __future__ import annotations

import pandas as pd
from scipy.stats import beta

from analysis.reports.upsell_sections import (
    show_upsell_precursors,
    show_upsell_rates,
    upsell_sentences,
)

HOSTILE = "<img src=x onerror=alert(1)>"


def _rates(counts: dict[str, tuple[int, int]]) -> pd.DataFrame:
    rows = []
    for g, (n, k) in counts.items():
        lo, hi = beta.ppf([0.05, 0.95], 1 + k, 1 + n - k)
        rows.append(
            {"segment": g, "customers": n, "n": n, "upsold": k, "rate": k / n, "lo": lo, "hi": hi}
        )
    return pd.DataFrame(rows)


def test_a_group_is_named_only_when_its_interval_clears_every_other_group():
    lines = upsell_sentences(
        _rates({"a": (400, 20), HOSTILE: (400, 120), "c": (200, 40)}), "segment"
    )
    assert lines[0].startswith("180 of 1,000 customers")
    named = lines[1]
    assert "upsells more" in named and "&lt;img" in named and "<img" not in named
    assert "**a** upsells less" in named and "**c**" not in named  # c's interval overlaps both


def test_alike_groups_are_not_named_and_the_detectable_difference_is_said():
    lines = upsell_sentences(_rates({"a": (200, 20), "b": (200, 24)}), "segment")
    assert "No group stands out" in lines[1] and "points" in lines[1]
    assert "upsells" not in lines[1]


def test_no_upsell_and_no_customer_say_so():
    assert "None of the 300 customers" in upsell_sentences(_rates({"a": (300, 0)}), "segment")[0]
    empty = _rates({"a": (1, 0)}).iloc[:0]
    assert upsell_sentences(empty, "segment") == [
        "No customer in this segment: no upsell to count."
    ]


def test_tables_show_rates_with_intervals_and_keep_data_strings_as_text():
    shown = show_upsell_rates(_rates({"a": (100, 10), HOSTILE: (100, 30)}), "segment")
    assert list(shown.index) == ["a", HOSTILE]  # pandas escapes it when rendering HTML
    assert shown.loc["a", "upsell rate [90%]"].startswith("10.0% [")
    assert "&lt;img" in shown.to_html()
    pre = pd.DataFrame(
        {
            "segment": ["a"],
            "touchpoint": [HOSTILE],
            "upsold": [10],
            "share_upsold": [0.5],
            "not_upsold": [90],
            "share_not": [0.1],
            "ratio": [4.6],
            "window_days": [12.34],
        }
    )
    table = show_upsell_precursors(pre, "segment")
    assert table.iloc[0]["share before an upsell"] == "50.0%" and table.iloc[0]["ratio"] == 4.6
