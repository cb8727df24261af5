"""Notebook 08's upsell section: the Care → Do move per group, and what comes before it.

The rates and precursors are computed by :mod:`analysis.journeys.upsell` (a later conversion of
a different product or plan than the first); this module only words and tables them for the
report. A group is named as upselling more (or less) than the others only when its interval lies
clear of every other group's; otherwise the sentence says the rates are alike and how wide the
intervals are. Every string from the data is escaped.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.text import md_escape

__all__ = ["show_upsell_precursors", "show_upsell_rates", "upsell_sentences"]


def _pct(x: float) -> str:
    return f"{100 * float(x):.1f}%"


def show_upsell_rates(rates: pd.DataFrame, by: str) -> pd.DataFrame:
    """Return the rates for display: customers, upsold and the rate with its interval per group."""
    return pd.DataFrame(
        {
            by: rates[by].astype(str).to_numpy(),
            "customers": rates["customers"].to_numpy(),
            "upsold": rates["upsold"].to_numpy(),
            "upsell rate [90%]": [
                "–" if not np.isfinite(r) else f"{_pct(r)} [{_pct(lo)}–{_pct(hi)}]"
                for r, lo, hi in zip(rates["rate"], rates["lo"], rates["hi"], strict=True)
            ],
        }
    ).set_index(by)


def upsell_sentences(rates: pd.DataFrame, by: str, *, prob: float = 0.9) -> list[str]:
    """Return the upsell rates in words (Markdown).

    ``rates``: :func:`analysis.journeys.upsell.upsell_rates` (``unit="customer"``). Nothing to
    say when no customer upsold; with one group its rate; with several, a group is named only
    when its ``prob`` interval lies above (or below) every other group's interval, otherwise one
    sentence says the groups are alike and how wide a difference the data could have shown.
    """
    rates = rates[rates["customers"] > 0]
    if rates.empty:
        return ["No customer in this segment: no upsell to count."]
    total, upsold = int(rates["customers"].sum()), int(rates["upsold"].sum())
    if upsold == 0:
        return [
            f"None of the {total:,} customers made a later purchase of a different product or "
            "plan (an upsell: Care → Do) in this data."
        ]
    pct = f"{prob:.0%}"
    out = [
        f"{upsold:,} of {total:,} customers ({_pct(upsold / total)}) upsold by the end of the data."
    ]
    if len(rates) < 2:
        return out
    named = []
    for r in rates.itertuples(index=False):
        others = rates[rates[by].astype(str) != str(getattr(r, by))]
        name = md_escape(str(getattr(r, by)))
        if float(r.lo) > float(others["hi"].max()):
            named.append(f"- **{name}** upsells more: {_pct(r.rate)} [{_pct(r.lo)}–{_pct(r.hi)}]")
        elif float(r.hi) < float(others["lo"].min()):
            named.append(f"- **{name}** upsells less: {_pct(r.rate)} [{_pct(r.lo)}–{_pct(r.hi)}]")
    if named:
        out.append(
            f"Groups whose {pct} interval lies clear of every other group's:\n\n" + "\n".join(named)
        )
    else:
        half = float(np.median((rates["hi"] - rates["lo"]) / 2))
        out.append(
            f"No group stands out: the groups' {pct} intervals overlap; with these customers a "
            f"difference smaller than about {100 * half:.1f} points could not have been told apart."
        )
    return out


def show_upsell_precursors(precursors: pd.DataFrame, by: str) -> pd.DataFrame:
    """Return the Care touchpoints before an upsell for display, highest ratio first per group.

    ``precursors``: :func:`analysis.journeys.upsell.upsell_precursors`.
    """
    return pd.DataFrame(
        {
            by: precursors[by].astype(str).to_numpy(),
            "Care touchpoint": precursors["touchpoint"].astype(str).to_numpy(),
            "share before an upsell": [_pct(x) for x in precursors["share_upsold"]],
            "share of the others": [_pct(x) for x in precursors["share_not"]],
            "ratio": precursors["ratio"].round(2).to_numpy(),
            "window (days)": precursors["window_days"].round(1).to_numpy(),
        }
    ).set_index([by, "Care touchpoint"])
