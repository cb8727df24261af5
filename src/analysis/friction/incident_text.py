"""Incidents in words: the headline a marketer reads and the "nothing found" sentence."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from analysis.friction.time_index import ALL


def _pct(x: float) -> str:
    return f"{x:.0%}" if x >= 0.095 or x == 0 else f"{x:.1%}"


def _about(x: float) -> str:
    """Two significant figures, thousands separated: 123 → "120", 1234 → "1,200"."""
    x = float(x)
    if not math.isfinite(x):
        return "?"
    if abs(x) < 10:
        return f"{round(x):,.0f}"
    digits = math.floor(math.log10(abs(x))) - 1
    return f"{round(x, -digits):,.0f}"


def _step_words(level: str, step: Any) -> str:
    return f"{step} stage" if level == "stage" else f"{step} step"


def _dates(start: pd.Timestamp, end_excl: pd.Timestamp) -> str:
    last = end_excl - pd.Timedelta(days=1)
    if last < start:
        last = start
    if start.normalize() == last.normalize():
        return f"on {start.day} {start:%b %Y}"
    if start.year != last.year:
        return f"from {start.day} {start:%b %Y} to {last.day} {last:%b %Y}"
    return f"from {start.day} {start:%b} to {last.day} {last:%b %Y}"


def _who(by: Any, segment: Any) -> str:
    has_by = by is not None and not (isinstance(by, float) and math.isnan(by))
    if segment == ALL:
        return f"every {by}" if has_by else "all journeys"
    return f"{by} {segment}" if has_by else str(segment)


def incident_headline(row: pd.Series | dict, *, conversions: str = "conversions") -> str:
    """Write one incident in words a marketer reads.

    For example "Do stage (payment_error events), every platform: conversion 41% → 12% from
    3 Mar to 24 Mar 2024, about 120 conversions lost [100–140]". ``conversions`` names what is
    lost ("purchases", "sign-ups").
    """
    r = row
    what = _step_words(r["level"], r["step"])
    tp = r.get("touchpoint")
    if tp is not None and not (isinstance(tp, float) and math.isnan(tp)):
        what += f" ({tp} events)"
    lo = max(float(r["conversions_lost_low"]), 0.0)
    hi = max(float(r["conversions_lost_high"]), 0.0)
    return (
        f"{what}, {_who(r.get('by'), r['segment'])}: conversion {_pct(r['rate_before'])} → "
        f"{_pct(r['rate_during'])} {_dates(pd.Timestamp(r['start']), pd.Timestamp(r['end']))}, "
        f"about {_about(max(float(r['conversions_lost']), 0.0))} {conversions} lost "
        f"[{_about(lo)}–{_about(hi)}]"
    )


def no_incident_text(d: dict[str, Any], *, conversions: str = "conversions") -> str:
    """Write the "nothing found" sentence, with how large an incident could have been seen.

    ``d`` is :func:`~analysis.friction.series.detectable_drop`'s answer.
    """
    head = "No incident found: no step's conversion fell for a while, in any segment."
    if d.get("step") is None:
        return head + " There are too few scored journeys to see one."
    where = _step_words(d["level"], d["step"])
    if d.get("drop") is None:
        return (
            head + f" Even a complete stop of conversion at the {where} (the busiest step) for "
            f"{d['window_days']:g} days would not have shown: too few journeys."
        )
    return (
        head + f" The data could have shown a fall at the {where} (the busiest step) from "
        f"{_pct(d['rate'])} to {_pct(d['rate_during'])} (−{d['drop']:.0%}) lasting {d['window_days']:g} days, "
        f"about {_about(d['conversions_lost'])} {conversions} lost; smaller ones would go unseen."
    )
